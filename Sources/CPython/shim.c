// Everything lives in include/CPython.h; this file gives SwiftPM a C target to build.

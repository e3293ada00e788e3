// CPython's limited API (abi3, oldest supported: 3.10) plus the one-line shims Swift needs for
// what C exposes only as macros. The include path of Python.h is given on the command line.
#ifndef SWIFTLAUNCH_CPYTHON_H
#define SWIFTLAUNCH_CPYTHON_H

#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x030A0000
#include <Python.h>
#include <structmember.h>
#include <dlfcn.h>
#include <string.h>
#include <time.h>

// Exported by every CPython from 3.9 on, though the 3.10 limited API does not declare it.
PyAPI_FUNC(PyObject *) PyObject_VectorcallMethod(PyObject *name, PyObject *const *args, size_t nargsf,
                                                 PyObject *kwnames);

typedef PyObject *(*SLVectorcallFunc)(PyObject *callable, PyObject *const *args, size_t nargsf,
                                      PyObject *kwnames);

#define SL_VECTORCALL_ARGUMENTS_OFFSET ((size_t)1 << (8 * sizeof(size_t) - 1))
// `Py_TPFLAGS_HAVE_VECTORCALL`: settable on heap types from 3.12 (checked at run time).
#define SL_TPFLAGS_HAVE_VECTORCALL (1UL << 11)

static inline PyObject *SL_None(void) { return Py_None; }
static inline PyObject *SL_True(void) { return Py_True; }
static inline PyObject *SL_False(void) { return Py_False; }
static inline PyObject *SL_NewRefNone(void) { Py_INCREF(Py_None); return Py_None; }
static inline PyObject *SL_NewRefTrue(void) { Py_INCREF(Py_True); return Py_True; }
static inline PyObject *SL_NewRefFalse(void) { Py_INCREF(Py_False); return Py_False; }
static inline int SL_IsNone(PyObject *o) { return o == Py_None; }
static inline int SL_LongCheck(PyObject *o) { return PyLong_Check(o); }
static inline int SL_BoolCheck(PyObject *o) { return PyBool_Check(o); }
static inline int SL_FloatCheck(PyObject *o) { return PyFloat_Check(o); }
static inline int SL_TupleCheck(PyObject *o) { return PyTuple_Check(o); }
static inline int SL_ListCheck(PyObject *o) { return PyList_Check(o); }
static inline int SL_UnicodeCheck(PyObject *o) { return PyUnicode_Check(o); }
// Exactly int, float, bool, str or None: their `!=` and truth value are CPython's own C code.
static inline int SL_IsPlainScalar(PyObject *o) {
    PyTypeObject *t = Py_TYPE(o);
    return o == Py_None || t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type || t == &PyUnicode_Type;
}
static inline int SL_DictCheck(PyObject *o) { return PyDict_Check(o); }
static inline int SL_CFunctionCheck(PyObject *o) { return PyCFunction_Check(o); }
static inline PyTypeObject *SL_Type(PyObject *o) { return Py_TYPE(o); }
// `type` itself: the metaclass of every class created by a class statement without one.
static inline PyObject *SL_TypeType(void) { return (PyObject *)&PyType_Type; }
// The object's reference count (the output pool reuses a tensor only while it is the sole holder).
static inline Py_ssize_t SL_RefCnt(PyObject *o) { return Py_REFCNT(o); }
// `type(str.upper)`: the type of CPython's own method descriptors.
static inline PyObject *SL_MethodDescriptorType(void) { return (PyObject *)&PyMethodDescr_Type; }
static inline void SL_IncRef(PyObject *o) { Py_INCREF(o); }
static inline void SL_DecRef(PyObject *o) { Py_DECREF(o); }
static inline void SL_XDecRef(PyObject *o) { Py_XDECREF(o); }
static inline size_t SL_VectorcallArgumentsOffset(void) { return SL_VECTORCALL_ARGUMENTS_OFFSET; }
static inline size_t SL_VectorcallNArgs(size_t n) { return n & ~SL_VECTORCALL_ARGUMENTS_OFFSET; }
static inline PyObject *SL_ExcTypeError(void) { return PyExc_TypeError; }
static inline PyObject *SL_ExcValueError(void) { return PyExc_ValueError; }
static inline PyObject *SL_ExcRuntimeError(void) { return PyExc_RuntimeError; }
static inline PyObject *SL_ExcOverflowError(void) { return PyExc_OverflowError; }
static inline PyObject *SL_ExcKeyError(void) { return PyExc_KeyError; }
static inline PyObject *SL_ExcImportError(void) { return PyExc_ImportError; }
static inline PyObject *SL_ExcException(void) { return PyExc_Exception; }
static inline PyModuleDef_Base SL_ModuleDefHeadInit(void) {
    PyModuleDef_Base base = PyModuleDef_HEAD_INIT;
    return base;
}
// Calls `callable(*args)` through a tuple: the path for Pythons without an exported
// PyObject_Vectorcall (3.10).
static inline PyObject *SL_CallViaTuple(PyObject *callable, PyObject *const *args, size_t nargsf,
                                        PyObject *kwnames) {
    Py_ssize_t n = (Py_ssize_t)SL_VectorcallNArgs(nargsf);
    Py_ssize_t nkw = kwnames ? PyTuple_Size(kwnames) : 0;
    PyObject *tuple = PyTuple_New(n);
    if (!tuple) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) { Py_INCREF(args[i]); PyTuple_SetItem(tuple, i, args[i]); }
    PyObject *kwargs = NULL;
    if (nkw > 0) {
        kwargs = PyDict_New();
        if (!kwargs) { Py_DECREF(tuple); return NULL; }
        for (Py_ssize_t i = 0; i < nkw; i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GetItem(kwnames, i), args[n + i]) < 0) {
                Py_DECREF(tuple); Py_DECREF(kwargs); return NULL;
            }
        }
    }
    PyObject *result = PyObject_Call(callable, tuple, kwargs);
    Py_DECREF(tuple);
    Py_XDECREF(kwargs);
    return result;
}

#endif

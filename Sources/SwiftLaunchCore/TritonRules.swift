/// Everything that differs between the Triton releases whose cache-hit path the core reproduces, in
/// one value. The glue picks it once, at configure time, from the installed Triton's version; the
/// conversions, the launch configuration, the binding of arguments to parameters and the knob guards
/// read it from there (a kernel's launch copies what it needs when it is cached), never per call.
///
/// Read from the PyPI wheels' `runtime/jit.py`, `backends/nvidia/driver.py` + `driver.c`,
/// `compiler/compiler.py` and `knobs.py` (3.6.0, 3.7.0 = 3.7.1, 3.8.0, 3.9.0); see
/// `docs/TRITON_VERSIONS.md` for the table and the line-level reasons.
public struct TritonRules: Equatable, Sendable, CustomStringConvertible {
    /// How the launcher turns a Python scalar into a kernel parameter.
    public enum ArgumentConversion: Equatable, Sendable {
        /// 3.6: a C launcher generated per signature parses the arguments with `PyArg_ParseTuple`:
        /// i1/i8 with "b" (0...255, else OverflowError), i16/i32/i64 range-checked ("h", "i", "L"),
        /// u1/u8/u16/u32/u64 masked to their width ("B", "H", "I", "K"), i1 and u1 one byte.
        case parseTuple
        /// 3.7 and later: one precompiled `launchKernel` in `driver.c` with an extractor per type:
        /// i1/i8/i16/i32 through `PyLong_AsLong` (OverflowError outside a C long, else truncated to
        /// the width: 300 as i8 is 44), i64 through `PyLong_AsLongLong`, u1/u8/u16/u32 through
        /// `PyLong_AsUnsignedLong` and u64 through `PyLong_AsUnsignedLongLong` (OverflowError for a
        /// negative value or one above 2^64-1, else truncated). i1 and u1 are written as 32 bits.
        case extractors
    }

    /// How the binder Triton generates (`create_function_from_signature`) takes the call's arguments.
    public enum Binding: Equatable, Sendable {
        /// 3.6 and 3.7: every parameter is positional-or-keyword, `*args` and `**kwargs` parameters
        /// included (they are listed by name), and no keyword-only separator is kept.
        case everyParameterPositional
        /// 3.8: a `*args` parameter collects the extra positional arguments into a tuple; a bare `*`
        /// separator is not kept, so keyword-only parameters still bind positionally.
        case varPositionalCollects
        /// 3.9: as 3.8, and the `*` separator is kept: a keyword-only parameter given positionally
        /// makes the binder raise TypeError. (`**kwargs` parameters are refused by `JITFunction`.)
        case keywordOnlyEnforced
    }

    /// The Triton release family, "3.6" ... "3.9".
    public let family: String
    public let conversion: ArgumentConversion
    public let binding: Binding
    /// 3.8 and later: above this many bytes of shared memory the launch carries
    /// `CU_LAUNCH_ATTRIBUTE_SHARED_MEMORY_MODE = ALLOW_OVERSIZED_SHARED_MEMORY`, as the first attribute.
    public let oversizedSharedMemoryAbove: UInt32?
    /// 3.9: `JITFunction.run` puts `knobs.compilation.fpsan_homomorphic_casts` (an environment-backed
    /// knob, `TRITON_FPSAN_HOMOMORPHIC_CASTS`) into the options, so its value is part of the cache key.
    public let fpsanKnobInKey: Bool
    /// 3.6's generated launcher names the argument in its ValueError for host memory; 3.7+'s does not.
    public let pointerErrorNamesPosition: Bool

    public var description: String { "triton \(family) rules" }

    /// The most launch attributes Triton's `_launch` has room for (`CUlaunchAttribute launchAttr[4]`).
    public static let maxLaunchAttributes = 4

    public static let triton3_6 = TritonRules(
        family: "3.6", conversion: .parseTuple, binding: .everyParameterPositional,
        oversizedSharedMemoryAbove: nil, fpsanKnobInKey: false, pointerErrorNamesPosition: true)
    public static let triton3_7 = TritonRules(
        family: "3.7", conversion: .extractors, binding: .everyParameterPositional,
        oversizedSharedMemoryAbove: nil, fpsanKnobInKey: false, pointerErrorNamesPosition: false)
    public static let triton3_8 = TritonRules(
        family: "3.8", conversion: .extractors, binding: .varPositionalCollects,
        oversizedSharedMemoryAbove: 228 * 1024, fpsanKnobInKey: false, pointerErrorNamesPosition: false)
    public static let triton3_9 = TritonRules(
        family: "3.9", conversion: .extractors, binding: .keywordOnlyEnforced,
        oversizedSharedMemoryAbove: 228 * 1024, fpsanKnobInKey: true, pointerErrorNamesPosition: false)

    public static let all: [TritonRules] = [.triton3_6, .triton3_7, .triton3_8, .triton3_9]

    /// The rules of a Triton release, by major and minor version; nil for releases the core has no
    /// rules for (3.5 and older lack `native_specialize_impl`; 3.10 and newer are unread).
    public static func forTriton(major: Int, minor: Int) -> TritonRules? {
        all.first { $0.family == "\(major).\(minor)" }
    }

    /// Triton's ValueError text for a pointer argument in host memory.
    public func pointerNotAccessibleMessage(position: Int) -> String {
        pointerErrorNamesPosition
            ? "Pointer argument (at \(position)) cannot be accessed from Triton (cpu tensor?)"
            : "Pointer argument cannot be accessed from Triton (cpu tensor?)"
    }
}

/// What kind of Python parameter a kernel parameter is (`inspect.Parameter.kind`).
public enum ParameterKind: Equatable, Sendable {
    case positionalOrKeyword
    case varPositional
    case keywordOnly
    case varKeyword
}

extension TritonRules {
    /// How many positional arguments a call may bind to these parameters exactly as this release's
    /// binder binds them (each to the next parameter in order; more go to Triton, which raises), or nil
    /// when the core cannot bind them that way and every call must go to Triton.
    public func positionalLimit(_ kinds: [ParameterKind]) -> Int? {
        switch binding {
        case .everyParameterPositional:
            return kinds.count
        case .varPositionalCollects:
            // `*args` binds a tuple, which the core never launches natively anyway.
            return kinds.contains(.varPositional) ? nil : kinds.count
        case .keywordOnlyEnforced:
            if kinds.contains(.varPositional) || kinds.contains(.varKeyword) { return nil }
            return kinds.firstIndex(of: .keywordOnly) ?? kinds.count
        }
    }
}

@preconcurrency import CPython
import SwiftLaunchCore

/// The Python objects the launch path reads, handed over once by `_native.configure(...)` from
/// the glue (which knows where torch and Triton keep them).
struct Runtime {
    /// `torch.Tensor` and `torch.nn.Parameter`: the tensor types read natively.
    var tensorTypes: [PyPtr] = []
    /// torch dtype objects and their index in `elementTypes` (Triton's own names for them).
    var dtypes: [(object: PyPtr, index: UInt16)] = []
    var elementTypes = ElementTypes(tritonNames: [])
    /// `torch._C._cuda_getDevice`, nil without CUDA.
    var currentDevice: PyPtr?
    /// `torch._C._cuda_getCurrentRawStream`.
    var currentStream: PyPtr?
    /// `triton.knobs.runtime` and `triton.knobs.compilation`.
    var runtimeKnobs: PyPtr?
    var compilationKnobs: PyPtr?
    /// `triton.knobs.HookChain`.
    var hookChainType: PyPtr?
    /// `triton.runtime._allocation._allocator` (a ContextVar) and `NullAllocator`.
    var allocator: PyPtr?
    var nullAllocatorType: PyPtr?
    /// The CUDA driver, or why it could not be loaded.
    var driver: DynamicDriver?
    var driverError: String = "not loaded yet"

    nonisolated(unsafe) static var shared = Runtime()

    /// Strings given as constexpr values or option values, so that keys can name them by number.
    nonisolated(unsafe) static var internedValues: [PyRef] = []

    /// Triton's canonical name of a tensor's dtype, by identity of the torch dtype object.
    @inline(__always)
    func dtypeIndex(_ dtype: PyPtr) -> UInt16? {
        for entry in dtypes where entry.object == dtype { return entry.index }
        return nil
    }

    @inline(__always)
    func isTensor(_ object: PyPtr) -> Bool {
        let type = UnsafeMutableRawPointer(SL_Type(object))
        for tensorType in tensorTypes where UnsafeMutableRawPointer(tensorType) == type { return true }
        return false
    }

    static func intern(_ object: PyPtr) -> UInt32? {
        for (index, known) in internedValues.enumerated() {
            if known.object == object { return UInt32(index) }
            let equal = PyObject_RichCompareBool(known.object, object, Py_EQ)
            if equal < 0 { PyErr_Clear(); return nil }
            if equal == 1 { return UInt32(index) }
        }
        // A program that keeps making new strings should not grow this without bound.
        guard internedValues.count < 4096 else { return nil }
        internedValues.append(PyRef(borrowing: object))
        return UInt32(internedValues.count - 1)
    }
}

/// Why a call went to Triton's own path, counted for `swiftlaunch.stats()`.
struct Stats {
    var hits = 0
    var misses = 0
    var fallbacks: [String: Int] = [:]

    nonisolated(unsafe) static var shared = Stats()

    static func fallback(_ reason: String) {
        shared.fallbacks[reason, default: 0] += 1
    }
}

enum ArgumentReading {
    /// Reads a runtime (non-constexpr) argument; nil when it is of a kind handled only by Triton.
    @inline(__always)
    static func runtimeValue(_ object: PyPtr) -> ArgumentValue? {
        if Runtime.shared.isTensor(object) {
            guard let dtype = PyObject_GetAttr(object, Names.dtype) else { PyErr_Clear(); return nil }
            let index = Runtime.shared.dtypeIndex(dtype)
            SL_DecRef(dtype)
            guard let index else { return nil }
            guard let pointer = callMethodNoArgs(object, Names.dataPtr) else { PyErr_Clear(); return nil }
            let address = PyLong_AsUnsignedLongLong(pointer)
            SL_DecRef(pointer)
            if address == UInt64.max && PyErr_Occurred() != nil { PyErr_Clear(); return nil }
            return .tensor(dtype: index, address: address)
        }
        return scalarValue(object)
    }

    /// Ints, bools, floats and None, the scalars Triton specializes.
    @inline(__always)
    static func scalarValue(_ object: PyPtr) -> ArgumentValue? {
        if object == SL_None() { return .null }
        if object == SL_True() { return .bool(true) }
        if object == SL_False() { return .bool(false) }
        if SL_LongCheck(object) != 0 {
            guard let value = readInteger(object) else { return nil }
            return .integer(value)
        }
        if SL_FloatCheck(object) != 0 {
            let value = PyFloat_AsDouble(object)
            if value == -1 && PyErr_Occurred() != nil { PyErr_Clear(); return nil }
            return .float(value)
        }
        return nil
    }

    /// Reads a value keyed by equality (constexpr parameters and options): scalars and strings.
    static func keyedValue(_ object: PyPtr) -> ArgumentValue? {
        if let scalar = scalarValue(object) {
            // NaN never equals itself, so Triton never finds its kernel again; neither should we.
            if case let .float(d) = scalar, d.isNaN { return nil }
            return scalar
        }
        if SL_UnicodeCheck(object) != 0, let id = Runtime.intern(object) {
            return .interned(id)
        }
        return nil
    }
}

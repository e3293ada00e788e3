@preconcurrency import CPython
import SwiftLaunchCore

enum ArgumentReading {
    /// Reads a runtime (non-constexpr) argument; nil when it is of a kind handled only by Triton.
    /// `anyDevice`: read tensors of every device type (for keys, which launch nothing).
    @inline(__always)
    static func runtimeValue(_ object: PyPtr, _ runtime: Runtime, anyDevice: Bool) -> ArgumentValue? {
        if runtime.isTensor(object) { return runtime.readTensor(object, anyDevice: anyDevice) }
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

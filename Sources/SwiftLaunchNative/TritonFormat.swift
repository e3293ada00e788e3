@preconcurrency import CPython
import SwiftLaunchCore

/// Spec tuples in Triton's own format, `(type, key)`, for the glue's check on a miss and for
/// `_native.specialize`.
enum TritonFormat {
    static func typeName(_ type: ScalarType) -> String {
        switch type {
        case .i1: return "i1"
        case .i8: return "i8"
        case .i16: return "i16"
        case .i32: return "i32"
        case .i64: return "i64"
        case .u1: return "u1"
        case .u8: return "u8"
        case .u16: return "u16"
        case .u32: return "u32"
        case .u64: return "u64"
        case .fp16: return "fp16"
        case .bf16: return "bf16"
        case .fp32: return "fp32"
        case .fp64: return "fp64"
        case let .pointer(dtype, const): return pointerName(dtype, const)
        }
    }

    static func pointerName(_ dtype: UInt16, _ const: Bool) -> String {
        let names = Runtime.shared.elementTypes.tritonNames
        let element = Int(dtype) < names.count ? names[Int(dtype)] : "?"
        return (const ? "*k" : "*") + element
    }

    static func kindName(_ kind: Specialization.Kind) -> String {
        switch kind {
        case let .pointer(dtype, const): return pointerName(dtype, const)
        case .i32: return "i32"
        case .i64: return "i64"
        case .u64: return "u64"
        case .u1: return "u1"
        case .fp32: return "fp32"
        case .constexpr: return "constexpr"
        case let .annotated(type): return typeName(type)
        }
    }

    /// A new `(type, key)` tuple.
    static func tuple(_ spec: Specialization) -> PyPtr? {
        guard let type = pyString(kindName(spec.kind)) else { return nil }
        let key: PyPtr?
        switch spec.key {
        case .none, .constantNone: key = SL_NewRefNone()
        case .divisibleBy16: key = pyString("D")
        case .plain: key = pyString("")
        case .one: key = newInteger(1)
        }
        guard let key else { SL_DecRef(type); return nil }
        return pair(type, key)
    }

    /// Steals both references.
    static func pair(_ first: PyPtr, _ second: PyPtr) -> PyPtr? {
        guard let tuple = PyTuple_New(2) else { SL_DecRef(first); SL_DecRef(second); return nil }
        PyTuple_SetItem(tuple, 0, first)
        PyTuple_SetItem(tuple, 1, second)
        return tuple
    }
}

/// What a compiled kernel takes at one position of Triton's bound arguments.
public enum ParameterSlot: Equatable, Sendable {
    /// A compile-time constant (declared `tl.constexpr`, an int specialized to 1, `None`):
    /// Triton's launcher accepts and drops it.
    case dropped
    case pointer
    case scalar(ScalarType)

    /// Parses one entry of a `CompiledKernel`'s signature; nil for types swiftlaunch does not launch
    /// (tuples, tensor descriptors, TMA descriptors).
    public init?(tritonSignature name: String, elementTypes: ElementTypes) {
        if name == "constexpr" {
            self = .dropped
        } else if name.hasPrefix("*") {
            self = .pointer
        } else if let type = ScalarType(tritonName: name, elementTypes: elementTypes) {
            self = .scalar(type)
        } else {
            return nil
        }
    }
}

/// Why a value cannot be packed the way Triton's launcher would. Every case means "let Triton run
/// this call": it then raises its own error, or (fp16 overflow) launches and raises afterwards.
public enum PackingError: Error, Equatable, Sendable {
    case outOfRange(position: Int)
    case wrongType(position: Int)
}

/// Triton 3.6's argument conversions (`PyArg_ParseTuple` formats of its generated launcher and its
/// `pack_fp16` / `pack_bf16` / `pack_fp32` / `pack_fp64`), one 8-byte slot per kernel parameter.
public enum ParamPacker {
    /// The 8-byte slot for `value` at a parameter of type `slot` (little-endian, so narrower types
    /// read their bytes from the start of the slot). Pointers come back as the host-visible address;
    /// `LaunchRequest` replaces tensor addresses with the driver's device pointer.
    public static func pack(_ value: ArgumentValue, as type: ScalarType, position: Int)
        throws(PackingError) -> UInt64
    {
        switch type {
        case .i1, .i8:
            // Triton 3.6 parses i8 with the unsigned-byte format "b": 0...255, else OverflowError.
            let v = try integer(value, position)
            guard v >= 0 && v <= 255 else { throw .outOfRange(position: position) }
            return UInt64(v)
        case .i16:
            return try signed(value, Int16.self, position)
        case .i32:
            return try signed(value, Int32.self, position)
        case .i64:
            return try signed(value, Int64.self, position)
        case .u1, .u8:
            // "B", "H", "I", "K": masked, never range-checked.
            return UInt64(truncatingIfNeeded: try integer(value, position)) & 0xFF
        case .u16:
            return UInt64(truncatingIfNeeded: try integer(value, position)) & 0xFFFF
        case .u32:
            return UInt64(truncatingIfNeeded: try integer(value, position)) & 0xFFFF_FFFF
        case .u64:
            return UInt64(truncatingIfNeeded: try integer(value, position))
        case .fp16:
            return UInt64(try FloatPacking.fp16(double(value, position), position: position))
        case .bf16:
            return UInt64(FloatPacking.bf16(try double(value, position)))
        case .fp32:
            return UInt64(Float(try double(value, position)).bitPattern)
        case .fp64:
            return try double(value, position).bitPattern
        case .pointer:
            return try pointer(value, position)
        }
    }

    /// `getPointer` of Triton's launcher, before the driver check: ints pass as they are, `None` is 0.
    public static func pointer(_ value: ArgumentValue, _ position: Int) throws(PackingError) -> UInt64 {
        switch value {
        case let .tensor(_, address, _): return address
        case .null: return 0
        case let .bool(b): return b ? 1 : 0
        case let .integer(v):
            guard v >= 0 && v <= Int128(UInt64.max) else { throw .outOfRange(position: position) }
            return UInt64(v)
        case .float, .interned: throw .wrongType(position: position)
        }
    }

    private static func integer(_ value: ArgumentValue, _ position: Int) throws(PackingError) -> Int128 {
        switch value {
        case let .integer(v): return v
        case let .bool(b): return b ? 1 : 0
        default: throw .wrongType(position: position)
        }
    }

    private static func signed<T: FixedWidthInteger & SignedInteger>(
        _ value: ArgumentValue, _: T.Type, _ position: Int
    ) throws(PackingError) -> UInt64 {
        let v = try integer(value, position)
        guard let narrowed = T(exactly: v) else { throw .outOfRange(position: position) }
        return UInt64(truncatingIfNeeded: Int64(narrowed))
    }

    /// `PyArg_ParseTuple`'s "d": floats, and ints converted with correct rounding.
    private static func double(_ value: ArgumentValue, _ position: Int) throws(PackingError) -> Double {
        switch value {
        case let .float(d): return d
        case let .integer(v): return Double(v)
        case let .bool(b): return b ? 1 : 0
        default: throw .wrongType(position: position)
        }
    }
}

public enum FloatPacking {
    /// `PyFloat_Pack2`: round to nearest even; NaN becomes the quiet NaN with its sign; a finite
    /// value too large for half precision is an error (Triton then raises after launching).
    public static func fp16(_ d: Double, position: Int) throws(PackingError) -> UInt16 {
        if d.isNaN {
            return (d.sign == .minus ? 0x8000 : 0) | 0x7E00
        }
        let half = Float16(d)
        if half.isInfinite && !d.isInfinite { throw .outOfRange(position: position) }
        return half.bitPattern
    }

    /// Triton's `pack_bf16`: round to fp32, then keep the upper 16 bits (truncation, not rounding).
    public static func bf16(_ d: Double) -> UInt16 {
        UInt16(truncatingIfNeeded: Float(d).bitPattern >> 16)
    }
}

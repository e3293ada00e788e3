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
/// this call": it then raises its own error, or (3.6's fp16 overflow) launches and raises afterwards.
public enum PackingError: Error, Equatable, Sendable {
    case outOfRange(position: Int)
    case wrongType(position: Int)
}

/// Triton's argument conversions, one 8-byte slot per kernel parameter, as the launcher of the
/// release named by a `TritonRules.ArgumentConversion` does them: 3.6's generated launcher
/// (`PyArg_ParseTuple` formats and its `pack_fp16` / `pack_bf16` / `pack_fp32` / `pack_fp64`), or
/// 3.7+'s extractors in `driver.c` (`extractI8` ... `extractFP64`). Floats convert the same way in both.
public enum ParamPacker {
    /// The 8-byte slot for `value` at a parameter of type `type` (little-endian, so narrower types
    /// read their bytes from the start of the slot; bytes past the width Triton writes are never read).
    /// Pointers come back as the host-visible address; `LaunchRequest` replaces tensor addresses with
    /// the driver's device pointer. A thrown error means Triton raises for this value (or, 3.6 fp16
    /// overflow, launches and then raises): the call must go to Triton.
    @inline(__always)
    public static func pack(_ value: ArgumentValue, as type: ScalarType, position: Int,
                            conversion: TritonRules.ArgumentConversion) throws(PackingError) -> UInt64
    {
        switch conversion {
        case .parseTuple: return try packParseTuple(value, as: type, position: position)
        case .extractors: return try packExtractors(value, as: type, position: position)
        }
    }

    /// 3.6: `PyArg_ParseTuple` with "b" (i1, i8), "h", "i", "L", "B" (u1, u8), "H", "I", "K", "d".
    static func packParseTuple(_ value: ArgumentValue, as type: ScalarType, position: Int)
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
        default:
            return try packFloatOrPointer(value, as: type, position: position)
        }
    }

    /// 3.7+: `*(intN_t *)ptr = PyLong_AsLong(obj)` and friends. The C long is 64 bits, so signed
    /// values must fit in Int64 and unsigned ones in 0...UInt64.max (OverflowError otherwise, and
    /// `launchKernel` stops before launching); within that range they are truncated to the width.
    static func packExtractors(_ value: ArgumentValue, as type: ScalarType, position: Int)
        throws(PackingError) -> UInt64
    {
        switch type {
        case .i8:
            return UInt64(UInt8(truncatingIfNeeded: try signedLong(value, position)))
        case .i16:
            return UInt64(UInt16(truncatingIfNeeded: try signedLong(value, position)))
        case .i1, .i32:
            // "i1" shares the int32 extractor (`.name = {"i1", "i32"}`): four bytes.
            return UInt64(UInt32(truncatingIfNeeded: try signedLong(value, position)))
        case .i64:
            return UInt64(bitPattern: try signedLong(value, position))
        case .u8:
            return UInt64(UInt8(truncatingIfNeeded: try unsignedLong(value, position)))
        case .u16:
            return UInt64(UInt16(truncatingIfNeeded: try unsignedLong(value, position)))
        case .u1, .u32:
            // "u1" shares the uint32 extractor (`.name = {"u1", "u32"}`): four bytes, not masked to one.
            return UInt64(UInt32(truncatingIfNeeded: try unsignedLong(value, position)))
        case .u64:
            return try unsignedLong(value, position)
        default:
            return try packFloatOrPointer(value, as: type, position: position)
        }
    }

    /// Floats (`PyFloat_AsDouble`, then the packing of each width) and pointers: the same in every
    /// release the core knows.
    @inline(__always)
    private static func packFloatOrPointer(_ value: ArgumentValue, as type: ScalarType, position: Int)
        throws(PackingError) -> UInt64
    {
        switch type {
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
        case .i1, .i8, .i16, .i32, .i64, .u1, .u8, .u16, .u32, .u64:
            preconditionFailure("integer types are converted by the caller")
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

    /// `PyLong_AsLong` / `PyLong_AsLongLong` (64-bit): OverflowError outside Int64.
    private static func signedLong(_ value: ArgumentValue, _ position: Int) throws(PackingError) -> Int64 {
        guard let v = Int64(exactly: try integer(value, position)) else { throw .outOfRange(position: position) }
        return v
    }

    /// `PyLong_AsUnsignedLong` / `PyLong_AsUnsignedLongLong` (64-bit): OverflowError for negatives
    /// and values above 2^64-1.
    private static func unsignedLong(_ value: ArgumentValue, _ position: Int) throws(PackingError) -> UInt64 {
        guard let v = UInt64(exactly: try integer(value, position)) else { throw .outOfRange(position: position) }
        return v
    }

    /// `PyArg_ParseTuple`'s "d" (3.6) and `PyFloat_AsDouble` (3.7+): floats, and ints converted with
    /// correct rounding.
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
    /// value too large for half precision is an error (3.6 raises after launching, 3.7+ before).
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

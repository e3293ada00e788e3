import SwiftLaunchCore
import Testing

/// Packs at position 0, or returns the error; Triton 3.6's conversion unless told otherwise (this
/// file's tests are 3.6's; `TritonRulesTests` covers the other releases).
func pack(_ value: ArgumentValue, as type: ScalarType, position: Int = 0,
          conversion: TritonRules.ArgumentConversion = .parseTuple) -> Result<UInt64, PackingError> {
    Result { () throws(PackingError) -> UInt64 in
        try ParamPacker.pack(value, as: type, position: position, conversion: conversion)
    }
}

func packed(_ value: ArgumentValue, as type: ScalarType,
            conversion: TritonRules.ArgumentConversion = .parseTuple) -> UInt64? {
    try? pack(value, as: type, conversion: conversion).get()
}

func fp16(_ d: Double) -> Result<UInt16, PackingError> {
    Result { () throws(PackingError) -> UInt16 in try FloatPacking.fp16(d, position: 0) }
}

@Suite struct ParamPackingTests {
    // MARK: - Signed integers: range-checked

    @Test func i8UsesTritonsUnsignedByteParse() {
        #expect(packed(.integer(0), as: .i8) == 0)
        #expect(packed(.integer(127), as: .i8) == 127)
        #expect(packed(.integer(128), as: .i8).map { UInt8(truncatingIfNeeded: $0) } == 128)
        #expect(packed(.integer(255), as: .i8).map { UInt8(truncatingIfNeeded: $0) } == 255)
        #expect(pack(.integer(-1), as: .i8, position: 2) == .failure(.outOfRange(position: 2)))
        #expect(pack(.integer(-128), as: .i8) == .failure(.outOfRange(position: 0)))
        #expect(pack(.integer(256), as: .i8, position: 5) == .failure(.outOfRange(position: 5)))
    }

    @Test func i1ParsesLikeI8() {
        #expect(packed(.integer(1), as: .i1) == 1)
        #expect(packed(.bool(true), as: .i1) == 1)
        #expect(pack(.integer(-1), as: .i1) == .failure(.outOfRange(position: 0)))
        #expect(pack(.integer(256), as: .i1) == .failure(.outOfRange(position: 0)))
    }

    @Test func i16SignedRange() {
        #expect(packed(.integer(-32768), as: .i16).map { UInt16(truncatingIfNeeded: $0) } == 0x8000)
        #expect(packed(.integer(32767), as: .i16).map { UInt16(truncatingIfNeeded: $0) } == 0x7FFF)
        #expect(packed(.integer(-1), as: .i16).map { UInt16(truncatingIfNeeded: $0) } == 0xFFFF)
        #expect(pack(.integer(-32769), as: .i16, position: 1) == .failure(.outOfRange(position: 1)))
        #expect(pack(.integer(32768), as: .i16, position: 1) == .failure(.outOfRange(position: 1)))
    }

    @Test func i32SignedRange() {
        let low32 = { (v: Int128) in packed(.integer(v), as: .i32).map { UInt32(truncatingIfNeeded: $0) } }
        #expect(low32(Int128(Int32.min)) == 0x8000_0000)
        #expect(low32(Int128(Int32.max)) == 0x7FFF_FFFF)
        #expect(low32(-5) == 0xFFFF_FFFB)
        #expect(low32(123_456) == 123_456)
        #expect(pack(.integer(Int128(Int32.min) - 1), as: .i32) == .failure(.outOfRange(position: 0)))
        #expect(pack(.integer(Int128(Int32.max) + 1), as: .i32) == .failure(.outOfRange(position: 0)))
        #expect(pack(.integer(Int128(UInt32.max)), as: .i32) == .failure(.outOfRange(position: 0)))
    }

    @Test func i64SignedRange() {
        #expect(packed(.integer(Int128(Int64.min)), as: .i64) == 0x8000_0000_0000_0000)
        #expect(packed(.integer(Int128(Int64.max)), as: .i64) == 0x7FFF_FFFF_FFFF_FFFF)
        #expect(packed(.integer(-1), as: .i64) == UInt64.max)
        #expect(pack(.integer(Int128(Int64.min) - 1), as: .i64) == .failure(.outOfRange(position: 0)))
        #expect(pack(.integer(Int128(Int64.max) + 1), as: .i64) == .failure(.outOfRange(position: 0)))
    }

    // MARK: - Unsigned integers: masked, never range-checked

    @Test func u8Masked() {
        let byte = { (v: Int128) in packed(.integer(v), as: .u8).map { UInt8(truncatingIfNeeded: $0) } }
        #expect(byte(-1) == 0xFF)
        #expect(byte(255) == 0xFF)
        #expect(byte(256) == 0)
        #expect(byte(257) == 1)
        #expect(byte(-256) == 0)
        #expect(byte(Int128(1) << 100 | 0x5A) == 0x5A)
    }

    @Test func u1IsAMaskedByte() {
        #expect(packed(.bool(true), as: .u1).map { UInt8(truncatingIfNeeded: $0) } == 1)
        #expect(packed(.bool(false), as: .u1).map { UInt8(truncatingIfNeeded: $0) } == 0)
        #expect(packed(.integer(-1), as: .u1).map { UInt8(truncatingIfNeeded: $0) } == 0xFF)
        #expect(packed(.integer(258), as: .u1).map { UInt8(truncatingIfNeeded: $0) } == 2)
    }

    @Test func u16Masked() {
        let half = { (v: Int128) in packed(.integer(v), as: .u16).map { UInt16(truncatingIfNeeded: $0) } }
        #expect(half(-1) == 0xFFFF)
        #expect(half(65535) == 0xFFFF)
        #expect(half(65536) == 0)
        #expect(half(65537) == 1)
        #expect(half(-32768) == 0x8000)
    }

    @Test func u32Masked() {
        let word = { (v: Int128) in packed(.integer(v), as: .u32).map { UInt32(truncatingIfNeeded: $0) } }
        #expect(word(-1) == 0xFFFF_FFFF)
        #expect(word(Int128(UInt32.max)) == 0xFFFF_FFFF)
        #expect(word(Int128(1) << 32) == 0)
        #expect(word((Int128(1) << 32) + 9) == 9)
    }

    @Test func u64Masked() {
        #expect(packed(.integer(-1), as: .u64) == UInt64.max)
        #expect(packed(.integer(Int128(UInt64.max)), as: .u64) == UInt64.max)
        #expect(packed(.integer(Int128(1) << 64), as: .u64) == 0)
        #expect(packed(.integer((Int128(1) << 64) + 5), as: .u64) == 5)
        #expect(packed(.integer(Int128(Int64.min)), as: .u64) == 0x8000_0000_0000_0000)
    }

    // MARK: - Bools and wrong types

    @Test(arguments: [ScalarType.i8, .i16, .i32, .i64, .u8, .u16, .u32, .u64])
    func boolsPackAsIntegers(type: ScalarType) {
        #expect(packed(.bool(true), as: type).map { UInt8(truncatingIfNeeded: $0) } == 1)
        #expect(packed(.bool(false), as: type).map { UInt8(truncatingIfNeeded: $0) } == 0)
    }

    @Test(arguments: [ScalarType.i1, .i8, .i16, .i32, .i64, .u1, .u8, .u16, .u32, .u64])
    func floatsAndOtherValuesAreRejectedByIntegerSlots(type: ScalarType) {
        #expect(pack(.float(1.0), as: type, position: 3) == .failure(.wrongType(position: 3)))
        #expect(pack(.float(0.0), as: type, position: 4) == .failure(.wrongType(position: 4)))
        #expect(pack(.null, as: type, position: 1) == .failure(.wrongType(position: 1)))
        #expect(pack(.tensor(dtype: 0, address: 0x1000), as: type) == .failure(.wrongType(position: 0)))
        #expect(pack(.interned(1), as: type) == .failure(.wrongType(position: 0)))
    }

    @Test(arguments: [ScalarType.fp16, .bf16, .fp32, .fp64])
    func floatSlotsRejectNonNumbers(type: ScalarType) {
        #expect(pack(.null, as: type, position: 6) == .failure(.wrongType(position: 6)))
        #expect(pack(.tensor(dtype: 0, address: 16), as: type) == .failure(.wrongType(position: 0)))
        #expect(pack(.interned(0), as: type) == .failure(.wrongType(position: 0)))
    }

    // MARK: - fp16 (PyFloat_Pack2)

    @Test func fp16Normals() {
        #expect(fp16(1.0) == .success(0x3C00))
        #expect(fp16(-2.0) == .success(0xC000))
        #expect(fp16(0.5) == .success(0x3800))
        #expect(fp16(0.0) == .success(0x0000))
        #expect(fp16(-0.0) == .success(0x8000))
        #expect(fp16(0x1p-14) == .success(0x0400))  // smallest normal
    }

    @Test func fp16LargestFiniteAndOverflow() {
        #expect(fp16(65504) == .success(0x7BFF))
        #expect(fp16(-65504) == .success(0xFBFF))
        #expect(fp16(65519.99) == .success(0x7BFF))  // rounds down to the largest finite
        #expect(fp16(65520) == .failure(.outOfRange(position: 0)))  // rounds up to infinity
        #expect(fp16(-65520) == .failure(.outOfRange(position: 0)))
        #expect(fp16(1e300) == .failure(.outOfRange(position: 0)))
        #expect(Result { () throws(PackingError) -> UInt16 in try FloatPacking.fp16(70000, position: 9) }
            == .failure(.outOfRange(position: 9)))
        #expect(pack(.float(65520), as: .fp16, position: 2) == .failure(.outOfRange(position: 2)))
        #expect(pack(.integer(65520), as: .fp16, position: 2) == .failure(.outOfRange(position: 2)))
    }

    @Test func fp16InfinitiesAndNaN() {
        #expect(fp16(.infinity) == .success(0x7C00))
        #expect(fp16(-.infinity) == .success(0xFC00))
        #expect(fp16(.nan) == .success(0x7E00))
        #expect(fp16(-Double.nan) == .success(0xFE00))
        #expect(fp16(Double(nan: 0x1234, signaling: false)) == .success(0x7E00))
    }

    @Test func fp16RoundsToNearestEven() {
        #expect(fp16(1 + 0x1p-11) == .success(0x3C00))  // tie: down to even
        #expect(fp16(1 + 3 * 0x1p-11) == .success(0x3C02))  // tie: up to even
        // Just above the tie: rounding straight from double gives 0x3C01; rounding through fp32 first
        // would lose the 2^-40 and give 0x3C00.
        #expect(fp16(1 + 0x1p-11 + 0x1p-40) == .success(0x3C01))
    }

    @Test func fp16Subnormals() {
        #expect(fp16(0x1p-24) == .success(0x0001))  // smallest subnormal
        #expect(fp16(1023 * 0x1p-24) == .success(0x03FF))  // largest subnormal
        #expect(fp16(0x1p-25) == .success(0x0000))  // half the smallest: tie to even 0
        #expect(fp16(-0x1p-25) == .success(0x8000))
        #expect(fp16(0x1p-25 + 0x1p-60) == .success(0x0001))  // just above the tie
        #expect(fp16(0.75 * 0x1p-24) == .success(0x0001))
        #expect(fp16(1.5 * 0x1p-24) == .success(0x0002))  // tie: up to even
        #expect(fp16(2.5 * 0x1p-24) == .success(0x0002))  // tie: down to even
        #expect(fp16(0x1p-26) == .success(0x0000))
        #expect(fp16(-0x1p-24) == .success(0x8001))
    }

    @Test func fp16ThroughThePacker() {
        #expect(packed(.float(1.0), as: .fp16) == 0x3C00)
        #expect(packed(.integer(2), as: .fp16) == 0x4000)
        #expect(packed(.bool(true), as: .fp16) == 0x3C00)
    }

    // MARK: - bf16: round to fp32, then truncate

    @Test func bf16Truncates() {
        #expect(FloatPacking.bf16(1.0) == 0x3F80)
        #expect(FloatPacking.bf16(Double(Float(bitPattern: 0x3F81_0000))) == 0x3F81)
        #expect(Double(Float(bitPattern: 0x3F81_0000)) == 1.0078125)
        // Upper half of 0x3F80FFFF: a rounding conversion would give 0x3F81.
        #expect(FloatPacking.bf16(Double(Float(bitPattern: 0x3F80_FFFF))) == 0x3F80)
        #expect(FloatPacking.bf16(-2.0) == 0xC000)
        #expect(FloatPacking.bf16(.infinity) == 0x7F80)
        #expect(FloatPacking.bf16(-0.0) == 0x8000)
    }

    @Test func bf16RoundsToFp32First() {
        // Just below 1.0078125 by less than half an fp32 ulp: fp32 rounding lands on 0x3F810000.
        #expect(FloatPacking.bf16(1.0078125 - 0x1p-30) == 0x3F81)
    }

    @Test func bf16ThroughThePacker() {
        #expect(packed(.float(1.0), as: .bf16) == 0x3F80)
        #expect(packed(.integer(-2), as: .bf16) == 0xC000)
    }

    // MARK: - fp32 and fp64

    @Test func fp32IsTheFloatConversion() {
        #expect(packed(.float(0.1), as: .fp32) == UInt64(Float(0.1).bitPattern))
        #expect(packed(.float(0.1), as: .fp32) == 0x3DCC_CCCD)
        #expect(packed(.float(-1.5), as: .fp32) == UInt64(Float(-1.5).bitPattern))
        #expect(packed(.integer(16_777_217), as: .fp32) == UInt64(Float(16_777_216).bitPattern))
        #expect(packed(.bool(true), as: .fp32) == UInt64(Float(1).bitPattern))
        #expect(packed(.float(1e300), as: .fp32) == UInt64(Float.infinity.bitPattern))
    }

    @Test func fp64IsTheRawBits() {
        #expect(packed(.float(0.1), as: .fp64) == Double(0.1).bitPattern)
        #expect(packed(.float(-0.0), as: .fp64) == 0x8000_0000_0000_0000)
        #expect(packed(.float(.infinity), as: .fp64) == Double.infinity.bitPattern)
        let nan = Double(nan: 0x1234, signaling: false)
        #expect(packed(.float(nan), as: .fp64) == nan.bitPattern)
        #expect(packed(.integer(3), as: .fp64) == Double(3).bitPattern)
    }

    @Test func integersConvertToDoubleWithCorrectRounding() {
        // 2^53 + 1 is a tie: rounds to even 2^53.
        #expect(packed(.integer((Int128(1) << 53) + 1), as: .fp64) == (0x1p53 as Double).bitPattern)
        #expect(packed(.integer((Int128(1) << 53) + 3), as: .fp64) == (0x1p53 + 4 as Double).bitPattern)
        // Beyond 64 bits: 2^64 + 2^11 + 1 is just above half an ulp (2^12) past 2^64.
        #expect(packed(.integer((Int128(1) << 64) + (1 << 11) + 1), as: .fp64)
            == (0x1p64 + 0x1p12 as Double).bitPattern)
    }

    // MARK: - Pointers

    @Test func pointers() {
        let type = ScalarType.pointer(dtype: 0, const: false)
        #expect(packed(.tensor(dtype: 0, address: 0x7F12_3456_7890), as: type) == 0x7F12_3456_7890)
        #expect(packed(.null, as: type) == 0)
        #expect(packed(.integer(0x1000), as: type) == 0x1000)
        #expect(packed(.integer(0), as: type) == 0)
        #expect(packed(.integer(Int128(UInt64.max)), as: type) == UInt64.max)
        #expect(pack(.integer(-1), as: type, position: 4) == .failure(.outOfRange(position: 4)))
        #expect(pack(.integer(Int128(1) << 64), as: type) == .failure(.outOfRange(position: 0)))
        #expect(pack(.float(4096), as: type, position: 2) == .failure(.wrongType(position: 2)))
        #expect(pack(.interned(0), as: type) == .failure(.wrongType(position: 0)))
    }

    @Test func pointerHelperMatchesPack() {
        let r = Result { () throws(PackingError) -> UInt64 in
            try ParamPacker.pointer(.tensor(dtype: 3, address: 0xABC0), 0)
        }
        #expect(r == .success(0xABC0))
        let bad = Result { () throws(PackingError) -> UInt64 in try ParamPacker.pointer(.integer(-16), 7) }
        #expect(bad == .failure(.outOfRange(position: 7)))
    }

    // MARK: - Signature parsing

    @Test func parameterSlotsFromSignature() {
        let types = ElementTypes(tritonNames: ["fp32", "fp16"])
        #expect(ParameterSlot(tritonSignature: "constexpr", elementTypes: types) == .dropped)
        #expect(ParameterSlot(tritonSignature: "*fp32", elementTypes: types) == .pointer)
        #expect(ParameterSlot(tritonSignature: "*kfp16", elementTypes: types) == .pointer)
        #expect(ParameterSlot(tritonSignature: "i32", elementTypes: types) == .scalar(.i32))
        #expect(ParameterSlot(tritonSignature: "fp16", elementTypes: types) == .scalar(.fp16))
        #expect(ParameterSlot(tritonSignature: "u1", elementTypes: types) == .scalar(.u1))
        #expect(ParameterSlot(tritonSignature: "nvTmaDesc", elementTypes: types) == nil)
        #expect(ParameterSlot(tritonSignature: "tensordesc<fp32[16, 16]>", elementTypes: types) == nil)
        #expect(ParameterSlot(tritonSignature: "[i32,i32]", elementTypes: types) == nil)
    }
}

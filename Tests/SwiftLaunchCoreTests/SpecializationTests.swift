import SwiftLaunchCore
import Testing

/// Triton 3.6's `native_specialize_impl` and binder, as verified against the real wheels.
@Suite struct SpecializationTests {
    static let elementTypes = ElementTypes(tritonNames: ["fp32", "fp16", "bf16", "i32", "fp8e4nv"])
    static let fp32 = elementTypes.index(ofTritonName: "fp32")!
    static let fp16 = elementTypes.index(ofTritonName: "fp16")!

    /// `specialize=True, align=True`, not const: the default for an unannotated parameter.
    static func plain(_ value: ArgumentValue) throws(SpecializationError) -> Specialization {
        try Specialization.of(value, isConst: false, specialize: true, align: true)
    }

    static func spec(_ kind: Specialization.Kind, _ key: Specialization.Key) -> Specialization {
        Specialization(kind: kind, key: key)
    }

    // MARK: - Tensors

    @Test func alignedTensorIsPointerWithD() throws {
        let s = try Self.plain(.tensor(dtype: Self.fp32, address: 0x7F00_0000_1000))
        #expect(s == Self.spec(.pointer(dtype: Self.fp32, const: false), .divisibleBy16))
    }

    @Test(arguments: [UInt64(0x7F00_0000_1001), 0x7F00_0000_1008, 0x7F00_0000_100F, 4])
    func misalignedTensorIsPlain(address: UInt64) throws {
        let s = try Self.plain(.tensor(dtype: Self.fp32, address: address))
        #expect(s == Self.spec(.pointer(dtype: Self.fp32, const: false), .plain))
    }

    @Test func nullTensorCountsAsAligned() throws {
        let s = try Self.plain(.tensor(dtype: Self.fp16, address: 0))
        #expect(s == Self.spec(.pointer(dtype: Self.fp16, const: false), .divisibleBy16))
    }

    @Test func tensorKeepsItsDtype() throws {
        let a = try Self.plain(.tensor(dtype: Self.fp32, address: 0x1000))
        let b = try Self.plain(.tensor(dtype: Self.fp16, address: 0x1000))
        #expect(a != b)
        #expect(b.kind == .pointer(dtype: Self.fp16, const: false))
    }

    @Test func constTensorNotSpecializedIsConstPointerWithNoKey() throws {
        let s = try Specialization.of(.tensor(dtype: Self.fp32, address: 0x1000), isConst: true,
                                      specialize: false, align: true)
        #expect(s == Self.spec(.pointer(dtype: Self.fp32, const: true), .none))
    }

    @Test func constTensorSpecializedKeepsConstAndKey() throws {
        let s = try Specialization.of(.tensor(dtype: Self.fp32, address: 0x1000), isConst: true,
                                      specialize: true, align: true)
        #expect(s == Self.spec(.pointer(dtype: Self.fp32, const: true), .divisibleBy16))
    }

    @Test func tensorWithoutAlignIsPlainEvenWhenAligned() throws {
        let s = try Specialization.of(.tensor(dtype: Self.fp32, address: 0x1000), isConst: false,
                                      specialize: true, align: false)
        #expect(s == Self.spec(.pointer(dtype: Self.fp32, const: false), .plain))
    }

    // MARK: - Integers

    @Test func oneIsConstexprWhenSpecialized() throws {
        #expect(try Self.plain(.integer(1)) == Self.spec(.constexpr, .one))
        // Alignment off does not stop the 1-specialization.
        #expect(try Specialization.of(.integer(1), isConst: false, specialize: true, align: false)
            == Self.spec(.constexpr, .one))
    }

    @Test func oneIsI32WithNoKeyWhenNotSpecialized() throws {
        let s = try Specialization.of(.integer(1), isConst: false, specialize: false, align: true)
        #expect(s == Self.spec(.i32, .none))
    }

    @Test func integersNotSpecializedHaveNoKeyButKeepTheirType() throws {
        let noSpec = { (v: Int128) throws(SpecializationError) -> Specialization in
            try Specialization.of(.integer(v), isConst: false, specialize: false, align: true)
        }
        #expect(try noSpec(16) == Self.spec(.i32, .none))
        #expect(try noSpec(1 << 31) == Self.spec(.i64, .none))
        #expect(try noSpec(1 << 63) == Self.spec(.u64, .none))
        #expect(throws: SpecializationError.integerTooLarge) { try noSpec(1 << 64) }
    }

    @Test func zeroAndSmallIntegers() throws {
        #expect(try Self.plain(.integer(0)) == Self.spec(.i32, .divisibleBy16))
        #expect(try Self.plain(.integer(2)) == Self.spec(.i32, .plain))
        #expect(try Self.plain(.integer(-1)) == Self.spec(.i32, .plain))
        #expect(try Self.plain(.integer(17)) == Self.spec(.i32, .plain))
        #expect(try Self.plain(.integer(-17)) == Self.spec(.i32, .plain))
        #expect(try Self.plain(.integer(48)) == Self.spec(.i32, .divisibleBy16))
    }

    @Test func sixteenAndMinusSixteenAreDivisible() throws {
        #expect(try Self.plain(.integer(16)) == Self.spec(.i32, .divisibleBy16))
        #expect(try Self.plain(.integer(-16)) == Self.spec(.i32, .divisibleBy16))
    }

    @Test func integerRangeBoundaries() throws {
        let i32Max = Int128(Int32.max), i32Min = Int128(Int32.min)
        let i64Max = Int128(Int64.max), i64Min = Int128(Int64.min)
        let u64Max = Int128(UInt64.max)
        #expect(try Self.plain(.integer(i32Max)) == Self.spec(.i32, .plain))
        #expect(try Self.plain(.integer(i32Max + 1)) == Self.spec(.i64, .divisibleBy16))
        #expect(try Self.plain(.integer(i32Min)) == Self.spec(.i32, .divisibleBy16))
        #expect(try Self.plain(.integer(i32Min - 1)) == Self.spec(.i64, .plain))
        #expect(try Self.plain(.integer(i64Max)) == Self.spec(.i64, .plain))
        #expect(try Self.plain(.integer(i64Min)) == Self.spec(.i64, .divisibleBy16))
        #expect(try Self.plain(.integer(i64Max + 1)) == Self.spec(.u64, .divisibleBy16))
        #expect(try Self.plain(.integer(u64Max)) == Self.spec(.u64, .plain))
        #expect(try Self.plain(.integer(u64Max - 15)) == Self.spec(.u64, .divisibleBy16))
    }

    @Test(arguments: [Int128(1) << 64, (Int128(1) << 64) + 16, -(Int128(1) << 63) - 1,
                      -(Int128(1) << 64), Int128.max, Int128.min])
    func integersOutsideU64AndI64Throw(value: Int128) {
        #expect(throws: SpecializationError.integerTooLarge) { try Self.plain(.integer(value)) }
    }

    @Test func alignOffGivesPlainKeyForIntegers() throws {
        let noAlign = { (v: Int128) throws(SpecializationError) -> Specialization in
            try Specialization.of(.integer(v), isConst: false, specialize: true, align: false)
        }
        #expect(try noAlign(16) == Self.spec(.i32, .plain))
        #expect(try noAlign(0) == Self.spec(.i32, .plain))
        #expect(try noAlign(1 << 32) == Self.spec(.i64, .plain))
        #expect(try noAlign(1 << 63) == Self.spec(.u64, .plain))
    }

    // MARK: - Other scalars

    @Test func boolIsU1WithNoKey() throws {
        #expect(try Self.plain(.bool(true)) == Self.spec(.u1, .none))
        #expect(try Self.plain(.bool(false)) == Self.spec(.u1, .none))
        // A bool is not the integer 1, even though Python's True == 1.
        #expect(try Specialization.of(.bool(true), isConst: false, specialize: false, align: false)
            == Self.spec(.u1, .none))
    }

    @Test func floatIsFp32WithNoKey() throws {
        #expect(try Self.plain(.float(1.0)) == Self.spec(.fp32, .none))
        #expect(try Self.plain(.float(16.0)) == Self.spec(.fp32, .none))
        #expect(try Self.plain(.float(.nan)) == Self.spec(.fp32, .none))
    }

    @Test func noneIsConstexprNone() throws {
        #expect(try Self.plain(.null) == Self.spec(.constexpr, .constantNone))
        #expect(try Specialization.of(.null, isConst: true, specialize: false, align: false)
            == Self.spec(.constexpr, .constantNone))
    }

    @Test func internedValuesAreNotSpecializable() {
        #expect(throws: SpecializationError.notSpecializable) { try Self.plain(.interned(3)) }
    }

    // MARK: - forParameter

    @Test func unannotatedParameterMatchesOf() throws {
        let traits = ParameterTraits()
        #expect(try Specialization.forParameter(.integer(1), traits: traits) == Self.spec(.constexpr, .one))
        #expect(try Specialization.forParameter(.integer(32), traits: traits) == Self.spec(.i32, .divisibleBy16))
        let noSpec = ParameterTraits(specialize: false)
        #expect(try Specialization.forParameter(.integer(1), traits: noSpec) == Self.spec(.i32, .none))
        let noAlign = ParameterTraits(alignment: false)
        #expect(try Specialization.forParameter(.tensor(dtype: Self.fp32, address: 0x100), traits: noAlign)
            == Self.spec(.pointer(dtype: Self.fp32, const: false), .plain))
        let constPointer = ParameterTraits(isConst: true, specialize: false)
        #expect(try Specialization.forParameter(.tensor(dtype: Self.fp32, address: 0x100), traits: constPointer)
            == Self.spec(.pointer(dtype: Self.fp32, const: true), .none))
    }

    @Test(arguments: [ScalarType.fp16, .bf16, .u1, .fp32, .fp64])
    func boolAndFloatAnnotationsHaveNoKeyWhateverTheValue(annotation: ScalarType) throws {
        let traits = ParameterTraits(annotation: annotation)
        let values: [ArgumentValue] = [.integer(1), .integer(16), .integer(17), .float(2.5), .bool(true),
                                       .null, .integer(Int128(1) << 64)]
        for value in values {
            // Triton's binder never calls specialize_impl for these, so even a value that would
            // overflow there does not raise.
            #expect(try Specialization.forParameter(value, traits: traits)
                == Self.spec(.annotated(annotation), .none), "value \(value)")
        }
    }

    @Test func i32AnnotationWithOneStaysRuntimeWithKeyOne() throws {
        let traits = ParameterTraits(annotation: .i32)
        let s = try Specialization.forParameter(.integer(1), traits: traits)
        #expect(s == Self.spec(.annotated(.i32), .one))
        #expect(s.kind != .constexpr)
    }

    @Test func i32AnnotationKeepsDivisibilityKey() throws {
        let traits = ParameterTraits(annotation: .i32)
        #expect(try Specialization.forParameter(.integer(16), traits: traits)
            == Self.spec(.annotated(.i32), .divisibleBy16))
        #expect(try Specialization.forParameter(.integer(17), traits: traits)
            == Self.spec(.annotated(.i32), .plain))
        // The annotation wins over the range-derived type; only the key survives.
        #expect(try Specialization.forParameter(.integer(Int128(1) << 40), traits: traits)
            == Self.spec(.annotated(.i32), .divisibleBy16))
    }

    @Test func doNotSpecializeWithI32AnnotationHasNoKey() throws {
        let traits = ParameterTraits(specialize: false, annotation: .i32)
        #expect(try Specialization.forParameter(.integer(16), traits: traits) == Self.spec(.annotated(.i32), .none))
        #expect(try Specialization.forParameter(.integer(1), traits: traits) == Self.spec(.annotated(.i32), .none))
    }

    @Test func i32AnnotationWithNoneHasNoKey() throws {
        // `("i32",) + ("constexpr", None)[1:]` is `("i32", None)`.
        let traits = ParameterTraits(annotation: .i32)
        #expect(try Specialization.forParameter(.null, traits: traits) == Self.spec(.annotated(.i32), .none))
    }

    @Test func i64AnnotationStillRejectsOversizedIntegers() {
        let traits = ParameterTraits(annotation: .i64)
        #expect(throws: SpecializationError.integerTooLarge) {
            try Specialization.forParameter(.integer(Int128(1) << 64), traits: traits)
        }
    }

    @Test func pointerAnnotationKeepsAlignmentKey() throws {
        let annotation = ScalarType.pointer(dtype: Self.fp16, const: false)
        let traits = ParameterTraits(annotation: annotation)
        #expect(try Specialization.forParameter(.tensor(dtype: Self.fp16, address: 0x2000), traits: traits)
            == Self.spec(.annotated(annotation), .divisibleBy16))
        #expect(try Specialization.forParameter(.tensor(dtype: Self.fp16, address: 0x2002), traits: traits)
            == Self.spec(.annotated(annotation), .plain))
    }

    // MARK: - Type names

    @Test func tritonTypeNamesParse() {
        let types = Self.elementTypes
        #expect(ScalarType(tritonName: "i32", elementTypes: types) == .i32)
        #expect(ScalarType(tritonName: "u64", elementTypes: types) == .u64)
        #expect(ScalarType(tritonName: "bf16", elementTypes: types) == .bf16)
        #expect(ScalarType(tritonName: "fp32", elementTypes: types) == .fp32)
        #expect(ScalarType(tritonName: "*fp16", elementTypes: types) == .pointer(dtype: Self.fp16, const: false))
        #expect(ScalarType(tritonName: "*kfp32", elementTypes: types) == .pointer(dtype: Self.fp32, const: true))
        #expect(ScalarType(tritonName: "*fp8e4nv", elementTypes: types)
            == .pointer(dtype: types.index(ofTritonName: "fp8e4nv")!, const: false))
        #expect(ScalarType(tritonName: "*fp8e5", elementTypes: types) == nil)
        #expect(ScalarType(tritonName: "constexpr", elementTypes: types) == nil)
        #expect(ScalarType(tritonName: "i128", elementTypes: types) == nil)
    }

    @Test func elementTypesIntern() {
        var types = ElementTypes(tritonNames: ["fp32"])
        #expect(types.intern("fp32") == 0)
        #expect(types.intern("bf16") == 1)
        #expect(types.intern("bf16") == 1)
        #expect(types.tritonNames == ["fp32", "bf16"])
        #expect(types.index(ofTritonName: "fp16") == nil)
    }
}

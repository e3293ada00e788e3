import SwiftLaunchCore
import Testing

/// The per-release rules (`TritonRules`): the table itself, each release's argument conversion, the
/// oversized-shared-memory attribute, the attribute budget, argument binding and error text. The
/// expected values are read from the wheels' `driver.c` (3.7+: `extractI8` ... `extractU64`, the
/// extractor table's names and sizes) and generated launcher (3.6: `format_of`); the pytest suite
/// `tests/test_launcher_parity.py` runs Triton's own launcher code against a stand-in driver for the same.
@Suite struct TritonRulesTests {
    // MARK: - The table

    @Test func eachReleaseHasItsRules() {
        #expect(TritonRules.forTriton(major: 3, minor: 6) == .triton3_6)
        #expect(TritonRules.forTriton(major: 3, minor: 7) == .triton3_7)
        #expect(TritonRules.forTriton(major: 3, minor: 8) == .triton3_8)
        #expect(TritonRules.forTriton(major: 3, minor: 9) == .triton3_9)
        for (major, minor) in [(3, 4), (3, 5), (3, 10), (4, 0), (2, 6)] {
            #expect(TritonRules.forTriton(major: major, minor: minor) == nil)
        }
        #expect(TritonRules.all.map(\.family) == ["3.6", "3.7", "3.8", "3.9"])
    }

    @Test func whatChangesWhere() {
        #expect(TritonRules.all.map(\.conversion) == [.parseTuple, .extractors, .extractors, .extractors])
        #expect(TritonRules.all.map(\.binding)
            == [.everyParameterPositional, .everyParameterPositional, .varPositionalCollects, .keywordOnlyEnforced])
        #expect(TritonRules.all.map(\.oversizedSharedMemoryAbove) == [nil, nil, 228 * 1024, 228 * 1024])
        #expect(TritonRules.all.map(\.fpsanKnobInKey) == [false, false, false, true])
        #expect(TritonRules.all.map(\.pointerErrorNamesPosition) == [true, false, false, false])
    }

    @Test func pointerErrorText() {
        #expect(TritonRules.triton3_6.pointerNotAccessibleMessage(position: 3)
            == "Pointer argument (at 3) cannot be accessed from Triton (cpu tensor?)")
        for rules in [TritonRules.triton3_7, .triton3_8, .triton3_9] {
            #expect(rules.pointerNotAccessibleMessage(position: 3)
                == "Pointer argument cannot be accessed from Triton (cpu tensor?)")
        }
    }

    // MARK: - 3.7+ integer extractors

    static func extracted(_ value: ArgumentValue, _ type: ScalarType) -> UInt64? {
        packed(value, as: type, conversion: .extractors)
    }

    static func extractError(_ value: ArgumentValue, _ type: ScalarType, position: Int = 0) -> PackingError? {
        if case let .failure(error) = pack(value, as: type, position: position, conversion: .extractors) { return error }
        return nil
    }

    @Test func signedNarrowTypesAreTruncatedNotRejected() {
        // `*((int8_t *)ptr) = PyLong_AsLong(obj)`: any C long, truncated (two's complement).
        #expect(Self.extracted(.integer(300), .i8) == 44)
        #expect(Self.extracted(.integer(-1), .i8) == 0xFF)
        #expect(Self.extracted(.integer(-128), .i8) == 0x80)
        #expect(Self.extracted(.integer(127), .i8) == 0x7F)
        #expect(Self.extracted(.integer(256), .i8) == 0)
        #expect(Self.extracted(.integer(70000), .i16) == 70000 & 0xFFFF)
        #expect(Self.extracted(.integer(-1), .i16) == 0xFFFF)
        #expect(Self.extracted(.integer(Int128(UInt32.max)), .i32) == 0xFFFF_FFFF)
        #expect(Self.extracted(.integer(Int128(Int32.max) + 1), .i32) == 0x8000_0000)
        #expect(Self.extracted(.integer(-5), .i32) == 0xFFFF_FFFB)
        #expect(Self.extracted(.integer(Int128(Int64.max)), .i32) == 0xFFFF_FFFF)
        #expect(Self.extracted(.integer(Int128(Int64.min)), .i8) == 0)
    }

    @Test func signedValuesOutsideACLongRaise() {
        for type in [ScalarType.i1, .i8, .i16, .i32, .i64] {
            #expect(Self.extractError(.integer(Int128(Int64.max) + 1), type, position: 2) == .outOfRange(position: 2))
            #expect(Self.extractError(.integer(Int128(Int64.min) - 1), type, position: 2) == .outOfRange(position: 2))
            #expect(Self.extractError(.integer(Int128(1) << 100), type) == .outOfRange(position: 0))
        }
    }

    @Test func i64IsTheLongLong() {
        #expect(Self.extracted(.integer(-1), .i64) == UInt64.max)
        #expect(Self.extracted(.integer(Int128(Int64.min)), .i64) == 0x8000_0000_0000_0000)
        #expect(Self.extracted(.integer(Int128(Int64.max)), .i64) == 0x7FFF_FFFF_FFFF_FFFF)
    }

    @Test func i1IsReadAs32Bits() {
        // "i1" is a name of the int32 extractor: four bytes of the truncated C long.
        #expect(Self.extracted(.bool(true), .i1) == 1)
        #expect(Self.extracted(.integer(2), .i1) == 2)
        #expect(Self.extracted(.integer(-1), .i1) == 0xFFFF_FFFF)
        #expect(Self.extracted(.integer(256), .i1) == 256)
        #expect(Self.extracted(.integer(Int128(1) << 32 | 7), .i1) == 7)
    }

    @Test func unsignedNegativesRaiseInsteadOfBeingMasked() {
        // `PyLong_AsUnsignedLong(-1)` raises OverflowError: the core must step aside, never launch a
        // masked value (3.6 masked it).
        for type in [ScalarType.u1, .u8, .u16, .u32, .u64] {
            #expect(Self.extractError(.integer(-1), type, position: 4) == .outOfRange(position: 4))
            #expect(Self.extractError(.integer(Int128(Int64.min)), type) == .outOfRange(position: 0))
            #expect(Self.extractError(.integer(Int128(UInt64.max) + 1), type) == .outOfRange(position: 0))
            #expect(packed(.integer(-1), as: type, conversion: .parseTuple) != nil)  // 3.6: masked
        }
    }

    @Test func unsignedValuesAreTruncatedWithinAnUnsignedLong() {
        #expect(Self.extracted(.integer(256), .u8) == 0)
        #expect(Self.extracted(.integer(257), .u8) == 1)
        #expect(Self.extracted(.integer(65537), .u16) == 1)
        #expect(Self.extracted(.integer(Int128(1) << 32 | 9), .u32) == 9)
        #expect(Self.extracted(.integer(Int128(UInt64.max)), .u32) == 0xFFFF_FFFF)
        #expect(Self.extracted(.integer(Int128(UInt64.max)), .u64) == UInt64.max)
        #expect(Self.extracted(.integer(0), .u64) == 0)
    }

    @Test func u1IsReadAs32BitsUnmasked() {
        // "u1" is a name of the uint32 extractor: 258 stays 258 (3.6's "B" made it 2).
        #expect(Self.extracted(.integer(258), .u1) == 258)
        #expect(packed(.integer(258), as: .u1, conversion: .parseTuple) == 2)
        #expect(Self.extracted(.bool(true), .u1) == 1)
        #expect(Self.extracted(.bool(false), .u1) == 0)
        #expect(Self.extracted(.integer(Int128(1) << 32), .u1) == 0)
    }

    @Test(arguments: [ScalarType.i1, .i8, .i16, .i32, .i64, .u1, .u8, .u16, .u32, .u64])
    func integerSlotsTakeBoolsAndRejectEverythingElse(type: ScalarType) {
        #expect(Self.extracted(.bool(true), type) == 1)
        #expect(Self.extracted(.bool(false), type) == 0)
        #expect(Self.extractError(.float(1.0), type, position: 3) == .wrongType(position: 3))
        #expect(Self.extractError(.null, type) == .wrongType(position: 0))
        #expect(Self.extractError(.tensor(dtype: 0, address: 16), type) == .wrongType(position: 0))
        #expect(Self.extractError(.interned(0), type) == .wrongType(position: 0))
    }

    // MARK: - What every release converts alike

    static let floatSamples: [Double] = [
        0, -0.0, 1, -2.5, 0.1, 65504, 65519.99, 65520, -65520, 1e300, -1e-300, .infinity, -.infinity, .nan,
        -Double.nan, 0x1p-24, 0x1p-25, 1 + 0x1p-11, 1.0078125 - 0x1p-30, 16_777_217, 3.4028235e38, 3.5e38,
    ]

    @Test(arguments: [ScalarType.fp16, .bf16, .fp32, .fp64])
    func floatsConvertAlikeInEveryRelease(type: ScalarType) {
        let values = Self.floatSamples.map { ArgumentValue.float($0) }
            + [.integer(3), .integer(-65520), .integer(Int128(1) << 70), .bool(true), .null]
        for value in values {
            #expect(pack(value, as: type, conversion: .parseTuple) == pack(value, as: type, conversion: .extractors),
                    "\(value) as \(type)")
        }
        // fp16 overflow goes to Triton in both (3.6 launches, then raises; 3.7+ raises first).
        #expect(Self.extractError(.float(65520), .fp16) == .outOfRange(position: 0))
    }

    @Test func pointersConvertAlikeInEveryRelease() {
        let type = ScalarType.pointer(dtype: 0, const: false)
        let values: [ArgumentValue] = [
            .tensor(dtype: 0, address: 0x7F00_0000_1000), .null, .bool(true), .integer(0x1000),
            .integer(Int128(UInt64.max)), .integer(-1), .integer(Int128(1) << 64), .float(4096), .interned(0),
        ]
        for value in values {
            #expect(pack(value, as: type, conversion: .parseTuple) == pack(value, as: type, conversion: .extractors))
        }
    }

    @Test(arguments: [ScalarType.i8, .i16, .i32, .i64, .u8, .u16, .u32, .u64])
    func inRangeValuesAgreeOnTheBytesTheKernelReads(type: ScalarType) {
        // Where 3.6 accepts a value, 3.7+ writes the same low bytes (3.6 sign-extends past them).
        let width: [ScalarType: Int] = [.i8: 8, .i16: 16, .i32: 32, .i64: 64, .u8: 8, .u16: 16, .u32: 32, .u64: 64]
        let bits = width[type]!
        let mask: UInt64 = bits == 64 ? .max : (1 << UInt64(bits)) - 1
        let samples: [Int128] = [0, 1, 2, 15, 16, 17, 100, 127, 128, 255, 32767, 65535, 1 << 31, (1 << 32) - 1,
                                 Int128(Int64.max)]
        for v in samples + samples.map({ -$0 }) {
            guard let old = packed(.integer(v), as: type, conversion: .parseTuple) else { continue }
            if v < 0 && [ScalarType.u8, .u16, .u32, .u64].contains(type) {
                #expect(Self.extractError(.integer(v), type) == .outOfRange(position: 0))
                continue
            }
            #expect(Self.extracted(.integer(v), type).map { $0 & mask } == old & mask, "\(v) as \(type)")
        }
    }

    // MARK: - Launch configuration

    static func kernel(shared: UInt32, rules: TritonRules, pdl: Bool = false, cooperative: Bool = false,
                       numCTAs: UInt32 = 1, slots: [ParameterSlot] = [.scalar(.i32)]) -> CompiledLaunch {
        CompiledLaunch(function: 0xF00D, numWarps: 4, numCTAs: numCTAs, sharedMemory: shared, cooperative: cooperative,
                       pdl: pdl, slots: slots, rules: rules)
    }

    @Test(arguments: TritonRules.all)
    func oversizedSharedMemoryFrom3_8AboveExactly228KiB(rules: TritonRules) throws {
        let newer = rules.family == "3.8" || rules.family == "3.9"
        #expect(!Self.kernel(shared: 228 * 1024, rules: rules).oversizedSharedMemory)
        #expect(Self.kernel(shared: 228 * 1024 + 1, rules: rules).oversizedSharedMemory == newer)
        #expect(Self.kernel(shared: 256 * 1024, rules: rules).oversizedSharedMemory == newer)
        #expect(!Self.kernel(shared: 0, rules: rules).oversizedSharedMemory)
        let driver = RecordingDriver()
        try Self.kernel(shared: 232 * 1024, rules: rules).launch([.integer(5)], driver: driver)
        #expect(driver.launches.map(\.config.oversizedSharedMemory) == [newer])
        #expect(driver.launches.map(\.config.sharedMemory) == [232 * 1024])
    }

    @Test func attributeCountFollowsTritonsList() {
        let rules = TritonRules.triton3_8
        #expect(Self.kernel(shared: 0, rules: rules).launchAttributeCount == 0)
        #expect(Self.kernel(shared: 0, rules: rules, pdl: true, cooperative: true, numCTAs: 2).launchAttributeCount == 4)
        #expect(Self.kernel(shared: 240 * 1024, rules: rules, pdl: true).launchAttributeCount == 2)
        // Five: Triton's `launchAttr[4]` overflows. The native layer refuses to cache such a kernel.
        #expect(Self.kernel(shared: 240 * 1024, rules: rules, pdl: true, cooperative: true, numCTAs: 2)
            .launchAttributeCount == 5)
        #expect(Self.kernel(shared: 240 * 1024, rules: .triton3_7, pdl: true, cooperative: true, numCTAs: 2)
            .launchAttributeCount == 4)
        #expect(TritonRules.maxLaunchAttributes == 4)
    }

    @Test func theLaunchUsesItsReleasesConversion() throws {
        let slots: [ParameterSlot] = [.scalar(.i8), .scalar(.u1), .scalar(.i1)]
        let values: [ArgumentValue] = [.integer(300), .integer(258), .integer(-1)]
        let driver = RecordingDriver()
        for rules in [TritonRules.triton3_7, .triton3_8, .triton3_9] {
            try Self.kernel(shared: 0, rules: rules, slots: slots).launch(values, driver: driver)
        }
        #expect(driver.launches.map(\.parameters) == Array(repeating: [44, 258, 0xFFFF_FFFF, 0, 0], count: 3))
        #expect(throws: LaunchError.stepAside(.packing(.outOfRange(position: 0)))) {
            try Self.kernel(shared: 0, rules: .triton3_6, slots: slots).launch(values, driver: driver)
        }
        #expect(throws: LaunchError.stepAside(.packing(.outOfRange(position: 1)))) {
            try Self.kernel(shared: 0, rules: .triton3_9, slots: slots).launch([.integer(1), .integer(-1), .integer(0)],
                                                                               driver: driver)
        }
        #expect(driver.launches.count == 3)
    }

    @Test func defaultRulesAreTriton3_6() {
        let kernel = CompiledLaunch(function: 1, numWarps: 1, numCTAs: 1, sharedMemory: 300 * 1024, cooperative: false,
                                    pdl: false, slots: [])
        #expect(kernel.conversion == .parseTuple)
        #expect(!kernel.oversizedSharedMemory)
    }

    // MARK: - Binding

    @Test func positionalLimits() {
        let plain: [ParameterKind] = [.positionalOrKeyword, .positionalOrKeyword, .positionalOrKeyword]
        let keywordOnly: [ParameterKind] = [.positionalOrKeyword, .keywordOnly, .keywordOnly]
        let varArgs: [ParameterKind] = [.positionalOrKeyword, .varPositional, .keywordOnly]
        let varKeyword: [ParameterKind] = [.positionalOrKeyword, .varKeyword]
        for rules in TritonRules.all {
            #expect(rules.positionalLimit(plain) == 3)
            #expect(rules.positionalLimit([]) == 0)
        }
        // 3.6 / 3.7: every parameter listed by name, no separator.
        for rules in [TritonRules.triton3_6, .triton3_7] {
            #expect(rules.positionalLimit(keywordOnly) == 3)
            #expect(rules.positionalLimit(varArgs) == 3)
            #expect(rules.positionalLimit(varKeyword) == 2)
        }
        // 3.8: `*args` collects a tuple (stepped aside); keyword-only still positional.
        #expect(TritonRules.triton3_8.positionalLimit(keywordOnly) == 3)
        #expect(TritonRules.triton3_8.positionalLimit(varArgs) == nil)
        #expect(TritonRules.triton3_8.positionalLimit(varKeyword) == 2)
        // 3.9: keyword-only is keyword-only.
        #expect(TritonRules.triton3_9.positionalLimit(keywordOnly) == 1)
        #expect(TritonRules.triton3_9.positionalLimit([.keywordOnly]) == 0)
        #expect(TritonRules.triton3_9.positionalLimit(varArgs) == nil)
        #expect(TritonRules.triton3_9.positionalLimit(varKeyword) == nil)
    }
}

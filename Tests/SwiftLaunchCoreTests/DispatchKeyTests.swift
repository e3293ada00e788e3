import SwiftLaunchCore
import Testing

/// Builds a key in fresh storage of `capacity` words and returns its words.
func dispatchKey(capacity: Int = 64,
                 _ build: (inout DispatchKeyWriter) throws(DispatchKeyWriter.Overflow) -> Void)
    throws(DispatchKeyWriter.Overflow) -> [UInt64]
{
    let storage = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: capacity)
    storage.initialize(repeating: 0)
    defer { storage.deallocate() }
    var writer = DispatchKeyWriter(storage: storage)
    try build(&writer)
    return Array(writer.words)
}

/// The key of one typical call: device, three specialized arguments, a constexpr and two options.
func typicalKey(device: Int32 = 0, constexpr: ArgumentValue = .integer(128),
                numWarps: ArgumentValue = .integer(4)) throws -> [UInt64]
{
    try dispatchKey { w throws(DispatchKeyWriter.Overflow) in
        try w.appendDevice(device)
        try w.append(Specialization(kind: .pointer(dtype: 0, const: false), key: .divisibleBy16))
        try w.append(Specialization(kind: .pointer(dtype: 0, const: false), key: .plain))
        try w.append(Specialization(kind: .i32, key: .divisibleBy16))
        try w.appendConstexpr(constexpr)
        try w.appendOption(name: 1, value: numWarps)
        try w.appendOption(name: 2, value: .integer(3))
    }
}

func constexprKey(_ value: ArgumentValue) throws -> [UInt64] {
    try dispatchKey { w throws(DispatchKeyWriter.Overflow) in try w.appendConstexpr(value) }
}

func optionKey(name: UInt32 = 7, _ value: ArgumentValue) throws -> [UInt64] {
    try dispatchKey { w throws(DispatchKeyWriter.Overflow) in try w.appendOption(name: name, value: value) }
}

func specializationKey(_ s: Specialization) throws -> [UInt64] {
    try dispatchKey { w throws(DispatchKeyWriter.Overflow) in try w.append(s) }
}

@Suite struct DispatchKeyTests {
    @Test func equalInputsGiveEqualWords() throws {
        let a = try typicalKey()
        let b = try typicalKey()
        #expect(!a.isEmpty)
        #expect(a == b)
    }

    @Test func differentInputsGiveDifferentWords() throws {
        let base = try typicalKey()
        #expect(try typicalKey(constexpr: .integer(256)) != base)
        #expect(try typicalKey(numWarps: .integer(8)) != base)
    }

    @Test func deviceChangesTheKey() throws {
        #expect(try typicalKey(device: 0) != typicalKey(device: 1))
        #expect(try typicalKey(device: 1) != typicalKey(device: -1))
    }

    @Test func writerCountsWords() throws {
        let storage = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 8)
        defer { storage.deallocate() }
        var writer = DispatchKeyWriter(storage: storage)
        #expect(writer.count == 0)
        #expect(writer.words.isEmpty)
        try writer.append(42)
        try writer.appendDevice(3)
        #expect(writer.count == 2)
        #expect(writer.words.count == 2)
        #expect(writer.words[0] == 42)
        #expect(storage[0] == 42)
    }

    // MARK: - Constexprs: Python-equal values share a key

    @Test func constexprOneOneFloatAndTrueShareAKey() throws {
        let one = try constexprKey(.integer(1))
        #expect(try constexprKey(.float(1.0)) == one)
        #expect(try constexprKey(.bool(true)) == one)
        #expect(try constexprKey(.integer(0)) == constexprKey(.bool(false)))
        #expect(try constexprKey(.integer(0)) == constexprKey(.float(-0.0)))
        #expect(try constexprKey(.integer(-3)) == constexprKey(.float(-3.0)))
        #expect(try constexprKey(.integer(1 << 40)) == constexprKey(.float(0x1p40)))
    }

    @Test func constexprValuesThatDifferInPythonDiffer() throws {
        #expect(try constexprKey(.float(2.5)) != constexprKey(.integer(2)))
        #expect(try constexprKey(.float(2.5)) != constexprKey(.integer(3)))
        #expect(try constexprKey(.float(2.5)) != constexprKey(.float(2.25)))
        #expect(try constexprKey(.integer(1)) != constexprKey(.integer(2)))
        #expect(try constexprKey(.bool(true)) != constexprKey(.bool(false)))
        #expect(try constexprKey(.null) != constexprKey(.integer(0)))
        #expect(try constexprKey(.null) != constexprKey(.bool(false)))
        #expect(try constexprKey(.interned(1)) != constexprKey(.interned(2)))
        #expect(try constexprKey(.interned(0)) != constexprKey(.integer(0)))
        #expect(try constexprKey(.interned(0)) != constexprKey(.null))
        // The high half of a wide integer is part of the key.
        #expect(try constexprKey(.integer(5)) != constexprKey(.integer((Int128(1) << 64) + 5)))
        #expect(try constexprKey(.integer(-1)) != constexprKey(.integer(Int128(UInt64.max))))
    }

    @Test func constexprTensorsKeyByDtypeAndAddress() throws {
        let a = try constexprKey(.tensor(dtype: 0, address: 0x1000))
        #expect(try constexprKey(.tensor(dtype: 0, address: 0x1000)) == a)
        #expect(try constexprKey(.tensor(dtype: 1, address: 0x1000)) != a)
        #expect(try constexprKey(.tensor(dtype: 0, address: 0x2000)) != a)
    }

    // MARK: - Options: `str(options)` keeps the Python type

    @Test func optionsKeepTheirType() throws {
        let int4 = try optionKey(.integer(4))
        let float4 = try optionKey(.float(4.0))
        #expect(int4 != float4)
        #expect(try optionKey(.integer(1)) != optionKey(.bool(true)))
        #expect(try optionKey(.integer(1)) != optionKey(.float(1.0)))
        #expect(try optionKey(.float(1.0)) != optionKey(.bool(true)))
        #expect(try optionKey(.integer(0)) != optionKey(.null))
        #expect(try optionKey(.integer(0)) != optionKey(.bool(false)))
        #expect(try optionKey(.bool(false)) != optionKey(.bool(true)))
        #expect(try optionKey(.integer(4)) == int4)
        #expect(try optionKey(.float(4.0)) == float4)
    }

    @Test func optionNameIsPartOfTheKey() throws {
        #expect(try optionKey(name: 1, .integer(4)) != optionKey(name: 2, .integer(4)))
    }

    @Test func optionAndConstexprOfTheSameValueDiffer() throws {
        #expect(try optionKey(.integer(4)) != constexprKey(.integer(4)))
    }

    // MARK: - Specializations

    @Test func everySpecializationHasItsOwnWord() throws {
        let kinds: [Specialization.Kind] = [
            .pointer(dtype: 0, const: false), .pointer(dtype: 0, const: true), .pointer(dtype: 1, const: false),
            .i32, .i64, .u64, .u1, .fp32, .constexpr,
            .annotated(.i32), .annotated(.i64), .annotated(.u1), .annotated(.fp16), .annotated(.bf16),
            .annotated(.fp32), .annotated(.pointer(dtype: 0, const: false)),
            .annotated(.pointer(dtype: 0, const: true)),
        ]
        let keys: [Specialization.Key] = [.none, .divisibleBy16, .plain, .one, .constantNone]
        var seen: [[UInt64]: Specialization] = [:]
        for kind in kinds {
            for key in keys {
                let s = Specialization(kind: kind, key: key)
                let words = try specializationKey(s)
                #expect(words.count == 1)
                if let previous = seen[words] {
                    Issue.record("\(s) and \(previous) share the key \(words)")
                }
                seen[words] = s
            }
        }
        #expect(seen.count == kinds.count * keys.count)
    }

    @Test func keysDoNotRunIntoEachOther() throws {
        // The same fields in another order, or the same value in another role, give other words.
        let a = try dispatchKey { w throws(DispatchKeyWriter.Overflow) in
            try w.append(Specialization(kind: .i32, key: .plain))
            try w.appendConstexpr(.integer(0))
        }
        let b = try dispatchKey { w throws(DispatchKeyWriter.Overflow) in
            try w.appendConstexpr(.integer(0))
            try w.append(Specialization(kind: .i32, key: .plain))
        }
        #expect(a != b)
        let c = try dispatchKey { w throws(DispatchKeyWriter.Overflow) in try w.appendConstexpr(.null) }
        let d = try dispatchKey { w throws(DispatchKeyWriter.Overflow) in try w.appendOption(name: 0, value: .null) }
        #expect(c != d)
    }

    // MARK: - Overflow

    @Test func overflowThrowsWhenStorageIsTooSmall() {
        #expect(throws: DispatchKeyWriter.Overflow.tooManyWords) {
            _ = try dispatchKey(capacity: 0) { w throws(DispatchKeyWriter.Overflow) in try w.appendDevice(0) }
        }
        // A constexpr integer takes three words.
        #expect(throws: DispatchKeyWriter.Overflow.tooManyWords) {
            _ = try dispatchKey(capacity: 3) { w throws(DispatchKeyWriter.Overflow) in
                try w.appendDevice(0)
                try w.appendConstexpr(.integer(7))
            }
        }
        #expect(throws: DispatchKeyWriter.Overflow.tooManyWords) {
            _ = try dispatchKey(capacity: 5) { w throws(DispatchKeyWriter.Overflow) in
                try w.appendDevice(0)
                for _ in 0..<5 { try w.append(Specialization(kind: .i32, key: .plain)) }
            }
        }
    }

    @Test func exactCapacityFits() throws {
        let words = try dispatchKey(capacity: 4) { w throws(DispatchKeyWriter.Overflow) in
            try w.appendDevice(0)
            try w.appendConstexpr(.integer(7))
        }
        #expect(words.count == 4)
    }

    @Test func writerNeverTouchesMemoryPastItsStorage() throws {
        let backing = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 8)
        defer { backing.deallocate() }
        backing.initialize(repeating: 0xAAAA_AAAA_AAAA_AAAA)
        let storage = UnsafeMutableBufferPointer(rebasing: backing[0..<3])
        var writer = DispatchKeyWriter(storage: storage)
        #expect(throws: DispatchKeyWriter.Overflow.tooManyWords) {
            for _ in 0..<8 { try writer.append(Specialization(kind: .i32, key: .plain)) }
        }
        #expect(writer.count == 3)
        for index in 3..<8 {
            #expect(backing[index] == 0xAAAA_AAAA_AAAA_AAAA, "word \(index) was written")
        }
    }

    // MARK: - Hash

    @Test func dispatchHashIsStableForEqualWords() throws {
        let a = try typicalKey()
        let b = try typicalKey()
        let ha = a.withUnsafeBufferPointer { $0.dispatchHash }
        let hb = b.withUnsafeBufferPointer { $0.dispatchHash }
        #expect(ha == hb)
        #expect(a.withUnsafeBufferPointer { $0.dispatchHash } == ha)
    }

    @Test func dispatchHashSeparatesNearbyKeys() throws {
        let keys: [[UInt64]] = [[], [0], [0, 0], [0, 0, 0], [1], [1, 0], [0, 1], [2], [1 << 63], [UInt64.max]]
        let hashes = keys.map { key in key.withUnsafeBufferPointer { $0.dispatchHash } }
        #expect(Set(hashes).count == keys.count, "hashes \(hashes)")
        #expect(try typicalKey(device: 0).withUnsafeBufferPointer { $0.dispatchHash }
            != typicalKey(device: 1).withUnsafeBufferPointer { $0.dispatchHash })
    }
}

import SwiftLaunchCore
import Testing

/// SplitMix64, seeded, so a failing run can be reproduced.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension LaunchCache {
    func lookup(_ key: [UInt64]) -> Value? {
        key.withUnsafeBufferPointer { lookup($0) }
    }

    mutating func insert(_ key: [UInt64], value: Value) {
        key.withUnsafeBufferPointer { insert($0, value: value) }
    }
}

@Suite struct LaunchCacheTests {
    @Test func emptyCacheMisses() {
        let cache = LaunchCache<String>()
        #expect(cache.count == 0)
        #expect(cache.lookup([1, 2, 3]) == nil)
        #expect(cache.lookup([]) == nil)
    }

    @Test func insertedKeyHitsAndOthersMiss() {
        var cache = LaunchCache<String>()
        cache.insert([1, 2, 3], value: "a")
        #expect(cache.lookup([1, 2, 3]) == "a")
        #expect(cache.lookup([1, 2]) == nil)
        #expect(cache.lookup([1, 2, 3, 0]) == nil)
        #expect(cache.lookup([3, 2, 1]) == nil)
        #expect(cache.lookup([1, 2, 4]) == nil)
        #expect(cache.count == 1)
    }

    @Test func lookupWorksFromBorrowedStorage() {
        var cache = LaunchCache<Int>()
        cache.insert([7, 8, 9], value: 42)
        // The hot path looks up from writer storage, not an array.
        let storage = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 16)
        defer { storage.deallocate() }
        storage.initialize(repeating: 0)
        storage[0] = 7; storage[1] = 8; storage[2] = 9; storage[3] = 10
        #expect(cache.lookup(UnsafeBufferPointer(rebasing: storage[0..<3])) == 42)
        #expect(cache.lookup(UnsafeBufferPointer(rebasing: storage[0..<4])) == nil)
        #expect(cache.lookup(UnsafeBufferPointer(rebasing: storage[1..<4])) == nil)
    }

    @Test func insertCopiesTheWords() {
        var cache = LaunchCache<Int>()
        let storage = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 2)
        defer { storage.deallocate() }
        storage[0] = 5; storage[1] = 6
        cache.insert(UnsafeBufferPointer(storage), value: 1)
        storage[0] = 99  // reusing the writer's storage must not change the cached key
        #expect(cache.lookup([5, 6]) == 1)
        #expect(cache.lookup([99, 6]) == nil)
    }

    @Test func insertReplacesTheValueForAnEqualKey() {
        var cache = LaunchCache<String>()
        cache.insert([4, 5], value: "old")
        cache.insert([4, 5], value: "new")
        #expect(cache.lookup([4, 5]) == "new")
        #expect(cache.count == 1)
    }

    @Test func countCountsDistinctKeys() {
        var cache = LaunchCache<Int>()
        cache.insert([1], value: 1)
        cache.insert([1, 0], value: 2)
        cache.insert([0, 1], value: 3)
        cache.insert([], value: 4)
        cache.insert([1], value: 5)
        #expect(cache.count == 4)
        #expect(cache.lookup([1]) == 5)
        #expect(cache.lookup([1, 0]) == 2)
        #expect(cache.lookup([0, 1]) == 3)
        #expect(cache.lookup([]) == 4)
    }

    @Test func removeAllEmptiesTheCache() {
        var cache = LaunchCache<Int>()
        cache.insert([1], value: 1)
        cache.insert([2], value: 2)
        cache.removeAll()
        #expect(cache.count == 0)
        #expect(cache.lookup([1]) == nil)
        cache.insert([1], value: 3)
        #expect(cache.count == 1)
        #expect(cache.lookup([1]) == 3)
    }

    @Test func allSatisfyVisitsEveryValueInInsertionOrder() {
        var cache = LaunchCache<Int>()
        #expect(cache.allSatisfy { _ in false })  // vacuously true: nothing to visit
        for value in 0..<100 { cache.insert([UInt64(value), 7], value: value) }
        cache.insert([3, 7], value: 1_000)  // a replaced value is visited once, in its old place
        var seen: [Int] = []
        #expect(cache.allSatisfy { seen.append($0); return true })
        #expect(seen == Array(0..<3) + [1_000] + Array(4..<100))
    }

    @Test func allSatisfyStopsAtTheFirstFailure() {
        var cache = LaunchCache<Int>()
        for value in 0..<10 { cache.insert([UInt64(value)], value: value) }
        var visited = 0
        #expect(!cache.allSatisfy { visited += 1; return $0 < 4 })
        #expect(visited == 5)
    }

    @Test func allSatisfyPassesErrorsThrough() {
        struct Stop: Error, Equatable { let at: Int }
        var cache = LaunchCache<Int>()
        for value in 0..<10 { cache.insert([UInt64(value)], value: value) }
        #expect(throws: Stop(at: 6)) {
            try cache.allSatisfy { (value: Int) throws(Stop) -> Bool in
                if value == 6 { throw Stop(at: value) }
                return true
            }
        }
    }

    @Test func allSatisfyAfterRemoveAllVisitsNothing() {
        var cache = LaunchCache<String>()
        cache.insert([1], value: "a")
        cache.removeAll()
        #expect(cache.allSatisfy { _ in false })
    }

    @Test func tenThousandRandomKeysEachMapToTheirOwnValue() {
        var rng = SeededGenerator(seed: 0x5EED_CAFE)
        var keys: [[UInt64]] = []
        var seen = Set<[UInt64]>()
        while keys.count < 10_000 {
            let length = Int.random(in: 0...6, using: &rng)
            // Small word values make keys that share prefixes and differ in one word common.
            let small = Bool.random(using: &rng)
            let key = (0..<length).map { _ in small ? UInt64.random(in: 0...3, using: &rng) : rng.next() }
            if seen.insert(key).inserted { keys.append(key) }
        }
        var cache = LaunchCache<Int>()
        for (index, key) in keys.enumerated() {
            cache.insert(key, value: index)
        }
        #expect(cache.count == keys.count)
        var wrong = 0
        for (index, key) in keys.enumerated() where cache.lookup(key) != index {
            wrong += 1
        }
        #expect(wrong == 0)
        // Keys never inserted still miss.
        var misses = 0
        for _ in 0..<1_000 {
            let key = (0..<7).map { _ in rng.next() }
            if cache.lookup(key) == nil { misses += 1 }
        }
        #expect(misses == 1_000)
    }

    /// The state of `dispatchHash` after absorbing `first` as the first of two words. It mirrors the
    /// current SplitMix64-style hash in DispatchKey.swift; if that hash changes, update this too.
    static func stateAfterFirstWord(_ first: UInt64) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 &* 3
        h = (h ^ first) &* 0xBF58_476D_1CE4_E5B9
        return h ^ (h >> 31)
    }

    @Test func keysWithEqualHashesAreToldApart() {
        // Two-word keys [a, x] and [b, x ^ s(a) ^ s(b)] reach the same state after two words, so they
        // share one hash and one bucket; only the word-by-word comparison can tell them apart.
        var groups: [[[UInt64]]] = []
        for x in UInt64(0)..<20 {
            let base: UInt64 = 0x1000 + x
            groups.append((0..<5).map { (a: UInt64) -> [UInt64] in
                [a, base ^ Self.stateAfterFirstWord(0) ^ Self.stateAfterFirstWord(a)]
            })
        }
        for group in groups {
            let hashes = Set(group.map { key in key.withUnsafeBufferPointer { $0.dispatchHash } })
            #expect(hashes.count == 1, "constructed keys should collide: \(group)")
        }
        let keys = groups.flatMap { $0 }
        #expect(Set(keys).count == keys.count)
        var cache = LaunchCache<Int>()
        for (index, key) in keys.enumerated() { cache.insert(key, value: index) }
        #expect(cache.count == keys.count)
        for (index, key) in keys.enumerated() {
            #expect(cache.lookup(key) == index, "key \(key)")
        }
        // Replacing one colliding key leaves its bucket-mates alone.
        cache.insert(keys[1], value: -1)
        #expect(cache.count == keys.count)
        #expect(cache.lookup(keys[0]) == 0)
        #expect(cache.lookup(keys[1]) == -1)
        #expect(cache.lookup(keys[2]) == 2)
        // A key that collides with the bucket but was never inserted misses.
        let stranger: [UInt64] = [99, 0x1000 ^ Self.stateAfterFirstWord(0) ^ Self.stateAfterFirstWord(99)]
        #expect(stranger.withUnsafeBufferPointer { $0.dispatchHash }
            == keys[0].withUnsafeBufferPointer { $0.dispatchHash })
        #expect(cache.lookup(stranger) == nil)
    }

    @Test func realDispatchKeysAreToldApart() throws {
        // Keys as the launcher builds them, differing only in one specialization or constexpr.
        var cache = LaunchCache<Int>()
        var all: [[UInt64]] = []
        for device in Int32(0)..<2 {
            for constexpr in [ArgumentValue.integer(16), .integer(32), .float(2.5), .null, .bool(false)] {
                for key in [Specialization.Key.divisibleBy16, .plain] {
                    all.append(try dispatchKey { w throws(DispatchKeyWriter.Overflow) in
                        try w.appendDevice(device)
                        try w.append(Specialization(kind: .pointer(dtype: 0, const: false), key: key))
                        try w.appendConstexpr(constexpr)
                    })
                }
            }
        }
        #expect(Set(all).count == all.count)
        for (index, key) in all.enumerated() { cache.insert(key, value: index) }
        #expect(cache.count == all.count)
        for (index, key) in all.enumerated() {
            #expect(cache.lookup(key) == index)
        }
    }
}

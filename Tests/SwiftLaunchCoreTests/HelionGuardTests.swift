import SwiftLaunchCore
import Testing

/// Guard words and the per-kernel table behind swiftlaunch's Helion dispatch.
struct HelionGuardTests {
    static let tensorType: UInt64 = 0x1000
    static let parameterType: UInt64 = 0x2000
    static let floatType: UInt64 = 0x3000
    static let intType: UInt64 = 0x4000

    /// Storage for tensors' sizes and strides, alive as long as the test (each test gets its own
    /// instance of this struct, and with it its own arena).
    final class Arena {
        var buffers: [UnsafeMutableBufferPointer<Int64>] = []
        func keep(_ values: [Int64]) -> UnsafePointer<Int64> {
            let buffer = UnsafeMutableBufferPointer<Int64>.allocate(capacity: max(values.count, 1))
            _ = buffer.initialize(from: values)
            buffers.append(buffer)
            return UnsafePointer(buffer.baseAddress!)
        }
        deinit { for buffer in buffers { buffer.deallocate() } }
    }

    let arena = Arena()

    func tensor(_ sizes: [Int64], _ strides: [Int64], dtype: Int32 = 6, type: UInt64 = tensorType,
                device: Int32 = 0) -> HelionArgument {
        .tensor(type: type, HelionTensorFields(dtype: dtype, deviceType: 1, deviceIndex: device, dim: sizes.count,
                                               sizes: arena.keep(sizes), strides: arena.keep(strides)),
                alias: -1)
    }

    /// The words of `arguments`, after resolving aliases from `identities`.
    static func words(_ arguments: [HelionArgument], identities: [UInt]? = nil) -> [UInt64] {
        var arguments = arguments
        let identities = identities ?? Array(0..<UInt(arguments.count))
        arguments.withUnsafeMutableBufferPointer { buffer in
            identities.withUnsafeBufferPointer { HelionGuard.resolveAliases(buffer, identities: $0) }
        }
        return arguments.withUnsafeBufferPointer { buffer in
            [UInt64](unsafeUninitializedCapacity: HelionGuard.wordCount(buffer)) { out, written in
                written = HelionGuard.write(buffer, into: out)
            }
        }
    }

    @Test func equalFactsGiveEqualWords() {
        let arguments = [tensor([8, 4], [4, 1]), tensor([8, 4], [4, 1]), .typeOnly(type: Self.floatType)]
        let a = Self.words(arguments)
        let b = Self.words([tensor([8, 4], [4, 1]), tensor([8, 4], [4, 1]), .typeOnly(type: Self.floatType)])
        #expect(a == b)
        #expect(a.count == arguments.withUnsafeBufferPointer { HelionGuard.wordCount($0) })
        #expect(a.count == 1 + 2 * (4 + 2 * 2) + 1)
    }

    @Test func everyGuardedFactChangesTheWords() {
        let base = Self.words([tensor([8, 4], [4, 1]), .value(type: Self.intType, 2)])
        let changes: [[HelionArgument]] = [
            [tensor([8, 4], [1, 8]), .value(type: Self.intType, 2)],                   // strides
            [tensor([4, 8], [4, 1]), .value(type: Self.intType, 2)],                   // sizes
            [tensor([32], [1]), .value(type: Self.intType, 2)],                        // dim
            [tensor([8, 4], [4, 1], dtype: 5), .value(type: Self.intType, 2)],         // dtype
            [tensor([8, 4], [4, 1], device: 1), .value(type: Self.intType, 2)],        // device
            [tensor([8, 4], [4, 1], type: Self.parameterType), .value(type: Self.intType, 2)],  // Parameter
            [tensor([8, 4], [4, 1]), .value(type: Self.intType, 3)],                   // constexpr value
            [tensor([8, 4], [4, 1]), .typeOnly(type: Self.intType)],                   // runtime scalar
            [tensor([8, 4], [4, 1])],                                                   // count
        ]
        for change in changes {
            #expect(Self.words(change) != base)
        }
    }

    @Test func aliasingIsPartOfTheGuard() {
        let three = [tensor([8], [1]), tensor([8], [1]), tensor([8], [1])]
        let separate = Self.words(three, identities: [1, 2, 3])
        let firstTwo = Self.words(three, identities: [1, 1, 3])
        let lastTwo = Self.words(three, identities: [1, 3, 3])
        let all = Self.words(three, identities: [7, 7, 7])
        #expect(Set([separate, firstTwo, lastTwo, all]).count == 4)
        // The same partition from other objects gives the same words.
        #expect(Self.words(three, identities: [9, 9, 4]) == firstTwo)
    }

    @Test func aliasPointsAtTheFirstOccurrence() {
        var arguments = [tensor([8], [1]), .typeOnly(type: Self.floatType), tensor([8], [1]), tensor([8], [1])]
        let identities: [UInt] = [5, 5, 5, 6]  // the float "shares" an address: only tensors alias
        arguments.withUnsafeMutableBufferPointer { buffer in
            identities.withUnsafeBufferPointer { HelionGuard.resolveAliases(buffer, identities: $0) }
        }
        let aliases = arguments.map { argument -> Int32? in
            if case let .tensor(_, _, alias) = argument { return alias }
            return nil
        }
        #expect(aliases == [-1, nil, 0, -1])
    }

    final class Entry {
        let name: String
        let accepts: Bool
        init(_ name: String, accepts: Bool = true) {
            self.name = name
            self.accepts = accepts
        }
    }

    func lookup(_ table: HelionDispatchTable<Entry>, _ key: [UInt64]) -> String? {
        key.withUnsafeBufferPointer { table.lookup($0, confirm: { $0.accepts })?.name }
    }

    func insert(_ table: HelionDispatchTable<Entry>, _ key: [UInt64], _ entry: Entry, same: Bool = true) -> String? {
        key.withUnsafeBufferPointer { table.insert($0, entry, sameGuard: { _ in same })?.name }
    }

    @Test func tableFindsExactKeysMostRecentlyUsedFirst() {
        let table = HelionDispatchTable<Entry>(capacity: 3)
        #expect(insert(table, [1, 2], Entry("a")) == nil)
        #expect(insert(table, [1, 3], Entry("b")) == nil)
        #expect(lookup(table, [1, 2]) == "a")
        #expect(lookup(table, [1, 3]) == "b")
        #expect(lookup(table, [1]) == nil)
        #expect(lookup(table, [1, 2, 0]) == nil)
        // Full: the least recently used entry ("a", after "b" was looked up) goes.
        #expect(insert(table, [4], Entry("c")) == nil)
        #expect(lookup(table, [1, 3]) == "b")
        #expect(insert(table, [5], Entry("d")) == "a")
        #expect(lookup(table, [1, 2]) == nil)
        #expect(table.count == 3)
    }

    @Test func sameGuardIsReplacedAndConfirmationDecides() {
        let table = HelionDispatchTable<Entry>(capacity: 4)
        _ = insert(table, [7], Entry("old"))
        #expect(insert(table, [7], Entry("new")) == "old")
        #expect(table.count == 1)
        // Same words, other confirmed objects: both kept, confirmation picks.
        #expect(insert(table, [7], Entry("refused", accepts: false), same: false) == nil)
        #expect(table.count == 2)
        #expect(lookup(table, [7]) == "new")
        table.removeAll { $0.name == "new" }
        #expect(lookup(table, [7]) == nil)
        table.removeAll()
        #expect(table.count == 0)
    }
}

/// Compiled kernels by dispatch key: an open-addressing table over flat key storage. Lookups take the
/// key as borrowed words (stack storage on the hot path), touch no reference counts and allocate
/// nothing; inserts copy the words. A value is whatever the caller must keep alive while its kernel
/// can be launched (the translation layer stores the `CompiledKernel`).
public struct LaunchCache<Value> {
    @usableFromInline
    struct Entry {
        @usableFromInline var hash: UInt64
        /// Where the key's words start in `words`, and how many there are.
        @usableFromInline var start: Int
        @usableFromInline var count: Int
    }

    /// Every key's words, back to back, in insertion order.
    @usableFromInline var words: [UInt64] = []
    @usableFromInline var entries: [Entry] = []
    @usableFromInline var values: [Value] = []
    /// Open-addressing index into `entries` (+1; 0 is empty). Its size is a power of two, at least
    /// twice the entry count, so every probe sequence ends at an empty slot.
    @usableFromInline var table: [Int32] = Array(repeating: 0, count: 8)

    public var count: Int { entries.count }

    public init() {}

    @inlinable
    public func lookup(_ key: UnsafeBufferPointer<UInt64>) -> Value? {
        guard let index = find(key, hash: key.dispatchHash).entry else { return nil }
        return values[index]
    }

    /// The entry holding `key`, or the table slot where it would go.
    @inlinable
    func find(_ key: UnsafeBufferPointer<UInt64>, hash: UInt64) -> (entry: Int?, slot: Int) {
        let mask = table.count &- 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        return table.withUnsafeBufferPointer { table in
            entries.withUnsafeBufferPointer { entries in
                words.withUnsafeBufferPointer { words in
                    while true {
                        let stored = Int(table[slot])
                        if stored == 0 { return (nil, slot) }
                        let entry = entries[stored &- 1]
                        if entry.hash == hash && entry.count == key.count
                            && (0..<key.count).allSatisfy({ words[entry.start &+ $0] == key[$0] })
                        {
                            return (stored &- 1, slot)
                        }
                        slot = (slot &+ 1) & mask
                    }
                }
            }
        }
    }

    /// Inserts or replaces the value for a key.
    public mutating func insert(_ key: UnsafeBufferPointer<UInt64>, value: Value) {
        let hash = key.dispatchHash
        let found = find(key, hash: hash)
        if let index = found.entry {
            values[index] = value
            return
        }
        let index = entries.count
        entries.append(Entry(hash: hash, start: words.count, count: key.count))
        words.append(contentsOf: key)
        values.append(value)
        table[found.slot] = Int32(index + 1)
        if entries.count * 2 > table.count { rebuildTable(size: table.count * 2) }
    }

    public mutating func removeAll() {
        words.removeAll()
        entries.removeAll()
        values.removeAll()
        table = Array(repeating: 0, count: 8)
    }

    private mutating func rebuildTable(size: Int) {
        var fresh = [Int32](repeating: 0, count: size)
        let mask = size - 1
        for (index, entry) in entries.enumerated() {
            var slot = Int(truncatingIfNeeded: entry.hash) & mask
            while fresh[slot] != 0 { slot = (slot + 1) & mask }
            fresh[slot] = Int32(index + 1)
        }
        table = fresh
    }
}

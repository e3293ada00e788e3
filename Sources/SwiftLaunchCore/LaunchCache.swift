/// Compiled kernels by dispatch key: an open-addressing table over flat key storage. Lookups take the
/// key as borrowed words (stack storage on the hot path) and allocate nothing; inserts copy the
/// words. A value is whatever the caller must keep alive while its kernel can be launched (the
/// translation layer stores the `CompiledKernel`).
///
/// Noncopyable, and its storage is its own buffers rather than arrays: an owner lends it out for each
/// lookup, and a lookup touches no reference count but the value's.
public struct LaunchCache<Value>: ~Copyable {
    @usableFromInline
    struct Entry {
        @usableFromInline var hash: UInt64
        /// Where the key's words start in `words`, and how many there are.
        @usableFromInline var start: Int
        @usableFromInline var count: Int
    }

    /// Every key's words, back to back, in insertion order.
    @usableFromInline var words: UnsafeMutableBufferPointer<UInt64>
    @usableFromInline var wordCount = 0
    /// One entry and one value per key, in insertion order (`count` of each are initialized).
    @usableFromInline var entries: UnsafeMutableBufferPointer<Entry>
    @usableFromInline var values: UnsafeMutablePointer<Value>
    public private(set) var count = 0
    /// Open-addressing index into `entries` (+1; 0 is empty). Its size is a power of two, at least
    /// twice the entry count, so every probe sequence ends at an empty slot.
    @usableFromInline var table: UnsafeMutableBufferPointer<Int32>

    public init() {
        words = .allocate(capacity: 64)
        entries = .allocate(capacity: 4)
        values = .allocate(capacity: 4)
        table = .allocate(capacity: 8)
        table.initialize(repeating: 0)
    }

    deinit {
        values.deinitialize(count: count)
        values.deallocate()
        words.deallocate()
        entries.deallocate()
        table.deallocate()
    }

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

    /// Inserts or replaces the value for a key.
    public mutating func insert(_ key: UnsafeBufferPointer<UInt64>, value: Value) {
        let hash = key.dispatchHash
        let found = find(key, hash: hash)
        if let index = found.entry {
            values[index] = value
            return
        }
        reserve(entries: count + 1, words: wordCount + key.count)
        entries[count] = Entry(hash: hash, start: wordCount, count: key.count)
        (values + count).initialize(to: value)
        for (offset, word) in key.enumerated() { words[wordCount + offset] = word }
        wordCount += key.count
        table[found.slot] = Int32(count + 1)
        count += 1
        if count * 2 > table.count { rebuildTable(size: table.count * 2) }
    }

    /// Whether `predicate` holds for every stored value, visited in insertion order and stopping at
    /// the first that fails. The owner's garbage-collector traversal walks its values with it.
    public func allSatisfy<E: Error>(_ predicate: (Value) throws(E) -> Bool) throws(E) -> Bool {
        for index in 0..<count where try !predicate(values[index]) { return false }
        return true
    }

    public mutating func removeAll() {
        values.deinitialize(count: count)
        count = 0
        wordCount = 0
        table.update(repeating: 0)
    }

    private mutating func reserve(entries needed: Int, words neededWords: Int) {
        if neededWords > words.count {
            let grown = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(neededWords, words.count * 2))
            for index in 0..<wordCount { grown[index] = words[index] }
            words.deallocate()
            words = grown
        }
        if needed > entries.count {
            let capacity = entries.count * 2
            let grownEntries = UnsafeMutableBufferPointer<Entry>.allocate(capacity: capacity)
            for index in 0..<count { grownEntries[index] = entries[index] }
            entries.deallocate()
            entries = grownEntries
            let grownValues = UnsafeMutablePointer<Value>.allocate(capacity: capacity)
            grownValues.moveInitialize(from: values, count: count)
            values.deallocate()
            values = grownValues
        }
    }

    private mutating func rebuildTable(size: Int) {
        let fresh = UnsafeMutableBufferPointer<Int32>.allocate(capacity: size)
        fresh.initialize(repeating: 0)
        let mask = size - 1
        for index in 0..<count {
            var slot = Int(truncatingIfNeeded: entries[index].hash) & mask
            while fresh[slot] != 0 { slot = (slot + 1) & mask }
            fresh[slot] = Int32(index + 1)
        }
        table.deallocate()
        table = fresh
    }
}

/// Compiled kernels by dispatch key. Lookups take the key as borrowed words (stack storage on the hot
/// path) and allocate nothing; inserts copy the words. A value is whatever the caller must keep
/// alive while its kernel can be launched (the translation layer stores the `CompiledKernel`).
public struct LaunchCache<Value> {
    private struct Slot {
        let words: [UInt64]
        var value: Value
    }

    private var buckets: [UInt64: [Slot]] = [:]
    public private(set) var count = 0

    public init() {}

    public func lookup(_ words: UnsafeBufferPointer<UInt64>) -> Value? {
        guard let bucket = buckets[words.dispatchHash] else { return nil }
        for slot in bucket where slot.words.elementsEqual(words) {
            return slot.value
        }
        return nil
    }

    /// Inserts or replaces the value for a key.
    public mutating func insert(_ words: UnsafeBufferPointer<UInt64>, value: Value) {
        let hash = words.dispatchHash
        var bucket = buckets[hash] ?? []
        if let index = bucket.firstIndex(where: { $0.words.elementsEqual(words) }) {
            bucket[index].value = value
        } else {
            bucket.append(Slot(words: Array(words), value: value))
            count += 1
        }
        buckets[hash] = bucket
    }

    public mutating func removeAll() {
        buckets.removeAll()
        count = 0
    }
}

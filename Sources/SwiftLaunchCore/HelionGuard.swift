/// The pure part of swiftlaunch's Helion dispatch: an argument list reduced to the facts Helion's
/// prepared-call guard (`helion.runtime.kernel._make_prepared_arg_guard`) compares, as 64-bit words,
/// and a small most-recently-used table of entries keyed by those words.
///
/// Helion's guard is an exact predicate built from one argument list: argument count, the exact
/// type of each argument, each tensor's dtype, shape, strides and device, which tensor arguments are
/// the same object, and the values of constexpr scalars. Two argument lists satisfy the same guard
/// exactly when they reduce to the same words here, except for arguments compared by Python
/// equality (strings, dtypes, devices, `hl.constexpr(...)` values): those reduce to their type alone,
/// and the caller confirms them against the entry's recorded objects.

/// What one argument reduces to. `type` is the identity of the argument's exact Python type.
public enum HelionArgument {
    /// An exact `torch.Tensor` / `Parameter`: dtype code, device type and index (torch's codes), and
    /// `alias`, the position of the first earlier argument that is the same object (-1: none).
    case tensor(type: UInt64, HelionTensorFields, alias: Int32)
    /// A runtime scalar (int, float, bool not annotated constexpr) or None: Helion checks the type only.
    case typeOnly(type: UInt64)
    /// A constexpr-annotated int (its value), bool (0 or 1) or float (its bit pattern: Helion compares
    /// `float.hex()`, which is one-to-one on non-NaN floats, as bit patterns are).
    case value(type: UInt64, UInt64)
    /// Compared by Python equality with the recorded object, which the caller confirms.
    case object(type: UInt64)
}

/// A tensor's guarded metadata, read through torch's C shim. `sizes` and `strides` point at `dim`
/// values each, owned by the tensor (valid while it is alive and unchanged).
public struct HelionTensorFields {
    public var dtype: Int32
    public var deviceType: Int32
    public var deviceIndex: Int32
    public var dim: Int
    public var sizes: UnsafePointer<Int64>?
    public var strides: UnsafePointer<Int64>?

    public init(dtype: Int32, deviceType: Int32, deviceIndex: Int32, dim: Int,
                sizes: UnsafePointer<Int64>?, strides: UnsafePointer<Int64>?) {
        self.dtype = dtype
        self.deviceType = deviceType
        self.deviceIndex = deviceIndex
        self.dim = dim
        self.sizes = sizes
        self.strides = strides
    }
}

public enum HelionGuard {
    /// The number of words `write` produces for these arguments.
    public static func wordCount(_ arguments: UnsafeBufferPointer<HelionArgument>) -> Int {
        var count = 1
        for argument in arguments {
            switch argument {
            case let .tensor(_, fields, _): count += 4 + 2 * fields.dim
            case .typeOnly, .object: count += 1
            case .value: count += 2
            }
        }
        return count
    }

    /// Writes the words of `arguments` into `words` (at least `wordCount(arguments)` long) and returns
    /// how many it wrote. The encoding is self-delimiting (each argument starts with its type, a
    /// tensor's dim gives its length, and whether a scalar carries a value is fixed per position by the
    /// kernel's annotations), so equal words mean equal guarded facts.
    public static func write(_ arguments: UnsafeBufferPointer<HelionArgument>,
                             into words: UnsafeMutableBufferPointer<UInt64>) -> Int {
        var at = 0
        func put(_ word: UInt64) {
            words[at] = word
            at += 1
        }
        put(UInt64(arguments.count))
        for argument in arguments {
            switch argument {
            case let .tensor(type, fields, alias):
                put(type)
                put(UInt64(UInt32(bitPattern: fields.dtype)) | UInt64(UInt32(bitPattern: fields.deviceType)) << 32)
                put(UInt64(UInt32(bitPattern: fields.deviceIndex)) | UInt64(UInt32(bitPattern: alias)) << 32)
                put(UInt64(fields.dim))
                for index in 0..<fields.dim { put(UInt64(bitPattern: fields.sizes![index])) }
                for index in 0..<fields.dim { put(UInt64(bitPattern: fields.strides![index])) }
            case let .typeOnly(type), let .object(type):
                put(type)
            case let .value(type, value):
                put(type)
                put(value)
            }
        }
        return at
    }

    /// Fills in each tensor's `alias` from object identities (`identities[i]`: the address of argument
    /// i): the first earlier tensor argument that is the same object, else -1. Helion's guard checks
    /// `is` / `is not` between every pair of tensor arguments; identity is an equivalence relation, so
    /// these first occurrences determine every pair. Only earlier arguments that alias nothing are
    /// compared against.
    public static func resolveAliases(_ arguments: UnsafeMutableBufferPointer<HelionArgument>,
                                      identities: UnsafeBufferPointer<UInt>) {
        for index in arguments.indices {
            guard case let .tensor(type, fields, _) = arguments[index] else { continue }
            var alias: Int32 = -1
            for earlier in 0..<index {
                guard case let .tensor(_, _, earlierAlias) = arguments[earlier], earlierAlias == -1 else { continue }
                if identities[earlier] == identities[index] {
                    alias = Int32(earlier)
                    break
                }
            }
            arguments[index] = .tensor(type: type, fields, alias: alias)
        }
    }
}

/// A per-kernel table of entries keyed by guard words, most recently used first, holding at most
/// `capacity` entries (the least recently used one goes when a new one comes). No two entries have
/// the same words and equal confirmed objects: `insert` replaces such an entry. A class, so that the
/// key buffers it owns are freed with it; keys are plain buffers, read on lookup without reference
/// counting.
public final class HelionDispatchTable<Entry> {
    public let capacity: Int
    // Inlinable lookup: specialized into the dispatch's hit path, where it runs on every call.
    @usableFromInline var keys: [UnsafeMutableBufferPointer<UInt64>] = []
    @usableFromInline var entries: [Entry] = []

    public init(capacity: Int) {
        precondition(capacity >= 1, "a table holds at least one entry")
        self.capacity = capacity
    }

    deinit {
        for key in keys { key.deallocate() }
    }

    public var count: Int { entries.count }
    public var allEntries: [Entry] { entries }

    /// The first entry, most recently used first, whose words equal `words` and that `confirm`
    /// accepts; it becomes the most recently used. `confirm` must not change the table.
    @inlinable
    public func lookup(_ words: UnsafeBufferPointer<UInt64>, confirm: (Entry) -> Bool) -> Entry? {
        for index in 0..<keys.count where Self.equal(keys[index], words) && confirm(entries[index]) {
            if index > 0 { moveToFront(index) }
            return entries[0]
        }
        return nil
    }

    /// Adds `entry` as the most recently used, first removing an entry with the same words that
    /// `sameGuard` says guards the same arguments, or else the least recently used one when the table
    /// is full. Returns the entry it removed.
    @discardableResult
    public func insert(_ words: UnsafeBufferPointer<UInt64>, _ entry: Entry, sameGuard: (Entry) -> Bool) -> Entry? {
        var removed: Entry?
        if let index = keys.indices.first(where: { Self.equal(keys[$0], words) && sameGuard(entries[$0]) }) {
            removed = remove(at: index)
        } else if entries.count == capacity {
            removed = remove(at: entries.count - 1)
        }
        let key = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: words.count)
        _ = key.initialize(from: words)
        keys.insert(key, at: 0)
        entries.insert(entry, at: 0)
        return removed
    }

    /// Removes every entry `predicate` accepts.
    public func removeAll(where predicate: (Entry) -> Bool) {
        var index = 0
        while index < entries.count {
            if predicate(entries[index]) {
                remove(at: index)
            } else {
                index += 1
            }
        }
    }

    public func removeAll() {
        // The entries are released only once the table is consistent again: releasing one may run
        // code (a Python finalizer, say) that uses this table.
        let released = entries
        for key in keys { key.deallocate() }
        keys = []
        entries = []
        withExtendedLifetime(released) {}
    }

    @discardableResult
    private func remove(at index: Int) -> Entry {
        keys.remove(at: index).deallocate()
        return entries.remove(at: index)
    }

    @usableFromInline
    func moveToFront(_ index: Int) {
        keys.insert(keys.remove(at: index), at: 0)
        entries.insert(entries.remove(at: index), at: 0)
    }

    @inlinable @inline(__always)
    static func equal(_ key: UnsafeMutableBufferPointer<UInt64>, _ words: UnsafeBufferPointer<UInt64>) -> Bool {
        guard key.count == words.count else { return false }
        for index in 0..<words.count where key[index] != words[index] { return false }
        return true
    }
}

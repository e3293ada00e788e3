/// The native dispatch key: a short run of 64-bit words that is equal for two calls exactly when
/// Triton's `(device, specialization, str(options))` cache key is. It is written into caller-owned
/// storage (the stack, on the hot path), so building and comparing one allocates nothing.
public struct DispatchKeyWriter: ~Copyable {
    public let storage: UnsafeMutableBufferPointer<UInt64>
    public private(set) var count = 0

    /// `storage` must outlive the writer; the writer only ever touches `storage[0..<capacity]`.
    public init(storage: UnsafeMutableBufferPointer<UInt64>) {
        self.storage = storage
    }

    public var words: UnsafeBufferPointer<UInt64> {
        UnsafeBufferPointer(rebasing: storage[0..<count])
    }

    public enum Overflow: Error { case tooManyWords }

    public mutating func append(_ word: UInt64) throws(Overflow) {
        guard count < storage.count else { throw .tooManyWords }
        storage[count] = word
        count &+= 1
    }

    public mutating func appendDevice(_ device: Int32) throws(Overflow) {
        try append(Tag.device | UInt64(UInt32(bitPattern: device)))
    }

    public mutating func append(_ specialization: Specialization) throws(Overflow) {
        try append(Tag.specialization | DispatchKeyWriter.code(specialization.kind) << 8
            | DispatchKeyWriter.code(specialization.key))
    }

    /// A declared `tl.constexpr` parameter. Triton looks its kernels up through a dict keyed by
    /// tuples, so values that compare equal in Python (`1`, `1.0`, `True`) share one kernel; they
    /// share one key here too.
    public mutating func appendConstexpr(_ value: ArgumentValue) throws(Overflow) {
        switch value {
        case let .integer(v):
            try appendInteger(v, tag: Tag.constexprInteger)
        case let .bool(b):
            try appendInteger(b ? 1 : 0, tag: Tag.constexprInteger)
        case let .float(d):
            if d.rounded(.towardZero) == d, let exact = Int128(exactly: d) {
                try appendInteger(exact, tag: Tag.constexprInteger)
            } else {
                try append(Tag.constexprFloat)
                try append(d.bitPattern)
            }
        case .null:
            try append(Tag.constexprNone)
        case let .interned(id):
            try append(Tag.constexprInterned | UInt64(id))
        case let .tensor(dtype, address, _):
            // Never produced for a constexpr parameter (the translation layer steps aside), but
            // keep the key total: equal only to the very same tensor view.
            try append(Tag.constexprTensor | UInt64(dtype))
            try append(address)
        }
    }

    /// A keyword option such as `num_warps=4`. Triton keys on `str(options)`, where `4`, `4.0` and
    /// `True` print differently, so options keep their Python type in the key.
    public mutating func appendOption(name: UInt32, value: ArgumentValue) throws(Overflow) {
        try append(Tag.optionName | UInt64(name))
        switch value {
        case let .integer(v): try appendInteger(v, tag: Tag.optionInteger)
        case let .bool(b): try append(Tag.optionBool | (b ? 1 : 0))
        case let .float(d):
            try append(Tag.optionFloat)
            try append(d.bitPattern)
        case .null: try append(Tag.optionNone)
        case let .interned(id): try append(Tag.optionInterned | UInt64(id))
        case let .tensor(dtype, address, _):
            try append(Tag.optionTensor | UInt64(dtype))
            try append(address)
        }
    }

    private mutating func appendInteger(_ v: Int128, tag: UInt64) throws(Overflow) {
        try append(tag)
        try append(UInt64(truncatingIfNeeded: v))
        try append(UInt64(truncatingIfNeeded: v >> 64))
    }

    /// The top byte of every word says what the word is, so no two different argument lists can
    /// produce the same word sequence by running one field into the next.
    enum Tag {
        static let device: UInt64 = 0x01 << 56
        static let specialization: UInt64 = 0x02 << 56
        static let constexprInteger: UInt64 = 0x03 << 56
        static let constexprFloat: UInt64 = 0x04 << 56
        static let constexprNone: UInt64 = 0x05 << 56
        static let constexprInterned: UInt64 = 0x06 << 56
        static let constexprTensor: UInt64 = 0x07 << 56
        static let optionName: UInt64 = 0x10 << 56
        static let optionInteger: UInt64 = 0x11 << 56
        static let optionBool: UInt64 = 0x12 << 56
        static let optionFloat: UInt64 = 0x13 << 56
        static let optionNone: UInt64 = 0x14 << 56
        static let optionInterned: UInt64 = 0x15 << 56
        static let optionTensor: UInt64 = 0x16 << 56
    }

    static func code(_ key: Specialization.Key) -> UInt64 {
        switch key {
        case .none: return 1
        case .divisibleBy16: return 2
        case .plain: return 3
        case .one: return 4
        case .constantNone: return 5
        }
    }

    static func code(_ kind: Specialization.Kind) -> UInt64 {
        switch kind {
        case let .pointer(dtype, const): return 0x1_0000 | UInt64(dtype) << 1 | (const ? 1 : 0)
        case .i32: return 1
        case .i64: return 2
        case .u64: return 3
        case .u1: return 4
        case .fp32: return 5
        case .constexpr: return 6
        case let .annotated(type): return 0x100_0000 | code(type)
        }
    }

    static func code(_ type: ScalarType) -> UInt64 {
        switch type {
        case .i1: return 1
        case .i8: return 2
        case .i16: return 3
        case .i32: return 4
        case .i64: return 5
        case .u1: return 6
        case .u8: return 7
        case .u16: return 8
        case .u32: return 9
        case .u64: return 10
        case .fp16: return 11
        case .bf16: return 12
        case .fp32: return 13
        case .fp64: return 14
        case let .pointer(dtype, const): return 0x1_0000 | UInt64(dtype) << 1 | (const ? 1 : 0)
        }
    }
}

extension UnsafeBufferPointer where Element == UInt64 {
    /// A fast, well-mixed hash of a key's words (the multiply-xorshift finaliser of SplitMix64).
    /// Equality is always checked word by word after it, so collisions cost time, never correctness.
    @inlinable
    public var dispatchHash: UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(truncatingIfNeeded: count &+ 1)
        for word in self {
            h = (h ^ word) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
        }
        h = (h ^ (h >> 30)) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }
}

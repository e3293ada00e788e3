/// One kernel argument as the translation layer read it off a Python object. Reading happens once
/// per call; specialization, the dispatch key and parameter packing all work from this value.
public enum ArgumentValue: Equatable, Sendable {
    /// A torch tensor: `dtype` indexes the element-type table given to `ElementTypes`; `device` is
    /// the CUDA device torch keeps its memory on (`Tensor.get_device()`: -1 for CPU memory).
    case tensor(dtype: UInt16, address: UInt64, device: Int32 = 0)
    /// A Python `int` (or subclass such as `IntEnum`), `bool` excluded. Values outside Int128 are
    /// never produced: the translation layer steps aside before building one.
    case integer(Int128)
    case bool(Bool)
    case float(Double)
    case null  // Python None
    /// A value that only a `tl.constexpr` parameter may take (a string, say), interned by the
    /// translation layer: equal ids mean equal Python values.
    case interned(UInt32)
}

/// What Triton's `KernelParam` says about one parameter, fixed for the life of a kernel.
public struct ParameterTraits: Equatable, Sendable {
    public var isConstexpr: Bool
    public var isConst: Bool
    public var specialize: Bool
    public var alignment: Bool
    /// Triton's `annotation_type`: a canonical scalar or pointer type the parameter is declared with.
    public var annotation: ScalarType?
    /// The Python parameter kind; how a call binds to it depends on the Triton release
    /// (`TritonRules.positionalLimit`).
    public var kind: ParameterKind

    public init(isConstexpr: Bool = false, isConst: Bool = false, specialize: Bool = true,
                alignment: Bool = true, annotation: ScalarType? = nil, kind: ParameterKind = .positionalOrKeyword) {
        self.isConstexpr = isConstexpr
        self.isConst = isConst
        self.specialize = specialize
        self.alignment = alignment
        self.annotation = annotation
        self.kind = kind
    }
}

/// The scalar and pointer type names of Triton's signatures (`"i32"`, `"fp16"`, `"*fp32"`, ...).
public enum ScalarType: Hashable, Sendable {
    case i1, i8, i16, i32, i64
    case u1, u8, u16, u32, u64
    case fp16, bf16, fp32, fp64
    /// A pointer to elements of the named dtype (index into `ElementTypes`); `const` is `*k`.
    case pointer(dtype: UInt16, const: Bool)

    /// Parses a canonical Triton type string; `elementTypes` resolves pointer element names.
    public init?(tritonName name: String, elementTypes: ElementTypes) {
        if name.hasPrefix("*") {
            var element = name.dropFirst()
            let isConst = element.hasPrefix("k")
            if isConst { element = element.dropFirst() }
            guard let dtype = elementTypes.index(ofTritonName: String(element)) else { return nil }
            self = .pointer(dtype: dtype, const: isConst)
            return
        }
        switch name {
        case "i1": self = .i1
        case "i8": self = .i8
        case "i16": self = .i16
        case "i32": self = .i32
        case "i64": self = .i64
        case "u1": self = .u1
        case "u8": self = .u8
        case "u16": self = .u16
        case "u32": self = .u32
        case "u64": self = .u64
        case "fp16": self = .fp16
        case "bf16": self = .bf16
        case "fp32", "f32": self = .fp32
        case "fp64": self = .fp64
        default: return nil
        }
    }

    /// Triton skips runtime specialization of parameters annotated as bools and floats.
    var skipsSpecialization: Bool {
        switch self {
        case .u1, .fp16, .bf16, .fp32, .fp64: return true
        default: return false
        }
    }
}

/// The element types a tensor may carry, as Triton names them (`"fp32"`, `"bf16"`, `"fp8e4nv"`, ...).
/// The translation layer builds it once from Triton's own canonicalisation of every torch dtype.
public struct ElementTypes: Sendable {
    public private(set) var tritonNames: [String]

    public init(tritonNames: [String]) {
        self.tritonNames = tritonNames
    }

    public func index(ofTritonName name: String) -> UInt16? {
        tritonNames.firstIndex(of: name).map { UInt16($0) }
    }

    /// Adds a name if it is new and returns its index.
    public mutating func intern(_ name: String) -> UInt16 {
        if let existing = index(ofTritonName: name) { return existing }
        tritonNames.append(name)
        return UInt16(tritonNames.count - 1)
    }
}

@preconcurrency import CPython
import SwiftLaunchCore

/// AOTInductor's stable C shim (`aoti_torch_get_*`, exported by `libtorch_cpu.so` since torch 2.4):
/// plain C functions that read one field of an `at::Tensor` through a pointer to it (an
/// `AtenTensorHandle`) and return 0 on success. Found in the already-loaded library, never linked.
struct TorchShim {
    typealias Int32Field = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Int32>?) -> Int32
    typealias Int64Field = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Int64>?) -> Int32
    typealias PointerField = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32
    typealias ArrayField = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeMutablePointer<Int64>?>?) -> Int32
    typealias Code = @convention(c) () -> Int32

    let dataPtr: PointerField
    let dtype: Int32Field
    let deviceType: Int32Field
    let deviceIndex: Int32Field
    let dim: Int64Field
    let storageOffset: Int64Field
    let sizes: ArrayField
    let strides: ArrayField
    let cudaDeviceType: Int32
    let cpuDeviceType: Int32
    /// `aoti_torch_get_layout` and the strided layout's code, where this torch has them: a strided
    /// layout is checked before sizes and strides are read, since reading the strides of a sparse
    /// tensor fails slowly and prints a C++ backtrace.
    let layout: Int32Field?
    let stridedLayout: Int32?

    /// Resolves every function from `libraryPath`, which must already be loaded (torch imported):
    /// torch loads its libraries `RTLD_LOCAL`, so they are found through the library's own handle.
    init(libraryPath: String) throws(TensorReaderError) {
        guard let handle = dlopen(libraryPath, RTLD_NOLOAD | RTLD_LAZY) else {
            throw .library(libraryPath)
        }
        func symbol(_ name: String) throws(TensorReaderError) -> UnsafeMutableRawPointer {
            guard let address = dlsym(handle, name) else { throw .missingFunction(name) }
            return address
        }
        // Sound: each cast gives the function the C signature torch's shim header
        // (torch/csrc/inductor/aoti_torch/c/shim.h) declares for it.
        dataPtr = unsafeBitCast(try symbol("aoti_torch_get_data_ptr"), to: PointerField.self)
        dtype = unsafeBitCast(try symbol("aoti_torch_get_dtype"), to: Int32Field.self)
        deviceType = unsafeBitCast(try symbol("aoti_torch_get_device_type"), to: Int32Field.self)
        deviceIndex = unsafeBitCast(try symbol("aoti_torch_get_device_index"), to: Int32Field.self)
        dim = unsafeBitCast(try symbol("aoti_torch_get_dim"), to: Int64Field.self)
        storageOffset = unsafeBitCast(try symbol("aoti_torch_get_storage_offset"), to: Int64Field.self)
        sizes = unsafeBitCast(try symbol("aoti_torch_get_sizes"), to: ArrayField.self)
        strides = unsafeBitCast(try symbol("aoti_torch_get_strides"), to: ArrayField.self)
        cudaDeviceType = unsafeBitCast(try symbol("aoti_torch_device_type_cuda"), to: Code.self)()
        cpuDeviceType = unsafeBitCast(try symbol("aoti_torch_device_type_cpu"), to: Code.self)()
        if let getLayout = dlsym(handle, "aoti_torch_get_layout"), let strided = dlsym(handle, "aoti_torch_layout_strided") {
            layout = unsafeBitCast(getLayout, to: Int32Field.self)
            stridedLayout = unsafeBitCast(strided, to: Code.self)()
        } else {
            layout = nil
            stridedLayout = nil
        }
    }
}

enum TensorReaderError: Error, CustomStringConvertible {
    case library(String)
    case missingFunction(String)
    case handleNotFound(found: [Int])

    var description: String {
        switch self {
        case let .library(path): return "\(path) is not loaded"
        case let .missingFunction(name): return "torch's C shim has no \(name)"
        case let .handleNotFound(found):
            return "the tensor handle is not at exactly one offset in every probe (offsets found: \(found))"
        }
    }
}

/// Reads a tensor argument through the shim: an exact `torch.Tensor` / `Parameter` object holds its
/// `at::Tensor` at `handleOffset`, so the handle is the object's address plus that offset. Both the
/// offset and every field were checked at configure time against torch's own accessors on probe
/// tensors (the glue's `_torch_reader`); nothing here is guessed.
struct NativeTensorReader {
    let shim: TorchShim
    let handleOffset: Int
    /// The device type whose memory a launch may use: CUDA (the CPU only under the stand-in driver).
    let launchDeviceType: Int32
    /// torch's dtype code → index into the element types; `unknownDtype` where Triton has no name.
    let elementIndexByCode: UnsafeBufferPointer<UInt16>
    static let unknownDtype = UInt16.max

    @inline(__always)
    func handle(_ object: PyPtr) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(object) + handleOffset
    }

    /// dtype, address and device of an exact `torch.Tensor` / `Parameter`, device type first. Memory
    /// of another device type reads as nil for a launch (the call goes to Triton); for a key it reads
    /// with device -1, as `get_device()` would say for host memory. nil on any shim error or a dtype
    /// Triton has no name for: it never makes up a value.
    @inline(__always)
    func read(_ object: PyPtr, anyDevice: Bool) -> ArgumentValue? {
        let tensor = handle(object)
        var deviceType: Int32 = -1
        guard shim.deviceType(tensor, &deviceType) == 0 else { return nil }
        let launchable = deviceType == launchDeviceType
        guard launchable || anyDevice else { return nil }
        var code: Int32 = -1
        guard shim.dtype(tensor, &code) == 0, code >= 0, Int(code) < elementIndexByCode.count else { return nil }
        let index = elementIndexByCode[Int(code)]
        guard index != Self.unknownDtype else { return nil }
        var data: UnsafeMutableRawPointer?
        guard shim.dataPtr(tensor, &data) == 0 else { return nil }
        var device: Int32 = -1
        if launchable {
            guard shim.deviceIndex(tensor, &device) == 0 else { return nil }
        }
        return .tensor(dtype: index, address: UInt64(UInt(bitPattern: data)), device: device)
    }

    /// What Helion's prepared-call guard reads of a tensor (`dtype`, `shape`, `stride()`, `device`),
    /// on any device: the raw dtype code (one per `torch.dtype` object, so equal codes mean the same
    /// dtype object), torch's device type and index (-1 for the CPU), and the sizes and strides,
    /// borrowed from the tensor. nil on any shim error or a non-strided layout.
    @inline(__always)
    func guardFields(_ object: PyPtr) -> HelionTensorFields? {
        let tensor = handle(object)
        if let layout = shim.layout {
            var code: Int32 = -1
            guard layout(tensor, &code) == 0, code == shim.stridedLayout else { return nil }
        }
        var fields = HelionTensorFields(dtype: -1, deviceType: -1, deviceIndex: -1, dim: 0, sizes: nil, strides: nil)
        var dim: Int64 = 0
        var sizes: UnsafeMutablePointer<Int64>?
        var strides: UnsafeMutablePointer<Int64>?
        guard shim.deviceType(tensor, &fields.deviceType) == 0, shim.deviceIndex(tensor, &fields.deviceIndex) == 0,
              shim.dtype(tensor, &fields.dtype) == 0, shim.dim(tensor, &dim) == 0, dim >= 0,
              shim.sizes(tensor, &sizes) == 0, shim.strides(tensor, &strides) == 0
        else { return nil }
        fields.dim = Int(dim)
        fields.sizes = UnsafePointer(sizes)
        fields.strides = UnsafePointer(strides)
        guard dim == 0 || (sizes != nil && strides != nil) else { return nil }
        return fields
    }

    /// Whether torch keeps this tensor's memory on the launch device type (asked only to name the
    /// reason a read failed).
    func isOnLaunchDeviceType(_ object: PyPtr) -> Bool {
        var deviceType: Int32 = -1
        return shim.deviceType(handle(object), &deviceType) == 0 && deviceType == launchDeviceType
    }
}

/// The reader between `tensor_reader_probe` and `configure`: its shim and handle offset are known,
/// and the glue validates it field by field through `read_tensor` before turning it on.
enum TensorReaderCandidate {
    nonisolated(unsafe) static var shim: TorchShim?
    nonisolated(unsafe) static var handleOffset: Int?
    /// Exact types the probe accepted (borrowed: torch's types live as long as the process).
    nonisolated(unsafe) static var tensorTypes: [PyPtr] = []

    static func isTensor(_ object: PyPtr) -> Bool {
        tensorTypes.contains { hasExactType(object, $0) }
    }
}

/// `_native.tensor_reader_probe(library_path, tensor_types, probes)` → `(offset, cuda_code, cpu_code)`.
/// `probes` is a tuple of `(tensor, tensor._cdata)` pairs, each tensor of one of `tensor_types`
/// exactly. The handle offset is the one offset in `[16, __basicsize__)` of `torch.Tensor` whose
/// 8-byte word holds `_cdata` (the `TensorImpl*`) in every probe; no word is dereferenced to find it.
/// Raises RuntimeError saying why when there is no such single offset or a shim function is missing.
let tensorReaderProbeFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 3, let pathObject = args[0], let types = args[1], let probes = args[2],
          SL_UnicodeCheck(pathObject) != 0, SL_TupleCheck(types) != 0, SL_TupleCheck(probes) != 0,
          PyTuple_Size(types) >= 1, PyTuple_Size(probes) >= 1
    else {
        raise(SL_ExcTypeError(), "tensor_reader_probe(library_path: str, tensor_types: tuple, probes: tuple)")
        return nil
    }
    guard let path = swiftString(pathObject) else { return nil }
    var typeObjects: [PyPtr] = []
    for index in 0..<PyTuple_Size(types) {
        let type = PyTuple_GetItem(types, index)!
        guard PyType_Check(type) != 0 else {
            raise(SL_ExcTypeError(), "tensor_types must hold types")
            return nil
        }
        typeObjects.append(type)
    }
    // The scan reads at most the base type's instance size, which every exact instance has.
    guard let basicSize = typeBasicSize(typeObjects[0]) else { return nil }
    var candidates = Set(stride(from: 16, to: basicSize - 7, by: 8))
    for index in 0..<PyTuple_Size(probes) {
        guard let pair = PyTuple_GetItem(probes, index), SL_TupleCheck(pair) != 0, PyTuple_Size(pair) == 2,
              let tensor = PyTuple_GetItem(pair, 0), let cdataObject = PyTuple_GetItem(pair, 1),
              typeObjects.contains(where: { hasExactType(tensor, $0) }), SL_LongCheck(cdataObject) != 0
        else {
            raise(SL_ExcTypeError(), "each probe is (tensor of an exact tensor type, int)")
            return nil
        }
        let cdata = PyLong_AsUnsignedLongLong(cdataObject)
        if PyErr_Occurred() != nil { return nil }
        // Sound: the object is an instance of a type at least `basicSize` bytes large, so every
        // word read lies inside it; words are compared, never followed.
        let base = UnsafeRawPointer(tensor)
        candidates = candidates.filter { base.loadUnaligned(fromByteOffset: $0, as: UInt64.self) == cdata }
    }
    guard candidates.count == 1, let offset = candidates.first else {
        raise(SL_ExcRuntimeError(), TensorReaderError.handleNotFound(found: candidates.sorted()).description)
        return nil
    }
    let shim: TorchShim
    do throws(TensorReaderError) {
        shim = try TorchShim(libraryPath: path)
    } catch {
        raise(SL_ExcRuntimeError(), error.description)
        return nil
    }
    for type in typeObjects { SL_IncRef(type) }
    TensorReaderCandidate.shim = shim
    TensorReaderCandidate.handleOffset = offset
    TensorReaderCandidate.tensorTypes = typeObjects
    guard let offsetObject = newInteger(offset), let cuda = newInteger(Int(shim.cudaDeviceType)),
          let cpu = newInteger(Int(shim.cpuDeviceType)), let result = PyTuple_New(3)
    else { return nil }
    PyTuple_SetItem(result, 0, offsetObject)
    PyTuple_SetItem(result, 1, cuda)
    PyTuple_SetItem(result, 2, cpu)
    return result
}

private func typeBasicSize(_ type: PyPtr) -> Int? {
    guard let object = PyObject_GetAttrString(type, "__basicsize__") else { return nil }
    defer { SL_DecRef(object) }
    let size = PyLong_AsSsize_t(object)
    if size < 0 {
        if PyErr_Occurred() == nil { raise(SL_ExcValueError(), "negative __basicsize__") }
        return nil
    }
    return size
}

/// `_native.read_tensor(tensor)` → `(device_type, device_index, dtype_code, data_ptr, dim, sizes,
/// strides, storage_offset)` read through the probed shim, for the glue's validation and the
/// reader-parity tests. Raises TypeError for anything but an exact probed tensor type and
/// RuntimeError when a shim call fails or no probe ran.
let readTensorFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, object in
    guard let object, let shim = TensorReaderCandidate.shim, let offset = TensorReaderCandidate.handleOffset else {
        raise(SL_ExcRuntimeError(), "read_tensor needs tensor_reader_probe first")
        return nil
    }
    guard TensorReaderCandidate.isTensor(object) else {
        raise(SL_ExcTypeError(), "read_tensor takes an exact torch.Tensor or Parameter")
        return nil
    }
    let handle = UnsafeMutableRawPointer(object) + offset
    var deviceType: Int32 = 0, deviceIndex: Int32 = 0, dtype: Int32 = 0
    var data: UnsafeMutableRawPointer?
    var dim: Int64 = 0, storageOffset: Int64 = 0
    var sizes: UnsafeMutablePointer<Int64>?, strides: UnsafeMutablePointer<Int64>?
    let failed = [
        ("device_type", shim.deviceType(handle, &deviceType)), ("device_index", shim.deviceIndex(handle, &deviceIndex)),
        ("dtype", shim.dtype(handle, &dtype)), ("data_ptr", shim.dataPtr(handle, &data)),
        ("dim", shim.dim(handle, &dim)), ("storage_offset", shim.storageOffset(handle, &storageOffset)),
        ("sizes", shim.sizes(handle, &sizes)), ("strides", shim.strides(handle, &strides)),
    ].filter { $0.1 != 0 }.map(\.0)
    guard failed.isEmpty, let sizes, let strides, dim >= 0 else {
        raise(SL_ExcRuntimeError(), "torch's C shim failed to read: \(failed.joined(separator: ", "))")
        return nil
    }
    func integers(_ values: UnsafeMutablePointer<Int64>) -> PyPtr? {
        guard let tuple = PyTuple_New(Int(dim)) else { return nil }
        for index in 0..<Int(dim) {
            guard let item = PyLong_FromLongLong(values[index]) else { SL_DecRef(tuple); return nil }
            PyTuple_SetItem(tuple, index, item)
        }
        return tuple
    }
    let items: [PyPtr?] = [
        newInteger(Int(deviceType)), newInteger(Int(deviceIndex)), newInteger(Int(dtype)),
        PyLong_FromUnsignedLongLong(UInt64(UInt(bitPattern: data))), PyLong_FromLongLong(dim),
        integers(sizes), integers(strides), PyLong_FromLongLong(storageOffset),
    ]
    guard items.allSatisfy({ $0 != nil }), let result = PyTuple_New(items.count) else {
        for case let item? in items { SL_DecRef(item) }
        return nil
    }
    for (index, item) in items.enumerated() { PyTuple_SetItem(result, index, item!) }
    return result
}

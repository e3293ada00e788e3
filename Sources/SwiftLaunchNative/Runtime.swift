@preconcurrency import CPython
import SwiftLaunchCore

/// The Python objects the launch path reads, handed over once by `_native.configure(...)` from
/// the glue (which knows where torch and Triton keep them). A class, so the hot path reads fields
/// through one reference instead of copying the whole configuration; every object it holds is kept
/// alive for the life of the process.
final class Runtime {
    /// `torch.Tensor` and `torch.nn.Parameter`: the tensor types read natively (by exact type).
    let tensorTypes: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?)
    /// torch dtype objects, by identity, and their index in `elementTypes`.
    let dtypeObjects: UnsafeBufferPointer<PyPtr>
    let dtypeIndices: UnsafeBufferPointer<UInt16>
    let elementTypes: ElementTypes
    /// How tensor arguments are read: through torch's C shim when the glue validated it, else
    /// through torch's own accessors; neither before `configure` (every tensor then steps aside).
    let nativeReader: NativeTensorReader?
    let accessors: TensorAccessors?
    /// `torch._C._cuda_getCurrentRawStream`; nil without CUDA.
    let currentStream: BuiltinCall?
    /// The same answer through torch's C shim, when the glue validated it.
    let streamShim: TorchStreamShim?
    let knobs: KnobGuards?
    /// `triton.runtime._allocation._allocator` (a ContextVar) and `NullAllocator`.
    let allocator: PyPtr?
    let nullAllocatorType: PyPtr?
    /// What differs between Triton releases, picked once at configure time from the installed version.
    let rules: TritonRules
    /// The CUDA driver, or why it could not be loaded.
    let driver: DynamicDriver?
    let driverError: String

    /// Before `configure`: reads nothing as a tensor, and every launch steps aside.
    init() {
        tensorTypes = (nil, nil)
        dtypeObjects = UnsafeBufferPointer(start: nil, count: 0)
        dtypeIndices = UnsafeBufferPointer(start: nil, count: 0)
        elementTypes = ElementTypes(tritonNames: [])
        nativeReader = nil
        accessors = nil
        currentStream = nil
        streamShim = nil
        knobs = nil
        allocator = nil
        nullAllocatorType = nil
        rules = .triton3_6
        driver = nil
        driverError = "not configured"
    }

    /// Takes over new references to every object it is given.
    /// `reader`: the probed shim reader's launch device type and torch's dtype code for each entry of
    /// `dtypes`, or nil to read through `accessors`.
    init(tensorTypes: [PyPtr], dtypes: [(PyPtr, String)], reader: (launchDeviceType: Int32, dtypeCodes: [Int32])?,
         accessors: TensorAccessors?, currentStream: PyPtr?, streamShim: TorchStreamShim?, knobs: KnobGuards?,
         allocator: PyPtr?, nullAllocatorType: PyPtr?, rules: TritonRules) {
        self.tensorTypes = (tensorTypes.first.map(UnsafeMutableRawPointer.init),
                            tensorTypes.dropFirst().first.map(UnsafeMutableRawPointer.init))
        var elementTypes = ElementTypes(tritonNames: [])
        let objects = UnsafeMutableBufferPointer<PyPtr>.allocate(capacity: dtypes.count)
        let indices = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: dtypes.count)
        for (index, (object, name)) in dtypes.enumerated() {
            objects[index] = object
            indices[index] = elementTypes.intern(name)
        }
        dtypeObjects = UnsafeBufferPointer(objects)
        dtypeIndices = UnsafeBufferPointer(indices)
        self.elementTypes = elementTypes
        if let reader, let shim = TensorReaderCandidate.shim, let offset = TensorReaderCandidate.handleOffset {
            let table = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: Int(reader.dtypeCodes.max() ?? 0) + 1)
            table.initialize(repeating: NativeTensorReader.unknownDtype)
            for (position, code) in reader.dtypeCodes.enumerated() where code >= 0 {
                table[Int(code)] = indices[position]
            }
            nativeReader = NativeTensorReader(shim: shim, handleOffset: offset, launchDeviceType: reader.launchDeviceType,
                                              elementIndexByCode: UnsafeBufferPointer(table))
        } else {
            nativeReader = nil
        }
        self.accessors = accessors
        self.currentStream = currentStream.map { BuiltinCall(function: $0) }
        self.streamShim = streamShim
        self.knobs = knobs
        self.allocator = allocator
        self.nullAllocatorType = nullAllocatorType
        self.rules = rules
        do throws(DynamicDriver.LoadError) {
            driver = try DynamicDriver()
            driverError = ""
        } catch {
            driver = nil
            driverError = error.description
        }
    }

    nonisolated(unsafe) static var shared = Runtime() {
        // Launch calls hold the runtime unretained: a replaced one must never be freed.
        willSet { retired.append(shared) }
    }
    nonisolated(unsafe) private static var retired: [Runtime] = []

    /// Strings given as constexpr values or option values, so that keys can name them by number.
    nonisolated(unsafe) static var internedValues: [PyRef] = []

    /// Triton's canonical name of a tensor's dtype, by identity of the torch dtype object.
    @inline(__always)
    func dtypeIndex(_ dtype: PyPtr) -> UInt16? {
        for index in 0..<dtypeObjects.count where dtypeObjects[index] == dtype { return dtypeIndices[index] }
        return nil
    }

    /// dtype, address and device of an exact tensor argument; `anyDevice` (keys only) reads memory of
    /// any device type, which no launch may use.
    @inline(__always)
    func readTensor(_ object: PyPtr, anyDevice: Bool) -> ArgumentValue? {
        if let nativeReader { return nativeReader.read(object, anyDevice: anyDevice) }
        return accessors?.read(object, self)
    }

    /// Why a tensor argument could not be read for a launch (asked only after a failed read).
    func unreadableTensorReason(_ object: PyPtr) -> String {
        if let nativeReader, !nativeReader.isOnLaunchDeviceType(object) {
            return StepAside.pointerNotDeviceMemory(position: 0).label
        }
        return "argument type not handled"
    }

    @inline(__always)
    func isTensor(_ object: PyPtr) -> Bool {
        let type = UnsafeMutableRawPointer(SL_Type(object))
        return type == tensorTypes.0 || type == tensorTypes.1
    }

    static func intern(_ object: PyPtr) -> UInt32? {
        for (index, known) in internedValues.enumerated() {
            if known.object == object { return UInt32(index) }
            let equal = PyObject_RichCompareBool(known.object, object, Py_EQ)
            if equal < 0 { PyErr_Clear(); return nil }
            if equal == 1 { return UInt32(index) }
        }
        // A program that keeps making new strings should not grow this without bound.
        guard internedValues.count < 4096 else { return nil }
        internedValues.append(PyRef(borrowing: object))
        return UInt32(internedValues.count - 1)
    }
}

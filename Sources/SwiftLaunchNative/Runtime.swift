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
    let tensorAccess: TensorAccess?
    /// `torch._C._cuda_getCurrentRawStream`; nil without CUDA.
    let currentStream: BuiltinCall?
    let knobs: KnobGuards?
    /// `triton.runtime._allocation._allocator` (a ContextVar) and `NullAllocator`.
    let allocator: PyPtr?
    let nullAllocatorType: PyPtr?
    /// The CUDA driver, or why it could not be loaded.
    let driver: DynamicDriver?
    let driverError: String

    /// Before `configure`: reads nothing as a tensor, and every launch steps aside.
    init() {
        tensorTypes = (nil, nil)
        dtypeObjects = UnsafeBufferPointer(start: nil, count: 0)
        dtypeIndices = UnsafeBufferPointer(start: nil, count: 0)
        elementTypes = ElementTypes(tritonNames: [])
        tensorAccess = nil
        currentStream = nil
        knobs = nil
        allocator = nil
        nullAllocatorType = nil
        driver = nil
        driverError = "not configured"
    }

    /// Takes over new references to every object it is given.
    init(tensorTypes: [PyPtr], dtypes: [(PyPtr, String)], tensorAccess: TensorAccess?, currentStream: PyPtr?,
         knobs: KnobGuards?, allocator: PyPtr?, nullAllocatorType: PyPtr?) {
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
        self.tensorAccess = tensorAccess
        self.currentStream = currentStream.map { BuiltinCall(function: $0) }
        self.knobs = knobs
        self.allocator = allocator
        self.nullAllocatorType = nullAllocatorType
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

/// torch's own C accessors of `torch._C.TensorBase`, called directly instead of through attribute
/// lookup. The glue hands them over only after checking that `torch.Tensor` and `Parameter` resolve
/// `dtype`, `data_ptr` and `get_device` to exactly these objects, and only tensors of those exact
/// types are read through them.
struct TensorAccess {
    /// The `dtype` getset descriptor and its type's `tp_descr_get` (it is a data descriptor, so no
    /// instance attribute can shadow it).
    let dtype: PyPtr
    let dtypeGet: descrgetfunc
    let dataPtr: BuiltinCall
    let getDevice: BuiltinCall

    /// `probe` is a tensor to bind the method descriptors to, to find their C functions.
    init?(dtype: PyPtr, dataPtr: PyPtr, getDevice: PyPtr, probe: PyPtr) {
        guard let get = PyType_GetSlot(SL_Type(dtype), Py_tp_descr_get) else { return nil }
        // Sound: `Py_tp_descr_get` holds a `descrgetfunc`, as the slot's documentation says.
        dtypeGet = unsafeBitCast(get, to: descrgetfunc.self)
        self.dtype = dtype
        self.dataPtr = BuiltinCall(method: dataPtr, probe: probe)
        self.getDevice = BuiltinCall(method: getDevice, probe: probe)
    }
}

/// A builtin called through its C function, as CPython's own dispatch calls it, skipping the generic
/// call path: a `METH_NOARGS` method as `(object, NULL)`, a `METH_O` function as `(module, argument)`.
/// When the builtin is not of the expected kind, `callable` is called through vectorcall instead.
struct BuiltinCall {
    let callable: PyPtr
    let function: PyCFunction?
    /// `METH_NOARGS` methods take the call's object as `self`; `METH_O` functions their module.
    let objectIsSelf: Bool
    let boundSelf: PyPtr?

    /// A `METH_NOARGS` method descriptor; `probe` (an object of its type) binds it to find its C function.
    init(method descriptor: PyPtr, probe: PyPtr) {
        var bound: PyPtr?
        if let get = PyType_GetSlot(SL_Type(descriptor), Py_tp_descr_get) {
            // Sound: `Py_tp_descr_get` holds a `descrgetfunc`.
            bound = unsafeBitCast(get, to: descrgetfunc.self)(descriptor, probe, nil)
        }
        PyErr_Clear()
        self.init(callable: descriptor, builtin: bound, flags: METH_NOARGS)
        if let bound { SL_DecRef(bound) }
    }

    /// A `METH_O` module function (`torch._C._cuda_getCurrentRawStream`).
    init(function: PyPtr) {
        self.init(callable: function, builtin: function, flags: METH_O)
    }

    private init(callable: PyPtr, builtin: PyPtr?, flags: Int32) {
        self.callable = callable
        objectIsSelf = flags == METH_NOARGS
        if let builtin, SL_CFunctionCheck(builtin) != 0, PyCFunction_GetFlags(builtin) == flags {
            function = PyCFunction_GetFunction(builtin)
            // Borrowed: a module function's module lives as long as the function; a bound method's
            // `self` (the probe) is never used, the call's object takes its place.
            boundSelf = objectIsSelf ? nil : PyCFunction_GetSelf(builtin)
        } else {
            function = nil
            boundSelf = nil
        }
    }

    /// Sound for methods only on objects of the type that defines them (the caller checks the exact
    /// type): that is all the descriptor checks before making the same call.
    @inline(__always)
    func callAsFunction(_ argument: PyPtr) -> PyPtr? {
        guard let function else { return call(callable, argument) }
        return objectIsSelf ? function(argument, nil) : function(boundSelf, argument)
    }
}

/// Why a call went to Triton's own path, counted for `swiftlaunch.stats()`.
struct Stats {
    var hits = 0
    var misses = 0
    var fallbacks: [String: Int] = [:]

    nonisolated(unsafe) static var shared = Stats()

    static func fallback(_ reason: String) {
        shared.fallbacks[reason, default: 0] += 1
    }
}

enum ArgumentReading {
    /// Reads a runtime (non-constexpr) argument; nil when it is of a kind handled only by Triton.
    @inline(__always)
    static func runtimeValue(_ object: PyPtr, _ runtime: Runtime) -> ArgumentValue? {
        if runtime.isTensor(object) { return tensorValue(object, runtime) }
        return scalarValue(object)
    }

    /// dtype, address and device of an exact `torch.Tensor` / `Parameter`.
    static func tensorValue(_ object: PyPtr, _ runtime: Runtime) -> ArgumentValue? {
        guard let access = runtime.tensorAccess else { return nil }
        guard let dtype = access.dtypeGet(access.dtype, object, UnsafeMutableRawPointer(SL_Type(object)).assumingMemoryBound(to: PyObject.self)) else {
            PyErr_Clear()
            return nil
        }
        let index = runtime.dtypeIndex(dtype)
        SL_DecRef(dtype)
        guard let index else { return nil }
        guard let pointer = access.dataPtr(object) else { PyErr_Clear(); return nil }
        // `unsigned long` is 64 bits on Linux, and its conversion reads the digits directly (the
        // `long long` one goes through a byte array on 3.11).
        let address = UInt64(PyLong_AsUnsignedLong(pointer))
        SL_DecRef(pointer)
        if address == UInt64.max && PyErr_Occurred() != nil { PyErr_Clear(); return nil }
        guard let deviceObject = access.getDevice(object) else { PyErr_Clear(); return nil }
        let device = PyLong_AsLong(deviceObject)
        SL_DecRef(deviceObject)
        guard let device = Int32(exactly: device) else { PyErr_Clear(); return nil }
        return .tensor(dtype: index, address: address, device: device)
    }

    /// Ints, bools, floats and None, the scalars Triton specializes.
    @inline(__always)
    static func scalarValue(_ object: PyPtr) -> ArgumentValue? {
        if object == SL_None() { return .null }
        if object == SL_True() { return .bool(true) }
        if object == SL_False() { return .bool(false) }
        if SL_LongCheck(object) != 0 {
            guard let value = readInteger(object) else { return nil }
            return .integer(value)
        }
        if SL_FloatCheck(object) != 0 {
            let value = PyFloat_AsDouble(object)
            if value == -1 && PyErr_Occurred() != nil { PyErr_Clear(); return nil }
            return .float(value)
        }
        return nil
    }

    /// Reads a value keyed by equality (constexpr parameters and options): scalars and strings.
    static func keyedValue(_ object: PyPtr) -> ArgumentValue? {
        if let scalar = scalarValue(object) {
            // NaN never equals itself, so Triton never finds its kernel again; neither should we.
            if case let .float(d) = scalar, d.isNaN { return nil }
            return scalar
        }
        if SL_UnicodeCheck(object) != 0, let id = Runtime.intern(object) {
            return .interned(id)
        }
        return nil
    }
}

@preconcurrency import CPython
import SwiftLaunchCore

/// `_native.configure(tensor_types, dtypes, current_stream, runtime_knobs, compilation_knobs,
/// hook_chain_type, allocator, null_allocator_type, tensor_access, reader, triton_version)`: called
/// once by the glue. `triton_version` is `(major, minor)` of the installed Triton: it picks the
/// `TritonRules` every conversion, launch, binding and knob guard follows (ValueError if the core has
/// none for that release).
/// `dtypes` is a tuple of `(torch_dtype, triton_name)` pairs; `current_stream` may be None (no CUDA);
/// `tensor_access` is `(dtype, data_ptr, get_device, probe)`: the first three from
/// `torch._C.TensorBase`, `probe` an empty tensor; or None. `reader` is None (read tensors through
/// `tensor_access`) or `(launch_device_type, dtype_codes)`: turn on the reader `tensor_reader_probe`
/// found, with torch's dtype code for each entry of `dtypes` (-1: none), and optionally whether to read
/// the current stream through the shim `stream_shim_probe` found instead of `current_stream`.
let configureFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 11, let tensorTypes = args[0], let dtypeTuple = args[1],
          SL_TupleCheck(tensorTypes) != 0, SL_TupleCheck(dtypeTuple) != 0
    else {
        raise(SL_ExcTypeError(), "configure takes 11 arguments, the first two tuples")
        return nil
    }
    guard let rules = tritonRules(args[10]!) else { return nil }
    // Every object kept below is kept for the life of the process, like the modules that own it.
    func kept(_ object: PyPtr?) -> PyPtr? {
        guard let object, object != SL_None() else { return nil }
        SL_IncRef(object)
        return object
    }
    var types: [PyPtr] = []
    for index in 0..<PyTuple_Size(tensorTypes) {
        let type = PyTuple_GetItem(tensorTypes, index)!
        guard PyType_Check(type) != 0 else {
            raise(SL_ExcTypeError(), "tensor_types must hold types")
            return nil
        }
        types.append(type)
    }
    // dtypes get 16-bit indices.
    guard PyTuple_Size(dtypeTuple) <= Int(UInt16.max) else {
        raise(SL_ExcValueError(), "at most 65535 dtypes")
        return nil
    }
    var dtypes: [(PyPtr, String)] = []
    for index in 0..<PyTuple_Size(dtypeTuple) {
        guard let pair = PyTuple_GetItem(dtypeTuple, index), SL_TupleCheck(pair) != 0, PyTuple_Size(pair) == 2,
              PyTuple_GetItem(pair, 0) != SL_None(),
              let nameObject = PyTuple_GetItem(pair, 1), SL_UnicodeCheck(nameObject) != 0,
              let name = swiftString(nameObject)
        else {
            raise(SL_ExcTypeError(), "dtypes must be (torch_dtype, triton_name) pairs")
            return nil
        }
        dtypes.append((PyTuple_GetItem(pair, 0)!, name))
    }
    var accessors: TensorAccessors?
    if let given = args[8], given != SL_None() {
        guard SL_TupleCheck(given) != 0, PyTuple_Size(given) == 4, let probe = PyTuple_GetItem(given, 3),
              // The accessors' C functions are called directly on tensors of these types: the probe
              // they were found with must be of a type every one of them derives from.
              types.allSatisfy({ PyType_IsSubtype(OpaquePointer($0), SL_Type(probe)) != 0 }),
              let made = TensorAccessors(dtype: PyTuple_GetItem(given, 0)!, dataPtr: PyTuple_GetItem(given, 1)!,
                                         getDevice: PyTuple_GetItem(given, 2)!, probe: probe)
        else {
            PyErr_Clear()
            raise(SL_ExcValueError(), "tensor_access is (dtype descriptor, data_ptr, get_device, probe tensor)")
            return nil
        }
        accessors = made
    }
    var reader: (launchDeviceType: Int32, dtypeCodes: [Int32])?
    var streamShim: TorchStreamShim?
    if let given = args[9], given != SL_None() {
        guard TensorReaderCandidate.shim != nil else {
            raise(SL_ExcRuntimeError(), "reader given, but tensor_reader_probe found none")
            return nil
        }
        if SL_TupleCheck(given) != 0, PyTuple_Size(given) == 3, PyObject_IsTrue(PyTuple_GetItem(given, 2)!) == 1 {
            guard let shim = TorchStreamShim.candidate else {
                raise(SL_ExcRuntimeError(), "stream shim asked for, but stream_shim_probe found none")
                return nil
            }
            streamShim = shim
        }
        guard SL_TupleCheck(given) != 0, (2...3).contains(PyTuple_Size(given)), let codes = PyTuple_GetItem(given, 1),
              SL_TupleCheck(codes) != 0, PyTuple_Size(codes) == dtypes.count,
              let deviceType = Int32(exactly: PyLong_AsLong(PyTuple_GetItem(given, 0)!))
        else {
            PyErr_Clear()
            raise(SL_ExcValueError(), "reader is (launch_device_type, one dtype code per dtype[, use_stream_shim])")
            return nil
        }
        var dtypeCodes: [Int32] = []
        for index in 0..<PyTuple_Size(codes) {
            let code = PyLong_AsLong(PyTuple_GetItem(codes, index)!)
            // Codes index a table: torch's ScalarType numbers are small.
            guard PyErr_Occurred() == nil, (-1...1023).contains(code) else {
                PyErr_Clear()
                raise(SL_ExcValueError(), "dtype codes are ints in [-1, 1023]")
                return nil
            }
            dtypeCodes.append(Int32(code))
        }
        reader = (deviceType, dtypeCodes)
    }
    var knobs: KnobGuards?
    if args[3] != SL_None() && args[4] != SL_None() && args[5] != SL_None() {
        guard let guards = KnobGuards(runtime: args[3]!, compilation: args[4]!, hookChainType: args[5]!,
                                      rules: rules)
        else { return nil }
        knobs = guards
    }
    // Kept only once nothing can fail any more.
    for type in types { SL_IncRef(type) }
    for (dtype, _) in dtypes { SL_IncRef(dtype) }
    if let accessors { for object in [accessors.dtype, accessors.dataPtr.callable, accessors.getDevice.callable] { SL_IncRef(object) } }
    Runtime.shared = Runtime(tensorTypes: types, dtypes: dtypes, reader: reader, accessors: accessors,
                             currentStream: kept(args[2]), streamShim: streamShim, knobs: knobs,
                             allocator: kept(args[6]), nullAllocatorType: kept(args[7]), rules: rules)
    return SL_NewRefNone()
}

/// The rules of `(major, minor)`; nil with ValueError set when the core has none.
private func tritonRules(_ version: PyPtr) -> TritonRules? {
    guard SL_TupleCheck(version) != 0, PyTuple_Size(version) == 2,
          let major = readInteger(PyTuple_GetItem(version, 0)!), let minor = readInteger(PyTuple_GetItem(version, 1)!)
    else {
        PyErr_Clear()
        raise(SL_ExcValueError(), "triton_version is (major, minor)")
        return nil
    }
    guard let majorInt = Int(exactly: major), let minorInt = Int(exactly: minor),
          let rules = TritonRules.forTriton(major: majorInt, minor: minorInt)
    else {
        let known = TritonRules.all.map(\.family).joined(separator: ", ")
        raise(SL_ExcValueError(), "no launch rules for triton \(major).\(minor) (the core knows \(known))")
        return nil
    }
    return rules
}

/// `_native.rules()` → the family of the `TritonRules` in use ("3.6" ... "3.9"; "3.6" before `configure`).
let rulesFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, _ in
    pyString(Runtime.shared.rules.family)
}

/// `_native.convert(value, type_name)` → the 8-byte slot (an int) the configured rules pack `value`
/// into for a scalar parameter of Triton type `type_name` ("i8", "u1", "fp16", "*fp32", ...), or None
/// where the core would step aside to Triton. For the conversion tests.
let convertFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 2, let name = swiftString(args[1]!) else {
        PyErr_Clear()
        raise(SL_ExcTypeError(), "convert(value, type_name)")
        return nil
    }
    let runtime = Runtime.shared
    let type: ScalarType
    if name.hasPrefix("*") {
        type = .pointer(dtype: 0, const: false)
    } else if let scalar = ScalarType(tritonName: name, elementTypes: runtime.elementTypes) {
        type = scalar
    } else {
        raise(SL_ExcValueError(), "not a scalar or pointer type: \(name)")
        return nil
    }
    guard let value = ArgumentReading.runtimeValue(args[0]!, runtime, anyDevice: true) else { return SL_NewRefNone() }
    do throws(PackingError) {
        return PyLong_FromUnsignedLongLong(try ParamPacker.pack(value, as: type, position: 0,
                                                                conversion: runtime.rules.conversion))
    } catch {
        return SL_NewRefNone()
    }
}

/// `_native.driver_info()` → `{"library": str, "version": int, "devices": [(name, major, minor, bytes)]}`;
/// raises RuntimeError saying why when there is no usable driver.
let driverInfoFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, _ in
    let driver: DynamicDriver
    if let loaded = Runtime.shared.driver {
        driver = loaded
    } else {
        do throws(DynamicDriver.LoadError) {
            driver = try DynamicDriver()
        } catch {
            raise(SL_ExcRuntimeError(), error.description)
            return nil
        }
    }
    let version: Int32
    let devices: [DynamicDriver.DeviceDescription]
    do throws(DriverError) {
        version = try driver.driverVersion()
        devices = try driver.devices()
    } catch {
        raise(SL_ExcRuntimeError(), error.description)
        return nil
    }
    guard let result = PyDict_New(), let list = PyList_New(0) else { return nil }
    defer { SL_DecRef(list) }
    for device in devices {
        guard let name = pyString(device.name), let major = newInteger(Int(device.computeCapability.major)),
              let minor = newInteger(Int(device.computeCapability.minor)), let bytes = newInteger(device.totalMemory),
              let tuple = PyTuple_New(4)
        else { SL_DecRef(result); return nil }
        PyTuple_SetItem(tuple, 0, name)
        PyTuple_SetItem(tuple, 1, major)
        PyTuple_SetItem(tuple, 2, minor)
        PyTuple_SetItem(tuple, 3, bytes)
        PyList_Append(list, tuple)
        SL_DecRef(tuple)
    }
    if let library = pyString(driver.libraryPath) { PyDict_SetItemString(result, "library", library); SL_DecRef(library) }
    if let number = newInteger(Int(version)) { PyDict_SetItemString(result, "version", number); SL_DecRef(number) }
    PyDict_SetItemString(result, "devices", list)
    return result
}

nonisolated(unsafe) private let moduleMethods: UnsafeMutablePointer<PyMethodDef> = {
    let methods = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 16 + HelionDispatchMethods.count)
    let fast = Int32(METH_FASTCALL)
    methods[0] = PyMethodDef(ml_name: strdup("configure"), ml_meth: unsafeBitCast(configureFunction, to: PyCFunction.self),
                             ml_flags: fast, ml_doc: nil)
    methods[1] = PyMethodDef(ml_name: strdup("specialize"), ml_meth: unsafeBitCast(specializeFunction, to: PyCFunction.self),
                             ml_flags: fast, ml_doc: strdup("specialize(arg, is_const, specialize, align) -> (type, key)"))
    methods[2] = PyMethodDef(ml_name: strdup("stats"), ml_meth: unsafeBitCast(statsFunction, to: PyCFunction.self),
                             ml_flags: Int32(METH_O), ml_doc: nil)
    methods[3] = PyMethodDef(ml_name: strdup("count_fallback"),
                             ml_meth: unsafeBitCast(countFallbackFunction, to: PyCFunction.self),
                             ml_flags: Int32(METH_O), ml_doc: nil)
    methods[4] = PyMethodDef(ml_name: strdup("driver_info"), ml_meth: unsafeBitCast(driverInfoFunction, to: PyCFunction.self),
                             ml_flags: Int32(METH_NOARGS), ml_doc: nil)
    methods[5] = PyMethodDef(ml_name: strdup("raw_launch_loop"),
                             ml_meth: unsafeBitCast(rawLaunchLoopFunction, to: PyCFunction.self),
                             ml_flags: fast, ml_doc: nil)
    methods[6] = PyMethodDef(ml_name: strdup("jit_getitem"), ml_meth: unsafeBitCast(jitGetItemFunction, to: PyCFunction.self),
                             ml_flags: Int32(METH_O), ml_doc: nil)
    methods[7] = PyMethodDef(ml_name: strdup("tensor_reader_probe"),
                             ml_meth: unsafeBitCast(tensorReaderProbeFunction, to: PyCFunction.self),
                             ml_flags: fast, ml_doc: nil)
    methods[8] = PyMethodDef(ml_name: strdup("read_tensor"), ml_meth: unsafeBitCast(readTensorFunction, to: PyCFunction.self),
                             ml_flags: Int32(METH_O), ml_doc: nil)
    methods[9] = PyMethodDef(ml_name: strdup("rules"), ml_meth: unsafeBitCast(rulesFunction, to: PyCFunction.self),
                             ml_flags: Int32(METH_NOARGS), ml_doc: nil)
    methods[10] = PyMethodDef(ml_name: strdup("convert"), ml_meth: unsafeBitCast(convertFunction, to: PyCFunction.self),
                              ml_flags: fast, ml_doc: strdup("convert(value, type_name) -> slot or None"))
    methods[11] = PyMethodDef(ml_name: strdup("stream_shim_probe"),
                             ml_meth: streamShimProbeFunction, ml_flags: Int32(METH_O), ml_doc: nil)
    methods[12] = PyMethodDef(ml_name: strdup("current_stream"), ml_meth: currentStreamFunction,
                              ml_flags: Int32(METH_O), ml_doc: nil)
    methods[13] = PyMethodDef(ml_name: strdup("constexpr_compare_configure"), ml_meth: constexprCompareConfigureFunction,
                              ml_flags: Int32(METH_O), ml_doc: nil)
    methods[14] = PyMethodDef(ml_name: strdup("global_differs"),
                              ml_meth: unsafeBitCast(globalDiffersFunction, to: PyCFunction.self), ml_flags: fast, ml_doc: nil)
    HelionDispatchMethods.write(into: methods + 15)
    methods[15 + HelionDispatchMethods.count] = PyMethodDef()
    return methods
}()

nonisolated(unsafe) private let moduleDefinition: UnsafeMutablePointer<PyModuleDef> = {
    let definition = UnsafeMutablePointer<PyModuleDef>.allocate(capacity: 1)
    definition.initialize(to: PyModuleDef(m_base: SL_ModuleDefHeadInit(), m_name: strdup("swiftlaunch._native"),
                                          m_doc: strdup("swiftlaunch's Swift core"), m_size: -1,
                                          m_methods: moduleMethods, m_slots: nil, m_traverse: nil,
                                          m_clear: nil, m_free: nil))
    return definition
}()

@_cdecl("PyInit__native")
public func PyInit__native() -> UnsafeMutablePointer<PyObject>? {
    resolveVectorcall()
    guard Names.make(), let module = PyModule_Create2(moduleDefinition, 3) else { return nil }
    guard Objects.makeTypes(module: module) else { SL_DecRef(module); return nil }
    return module
}

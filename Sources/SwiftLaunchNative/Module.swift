@preconcurrency import CPython
import SwiftLaunchCore

/// `_native.configure(tensor_types, dtypes, current_stream, runtime_knobs, compilation_knobs,
/// hook_chain_type, allocator, null_allocator_type, tensor_access)`: called once by the glue. `dtypes`
/// is a tuple of `(torch_dtype, triton_name)` pairs; `current_stream` may be None (no CUDA);
/// `tensor_access` is `(dtype, data_ptr, get_device, probe)`: the first three from
/// `torch._C.TensorBase`, `probe` an empty tensor; or None.
let configureFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 9 else {
        raise(SL_ExcTypeError(), "configure takes 9 arguments")
        return nil
    }
    // Every object kept below is kept for the life of the process, like the modules that own it.
    func kept(_ object: PyPtr?) -> PyPtr? {
        guard let object, object != SL_None() else { return nil }
        SL_IncRef(object)
        return object
    }
    let tensorTypes = args[0]!
    let dtypeTuple = args[1]!
    // Checked before anything is kept: tensors are matched by exact type, and dtypes get 16-bit indices.
    guard let typeCount = tupleArgument(tensorTypes, "tensor_types"),
          (0..<typeCount).allSatisfy({ PyType_Check(tupleItem(tensorTypes, $0)) != 0 }),
          let dtypeCount = tupleArgument(dtypeTuple, "dtypes"), dtypeCount <= Int(UInt16.max)
    else {
        if PyErr_Occurred() == nil { raise(SL_ExcTypeError(), "tensor_types are types; at most 65535 dtypes") }
        return nil
    }
    let types = (0..<typeCount).compactMap { kept(PyTuple_GetItem(tensorTypes, $0)) }
    var dtypes: [(PyPtr, String)] = []
    for index in 0..<dtypeCount {
        guard let pair = PyTuple_GetItem(dtypeTuple, index), SL_TupleCheck(pair) != 0, PyTuple_Size(pair) == 2,
              tupleItem(pair, 0) != SL_None(), SL_UnicodeCheck(tupleItem(pair, 1)) != 0
        else {
            raise(SL_ExcTypeError(), "dtypes must be (torch_dtype, triton_name) pairs")
            return nil
        }
        guard let name = swiftString(tupleItem(pair, 1)), let dtype = kept(tupleItem(pair, 0)) else { return nil }
        dtypes.append((dtype, name))
    }
    var access: TensorAccess?
    if let accessors = args[8], SL_TupleCheck(accessors) != 0 {
        guard PyTuple_Size(accessors) == 4, let dtype = kept(PyTuple_GetItem(accessors, 0)),
              let dataPtr = kept(PyTuple_GetItem(accessors, 1)), let getDevice = kept(PyTuple_GetItem(accessors, 2)),
              let probe = PyTuple_GetItem(accessors, 3),
              // The accessors' C functions are called directly on tensors of these types: the probe
              // they were found with must be of a type every one of them derives from.
              types.allSatisfy({ PyType_IsSubtype(OpaquePointer($0), SL_Type(probe)) != 0 }),
              let made = TensorAccess(dtype: dtype, dataPtr: dataPtr, getDevice: getDevice, probe: probe)
        else {
            raise(SL_ExcValueError(), "tensor_access is (dtype descriptor, data_ptr, get_device, probe tensor)")
            return nil
        }
        access = made
    }
    var knobs: KnobGuards?
    if let runtimeKnobs = kept(args[3]), let compilationKnobs = kept(args[4]), let chainType = kept(args[5]) {
        guard let guards = KnobGuards(runtime: runtimeKnobs, compilation: compilationKnobs, hookChainType: chainType)
        else { return nil }
        knobs = guards
    }
    Runtime.shared = Runtime(tensorTypes: types, dtypes: dtypes, tensorAccess: access, currentStream: kept(args[2]),
                             knobs: knobs, allocator: kept(args[6]), nullAllocatorType: kept(args[7]))
    return SL_NewRefNone()
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
    let methods = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 8)
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
    methods[7] = PyMethodDef()
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

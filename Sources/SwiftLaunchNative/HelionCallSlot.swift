@preconcurrency import CPython

// Helion's `Kernel` instances called without a Python frame.
//
// `install()` replaces `Kernel.__call__` with a Python shim, because Dynamo traces whatever
// `type(kernel).__call__` is and must see Helion's own method while compiling. Calling a Python
// `__call__` costs a frame, an args tuple and a kwargs dict before the shim's one native call
// (~0.4 µs on the H200's host, as much as the whole guard). CPython calls an instance through its
// type's `tp_call` slot, which for a class with a Python `__call__` is a generic function that looks
// `__call__` up and calls it. This file points `Kernel`'s `tp_call` at a native function that does
// what the shim does, while `Kernel.__call__` stays the shim: Dynamo, `inspect` and every attribute
// lookup see the shim, and CPython's own call goes native.
//
// Why that is sound:
// - the native function makes the shim's decision in the same order: keywords, or
//   `torch.compiler._is_compiling_flag` (torch.export running Python), call the shim itself; otherwise
//   the native dispatch, and for a call it hands back, the glue's `handed_back` (Helion's own call and
//   learning), exactly the shim's code for those results. Dynamo never calls the slot: it traces
//   bytecode, and reads `__call__` from the type;
// - CPython recomputes the slot whenever `__call__` is assigned on `Kernel` (or a base, or
//   `__bases__`): `uninstall()`'s restore, or anyone else's patch, puts the generic slot back and
//   their `__call__` is called. A subclass gets the generic slot at its creation (its `__call__` is
//   the shim's function, found in the MRO), so only exact `Kernel` instances come here;
// - the limited API has no setter for a slot: the slot's offset in the type object is found at
//   install by scanning a probe class (whose `tp_call`, read with `PyType_GetSlot`, is the same
//   generic function) for that pointer, requiring exactly one match, and the same match in `Kernel`;
//   after the write, `PyType_GetSlot` must read the native function back.

enum HelionCallSlot {
    struct Installed {
        /// `Kernel` (a strong reference: the type must outlive the pointer written into it).
        let type: PyRef
        let offset: Int
        let generic: UnsafeMutableRawPointer
        let shim: PyRef
        /// `handed_back(kernel, args, marker)`: the shim's code for a call the dispatch did not run.
        let handedBack: PyRef
        /// `vars(torch.compiler)`, for `_is_compiling_flag`.
        let compilerGlobals: PyRef
        let flagName: PyRef
    }

    nonisolated(unsafe) static var installed: Installed?

    /// The shim's own path: keywords, or torch.export's flag set (or unreadable).
    static func needsShim(_ slot: Installed, kwargs: PyPtr?) -> Bool {
        if let kwargs, PyDict_Size(kwargs) != 0 { return true }
        guard let flag = PyDict_GetItemWithError(slot.compilerGlobals.object, slot.flagName.object) else {
            PyErr_Clear()
            return true
        }
        return flag != SL_False()
    }

    /// The word at `offset` in a type object.
    static func word(_ type: PyPtr, _ offset: Int) -> UnsafeMutableRawPointer? {
        // Sound: `offset` lies inside `type.__basicsize__`, the size CPython allocates for every
        // instance of `type` (a class whose metaclass is exactly `type`, checked by the caller).
        UnsafeMutableRawPointer(type).load(fromByteOffset: offset, as: UnsafeMutableRawPointer?.self)
    }

    /// Offsets in `[0, size)` holding `value`.
    static func offsets(of value: UnsafeMutableRawPointer, in type: PyPtr, size: Int) -> [Int] {
        stride(from: 0, to: size - 7, by: 8).filter { word(type, $0) == value }
    }
}

/// `Kernel`'s `tp_call`: what the shim does, without its frame.
let helionCallSlotFunction: @convention(c) (PyPtr?, PyPtr?, PyPtr?) -> PyPtr? = { kernel, args, kwargs in
    guard let kernel, let args, let slot = HelionCallSlot.installed else {
        raise(SL_ExcRuntimeError(), "swiftlaunch: Helion's call slot called while not installed")
        return nil
    }
    guard let config = HelionDispatch.config, !HelionCallSlot.needsShim(slot, kwargs: kwargs) else {
        guard let full = PyTuple_New(PyTuple_Size(args) + 1) else { return nil }
        defer { SL_DecRef(full) }
        SL_IncRef(kernel)
        PyTuple_SetItem(full, 0, kernel)  // steals the reference
        for index in 0..<PyTuple_Size(args) {
            let item = PyTuple_GetItem(args, index)!
            SL_IncRef(item)
            PyTuple_SetItem(full, index + 1, item)
        }
        return PyObject_Call(slot.shim.object, full, kwargs)
    }
    guard let result = HelionDispatch.dispatch(config, kernel: kernel, args: args) else { return nil }
    guard result == config.handBack || result == config.refused else { return result }
    defer { SL_DecRef(result) }
    return call(slot.handedBack.object, kernel, args, result)
}

/// `_native.helion_call_slot_install(kernel_type, probe_type, shim, handed_back, compiler_globals)`:
/// points `kernel_type`'s `tp_call` at the native function (see above). Raises, changing nothing, when
/// a check fails. `probe_type`: a class with a Python `__call__`, created by the glue.
let helionCallSlotInstallFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 5, let kernelType = args[0], let probeType = args[1], let shim = args[2],
          let handedBack = args[3], let compilerGlobals = args[4],
          PyType_Check(kernelType) != 0, PyType_Check(probeType) != 0, PyCallable_Check(shim) != 0,
          PyCallable_Check(handedBack) != 0, SL_DictCheck(compilerGlobals) != 0
    else {
        raise(SL_ExcTypeError(), "helion_call_slot_install(kernel_type, probe_type, shim, handed_back, compiler_globals: dict)")
        return nil
    }
    guard HelionCallSlot.installed == nil else {
        raise(SL_ExcRuntimeError(), "helion_call_slot_install: already installed")
        return nil
    }
    let metatype = SL_TypeType()!
    for type in [kernelType, probeType] {
        let flags = PyType_GetFlags(OpaquePointer(type))
        guard flags & UInt(Py_TPFLAGS_HEAPTYPE) != 0, hasExactType(type, metatype) else {
            raise(SL_ExcTypeError(), "helion_call_slot_install: both must be classes whose metaclass is type")
            return nil
        }
    }
    guard let generic = PyType_GetSlot(OpaquePointer(probeType), Py_tp_call),
          PyType_GetSlot(OpaquePointer(kernelType), Py_tp_call) == generic
    else {
        raise(SL_ExcRuntimeError(), "helion_call_slot_install: Kernel's call slot is not the one of a class with a Python __call__")
        return nil
    }
    guard let sizeObject = PyObject_GetAttrString(metatype, "__basicsize__") else {
        return nil
    }
    let size = PyLong_AsSsize_t(sizeObject)
    SL_DecRef(sizeObject)
    guard size > 0 else {
        if PyErr_Occurred() == nil { raise(SL_ExcRuntimeError(), "type.__basicsize__ unreadable") }
        return nil
    }
    let found = HelionCallSlot.offsets(of: generic, in: probeType, size: size)
    guard found.count == 1, HelionCallSlot.offsets(of: generic, in: kernelType, size: size) == found,
          let flagName = PyUnicode_InternFromString("_is_compiling_flag")
    else {
        raise(SL_ExcRuntimeError(), "helion_call_slot_install: the call slot is not at exactly one offset (found \(found))")
        return nil
    }
    let offset = found[0]
    let native = unsafeBitCast(helionCallSlotFunction, to: UnsafeMutableRawPointer.self)
    // Sound: `offset` is the type object's `tp_call` (the one word holding what `PyType_GetSlot`
    // reads for it), and the native function has `tp_call`'s C signature (ternaryfunc).
    UnsafeMutableRawPointer(kernelType).storeBytes(of: native, toByteOffset: offset, as: UnsafeMutableRawPointer.self)
    PyType_Modified(OpaquePointer(kernelType))
    guard PyType_GetSlot(OpaquePointer(kernelType), Py_tp_call) == native else {
        UnsafeMutableRawPointer(kernelType).storeBytes(of: generic, toByteOffset: offset, as: UnsafeMutableRawPointer.self)
        PyType_Modified(OpaquePointer(kernelType))
        SL_DecRef(flagName)
        raise(SL_ExcRuntimeError(), "helion_call_slot_install: the written slot does not read back")
        return nil
    }
    HelionCallSlot.installed = .init(type: PyRef(borrowing: kernelType), offset: offset, generic: generic,
                                     shim: PyRef(borrowing: shim), handedBack: PyRef(borrowing: handedBack),
                                     compilerGlobals: PyRef(borrowing: compilerGlobals), flagName: PyRef(owning: flagName))
    return SL_NewRefNone()
}

/// `_native.helion_call_slot_uninstall()` → bool: puts the generic slot back if the native one is
/// still there (assigning `Kernel.__call__` would also do it); False when nothing was installed.
let helionCallSlotUninstallFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, _ in
    guard let slot = HelionCallSlot.installed else { return SL_NewRefFalse() }
    let type = slot.type.object
    let native = unsafeBitCast(helionCallSlotFunction, to: UnsafeMutableRawPointer.self)
    if PyType_GetSlot(OpaquePointer(type), Py_tp_call) == native {
        // Sound: the offset is the one found and written at install, in the same (retained) type.
        UnsafeMutableRawPointer(type).storeBytes(of: slot.generic, toByteOffset: slot.offset, as: UnsafeMutableRawPointer.self)
        PyType_Modified(OpaquePointer(type))
    }
    HelionCallSlot.installed = nil
    return SL_NewRefTrue()
}

@preconcurrency import CPython
import SwiftLaunchCore

/// Memory layouts of the three Python types this module defines. Each starts with the object
/// header; fields after it are read only through these structs.
struct KernelObjectLayout {
    var head: PyObject
    var state: UnsafeMutableRawPointer?  // +1 Unmanaged<KernelState>
}

struct BoundLaunchLayout {
    var head: PyObject
    var vectorcall: SLVectorcallFunc?
    var kernel: PyPtr?  // strong
    var grid: PyPtr?    // strong
}

struct LauncherLayout {
    var head: PyObject
    var vectorcall: SLVectorcallFunc?
    var state: UnsafeMutableRawPointer?  // +1 Unmanaged<LauncherState>
}

enum Objects {
    nonisolated(unsafe) static var kernelType: PyPtr!
    nonisolated(unsafe) static var boundLaunchType: PyPtr!
    nonisolated(unsafe) static var launcherType: PyPtr!
    /// The bound-launch type's allocator and deallocator, read once: one of each per `kernel[grid]`.
    nonisolated(unsafe) static var boundAlloc: allocfunc!
    nonisolated(unsafe) static var boundFree: freefunc!
    /// Outlives every descriptor made from it (never freed).
    nonisolated(unsafe) static let jitGetItemMethod = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 1)

    /// The kernel object's state, or nil (with RuntimeError set) once the cycle collector has cleared it.
    @inline(__always)
    static func kernelState(_ object: PyPtr) -> KernelState? {
        guard let raw = UnsafeMutableRawPointer(object).assumingMemoryBound(to: KernelObjectLayout.self).pointee.state
        else { return raiseCleared("kernel") }
        // Sound: set in `kernelNew`, released only by `kernelClear` or `kernelDealloc`, which set the
        // field to nil first. The caller's reference to the object keeps it from both for the call.
        return Unmanaged<KernelState>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The launcher object's state, or nil (with RuntimeError set) once the collector has cleared it.
    static func launcherState(_ object: PyPtr) -> LauncherState? {
        guard let raw = UnsafeMutableRawPointer(object).assumingMemoryBound(to: LauncherLayout.self).pointee.state
        else { return raiseCleared("launcher") }
        return Unmanaged<LauncherState>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Whether `object` is a `Kernel` (or a subclass) by its real type: `PyObject_IsInstance` would also
    /// believe a `__class__` attribute, and the layout behind the header must really be ours.
    static func isKernel(_ object: PyPtr) -> Bool {
        PyObject_TypeCheck(object, OpaquePointer(kernelType)) != 0
    }

    private static func raiseCleared<T>(_ what: String) -> T? {
        // Reachable only in the collector's corner cases (Python code that runs while a garbage cycle
        // is torn down) or through a direct `tp_clear` call; either way it must raise, not crash.
        raise(SL_ExcRuntimeError(), "this \(what) was cleared by the garbage collector")
        return nil
    }

    static var vectorcallSupported: Bool { interpreterVersion >= 0x030C_0000 }

    static func makeTypes(module: PyPtr) -> Bool {
        guard let kernel = makeType(
            name: "swiftlaunch._native.Kernel", basicSize: MemoryLayout<KernelObjectLayout>.size,
            slots: [
                PyType_Slot(slot: Py_tp_new, pfunc: unsafeBitCast(kernelNew, to: UnsafeMutableRawPointer.self)),
                PyType_Slot(slot: Py_tp_dealloc, pfunc: unsafeBitCast(kernelDealloc, to: UnsafeMutableRawPointer.self)),
                PyType_Slot(slot: Py_tp_traverse, pfunc: unsafeBitCast(kernelTraverse, to: UnsafeMutableRawPointer.self)),
                PyType_Slot(slot: Py_tp_clear, pfunc: unsafeBitCast(kernelClear, to: UnsafeMutableRawPointer.self)),
                PyType_Slot(slot: Py_mp_subscript, pfunc: unsafeBitCast(kernelSubscript, to: UnsafeMutableRawPointer.self)),
                PyType_Slot(slot: Py_tp_methods, pfunc: UnsafeMutableRawPointer(kernelMethods)),
            ], vectorcallOffset: nil, subclassable: true, collected: true),
            let bound = makeType(
                name: "swiftlaunch._native.BoundLaunch", basicSize: MemoryLayout<BoundLaunchLayout>.size,
                slots: [
                    PyType_Slot(slot: Py_tp_dealloc, pfunc: unsafeBitCast(boundDealloc, to: UnsafeMutableRawPointer.self)),
                    PyType_Slot(slot: Py_tp_call, pfunc: unsafeBitCast(boundCall, to: UnsafeMutableRawPointer.self)),
                ], vectorcallOffset: MemoryLayout<BoundLaunchLayout>.offset(of: \.vectorcall), instantiable: false),
            let launcher = makeType(
                name: "swiftlaunch._native.Launcher", basicSize: MemoryLayout<LauncherLayout>.size,
                slots: [
                    PyType_Slot(slot: Py_tp_new, pfunc: unsafeBitCast(launcherNew, to: UnsafeMutableRawPointer.self)),
                    PyType_Slot(slot: Py_tp_dealloc, pfunc: unsafeBitCast(launcherDealloc, to: UnsafeMutableRawPointer.self)),
                    PyType_Slot(slot: Py_tp_traverse, pfunc: unsafeBitCast(launcherTraverse, to: UnsafeMutableRawPointer.self)),
                    PyType_Slot(slot: Py_tp_clear, pfunc: unsafeBitCast(launcherClear, to: UnsafeMutableRawPointer.self)),
                    PyType_Slot(slot: Py_tp_call, pfunc: unsafeBitCast(launcherCall, to: UnsafeMutableRawPointer.self)),
                ], vectorcallOffset: MemoryLayout<LauncherLayout>.offset(of: \.vectorcall), collected: true)
        else { return false }
        kernelType = kernel
        boundLaunchType = bound
        // Sound: these slots hold exactly these C function types (Python's type-slot documentation).
        boundAlloc = unsafeBitCast(PyType_GetSlot(OpaquePointer(bound), Py_tp_alloc), to: allocfunc.self)
        boundFree = unsafeBitCast(PyType_GetSlot(OpaquePointer(bound), Py_tp_free), to: freefunc.self)
        launcherType = launcher
        // `jit_getitem(cls)`'s method: a METH_O `__getitem__(self, grid)`.
        jitGetItemMethod.initialize(to: PyMethodDef(
            ml_name: strdup("__getitem__"), ml_meth: unsafeBitCast(jitSubscript, to: PyCFunction.self),
            ml_flags: Int32(METH_O), ml_doc: strdup("kernel[grid]: a launch through the Swift core")))
        for (name, type) in [("Kernel", kernel), ("BoundLaunch", bound), ("Launcher", launcher)] {
            SL_IncRef(type)
            if PyModule_AddObject(module, name, type) < 0 { SL_DecRef(type); return false }
        }
        return true
    }

    /// Type specs, slot tables and names must outlive the interpreter: allocated once, never freed.
    /// `collected`: the type holds references the cycle collector must see (it then allocates
    /// through the collector and has traverse and clear slots). `instantiable: false`: made only by
    /// this module; without it a spec type inherits `object.__new__`, which would make an object
    /// whose fields are all null.
    private static func makeType(name: String, basicSize: Int, slots: [PyType_Slot], vectorcallOffset: Int?,
                                 subclassable: Bool = false, collected: Bool = false,
                                 instantiable: Bool = true) -> PyPtr? {
        var allSlots = slots
        var flags = UInt32(Py_TPFLAGS_DEFAULT) | (subclassable ? UInt32(Py_TPFLAGS_BASETYPE) : 0)
        if collected { flags |= UInt32(Py_TPFLAGS_HAVE_GC) }
        if !instantiable { flags |= UInt32(Py_TPFLAGS_DISALLOW_INSTANTIATION) }
        if let vectorcallOffset, vectorcallSupported {
            let members = UnsafeMutablePointer<PyMemberDef>.allocate(capacity: 2)
            members[0] = PyMemberDef(name: strdup("__vectorcalloffset__"), type: T_PYSSIZET,
                                     offset: vectorcallOffset, flags: READONLY, doc: nil)
            members[1] = PyMemberDef()
            allSlots.append(PyType_Slot(slot: Py_tp_members, pfunc: UnsafeMutableRawPointer(members)))
            flags |= UInt32(SL_TPFLAGS_HAVE_VECTORCALL)
        }
        allSlots.append(PyType_Slot(slot: 0, pfunc: nil))
        let slotTable = UnsafeMutablePointer<PyType_Slot>.allocate(capacity: allSlots.count)
        slotTable.initialize(from: allSlots, count: allSlots.count)
        let spec = UnsafeMutablePointer<PyType_Spec>.allocate(capacity: 1)
        spec.initialize(to: PyType_Spec(name: strdup(name), basicsize: Int32(basicSize), itemsize: 0,
                                        flags: flags, slots: slotTable))
        return PyType_FromSpec(spec)
    }

    nonisolated(unsafe) private static let kernelMethods: UnsafeMutablePointer<PyMethodDef> = {
        let methods = UnsafeMutablePointer<PyMethodDef>.allocate(capacity: 5)
        let fastKeywords = Int32(METH_FASTCALL | METH_KEYWORDS)
        methods[0] = PyMethodDef(ml_name: strdup("launch"),
                                 ml_meth: unsafeBitCast(kernelLaunchMethod, to: PyCFunction.self),
                                 ml_flags: fastKeywords, ml_doc: strdup("launch(grid, *args, **kwargs)"))
        methods[1] = PyMethodDef(ml_name: strdup("key"),
                                 ml_meth: unsafeBitCast(kernelKeyMethod, to: PyCFunction.self),
                                 ml_flags: fastKeywords,
                                 ml_doc: strdup("key(device, *args, **kwargs) -> bytes: the native dispatch key"))
        methods[2] = PyMethodDef(ml_name: strdup("insert"),
                                 ml_meth: unsafeBitCast(kernelInsertMethod, to: PyCFunction.self),
                                 ml_flags: Int32(METH_FASTCALL),
                                 ml_doc: strdup("insert(token, compiled_kernel, launch_info) -> bool"))
        methods[3] = PyMethodDef(ml_name: strdup("cache_size"),
                                 ml_meth: unsafeBitCast(kernelCacheSizeMethod, to: PyCFunction.self),
                                 ml_flags: Int32(METH_NOARGS), ml_doc: nil)
        methods[4] = PyMethodDef()
        return methods
    }()
}

/// `visit(object)` for a `tp_traverse`: `visitproc` may be nil only in theory, and then visits nothing.
@inline(__always)
func visiting(_ visit: visitproc?, _ argument: UnsafeMutableRawPointer?) -> (PyPtr) -> Int32 {
    { object in visit?(object, argument) ?? 0 }
}

/// The native state an extension object owns (+1, as an `Unmanaged` pointer in one field of its
/// layout), and the Python objects it holds for the cycle collector.
protocol CollectableState: AnyObject {
    func traverse(_ visit: (PyPtr) -> Int32) -> Int32
}

/// `tp_traverse` of an object whose state sits at `slot`: the type (instances of heap types own a
/// reference to it), then everything the state holds.
func traverseObject<State: CollectableState>(_ object: PyPtr, state slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                             _: State.Type, _ visit: visitproc?,
                                             _ argument: UnsafeMutableRawPointer?) -> Int32 {
    let report = visiting(visit, argument)
    let typeResult = report(UnsafeMutableRawPointer(SL_Type(object)).assumingMemoryBound(to: PyObject.self))
    if typeResult != 0 { return typeResult }
    guard let raw = slot.pointee else { return 0 }
    return Unmanaged<State>.fromOpaque(raw).takeUnretainedValue().traverse(report)
}

/// `tp_clear`: drops the state at `slot`, and with it every reference it holds; later calls raise.
func clearObject<State: CollectableState>(state slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                          _: State.Type) -> Int32 {
    if let state = slot.pointee {
        // Null before releasing: the release runs Python code (finalizers) that may reach this object.
        slot.pointee = nil
        Unmanaged<State>.fromOpaque(state).release()
    }
    return 0
}

/// `tp_dealloc` of a collectable object: untracked first, so the collector never traverses an object
/// that is half torn down, then cleared and freed.
func deallocObject<State: CollectableState>(_ object: PyPtr, state slot: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                            _ type: State.Type) {
    PyObject_GC_UnTrack(object)
    _ = clearObject(state: slot, type)
    freeObject(object)
}

/// Where a kernel object and a launcher object keep their state (`offset(of:)` is never nil for a
/// stored property).
func kernelStateSlot(_ object: PyPtr) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: KernelObjectLayout.self)
    return UnsafeMutableRawPointer(layout).advanced(by: MemoryLayout<KernelObjectLayout>.offset(of: \.state)!)
        .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
}

func launcherStateSlot(_ object: PyPtr) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: LauncherLayout.self)
    return UnsafeMutableRawPointer(layout).advanced(by: MemoryLayout<LauncherLayout>.offset(of: \.state)!)
        .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
}

/// Heap-type instances release their type's reference when they go.
func freeObject(_ object: PyPtr) {
    let type = SL_Type(object)!
    let free = unsafeBitCast(PyType_GetSlot(type, Py_tp_free), to: freefunc.self)
    free(UnsafeMutableRawPointer(object))
    SL_DecRef(UnsafeMutablePointer<PyObject>(type))
}

/// Vectorcall may pass a null argument array when there are no arguments.
@inline(__always)
func withEmptyArgs(_ args: UnsafePointer<PyPtr?>?, _ body: (UnsafePointer<PyPtr?>) -> PyPtr?) -> PyPtr? {
    if let args { return body(args) }
    var none: PyPtr? = nil
    return withUnsafePointer(to: &none) { body($0) }
}

/// `tp_call` for Pythons before 3.12, where heap types cannot switch vectorcall on.
func callThroughVectorcall(_ callable: PyPtr, _ args: PyPtr, _ kwargs: PyPtr?, _ function: SLVectorcallFunc) -> PyPtr? {
    let positional = PyTuple_Size(args)
    let keywords = kwargs.map { PyDict_Size($0) } ?? 0
    var flat: [PyPtr?] = (0..<positional).map { PyTuple_GetItem(args, $0) }
    var kwnames: PyPtr?
    if keywords > 0, let kwargs {
        guard let names = PyTuple_New(keywords) else { return nil }
        kwnames = names
        var position: Py_ssize_t = 0
        var key: PyPtr?
        var value: PyPtr?
        var index = 0
        while PyDict_Next(kwargs, &position, &key, &value) != 0 {
            SL_IncRef(key!)
            PyTuple_SetItem(names, index, key!)
            flat.append(value)
            index += 1
        }
    }
    defer { if let kwnames { SL_DecRef(kwnames) } }
    flat.append(nil)
    return flat.withUnsafeBufferPointer { function(callable, $0.baseAddress, positional, kwnames) }
}

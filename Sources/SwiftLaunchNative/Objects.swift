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

/// Helion's launcher contract: `launcher(triton_kernel, grid, *args, num_warps=, num_stages=, **extras)`.
final class LauncherState {
    /// `factory(triton_kernel)` → a `_native.Kernel` for it, or None when it cannot be accelerated.
    let factory: PyRef
    /// Helion's own launcher, for calls whose extras swiftlaunch does not handle.
    let fallback: PyRef
    var kernels: [(function: PyRef, kernel: PyRef?)] = []

    init(factory: PyRef, fallback: PyRef) {
        self.factory = factory
        self.fallback = fallback
    }

    /// The kernel object for a JIT function (borrowed), created on first sight.
    func kernel(for function: PyPtr) -> PyPtr?? {
        for entry in kernels where entry.function.object == function { return .some(entry.kernel?.object) }
        guard let made = call(factory.object, function) else { return nil }
        let kernel: PyRef? = made == SL_None() ? nil : PyRef(owning: made)
        if kernel == nil { SL_DecRef(made) }
        kernels.append((PyRef(borrowing: function), kernel))
        return .some(kernel?.object)
    }
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

    static func kernelState(_ object: PyPtr) -> KernelState {
        let raw = UnsafeMutableRawPointer(object).assumingMemoryBound(to: KernelObjectLayout.self).pointee.state!
        // Sound: set once in `kernelNew` and released only in `kernelDealloc`.
        return Unmanaged<KernelState>.fromOpaque(raw).takeUnretainedValue()
    }

    static func launcherState(_ object: PyPtr) -> LauncherState {
        let raw = UnsafeMutableRawPointer(object).assumingMemoryBound(to: LauncherLayout.self).pointee.state!
        return Unmanaged<LauncherState>.fromOpaque(raw).takeUnretainedValue()
    }

    static var vectorcallSupported: Bool { interpreterVersion >= 0x030C_0000 }

    static func makeTypes(module: PyPtr) -> Bool {
        guard let kernel = makeType(
            name: "swiftlaunch._native.Kernel", basicSize: MemoryLayout<KernelObjectLayout>.size,
            slots: [
                PyType_Slot(slot: Py_tp_new, pfunc: unsafeBitCast(kernelNew, to: UnsafeMutableRawPointer.self)),
                PyType_Slot(slot: Py_tp_dealloc, pfunc: unsafeBitCast(kernelDealloc, to: UnsafeMutableRawPointer.self)),
                PyType_Slot(slot: Py_mp_subscript, pfunc: unsafeBitCast(kernelSubscript, to: UnsafeMutableRawPointer.self)),
                PyType_Slot(slot: Py_tp_methods, pfunc: UnsafeMutableRawPointer(kernelMethods)),
            ], vectorcallOffset: nil, subclassable: true),
            let bound = makeType(
                name: "swiftlaunch._native.BoundLaunch", basicSize: MemoryLayout<BoundLaunchLayout>.size,
                slots: [
                    PyType_Slot(slot: Py_tp_dealloc, pfunc: unsafeBitCast(boundDealloc, to: UnsafeMutableRawPointer.self)),
                    PyType_Slot(slot: Py_tp_call, pfunc: unsafeBitCast(boundCall, to: UnsafeMutableRawPointer.self)),
                ], vectorcallOffset: MemoryLayout<BoundLaunchLayout>.offset(of: \.vectorcall)),
            let launcher = makeType(
                name: "swiftlaunch._native.Launcher", basicSize: MemoryLayout<LauncherLayout>.size,
                slots: [
                    PyType_Slot(slot: Py_tp_new, pfunc: unsafeBitCast(launcherNew, to: UnsafeMutableRawPointer.self)),
                    PyType_Slot(slot: Py_tp_dealloc, pfunc: unsafeBitCast(launcherDealloc, to: UnsafeMutableRawPointer.self)),
                    PyType_Slot(slot: Py_tp_call, pfunc: unsafeBitCast(launcherCall, to: UnsafeMutableRawPointer.self)),
                ], vectorcallOffset: MemoryLayout<LauncherLayout>.offset(of: \.vectorcall))
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
    private static func makeType(name: String, basicSize: Int, slots: [PyType_Slot], vectorcallOffset: Int?,
                                 subclassable: Bool = false) -> PyPtr? {
        var allSlots = slots
        var flags = UInt32(Py_TPFLAGS_DEFAULT) | (subclassable ? UInt32(Py_TPFLAGS_BASETYPE) : 0)
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

// MARK: - Kernel

/// `Kernel(function, miss, names, traits, defaults, implicit_options)`.
private let kernelNew: @convention(c) (OpaquePointer?, PyPtr?, PyPtr?) -> PyPtr? = {
    type, args, _ in
    guard let type, let args, PyTuple_Size(args) == 6,
          let function = PyTuple_GetItem(args, 0), let miss = PyTuple_GetItem(args, 1),
          let names = PyTuple_GetItem(args, 2), let traits = PyTuple_GetItem(args, 3),
          let defaults = PyTuple_GetItem(args, 4), let implicit = PyTuple_GetItem(args, 5)
    else {
        raise(SL_ExcTypeError(), "Kernel(function, miss, names, traits, defaults, implicit_options)")
        return nil
    }
    guard let state = buildKernelState(function: function, miss: miss, names: names, traits: traits,
                                       defaults: defaults, implicit: implicit)
    else { return nil }
    guard let allocate = PyType_GetSlot(type, Py_tp_alloc) else { return nil }
    let alloc = unsafeBitCast(allocate, to: allocfunc.self)
    guard let object = alloc(type, 0) else { return nil }
    UnsafeMutableRawPointer(object).assumingMemoryBound(to: KernelObjectLayout.self).pointee.state =
        Unmanaged.passRetained(state).toOpaque()
    return object
}

private func buildKernelState(function: PyPtr, miss: PyPtr, names: PyPtr, traits: PyPtr, defaults: PyPtr,
                              implicit: PyPtr) -> KernelState? {
    let count = PyTuple_Size(names)
    guard count >= 0, PyTuple_Size(traits) == count, PyTuple_Size(defaults) == count else {
        raise(SL_ExcValueError(), "names, traits and defaults must be tuples of one length")
        return nil
    }
    var nameObjects: [PyPtr] = []
    var traitValues: [ParameterTraits] = []
    var defaultObjects: [PyPtr?] = []
    for index in 0..<count {
        nameObjects.append(PyTuple_GetItem(names, index)!)
        // (is_constexpr, is_const, specialize, align, annotation or None)
        guard let item = PyTuple_GetItem(traits, index), SL_TupleCheck(item) != 0, PyTuple_Size(item) == 5 else {
            raise(SL_ExcValueError(), "each trait is (is_constexpr, is_const, specialize, align, annotation)")
            return nil
        }
        var trait = ParameterTraits()
        trait.isConstexpr = PyObject_IsTrue(PyTuple_GetItem(item, 0)!) == 1
        trait.isConst = PyObject_IsTrue(PyTuple_GetItem(item, 1)!) == 1
        trait.specialize = PyObject_IsTrue(PyTuple_GetItem(item, 2)!) == 1
        trait.alignment = PyObject_IsTrue(PyTuple_GetItem(item, 3)!) == 1
        let annotation = PyTuple_GetItem(item, 4)!
        if annotation != SL_None() {
            guard let text = swiftString(annotation) else { return nil }
            guard let type = ScalarType(tritonName: text, elementTypes: Runtime.shared.elementTypes) else {
                raise(SL_ExcValueError(), "annotation type not handled: \(text)")
                return nil
            }
            trait.annotation = type
        }
        traitValues.append(trait)
        // (has_default, value)
        guard let entry = PyTuple_GetItem(defaults, index), SL_TupleCheck(entry) != 0, PyTuple_Size(entry) == 2 else {
            raise(SL_ExcValueError(), "each default is (has_default, value)")
            return nil
        }
        defaultObjects.append(PyObject_IsTrue(PyTuple_GetItem(entry, 0)!) == 1 ? PyTuple_GetItem(entry, 1)! : nil)
    }
    var implicitOptions: [(name: PyPtr, value: PyPtr)] = []
    for index in 0..<max(PyTuple_Size(implicit), 0) {
        guard let pair = PyTuple_GetItem(implicit, index), SL_TupleCheck(pair) != 0, PyTuple_Size(pair) == 2 else {
            raise(SL_ExcValueError(), "implicit options are (name, value) pairs")
            return nil
        }
        implicitOptions.append((PyTuple_GetItem(pair, 0)!, PyTuple_GetItem(pair, 1)!))
    }
    // Triton keeps the per-kernel guards in the function's instance dict; a JITFunction always has one.
    guard let functionDict = PyObject_GenericGetDict(function, nil) else { return nil }
    defer { SL_DecRef(functionDict) }
    return KernelState(function: function, functionDict: functionDict, missHandler: miss, names: nameObjects,
                       traits: traitValues, defaults: defaultObjects, implicitOptions: implicitOptions)
}

private let kernelDealloc: @convention(c) (PyPtr?) -> Void = { object in
    guard let object else { return }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: KernelObjectLayout.self)
    if let state = layout.pointee.state {
        Unmanaged<KernelState>.fromOpaque(state).release()
        layout.pointee.state = nil
    }
    freeObject(object)
}

/// Heap-type instances release their type's reference when they go.
func freeObject(_ object: PyPtr) {
    let type = SL_Type(object)!
    let free = unsafeBitCast(PyType_GetSlot(type, Py_tp_free), to: freefunc.self)
    free(UnsafeMutableRawPointer(object))
    SL_DecRef(UnsafeMutablePointer<PyObject>(type))
}

/// `kernel[grid]` → a bound launch, called like Triton's `kernel[grid](*args, **kwargs)`.
private let kernelSubscript: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { kernel, grid in
    guard let kernel, let grid else { return nil }
    return boundLaunch(kernel, grid)
}

/// `FastJITFunction.__getitem__`: the kernel object cached in the function's `__dict__` under
/// `_swiftlaunch_fast` (made by the glue on first use), subscripted without a Python frame.
private let jitSubscript: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { function, grid in
    guard let function, let grid else { return nil }
    guard let dict = PyObject_GenericGetDict(function, nil) else { return nil }
    defer { SL_DecRef(dict) }
    if let kernel = PyDict_GetItemWithError(dict, Names.swiftlaunchFast),
       PyObject_TypeCheck(kernel, OpaquePointer(Objects.kernelType)) != 0 {
        return boundLaunch(kernel, grid)
    }
    if PyErr_Occurred() != nil { return nil }
    // First use, or a pass-through to Triton: the glue makes (and caches) the kernel object.
    guard let kernel = callMethodNoArgs(function, Names.swiftlaunchKernel) else { return nil }
    defer { SL_DecRef(kernel) }
    return PyObject_GetItem(kernel, grid)
}

private func boundLaunch(_ kernel: PyPtr, _ grid: PyPtr) -> PyPtr? {
    guard let object = Objects.boundAlloc(OpaquePointer(Objects.boundLaunchType!), 0) else { return nil }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: BoundLaunchLayout.self)
    SL_IncRef(kernel)
    SL_IncRef(grid)
    layout.pointee.kernel = kernel
    layout.pointee.grid = grid
    layout.pointee.vectorcall = boundVectorcall
    return object
}

private let boundDealloc: @convention(c) (PyPtr?) -> Void = { object in
    guard let object else { return }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: BoundLaunchLayout.self)
    if let kernel = layout.pointee.kernel { SL_DecRef(kernel) }
    if let grid = layout.pointee.grid { SL_DecRef(grid) }
    Objects.boundFree(UnsafeMutableRawPointer(object))
    SL_DecRef(Objects.boundLaunchType)  // instances of heap types hold a reference to their type
}

private let boundVectorcall: SLVectorcallFunc = { callable, args, nargsf, kwnames in
    let layout = UnsafeMutableRawPointer(callable!).assumingMemoryBound(to: BoundLaunchLayout.self)
    let kernel = layout.pointee.kernel!
    let positional = Int(SL_VectorcallNArgs(nargsf))
    return withEmptyArgs(args) { args in
        LaunchCall(state: Objects.kernelState(kernel), kernelObject: kernel, grid: layout.pointee.grid!,
                   args: args, positionalCount: positional, kwnames: kwnames).run()
    }
}

/// Vectorcall may pass a null argument array when there are no arguments.
@inline(__always)
private func withEmptyArgs(_ args: UnsafePointer<PyPtr?>?, _ body: (UnsafePointer<PyPtr?>) -> PyPtr?) -> PyPtr? {
    if let args { return body(args) }
    var none: PyPtr? = nil
    return withUnsafePointer(to: &none) { body($0) }
}

private let boundCall: @convention(c) (PyPtr?, PyPtr?, PyPtr?) -> PyPtr? = { callable, args, kwargs in
    callThroughVectorcall(callable!, args!, kwargs, boundVectorcall)
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

/// `kernel.launch(grid, *args, **kwargs)`.
private let kernelLaunchMethod: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t, PyPtr?) -> PyPtr? = {
    kernel, args, nargs, kwnames in
    guard let kernel, let args, nargs >= 1 else {
        raise(SL_ExcTypeError(), "launch(grid, *args, **kwargs) needs a grid")
        return nil
    }
    return LaunchCall(state: Objects.kernelState(kernel), kernelObject: kernel, grid: args[0]!,
                      args: args + 1, positionalCount: nargs - 1, kwnames: kwnames).run()
}

/// `kernel.key(device, *args, **kwargs)` → the dispatch key as bytes, or None when the call would
/// go to Triton. No GPU needed: the benchmark's CPU mode and the key-parity test use it.
private let kernelKeyMethod: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t, PyPtr?) -> PyPtr? = {
    kernel, args, nargs, kwnames in
    guard let kernel, let args, nargs >= 1 else {
        raise(SL_ExcTypeError(), "key(device, *args, **kwargs) needs a device")
        return nil
    }
    let device = PyLong_AsLong(args[0]!)
    if device == -1 && PyErr_Occurred() != nil { return nil }
    return LaunchCall(state: Objects.kernelState(kernel), kernelObject: kernel, grid: SL_None(), args: args + 1,
                      positionalCount: nargs - 1, kwnames: kwnames,
                      probeDevice: Int32(truncatingIfNeeded: device)).run()
}

/// `kernel.insert(token, compiled_kernel, (function, num_warps, num_ctas, shared, cooperative, pdl,
/// global_scratch_size, global_scratch_align, signature))` → whether it was cached.
private let kernelInsertMethod: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    kernel, args, nargs in
    guard let kernel, let args, nargs == 3, let token = args[0], let compiled = args[1], let info = args[2],
          SL_TupleCheck(info) != 0, PyTuple_Size(info) == 9
    else {
        raise(SL_ExcTypeError(), "insert(token, compiled_kernel, launch_info)")
        return nil
    }
    let state = Objects.kernelState(kernel)
    var numbers: [Int64] = []
    for index in [0, 1, 2, 3, 6, 7] {
        guard let value = readInteger(PyTuple_GetItem(info, index)!), let narrow = Int64(exactly: value) else {
            if PyErr_Occurred() == nil { raise(SL_ExcValueError(), "launch_info field \(index) is not an int") }
            return nil
        }
        numbers.append(narrow)
    }
    let signature = PyTuple_GetItem(info, 8)!
    guard SL_TupleCheck(signature) != 0, PyTuple_Size(signature) == state.names.count else {
        raise(SL_ExcValueError(), "signature must have one entry per parameter")
        return nil
    }
    var slots: [ParameterSlot] = []
    for index in 0..<PyTuple_Size(signature) {
        let item = PyTuple_GetItem(signature, index)!
        guard SL_UnicodeCheck(item) != 0, let text = swiftString(item),
              let slot = ParameterSlot(tritonSignature: text, elementTypes: Runtime.shared.elementTypes)
        else { PyErr_Clear(); return SL_NewRefFalse() }
        slots.append(slot)
    }
    guard numbers[1] > 0, numbers[2] > 0, numbers[3] >= 0, numbers[4] >= 0, numbers[5] > 0,
          let numWarps = UInt32(exactly: numbers[1]), let numCTAs = UInt32(exactly: numbers[2]),
          let shared = UInt32(exactly: numbers[3]), let function = UInt64(exactly: numbers[0])
    else { return SL_NewRefFalse() }
    let launch = CompiledLaunch(
        function: function, numWarps: numWarps, numCTAs: numCTAs, sharedMemory: shared,
        cooperative: PyObject_IsTrue(PyTuple_GetItem(info, 4)!) == 1,
        pdl: PyObject_IsTrue(PyTuple_GetItem(info, 5)!) == 1,
        globalScratchSize: Int(numbers[4]), globalScratchAlign: Int(numbers[5]), slots: slots)
    let entry = CacheEntry(compiled: compiled, launch: launch)
    guard withKeyWords(token, { state.cache.insert($0, value: entry) }) != nil else { return nil }
    return SL_NewRefTrue()
}

/// Runs `body` on the dispatch-key words of a token (the bytes `Kernel.key` and the miss path hand
/// out); nil, with a Python error set, when `token` is not such bytes.
func withKeyWords<Result>(_ token: PyPtr, _ body: (UnsafeBufferPointer<UInt64>) -> Result) -> Result? {
    guard let bytes = PyBytes_AsString(token) else { return nil }
    let size = Int(PyBytes_Size(token))
    guard size % 8 == 0 else {
        raise(SL_ExcValueError(), "a dispatch key is a whole number of 8-byte words")
        return nil
    }
    return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: size / 8) { words in
        // Sound: the bytes object holds exactly `size` bytes; copying avoids alignment assumptions.
        UnsafeMutableRawPointer(words.baseAddress!).copyMemory(from: bytes, byteCount: size)
        return body(UnsafeBufferPointer(words))
    }
}

private let kernelCacheSizeMethod: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { kernel, _ in
    newInteger(Objects.kernelState(kernel!).cache.count)
}

// MARK: - Launcher (Helion)

/// `Launcher(factory, fallback)`.
private let launcherNew: @convention(c) (OpaquePointer?, PyPtr?, PyPtr?) -> PyPtr? = {
    type, args, _ in
    guard let type, let args, PyTuple_Size(args) == 2, let factory = PyTuple_GetItem(args, 0),
          let fallback = PyTuple_GetItem(args, 1)
    else {
        raise(SL_ExcTypeError(), "Launcher(factory, fallback)")
        return nil
    }
    let alloc = unsafeBitCast(PyType_GetSlot(type, Py_tp_alloc), to: allocfunc.self)
    guard let object = alloc(type, 0) else { return nil }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: LauncherLayout.self)
    let state = LauncherState(factory: PyRef(borrowing: factory), fallback: PyRef(borrowing: fallback))
    layout.pointee.state = Unmanaged.passRetained(state).toOpaque()
    layout.pointee.vectorcall = launcherVectorcall
    return object
}

private let launcherDealloc: @convention(c) (PyPtr?) -> Void = { object in
    guard let object else { return }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: LauncherLayout.self)
    if let state = layout.pointee.state {
        Unmanaged<LauncherState>.fromOpaque(state).release()
        layout.pointee.state = nil
    }
    freeObject(object)
}

private let launcherVectorcall: SLVectorcallFunc = { callable, args, nargsf, kwnames in
    let state = Objects.launcherState(callable!)
    let positional = Int(SL_VectorcallNArgs(nargsf))
    guard let args, positional >= 2 else {
        return withEmptyArgs(args) { call(state.fallback.object, $0, count: positional, kwnames: kwnames) }
    }
    // Helion's distributed and occupancy extras (`_remote_copy_*`, `_persistent_state_*`,
    // `_minimum_resident_programs`, `ptx_options`) change what is launched: Helion does those.
    if let kwnames {
        for index in 0..<PyTuple_Size(kwnames) {
            guard let name = swiftString(PyTuple_GetItem(kwnames, index)!) else { return nil }
            if name.hasPrefix("_") || name == "ptx_options" {
                Stats.fallback("helion launcher extras")
                return call(state.fallback.object, args, count: positional, kwnames: kwnames)
            }
        }
    }
    guard let found = state.kernel(for: args[0]!) else { return nil }
    guard let kernel = found else {
        Stats.fallback("not a triton.jit kernel")
        return call(state.fallback.object, args, count: positional, kwnames: kwnames)
    }
    return LaunchCall(state: Objects.kernelState(kernel), kernelObject: kernel, grid: args[1]!, args: args + 2,
                      positionalCount: positional - 2, kwnames: kwnames).run()
}

private let launcherCall: @convention(c) (PyPtr?, PyPtr?, PyPtr?) -> PyPtr? = { callable, args, kwargs in
    callThroughVectorcall(callable!, args!, kwargs, launcherVectorcall)
}

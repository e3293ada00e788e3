@preconcurrency import CPython
import SwiftLaunchCore

// MARK: - Kernel

/// `Kernel(function, miss, names, traits, defaults, implicit_options)`.
let kernelNew: @convention(c) (OpaquePointer?, PyPtr?, PyPtr?) -> PyPtr? = {
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

func buildKernelState(function: PyPtr, miss: PyPtr, names: PyPtr, traits: PyPtr, defaults: PyPtr,
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
        // (is_constexpr, is_const, specialize, align, annotation or None[, kind])
        guard let item = PyTuple_GetItem(traits, index), SL_TupleCheck(item) != 0,
              PyTuple_Size(item) == 5 || PyTuple_Size(item) == 6
        else {
            raise(SL_ExcValueError(), "each trait is (is_constexpr, is_const, specialize, align, annotation[, kind])")
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
        if PyTuple_Size(item) == 6 {
            // `inspect.Parameter.kind.name`
            switch swiftString(PyTuple_GetItem(item, 5)!) {
            case "POSITIONAL_OR_KEYWORD"?: trait.kind = .positionalOrKeyword
            case "VAR_POSITIONAL"?: trait.kind = .varPositional
            case "KEYWORD_ONLY"?: trait.kind = .keywordOnly
            case "VAR_KEYWORD"?: trait.kind = .varKeyword
            default:
                PyErr_Clear()
                raise(SL_ExcValueError(), "parameter kind not handled")
                return nil
            }
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
    let rules = Runtime.shared.rules
    guard let positionalLimit = rules.positionalLimit(traitValues.map(\.kind)) else {
        raise(SL_ExcValueError(), "a *args parameter binds as a tuple under \(rules)")
        return nil
    }
    // Triton keeps the per-kernel guards in the function's instance dict; a JITFunction always has one.
    guard let functionDict = PyObject_GenericGetDict(function, nil) else { return nil }
    defer { SL_DecRef(functionDict) }
    return KernelState(function: function, functionDict: functionDict, missHandler: miss, names: nameObjects,
                       traits: traitValues, defaults: defaultObjects, implicitOptions: implicitOptions,
                       positionalLimit: positionalLimit)
}

let kernelDealloc: @convention(c) (PyPtr?) -> Void = { object in
    guard let object else { return }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: KernelObjectLayout.self)
    if let state = layout.pointee.state {
        Unmanaged<KernelState>.fromOpaque(state).release()
        layout.pointee.state = nil
    }
    freeObject(object)
}

/// `kernel[grid]` → a bound launch, called like Triton's `kernel[grid](*args, **kwargs)`.
let kernelSubscript: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { kernel, grid in
    guard let kernel, let grid else { return nil }
    return boundLaunch(kernel, grid)
}

/// `FastJITFunction.__getitem__`: the kernel object cached in the function's `__dict__` under
/// `_swiftlaunch_fast` (made by the glue on first use), subscripted without a Python frame.
let jitSubscript: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { function, grid in
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

func boundLaunch(_ kernel: PyPtr, _ grid: PyPtr) -> PyPtr? {
    guard let object = Objects.boundAlloc(OpaquePointer(Objects.boundLaunchType!), 0) else { return nil }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: BoundLaunchLayout.self)
    SL_IncRef(kernel)
    SL_IncRef(grid)
    layout.pointee.kernel = kernel
    layout.pointee.grid = grid
    layout.pointee.vectorcall = boundVectorcall
    return object
}

let boundDealloc: @convention(c) (PyPtr?) -> Void = { object in
    guard let object else { return }
    let layout = UnsafeMutableRawPointer(object).assumingMemoryBound(to: BoundLaunchLayout.self)
    if let kernel = layout.pointee.kernel { SL_DecRef(kernel) }
    if let grid = layout.pointee.grid { SL_DecRef(grid) }
    Objects.boundFree(UnsafeMutableRawPointer(object))
    SL_DecRef(Objects.boundLaunchType)  // instances of heap types hold a reference to their type
}

let boundVectorcall: SLVectorcallFunc = { callable, args, nargsf, kwnames in
    let layout = UnsafeMutableRawPointer(callable!).assumingMemoryBound(to: BoundLaunchLayout.self)
    let kernel = layout.pointee.kernel!
    let positional = Int(SL_VectorcallNArgs(nargsf))
    return withEmptyArgs(args) { args in
        LaunchCall(state: Objects.kernelState(kernel), kernelObject: kernel, grid: layout.pointee.grid!,
                   args: args, positionalCount: positional, kwnames: kwnames).run()
    }
}

let boundCall: @convention(c) (PyPtr?, PyPtr?, PyPtr?) -> PyPtr? = { callable, args, kwargs in
    callThroughVectorcall(callable!, args!, kwargs, boundVectorcall)
}

/// `kernel.launch(grid, *args, **kwargs)`.
let kernelLaunchMethod: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t, PyPtr?) -> PyPtr? = {
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
let kernelKeyMethod: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t, PyPtr?) -> PyPtr? = {
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
let kernelInsertMethod: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
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
        globalScratchSize: Int(numbers[4]), globalScratchAlign: Int(numbers[5]), slots: slots,
        rules: Runtime.shared.rules)
    // Triton's `_launch` has room for four attributes; a kernel that needs more makes it write past
    // its array, which nothing can reproduce.
    guard launch.launchAttributeCount <= TritonRules.maxLaunchAttributes else { return SL_NewRefFalse() }
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

let kernelCacheSizeMethod: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { kernel, _ in
    newInteger(Objects.kernelState(kernel!).cache.count)
}

/// `_native.specialize(arg, is_const, specialize, align)`: Triton's
/// `native_specialize_impl(backend, arg, is_const, specialize, align)` for the argument kinds
/// swiftlaunch handles natively; raises NotImplementedError for the others.
let specializeFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 4 else {
        raise(SL_ExcTypeError(), "specialize(arg, is_const, specialize, align)")
        return nil
    }
    let object = args[0]!
    let runtime = Runtime.shared
    var value = ArgumentReading.runtimeValue(object, runtime, anyDevice: true)
    if value == nil && SL_LongCheck(object) != 0 && SL_BoolCheck(object) == 0 {
        raise(SL_ExcOverflowError(), "integer to be specialized too large to represent")
        return nil
    }
    if value == nil && runtime.isTensor(object) {
        guard let dtype = PyObject_GetAttr(object, Names.dtype) else { return nil }
        defer { SL_DecRef(dtype) }
        let name = PyObject_Str(dtype).flatMap { text -> String? in
            defer { SL_DecRef(text) }
            return swiftString(text)
        } ?? "?"
        // Triton raises KeyError for dtypes it has no name for.
        raise(SL_ExcKeyError(), String(name.split(separator: ".").last ?? ""))
        return nil
    }
    guard let value else {
        raise(PyExc_NotImplementedError, "swiftlaunch does not specialize this argument natively")
        return nil
    }
    do throws(SpecializationError) {
        let spec = try Specialization.of(value, isConst: PyObject_IsTrue(args[1]!) == 1,
                                         specialize: PyObject_IsTrue(args[2]!) == 1,
                                         align: PyObject_IsTrue(args[3]!) == 1)
        return TritonFormat.tuple(spec)
    } catch {
        raise(SL_ExcOverflowError(), "integer to be specialized too large to represent")
        return nil
    }
}

/// `_native.raw_launch_loop(kernel, token, grid, args, stream, device, iterations)` → seconds: the
/// benchmark's floor. Looks up the cached launch for `token` (from `kernel.key`), packs `args` once
/// and calls `cuLaunchKernelEx` `iterations` times from Swift.
let rawLaunchLoopFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 7, let kernel = args[0], let token = args[1], let gridObject = args[2],
          let argTuple = args[3], SL_TupleCheck(argTuple) != 0,
          PyObject_IsInstance(kernel, Objects.kernelType) == 1
    else {
        raise(SL_ExcTypeError(), "raw_launch_loop(kernel, token, grid, args, stream, device, iterations)")
        return nil
    }
    let state = Objects.kernelState(kernel)
    guard let found = withKeyWords(token, { state.cache.lookup($0) }) else { return nil }
    guard let entry = found else {
        raise(SL_ExcValueError(), "no cached kernel for this key: launch it once first")
        return nil
    }
    guard let driver = Runtime.shared.driver else {
        raise(SL_ExcRuntimeError(), Runtime.shared.driverError)
        return nil
    }
    var values: [ArgumentValue] = []
    for index in 0..<PyTuple_Size(argTuple) {
        let object = PyTuple_GetItem(argTuple, index)!
        let value = state.traits.indices.contains(index) && state.traits[index].isConstexpr
            ? ArgumentReading.keyedValue(object) : ArgumentReading.runtimeValue(object, Runtime.shared, anyDevice: false)
        guard let value else {
            raise(SL_ExcTypeError(), "argument \(index) not handled")
            return nil
        }
        values.append(value)
    }
    var dims: [Int64] = [1, 1, 1]
    for index in 0..<min(PyTuple_Size(gridObject), 3) {
        dims[index] = Int64(PyLong_AsLongLong(PyTuple_GetItem(gridObject, index)!))
    }
    let stream = PyLong_AsUnsignedLongLong(args[4]!)
    let device = Int32(PyLong_AsLong(args[5]!))
    let iterations = Int(PyLong_AsLong(args[6]!))
    if PyErr_Occurred() != nil { return nil }
    var start = timespec()
    var end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    do throws(LaunchError) {
        try values.withUnsafeBufferPointer { buffer throws(LaunchError) in
            try entry.launch.launch(values: buffer, grid: Grid(x: dims[0], y: dims[1], z: dims[2]), stream: stream,
                                    device: device, globalScratch: 0, driver: driver, repetitions: iterations)
        }
    } catch {
        raise(SL_ExcRuntimeError(), "\(error)")
        return nil
    }
    clock_gettime(CLOCK_MONOTONIC, &end)
    let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
    return PyFloat_FromDouble(seconds)
}

/// `_native.jit_getitem(cls)` → a method descriptor for `cls.__getitem__` (cls: the glue's
/// `FastJITFunction`), so that `k[grid]` on a `swiftlaunch.jit` kernel runs no Python code.
let jitGetItemFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, cls in
    guard let cls, PyType_Check(cls) != 0 else {
        raise(SL_ExcTypeError(), "jit_getitem(cls) takes a class")
        return nil
    }
    return PyDescr_NewMethod(OpaquePointer(cls), Objects.jitGetItemMethod)
}

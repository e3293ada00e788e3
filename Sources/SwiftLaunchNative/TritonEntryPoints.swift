@preconcurrency import CPython
import SwiftLaunchCore

// MARK: - Kernel

/// `Kernel(function, miss, names, traits, defaults, implicit_options)`.
let kernelNew: @convention(c) (OpaquePointer?, PyPtr?, PyPtr?) -> PyPtr? = {
    type, args, kwargs in
    guard let type, let args, PyTuple_Size(args) == 6, kwargs.map({ PyDict_Size($0) == 0 }) ?? true,
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
    // The collector tracks the object from here on; it sees no state until the line below.
    guard let object = alloc(type, 0) else { return nil }
    UnsafeMutableRawPointer(object).assumingMemoryBound(to: KernelObjectLayout.self).pointee.state =
        Unmanaged.passRetained(state).toOpaque()
    return object
}

/// The tuple argument `name` of a constructor, or nil with TypeError set.
func tupleArgument(_ object: PyPtr, _ name: String) -> Int? {
    guard SL_TupleCheck(object) != 0 else {
        raise(SL_ExcTypeError(), "\(name) must be a tuple")
        return nil
    }
    return PyTuple_Size(object)
}

/// Item `index` of a tuple checked to be at least that long: a borrowed, never-null reference.
@inline(__always)
func tupleItem(_ tuple: PyPtr, _ index: Int) -> PyPtr {
    // Sound: callers check the tuple's type and size first, and tuple items are never null.
    PyTuple_GetItem(tuple, index)!
}

/// `object` when it is a tuple of exactly `count` items; nil with `error` raised otherwise.
func fixedTuple(_ object: PyPtr, count: Int, _ error: PyPtr, _ message: @autoclosure () -> String) -> PyPtr? {
    guard SL_TupleCheck(object) != 0, PyTuple_Size(object) == count else {
        raise(error, message())
        return nil
    }
    return object
}

func buildKernelState(function: PyPtr, miss: PyPtr, names: PyPtr, traits: PyPtr, defaults: PyPtr,
                      implicit: PyPtr) -> KernelState? {
    guard let count = tupleArgument(names, "names"), let traitCount = tupleArgument(traits, "traits"),
          let defaultCount = tupleArgument(defaults, "defaults"),
          let implicitCount = tupleArgument(implicit, "implicit_options")
    else { return nil }
    guard traitCount == count, defaultCount == count else {
        raise(SL_ExcValueError(), "names, traits and defaults must be tuples of one length")
        return nil
    }
    guard implicitCount <= maxImplicitOptions else {
        raise(SL_ExcValueError(), "at most \(maxImplicitOptions) implicit options")
        return nil
    }
    var nameObjects: [PyPtr] = []
    var traitValues: [ParameterTraits] = []
    var defaultObjects: [PyPtr?] = []
    for index in 0..<count {
        let name = tupleItem(names, index)
        guard SL_UnicodeCheck(name) != 0 else {
            raise(SL_ExcTypeError(), "parameter names must be str")
            return nil
        }
        nameObjects.append(name)
        // (is_constexpr, is_const, specialize, align, annotation or None[, kind])
        let traitEntry = tupleItem(traits, index)
        let traitSize = SL_TupleCheck(traitEntry) != 0 ? PyTuple_Size(traitEntry) : 0
        guard let entry = fixedTuple(traitEntry, count: traitSize == 6 ? 6 : 5, SL_ExcValueError(),
                                     "each trait is (is_constexpr, is_const, specialize, align, annotation[, kind])"),
              let isConstexpr = isTrue(tupleItem(entry, 0)), let isConst = isTrue(tupleItem(entry, 1)),
              let specialize = isTrue(tupleItem(entry, 2)), let alignment = isTrue(tupleItem(entry, 3))
        else { return nil }
        var trait = ParameterTraits(isConstexpr: isConstexpr, isConst: isConst, specialize: specialize,
                                    alignment: alignment)
        let annotation = tupleItem(entry, 4)
        if annotation != SL_None() {
            guard SL_UnicodeCheck(annotation) != 0 else {
                raise(SL_ExcTypeError(), "an annotation is a Triton type name or None")
                return nil
            }
            guard let text = swiftString(annotation) else { return nil }
            guard let type = ScalarType(tritonName: text, elementTypes: Runtime.shared.elementTypes) else {
                raise(SL_ExcValueError(), "annotation type not handled: \(text)")
                return nil
            }
            trait.annotation = type
        }
        if traitSize == 6 {
            // `inspect.Parameter.kind.name`
            let kind = tupleItem(entry, 5)
            switch SL_UnicodeCheck(kind) != 0 ? swiftString(kind) : nil {
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
        guard let pair = fixedTuple(tupleItem(defaults, index), count: 2, SL_ExcValueError(),
                                    "each default is (has_default, value)"),
              let hasDefault = isTrue(tupleItem(pair, 0))
        else { return nil }
        defaultObjects.append(hasDefault ? tupleItem(pair, 1) : nil)
    }
    var implicitOptions: [(name: PyPtr, value: PyPtr)] = []
    for index in 0..<implicitCount {
        guard let pair = fixedTuple(tupleItem(implicit, index), count: 2, SL_ExcValueError(),
                                    "implicit options are (name, value) pairs")
        else { return nil }
        guard SL_UnicodeCheck(tupleItem(pair, 0)) != 0 else {
            raise(SL_ExcTypeError(), "implicit option names must be str")
            return nil
        }
        implicitOptions.append((tupleItem(pair, 0), tupleItem(pair, 1)))
    }
    let rules = Runtime.shared.rules
    guard let positionalLimit = rules.positionalLimit(traitValues.map(\.kind)) else {
        raise(SL_ExcValueError(), "a *args parameter binds as a tuple under \(rules)")
        return nil
    }
    // Triton keeps the per-kernel guards in the function's instance dict; a JITFunction always has one.
    guard let functionDict = PyObject_GenericGetDict(function, nil) else {
        if PyErr_ExceptionMatches(PyExc_AttributeError) != 0 {
            PyErr_Clear()
            raise(SL_ExcTypeError(), "function must have a __dict__ (a JITFunction)")
        }
        return nil
    }
    defer { SL_DecRef(functionDict) }
    return KernelState(function: function, functionDict: functionDict, missHandler: miss, names: nameObjects,
                       traits: traitValues, defaults: defaultObjects, implicitOptions: implicitOptions,
                       positionalLimit: positionalLimit)
}

let kernelDealloc: @convention(c) (PyPtr?) -> Void = { object in
    guard let object else { return }
    deallocObject(object, state: kernelStateSlot(object), KernelState.self)
}

let kernelTraverse: @convention(c) (PyPtr?, visitproc?, UnsafeMutableRawPointer?) -> Int32 = {
    object, visit, argument in
    guard let object else { return 0 }
    return traverseObject(object, state: kernelStateSlot(object), KernelState.self, visit, argument)
}

/// Later calls on a cleared kernel raise RuntimeError.
let kernelClear: @convention(c) (PyPtr?) -> Int32 = { object in
    guard let object else { return 0 }
    return clearObject(state: kernelStateSlot(object), KernelState.self)
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
    if let kernel = PyDict_GetItemWithError(dict, Names.swiftlaunchFast), Objects.isKernel(kernel) {
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
    // Both are set by `boundLaunch`, the only maker of bound launches (the type has no `__new__`).
    guard let kernel = layout.pointee.kernel, let grid = layout.pointee.grid else {
        raise(SL_ExcTypeError(), "a bound launch is made by kernel[grid]")
        return nil
    }
    guard let state = Objects.kernelState(kernel) else { return nil }
    let positional = Int(SL_VectorcallNArgs(nargsf))
    return withEmptyArgs(args) { args in
        LaunchCall(state: state, kernelObject: kernel, grid: grid, args: args, positionalCount: positional,
                   kwnames: kwnames).run()
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
    guard let state = Objects.kernelState(kernel) else { return nil }
    return LaunchCall(state: state, kernelObject: kernel, grid: args[0]!,
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
    guard let device = int32Argument(args[0]!, "device"), let state = Objects.kernelState(kernel) else {
        return nil
    }
    return LaunchCall(state: state, kernelObject: kernel, grid: SL_None(), args: args + 1,
                      positionalCount: nargs - 1, kwnames: kwnames, probeDevice: device).run()
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
    guard let state = Objects.kernelState(kernel) else { return nil }
    var numbers: [Int64] = []
    for index in [0, 1, 2, 3, 6, 7] {
        guard let value = int64Argument(tupleItem(info, index), "launch_info field \(index)") else { return nil }
        numbers.append(value)
    }
    guard let cooperative = isTrue(tupleItem(info, 4)), let pdl = isTrue(tupleItem(info, 5)) else { return nil }
    let signature = tupleItem(info, 8)
    guard SL_TupleCheck(signature) != 0, PyTuple_Size(signature) == state.names.count else {
        raise(SL_ExcValueError(), "signature must have one entry per parameter")
        return nil
    }
    var slots: [ParameterSlot] = []
    for index in 0..<PyTuple_Size(signature) {
        let entry = tupleItem(signature, index)
        guard SL_UnicodeCheck(entry) != 0, let text = swiftString(entry),
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
        cooperative: cooperative, pdl: pdl,
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
    // Every key starts with its device word, so an empty token is never one.
    guard size > 0, size % 8 == 0 else {
        raise(SL_ExcValueError(), "a dispatch key is a whole, nonzero number of 8-byte words")
        return nil
    }
    return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: size / 8) { words in
        // Sound: the bytes object holds exactly `size` bytes; copying avoids alignment assumptions.
        UnsafeMutableRawPointer(words.baseAddress!).copyMemory(from: bytes, byteCount: size)
        return body(UnsafeBufferPointer(words))
    }
}

let kernelCacheSizeMethod: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { kernel, _ in
    guard let kernel, let state = Objects.kernelState(kernel) else { return nil }
    return newInteger(state.cache.count)
}

/// An int argument that must fit in Int64 (OverflowError otherwise); `__index__` is honoured, as
/// Python's own int parameters do. Nil with the error set.
func int64Argument(_ object: PyPtr, _ name: String) -> Int64? {
    let value = PyLong_AsLongLong(object)
    if value == -1, PyErr_Occurred() != nil {
        if PyErr_ExceptionMatches(PyExc_OverflowError) != 0 {
            PyErr_Clear()
            raise(SL_ExcOverflowError(), "\(name) does not fit in 64 bits")
        }
        return nil
    }
    return Int64(value)
}

/// An int argument that must fit in a C int.
func int32Argument(_ object: PyPtr, _ name: String) -> Int32? {
    guard let value = int64Argument(object, name) else { return nil }
    guard let narrow = Int32(exactly: value) else {
        raise(SL_ExcOverflowError(), "\(name) does not fit in a C int")
        return nil
    }
    return narrow
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
    guard let isConst = isTrue(args[1]!), let specialize = isTrue(args[2]!), let align = isTrue(args[3]!) else {
        return nil
    }
    do throws(SpecializationError) {
        let spec = try Specialization.of(value, isConst: isConst, specialize: specialize, align: align)
        return TritonFormat.tuple(spec)
    } catch {
        raise(SL_ExcOverflowError(), "integer to be specialized too large to represent")
        return nil
    }
}

/// `_native.raw_launch_loop(kernel, token, grid, args, stream, device, iterations)` → seconds: the
/// benchmark's floor. Looks up the cached launch for `token` (from `kernel.key`), packs `args` once
/// and calls `cuLaunchKernelEx` `iterations` times from Swift. Every argument is checked before the
/// driver is, so that a bad call raises the same error with or without a GPU.
let rawLaunchLoopFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 7 else {
        raise(SL_ExcTypeError(), "raw_launch_loop(kernel, token, grid, args, stream, device, iterations)")
        return nil
    }
    let kernel = args[0]!, token = args[1]!, gridObject = args[2]!, argTuple = args[3]!
    guard Objects.isKernel(kernel) else {
        raise(SL_ExcTypeError(), "raw_launch_loop: kernel must be a swiftlaunch._native.Kernel")
        return nil
    }
    guard let argCount = tupleArgument(argTuple, "raw_launch_loop: args"),
          let state = Objects.kernelState(kernel),
          let found = withKeyWords(token, { state.cache.lookup($0) })
    else { return nil }
    guard let entry = found else {
        raise(SL_ExcValueError(), "no cached kernel for this key: launch it once first")
        return nil
    }
    guard argCount == entry.launch.slots.count else {
        raise(SL_ExcValueError(), "raw_launch_loop: args needs one value per parameter (\(entry.launch.slots.count))")
        return nil
    }
    var values: [ArgumentValue] = []
    for index in 0..<argCount {
        let object = tupleItem(argTuple, index)
        let value = state.traits[index].isConstexpr
            ? ArgumentReading.keyedValue(object) : ArgumentReading.runtimeValue(object, Runtime.shared, anyDevice: false)
        guard let value else {
            raise(SL_ExcTypeError(), "argument \(index) not handled")
            return nil
        }
        values.append(value)
    }
    guard let grid = rawGrid(gridObject) else { return nil }
    let stream = PyLong_AsUnsignedLongLong(args[4]!)
    if stream == UInt64.max, PyErr_Occurred() != nil { return nil }
    guard let device = int32Argument(args[5]!, "device") else { return nil }
    let iterations = PyLong_AsSsize_t(args[6]!)
    if iterations == -1, PyErr_Occurred() != nil { return nil }
    guard iterations >= 0 else {
        raise(SL_ExcValueError(), "raw_launch_loop: iterations must not be negative")
        return nil
    }
    guard let driver = Runtime.shared.driver else {
        raise(SL_ExcRuntimeError(), Runtime.shared.driverError)
        return nil
    }
    var start = timespec()
    var end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    do throws(LaunchError) {
        try values.withUnsafeBufferPointer { buffer throws(LaunchError) in
            try entry.launch.launch(values: buffer, grid: grid, stream: stream, device: device, globalScratch: 0,
                                    driver: driver, repetitions: iterations)
        }
    } catch {
        raise(SL_ExcRuntimeError(), "\(error)")
        return nil
    }
    clock_gettime(CLOCK_MONOTONIC, &end)
    let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
    return PyFloat_FromDouble(seconds)
}

/// A tuple of one to three ints, each a launchable grid size (a C int, not negative), as Triton's
/// launcher parses its grid. Nil with the error set.
private func rawGrid(_ object: PyPtr) -> Grid? {
    guard let size = tupleArgument(object, "raw_launch_loop: grid") else { return nil }
    guard (1...3).contains(size) else {
        raise(SL_ExcValueError(), "raw_launch_loop: grid has one to three sizes")
        return nil
    }
    var dims: [Int64] = [1, 1, 1]
    for index in 0..<size {
        guard let value = int32Argument(tupleItem(object, index), "a grid size") else { return nil }
        guard value >= 0 else {
            raise(SL_ExcValueError(), "raw_launch_loop: grid sizes must not be negative")
            return nil
        }
        dims[index] = Int64(value)
    }
    return Grid(x: dims[0], y: dims[1], z: dims[2])
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

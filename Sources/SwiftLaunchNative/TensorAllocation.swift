@preconcurrency import CPython

// A planned Helion allocation made without torch's Python binding: `at::empty_strided` through
// AOTInductor's C shim, wrapped as a Python tensor by torch's own `THPVariable_Wrap`. The binding of
// `torch.empty_like` (argument parsing, `__torch_function__` checks, releasing and taking the GIL)
// costs about as much as the allocation itself; this skips it and keeps the rest: the same
// dispatcher call, the same caching allocator on the current stream, the same tensor object.
//
// Used only where it gives what the Python call gives (the glue, `_torch_alloc`, checks each rule on
// probes before turning it on):
// - the layout is the recorded call's output, which the entry's guard fixes (see `_helion_plan`);
// - only device types the glue names (CUDA: the shim's CUDA branch goes through the dispatcher and
//   so through `empty_strided_cuda`, which fills memory in deterministic mode as torch's own does);
// - no torch dispatch mode is active (one would see `aten::empty_strided` where the wrapper's call
//   shows `aten::empty_like`), asked once per call;
// - for `empty_like` / `new_empty*`, the source tensor has no names (`empty_like` copies them, the
//   others refuse named tensors), asked per allocation.
// Anything else, or any failure, and the planned Python call is made instead.

/// The output's layout, recorded from the entry's real call.
struct TensorLayout {
    let sizes: [Int64]
    let strides: [Int64]
    let dtype: Int32
    let deviceType: Int32
    let deviceIndex: Int32

    /// The most dimensions accepted: torch's own limit for a tensor.
    static let maxDimensions = 64

    /// Decodes `(sizes, strides, dtype_code, device_type, device_index)`: tuples of as many
    /// non-negative ints, three 32-bit ints. nil (no Python error) when malformed.
    static func decode(_ object: PyPtr) -> TensorLayout? {
        guard SL_TupleCheck(object) != 0, PyTuple_Size(object) == 5,
              let sizes = integers(PyTuple_GetItem(object, 0)!), let strides = integers(PyTuple_GetItem(object, 1)!),
              sizes.count == strides.count, sizes.count <= maxDimensions,
              let dtype = int32(PyTuple_GetItem(object, 2)!), let deviceType = int32(PyTuple_GetItem(object, 3)!),
              let deviceIndex = int32(PyTuple_GetItem(object, 4)!)
        else { return nil }
        return TensorLayout(sizes: sizes, strides: strides, dtype: dtype, deviceType: deviceType, deviceIndex: deviceIndex)
    }

    private static func integers(_ object: PyPtr) -> [Int64]? {
        guard SL_TupleCheck(object) != 0 else { return nil }
        var values: [Int64] = []
        for index in 0..<PyTuple_Size(object) {
            let item = PyTuple_GetItem(object, index)!
            guard SL_LongCheck(item) != 0 else { return nil }
            var overflow: Int32 = 0
            let value = PyLong_AsLongLongAndOverflow(item, &overflow)
            guard overflow == 0, value >= 0 else { PyErr_Clear(); return nil }
            values.append(value)
        }
        return values
    }

    private static func int32(_ object: PyPtr) -> Int32? {
        guard SL_LongCheck(object) != 0 else { return nil }
        var overflow: Int32 = 0
        let value = PyLong_AsLongLongAndOverflow(object, &overflow)
        guard overflow == 0, let narrow = Int32(exactly: value) else { PyErr_Clear(); return nil }
        return narrow
    }

    /// Bytes the storage spans (torch's `computeStorageNbytes`), nil past 2^62: a bound for the
    /// glue's validation entry point, which must not be made to allocate without limit.
    func byteSpan(itemSize: Int64) -> Int64? {
        var last: Int64 = 0
        for (size, stride) in zip(sizes, strides) {
            if size == 0 { return 0 }
            let (product, overflow) = (size - 1).multipliedReportingOverflow(by: stride)
            guard !overflow, last <= Int64.max / 4 - product else { return nil }
            last += product
        }
        let (bytes, overflow) = (last + 1).multipliedReportingOverflow(by: max(itemSize, 1))
        return overflow || bytes > Int64.max / 4 ? nil : bytes
    }
}

/// The three functions, found in torch's already-loaded libraries (never linked).
struct TorchAllocator {
    typealias EmptyStrided = @convention(c) (Int64, UnsafePointer<Int64>?, UnsafePointer<Int64>?, Int32, Int32, Int32,
                                             UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32
    typealias DeleteHandle = @convention(c) (UnsafeMutableRawPointer?) -> Int32
    typealias Wrap = @convention(c) (UnsafeRawPointer?) -> PyPtr?

    let emptyStrided: EmptyStrided
    let deleteHandle: DeleteHandle
    let wrap: Wrap

    /// The C++ symbol of `PyObject* THPVariable_Wrap(const at::TensorBase&)` (Itanium mangling).
    static let wrapSymbol = "_Z16THPVariable_WrapRKN2at10TensorBaseE"

    init(cpuLibrary: String, pythonLibrary: String) throws(TensorReaderError) {
        guard let cpu = dlopen(cpuLibrary, RTLD_NOLOAD | RTLD_LAZY) else { throw .library(cpuLibrary) }
        guard let python = dlopen(pythonLibrary, RTLD_NOLOAD | RTLD_LAZY) else { throw .library(pythonLibrary) }
        func symbol(_ handle: UnsafeMutableRawPointer, _ name: String) throws(TensorReaderError) -> UnsafeMutableRawPointer {
            guard let address = dlsym(handle, name) else { throw .missingFunction(name) }
            return address
        }
        // Sound: torch's shim header declares `aoti_torch_empty_strided(int64_t ndim, const int64_t*
        // sizes, const int64_t* strides, int32_t dtype, int32_t device_type, int32_t device_index,
        // AtenTensorHandle* ret)` and `aoti_torch_delete_tensor_object(AtenTensorHandle)`.
        emptyStrided = unsafeBitCast(try symbol(cpu, "aoti_torch_empty_strided"), to: EmptyStrided.self)
        deleteHandle = unsafeBitCast(try symbol(cpu, "aoti_torch_delete_tensor_object"), to: DeleteHandle.self)
        // Sound: the Itanium C++ ABI passes a reference as a pointer, and an `AtenTensorHandle` is an
        // `at::Tensor*`, whose `at::TensorBase` base is at offset 0 (it adds no members). The function
        // copies the tensor (one more reference to the TensorImpl) into a new Python object.
        wrap = unsafeBitCast(try symbol(python, Self.wrapSymbol), to: Wrap.self)
    }

    /// A new tensor object of `layout`, or nil (no Python error) when torch reports an error (out of
    /// memory, an invalid device): the caller then makes torch's own call, which raises as it would.
    func make(_ layout: TensorLayout) -> PyPtr? {
        var handle: UnsafeMutableRawPointer?
        let status = layout.sizes.withUnsafeBufferPointer { sizes in
            layout.strides.withUnsafeBufferPointer { strides in
                emptyStrided(Int64(sizes.count), sizes.baseAddress, strides.baseAddress, layout.dtype,
                             layout.deviceType, layout.deviceIndex, &handle)
            }
        }
        guard status == 0, let handle else { return nil }
        let object = wrap(handle)
        // The Python object holds its own reference; the handle's goes with the handle.
        _ = deleteHandle(handle)
        guard let object else { PyErr_Clear(); return nil }
        return object
    }

    /// Found by `torch_allocator_probe`; in use once `torch_allocator_configure` turns it on.
    nonisolated(unsafe) static var candidate: TorchAllocator?
    nonisolated(unsafe) static var config: AllocationConfig?
    nonisolated(unsafe) static var made = 0
}

/// What the glue validated: the allocator, the device types it may serve, and the question it asks.
struct AllocationConfig {
    let allocator: TorchAllocator
    let deviceTypes: [Int32]
    /// `torch._C._len_torch_dispatch_stack`.
    let dispatchStackLength: PyRef

    /// Whether this call may allocate natively: no torch dispatch mode active. Asked once per call.
    func callAllows() -> Bool {
        guard let length = call(dispatchStackLength.object) else { PyErr_Clear(); return false }
        defer { SL_DecRef(length) }
        let modes = PyLong_AsLong(length)
        if PyErr_Occurred() != nil { PyErr_Clear(); return false }
        return modes == 0
    }

}

/// Whether `tensor.has_names()` is False (an error reads as named). Helion's guard does not compare
/// names, so a call of an entry may pass a named tensor where the recorded call had none:
/// `empty_like` copies names and `new_empty` refuses named tensors, which neither the pool nor a
/// native allocation would do.
func tensorIsUnnamed(_ tensor: PyPtr) -> Bool {
    guard let answer = callMethodNoArgs(tensor, Names.hasNames) else { PyErr_Clear(); return false }
    defer { SL_DecRef(answer) }
    return answer == SL_False()
}

/// `_native.torch_allocator_probe(cpu_library, python_library)`: finds the functions; raises when one is missing.
let torchAllocatorProbeFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs == 2, let cpu = args[0], let python = args[1], SL_UnicodeCheck(cpu) != 0,
          SL_UnicodeCheck(python) != 0, let cpuPath = swiftString(cpu), let pythonPath = swiftString(python)
    else {
        if PyErr_Occurred() == nil { raise(SL_ExcTypeError(), "torch_allocator_probe(cpu_library: str, python_library: str)") }
        return nil
    }
    do {
        TorchAllocator.candidate = try TorchAllocator(cpuLibrary: cpuPath, pythonLibrary: pythonPath)
    } catch {
        TorchAllocator.candidate = nil
        raise(SL_ExcRuntimeError(), "\(error)")
        return nil
    }
    return SL_NewRefNone()
}

/// `_native.torch_allocate(layout, item_size)` → a tensor made by the probed functions, for the glue's
/// validation. At most 64 MiB, so that no caller can make it allocate without limit.
let torchAllocateFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let allocator = TorchAllocator.candidate else {
        raise(SL_ExcRuntimeError(), "torch_allocate needs a successful torch_allocator_probe first")
        return nil
    }
    guard let args, nargs == 2, let layoutObject = args[0], let itemObject = args[1], SL_LongCheck(itemObject) != 0,
          let layout = TensorLayout.decode(layoutObject)
    else {
        if PyErr_Occurred() == nil {
            raise(SL_ExcTypeError(), "torch_allocate((sizes, strides, dtype_code, device_type, device_index), item_size)")
        }
        return nil
    }
    let itemSize = PyLong_AsLongLong(itemObject)
    if PyErr_Occurred() != nil { return nil }
    guard (1...16).contains(itemSize), let bytes = layout.byteSpan(itemSize: itemSize), bytes <= 64 << 20 else {
        raise(SL_ExcValueError(), "torch_allocate: item size 1-16 and at most 64 MiB")
        return nil
    }
    guard let made = allocator.make(layout) else {
        raise(SL_ExcRuntimeError(), "torch's aoti_torch_empty_strided reported an error")
        return nil
    }
    return made
}

/// `_native.torch_allocator_configure(device_types, dispatch_stack_len)` turns native
/// allocation on for plans recorded from then on; `torch_allocator_configure(None)` turns it off.
let torchAllocatorConfigureFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = {
    _, args, nargs in
    guard let args, nargs >= 1, let first = args[0] else {
        raise(SL_ExcTypeError(), "torch_allocator_configure(device_types, dispatch_stack_len) or (None)")
        return nil
    }
    if first == SL_None() && nargs == 1 {
        TorchAllocator.config = nil
        return SL_NewRefNone()
    }
    guard nargs == 2, let length = args[1], SL_TupleCheck(first) != 0, PyCallable_Check(length) != 0 else {
        raise(SL_ExcTypeError(), "torch_allocator_configure(device_types: tuple, dispatch_stack_len) or (None)")
        return nil
    }
    guard let allocator = TorchAllocator.candidate else {
        raise(SL_ExcRuntimeError(), "torch_allocator_configure needs a successful torch_allocator_probe first")
        return nil
    }
    var deviceTypes: [Int32] = []
    for index in 0..<PyTuple_Size(first) {
        let item = PyTuple_GetItem(first, index)!
        guard SL_LongCheck(item) != 0, let code = Int32(exactly: PyLong_AsLong(item)), PyErr_Occurred() == nil else {
            if PyErr_Occurred() == nil { raise(SL_ExcTypeError(), "device_types holds 32-bit ints") }
            return nil
        }
        deviceTypes.append(code)
    }
    TorchAllocator.config = AllocationConfig(allocator: allocator, deviceTypes: deviceTypes,
                                             dispatchStackLength: PyRef(borrowing: length))
    return SL_NewRefNone()
}

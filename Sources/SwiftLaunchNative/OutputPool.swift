@preconcurrency import CPython
import SwiftLaunchCore

// The output pool of a natively run Helion call (opt-in: `install(output_pool=True)` or
// `SWIFTLAUNCH_OUTPUT_POOL=1`). Each planned entry keeps the tensors its last call allocated; the next
// call of the entry reuses one instead of allocating only when nothing else can reach its memory and
// a fresh allocation would be indistinguishable from it:
// - reach: the Python object's refcount is 1 (the pool's), the TensorImpl's strong count is 1 and weak
//   count 1 (no view, `detach()`, DLPack capsule, saved tensor or weak intrusive pointer), the
//   StorageImpl's strong count is 1 and weak count 1 (no other tensor or storage object on that
//   memory), and no Python weak reference to the object;
// - indistinguishable: the same exact type, no instance attributes, the data pointer, storage offset,
//   dtype, device, sizes and strides it was allocated with (nothing resized or re-pointed it), no
//   `requires_grad`, no `.grad`, no names, made in the same inference-mode state;
// - and for the GPU: the current stream of its device is the one it was last used on (so the new
//   kernel is ordered after every earlier use this process made on that stream, as the caching
//   allocator orders a freed block), no CUDA graph is capturing on the current stream (a captured
//   address would be written again by every replay), and no torch dispatch mode is active (it would
//   have seen the allocation).
// The counts are read at offsets the glue validated at configure time against torch's own
// `_use_count()` and `_storage_Use_Count` (`swiftlaunch._helion_pool`), never guessed. What no count
// can see (raw `data_ptr()` integers, work queued on another stream, `record_stream`, a graph that
// captured the buffer earlier) is documented in docs/DESIGN.md.

/// Where the reference counts are, as the glue validated them.
struct PoolLayout {
    /// Offset of the `StorageImpl*` in a TensorImpl.
    let storageOffset: Int
    /// torch 2.10+: one 64-bit word at +8 (strong in bits 0–31, weak in 32–62); before: strong at +8
    /// and weak at +16, each a full word.
    let combined: Bool

    /// (strong, weak) of the intrusive-pointer target at `target`.
    @inline(__always)
    func counts(_ target: UnsafeRawPointer) -> (strong: UInt64, weak: UInt64) {
        // Plain aligned 64-bit loads: a count another thread changes at the same moment reads as the
        // old or the new value, and either way the object is then shared, which the caller refuses
        // only if it sees it; the GIL keeps every Python holder from changing while we look.
        let word = (target + 8).load(as: UInt64.self)
        if combined { return (word & 0xFFFF_FFFF, (word >> 32) & 0x7FFF_FFFF) }
        return (word, (target + 16).load(as: UInt64.self))
    }
}

/// Objects the pool calls, handed over by `helion_pool_configure`.
final class PoolConfig {
    let layout: PoolLayout
    /// `weakref.getweakrefcount`.
    let weakrefCount: PyRef
    /// `torch._C._cuda_isCurrentStreamCapturing` (what `torch.cuda.is_current_stream_capturing` calls).
    let isCapturing: PyRef
    /// `torch._C.is_inference_mode_enabled`.
    let inferenceEnabled: PyRef
    /// `torch._C._len_torch_dispatch_stack`.
    let dispatchStackLength: PyRef
    let requiresGrad: PyPtr
    let grad: PyPtr
    let hasNames: PyPtr
    /// The device type whose tensors are pooled (torch's shim code): CUDA, or for the CPU tests the CPU.
    let deviceType: Int32
    /// For the CPU tests only: `current_stream(device_index)` → int, standing in for torch's stream.
    let streamOverride: PyRef?
    /// Whether the capture state comes from the driver (`cuStreamIsCapturing` on torch's current
    /// stream of the current device) instead of `isCapturing`; set once the glue saw both agree,
    /// outside and inside a capture (`helion_pool_driver_capture`).
    var captureFromDriver = false

    init(layout: PoolLayout, weakrefCount: PyPtr, isCapturing: PyPtr, inferenceEnabled: PyPtr,
         dispatchStackLength: PyPtr, names: (PyPtr, PyPtr, PyPtr), deviceType: Int32, streamOverride: PyPtr?) {
        self.deviceType = deviceType
        self.streamOverride = streamOverride.map { PyRef(borrowing: $0) }
        self.layout = layout
        self.weakrefCount = PyRef(borrowing: weakrefCount)
        self.isCapturing = PyRef(borrowing: isCapturing)
        self.inferenceEnabled = PyRef(borrowing: inferenceEnabled)
        self.dispatchStackLength = PyRef(borrowing: dispatchStackLength)
        (requiresGrad, grad, hasNames) = names
    }
}

/// What a fresh tensor looked like when the pool took it; a reuse must find it unchanged.
struct TensorFingerprint {
    var type: UInt64
    var data: UInt64
    var storageOffset: Int64
    var dtype: Int32
    var deviceType: Int32
    var deviceIndex: Int32
    var sizes: [Int64]
    var strides: [Int64]
}

/// One pooled tensor: the object (owned), its fingerprint, the stream and inference state of its last use.
final class PooledTensor {
    let object: PyPtr
    let fingerprint: TensorFingerprint
    var stream: UInt64
    let inference: Bool

    /// Adds a reference of its own.
    init(object: PyPtr, fingerprint: TensorFingerprint, stream: UInt64, inference: Bool) {
        SL_IncRef(object)
        self.object = object
        self.fingerprint = fingerprint
        self.stream = stream
        self.inference = inference
    }

    deinit { SL_DecRef(object) }
}

/// Whether `tensor.has_names()` is False (an error reads as named). Helion's guard does not compare
/// names, so a call of an entry may pass a named tensor where the recorded call had none:
/// `empty_like` copies names and `new_empty` refuses named tensors, which a pooled output would not.
func tensorIsUnnamed(_ tensor: PyPtr) -> Bool {
    guard let answer = callMethodNoArgs(tensor, Names.hasNames) else { PyErr_Clear(); return false }
    defer { SL_DecRef(answer) }
    return answer == SL_False()
}

/// The state of the call a pool looks at once per call.
struct PoolContext {
    let inference: Bool
}

final class OutputPool {
    nonisolated(unsafe) static var config: PoolConfig?
    /// The layout `helion_pool_layout` accepted, for the glue's validation before `configure`.
    nonisolated(unsafe) static var candidateLayout: PoolLayout?
    /// Offsets of the storage pointer found in every probe so far (nil before the first probe).
    nonisolated(unsafe) static var probedStorageOffsets: Set<Int>?
    nonisolated(unsafe) static var reused = 0
    nonisolated(unsafe) static var allocated = 0
    nonisolated(unsafe) static var refusals: [String: Int] = [:]

    static var isOn: Bool { config != nil }

    private var slots: [PooledTensor?]

    init(count: Int) {
        slots = Array(repeating: nil, count: count)
    }

    private static func refuse(_ reason: String) {
        refusals[reason, default: 0] &+= 1
    }

    /// The call's context, or nil when nothing may be pooled in this call (a graph capturing, a
    /// dispatch mode, or a question that raised).
    func context() -> PoolContext? {
        guard let config = OutputPool.config else { return nil }
        let state = config.captureFromDriver ? OutputPool.driverCapturing() : callBool(config.isCapturing.object)
        guard let capturing = state else {
            OutputPool.refuse("capture state unreadable")
            return nil
        }
        guard !capturing else {
            OutputPool.refuse("CUDA graph capturing")
            return nil
        }
        guard let length = call(config.dispatchStackLength.object) else { PyErr_Clear(); return nil }
        let modes = PyLong_AsLong(length)
        SL_DecRef(length)
        guard modes == 0, PyErr_Occurred() == nil else {
            PyErr_Clear()
            OutputPool.refuse("torch dispatch mode")
            return nil
        }
        guard let inference = callBool(config.inferenceEnabled.object) else { return nil }
        return PoolContext(inference: inference)
    }

    /// A new reference to output `index`'s pooled tensor when it may be reused now, else nil.
    func take(_ index: Int, _ context: PoolContext) -> PyPtr? {
        guard let pooled = slots[index] else { return nil }
        if let reason = OutputPool.unreachableReason(pooled.object, pooled.fingerprint) {
            OutputPool.refuse(reason)
            return nil
        }
        guard pooled.inference == context.inference else { OutputPool.refuse("inference mode changed"); return nil }
        guard let stream = OutputPool.currentStream(pooled.fingerprint), stream == pooled.stream else {
            OutputPool.refuse("another stream")
            return nil
        }
        OutputPool.reused &+= 1
        SL_IncRef(pooled.object)
        return pooled.object
    }

    /// After the launch: output `index` of this call is the one to reuse next time.
    func keep(_ index: Int, _ object: PyPtr, _ context: PoolContext) {
        if let pooled = slots[index], pooled.object == object { return }  // reused: unchanged
        guard let config = OutputPool.config, let fingerprint = OutputPool.fingerprint(object),
              fingerprint.deviceType == config.deviceType,
              let stream = OutputPool.currentStream(fingerprint)
        else {
            slots[index] = nil
            return
        }
        OutputPool.allocated &+= 1
        slots[index] = PooledTensor(object: object, fingerprint: fingerprint, stream: stream, inference: context.inference)
    }

    /// What torch's `_cuda_isCurrentStreamCapturing()` answers (`cudaStreamIsCapturing` on the current
    /// device's current stream), asked of the driver directly; nil when there is no current context,
    /// no stream or the driver fails (torch would raise then).
    static func driverCapturing() -> Bool? {
        let runtime = Runtime.shared
        guard let driver = runtime.driver, let shim = runtime.streamShim,
              let device = (try? driver.currentDevice()) ?? nil,
              let stream = shim.stream(device: device)
        else { return nil }
        return try? driver.isCapturing(stream: stream)
    }

    // MARK: - Reading a tensor

    static func fingerprint(_ object: PyPtr) -> TensorFingerprint? {
        guard let reader = Runtime.shared.nativeReader, Runtime.shared.isTensor(object),
              let fields = reader.guardFields(object)
        else { return nil }
        let handle = reader.handle(object)
        var data: UnsafeMutableRawPointer?
        var offset: Int64 = 0
        guard reader.shim.dataPtr(handle, &data) == 0, reader.shim.storageOffset(handle, &offset) == 0 else { return nil }
        return TensorFingerprint(
            type: HelionConfig.typeWord(object), data: UInt64(UInt(bitPattern: data)), storageOffset: offset,
            dtype: fields.dtype, deviceType: fields.deviceType, deviceIndex: fields.deviceIndex,
            sizes: Array(UnsafeBufferPointer(start: fields.sizes, count: fields.dim)),
            strides: Array(UnsafeBufferPointer(start: fields.strides, count: fields.dim)))
    }

    /// Whether the tensor still has the fingerprint it was pooled with (read in place: this is on the
    /// per-call path).
    static func matches(_ object: PyPtr, _ expected: TensorFingerprint) -> Bool {
        guard let reader = Runtime.shared.nativeReader, HelionConfig.typeWord(object) == expected.type,
              let fields = reader.guardFields(object), fields.dtype == expected.dtype,
              fields.deviceType == expected.deviceType, fields.deviceIndex == expected.deviceIndex,
              fields.dim == expected.sizes.count
        else { return false }
        for index in 0..<fields.dim where fields.sizes![index] != expected.sizes[index]
            || fields.strides![index] != expected.strides[index] {
            return false
        }
        let handle = reader.handle(object)
        var data: UnsafeMutableRawPointer?
        var offset: Int64 = 0
        return reader.shim.dataPtr(handle, &data) == 0 && reader.shim.storageOffset(handle, &offset) == 0
            && UInt64(UInt(bitPattern: data)) == expected.data && offset == expected.storageOffset
    }

    /// The four counts of a tensor: its TensorImpl's and its StorageImpl's (strong, weak); nil when
    /// the tensor has no storage. Reads only through the validated layout.
    static func counts(_ object: PyPtr, _ layout: PoolLayout) -> (UInt64, UInt64, UInt64, UInt64)? {
        guard let reader = Runtime.shared.nativeReader,
              let impl = reader.handle(object).load(as: UnsafeRawPointer?.self),
              let storage = (impl + layout.storageOffset).load(as: UnsafeRawPointer?.self)
        else { return nil }
        let tensor = layout.counts(impl), memory = layout.counts(storage)
        return (tensor.strong, tensor.weak, memory.strong, memory.weak)
    }

    /// Why `object` (the pool's, with fingerprint `expected`, or nil to skip that comparison) may be
    /// seen by something else or differs from a fresh allocation; nil when it may be reused.
    static func unreachableReason(_ object: PyPtr, _ expected: TensorFingerprint?) -> String? {
        guard let config else { return "pool off" }
        // Cheapest and most common first: the caller still holds the result. The pool's own
        // reference is the only one allowed.
        guard SL_RefCnt(object) == 1 else { return "result still referenced" }
        guard Runtime.shared.isTensor(object) else { return "not an exact tensor" }
        guard let (strong, weak, storageStrong, storageWeak) = counts(object, config.layout) else { return "no storage" }
        guard strong == 1, weak == 1 else { return "tensor shared (view, DLPack, saved)" }
        guard storageStrong == 1, storageWeak == 1 else { return "storage shared (detach, storage, view)" }
        if let reason = instanceStateReason(object, config) { return reason }
        if let expected, !matches(object, expected) { return "tensor changed (resized, re-pointed)" }
        return nil
    }

    /// Python-visible state a fresh tensor does not have.
    private static func instanceStateReason(_ object: PyPtr, _ config: PoolConfig) -> String? {
        if let dictPointer = HelionDispatch.dictPointer {
            if let slot = dictPointer(object), let dict = slot.pointee, PyDict_Size(dict) != 0 { return "instance attributes" }
            PyErr_Clear()
        } else {
            return "instance dict unreadable"
        }
        guard let weakrefs = call(config.weakrefCount.object, object) else { PyErr_Clear(); return "weak references" }
        let count = PyLong_AsLong(weakrefs)
        SL_DecRef(weakrefs)
        guard count == 0 else { PyErr_Clear(); return "weak references" }
        for (name, expected) in [(config.requiresGrad, SL_False()), (config.grad, SL_None())] {
            guard let value = PyObject_GetAttr(object, name) else { PyErr_Clear(); return "autograd state" }
            SL_DecRef(value)
            guard value == expected else { return "autograd state" }
        }
        guard let names = callMethodNoArgs(object, config.hasNames) else { PyErr_Clear(); return "names" }
        SL_DecRef(names)
        guard names == SL_False() else { return "names" }
        return nil
    }

    /// torch's current stream on the tensor's device (no Python error left set).
    private static func currentStream(_ fingerprint: TensorFingerprint) -> UInt64? {
        if let override = config?.streamOverride {
            guard let device = newInteger(Int(fingerprint.deviceIndex)) else { PyErr_Clear(); return nil }
            defer { SL_DecRef(device) }
            guard let stream = call(override.object, device) else { PyErr_Clear(); return nil }
            defer { SL_DecRef(stream) }
            let value = PyLong_AsUnsignedLongLong(stream)
            if PyErr_Occurred() != nil { PyErr_Clear(); return nil }
            return UInt64(value)
        }
        let runtime = Runtime.shared
        if let shim = runtime.streamShim { return shim.stream(device: fingerprint.deviceIndex) }
        guard let query = runtime.currentStream, let device = newInteger(Int(fingerprint.deviceIndex)) else {
            PyErr_Clear()
            return nil
        }
        defer { SL_DecRef(device) }
        guard let streamObject = query(device) else { PyErr_Clear(); return nil }
        defer { SL_DecRef(streamObject) }
        let stream = PyLong_AsUnsignedLongLong(streamObject)
        if PyErr_Occurred() != nil { PyErr_Clear(); return nil }
        return UInt64(stream)
    }

    private func callBool(_ function: PyPtr) -> Bool? {
        guard let result = call(function) else { PyErr_Clear(); return nil }
        defer { SL_DecRef(result) }
        if result == SL_True() { return true }
        if result == SL_False() { return false }
        return nil
    }
}

// MARK: - Entry points (the glue's configure-time validation and the CPU tests)

/// `_native.helion_pool_probe(tensor)` → the offsets, within the tensor's TensorImpl, of the word that
/// holds its StorageImpl's address (torch's own `x.untyped_storage()._cdata`), and the raw words at
/// TensorImpl+8 and +16. Only offsets found in every probe so far are remembered for `helion_pool_layout`.
let helionPoolProbeFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, tensor in
    guard let tensor, let reader = Runtime.shared.nativeReader, Runtime.shared.isTensor(tensor) else {
        raise(SL_ExcTypeError(), "helion_pool_probe(tensor) needs an exact tensor and the native reader")
        return nil
    }
    // The address comes from torch itself, so nothing read here is followed.
    guard let name = PyUnicode_InternFromString("untyped_storage") else { return nil }
    defer { SL_DecRef(name) }
    guard let storage = callMethodNoArgs(tensor, name) else { return nil }
    defer { SL_DecRef(storage) }
    guard let cdata = PyObject_GetAttrString(storage, "_cdata") else { return nil }
    let address = PyLong_AsUnsignedLongLong(cdata)
    SL_DecRef(cdata)
    if PyErr_Occurred() != nil { return nil }
    guard let impl = reader.handle(tensor).load(as: UnsafeRawPointer?.self) else {
        raise(SL_ExcValueError(), "the tensor has no TensorImpl")
        return nil
    }
    // A TensorImpl is far larger than 128 bytes: these words are inside it.
    var found = Set<Int>()
    for offset in stride(from: 8, to: 128, by: 8) where (impl + offset).load(as: UInt64.self) == address {
        found.insert(offset)
    }
    OutputPool.probedStorageOffsets = OutputPool.probedStorageOffsets.map { $0.intersection(found) } ?? found
    guard let result = PyTuple_New(3), let offsets = PyTuple_New(found.count) else { return nil }
    for (index, offset) in found.sorted().enumerated() { PyTuple_SetItem(offsets, index, newInteger(offset)) }
    PyTuple_SetItem(result, 0, offsets)
    PyTuple_SetItem(result, 1, PyLong_FromUnsignedLongLong((impl + 8).load(as: UInt64.self)))
    PyTuple_SetItem(result, 2, PyLong_FromUnsignedLongLong((impl + 16).load(as: UInt64.self)))
    return result
}

/// `_native.helion_pool_layout(storage_offset, combined)`: the layout `helion_pool_counts` reads with;
/// the offset must be one every probe found.
let helionPoolLayoutFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = { _, args, nargs in
    guard let args, nargs == 2, let offsetObject = args[0], let combined = args[1], SL_LongCheck(offsetObject) != 0 else {
        raise(SL_ExcTypeError(), "helion_pool_layout(storage_offset: int, combined: bool)")
        return nil
    }
    let offset = PyLong_AsLong(offsetObject)
    if PyErr_Occurred() != nil { return nil }
    guard let probed = OutputPool.probedStorageOffsets, probed.contains(offset) else {
        raise(SL_ExcValueError(), "storage offset \(offset) was not found by helion_pool_probe")
        return nil
    }
    OutputPool.candidateLayout = PoolLayout(storageOffset: offset, combined: combined == SL_True())
    return SL_NewRefNone()
}

/// `_native.helion_pool_counts(tensor)` → `(tensor strong, tensor weak, storage strong, storage weak,
/// storage address)` through the candidate layout, for the glue to compare with torch's own counts.
let helionPoolCountsFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, tensor in
    guard let tensor, let layout = OutputPool.candidateLayout, let reader = Runtime.shared.nativeReader,
          Runtime.shared.isTensor(tensor)
    else {
        raise(SL_ExcTypeError(), "helion_pool_counts(tensor) needs an exact tensor and helion_pool_layout first")
        return nil
    }
    guard let (strong, weak, storageStrong, storageWeak) = OutputPool.counts(tensor, layout),
          let impl = reader.handle(tensor).load(as: UnsafeRawPointer?.self)
    else { return SL_NewRefNone() }
    let storage = (impl + layout.storageOffset).load(as: UInt64.self)
    guard let result = PyTuple_New(5) else { return nil }
    for (index, value) in [strong, weak, storageStrong, storageWeak, storage].enumerated() {
        PyTuple_SetItem(result, index, PyLong_FromUnsignedLongLong(value))
    }
    return result
}

/// `_native.helion_pool_configure(weakref_count, is_capturing, inference_enabled, dispatch_stack_length)`
/// turns the pool on with the candidate layout for CUDA tensors (plans made from now on get a pool);
/// `helion_pool_configure(None)` turns it off. The CPU tests add `(cpu=True, current_stream)`: CPU
/// tensors are pooled, and `current_stream(device_index)` stands in for torch's current stream.
let helionPoolConfigureFunction: @convention(c) (PyPtr?, UnsafePointer<PyPtr?>?, Py_ssize_t) -> PyPtr? = { _, args, nargs in
    guard let args else { return nil }
    if nargs == 1, args[0] == SL_None() {
        OutputPool.config = nil
        return SL_NewRefNone()
    }
    guard nargs == 4 || nargs == 6, let layout = OutputPool.candidateLayout, let reader = Runtime.shared.nativeReader,
          (0..<4).allSatisfy({ PyCallable_Check(args[$0]!) != 0 }),
          nargs == 4 || (args[4] == SL_True() && PyCallable_Check(args[5]!) != 0)
    else {
        raise(SL_ExcTypeError(), "helion_pool_configure(weakref_count, is_capturing, inference_enabled, "
                                 + "dispatch_stack_length[, True, current_stream]) after helion_pool_layout, or (None)")
        return nil
    }
    guard let requiresGrad = PyUnicode_InternFromString("requires_grad"), let grad = PyUnicode_InternFromString("grad"),
          let hasNames = PyUnicode_InternFromString("has_names")
    else { return nil }
    if HelionDispatch.dictPointer == nil, let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "_PyObject_GetDictPtr") {
        // Sound: CPython declares it `PyObject **_PyObject_GetDictPtr(PyObject *)` (see HelionDispatch).
        HelionDispatch.dictPointer = unsafeBitCast(symbol, to: HelionDispatch.DictPointer.self)
    }
    let cpu = nargs == 6
    OutputPool.config = PoolConfig(layout: layout, weakrefCount: args[0]!, isCapturing: args[1]!, inferenceEnabled: args[2]!,
                                   dispatchStackLength: args[3]!, names: (requiresGrad, grad, hasNames),
                                   deviceType: cpu ? reader.shim.cpuDeviceType : reader.shim.cudaDeviceType,
                                   streamOverride: cpu ? args[5]! : nil)
    return SL_NewRefNone()
}

/// `_native.current_stream_capturing()` → bool: the driver's answer `OutputPool` uses when told to
/// (`helion_pool_driver_capture`), for the glue to compare with torch's; raises when it has none.
let currentStreamCapturingFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, _ in
    guard let capturing = OutputPool.driverCapturing() else {
        raise(SL_ExcRuntimeError(), "no capture state: no driver, stream shim or current context, or the driver failed")
        return nil
    }
    return capturing ? SL_NewRefTrue() : SL_NewRefFalse()
}

/// `_native.helion_pool_driver_capture(on)`: the configured pool asks the driver for the capture
/// state (True) or torch's `_cuda_isCurrentStreamCapturing` (False).
let helionPoolDriverCaptureFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, flag in
    guard let flag, flag == SL_True() || flag == SL_False(), let config = OutputPool.config else {
        raise(SL_ExcTypeError(), "helion_pool_driver_capture(on: bool) after helion_pool_configure")
        return nil
    }
    config.captureFromDriver = flag == SL_True()
    return SL_NewRefNone()
}

/// `_native.helion_pool_check(box)` → "" when the pool could reuse `box[0]` (a list of one tensor,
/// standing in for the pool's slot: the list's reference is the pool's) as far as its holders and
/// state go (the per-call stream, capture and mode checks aside), else why not. For the CPU tests.
let helionPoolCheckFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, box in
    guard let box, SL_ListCheck(box) != 0, PyList_Size(box) == 1, let tensor = PyList_GetItem(box, 0) else {
        raise(SL_ExcTypeError(), "helion_pool_check([tensor])")
        return nil
    }
    guard OutputPool.config != nil else { return pyString("pool off") }
    // Borrowed from the list: no reference of this call is counted.
    return pyString(OutputPool.unreachableReason(tensor, nil) ?? "")
}

@preconcurrency import CPython

/// torch's current CUDA stream through AOTInductor's CUDA shim (`aoti_torch_get_current_cuda_stream`,
/// exported by `libtorch_cuda.so`): what `torch._C._cuda_getCurrentRawStream` answers, without a Python
/// call. The glue turns it on only after comparing the two on every device and inside a stream context.
struct TorchStreamShim {
    typealias Function = @convention(c) (Int32, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32
    let currentStream: Function

    /// nil when the library is not loaded or has no such function.
    init?(libraryPath: String) {
        guard let handle = dlopen(libraryPath, RTLD_NOLOAD | RTLD_LAZY),
              let symbol = dlsym(handle, "aoti_torch_get_current_cuda_stream")
        else { return nil }
        // Sound: torch's CUDA shim header declares it as
        // `AOTITorchError aoti_torch_get_current_cuda_stream(int32_t device_index, void** ret_stream)`.
        currentStream = unsafeBitCast(symbol, to: Function.self)
    }

    /// The stream, or nil when torch reports an error (an invalid device, say).
    @inline(__always)
    func stream(device: Int32) -> UInt64? {
        var stream: UnsafeMutableRawPointer?
        guard currentStream(device, &stream) == 0 else { return nil }
        return UInt64(UInt(bitPattern: stream))
    }

    /// Found by `stream_shim_probe`, used once `configure` is told to.
    nonisolated(unsafe) static var candidate: TorchStreamShim?
}

/// `_native.stream_shim_probe(library_path)` → bool: whether the shim function was found.
let streamShimProbeFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, path in
    guard let path, SL_UnicodeCheck(path) != 0, let text = swiftString(path) else {
        raise(SL_ExcTypeError(), "stream_shim_probe(library_path: str)")
        return nil
    }
    TorchStreamShim.candidate = TorchStreamShim(libraryPath: text)
    return TorchStreamShim.candidate == nil ? SL_NewRefFalse() : SL_NewRefTrue()
}

/// `_native.current_stream(device)` → int: the probed shim's answer, for the glue's validation.
let currentStreamFunction: @convention(c) (PyPtr?, PyPtr?) -> PyPtr? = { _, deviceObject in
    guard let shim = TorchStreamShim.candidate else {
        raise(SL_ExcRuntimeError(), "current_stream needs a successful stream_shim_probe first")
        return nil
    }
    guard let deviceObject, SL_LongCheck(deviceObject) != 0 else {
        raise(SL_ExcTypeError(), "current_stream(device: int)")
        return nil
    }
    let device = PyLong_AsLong(deviceObject)
    if PyErr_Occurred() != nil { return nil }
    guard let narrow = Int32(exactly: device), narrow >= 0, let stream = shim.stream(device: narrow) else {
        raise(SL_ExcValueError(), "torch has no current stream for device \(device)")
        return nil
    }
    return PyLong_FromUnsignedLongLong(stream)
}

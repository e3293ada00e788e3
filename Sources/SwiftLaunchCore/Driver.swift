import CUDADriver


/// A CUDA driver error: the `CUresult` and the driver's own text for it.
public struct DriverError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var description: String { "Triton Error [CUDA]: \(message)" }

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }
}

/// Where a pointer argument lives, as the driver reports it.
public struct PointerInfo: Equatable, Sendable {
    /// The address the kernel must receive (`CU_POINTER_ATTRIBUTE_DEVICE_POINTER`).
    public var devicePointer: UInt64
    /// The device the memory belongs to, or nil when the driver does not know the address.
    public var deviceOrdinal: Int32?

    public init(devicePointer: UInt64, deviceOrdinal: Int32?) {
        self.devicePointer = devicePointer
        self.deviceOrdinal = deviceOrdinal
    }
}

/// The driver calls on the launch path. `DynamicDriver` is the real one; tests use a recording fake.
public protocol Driver {
    /// The device of the calling thread's current CUDA context (where a launch runs), or nil when
    /// the thread has no current context.
    func currentDevice() throws(DriverError) -> Int32?
    /// Nil when the driver does not know the address (host memory, a freed block).
    func pointerInfo(_ address: UInt64) throws(DriverError) -> PointerInfo?
    /// Whether `stream` is capturing a CUDA graph (an invalidated capture counts: the capture is
    /// still under way).
    func isCapturing(stream: UInt64) throws(DriverError) -> Bool
    /// `parameters` points at one pointer per kernel parameter, each at an 8-byte slot.
    func launch(_ config: LaunchConfig, parameters: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                count: Int) throws(DriverError)
}

/// `cuLaunchKernelEx`'s configuration and attributes, exactly as Triton's `_launch` builds them.
public struct LaunchConfig: Equatable, Sendable {
    public var function: UInt64
    public var gridX: UInt32
    public var gridY: UInt32
    public var gridZ: UInt32
    public var blockX: UInt32
    public var sharedMemory: UInt32
    public var stream: UInt64
    public var cooperative: Bool
    public var pdl: Bool
    public var numCTAs: UInt32
    /// Triton 3.8+ above 228 KiB of shared memory: `CU_LAUNCH_ATTRIBUTE_SHARED_MEMORY_MODE =
    /// CU_SHARED_MEMORY_MODE_ALLOW_OVERSIZED_SHARED_MEMORY`, the first attribute of the list.
    public var oversizedSharedMemory: Bool

    public init(function: UInt64, gridX: UInt32, gridY: UInt32, gridZ: UInt32, blockX: UInt32,
                sharedMemory: UInt32, stream: UInt64, cooperative: Bool, pdl: Bool, numCTAs: UInt32,
                oversizedSharedMemory: Bool = false) {
        self.function = function
        self.gridX = gridX
        self.gridY = gridY
        self.gridZ = gridZ
        self.blockX = blockX
        self.sharedMemory = sharedMemory
        self.stream = stream
        self.cooperative = cooperative
        self.pdl = pdl
        self.numCTAs = numCTAs
        self.oversizedSharedMemory = oversizedSharedMemory
    }
}

/// The CUDA driver, found with `dlopen("libcuda.so.1")` at run time. A value of plain function
/// pointers: copying it on the launch path costs no reference counting.
public struct DynamicDriver: Driver {
    private let cuCtxGetDevice: cuCtxGetDevice_t
    private let cuPointerGetAttributes: cuPointerGetAttributes_t
    private let cuLaunchKernelEx: cuLaunchKernelEx_t
    private let cuFuncSetAttribute: cuFuncSetAttribute_t
    private let cuGetErrorString: cuGetErrorString_t
    private let cuInit: cuInit_t
    private let cuDriverGetVersion: cuDriverGetVersion_t
    private let cuDeviceGetCount: cuDeviceGetCount_t
    private let cuDeviceGet: cuDeviceGet_t
    private let cuDeviceGetName: cuDeviceGetName_t
    private let cuDeviceGetAttribute: cuDeviceGetAttribute_t
    private let cuDeviceTotalMem: cuDeviceTotalMem_t
    private let cuStreamIsCapturing: cuStreamIsCapturing_t

    public enum LoadError: Error, CustomStringConvertible {
        case libraryNotFound(String)
        case symbolMissing(String)
        public var description: String {
            switch self {
            case let .libraryNotFound(why): return "libcuda.so.1 not found: \(why)"
            case let .symbolMissing(name): return "libcuda.so.1 has no \(name)"
            }
        }
    }

    public init() throws(LoadError) {
        guard let handle = swiftlaunch_dlopen_cuda() else {
            throw .libraryNotFound(swiftlaunch_dlerror().map { String(cString: $0) } ?? "dlopen failed")
        }
        // The handle is never closed: the function pointers below live as long as the process.
        func symbol<T>(_ name: String, _: T.Type) throws(LoadError) -> T {
            guard let raw = swiftlaunch_dlsym(handle, name) else { throw .symbolMissing(name) }
            // Sound: `T` is the `@convention(c)` type cuda.h declares for exactly this symbol.
            return unsafeBitCast(raw, to: T.self)
        }
        cuCtxGetDevice = try symbol("cuCtxGetDevice", cuCtxGetDevice_t.self)
        cuPointerGetAttributes = try symbol("cuPointerGetAttributes", cuPointerGetAttributes_t.self)
        cuLaunchKernelEx = try symbol("cuLaunchKernelEx", cuLaunchKernelEx_t.self)
        cuFuncSetAttribute = try symbol("cuFuncSetAttribute", cuFuncSetAttribute_t.self)
        cuGetErrorString = try symbol("cuGetErrorString", cuGetErrorString_t.self)
        cuInit = try symbol("cuInit", cuInit_t.self)
        cuDriverGetVersion = try symbol("cuDriverGetVersion", cuDriverGetVersion_t.self)
        cuDeviceGetCount = try symbol("cuDeviceGetCount", cuDeviceGetCount_t.self)
        cuDeviceGet = try symbol("cuDeviceGet", cuDeviceGet_t.self)
        cuDeviceGetName = try symbol("cuDeviceGetName", cuDeviceGetName_t.self)
        cuDeviceGetAttribute = try symbol("cuDeviceGetAttribute", cuDeviceGetAttribute_t.self)
        cuDeviceTotalMem = try symbol("cuDeviceTotalMem_v2", cuDeviceTotalMem_t.self)
        cuStreamIsCapturing = try symbol("cuStreamIsCapturing", cuStreamIsCapturing_t.self)
    }

    private func check(_ result: CUresult) throws(DriverError) {
        guard result != Int32(CUDA_SUCCESS) else { return }
        var text: UnsafePointer<CChar>?
        _ = cuGetErrorString(result, &text)
        throw DriverError(code: result, message: text.map { String(cString: $0) } ?? "error \(result)")
    }

    public func currentDevice() throws(DriverError) -> Int32? {
        var device: CUdevice = -1
        let result = cuCtxGetDevice(&device)
        if result == Int32(CUDA_ERROR_INVALID_CONTEXT) { return nil }
        try check(result)
        return device
    }

    public func isCapturing(stream: UInt64) throws(DriverError) -> Bool {
        var status: Int32 = 0
        try check(cuStreamIsCapturing(OpaquePointer(bitPattern: UInt(stream)), &status))
        return status != 0
    }

    public func pointerInfo(_ address: UInt64) throws(DriverError) -> PointerInfo? {
        // One driver call for both attributes. Unlike cuPointerGetAttribute it succeeds for
        // addresses the driver does not know and leaves the defaults we set below.
        var devicePointer: UInt64 = 0
        var ordinal: Int32 = -1
        var attributes: (Int32, Int32) = (Int32(CU_POINTER_ATTRIBUTE_DEVICE_POINTER),
                                          Int32(CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL))
        let result = withUnsafeMutablePointer(to: &devicePointer) { pointer in
            withUnsafeMutablePointer(to: &ordinal) { ordinalPointer in
                withUnsafeMutableBytes(of: &attributes) { attributeBytes in
                    var data: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) =
                        (UnsafeMutableRawPointer(pointer), UnsafeMutableRawPointer(ordinalPointer))
                    return withUnsafeMutableBytes(of: &data) { dataBytes in
                        // Sound: both tuples are homogeneous, so their bytes are C arrays of two.
                        cuPointerGetAttributes(
                            2, attributeBytes.baseAddress!.assumingMemoryBound(to: Int32.self),
                            dataBytes.baseAddress!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self),
                            address)
                    }
                }
            }
        }
        if result == Int32(CUDA_ERROR_INVALID_VALUE) { return nil }
        try check(result)
        guard ordinal >= 0 else { return nil }
        return PointerInfo(devicePointer: devicePointer, deviceOrdinal: ordinal)
    }

    public func launch(_ config: LaunchConfig, parameters: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                       count: Int) throws(DriverError) {
        var attributes = (CUlaunchAttribute(), CUlaunchAttribute(), CUlaunchAttribute(), CUlaunchAttribute())
        var numAttributes: UInt32 = 0
        withUnsafeMutableBytes(of: &attributes) { bytes in
            // Sound: a homogeneous tuple of four is laid out as a C array of four.
            let list = bytes.baseAddress!.assumingMemoryBound(to: CUlaunchAttribute.self)
            // Triton 3.8+ puts this one first; kernels that would need a fifth attribute are never cached.
            if config.oversizedSharedMemory {
                list[Int(numAttributes)].id = Int32(CU_LAUNCH_ATTRIBUTE_SHARED_MEMORY_MODE)
                list[Int(numAttributes)].value.sharedMemoryMode = Int32(CU_SHARED_MEMORY_MODE_ALLOW_OVERSIZED_SHARED_MEMORY)
                numAttributes += 1
            }
            if config.pdl {
                list[Int(numAttributes)].id = Int32(CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION)
                list[Int(numAttributes)].value.programmaticStreamSerializationAllowed = 1
                numAttributes += 1
            }
            if config.cooperative {
                list[Int(numAttributes)].id = Int32(CU_LAUNCH_ATTRIBUTE_COOPERATIVE)
                list[Int(numAttributes)].value.cooperative = 1
                numAttributes += 1
            }
            if config.numCTAs != 1 {
                list[Int(numAttributes)].id = Int32(CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION)
                list[Int(numAttributes)].value.clusterDim = CUlaunchClusterDim(x: config.numCTAs, y: 1, z: 1)
                numAttributes += 1
                list[Int(numAttributes)].id = Int32(CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE)
                list[Int(numAttributes)].value.clusterSchedulingPolicyPreference =
                    Int32(CU_CLUSTER_SCHEDULING_POLICY_SPREAD)
                numAttributes += 1
            }
        }
        let function = CUfunction(bitPattern: UInt(config.function))
        if config.numCTAs == 16 {
            try check(cuFuncSetAttribute(function, Int32(CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED), 1))
        }
        let result = withUnsafeMutableBytes(of: &attributes) { bytes -> CUresult in
            var launchConfig = CUlaunchConfig(
                gridDimX: config.gridX &* config.numCTAs, gridDimY: config.gridY, gridDimZ: config.gridZ,
                blockDimX: config.blockX, blockDimY: 1, blockDimZ: 1,
                sharedMemBytes: config.sharedMemory,
                hStream: CUstream(bitPattern: UInt(config.stream)),
                attrs: bytes.baseAddress!.assumingMemoryBound(to: CUlaunchAttribute.self),
                numAttrs: numAttributes)
            return cuLaunchKernelEx(&launchConfig, function, parameters, nil)
        }
        try check(result)
    }

    // MARK: - For `python -m swiftlaunch info`

    public struct DeviceDescription: Sendable {
        public var name: String
        public var computeCapability: (major: Int32, minor: Int32)
        public var totalMemory: Int
    }

    /// Where the library was found, for `info`.
    public var libraryPath: String {
        swiftlaunch_library_path(unsafeBitCast(cuInit, to: UnsafeRawPointer.self)).map { String(cString: $0) }
            ?? "libcuda.so.1"
    }

    public func driverVersion() throws(DriverError) -> Int32 {
        var version: Int32 = 0
        try check(cuDriverGetVersion(&version))
        return version
    }

    public func devices() throws(DriverError) -> [DeviceDescription] {
        try check(cuInit(0))
        var count: Int32 = 0
        try check(cuDeviceGetCount(&count))
        var result: [DeviceDescription] = []
        for ordinal in 0..<count {
            var device: CUdevice = 0
            try check(cuDeviceGet(&device, ordinal))
            var name = [CChar](repeating: 0, count: 256)
            try check(cuDeviceGetName(&name, 255, device))
            var major: Int32 = 0
            var minor: Int32 = 0
            try check(cuDeviceGetAttribute(&major, Int32(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR), device))
            try check(cuDeviceGetAttribute(&minor, Int32(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR), device))
            var bytes = 0
            try check(cuDeviceTotalMem(&bytes, device))
            let nameText = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            result.append(DeviceDescription(name: nameText, computeCapability: (major, minor), totalMemory: bytes))
        }
        return result
    }
}

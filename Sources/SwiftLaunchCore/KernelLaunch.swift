/// What swiftlaunch keeps for one compiled kernel: everything Triton's launcher reads off a
/// `CompiledKernel` and its metadata, in plain values.
public struct CompiledLaunch: Equatable, Sendable {
    public var function: UInt64
    public var numWarps: UInt32
    public var numCTAs: UInt32
    public var sharedMemory: UInt32
    public var cooperative: Bool
    public var pdl: Bool
    public var globalScratchSize: Int
    public var globalScratchAlign: Int
    /// One entry per bound argument, in parameter order.
    public var slots: [ParameterSlot] {
        didSet { parameterCount = Self.parameterCount(slots) }
    }
    /// Kernel parameters: the non-dropped slots plus Triton's two hidden scratch pointers.
    public private(set) var parameterCount: Int
    /// How this Triton release's launcher converts scalars (`TritonRules.conversion`).
    public var conversion: TritonRules.ArgumentConversion
    /// `TritonRules.oversizedSharedMemoryAbove`: the shared-memory size above which the launch asks
    /// for oversized shared memory (nil: this release never does).
    public var oversizedSharedMemoryAbove: UInt32?

    /// Whether the launch carries `CU_LAUNCH_ATTRIBUTE_SHARED_MEMORY_MODE = ALLOW_OVERSIZED`.
    public var oversizedSharedMemory: Bool {
        oversizedSharedMemoryAbove.map { sharedMemory > $0 } ?? false
    }

    /// How many launch attributes Triton's `_launch` sets for this kernel. Above
    /// `TritonRules.maxLaunchAttributes` Triton writes past its array: such kernels are never cached.
    public var launchAttributeCount: Int {
        (oversizedSharedMemory ? 1 : 0) + (pdl ? 1 : 0) + (cooperative ? 1 : 0) + (numCTAs != 1 ? 2 : 0)
    }

    private static func parameterCount(_ slots: [ParameterSlot]) -> Int {
        slots.lazy.filter { $0 != .dropped }.count + 2
    }

    public init(function: UInt64, numWarps: UInt32, numCTAs: UInt32, sharedMemory: UInt32,
                cooperative: Bool, pdl: Bool, globalScratchSize: Int = 0, globalScratchAlign: Int = 1,
                slots: [ParameterSlot], rules: TritonRules = .triton3_6) {
        self.function = function
        self.numWarps = numWarps
        self.numCTAs = numCTAs
        self.sharedMemory = sharedMemory
        self.cooperative = cooperative
        self.pdl = pdl
        self.globalScratchSize = globalScratchSize
        self.globalScratchAlign = globalScratchAlign
        self.slots = slots
        self.parameterCount = Self.parameterCount(slots)
        self.conversion = rules.conversion
        self.oversizedSharedMemoryAbove = rules.oversizedSharedMemoryAbove
    }
}

/// Why a call leaves the fast path for Triton's own. Triton then launches, or raises its own error.
public enum StepAside: Error, Equatable, Sendable {
    case gridNotLaunchable
    case packing(PackingError)
    /// torch keeps the tensor in host memory (a CPU tensor): Triton raises its ValueError.
    case pointerNotDeviceMemory(position: Int)
    /// Memory of another GPU: Triton would launch it anyway; we cannot prove it is safe.
    case pointerOnOtherDevice(position: Int)
    case noCurrentContext
    /// The current context belongs to another device than the one the call was prepared for.
    case contextOnOtherDevice
    case driverQuery(DriverError)

    /// A short, stable label for `swiftlaunch.stats()`.
    public var label: String {
        switch self {
        case .gridNotLaunchable: return "grid value out of range"
        case .packing(.outOfRange): return "argument out of range"
        case .packing(.wrongType): return "argument type not handled"
        case .pointerNotDeviceMemory: return "pointer is not device memory"
        case .pointerOnOtherDevice: return "pointer on another device"
        case .noCurrentContext: return "no current CUDA context"
        case .contextOnOtherDevice: return "context on another device"
        case .driverQuery: return "driver query failed"
        }
    }
}

public enum LaunchError: Error, Equatable, Sendable {
    case stepAside(StepAside)
    /// The launch itself failed; Triton raises `RuntimeError("Triton Error [CUDA]: ...")` then.
    case driver(DriverError)
}

/// A grid as Triton's launcher parses it ("iii": C ints).
public struct Grid: Equatable, Sendable {
    public var x: Int64
    public var y: Int64
    public var z: Int64

    public init(x: Int64, y: Int64 = 1, z: Int64 = 1) {
        self.x = x
        self.y = y
        self.z = z
    }

    /// Triton launches only when `x*y*z > 0`.
    public var isEmpty: Bool { x == 0 || y == 0 || z == 0 }

    /// Non-negative C ints only: anything else goes to Triton, which raises or launches as it does.
    public var isLaunchable: Bool {
        let range: ClosedRange<Int64> = 0...Int64(Int32.max)
        return range.contains(x) && range.contains(y) && range.contains(z)
    }
}

extension CompiledLaunch {
    /// Packs `values` (one per bound argument) and launches, exactly as Triton's `launch` + `_launch`
    /// would. `globalScratch` is the device address of the scratch buffer the caller allocated.
    ///
    /// `deviceIsCurrent`: the caller asked the driver for the current context's device, got `device`,
    /// and ran no code since that could switch contexts; otherwise the driver is asked here.
    public func launch(values: UnsafeBufferPointer<ArgumentValue>, grid: Grid, stream: UInt64,
                       device: Int32, globalScratch: UInt64, driver: some Driver,
                       deviceIsCurrent: Bool = false, repetitions: Int = 1) throws(LaunchError) {
        guard grid.isLaunchable else { throw .stepAside(.gridNotLaunchable) }
        if !deviceIsCurrent {
            let contextDevice: Int32?
            do throws(DriverError) {
                contextDevice = try driver.currentDevice()
            } catch {
                throw .stepAside(.driverQuery(error))
            }
            // Triton would make device 0's primary context current; let it, then take the next call.
            guard let contextDevice else { throw .stepAside(.noCurrentContext) }
            // The kernel and its pointers were checked for `device`; the launch runs on the context's.
            // Python code (a callable grid, the scratch allocator) may have switched devices since.
            guard contextDevice == device else { throw .stepAside(.contextOnOtherDevice) }
        }
        precondition(values.count == slots.count, "one value per bound argument")
        let parameterCount = self.parameterCount
        let result: LaunchError? = withUnsafeTemporaryAllocation(of: UInt64.self, capacity: parameterCount) {
            storage -> LaunchError? in
            withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: parameterCount) {
                pointers -> LaunchError? in
                var next = 0
                for position in 0..<slots.count {
                    let word: UInt64
                    switch slots[position] {
                    case .dropped:
                        continue
                    case .pointer:
                        do throws(StepAside) {
                            word = try devicePointer(values[position], position: position, device: device)
                        } catch { return .stepAside(error) }
                    case let .scalar(type):
                        do throws(PackingError) {
                            word = try ParamPacker.pack(values[position], as: type, position: position,
                                                        conversion: conversion)
                        } catch { return .stepAside(.packing(error)) }
                    }
                    storage[next] = word
                    next &+= 1
                }
                storage[next] = globalScratch
                storage[next &+ 1] = 0  // profile scratch: kernels that need it never reach here
                for index in 0..<parameterCount {
                    // Sound: `storage` outlives the launch call below, and each slot is 8 bytes,
                    // wide enough for every parameter type the kernel reads from it.
                    pointers[index] = UnsafeMutableRawPointer(storage.baseAddress! + index)
                }
                if grid.isEmpty { return nil }
                let config = LaunchConfig(
                    function: function, gridX: UInt32(grid.x), gridY: UInt32(grid.y), gridZ: UInt32(grid.z),
                    blockX: 32 &* numWarps, sharedMemory: sharedMemory, stream: stream,
                    cooperative: cooperative, pdl: pdl, numCTAs: numCTAs,
                    oversizedSharedMemory: oversizedSharedMemory)
                do throws(DriverError) {
                    // `repetitions` > 1 only for the benchmark's floor: one packing, many launches.
                    for _ in 0..<repetitions {
                        try driver.launch(config, parameters: pointers.baseAddress!, count: parameterCount)
                    }
                } catch {
                    return .driver(error)
                }
                return nil
            }
        }
        if let result { throw result }
    }

    /// Triton's `getPointer`: ints pass as they are, `None` is 0, and a non-null tensor address must
    /// be device memory. Triton asks the driver (`cuPointerGetAttribute`) about every such address;
    /// here torch's own record of where the tensor lives answers it: a CUDA tensor's storage is an
    /// allocation on that device, kept alive by the tensor for the whole call, and for device memory
    /// the driver's device pointer is the address itself. The launch device must hold it too, which
    /// is stricter than Triton (it would launch another GPU's memory).
    @inline(__always)
    private func devicePointer(_ value: ArgumentValue, position: Int, device: Int32) throws(StepAside) -> UInt64 {
        let address: UInt64
        do {
            address = try ParamPacker.pointer(value, position)
        } catch {
            throw .packing(error)
        }
        guard case let .tensor(_, _, tensorDevice) = value, address != 0, tensorDevice != device else { return address }
        throw tensorDevice < 0 ? .pointerNotDeviceMemory(position: position) : .pointerOnOtherDevice(position: position)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SwiftLaunchCore
import Testing

extension CompiledLaunch {
    /// `launch` with the values in an array.
    func launch(_ values: [ArgumentValue], grid: Grid = Grid(x: 1), stream: UInt64 = 0x5757,
                device: Int32 = 0, globalScratch: UInt64 = 0, driver: RecordingDriver,
                repetitions: Int = 1) throws(LaunchError) {
        var failure: LaunchError?
        values.withUnsafeBufferPointer { buffer in
            do throws(LaunchError) {
                try launch(values: buffer, grid: grid, stream: stream, device: device,
                           globalScratch: globalScratch, driver: driver, repetitions: repetitions)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
    }
}

@Suite struct KernelLaunchTests {
    static let tensorA: UInt64 = 0x7F00_0000_1000
    static let tensorB: UInt64 = 0x7F00_0002_0040

    /// `(a_ptr, BLOCK: constexpr, n: i32, one (specialized to 1), x: fp32, out_ptr)`.
    static func kernel(numWarps: UInt32 = 4, numCTAs: UInt32 = 1, shared: UInt32 = 1024,
                       cooperative: Bool = false, pdl: Bool = false) -> CompiledLaunch {
        CompiledLaunch(function: 0xF00D, numWarps: numWarps, numCTAs: numCTAs, sharedMemory: shared,
                       cooperative: cooperative, pdl: pdl,
                       slots: [.pointer, .dropped, .scalar(.i32), .dropped, .scalar(.fp32), .pointer])
    }

    static let values: [ArgumentValue] = [
        .tensor(dtype: 0, address: tensorA), .integer(128), .integer(1000), .integer(1), .float(0.5),
        .tensor(dtype: 0, address: tensorB),
    ]

    static func driver() -> RecordingDriver { RecordingDriver() }

    // MARK: - Parameters

    @Test func parameterCountSkipsDroppedSlotsAndAddsTwoScratchSlots() {
        #expect(Self.kernel().parameterCount == 6)
        let onlyConstexprs = CompiledLaunch(function: 1, numWarps: 1, numCTAs: 1, sharedMemory: 0,
                                            cooperative: false, pdl: false, slots: [.dropped, .dropped])
        #expect(onlyConstexprs.parameterCount == 2)
    }

    @Test func droppedSlotsAreSkippedAndScratchSlotsAppended() throws {
        let driver = Self.driver()
        try Self.kernel().launch(Self.values, globalScratch: 0xCAFE_0000, driver: driver)
        #expect(driver.launches.count == 1)
        #expect(driver.launches.first?.parameters == [
            Self.tensorA, 1000, UInt64(Float(0.5).bitPattern), Self.tensorB, 0xCAFE_0000, 0,
        ])
    }

    @Test func withoutScratchBothHiddenSlotsAreZero() throws {
        let driver = Self.driver()
        let kernel = CompiledLaunch(function: 1, numWarps: 1, numCTAs: 1, sharedMemory: 0, cooperative: false,
                                    pdl: false, slots: [.dropped, .scalar(.i64)])
        try kernel.launch([.integer(5), .integer(-2)], driver: driver)
        #expect(driver.launches.map(\.parameters) == [[UInt64(bitPattern: -2), 0, 0]])
    }

    @Test func scalarsArePackedPerSlotType() throws {
        let driver = RecordingDriver()
        let kernel = CompiledLaunch(
            function: 1, numWarps: 1, numCTAs: 1, sharedMemory: 0, cooperative: false, pdl: false,
            slots: [.scalar(.u8), .scalar(.fp16), .scalar(.bf16), .scalar(.fp64), .scalar(.u64), .scalar(.u1)])
        try kernel.launch([.integer(-1), .float(1.0), .float(1.0), .float(0.1), .integer(-1), .bool(true)],
                          globalScratch: 0x40, driver: driver)
        let p = try #require(driver.launches.first?.parameters)
        #expect(p.count == 8)
        #expect(UInt8(truncatingIfNeeded: p[0]) == 0xFF)
        #expect(UInt16(truncatingIfNeeded: p[1]) == 0x3C00)
        #expect(UInt16(truncatingIfNeeded: p[2]) == 0x3F80)
        #expect(p[3] == Double(0.1).bitPattern)
        #expect(p[4] == UInt64.max)
        #expect(UInt8(truncatingIfNeeded: p[5]) == 1)
        #expect(p[6] == 0x40)
        #expect(p[7] == 0)
    }

    @Test func packingErrorStepsAsideWithoutLaunching() {
        let driver = Self.driver()
        var values = Self.values
        values[2] = .integer(Int128(Int32.max) + 1)  // the i32 slot
        #expect(throws: LaunchError.stepAside(.packing(.outOfRange(position: 2)))) {
            try Self.kernel().launch(values, driver: driver)
        }
        values[2] = .float(3.0)
        #expect(throws: LaunchError.stepAside(.packing(.wrongType(position: 2)))) {
            try Self.kernel().launch(values, driver: driver)
        }
        values[2] = .integer(3)
        values[4] = .float(70000)  // fp32: fine
        #expect(throws: Never.self) { try Self.kernel().launch(values, driver: driver) }
        #expect(driver.launches.count == 1)
    }

    @Test func fp16OverflowStepsAside() {
        let driver = RecordingDriver()
        let kernel = CompiledLaunch(function: 1, numWarps: 1, numCTAs: 1, sharedMemory: 0, cooperative: false,
                                    pdl: false, slots: [.scalar(.fp16)])
        #expect(throws: LaunchError.stepAside(.packing(.outOfRange(position: 0)))) {
            try kernel.launch([.float(65520)], driver: driver)
        }
        #expect(driver.launches.isEmpty)
    }

    // MARK: - Launch configuration

    @Test func configMatchesTritonsLaunch() throws {
        let driver = Self.driver()
        try Self.kernel(numWarps: 4, shared: 2048).launch(Self.values, grid: Grid(x: 3, y: 2, z: 5), stream: 0xABC,
                                                          driver: driver)
        #expect(driver.launches.map(\.config) == [
            LaunchConfig(function: 0xF00D, gridX: 3, gridY: 2, gridZ: 5, blockX: 128, sharedMemory: 2048,
                         stream: 0xABC, cooperative: false, pdl: false, numCTAs: 1),
        ])
    }

    @Test(arguments: [(UInt32(1), UInt32(32)), (2, 64), (8, 256), (32, 1024)])
    func blockIs32TimesNumWarps(numWarps: UInt32, block: UInt32) throws {
        let driver = Self.driver()
        try Self.kernel(numWarps: numWarps).launch(Self.values, driver: driver)
        #expect(driver.launches.first?.config.blockX == block)
    }

    @Test func numCTAsCooperativeAndPDLReachTheConfig() throws {
        let driver = Self.driver()
        try Self.kernel(numCTAs: 2, cooperative: true, pdl: true)
            .launch(Self.values, grid: Grid(x: 7, y: 1, z: 3), driver: driver)
        let config = try #require(driver.launches.first?.config)
        #expect(config.numCTAs == 2)
        #expect(config.cooperative)
        #expect(config.pdl)
        // The grid is passed as given; the driver multiplies x by numCTAs.
        #expect(config.gridX == 7)
        #expect(config.gridY == 1)
        #expect(config.gridZ == 3)

        let other = Self.driver()
        try Self.kernel(numCTAs: 16, cooperative: false, pdl: true).launch(Self.values, driver: other)
        let second = try #require(other.launches.first?.config)
        #expect(second.numCTAs == 16)
        #expect(!second.cooperative)
        #expect(second.pdl)
    }

    @Test func largestGridPasses() throws {
        let driver = Self.driver()
        let max = Int64(Int32.max)
        try Self.kernel().launch(Self.values, grid: Grid(x: max, y: max, z: max), driver: driver)
        let config = try #require(driver.launches.first?.config)
        #expect(config.gridX == UInt32(Int32.max))
        #expect(config.gridY == UInt32(Int32.max))
        #expect(config.gridZ == UInt32(Int32.max))
    }

    @Test(arguments: [Grid(x: 0), Grid(x: 4, y: 0), Grid(x: 4, y: 2, z: 0), Grid(x: 0, y: 0, z: 0)])
    func emptyGridLaunchesNothing(grid: Grid) throws {
        let driver = Self.driver()
        try Self.kernel().launch(Self.values, grid: grid, driver: driver)
        #expect(driver.launches.isEmpty)
    }

    @Test func emptyGridStillRejectsBadArguments() {
        // Triton parses arguments before `_launch` checks the grid, so it raises here too.
        let driver = RecordingDriver()
        var values = Self.values
        values[0] = .tensor(dtype: 0, address: Self.tensorA, device: -1)
        #expect(throws: LaunchError.stepAside(.pointerNotDeviceMemory(position: 0))) {
            try Self.kernel().launch(values, grid: Grid(x: 0), driver: driver)
        }
        #expect(driver.launches.isEmpty)
    }

    @Test(arguments: [Grid(x: -1), Grid(x: 1, y: -1), Grid(x: 1, y: 1, z: -1), Grid(x: -2, y: -2),
                      Grid(x: Int64(Int32.max) + 1), Grid(x: 1, y: Int64(Int32.max) + 1),
                      Grid(x: 1, z: Int64(UInt32.max) + 1), Grid(x: Int64.min)])
    func unlaunchableGridStepsAside(grid: Grid) {
        let driver = Self.driver()
        #expect(throws: LaunchError.stepAside(.gridNotLaunchable)) {
            try Self.kernel().launch(Self.values, grid: grid, driver: driver)
        }
        #expect(driver.launches.isEmpty)
    }

    @Test func gridPredicates() {
        #expect(Grid(x: 0).isEmpty)
        #expect(!Grid(x: 1).isEmpty)
        #expect(Grid(x: 1).y == 1 && Grid(x: 1).z == 1)
        #expect(Grid(x: 0).isLaunchable)
        #expect(!Grid(x: -1).isLaunchable)
        #expect(!Grid(x: Int64(Int32.max) + 1).isLaunchable)
    }

    // MARK: - Context

    @Test func noCurrentContextStepsAside() {
        let driver = Self.driver()
        driver.contextDevice = nil
        #expect(throws: LaunchError.stepAside(.noCurrentContext)) {
            try Self.kernel().launch(Self.values, driver: driver)
        }
        #expect(driver.contextQueries == 1)
        #expect(driver.launches.isEmpty)
    }

    @Test func contextOfAnotherDeviceStepsAside() {
        // The call was keyed and its pointers checked for device 0; the thread's context is device 1's.
        let driver = Self.driver()
        driver.contextDevice = 1
        #expect(throws: LaunchError.stepAside(.contextOnOtherDevice)) {
            try Self.kernel().launch(Self.values, device: 0, driver: driver)
        }
        #expect(driver.launches.isEmpty)
    }

    @Test func contextQueryErrorStepsAside() {
        let driver = Self.driver()
        let error = DriverError(code: 3, message: "initialization error")
        driver.contextError = error
        #expect(throws: LaunchError.stepAside(.driverQuery(error))) {
            try Self.kernel().launch(Self.values, driver: driver)
        }
        #expect(driver.launches.isEmpty)
    }

    // MARK: - Pointers

    /// `(n: i32, a_ptr, b_ptr)`: no dropped slot before the pointers.
    static let pointerKernel = CompiledLaunch(function: 2, numWarps: 1, numCTAs: 1, sharedMemory: 0,
                                              cooperative: false, pdl: false,
                                              slots: [.scalar(.i32), .pointer, .pointer])

    @Test func hostMemoryTensorStepsAside() {
        // torch says the tensor lives in host memory (device -1): Triton raises its ValueError.
        let driver = RecordingDriver()
        #expect(throws: LaunchError.stepAside(.pointerNotDeviceMemory(position: 2))) {
            try Self.pointerKernel.launch([.integer(4), .tensor(dtype: 0, address: Self.tensorA, device: 0),
                                           .tensor(dtype: 0, address: Self.tensorB, device: -1)], driver: driver)
        }
        #expect(driver.launches.isEmpty)
    }

    @Test func otherDevicesMemoryStepsAside() {
        let driver = RecordingDriver()
        #expect(throws: LaunchError.stepAside(.pointerOnOtherDevice(position: 1))) {
            try Self.pointerKernel.launch([.integer(4), .tensor(dtype: 0, address: Self.tensorA, device: 1),
                                           .tensor(dtype: 0, address: Self.tensorB, device: 0)],
                                          device: 0, driver: driver)
        }
        #expect(driver.launches.isEmpty)
    }

    @Test func memoryOfTheLaunchDeviceLaunchesWithoutDriverQueries() throws {
        let driver = RecordingDriver()  // knows no memory: tensors are vouched for by torch
        driver.contextDevice = 1
        try Self.pointerKernel.launch([.integer(4), .tensor(dtype: 0, address: Self.tensorA, device: 1),
                                       .tensor(dtype: 0, address: Self.tensorB, device: 1)], device: 1, driver: driver)
        #expect(driver.pointerQueries.isEmpty)
        #expect(driver.launches.map(\.parameters) == [[4, Self.tensorA, Self.tensorB, 0, 0]])
    }

    @Test func intsNoneAndNullTensorsInPointerSlotsAreNotChecked() throws {
        let driver = RecordingDriver()
        try Self.pointerKernel.launch([.integer(4), .integer(0x1234_5000), .null], driver: driver)
        // Triton checks only non-null addresses: an empty tensor's null pointer passes from any device.
        try Self.pointerKernel.launch([.integer(4), .tensor(dtype: 0, address: 0, device: -1), .integer(0)],
                                      driver: driver)
        #expect(driver.launches.map(\.parameters) == [[4, 0x1234_5000, 0, 0, 0], [4, 0, 0, 0, 0]])
    }

    @Test func badPointerValuesStepAside() {
        let driver = RecordingDriver()
        #expect(throws: LaunchError.stepAside(.packing(.outOfRange(position: 1)))) {
            try Self.pointerKernel.launch([.integer(4), .integer(-8), .null], driver: driver)
        }
        #expect(throws: LaunchError.stepAside(.packing(.wrongType(position: 2)))) {
            try Self.pointerKernel.launch([.integer(4), .null, .float(1.0)], driver: driver)
        }
        #expect(driver.launches.isEmpty)
    }

    // MARK: - Driver errors and repetitions

    @Test func launchErrorSurfacesAsDriverError() {
        let driver = Self.driver()
        let error = DriverError(code: 700, message: "an illegal memory access was encountered")
        driver.launchError = error
        #expect(throws: LaunchError.driver(error)) {
            try Self.kernel().launch(Self.values, driver: driver)
        }
        #expect(driver.launches.count == 1)  // the attempt reached the driver
    }

    @Test func repetitionsLaunchThatManyTimes() throws {
        let driver = Self.driver()
        try Self.kernel().launch(Self.values, grid: Grid(x: 2), globalScratch: 0x80, driver: driver, repetitions: 3)
        #expect(driver.launches.count == 3)
        #expect(Set(driver.launches.map(\.parameters)).count == 1)
        #expect(driver.launches.first?.parameters.count == 6)
        #expect(driver.launches.allSatisfy { $0.config.gridX == 2 })
        // One packing and one context check, not one per repetition.
        #expect(driver.contextQueries == 1)
    }

    @Test func eachCallLaunchesOnceByDefault() throws {
        let driver = Self.driver()
        try Self.kernel().launch(Self.values, driver: driver)
        try Self.kernel().launch(Self.values, driver: driver)
        #expect(driver.launches.count == 2)
        // The context is checked on every launch, as Triton does.
        #expect(driver.contextQueries == 2)
    }

    @Test func streamReachesTheConfig() throws {
        let driver = Self.driver()
        try Self.kernel().launch(Self.values, stream: 0, driver: driver)
        try Self.kernel().launch(Self.values, stream: 0xDEAD_BEEF, driver: driver)
        #expect(driver.launches.map(\.config.stream) == [0, 0xDEAD_BEEF])
    }

    // MARK: - Invariants

    @Test func parameterCountFollowsSlotsAfterMutation() throws {
        // `slots` is public and mutable; `parameterCount` (the size of the buffers `launch` fills) must
        // follow it, or `launch` writes past its stack buffers.
        var kernel = CompiledLaunch(function: 1, numWarps: 1, numCTAs: 1, sharedMemory: 0, cooperative: false,
                                    pdl: false, slots: [.dropped])
        kernel.slots = [.scalar(.i32), .scalar(.i32), .pointer]
        #expect(kernel.parameterCount == 5)
    }

    @Test func launchAfterSlotsMutationPacksTheNewSlots() async {
        // Run in a child process: with a stale `parameterCount` the launch writes past its stack
        // buffer (a bounds trap in debug builds), which would otherwise take the whole run down.
        await #expect(processExitsWith: .success) {
            var kernel = CompiledLaunch(function: 1, numWarps: 1, numCTAs: 1, sharedMemory: 0,
                                        cooperative: false, pdl: false, slots: [.dropped])
            kernel.slots = [.scalar(.i64), .scalar(.i64), .pointer]
            let driver = RecordingDriver()
            do {
                try kernel.launch([.integer(7), .integer(8), .integer(0x900)], globalScratch: 0x40, driver: driver)
            } catch {
                exit(1)
            }
            exit(driver.launches.map(\.parameters) == [[7, 8, 0x900, 0x40, 0]] ? 0 : 2)
        }
    }

    @Test func stepAsideLabels() {
        #expect(StepAside.gridNotLaunchable.label == "grid value out of range")
        #expect(StepAside.packing(.outOfRange(position: 0)).label == "argument out of range")
        #expect(StepAside.packing(.wrongType(position: 0)).label == "argument type not handled")
        #expect(StepAside.noCurrentContext.label == "no current CUDA context")
        #expect(StepAside.pointerNotDeviceMemory(position: 0).label != StepAside.pointerOnOtherDevice(position: 0).label)
    }

    @Test func driverErrorDescriptionMatchesTriton() {
        #expect(DriverError(code: 1, message: "invalid argument").description == "Triton Error [CUDA]: invalid argument")
    }
}

import SwiftLaunchCore
import Testing

/// A fake `Driver` that records every call. Each launch copies the kernel's parameter slots out of
/// the `parameters` array (8 bytes read at each pointer), so tests see exactly what the kernel gets.
final class RecordingDriver: Driver {
    struct Launch: Equatable {
        var config: LaunchConfig
        var parameters: [UInt64]
    }

    /// What `currentDevice` answers (nil: no current context).
    var contextDevice: Int32? = 0
    /// When set, `currentDevice` throws it.
    var contextError: DriverError?
    /// What `pointerInfo` answers, by address; addresses not in the table are unknown (nil).
    var pointerInfos: [UInt64: PointerInfo] = [:]
    /// When set, `pointerInfo` throws it.
    var pointerError: DriverError?
    /// When set, `launch` records the attempt and then throws it.
    var launchError: DriverError?

    private(set) var contextQueries = 0
    private(set) var pointerQueries: [UInt64] = []
    private(set) var launches: [Launch] = []

    init() {}

    /// Registers `address` as memory of `device`, seen by kernels at `devicePointer` (default: itself).
    func addMemory(_ address: UInt64, device: Int32, devicePointer: UInt64? = nil) {
        pointerInfos[address] = PointerInfo(devicePointer: devicePointer ?? address, deviceOrdinal: device)
    }

    func currentDevice() throws(DriverError) -> Int32? {
        contextQueries += 1
        if let contextError { throw contextError }
        return contextDevice
    }

    /// The core's launch path never asks; nothing captures here.
    func isCapturing(stream: UInt64) throws(DriverError) -> Bool { false }

    func pointerInfo(_ address: UInt64) throws(DriverError) -> PointerInfo? {
        pointerQueries.append(address)
        if let pointerError { throw pointerError }
        return pointerInfos[address]
    }

    func launch(_ config: LaunchConfig, parameters: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                count: Int) throws(DriverError) {
        var values: [UInt64] = []
        values.reserveCapacity(count)
        for index in 0..<count {
            guard let slot = parameters[index] else {
                // A null parameter pointer would crash a real launch.
                Issue.record("parameter pointer \(index) of \(count) is null")
                values.append(0xDEAD_DEAD_DEAD_DEAD)
                continue
            }
            values.append(slot.loadUnaligned(as: UInt64.self))
        }
        launches.append(Launch(config: config, parameters: values))
        if let launchError { throw launchError }
    }
}

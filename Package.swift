// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "swiftlaunch",
    products: [
        // The Python extension module; the build hook renames it `_native.abi3.so`.
        .library(name: "SwiftLaunchNative", type: .dynamic, targets: ["SwiftLaunchNative"]),
    ],
    targets: [
        .target(name: "CPython", path: "Sources/CPython"),
        .target(name: "CUDADriver", path: "Sources/CUDADriver"),
        // Cross-module optimization lets the extension specialize the core's generics (the launch
        // cache, the driver protocol) instead of calling them through metadata at run time.
        .target(name: "SwiftLaunchCore", dependencies: ["CUDADriver"],
                swiftSettings: [.unsafeFlags(["-cross-module-optimization"])]),
        .target(
            name: "SwiftLaunchNative",
            dependencies: ["CPython", "SwiftLaunchCore"],
            // Every entry point runs with the GIL held, so no two accesses to the module's globals
            // can overlap: the dynamic exclusivity checks on them (one per access) only cost time.
            swiftSettings: [.unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"])]
        ),
        .testTarget(name: "SwiftLaunchCoreTests", dependencies: ["SwiftLaunchCore"]),
    ]
)

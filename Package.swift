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
        .target(name: "SwiftLaunchCore", dependencies: ["CUDADriver"]),
        .target(
            name: "SwiftLaunchNative",
            dependencies: ["CPython", "SwiftLaunchCore"]
        ),
        .testTarget(name: "SwiftLaunchCoreTests", dependencies: ["SwiftLaunchCore"]),
    ]
)

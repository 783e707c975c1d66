// swift-tools-version:5.9
// spikeloc: Swift kernels behind a C ABI (Sources/CSpikeLoc/include/spikeloc.h).
//
// The kernels need AVX2/FMA code generation to vectorise their SIMD loops; the target CPU is
// taken from SPIKELOC_TARGET_CPU (default "haswell"; "native" or "x86-64" also work).
import PackageDescription

#if os(Linux) || os(macOS)
import Foundation
let targetCPU = ProcessInfo.processInfo.environment["SPIKELOC_TARGET_CPU"] ?? "haswell"
#else
let targetCPU = "haswell"
#endif

#if arch(x86_64)
let cpuFlags = ["-target-cpu", targetCPU]
#else
let cpuFlags: [String] = []
#endif

let package = Package(
    name: "spikeloc",
    products: [
        .library(name: "SpikeLocKernels", type: .dynamic, targets: ["SpikeLocKernels"]),
    ],
    targets: [
        .target(name: "CSpikeLoc", path: "Sources/CSpikeLoc"),
        .target(
            name: "SpikeLocKernels",
            dependencies: ["CSpikeLoc"],
            path: "Sources/SpikeLocKernels",
            swiftSettings: [
                .unsafeFlags(["-Ounchecked", "-wmo"] + cpuFlags, .when(configuration: .release)),
                .unsafeFlags(cpuFlags, .when(configuration: .debug)),
            ]
        ),
        .testTarget(
            name: "SpikeLocKernelsTests",
            dependencies: ["SpikeLocKernels", "CSpikeLoc"],
            path: "Tests/SpikeLocKernelsTests",
            exclude: ["Fixtures"]
        ),
    ]
)

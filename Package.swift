// swift-tools-version:5.9
// spikeloc: Swift kernels behind a C ABI (Sources/CSpikeLoc/include/spikeloc.h).
//
// The target CPU of the kernels is taken from SPIKELOC_TARGET_CPU (default "haswell": AVX2 and
// FMA, for `swift build` and `swift test`). setup.py builds one library per CPU variant
// (python/spikeloc/_kernels.py: x86-64, haswell, skylake-avx512), each in its own scratch folder,
// setting this variable and the variant's compilation condition (-D SPIKELOC_...).
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

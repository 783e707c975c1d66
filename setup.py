"""Build of spikeloc: the Swift kernels (SwiftPM), one library per CPU variant, and the thin
CPython extension.

`pip install .` (or `python setup.py build_ext --inplace` for development) runs, for each
variant of spikeloc._kernels.VARIANTS (baseline, avx2, avx512 on x86-64),

    SPIKELOC_TARGET_CPU=<target> swift build -c release --product SpikeLocKernels \
        -Xswiftc -static-stdlib [-Xswiftc -D<condition>] \
        -Xlinker --version-script=tools/kernels.map --scratch-path .build-kernels/<variant>

and copies each library next to the extension as libSpikeLocKernels.<variant>.so; then it
compiles python/spikeloc/_native.c against Sources/CSpikeLoc/include, without linking any
kernels library: spikeloc._kernels loads the variant the CPU runs before the extension is
imported (its docstring says why). Each variant has its own scratch folder under the source
tree, so a later build (the wheel, another Python version) reuses it and takes seconds.
The extension uses CPython's limited API of 3.10 (Py_LIMITED_API), so the one file it builds,
_native.abi3.so, serves every CPython >= 3.10, and wheels are tagged cp310-abi3.
The Swift runtime is linked statically into each library, so the installed package needs no
Swift toolchain at run time.

Environment:
  SWIFT                path of the swift executable (default: `swift` on PATH, then
                       /opt/swift/usr/bin/swift)
  SPIKELOC_VARIANTS    the variants to build, comma-separated (default: all); fewer build
                       faster during development, and the package loads the best of them
  SPIKELOC_SWIFT_FLAGS extra arguments for `swift build` (split on whitespace)
"""
import glob
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
LIB_NAME = "SpikeLocKernels"
LIB_FILE = {"darwin": "libSpikeLocKernels.dylib"}.get(sys.platform, "libSpikeLocKernels.so")
EXPORTS = os.path.join(ROOT, "tools", "kernels.map")  # exports only the spk_* symbols


def load_kernels_module():
    """spikeloc._kernels (standard library only), read from the source tree: the variants."""
    path = os.path.join(ROOT, "python", "spikeloc", "_kernels.py")
    spec = importlib.util.spec_from_file_location("spikeloc_build_kernels", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


KERNELS = load_kernels_module()


def selected_variants():
    """The variants named by SPIKELOC_VARIANTS (default: all), in the order of VARIANTS."""
    known = {v.name: v for v in KERNELS.VARIANTS}
    requested = os.environ.get("SPIKELOC_VARIANTS", "").replace(",", " ").split()
    unknown = sorted(set(requested) - set(known))
    if unknown:
        sys.exit(f"spikeloc: SPIKELOC_VARIANTS names unknown variants {', '.join(unknown)}; "
                 f"the variants are {', '.join(known)}")
    return [v for v in KERNELS.VARIANTS if not requested or v.name in requested]


def find_swift():
    swift = os.environ.get("SWIFT") or shutil.which("swift")
    if not swift and os.path.exists("/opt/swift/usr/bin/swift"):
        swift = "/opt/swift/usr/bin/swift"
    if not swift:
        sys.exit(
            "spikeloc: the Swift toolchain is needed to build the kernels; put `swift` on "
            "PATH or set SWIFT=/path/to/swift"
        )
    return swift


class SwiftBuildExt(build_ext):
    """build_ext that first builds the Swift kernels, one shared library per variant."""

    def swift_build(self, variant):
        swift = find_swift()
        scratch = os.path.join(ROOT, ".build-kernels", variant.name)
        env = dict(os.environ)
        env.pop("SPIKELOC_TARGET_CPU", None)
        if variant.target_cpu:
            env["SPIKELOC_TARGET_CPU"] = variant.target_cpu  # read by Package.swift
        common = ["-c", "release", "--package-path", ROOT, "--scratch-path", scratch]
        cmd = [swift, "build", *common, "--product", LIB_NAME, "-Xswiftc", "-static-stdlib"]
        if variant.condition:
            cmd += ["-Xswiftc", f"-D{variant.condition}"]
        if sys.platform == "darwin":
            cmd += ["-Xlinker", "-exported_symbol", "-Xlinker", "_spk_*"]
        else:
            cmd += ["-Xlinker", f"--version-script={EXPORTS}"]
        cmd += shlex.split(os.environ.get("SPIKELOC_SWIFT_FLAGS", ""))
        print(f"spikeloc: [{variant.name}] SPIKELOC_TARGET_CPU={variant.target_cpu or ''} "
              + " ".join(shlex.quote(c) for c in cmd), flush=True)
        subprocess.check_call(cmd, cwd=ROOT, env=env)
        bin_path = subprocess.check_output(
            [swift, "build", *common, "--show-bin-path"], cwd=ROOT, text=True, env=env,
        ).strip().splitlines()[-1]
        lib = os.path.join(bin_path, LIB_FILE)
        if not os.path.exists(lib):
            sys.exit(f"spikeloc: swift build did not produce {lib}")
        return lib

    def run(self):
        self._swift_libs = {v.name: self.swift_build(v) for v in selected_variants()}
        super().run()
        if self.inplace:
            # setuptools builds in build/lib and copies the extension into the source tree;
            # the kernels libraries go there too.
            build_py = self.get_finalized_command("build_py")
            package_dir = os.path.abspath(build_py.get_package_dir("spikeloc"))
            self._install_libs(package_dir)
            self._remove_stale_extensions(package_dir)

    def build_extension(self, ext):
        super().build_extension(ext)
        # The kernels libraries go next to the extension (spikeloc._kernels looks there).
        dest_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        self._install_libs(dest_dir)
        self._remove_stale_extensions(dest_dir)

    def _remove_stale_extensions(self, dest_dir):
        # The extension is _native.abi3.so (limited API); one built earlier for a single
        # interpreter (_native.cpython-3XX-*.so) would be imported before it.
        for stale in glob.glob(os.path.join(dest_dir, "_native.cpython-*")):
            os.remove(stale)
            print(f"spikeloc: removed the stale extension {stale}", flush=True)

    def _install_libs(self, dest_dir):
        os.makedirs(dest_dir, exist_ok=True)
        # Libraries of variants not built now (or of the single-library layout before the
        # variants) would be stale: spikeloc._kernels would load them.
        built = {KERNELS.library_name(name) for name in self._swift_libs}
        for old in glob.glob(os.path.join(dest_dir, "libSpikeLocKernels*")):
            if os.path.basename(old) not in built:
                os.remove(old)
                print(f"spikeloc: removed the stale library {old}", flush=True)
        for name, lib in self._swift_libs.items():
            dest = os.path.join(dest_dir, KERNELS.library_name(name))
            if os.path.exists(dest):
                os.remove(dest)  # never write through a file a running process has mapped
            shutil.copy2(lib, dest)
            print(f"spikeloc: copied the {name} kernels to {dest}", flush=True)


LIMITED_PYTHON = (3, 10)  # the oldest CPython the package supports: its limited API
LIMITED_API = "0x%02X%02X0000" % LIMITED_PYTHON

setup(
    ext_modules=[
        Extension(
            "spikeloc._native",
            sources=["python/spikeloc/_native.c"],
            include_dirs=["Sources/CSpikeLoc/include"],
            define_macros=[("Py_LIMITED_API", LIMITED_API)],
            py_limited_api=True,
            extra_compile_args=["-O2", "-Wall"],
            depends=["Sources/CSpikeLoc/include/spikeloc.h"],
        )
    ],
    cmdclass={"build_ext": SwiftBuildExt},
    # the wheel's tag says what the extension is: one file for every CPython >= 3.10
    options={"bdist_wheel": {"py_limited_api": "cp%d%d" % LIMITED_PYTHON}},
)

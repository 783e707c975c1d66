"""Build of spikeloc: the Swift kernels (SwiftPM) and the thin CPython extension.

`pip install .` (or `python setup.py build_ext --inplace` for development) runs

    swift build -c release --product SpikeLocKernels -Xswiftc -static-stdlib \
        --scratch-path <build_temp>/swift

then compiles python/spikeloc/_native.c against Sources/CSpikeLoc/include, links it with
-lSpikeLocKernels and rpath $ORIGIN, and copies libSpikeLocKernels.so next to the extension.
The extension uses CPython's limited API of 3.10 (Py_LIMITED_API), so the one file it builds,
_native.abi3.so, serves every CPython >= 3.10.
The Swift runtime is linked statically into the library, so the installed package needs no
Swift toolchain at run time.

Environment:
  SWIFT                path of the swift executable (default: `swift` on PATH, then
                       /opt/swift/usr/bin/swift)
  SPIKELOC_TARGET_CPU  target CPU of the kernels (read by Package.swift; default haswell)
  SPIKELOC_SWIFT_FLAGS extra arguments for `swift build` (split on whitespace)
"""
import glob
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
    """build_ext that first builds the Swift kernels as a shared library."""

    def swift_build(self):
        swift = find_swift()
        scratch = os.path.abspath(os.path.join(self.build_temp, "swift"))
        cmd = [
            swift, "build",
            "-c", "release",
            "--package-path", ROOT,
            "--scratch-path", scratch,
            "--product", LIB_NAME,
            "-Xswiftc", "-static-stdlib",
        ]
        cmd += shlex.split(os.environ.get("SPIKELOC_SWIFT_FLAGS", ""))
        print("spikeloc: " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        subprocess.check_call(cmd, cwd=ROOT)
        bin_path = subprocess.check_output(
            [swift, "build", "-c", "release", "--package-path", ROOT,
             "--scratch-path", scratch, "--show-bin-path"],
            cwd=ROOT, text=True,
        ).strip().splitlines()[-1]
        lib = os.path.join(bin_path, LIB_FILE)
        if not os.path.exists(lib):
            sys.exit(f"spikeloc: swift build did not produce {lib}")
        return bin_path, lib

    def run(self):
        bin_path, lib = self.swift_build()
        for ext in self.extensions:
            ext.library_dirs.append(bin_path)
        self._swift_lib = lib
        super().run()
        if self.inplace:
            # setuptools builds in build/lib and copies the extension into the source tree;
            # the kernels library goes there too.
            build_py = self.get_finalized_command("build_py")
            package_dir = os.path.abspath(build_py.get_package_dir("spikeloc"))
            self._copy_lib(package_dir)
            self._remove_stale_extensions(package_dir)

    def build_extension(self, ext):
        super().build_extension(ext)
        # The kernels library goes next to the extension, found there via rpath $ORIGIN.
        dest_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        self._copy_lib(dest_dir)
        self._remove_stale_extensions(dest_dir)

    def _remove_stale_extensions(self, dest_dir):
        # The extension is _native.abi3.so (limited API); one built earlier for a single
        # interpreter (_native.cpython-3XX-*.so) would be imported before it.
        for stale in glob.glob(os.path.join(dest_dir, "_native.cpython-*")):
            os.remove(stale)
            print(f"spikeloc: removed the stale extension {stale}", flush=True)

    def _copy_lib(self, dest_dir):
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, LIB_FILE)
        if os.path.exists(dest):
            os.remove(dest)  # never write through a file a running process has mapped
        shutil.copy2(self._swift_lib, dest)
        print(f"spikeloc: copied {LIB_FILE} to {dest_dir}", flush=True)


rpath = "@loader_path" if sys.platform == "darwin" else "$ORIGIN"
LIMITED_API = "0x030A0000"  # CPython 3.10, the oldest version the package supports

setup(
    ext_modules=[
        Extension(
            "spikeloc._native",
            sources=["python/spikeloc/_native.c"],
            include_dirs=["Sources/CSpikeLoc/include"],
            libraries=[LIB_NAME],
            define_macros=[("Py_LIMITED_API", LIMITED_API)],
            py_limited_api=True,
            extra_compile_args=["-O2", "-Wall"],
            extra_link_args=[f"-Wl,-rpath,{rpath}"],
            depends=["Sources/CSpikeLoc/include/spikeloc.h"],
        )
    ],
    cmdclass={"build_ext": SwiftBuildExt},
)

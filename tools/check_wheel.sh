#!/usr/bin/env bash
# Installs a spikeloc wheel into a fresh virtual environment, with no Swift toolchain on PATH
# and away from the source tree, and runs a smoke check there: the package imports from the
# environment, every kernel variant this CPU runs loads, and a tutorial network is generated,
# trained for two epochs, evaluated, saved and loaded; then the command line's --help and its
# list of presets (package data).
#
#   tools/check_wheel.sh dist/spikeloc-*.whl [PYTHON]      # PYTHON: default python3
#
# Used by python/tests/test_wheel.py; run it with other interpreters by hand, e.g.
# tools/check_wheel.sh dist/spikeloc-*.whl /root/.pyenv/versions/3.10.13/bin/python
set -euo pipefail
wheel=$(realpath "$1")
python=${2:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"  # nothing of the source tree is importable from here
# PATH without any directory holding a swift executable
path=
while read -r dir; do
    if [[ -n $dir && ! -x $dir/swift ]]; then path+=${path:+:}$dir; fi
done < <(tr ':' '\n' <<<"$PATH")
export PATH=$path
unset PYTHONPATH SPIKELOC_KERNELS
if command -v swift >/dev/null; then echo "swift is still on PATH" >&2; exit 1; fi
echo "swift: not on PATH; working directory $work"
"$python" -m venv venv
venv/bin/python -m pip install --quiet --disable-pip-version-check "$wheel"
venv/bin/python - <<'EOF'
import os
import subprocess
import sys

import numpy as np
import spikeloc as sl

here = os.path.realpath(sl.__file__)
assert here.startswith(os.path.realpath(sys.prefix) + os.sep), f"spikeloc from {here}"
info = sl.build_info()
print(f"Python {sys.version.split()[0]}, spikeloc from {os.path.dirname(here)}")
print(info)
for variant in info.supported:  # each variant's library loads from the wheel and computes
    code = ("import spikeloc as sl; s = sl.Stimulus.tutorial(); ipd, x = s.generate(8, seed=1);"
            "net = sl.SNN.for_stimulus(s, seed=0); print(sl.build_info().variant,"
            " int(x.sum()), net.predict(x).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "SPIKELOC_KERNELS": variant}, check=True).stdout
    print(out.strip())
    assert out.split()[0] == variant

stim = sl.Stimulus.tutorial(phase_offset="per_sample")
ipd, spikes = stim.generate(512, seed=0)
ipd_test, spikes_test = stim.generate(256, seed=2)
net = sl.SNN.for_stimulus(stim, n_hidden=32, tau_hidden=20 * sl.ms, seed=0)
history = sl.train(net, ipd, spikes, stimulus=stim, epochs=2, lr=0.01, progress=False)
result = sl.evaluate(net, ipd_test, spikes_test, stim)
print(f"2 epochs: loss {history.train_loss[0]:.3f} -> {history.train_loss[-1]:.3f}, "
      f"test accuracy {result.accuracy:.3f} (chance {result.chance:.3f})")
assert np.isfinite(history.train_loss).all()
net.save("net.npz", stimulus=stim)
back = sl.load("net.npz")
assert np.array_equal(back.predict(spikes_test), net.predict(spikes_test))
print("save/load: same predictions")
EOF
venv/bin/python -m spikeloc --help >/dev/null
venv/bin/spikeloc train --help | head -n 1
# the presets are package data: the wheel must carry them
echo "presets: $(venv/bin/spikeloc show | wc -l)"
venv/bin/spikeloc show | grep -q "^tutorial "
echo "wheel check passed: $(basename "$wheel")"

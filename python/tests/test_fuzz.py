"""Robustness fuzzing (python/tests/fuzz_robustness.py) in a subprocess: >= 10,000
derandomized hypothesis cases over the public API and every kernel entry point; the
interpreter must survive all of them (a segfault or abort shows up as the subprocess dying)
and every failure must be one of the documented exception types."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl
from spikeloc.evaluation import labels_from_ipd

pytest.importorskip("hypothesis")

SCRIPT = Path(__file__).with_name("fuzz_robustness.py")


def test_fuzzing_never_crashes_and_raises_only_documented_errors():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(sl.__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=900, env=env)
    running = [line for line in out.stdout.splitlines() if line.startswith("target ")]
    assert out.returncode == 0, (
        f"the fuzzing process died (status {out.returncode}) in {running[-1:]}:\n"
        f"{out.stdout[-2000:]}\n{out.stderr[-6000:]}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["unexpected"] == [], json.dumps(summary["unexpected"], indent=1)[:6000]
    assert summary["total"] >= 10_000, summary["cases"]
    # every target also reached calls that succeed, i.e. got past the argument checks
    for target, calls in summary["calls"].items():
        assert summary["returned"].get(target, 0) > 0, (target, summary["returned"])


@pytest.mark.parametrize("call", [
    lambda stim, net, ipd, x: sl.evaluate(net, ipd, x, stim),
    lambda stim, net, ipd, x: sl.train(net, ipd, x, stimulus=stim, epochs=1, progress=False),
    lambda stim, net, ipd, x: stim.labels(ipd),
    lambda stim, net, ipd, x: stim.abs_error_deg(ipd, np.zeros(len(ipd), np.int64)),
    lambda stim, net, ipd, x: labels_from_ipd(ipd, 4),
])
def test_complex_ipds_are_rejected_not_truncated(call, small_data, small_snn):
    """Found by the fuzzing: complex IPDs used to lose their imaginary part silently."""
    stim, ipd, spikes, ev, labels = small_data
    with pytest.raises(TypeError, match="ipd must be a real array"):
        call(stim, small_snn, ipd.astype(np.complex128) + 1j, ev)

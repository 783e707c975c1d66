"""benchmarks/jax_snn.py: the JAX model of the scaling benchmark agrees with spikeloc.

The agreement test needs jax (``pip install -e '.[bench]'``) and is skipped without it; the
other two run everywhere (the benchmarks must work, minus their JAX column, without jax).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from spikeloc import reference as ref

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks")
sys.path.insert(0, BENCHMARKS)
import jax_snn  # noqa: E402


def test_readout_closed_form_equals_the_leaky_readout_mean():
    """The closed-form weights c_n / T give mean_n u_n of the reference's leaky readout."""
    rng = np.random.default_rng(4)
    J = rng.standard_normal((3, 37, 5))
    a = float(np.exp(-1e-3 / 20e-3))
    c = jax_snn.readout_weights(37, a)
    assert c[-1] == 0.0
    m = np.einsum("btc,t->bc", J, c) / 37
    np.testing.assert_allclose(m, ref.aggregate(ref.leaky_readout(J, a), "mean"), rtol=1e-12)
    with pytest.raises(ValueError, match="a_o"):
        jax_snn.readout_weights(10, 1.0)


def test_benchmark_status_without_jax(monkeypatch, capsys):
    """Without jax the column is named, not timed, and nothing raises."""
    monkeypatch.setattr(jax_snn, "jax_version", lambda: None)
    assert jax_snn.benchmark_status(0) == "jax not installed"
    assert "jax not installed" in capsys.readouterr().out
    assert jax_snn.benchmark_status(1, no_jax=True) == "not requested"


def test_jax_model_agrees_with_spikeloc():
    """Loss, both gradients and the Adam step of the JAX model (both readout forms) match
    spikeloc's on the fixed case within float32 tolerance, and the case is a fair test. Run
    in a subprocess (the benchmarks' worker), so that jax's threads and memory stay out of
    the test process (other tests fork and measure peak memory)."""
    if jax_snn.jax_version() is None:
        pytest.skip("jax is not installed (pip install -e '.[bench]')")
    import spikeloc
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(spikeloc.__file__))),
         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "jax_snn.py"), "--worker",
                           "check", json.dumps({"threads": 1})],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = json.loads(proc.stdout.strip().splitlines()[-1])
    assert a["hidden_spikes"] > 0
    assert a["margin"] >= jax_snn.MIN_MARGIN
    for key in ("loss", "w1", "w2", "adam"):
        assert a[key] <= jax_snn.AGREEMENT_RTOL, (key, a[key])
    assert a["max"] == max(a[k] for k in ("loss", "w1", "w2", "adam"))
    assert not jax_snn.is_unusable_or_disagrees(a)

"""The Python API: shapes, dtypes, determinism, round trips, in-place updates, threads."""

import glob
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import _native


# ---------------------------------------------------------------------------- module


def test_exports_and_constants():
    for name in ["Stimulus", "PRESETS", "SpikeEvents", "as_events", "SNN", "MembraneOnly",
                 "Adam", "SGD", "ms", "Hz"]:
        assert hasattr(sl, name), name
    assert sl.ms == 1e-3 and sl.Hz == 1.0
    assert sl.WORD_IPD == 2**62 == _native.WORD_IPD
    assert sl.WORD_PHASE == 2**62 + 1 == _native.WORD_PHASE
    assert sl.SET_INDEX == 2**63 - 1 == _native.SET_INDEX
    assert sl.abi_version() >= 1
    assert sl.default_threads() >= 1


def test_kernel_library_is_self_contained():
    """The Swift runtime is linked statically into every variant's library: no libswift*.so
    dependency."""
    if sys.platform != "linux":
        pytest.skip("Linux shared library layout only")
    libs = glob.glob(os.path.join(os.path.dirname(_native.__file__), "libSpikeLocKernels.*.so"))
    assert sl.build_info().library in libs
    for lib in libs:
        out = subprocess.run(["ldd", lib], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip("ldd unavailable")
        assert "libswift" not in out.stdout
        assert "not found" not in out.stdout


# ---------------------------------------------------------------------------- stimulus


def test_stimulus_defaults_and_presets():
    st = sl.Stimulus()
    assert (st.dt, st.duration, st.freq, st.anf_per_ear) == (1e-3, 0.1, 20.0, 100)
    assert (st.rate_max, st.envelope_power, st.num_classes) == (600.0, 2.0, 12)
    assert st.phase_offset == "per_sample" and st.null_phase_delays is False
    assert st.steps == 100 and st.n_in == 200
    h = sl.Stimulus.hz250()
    assert h.dt == 1e-4 and h.freq == 250.0 and h.steps == 1000
    assert sl.PRESETS["tutorial"] == sl.Stimulus.tutorial() == st
    assert sl.PRESETS["250hz"] == h
    assert st.replace(anf_per_ear=3).n_in == 6


def test_generate_shapes_and_values(small_stim):
    ipd, spikes = small_stim.generate(7, seed=1)
    assert ipd.shape == (7,) and ipd.dtype == np.float64
    assert spikes.shape == (7, small_stim.steps, small_stim.n_in) and spikes.dtype == np.uint8
    assert np.all((ipd >= -np.pi / 2) & (ipd < np.pi / 2))
    assert set(np.unique(spikes)) <= {0, 1}
    empty_ipd, empty = small_stim.generate(0, seed=0)
    assert empty_ipd.shape == (0,) and empty.shape == (0, small_stim.steps, small_stim.n_in)


def test_tutorial_density():
    """Mean spike probability rate_max dt E[((1+sin)/2)^2] = 0.6 * 3/8 = 0.225."""
    _, spikes = sl.Stimulus().generate(64, seed=0)
    assert abs(spikes.mean() - 0.225) < 0.01


@pytest.mark.parametrize("phase_offset", ["per_set", "per_sample", 0.25])
def test_generate_deterministic_and_chunk_independent(phase_offset):
    st = sl.Stimulus(duration=0.03, anf_per_ear=10, phase_offset=phase_offset)
    ipd_a, sp_a = st.generate(10, seed=5)
    ipd_b, sp_b = st.generate(10, seed=5)
    assert np.array_equal(ipd_a, ipd_b) and np.array_equal(sp_a, sp_b)
    ipd_c, sp_c = st.generate(5, seed=5, first_index=5)
    assert np.array_equal(ipd_a[5:], ipd_c) and np.array_equal(sp_a[5:], sp_c)
    ipd_d, sp_d = st.generate(5, seed=5)
    assert np.array_equal(ipd_a[:5], ipd_d) and np.array_equal(sp_a[:5], sp_d)
    _, sp_other = st.generate(10, seed=6)
    assert not np.array_equal(sp_a, sp_other)


def test_phases():
    st = sl.Stimulus(phase_offset="per_set")
    p = st.phases(6, seed=2)
    assert p.shape == (6,) and np.all(p == p[0]) and 0 <= p[0] < 1
    assert np.array_equal(st.phases(3, seed=2, first_index=100), p[:3])
    assert st.phases(1, seed=3)[0] != p[0]
    ps = st.replace(phase_offset="per_sample").phases(6, seed=2)
    assert len(np.unique(ps)) == 6 and np.all((ps >= 0) & (ps < 1))
    assert np.array_equal(st.replace(phase_offset="per_sample").phases(3, 2, first_index=3),
                          ps[3:])
    assert np.array_equal(st.replace(phase_offset=0.5).phases(4, seed=9), np.full(4, 0.5))


def test_spikes_for_matches_generate(small_stim):
    ipd, spikes = small_stim.generate(6, seed=4)
    assert np.array_equal(small_stim.spikes_for(ipd, seed=4), spikes)
    assert np.array_equal(small_stim.spikes_for(list(ipd), seed=4), spikes)


def test_labels_and_midpoints():
    st = sl.Stimulus()
    C = st.num_classes
    c = np.arange(C)
    mid = st.midpoints(c)
    assert mid.dtype == np.float64
    assert np.allclose(mid, (c + 0.5) * np.pi / C - np.pi / 2)
    assert np.array_equal(st.labels(mid), c)
    lab = st.labels(np.array([-np.pi / 2, np.pi / 2, 0.0, -np.pi, np.pi]))
    assert lab.dtype == np.int64
    assert list(lab) == [0, C - 1, C // 2, 0, C - 1]
    err = st.abs_error_deg(mid, c)
    assert np.allclose(err, 0.0)
    assert np.isclose(st.abs_error_deg(np.array([0.0]), np.array([C // 2]))[0], 7.5)


def test_stimulus_matches_reference(small_stim):
    from spikeloc import reference as ref
    ipd, spikes = small_stim.generate(5, seed=11, first_index=3)
    assert np.array_equal(ipd, ref.draw_ipd(5, 11, 3))
    params = ref.StimulusParams(dt=small_stim.dt, steps=small_stim.steps,
                                freq=small_stim.freq, anf_per_ear=small_stim.anf_per_ear)
    phase = small_stim.phases(5, 11, 3)
    assert np.array_equal(phase, ref.draw_phase_per_sample(5, 11, 3))
    expected, _, _ = ref.stimulus(ipd, phase, params, 11, 3)
    assert np.array_equal(spikes, expected)
    per_set = sl.Stimulus(phase_offset="per_set")
    assert per_set.phases(1, seed=11)[0] == ref.draw_phase_per_set(11)


# ---------------------------------------------------------------------------- events


def test_events_round_trip(small_data):
    _, _, spikes, ev, _ = small_data
    assert ev.n_samples == len(ev) == spikes.shape[0]
    assert (ev.steps, ev.n_in) == spikes.shape[1:]
    assert ev.shape == spikes.shape
    assert ev.n_events == int(spikes.sum())
    assert np.isclose(ev.density, spikes.mean())
    dense = ev.to_dense()
    assert dense.dtype == np.uint8 and np.array_equal(dense, spikes)
    for name in ("step_ptr", "step_events", "input_ptr", "input_events"):
        assert not getattr(ev, name).flags.writeable
    assert ev.step_ptr.dtype == np.int64 and ev.step_events.dtype == np.uint16
    assert ev.step_ptr.shape == (spikes.shape[0] * spikes.shape[1] + 1,)
    assert ev.input_ptr.shape == (spikes.shape[0] * spikes.shape[2] + 1,)
    # the by-step lists of sample 0, step t are the spiking inputs
    s, t = 1, 3
    lo, hi = ev.step_ptr[s * ev.steps + t], ev.step_ptr[s * ev.steps + t + 1]
    assert np.array_equal(ev.step_events[lo:hi], np.flatnonzero(spikes[s, t]))
    i = 2
    lo, hi = ev.input_ptr[s * ev.n_in + i], ev.input_ptr[s * ev.n_in + i + 1]
    assert np.array_equal(ev.input_events[lo:hi], np.flatnonzero(spikes[s, :, i]))
    assert "SpikeEvents" in repr(ev)


def test_events_bool_and_constructor(small_data):
    _, _, spikes, ev, _ = small_data
    evb = sl.SpikeEvents.from_dense(spikes.astype(bool))
    assert np.array_equal(evb.step_events, ev.step_events)
    assert sl.as_events(ev) is ev
    assert np.array_equal(sl.as_events(spikes).to_dense(), spikes)
    copy = sl.SpikeEvents(ev.n_samples, ev.steps, ev.n_in, ev.step_ptr, ev.step_events,
                          ev.input_ptr, ev.input_events)
    assert np.array_equal(copy.to_dense(), spikes)


def test_events_empty_and_silent():
    ev = sl.SpikeEvents.from_dense(np.zeros((3, 4, 5), dtype=np.uint8))
    assert ev.n_events == 0 and np.array_equal(ev.to_dense(), np.zeros((3, 4, 5), np.uint8))
    ev0 = sl.SpikeEvents.from_dense(np.zeros((0, 4, 5), dtype=np.uint8))
    assert len(ev0) == 0 and ev0.to_dense().shape == (0, 4, 5)


# ---------------------------------------------------------------------------- SNN


def test_snn_init_and_parameters(small_stim):
    net = sl.SNN.for_stimulus(small_stim, n_hidden=7, seed=4)
    assert net.w1.shape == (16, 7) and net.w2.shape == (7, 4) and net.init == "seeds"
    textbook = sl.SNN.for_stimulus(small_stim, n_hidden=7, seed=4, init="fan_in")
    # the seeds' bounds 1/sqrt(N_h), 1/sqrt(C); the textbook's 1/sqrt(N_in), 1/sqrt(N_h)
    for w, bound in ((net.w1, 1 / math.sqrt(7)), (net.w2, 1 / math.sqrt(4)),
                     (textbook.w1, 1 / math.sqrt(16)), (textbook.w2, 1 / math.sqrt(7))):
        assert w.dtype == np.float32 and w.flags.c_contiguous
        assert np.all(np.abs(w) <= bound) and np.abs(w).max() > 0.9 * bound
    # the same uniform draws, scaled: the two inits differ only in their bounds
    np.testing.assert_allclose(net.w1 * math.sqrt(7), textbook.w1 * math.sqrt(16), rtol=1e-6)
    mo = sl.MembraneOnly.for_stimulus(small_stim, seed=4)
    assert np.abs(mo.w).max() <= 1 / math.sqrt(4) and np.abs(mo.w).max() > 1 / math.sqrt(16)
    with pytest.raises(ValueError, match="init must be one of"):
        sl.SNN.for_stimulus(small_stim, init="xavier")
    same = sl.SNN.for_stimulus(small_stim, n_hidden=7, seed=4)
    assert np.array_equal(net.w1, same.w1) and np.array_equal(net.w2, same.w2)
    params = net.parameters()
    assert set(params) == {"w1", "w2"} and params["w1"] is net.w1
    assert net.tau_output == net.tau_hidden == 20e-3
    cfg = net.config
    assert cfg["n_hidden"] == 7 and cfg["readout"] == "mean" and cfg["dt"] == small_stim.dt
    assert cfg["init"] == "seeds" and textbook.config["init"] == "fan_in"


def test_snn_weight_assignment(small_snn):
    live = small_snn.w1
    new = np.arange(16 * 5, dtype=np.float64).reshape(16, 5) / 100
    small_snn.w1 = new
    assert small_snn.w1 is live  # copied into the live array
    assert small_snn.w1.dtype == np.float32 and np.allclose(small_snn.w1, new)
    new[0, 0] = 42.0
    assert small_snn.w1[0, 0] != 42.0  # a copy, not a view
    small_snn.w2 = np.asfortranarray(np.ones((5, 4)))
    assert small_snn.w2.flags.c_contiguous and np.all(small_snn.w2 == 1)


def test_snn_forward_shapes(small_data, small_snn):
    _, _, spikes, ev, labels = small_data
    out = small_snn.forward(spikes)
    B, T, _ = spikes.shape
    assert out.hidden_spikes.shape == (B, T, 5) and out.hidden_spikes.dtype == np.uint8
    assert out.output_membrane.shape == (B, T, 4) and out.output_membrane.dtype == np.float32
    assert out.logits.shape == (B, 4) and out.logits.dtype == np.float32
    assert set(np.unique(out.hidden_spikes)) <= {0, 1}
    assert np.array_equal(small_snn.forward(ev).logits, out.logits)
    assert np.array_equal(small_snn.forward(spikes.astype(bool)).logits, out.logits)
    np.testing.assert_allclose(out.logits, out.output_membrane.mean(axis=1), rtol=1e-5,
                               atol=1e-6)
    pred = small_snn.predict(ev)
    assert pred.dtype == np.int64 and np.array_equal(pred, np.argmax(out.logits, axis=1))
    assert np.array_equal(small_snn.logits(ev), out.logits)


def test_snn_index_selects_samples(small_data, small_snn):
    _, _, spikes, ev, labels = small_data
    full = small_snn.forward(ev)
    index = np.array([5, 0, 5, 11])
    part = small_snn.forward(ev, index=index)
    assert np.array_equal(part.logits, full.logits[index])
    assert np.array_equal(part.hidden_spikes, full.hidden_spikes[index])
    assert np.array_equal(small_snn.predict(ev, index=index.astype(np.int32)),
                          np.argmax(full.logits[index], axis=1))
    l_idx, g_idx = small_snn.loss_and_grad(ev, labels[index], index=index)
    l_dense, g_dense = small_snn.loss_and_grad(spikes[index], labels[index])
    assert l_idx == l_dense
    assert np.array_equal(g_idx["w1"], g_dense["w1"])


def test_snn_loss_and_grad(small_data):
    stim, _, spikes, ev, labels = small_data
    net = sl.SNN.for_stimulus(stim, n_hidden=6, tau_hidden=10e-3, seed=2)
    net.w1 = net.w1 * 8  # make the hidden layer spike
    loss, grads = net.loss_and_grad(ev, labels)
    assert isinstance(loss, float) and np.isfinite(loss) and loss > 0
    assert set(grads) == {"w1", "w2"}
    assert grads["w1"].shape == net.w1.shape and grads["w1"].dtype == np.float32
    assert grads["w2"].shape == net.w2.shape and grads["w2"].dtype == np.float32
    assert np.any(grads["w2"] != 0)
    loss2, grads2, logits = net.loss_and_grad(ev, labels, return_logits=True)
    assert loss2 == loss and np.array_equal(grads2["w1"], grads["w1"])
    assert np.array_equal(logits, net.forward(ev).logits)
    # the loss is the mean cross-entropy of the logits
    m = logits.astype(np.float64)
    logp = m - m.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert np.isclose(loss, -logp[np.arange(len(labels)), labels].mean(), rtol=1e-5)


# ---------------------------------------------------------------------------- membrane only


def test_membrane_only(small_data):
    stim, _, spikes, ev, labels = small_data
    net = sl.MembraneOnly.for_stimulus(stim, tau=10e-3, seed=3)
    assert net.w.shape == (16, 4) and net.w.dtype == np.float32
    assert set(net.parameters()) == {"w"} and net.parameters()["w"] is net.w
    out = net.forward(ev)
    assert out.output_membrane.shape == (12, stim.steps, 4)
    assert out.logits.shape == (12, 4) and out.logits.dtype == np.float32
    np.testing.assert_allclose(out.logits, 0.01 * out.output_membrane.sum(axis=1), rtol=1e-5,
                               atol=1e-6)
    loss, grads = net.loss_and_grad(spikes, labels)
    assert np.isfinite(loss) and grads["w"].shape == (16, 4)
    assert np.array_equal(net.predict(ev), np.argmax(out.logits, axis=1))
    assert net.config["model"] == "MembraneOnly"


# ---------------------------------------------------------------------------- optimisers


def test_sgd_in_place():
    w = np.ones((3, 2), dtype=np.float32)
    opt = sl.SGD({"w": w}, lr=0.5)
    opt.step({"w": np.full((3, 2), 2.0)})
    assert np.all(w == 0.0)


def test_adam_in_place_matches_reference(small_snn):
    from spikeloc import reference as ref
    params = small_snn.parameters()
    before = {k: v.copy() for k, v in params.items()}
    opt = sl.Adam(small_snn, lr=0.01)
    rng = np.random.default_rng(0)
    grads_seq = [{k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
                 for _ in range(3)]
    for g in grads_seq:
        opt.step(g)
    assert small_snn.w1 is params["w1"]  # updated in place
    assert opt.state["w1"]["step"] == 3 and opt.steps_taken == 3
    for k in params:
        traj = ref.adam_trajectory(before[k].ravel(), [g[k].ravel() for g in grads_seq])
        np.testing.assert_allclose(params[k].ravel(), traj[-1], rtol=1e-5, atol=1e-6)
        assert not np.array_equal(params[k], before[k])


def test_training_reduces_loss(small_data):
    stim, _, _, ev, labels = small_data
    net = sl.MembraneOnly.for_stimulus(stim, tau=10e-3)
    opt = sl.Adam(net.parameters(), lr=0.05)
    first, _ = net.loss_and_grad(ev, labels)
    for _ in range(30):
        loss, grads = net.loss_and_grad(ev, labels)
        opt.step(grads)
    assert loss < first


# ---------------------------------------------------------------------------- threads


@pytest.fixture(scope="module")
def thread_data():
    stim = sl.Stimulus(duration=0.05, anf_per_ear=20, phase_offset="per_sample")
    ipd, spikes = stim.generate(40, seed=8, threads=1)
    return stim, ipd, spikes, sl.SpikeEvents.from_dense(spikes, threads=1), stim.labels(ipd)


def test_threads_bit_identical(thread_data):
    stim, ipd, spikes, ev, labels = thread_data
    results = []
    for threads in (1, 2, 4):
        _, sp = stim.generate(40, seed=8, threads=threads)
        e = sl.SpikeEvents.from_dense(sp, threads=threads)
        net = sl.SNN.for_stimulus(stim, n_hidden=16, tau_hidden=10e-3, seed=0, threads=threads)
        net.w1 = net.w1 * 6
        out = net.forward(e)
        loss, grads = net.loss_and_grad(e, labels)
        mo = sl.MembraneOnly.for_stimulus(stim, threads=threads)
        mloss, mgrads = mo.loss_and_grad(e, labels)
        results.append((sp, e.step_events, e.input_events, e.to_dense(threads=threads),
                        out.hidden_spikes, out.output_membrane, out.logits, loss, grads["w1"],
                        grads["w2"], mloss, mgrads["w"]))
    assert np.any(results[0][4])  # the hidden layer spikes, so the test means something
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


def test_threads_env_var(monkeypatch, small_data):
    from spikeloc._native_api import resolve_threads
    monkeypatch.delenv("SPIKELOC_NUM_THREADS", raising=False)
    assert resolve_threads(None) == 0
    monkeypatch.setenv("SPIKELOC_NUM_THREADS", "3")
    assert resolve_threads(None) == 3
    assert resolve_threads(2) == 2
    stim, _, _, ev, _ = small_data
    assert sl.SNN.for_stimulus(stim).threads == 3


def test_concurrent_python_threads(thread_data):
    """Kernels release the GIL; concurrent calls from Python threads give the same results."""
    from concurrent.futures import ThreadPoolExecutor
    stim, _, _, ev, labels = thread_data
    net = sl.SNN.for_stimulus(stim, n_hidden=16, threads=1)
    expected = net.loss_and_grad(ev, labels)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: net.loss_and_grad(ev, labels), range(8)))
    for loss, grads in results:
        assert loss == expected[0] and np.array_equal(grads["w1"], expected[1]["w1"])


# ---------------------------------------------------------------------------- resources


def test_buffers_released(small_data, small_snn):
    """Every call releases the buffers it took, on success and on failure."""
    _, _, _, ev, labels = small_data
    arrays = [ev.step_ptr, ev.step_events, ev.input_ptr, ev.input_events, small_snn.w1,
              small_snn.w2, labels]
    before = [sys.getrefcount(a) for a in arrays]
    for _ in range(50):
        small_snn.loss_and_grad(ev, labels)
        small_snn.forward(ev)
        with pytest.raises(ValueError):
            _native.snn_forward(small_snn._abi_config(ev.steps), ev._abi(), None, 12,
                                small_snn.w1, small_snn.w2, np.empty(3, np.float32))
        with pytest.raises(TypeError):
            _native.snn_loss_grad(small_snn._abi_config(ev.steps), ev._abi(), None, 12,
                                  labels.astype(np.float64), small_snn.w1, small_snn.w2,
                                  np.empty_like(small_snn.w1), np.empty_like(small_snn.w2))
    assert [sys.getrefcount(a) for a in arrays] == before
    # a released buffer lets numpy resize the array again
    a = np.zeros(5, dtype=np.float32)
    with pytest.raises(ValueError):
        _native.sgd_step(a, np.zeros(4, np.float32), 0.1)
    a.resize(10, refcheck=False)


def test_no_memory_growth_10000_calls():
    """10,000 kernel calls (successful and failing) do not grow the process's memory."""
    code = textwrap.dedent("""
        import numpy as np, spikeloc as sl
        from spikeloc import _native
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096
        stim = sl.Stimulus(duration=0.01, anf_per_ear=4, phase_offset="per_sample")
        ipd, spikes = stim.generate(16, seed=0, threads=1)
        ev = sl.SpikeEvents.from_dense(spikes, threads=1)
        net = sl.SNN.for_stimulus(stim, n_hidden=4, threads=1)
        labels = stim.labels(ipd)
        def work(k):
            # fresh 64 KiB arrays each time: a buffer never released would keep them alive
            for _ in range(k):
                net.loss_and_grad(ev, labels)
                big = np.zeros(1 << 14, dtype=np.float32)
                _native.sgd_step(big, np.ones(1 << 14, dtype=np.float32), 0.5)
                try:
                    _native.sgd_step(np.zeros(1 << 14, np.float32), big[:10], 0.0)
                except ValueError:
                    pass
                try:
                    _native.adam_step(np.zeros(1 << 14, np.float32), np.zeros(1 << 13),
                                      big, big, 0.1, 0.9, 0.9, 0.0, 1)
                except (TypeError, ValueError):
                    pass
        work(1000)
        start = rss()
        work(10000)
        print("GROWTH", rss() - start)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    growth = int(out.stdout.split("GROWTH")[1])
    assert growth < 8 * 2**20, f"memory grew by {growth} bytes over 10,000 calls"

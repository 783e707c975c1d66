"""Bad input raises ValueError or TypeError naming the argument, and never crashes."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import _native

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

STIM = sl.Stimulus(duration=0.02, anf_per_ear=8, num_classes=4, phase_offset="per_sample")
IPD, SPIKES = STIM.generate(6, seed=1)
EVENTS = sl.SpikeEvents.from_dense(SPIKES)
LABELS = STIM.labels(IPD)


def snn(**kw):
    args = dict(dt=1e-3, tau_hidden=5e-3, tau_output=5e-3)
    args.update(kw)
    return sl.SNN(16, 5, 4, **args)


def mo(**kw):
    args = dict(dt=1e-3, tau=5e-3)
    args.update(kw)
    return sl.MembraneOnly(16, 4, **args)


def assign(obj, name, value):
    setattr(obj, name, value)


def poisoned_snn():
    net = snn()
    net.w1[0, 0] = np.nan  # written straight into the live array
    return net


def net_config(net, steps=None):
    return net._abi_config(EVENTS.steps if steps is None else steps)


def events_with(**changes):
    t = dict(zip(["n_samples", "steps", "n_in", "n_events", "step_ptr", "step_events",
                  "input_ptr", "input_events"], EVENTS._abi()))
    t.update(changes)
    return tuple(t.values())


NET = snn()
OUT = np.empty((6, 4), dtype=np.float32)

# (id, callable, expected exception, substring the message must contain)
CASES = [
    # ---- Stimulus configuration
    ("stim-dt-zero", lambda: sl.Stimulus(dt=0), ValueError, "dt"),
    ("stim-dt-negative", lambda: sl.Stimulus(dt=-1e-3), ValueError, "dt"),
    ("stim-dt-nan", lambda: sl.Stimulus(dt=float("nan")), ValueError, "dt"),
    ("stim-dt-str", lambda: sl.Stimulus(dt="1ms"), TypeError, "dt"),
    ("stim-duration-zero", lambda: sl.Stimulus(duration=0), ValueError, "duration"),
    ("stim-duration-short", lambda: sl.Stimulus(duration=1e-5), ValueError, "duration"),
    ("stim-freq-inf", lambda: sl.Stimulus(freq=float("inf")), ValueError, "freq"),
    ("stim-anf-zero", lambda: sl.Stimulus(anf_per_ear=0), ValueError, "anf_per_ear"),
    ("stim-anf-float", lambda: sl.Stimulus(anf_per_ear=2.5), TypeError, "anf_per_ear"),
    ("stim-rate-negative", lambda: sl.Stimulus(rate_max=-1), ValueError, "rate_max"),
    ("stim-power-nan", lambda: sl.Stimulus(envelope_power=float("nan")), ValueError,
     "envelope_power"),
    ("stim-classes-zero", lambda: sl.Stimulus(num_classes=0), ValueError, "num_classes"),
    ("stim-null-str", lambda: sl.Stimulus(null_phase_delays="yes"), TypeError,
     "null_phase_delays"),
    ("stim-phase-mode", lambda: sl.Stimulus(phase_offset="per_batch"), ValueError,
     "phase_offset"),
    ("stim-phase-nan", lambda: sl.Stimulus(phase_offset=float("nan")), ValueError,
     "phase_offset"),
    ("stim-phase-list", lambda: sl.Stimulus(phase_offset=[0.1]), TypeError, "phase_offset"),
    # ---- Stimulus methods
    ("gen-n-negative", lambda: STIM.generate(-1, seed=0), ValueError, "n"),
    ("gen-n-float", lambda: STIM.generate(2.0, seed=0), TypeError, "n"),
    ("gen-seed-negative", lambda: STIM.generate(2, seed=-1), ValueError, "seed"),
    ("gen-seed-huge", lambda: STIM.generate(2, seed=2**64), ValueError, "seed"),
    ("gen-seed-missing", lambda: STIM.generate(2), TypeError, "seed"),
    ("spikes-for-seed-missing", lambda: STIM.spikes_for([0.1]), TypeError, "seed"),
    ("gen-first-negative", lambda: STIM.generate(2, seed=0, first_index=-3), ValueError,
     "first_index"),
    ("gen-first-overflow", lambda: STIM.generate(2, seed=0, first_index=2**63 - 2), ValueError,
     "first_index"),
    ("gen-threads-negative", lambda: STIM.generate(2, seed=0, threads=-1), ValueError, "threads"),
    ("gen-threads-float", lambda: STIM.generate(2, seed=0, threads=1.5), TypeError, "threads"),
    ("spikes-for-nan", lambda: STIM.spikes_for(np.array([0.1, np.nan]), seed=0), ValueError, "ipd"),
    ("spikes-for-inf", lambda: STIM.spikes_for([np.inf], seed=0), ValueError, "ipd"),
    ("spikes-for-2d", lambda: STIM.spikes_for(np.zeros((2, 2)), seed=0), ValueError, "ipd"),
    ("spikes-for-str", lambda: STIM.spikes_for(np.array(["a"]), seed=0), TypeError, "ipd"),
    ("labels-nan", lambda: STIM.labels([np.nan]), ValueError, "ipd"),
    ("midpoints-float", lambda: STIM.midpoints(np.array([0.5])), TypeError, "labels"),
    ("midpoints-range", lambda: STIM.midpoints(np.array([4])), ValueError, "labels"),
    # ---- SpikeEvents
    ("events-float", lambda: sl.SpikeEvents.from_dense(SPIKES.astype(np.float32)), TypeError,
     "spikes"),
    ("events-2d", lambda: sl.SpikeEvents.from_dense(SPIKES[0]), ValueError, "spikes"),
    ("events-values", lambda: sl.SpikeEvents.from_dense(SPIKES * 2), ValueError, "spikes"),
    ("events-too-many-inputs", lambda: sl.SpikeEvents.from_dense(
        np.zeros((1, 1, 70000), np.uint8)), ValueError, "N_in"),
    ("events-ctor-ptr-dtype", lambda: sl.SpikeEvents(
        6, EVENTS.steps, EVENTS.n_in, EVENTS.step_ptr.astype(np.int32), EVENTS.step_events,
        EVENTS.input_ptr, EVENTS.input_events), TypeError, "step_ptr"),
    ("events-ctor-ptr-length", lambda: sl.SpikeEvents(
        5, EVENTS.steps, EVENTS.n_in, EVENTS.step_ptr, EVENTS.step_events, EVENTS.input_ptr,
        EVENTS.input_events), ValueError, "step_ptr"),
    # ---- network construction
    ("snn-dt-zero", lambda: snn(dt=0.0), ValueError, "dt"),
    ("snn-dt-nan", lambda: snn(dt=float("nan")), ValueError, "dt"),
    ("snn-tau-hidden-negative", lambda: snn(tau_hidden=-1.0), ValueError, "tau_hidden"),
    ("snn-tau-hidden-nan", lambda: snn(tau_hidden=float("nan")), ValueError, "tau_hidden"),
    ("snn-tau-output-zero", lambda: snn(tau_output=0), ValueError, "tau_output"),
    ("snn-beta-zero", lambda: snn(beta=0), ValueError, "beta"),
    ("snn-readout", lambda: snn(readout="median"), ValueError, "readout"),
    ("snn-hidden-zero", lambda: sl.SNN(16, 0, 4, dt=1e-3, tau_hidden=1e-3, tau_output=1e-3),
     ValueError, "n_hidden"),
    ("snn-n-in-str", lambda: sl.SNN("16", 5, 4, dt=1e-3, tau_hidden=1e-3, tau_output=1e-3),
     TypeError, "n_in"),
    ("snn-seed-negative", lambda: snn(seed=-1), ValueError, "seed"),
    ("snn-threads-negative", lambda: snn(threads=-2), ValueError, "threads"),
    ("mo-tau-zero", lambda: mo(tau=0), ValueError, "tau"),
    ("mo-dt-inf", lambda: mo(dt=float("inf")), ValueError, "dt"),
    # ---- network calls
    ("fwd-spikes-float", lambda: NET.forward(SPIKES.astype(np.float64)), TypeError, "spikes"),
    ("fwd-spikes-2d", lambda: NET.forward(SPIKES[0]), ValueError, "spikes"),
    ("fwd-spikes-n-in", lambda: NET.forward(SPIKES[:, :, :8]), ValueError, "n_in"),
    ("fwd-spikes-list", lambda: NET.forward([[1, 0]]), TypeError, "spikes"),
    ("fwd-spikes-zero-steps", lambda: NET.forward(np.zeros((2, 0, 16), np.uint8)), ValueError,
     "spikes"),
    ("fwd-empty-batch", lambda: NET.forward(SPIKES[:0]), ValueError, "empty batch"),
    ("fwd-empty-index", lambda: NET.forward(EVENTS, index=np.array([], np.int64)), ValueError,
     "empty batch"),
    ("fwd-index-range", lambda: NET.forward(EVENTS, index=[0, 6]), ValueError, "index"),
    ("fwd-index-negative", lambda: NET.forward(EVENTS, index=[-1]), ValueError, "index"),
    ("fwd-index-float", lambda: NET.forward(EVENTS, index=[0.0]), TypeError, "index"),
    ("fwd-index-2d", lambda: NET.forward(EVENTS, index=[[0]]), ValueError, "index"),
    ("fwd-nan-weights", lambda: poisoned_snn().forward(EVENTS), ValueError, "w1"),
    ("predict-nan-weights", lambda: poisoned_snn().predict(EVENTS), ValueError, "w1"),
    ("loss-labels-range", lambda: NET.loss_and_grad(EVENTS, LABELS + 4), ValueError, "labels"),
    ("loss-labels-negative", lambda: NET.loss_and_grad(EVENTS, LABELS - 10), ValueError,
     "labels"),
    ("loss-labels-float", lambda: NET.loss_and_grad(EVENTS, LABELS.astype(float)), TypeError,
     "labels"),
    ("loss-labels-length", lambda: NET.loss_and_grad(EVENTS, LABELS[:3]), ValueError,
     "labels"),
    ("loss-labels-2d", lambda: NET.loss_and_grad(EVENTS, LABELS[:, None]), ValueError,
     "labels"),
    ("loss-labels-vs-index", lambda: NET.loss_and_grad(EVENTS, LABELS, index=[0, 1]),
     ValueError, "labels"),
    ("loss-nan-weights", lambda: poisoned_snn().loss_and_grad(EVENTS, LABELS), ValueError,
     "w1"),
    ("mo-labels-range", lambda: mo().loss_and_grad(EVENTS, LABELS * 10), ValueError, "labels"),
    # ---- weight assignment
    ("assign-w1-shape", lambda: assign(snn(), "w1", np.zeros((5, 16))), ValueError, "w1"),
    ("assign-w2-rank", lambda: assign(snn(), "w2", np.zeros(20)), ValueError, "w2"),
    ("assign-w1-nan", lambda: assign(snn(), "w1", np.full((16, 5), np.nan)), ValueError, "w1"),
    ("assign-w1-str", lambda: assign(snn(), "w1", np.full((16, 5), "x")), TypeError, "w1"),
    ("assign-w-complex", lambda: assign(mo(), "w", np.zeros((16, 4), complex)), TypeError, "w"),
    # ---- optimisers
    ("adam-lr-nan", lambda: sl.Adam(snn(), lr=float("nan")), ValueError, "lr"),
    ("adam-lr-negative", lambda: sl.Adam(snn(), lr=-1), ValueError, "lr"),
    ("adam-betas", lambda: sl.Adam(snn(), betas=(1.0, 0.999)), ValueError, "betas"),
    ("adam-betas-shape", lambda: sl.Adam(snn(), betas=0.9), TypeError, "betas"),
    ("adam-eps", lambda: sl.Adam(snn(), eps=-1.0), ValueError, "eps"),
    ("adam-params-float64", lambda: sl.Adam({"w": np.zeros(3)}), TypeError, "params"),
    ("adam-params-strided", lambda: sl.Adam({"w": np.zeros((4, 4), np.float32)[:, ::2]}),
     ValueError, "params"),
    ("adam-params-readonly", lambda: sl.Adam({"w": np.frombuffer(bytes(8), np.float32)}),
     ValueError, "params"),
    ("adam-params-empty", lambda: sl.Adam({}), ValueError, "params"),
    ("adam-params-list", lambda: sl.Adam([np.zeros(3, np.float32)]), TypeError, "params"),
    ("adam-grads-keys", lambda: sl.Adam(snn()).step({"w1": np.zeros((16, 5))}), ValueError,
     "grads"),
    ("adam-grads-shape", lambda: sl.Adam(snn()).step(
        {"w1": np.zeros((16, 5)), "w2": np.zeros((4, 5))}), ValueError, "grads"),
    ("adam-grads-nan", lambda: sl.Adam(snn()).step(
        {"w1": np.full((16, 5), np.nan), "w2": np.zeros((5, 4))}), ValueError, "grads"),
    ("sgd-grads-int", lambda: sl.SGD(snn(), lr=0.1).step(
        {"w1": np.zeros((16, 5), int), "w2": np.zeros((5, 4), int)}), TypeError, "grads"),
    # ---- the extension itself (the layer under the Python API)
    ("native-dtype", lambda: _native.sgd_step(np.zeros(3), np.zeros(3), 0.1), TypeError,
     "w must be a writable C-contiguous float32 array, got float64"),
    ("native-list", lambda: _native.sgd_step([1.0], np.zeros(1, np.float32), 0.1), TypeError,
     "w must be"),
    ("native-strided", lambda: _native.sgd_step(np.zeros(6, np.float32)[::2],
                                                np.zeros(3, np.float32), 0.1), ValueError, "w"),
    ("native-readonly", lambda: _native.sgd_step(np.frombuffer(bytes(16), np.float32),
                                                 np.zeros(4, np.float32), 0.1),
     ValueError, "w must be a writable"),
    ("native-length", lambda: _native.adam_step(*[np.zeros(4, np.float32)] * 2,
                                                np.zeros(3, np.float32),
                                                np.zeros(4, np.float32), 0.1, 0.9, 0.99, 1e-8, 1),
     ValueError, "m must have 4 elements"),
    ("native-adam-step-zero", lambda: _native.adam_step(*[np.zeros(4, np.float32)] * 4, 0.1,
                                                        0.9, 0.99, 1e-8, 0), ValueError, "step"),
    ("native-lr-str", lambda: _native.sgd_step(np.zeros(2, np.float32),
                                               np.zeros(2, np.float32), "0.1"), TypeError, "lr"),
    ("native-misaligned", lambda: _native.sgd_step(
        np.zeros(17, np.uint8)[1:].view(np.float32), np.zeros(4, np.float32), 0.1),
     ValueError, "aligned"),
    ("native-seed", lambda: _native.uniform53(-1, 0, 0, np.zeros(2)), ValueError, "seed"),
    ("native-seed-float", lambda: _native.uniform53(1.5, 0, 0, np.zeros(2)), TypeError, "seed"),
    ("native-threads", lambda: _native.events_from_dense(SPIKES, 6, 20, 16, -1),
     ValueError, "threads"),
    ("native-events-tuple", lambda: _native.events_to_dense((1, 2, 3), np.zeros(6, np.uint8)),
     TypeError, "events"),
    ("native-events-ptr-length", lambda: _native.events_to_dense(
        events_with(n_samples=7), np.zeros(7 * 20 * 16, np.uint8)), ValueError,
     "events.step_ptr"),
    ("native-events-dtype", lambda: _native.events_to_dense(
        events_with(step_events=EVENTS.step_events.astype(np.int16)),
        np.zeros(6 * 20 * 16, np.uint8)), TypeError, "events.step_events"),
    ("native-events-size-overflow", lambda: _native.events_to_dense(
        events_with(n_samples=2**62, steps=2**10), np.zeros(1, np.uint8)), ValueError,
     "overflow"),
    ("native-config-tuple", lambda: _native.snn_forward((1, 2), EVENTS._abi(), None, 6,
                                                        NET.w1, NET.w2, OUT), TypeError,
     "config"),
    ("native-config-dt-nan", lambda: _native.snn_forward(
        (16, 5, 4, 20, float("nan"), 5e-3, 5e-3, 0, 5.0), EVENTS._abi(), None, 6, NET.w1,
        NET.w2, OUT), ValueError, "dt"),
    ("native-config-tau-zero", lambda: _native.snn_forward(
        (16, 5, 4, 20, 1e-3, 0.0, 5e-3, 0, 5.0), EVENTS._abi(), None, 6, NET.w1, NET.w2, OUT),
     ValueError, "tau_hidden"),
    ("native-config-readout", lambda: _native.snn_forward(
        (16, 5, 4, 20, 1e-3, 5e-3, 5e-3, 7, 5.0), EVENTS._abi(), None, 6, NET.w1, NET.w2, OUT),
     ValueError, "readout"),
    ("native-config-steps", lambda: _native.snn_forward(
        net_config(NET, steps=21), EVENTS._abi(), None, 6, NET.w1, NET.w2, OUT), ValueError,
     "steps"),
    ("native-batch-negative", lambda: _native.snn_forward(
        net_config(NET), EVENTS._abi(), None, -1, NET.w1, NET.w2, OUT), ValueError, "batch"),
    ("native-batch-too-big", lambda: _native.snn_forward(
        net_config(NET), EVENTS._abi(), None, 7, NET.w1, NET.w2,
        np.empty((7, 4), np.float32)), ValueError, "batch"),
    ("native-index-length", lambda: _native.snn_forward(
        net_config(NET), EVENTS._abi(), np.arange(5), 6, NET.w1, NET.w2, OUT), ValueError,
     "index"),
    ("native-index-range", lambda: _native.snn_forward(
        net_config(NET), EVENTS._abi(), np.array([0, 1, 2, 3, 4, 99]), 6, NET.w1, NET.w2, OUT),
     ValueError, "index"),
    ("native-w1-float64", lambda: _native.snn_forward(
        net_config(NET), EVENTS._abi(), None, 6, NET.w1.astype(np.float64), NET.w2, OUT),
     TypeError, "w1 must be a C-contiguous float32 array, got float64"),
    ("native-w1-nan", lambda: _native.snn_forward(
        net_config(NET), EVENTS._abi(), None, 6, np.full_like(NET.w1, np.nan), NET.w2, OUT),
     ValueError, "w1"),
    ("native-logits-readonly", lambda: _native.snn_forward(
        net_config(NET), EVENTS._abi(), None, 6, NET.w1, NET.w2, np.broadcast_to(
            np.float32(0), (6, 4))), ValueError, "logits"),
    ("native-hidden-size", lambda: _native.snn_forward(
        net_config(NET), EVENTS._abi(), None, 6, NET.w1, NET.w2, OUT,
        np.empty(3, np.uint8)), ValueError, "hidden_spikes"),
    ("native-labels-range", lambda: _native.snn_loss_grad(
        net_config(NET), EVENTS._abi(), None, 6, np.full(6, 9, np.int64), NET.w1, NET.w2,
        np.empty_like(NET.w1), np.empty_like(NET.w2)), ValueError, "label"),
    ("native-labels-int32", lambda: _native.snn_loss_grad(
        net_config(NET), EVENTS._abi(), None, 6, LABELS.astype(np.int32), NET.w1, NET.w2,
        np.empty_like(NET.w1), np.empty_like(NET.w2)), TypeError, "labels"),
    ("native-grad-shape", lambda: _native.snn_loss_grad(
        mo()._abi_config(20), EVENTS._abi(), None, 6, LABELS, np.empty(0, np.float32), mo().w,
        np.empty(0, np.float32), np.empty(3, np.float32)), ValueError, "grad_w2"),
    ("native-membrane-only-w1", lambda: _native.snn_loss_grad(
        mo()._abi_config(20), EVENTS._abi(), None, 6, LABELS, mo().w, mo().w,
        np.empty(0, np.float32), np.empty_like(mo().w)), ValueError, "w1 must have 0 elements"),
    ("native-from-dense-shape", lambda: _native.events_from_dense(SPIKES, 6, 20, 17),
     ValueError, "x must have"),
    ("native-stimulus-params", lambda: _native.stimulus_noisy(
        (1e-3, 0, 20.0, 8, 600.0, 2.0, 0), np.zeros(1), np.zeros(1), 0, 0, 0.0,
        np.zeros(1, np.uint8)), ValueError, "steps"),
    ("native-stimulus-dt-nan", lambda: _native.stimulus_noisy(
        (float("nan"), 2, 20.0, 1, 600.0, 2.0, 0), np.zeros(1), np.zeros(1), 0, 0, 0.0,
        np.zeros(4, np.uint8)), ValueError, "dt"),
    ("native-stimulus-ipd-nan", lambda: _native.stimulus_noisy(
        (1e-3, 2, 20.0, 1, 600.0, 2.0, 0), np.array([np.nan]), np.zeros(1), 0, 0, 0.0,
        np.zeros(4, np.uint8)), ValueError, "ipd"),
    ("native-stimulus-phase-length", lambda: _native.stimulus_noisy(
        (1e-3, 2, 20.0, 1, 600.0, 2.0, 0), np.zeros(2), np.zeros(1), 0, 0, 0.0,
        np.zeros(8, np.uint8)), ValueError, "phase"),
]


@pytest.mark.parametrize("call, exc, fragment", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_names_argument(call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value), f"message {str(info.value)!r} lacks {fragment!r}"


def test_case_ids_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


def test_threads_env_var_invalid(monkeypatch):
    monkeypatch.setenv("SPIKELOC_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="SPIKELOC_NUM_THREADS"):
        snn()
    monkeypatch.setenv("SPIKELOC_NUM_THREADS", "-2")
    with pytest.raises(ValueError, match="SPIKELOC_NUM_THREADS"):
        STIM.generate(1, seed=0)


def test_stimulus_is_frozen():
    with pytest.raises(Exception):
        STIM.dt = 0.0  # dataclasses.FrozenInstanceError: validation cannot be bypassed


def test_events_arrays_read_only():
    with pytest.raises(ValueError):
        EVENTS.step_events[0] = 99


def test_non_contiguous_inputs_are_accepted_by_the_api():
    """The Python layer copies strided input to C order; only the raw extension refuses it."""
    spikes_f = np.asfortranarray(SPIKES)
    assert np.array_equal(sl.SpikeEvents.from_dense(spikes_f).to_dense(), SPIKES)
    labels_strided = np.repeat(LABELS, 2)[::2]
    assert np.isfinite(NET.loss_and_grad(EVENTS, labels_strided)[0])
    assert np.array_equal(NET.predict(EVENTS, index=(np.arange(12) // 2)[::2]),
                          NET.predict(EVENTS))


if given is not None:

    @settings(max_examples=60, deadline=None)
    @given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
           dtype=st.sampled_from(["uint8", "bool", "float32", "int64", "float64", "uint16"]))
    def test_random_spike_arrays_never_crash(shape, dtype):
        x = np.zeros(shape, dtype=dtype)
        try:
            out = NET.forward(x)
        except (ValueError, TypeError) as exc:
            assert "spikes" in str(exc) or "n_in" in str(exc) or "batch" in str(exc)
        else:
            assert out.logits.shape == (shape[0], 4)

    @settings(max_examples=60, deadline=None)
    @given(index=st.lists(st.integers(-2**63, 2**63 - 1), min_size=0, max_size=5))
    def test_random_indices_never_crash(index):
        try:
            out = NET.forward(EVENTS, index=np.array(index, dtype=np.int64))
        except ValueError as exc:
            assert "index" in str(exc) or "batch" in str(exc)
        else:
            assert out.logits.shape == (len(index), 4)


NASTY = textwrap.dedent(r"""
    # Corrupted event lists, absurd sizes and wrong buffers straight into the extension:
    # every call must return or raise ValueError/TypeError/MemoryError, never crash.
    import numpy as np, spikeloc as sl
    from spikeloc import _native
    stim = sl.Stimulus(duration=0.02, anf_per_ear=8, num_classes=4, phase_offset="per_sample")
    ipd, spikes = stim.generate(6, seed=1)
    ev = sl.SpikeEvents.from_dense(spikes)
    net = sl.SNN.for_stimulus(stim, n_hidden=5)
    mo = sl.MembraneOnly.for_stimulus(stim)
    labels = stim.labels(ipd)
    base = list(ev._abi())
    rng = np.random.default_rng(0)
    ok = errors = 0

    def attempt(fn, *args):
        global ok, errors
        try:
            fn(*args)
            ok += 1
        except (ValueError, TypeError, MemoryError, OverflowError):
            errors += 1

    def corrupt():
        t = [base[0], base[1], base[2], base[3], base[4].copy(), base[5].copy(),
             base[6].copy(), base[7].copy()]
        kind = rng.integers(0, 8)
        if kind == 0:    # pointer beyond the events
            t[4][rng.integers(1, len(t[4]))] = rng.integers(-10**12, 10**12)
        elif kind == 1:  # decreasing pointers
            i = rng.integers(1, len(t[6]) - 1)
            t[6][i] = t[6][i + 1] + 5
        elif kind == 2:  # inputs out of range
            t[5][rng.integers(0, len(t[5]))] = rng.integers(16, 65536)
        elif kind == 3:  # steps out of range
            t[7][rng.integers(0, len(t[7]))] = rng.integers(20, 65536)
        elif kind == 4:  # n_events lies, arrays shortened to match
            k = int(rng.integers(0, t[3]))
            t[3], t[5], t[7] = k, t[5][:k], t[7][:k]
        elif kind == 5:  # the two lists disagree
            t[5] = rng.permutation(t[5])
        elif kind == 6:  # last pointer wrong
            t[4][-1] = t[3] + 1
        else:            # everything random
            t[4] = np.sort(rng.integers(0, t[3] + 1, len(t[4])))
            t[6] = rng.integers(-5, t[3] + 5, len(t[6]))
        return tuple(t)

    w1, w2, w = net.w1, net.w2, mo.w
    none = np.empty(0, np.float32)  # w1 and grad_w1 of the membrane-only network
    for it in range(400):
        e = corrupt()
        attempt(_native.events_to_dense, e, np.empty(6 * 20 * 16, np.uint8))
        attempt(_native.snn_forward, net._abi_config(20), e, None, 6, w1, w2,
                np.empty(24, np.float32), np.empty(6 * 20 * 5, np.uint8),
                np.empty(6 * 20 * 4, np.float32))
        attempt(_native.snn_loss_grad, net._abi_config(20), e, rng.integers(0, 6, 6), 6,
                labels, w1, w2, np.empty_like(w1), np.empty_like(w2))
        attempt(_native.snn_loss_grad, mo._abi_config(20), e, None, 6, labels, none, w, none,
                np.empty_like(w))
    # absurd sizes
    for n, steps, n_in in [(2**40, 2**40, 2), (-1, 5, 5), (1, 0, 0), (2**62, 1, 1)]:
        attempt(_native.events_from_dense, np.zeros(4, np.uint8), n, steps, n_in)
    attempt(_native.stimulus_noisy, (1e-3, 2**40, 20.0, 2**40, 600.0, 2.0, 0), np.zeros(1),
            np.zeros(1), 0, 0, 0.0, np.zeros(1, np.uint8))
    attempt(_native.uniform53, 0, 2**63 - 1, 0, np.zeros(5))
    attempt(_native.adam_step, *[np.zeros(0, np.float32)] * 4, 0.1, 0.9, 0.9, 0.0, 1)
    attempt(_native.snn_forward, (16, 2**40, 4, 20, 1e-3, 1e-3, 1e-3, 0, 5.0), ev._abi(),
            None, 6, w1, w2, np.empty(24, np.float32))
    attempt(_native.snn_forward, (16, 5, 4, 20, 1e-3, 1e-3, 1e-3, 0, 5.0), ev._abi(),
            None, 0, w1, w2, np.empty(0, np.float32))
    print("survived", ok, errors)
""")


def test_nasty_inputs_do_not_kill_the_interpreter():
    out = subprocess.run([sys.executable, "-c", NASTY], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, (out.returncode, out.stdout[-2000:], out.stderr[-4000:])
    assert "survived" in out.stdout

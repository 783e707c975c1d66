"""Property-based robustness fuzzing of spikeloc's public API and raw kernel entry points.

Run as a script (python/tests/test_fuzz.py runs it in a subprocess, so that a segfault or an
abort is seen as the process dying, with faulthandler's traceback, instead of killing pytest):

    python python/tests/fuzz_robustness.py [--scale 1.0] [--only NAME ...]

Targets: the raw entry points (random and mutated arguments, corrupted event lists, boundary
values in the config / options / params tuples, and valid calls while another thread writes
hostile values into every array they were given) and the public API (Stimulus and its data
options, SpikeEvents, SNN with its research variants, recurrence, several layers and delays,
MembraneOnly (with delays), EPropNetwork and its BPTT view, optimisers,
train / evaluate, ablation and tuning curves, the N-MNIST readers on random bytes, files,
directories and structured arrays, and damaged model files for sl.load and
EPropNetwork.load), and hostile checkpoint files (absurd sizes in headers, members of absurd
decompressed size, damaged zip directories and .npy headers, deep or bloated JSON), which
must fail with CheckpointError within a memory bound.

Every call gets random shapes, dtypes, layouts and values (NaN, infinities, zero sizes, sizes
far too large to allocate, corrupted event lists, wrong types) and must return or raise one of
ALLOWED. Hypothesis runs derandomized (fixed seed per target, no example database), so the
cases are the same on every run. The process runs under an address-space limit, so "huge"
sizes fail to allocate instead of being overcommitted and then touched. The last line printed
is a JSON summary: cases per target and the unexpected exceptions (deduplicated).
"""

from __future__ import annotations

import argparse
import atexit
import faulthandler
import functools
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import traceback
import warnings
import zlib

faulthandler.enable()

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import spikeloc as sl  # noqa: E402
from spikeloc import _native  # noqa: E402
from spikeloc.evaluation import cross_entropy, labels_from_ipd  # noqa: E402

ALLOWED = (ValueError, TypeError, MemoryError, OverflowError)
#: train() documents NonFiniteLossError (a FloatingPointError) for a batch whose loss,
#: gradient or optimiser step is not finite.
TRAIN_ERRORS = (sl.NonFiniteLossError,)
ADDRESS_SPACE_LIMIT = 3 << 30  # bytes

# ---------------------------------------------------------------------------- value strategies

NAN, INF = float("nan"), float("inf")
INTS = st.one_of(
    st.integers(-3, 40),
    st.sampled_from([-1, -2**31, -2**63, 2**31 - 1, 2**31, 2**32, 2**40, 2**62, 2**63 - 1,
                     2**63, 2**64 - 1, 2**64, 10**30]),
)
FLOATS = st.one_of(
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-3, 0.02, 0.1, 0.5, 1.0, 5.0, 20.0, 600.0, -1.0, NAN, INF,
                     -INF, 1e300, -1e300, 5e-324, 1e-300]),
)
DTYPES = ["uint8", "bool", "int8", "uint16", "int32", "int64", "uint64", "float16", "float32",
          "float64", "complex64", ">f4", ">i8", ">u2", "object"]
SPECIAL = np.array([0, 1, -1, 2, 255, 65535, 2**31, NAN, INF, -INF, 1e30, -0.0, 0.5],
                   dtype=object)


@st.composite
def arrays(draw, dtypes=DTYPES, max_dims=4, max_side=6):
    """A NumPy array of random dtype, shape, contents and memory layout."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=0, max_size=max_dims)))
    size = int(np.prod(shape)) if shape else 1
    fill = draw(st.sampled_from(["zeros", "ones", "small", "special", "random"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if fill == "zeros":
        vals = np.zeros(size)
    elif fill == "ones":
        vals = np.ones(size)
    elif fill == "small":
        vals = rng.integers(-2, 3, size).astype(float)
    elif fill == "special":
        vals = rng.choice(SPECIAL, size)
    else:
        vals = rng.normal(0, 100, size)
    with np.errstate(all="ignore"):
        try:
            arr = np.array(list(vals), dtype=object).astype(dtype).reshape(shape)
        except (ValueError, OverflowError, TypeError):
            arr = np.zeros(shape, dtype=dtype)
    layout = draw(st.sampled_from(["c", "c", "c", "strided", "readonly", "misaligned",
                                   "fortran"]))
    if layout == "strided" and arr.ndim:
        big = np.repeat(arr, 2, axis=-1)
        arr = big[..., ::2]
    elif layout == "readonly":
        arr = arr.copy()
        arr.flags.writeable = False
    elif layout == "misaligned" and dtype != object and arr.size:
        raw = np.zeros(arr.nbytes + 1, dtype=np.uint8)
        view = raw[1:].view(dtype).reshape(arr.shape)
        view[...] = arr
        arr = view
    elif layout == "fortran":
        arr = np.asfortranarray(arr)
    return arr


SCALARS = st.one_of(INTS, FLOATS, st.none(), st.booleans(), st.text(max_size=3),
                    st.just(b"xy"), st.just(object()))
VALUES = st.one_of(SCALARS, arrays(), st.lists(INTS, max_size=4),
                   st.tuples(INTS, FLOATS), st.lists(FLOATS, max_size=3).map(tuple))

# ---------------------------------------------------------------------------- a small valid setup

STIM = sl.Stimulus(duration=0.01, anf_per_ear=3, num_classes=4, phase_offset="per_sample")
IPD, SPIKES = STIM.generate(5, seed=1, threads=1)
EVENTS = sl.SpikeEvents.from_dense(SPIKES, threads=1)
LABELS = STIM.labels(IPD)
SNN0 = sl.SNN.for_stimulus(STIM, n_hidden=3, tau_hidden=5e-3, threads=1)
MO0 = sl.MembraneOnly.for_stimulus(STIM, threads=1)
T, NIN, B = STIM.steps, STIM.n_in, 5


EP0 = sl.EPropNetwork.for_stimulus(STIM, n_hidden=3, threads=1)
# the general network: two layers (one recurrent), delays per synapse, Dale's law everywhere
NET0 = sl.SNN.for_stimulus(STIM, n_hidden=[3, 2], tau_hidden=5e-3, threads=1,
                           recurrent=[True, False], delays=sl.Delays(max_steps=2, per="synapse"),
                           dale=sl.Dale(0.5, layers="all"), dropout=0.2)


def f32(n):
    return np.zeros(n, np.float32)


def u8(n):
    return np.zeros(n, np.uint8)


def base_calls():
    """name -> (function, valid positional arguments), fresh outputs each time."""
    cfg = SNN0._abi_config(T)
    mcfg = MO0._abi_config(T)
    ev = EVENTS._abi()
    return {
        "uniform53": (_native.uniform53, [3, 0, 5, np.zeros(4)]),
        "events_to_dense": (_native.events_to_dense, [ev, np.zeros(B * T * NIN, np.uint8), 1]),
        "snn_forward": (_native.snn_forward, [cfg, ev, None, B, SNN0.w1, SNN0.w2, f32(B * 4),
                                              np.zeros(B * T * 3, np.uint8), f32(B * T * 4), 1]),
        "snn_loss_grad": (_native.snn_loss_grad, [cfg, ev, np.arange(B), B, LABELS, SNN0.w1,
                                                  SNN0.w2, np.zeros_like(SNN0.w1),
                                                  np.zeros_like(SNN0.w2), f32(B * 4), 1]),
        # the membrane-only network: spk_snn_* with n_hidden 0 (w1, grad_w1 empty)
        "snn_forward_mo": (_native.snn_forward, [mcfg, ev, None, B, f32(0), MO0.w, f32(B * 4),
                                                 None, f32(B * T * 4), 1]),
        "snn_loss_grad_mo": (_native.snn_loss_grad, [mcfg, ev, None, B, LABELS, f32(0), MO0.w,
                                                     f32(0), np.zeros_like(MO0.w), f32(B * 4),
                                                     1]),
        "adam_step": (_native.adam_step, [f32(6), f32(6), f32(6), f32(6), 0.01, 0.9, 0.999,
                                          1e-8, 1]),
        "sgd_step": (_native.sgd_step, [f32(6), f32(6), 0.1]),
        # data options, research variants, e-prop
        "stimulus_noisy": (_native.stimulus_noisy, [STIM._params(), IPD.copy(), np.zeros(B), 3,
                                                    0, 0.2, u8(B * T * NIN), 1]),
        # event lists built by the kernels (issue 12)
        "stimulus_events": (_native.stimulus_events, [STIM._params(), IPD.copy(), np.zeros(B),
                                                      3, 0, 0.2, 1]),
        "events_from_dense": (_native.events_from_dense, [SPIKES, B, T, NIN, 1]),
        "eprop_forward": (_native.eprop_forward, [
            EP0._abi_config(T), ev, None, B, LABELS, EP0.w_in.copy(), EP0.w_rec.copy(),
            EP0.w_out.copy(), EP0.b.copy(), EP0.feedback_weights.copy(), f32(B * 4),
            f32(B * T * 3), u8(B * T * 3), f32(B * T * 3), f32(B * T * 3), f32(B * T * 4), 1]),
        "eprop_loss_grad": (_native.eprop_loss_grad, [
            EP0._abi_config(T), ev, np.arange(B), B, LABELS, EP0.w_in.copy(), EP0.w_rec.copy(),
            EP0.w_out.copy(), EP0.b.copy(), EP0.feedback_weights.copy(),
            EP0.masks["w_in"].copy(), EP0.masks["w_rec"].copy(), EP0.masks["w_out"].copy(),
            np.zeros_like(EP0.w_in), np.zeros_like(EP0.w_rec), np.zeros_like(EP0.w_out),
            np.zeros_like(EP0.b), f32(B * 4), 1]),
        "network_forward": (_native.network_forward, [
            NET0._general.abi(T), ev, None, B, NET0._general_params(), NET0._signs_flat.copy(),
            f32(B * 4), u8(B * T * 5), f32(B * T * 4), 1]),
        "network_loss_grad": (_native.network_loss_grad, [
            NET0._general.abi(T, 7), ev, np.arange(B), B, LABELS, NET0._general_params(),
            NET0._signs_flat.copy(), np.zeros_like(NET0._general_params()), f32(B * 4), 1]),
        "abi_version": (_native.abi_version, []),
        "default_threads": (_native.default_threads, []),
        "last_error": (_native.last_error, []),
    }


#: the fuzzed calls (an entry point may have several: snn_forward and snn_forward_mo)
NATIVE_NAMES = sorted(base_calls())


def entry_point(name: str) -> str:
    """The extension function behind fuzzed call ``name``."""
    return base_calls()[name][0].__name__

# ---------------------------------------------------------------------------- bookkeeping

COUNTS: dict = {}
EXAMPLES: dict = {}
RETURNED: dict = {}
UNEXPECTED: dict = {}


def attempt(target, fn, *args, _also=(), _allowed=ALLOWED, **kw):
    """Call and classify: allowed exceptions (``_allowed``, by default ALLOWED, plus
    ``_also``: types a function documents, such as FileNotFoundError for a missing file) are
    fine, others are recorded (not raised)."""
    COUNTS[target] = COUNTS.get(target, 0) + 1
    try:
        out = fn(*args, **kw)
        RETURNED[target] = RETURNED.get(target, 0) + 1
        return out
    except tuple(_allowed) + tuple(_also):
        return None
    except Exception as exc:  # noqa: BLE001 - recorded for the report
        sig = (target, type(exc).__name__, str(exc)[:120])
        if sig not in UNEXPECTED:
            tb = traceback.format_exc(limit=-3)
            UNEXPECTED[sig] = {"target": target, "type": type(exc).__name__,
                               "message": str(exc)[:300], "call": repr((fn, args, kw))[:600],
                               "traceback": tb[-1500:]}
        return None


def counted(fn):
    """Counts the examples (cases) hypothesis runs of a target."""
    @functools.wraps(fn)
    def wrapper(*args, **kw):
        EXAMPLES[fn.__name__] = EXAMPLES.get(fn.__name__, 0) + 1
        return fn(*args, **kw)
    return wrapper


def fuzz(n):
    return settings(max_examples=max(1, int(n * SCALE)), derandomize=True, database=None,
                    deadline=None, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck), print_blob=False)


# ---------------------------------------------------------------------------- raw entry points


@st.composite
def mutated_args(draw):
    name = draw(st.sampled_from(NATIVE_NAMES))
    fn, args = base_calls()[name]
    args = list(args)
    for _ in range(draw(st.integers(0, 3))):
        if not args:
            break
        i = draw(st.integers(0, len(args) - 1))
        if isinstance(args[i], tuple) and args[i] and draw(st.booleans()):
            t = list(args[i])
            j = draw(st.integers(0, len(t) - 1))
            t[j] = draw(VALUES)
            args[i] = tuple(t)
        else:
            args[i] = draw(VALUES)
    cut = draw(st.sampled_from([None, None, None, None, "drop", "extra"]))
    if cut == "drop" and args:
        args = args[:draw(st.integers(0, len(args) - 1))]
    elif cut == "extra":
        args = args + [draw(VALUES)]
    return name, fn, args


@given(mutated_args())
@counted
def native_mutated(case):
    name, fn, args = case
    attempt("native_mutated", fn, *args)


@given(st.sampled_from(NATIVE_NAMES), st.lists(VALUES, max_size=11),
       st.dictionaries(st.sampled_from(["threads", "index", "logits", "x", "bogus"]), VALUES,
                       max_size=2))
@counted
def native_random(name, args, kwargs):
    fn = base_calls()[name][0]
    attempt("native_random", fn, *args, **kwargs)


EVENT_FIELDS = ["n_samples", "steps", "n_in", "n_events", "step_ptr", "step_events",
                "input_ptr", "input_events"]


@st.composite
def corrupted_events(draw):
    t = list(EVENTS._abi())
    t = t[:4] + [a.copy() for a in t[4:]]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["element", "element", "field", "shrink", "shuffle"]))
        i = draw(st.integers(4, 7)) if kind != "field" else draw(st.integers(0, 7))
        vec = isinstance(t[i], np.ndarray) and t[i].ndim == 1 and len(t[i]) > 0
        if kind == "element" and vec and t[i].dtype.kind in "iu":
            j = draw(st.integers(0, len(t[i]) - 1))
            v = draw(st.one_of(st.integers(-5, 200), INTS))
            info = np.iinfo(t[i].dtype)
            t[i][j] = min(max(v, info.min), info.max)
        elif kind == "field":
            t[i] = draw(st.one_of(INTS, arrays(dtypes=["int64", "uint16", "float64"])))
        elif kind == "shrink" and vec:
            k = draw(st.integers(0, len(t[i]) - 1))
            t[i] = t[i][:k]
            if i in (5, 7) and draw(st.booleans()):
                t[3] = k
        elif kind == "shuffle" and vec:
            t[i] = np.random.default_rng(draw(st.integers(0, 99))).permutation(t[i])
    return tuple(t)


#: position of the events argument of each entry point that takes an event list
EVENT_ARG = {"events_to_dense": 0, "snn_forward": 1, "snn_loss_grad": 1, "snn_forward_mo": 1,
             "snn_loss_grad_mo": 1, "eprop_forward": 1, "eprop_loss_grad": 1, "network_forward": 1,
             "network_loss_grad": 1}


@given(corrupted_events(), st.sampled_from(sorted(EVENT_ARG)),
       st.one_of(st.none(), st.lists(st.integers(-1, B), min_size=B, max_size=B)),
       st.integers(0, 3))
@counted
def events_corrupted(ev, name, index, threads):
    idx = None if index is None else np.array(index, dtype=np.int64)
    fn, args = base_calls()[name]
    args = list(args)
    pos = EVENT_ARG[name]
    args[pos] = ev
    if name != "events_to_dense":
        args[pos + 1] = idx
    args[-1] = threads
    attempt("events_corrupted", fn, *args)


# ---------------------------------------------------------------------------- concurrent writes

#: values another thread writes into a call's arrays: out of range for every index and size
HOSTILE = {np.dtype(np.int64): np.array([-1, 0, 1, 5, 2**31, 2**40, -2**62, 2**63 - 1]),
           np.dtype(np.uint16): np.array([0, 1, 15, 16, 2**15, 2**16 - 1], np.uint16),
           np.dtype(np.uint8): np.array([0, 1, 2, 255], np.uint8),
           np.dtype(np.float32): np.array([0, 1, -1, NAN, INF, -INF, 1e30], np.float32),
           np.dtype(np.float64): np.array([0, 1, -1, NAN, INF, -INF, 1e300, 5e-324])}
CONCURRENT: set = set()


def _writable(value):
    """``value`` with every array, also inside (named) tuples, replaced by a writable copy."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_writable(v) for v in value)
    return value


def _arrays_in(values):
    for v in values:
        if isinstance(v, np.ndarray):
            yield v
        elif isinstance(v, tuple):
            yield from _arrays_in(v)


def _scribble(arrays, rng, stop):
    """Writes hostile values at random places of ``arrays`` until ``stop`` is set."""
    flat = [a.reshape(-1) for a in arrays if a.size]
    while not stop.is_set():
        for a in flat:
            a[rng.integers(0, a.size, 4)] = rng.choice(HOSTILE[a.dtype], 4)
        time.sleep(0)


@given(st.integers(0, 2**32 - 1))
@counted
def native_concurrent(seed):
    """Every entry point, called with valid arguments while a thread writes hostile values
    into all the arrays it was given (inputs, outputs, event lists)."""
    rng = np.random.default_rng(seed)
    for name in NATIVE_NAMES:
        fn, args = base_calls()[name]
        args = [_writable(a) for a in args]
        stop = threading.Event()
        writer = threading.Thread(target=_scribble, args=(list(_arrays_in(args)), rng, stop))
        writer.start()
        try:
            for _ in range(10):
                attempt("native_concurrent", fn, *args)
        finally:
            stop.set()
            writer.join()
        CONCURRENT.add(entry_point(name))


# ---------------------------------------------------------------------------- public API

STIM_FIELDS = {
    "dt": FLOATS, "duration": FLOATS, "freq": FLOATS, "anf_per_ear": INTS,
    "rate_max": FLOATS, "envelope_power": FLOATS, "num_classes": INTS,
    "null_phase_delays": st.one_of(st.booleans(), INTS),
    "phase_offset": st.one_of(st.sampled_from(["per_set", "per_sample", "bogus"]), FLOATS),
}


@st.composite
def stimuli(draw):
    """Mostly-valid Stimulus keyword arguments with a few fields randomised."""
    kw = {"duration": 0.01, "anf_per_ear": 3, "num_classes": 4}
    for name in draw(st.lists(st.sampled_from(sorted(STIM_FIELDS)), max_size=3, unique=True)):
        kw[name] = draw(STIM_FIELDS[name])
    return kw


@given(stimuli(), st.sampled_from(["generate", "spikes_for", "draw_ipd", "phases", "labels",
                                   "midpoints", "abs_error_deg", "replace"]),
       st.one_of(INTS, st.integers(0, 6)), INTS, st.one_of(st.integers(0, 3), INTS),
       st.one_of(st.none(), st.integers(0, 3), INTS), arrays(max_dims=2))
@counted
def stimulus_api(kw, method, n, seed, first, threads, arr):
    stim = attempt("stimulus_api", sl.Stimulus, **kw)
    if stim is None:
        return
    if method == "generate":
        attempt("stimulus_api", stim.generate, n, seed, first, threads)
    elif method == "spikes_for":
        attempt("stimulus_api", stim.spikes_for, arr, seed, first, threads)
    elif method == "draw_ipd":
        attempt("stimulus_api", stim.draw_ipd, n, seed, first)
    elif method == "phases":
        attempt("stimulus_api", stim.phases, n, seed, first)
    elif method == "labels":
        attempt("stimulus_api", stim.labels, arr)
    elif method == "midpoints":
        attempt("stimulus_api", stim.midpoints, arr)
    elif method == "abs_error_deg":
        attempt("stimulus_api", stim.abs_error_deg, arr, arr)
    else:
        attempt("stimulus_api", stim.replace, dt=n)


@given(arrays(dtypes=["uint8", "bool", "float32", "int64", "uint16", "object"], max_side=5),
       st.one_of(st.none(), st.integers(0, 3), INTS), st.lists(VALUES, min_size=7, max_size=7),
       st.booleans())
@counted
def events_api(dense, threads, ctor, use_valid_ptrs):
    ev = attempt("events_api", sl.SpikeEvents.from_dense, dense, threads)
    if ev is not None:
        attempt("events_api", ev.to_dense, threads)
        attempt("events_api", sl.as_events, ev)
    if use_valid_ptrs:
        ctor = [B, T, NIN, EVENTS.step_ptr, EVENTS.step_events, EVENTS.input_ptr, ctor[6]]
    e2 = attempt("events_api", sl.SpikeEvents, *ctor)
    if e2 is not None:
        attempt("events_api", e2.to_dense, 1)
        attempt("events_api", SNN0.forward, e2)


SNN_KW = {"n_in": INTS, "n_hidden": INTS, "n_out": INTS, "dt": FLOATS, "tau_hidden": FLOATS,
          "tau_output": FLOATS, "readout": st.sampled_from(["mean", "sum", "max", "bogus", 1]),
          "beta": FLOATS, "seed": INTS, "threads": st.one_of(st.none(), INTS)}


@st.composite
def model_inputs(draw):
    spikes = draw(st.one_of(st.just(EVENTS), st.just(SPIKES),
                            arrays(dtypes=["uint8", "bool", "float32", "int64"], max_side=6)))
    labels = draw(st.one_of(st.just(LABELS), arrays(dtypes=["int64", "int32", "float64", "bool",
                                                            "uint64"], max_dims=2)))
    index = draw(st.one_of(st.none(), st.just(np.arange(B)),
                           arrays(dtypes=["int64", "int32", "uint64", "float64"], max_dims=2)))
    return spikes, labels, index


@given(st.lists(st.sampled_from(sorted(SNN_KW)), max_size=3, unique=True).flatmap(
           lambda names: st.fixed_dictionaries({k: SNN_KW[k] for k in names})),
       model_inputs(), st.sampled_from(["forward", "loss_and_grad", "predict", "logits",
                                         "set_w1", "set_w2", "threads"]),
       arrays(dtypes=["float32", "float64", "int64", "object"], max_dims=3))
@counted
def snn_api(over, inputs, method, arr):
    kw = {"n_in": NIN, "n_hidden": 3, "n_out": 4, "dt": 1e-3, "tau_hidden": 5e-3,
          "tau_output": 5e-3, "threads": 1}
    kw.update(over)
    n_in, n_hidden, n_out = kw.pop("n_in"), kw.pop("n_hidden"), kw.pop("n_out")
    net = attempt("snn_api", sl.SNN, n_in, n_hidden, n_out, **kw)
    if net is None:
        net = sl.SNN.for_stimulus(STIM, n_hidden=3, threads=1)
    spikes, labels, index = inputs
    if method == "forward":
        attempt("snn_api", net.forward, spikes, index)
    elif method == "loss_and_grad":
        attempt("snn_api", net.loss_and_grad, spikes, labels, index, return_logits=True)
    elif method == "predict":
        attempt("snn_api", net.predict, spikes, index)
    elif method == "logits":
        attempt("snn_api", net.logits, spikes, index)
    elif method == "set_w1":
        attempt("snn_api", setattr, net, "w1", arr)
        attempt("snn_api", net.forward, EVENTS)
    elif method == "set_w2":
        attempt("snn_api", setattr, net, "w2", arr)
        attempt("snn_api", net.loss_and_grad, EVENTS, LABELS)
    else:
        attempt("snn_api", setattr, net, "threads", kw.get("seed", 2))
        attempt("snn_api", net.forward, EVENTS)


MO_KW = {"n_in": INTS, "n_out": INTS, "dt": FLOATS, "tau": FLOATS,
         "readout": st.sampled_from(["mean", "sum", "max", "bogus", None]), "seed": INTS,
         "threads": st.one_of(st.none(), INTS)}


@given(st.lists(st.sampled_from(sorted(MO_KW)), max_size=3, unique=True).flatmap(
           lambda names: st.fixed_dictionaries({k: MO_KW[k] for k in names})),
       model_inputs(), st.sampled_from(["forward", "loss_and_grad", "predict", "set_w"]),
       arrays(dtypes=["float32", "float64", "object"], max_dims=3))
@counted
def mo_api(over, inputs, method, arr):
    kw = {"n_in": NIN, "n_out": 4, "dt": 1e-3, "tau": 5e-3, "threads": 1}
    kw.update(over)
    n_in, n_out = kw.pop("n_in"), kw.pop("n_out")
    net = attempt("mo_api", sl.MembraneOnly, n_in, n_out, **kw)
    if net is None:
        net = sl.MembraneOnly.for_stimulus(STIM, threads=1)
    spikes, labels, index = inputs
    if method == "forward":
        attempt("mo_api", net.forward, spikes, index)
    elif method == "loss_and_grad":
        attempt("mo_api", net.loss_and_grad, spikes, labels, index)
    elif method == "predict":
        attempt("mo_api", net.predict, spikes, index)
    else:
        attempt("mo_api", setattr, net, "w", arr)
        attempt("mo_api", net.forward, EVENTS)


@given(st.sampled_from(["adam", "sgd"]),
       st.one_of(st.just("model"), st.dictionaries(st.sampled_from(["w", "v"]),
                                                   arrays(dtypes=["float32", "float64"],
                                                          max_dims=2), max_size=2),
                 VALUES),
       st.one_of(FLOATS, VALUES), st.one_of(st.just((0.9, 0.999)), st.tuples(FLOATS, FLOATS),
                                            VALUES),
       st.one_of(FLOATS, VALUES),
       st.one_of(st.just("match"), st.dictionaries(st.sampled_from(["w", "v", "w1"]),
                                                   arrays(max_dims=2), max_size=2), VALUES),
       st.integers(1, 3))
@counted
def optim_api(kind, params, lr, betas, eps, grads, steps):
    if isinstance(params, str) and params == "model":
        params = sl.MembraneOnly.for_stimulus(STIM, threads=1)
    if kind == "adam":
        opt = attempt("optim_api", sl.Adam, params, lr, betas, eps)
    else:
        opt = attempt("optim_api", sl.SGD, params, lr)
    if opt is None:
        return
    if isinstance(grads, str) and grads == "match":
        grads = {k: np.full(v.shape, lr if isinstance(lr, float) else 1.0, dtype=np.float64)
                 for k, v in opt.params.items()}
    for _ in range(steps):
        # a step that would make a weight non-finite is undone and reported (documented)
        attempt("optim_api", opt.step, grads, _also=(sl.optim.NonFiniteStepError,))


@given(model_inputs(), arrays(dtypes=["float64", "float32", "int64", "object", "complex64"],
                              max_dims=2),
       st.sampled_from(["evaluate", "evaluate_labels", "evaluate_nostim", "cross_entropy",
                        "labels_from_ipd", "train"]),
       arrays(dtypes=["float32", "float64", "int64"], max_dims=3), st.one_of(INTS, VALUES),
       st.integers(0, 2))
@counted
def evaluate_api(inputs, ipd, what, logits, num, epochs):
    spikes, labels, index = inputs
    net = sl.SNN.for_stimulus(STIM, n_hidden=3, threads=1)
    if what == "evaluate":
        attempt("evaluate_api", sl.evaluate, net, ipd, spikes, STIM)
    elif what == "evaluate_labels":
        attempt("evaluate_api", sl.evaluate, net, IPD if ipd.size % 2 else ipd, spikes, STIM,
                labels=labels)
    elif what == "evaluate_nostim":
        attempt("evaluate_api", sl.evaluate, net, ipd, spikes)
    elif what == "cross_entropy":
        attempt("evaluate_api", cross_entropy, logits, labels)
    elif what == "labels_from_ipd":
        attempt("evaluate_api", labels_from_ipd, ipd, num)
    else:
        attempt("evaluate_api", sl.train, net, ipd if ipd.size % 3 else IPD, spikes,
                stimulus=STIM, epochs=epochs, batch_size=num if isinstance(num, int) else 2,
                progress=False, _also=TRAIN_ERRORS)


# ---------------------------------------------------------------------------- configurations
# Typed boundary values for the fields of the config / options / params tuples of the kernel
# calls: right types, wrong values (the semantic checks behind the type checks).

BOUNDARY_INTS = st.one_of(st.integers(-3, 8), st.sampled_from(
    [0, 1, 65535, 65536, 2**31 - 1, 2**31, -2**31, 2**62, 2**63 - 1, 2**64 - 1]))
BOUNDARY_FLOATS = st.one_of(FLOATS, st.floats(-1e-2, 1e-2), st.sampled_from(
    [1e-9, 1e-30, 3e38, 4e38, 1e200, -1e-9]))
SPECIAL_F = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e30, 4e38, NAN, INF, -INF])


@st.composite
def like(draw, value):
    """A value of the same kind as ``value`` (int, float, array of its dtype and length, or
    None) but with boundary or invalid contents."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (int, np.integer)):
        return draw(BOUNDARY_INTS)
    if isinstance(value, float):
        return draw(BOUNDARY_FLOATS)
    if isinstance(value, np.ndarray) or value is None:
        kind = draw(st.sampled_from(["special", "special", "length", "none", "random"]))
        n = value.size if isinstance(value, np.ndarray) else 3
        dtype = value.dtype if isinstance(value, np.ndarray) else np.dtype(np.float32)
        if kind == "special" or (kind == "length" and n == 0):
            rng = np.random.default_rng(draw(st.integers(0, 999)))
            with np.errstate(all="ignore"):
                vals = rng.choice(SPECIAL_F, n)
                if dtype.kind in "iub":
                    vals = np.nan_to_num(vals, posinf=2, neginf=-1)
                return vals.astype(dtype)
        if kind == "length":
            return np.zeros(draw(st.sampled_from([0, n - 1, n + 1])), dtype)
        if kind == "none":
            return None
        return draw(arrays(max_dims=2))
    return draw(VALUES)


#: kernel calls whose first argument is a tuple of fields
CONFIG_CALLS = ["stimulus_noisy", "stimulus_events", "snn_forward", "snn_loss_grad", "snn_forward_mo",
                "snn_loss_grad_mo", "eprop_forward", "eprop_loss_grad", "network_forward",
                "network_loss_grad"]


@given(st.sampled_from(CONFIG_CALLS), st.data())
@counted
def native_configs(name, data):
    fn, args = base_calls()[name]
    args = list(args)
    tuples = [i for i, a in enumerate(args) if isinstance(a, tuple) and i < 2]
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(tuples + ["scalar"]))
        if where == "scalar":  # batch, seed, delay noise, threads, ...
            scalars = [i for i, a in enumerate(args) if isinstance(a, (int, float))]
            i = data.draw(st.sampled_from(scalars))
            args[i] = data.draw(like(args[i]))
        else:
            t = list(args[where])
            j = data.draw(st.integers(0, len(t) - 1))
            t[j] = data.draw(like(t[j]))
            args[where] = tuple(t)
    attempt("native_configs", fn, *args)


# ---------------------------------------------------------------------------- research variants

DALE = st.fixed_dictionaries({}, optional={
    "ie_ratio": st.one_of(st.floats(0, 1), FLOATS, VALUES),
    "inhibitory": st.sampled_from(["first", "random", "bogus", None, 1]),
    "layers": st.sampled_from([("w1",), ("w2",), ("w1", "w2"), "w1", (), ("w3",), 3, None]),
    "excitatory_only": st.sampled_from([(), ("w1",), "w2", ("bogus",), 1]),
    "bogus": st.just(1)})


@st.composite
def tau_values(draw, n):
    """A time constant [s]: a float, or an array of (about) ``n`` values."""
    if draw(st.booleans()):
        return draw(st.one_of(st.sampled_from([5e-3, 2e-3, 20e-3]), FLOATS))
    size = draw(st.sampled_from([n, n, n, n - 1, n + 1, 0]))
    vals = draw(st.lists(st.one_of(st.sampled_from([2e-3, 5e-3, 1e-2]), FLOATS),
                         min_size=max(size, 0), max_size=max(size, 0)))
    dtype = draw(st.sampled_from(["float32", "float64", "int64", "complex64"]))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array(vals, dtype=np.float64).astype(dtype)


VARIANT_KW = {
    "reset": st.sampled_from(["delayed", "same_step", "subtractive", "zero", "bogus", 1, None]),
    "surrogate": st.sampled_from(["sigmoid", "fast_sigmoid", "arctan", "piecewise_linear",
                                  "relu", 0]),
    "learn_tau": st.sampled_from([False, True, "hidden", "output", "both", None, 2]),
    "tau_min": st.one_of(st.none(), FLOATS),
    "tau_sigma": st.one_of(st.sampled_from([0.0, 1e-3]), FLOATS),
    "tau_var_penalty": st.one_of(st.sampled_from([0.0, 0.1]), FLOATS),
    "adapt_tau": st.one_of(st.none(), st.just(5e-3), FLOATS),
    "adapt_strength": FLOATS,
    "dale": st.one_of(st.none(), DALE, DALE.map(lambda d: ("object", d)), VALUES),
    "rate_regularizer": st.one_of(st.none(), st.tuples(FLOATS, FLOATS),
                                  st.tuples(st.none(), FLOATS),
                                  st.fixed_dictionaries({"c": FLOATS, "r_max": FLOATS}),
                                  VALUES),
    "dropout": st.one_of(st.floats(0, 1), FLOATS),
    "readout": st.sampled_from(["mean", "sum", "max", "spike_count", "bogus"]),
    "tau_hidden": tau_values(3), "tau_output": tau_values(4),
    "beta": FLOATS,
}


@given(st.lists(st.sampled_from(sorted(VARIANT_KW)), min_size=1, max_size=4, unique=True)
       .flatmap(lambda names: st.fixed_dictionaries({k: VARIANT_KW[k] for k in names})),
       model_inputs(),
       st.sampled_from(["forward", "loss_and_grad", "predict", "logits", "after_step", "eff",
                        "set_w1", "set_tau", "save_load", "train"]),
       arrays(dtypes=["float32", "float64", "int64", "object"], max_dims=2))
@counted
def variant_api(over, inputs, method, arr):
    kw = {"reset": "subtractive", "tau_hidden": 5e-3, "threads": 1}
    kw.update(over)
    if isinstance(kw.get("dale"), tuple) and kw["dale"] and kw["dale"][0] == "object":
        kw["dale"] = attempt("variant_api", sl.Dale, **kw["dale"][1])
    net = attempt("variant_api", sl.SNN.for_stimulus, STIM, 3, **kw)
    if net is None:
        net = VAR0_FACTORY()
    spikes, labels, index = inputs
    if method == "forward":
        attempt("variant_api", net.forward, spikes, index)
    elif method == "loss_and_grad":
        attempt("variant_api", net.loss_and_grad, spikes, labels, index, return_logits=True)
    elif method == "predict":
        attempt("variant_api", net.predict, spikes, index)
    elif method == "logits":
        attempt("variant_api", net.logits, spikes, index)
    elif method == "after_step":
        attempt("variant_api", net.after_step)
        attempt("variant_api", lambda: (net.tau_hidden, net.tau_output, repr(net), net.config))
    elif method == "eff":
        attempt("variant_api", lambda: (net.w1_eff, net.w2_eff, net.dale_signs))
    elif method == "set_w1":
        attempt("variant_api", setattr, net, "w1", arr)
        attempt("variant_api", net.loss_and_grad, EVENTS, LABELS)
    elif method == "set_tau":
        params = net.parameters()
        for name in ("tau_hidden", "tau_output"):
            if name in params and arr.size:
                with np.errstate(all="ignore"):
                    params[name][...] = np.resize(np.asarray(arr, dtype=object).astype(
                        np.float64, casting="unsafe"), params[name].shape) \
                        if arr.dtype != object else -1.0
        attempt("variant_api", net.loss_and_grad, EVENTS, LABELS)
        attempt("variant_api", net.forward, EVENTS)
    elif method == "save_load":
        path = os.path.join(TMP, "variant.npz")
        if attempt("variant_api", sl.save, net, path, stimulus=STIM) is not None:
            back = attempt("variant_api", sl.load, path)
            if back is not None:
                attempt("variant_api", back.loss_and_grad, EVENTS, LABELS)
    else:
        attempt("variant_api", sl.train, net, IPD, spikes, stimulus=STIM, epochs=1,
                batch_size=2, progress=False, _also=TRAIN_ERRORS)


def VAR0_FACTORY():
    return sl.SNN.for_stimulus(STIM, n_hidden=3, tau_hidden=5e-3, threads=1,
                               reset="same_step", dale=sl.Dale(0.5), dropout=0.2,
                               learn_tau=True)


# ---------------------------------------------------------------------------- delays, recurrence, depth

DELAYS = st.fixed_dictionaries({}, optional={
    "max_steps": st.one_of(st.integers(0, 5), INTS, FLOATS),
    "per": st.sampled_from(["input", "synapse", "unit", None, 1]),
    "learn": st.sampled_from([True, False, 1, "yes", None]),
    "init": st.one_of(st.sampled_from(["uniform", "zero", "bogus"]), FLOATS),
    "bogus": st.just(1)})

GENERAL_KW = {
    "n_hidden": st.one_of(st.sampled_from([3, [3], [3, 2], [2, 2, 2], [], [3, 0], "3", [3.5]]),
                          st.lists(INTS, max_size=3)),
    "recurrent": st.one_of(st.booleans(), st.sampled_from([[True], [False, True], [True, True],
                                                           "yes", 1, None, [1, 0]])),
    "delays": st.one_of(st.none(), DELAYS.map(lambda d: ("object", d)), VALUES),
    "tau_hidden": st.one_of(tau_values(3), st.lists(tau_values(3), max_size=3)),
    "reset": VARIANT_KW["reset"], "readout": VARIANT_KW["readout"],
    "dale": st.one_of(st.none(), st.sampled_from([sl.Dale(0.5, layers="all"), sl.Dale(0.5)]),
                      DALE.map(lambda d: ("object", d))),
    "learn_tau": VARIANT_KW["learn_tau"], "dropout": VARIANT_KW["dropout"],
    "adapt_tau": VARIANT_KW["adapt_tau"], "rate_regularizer": VARIANT_KW["rate_regularizer"],
}


def _built(kw):
    """Builds the option objects a strategy left as ("object", fields)."""
    for key, cls in (("dale", sl.Dale), ("delays", sl.Delays)):
        if isinstance(kw.get(key), tuple) and kw[key] and kw[key][0] == "object":
            kw[key] = attempt("general_api", cls, **kw[key][1])
    return kw


@given(st.lists(st.sampled_from(sorted(GENERAL_KW)), min_size=1, max_size=4, unique=True)
       .flatmap(lambda names: st.fixed_dictionaries({k: GENERAL_KW[k] for k in names})),
       model_inputs(),
       st.sampled_from(["forward", "loss_and_grad", "logits", "after_step", "set_delays",
                        "set_weight", "save_load", "train", "membrane_only", "bptt"]),
       arrays(dtypes=["float32", "float64", "int64", "object"], max_dims=2))
@counted
def general_api(over, inputs, method, arr):
    """SNN with recurrence, several layers and delays (and the variants), MembraneOnly with
    delays, e-prop's BPTT view: random options, inputs and assignments."""
    kw = _built({"tau_hidden": 5e-3, "threads": 1, "recurrent": True, **over})
    net = attempt("general_api", sl.SNN.for_stimulus, STIM, kw.pop("n_hidden", 3), **kw)
    if net is None:
        net = NET0_FACTORY()
    spikes, labels, index = inputs
    if method == "forward":
        attempt("general_api", net.forward, spikes, index)
    elif method == "loss_and_grad":
        attempt("general_api", net.loss_and_grad, spikes, labels, index, return_logits=True)
    elif method == "logits":
        attempt("general_api", net.predict, spikes, index)
    elif method == "after_step":
        attempt("general_api", net.after_step)
        attempt("general_api", lambda: (net.tau_hidden, repr(net), net.config, net.dale_signs))
    elif method == "set_delays":  # a network without delays documents AttributeError
        attempt("general_api", setattr, net, "delays", arr, _also=(AttributeError,))
        attempt("general_api", net.loss_and_grad, EVENTS, LABELS)
    elif method == "set_weight":
        params = net.parameters()
        name = sorted(params)[len(arr.shape) % len(params)]
        if arr.dtype != object and arr.size:
            with np.errstate(all="ignore"):
                params[name][...] = np.resize(arr.astype(np.float64), params[name].shape)
        attempt("general_api", net.loss_and_grad, EVENTS, LABELS)
    elif method == "save_load":
        path = os.path.join(TMP, "general.npz")
        if attempt("general_api", sl.save, net, path) is not None:
            back = attempt("general_api", sl.load, path)
            if back is not None:
                attempt("general_api", back.loss_and_grad, EVENTS, LABELS)
    elif method == "membrane_only":
        mo = attempt("general_api", sl.MembraneOnly.for_stimulus, STIM,
                     delays=kw.get("delays", sl.Delays(max_steps=2)),
                     readout=kw.get("readout", "sum"), threads=1)
        if mo is not None:
            attempt("general_api", mo.loss_and_grad, spikes, labels, index)
            attempt("general_api", setattr, mo, "delays", arr, _also=(AttributeError,))
            attempt("general_api", mo.forward, spikes, index)
    elif method == "bptt":
        view = EP0.bptt(reset_in_gradient=bool(arr.size % 2))
        attempt("general_api", view.loss_and_grad, spikes, labels, index, return_logits=True)
    else:
        attempt("general_api", sl.train, net, IPD, spikes, stimulus=STIM, epochs=1,
                batch_size=2, progress=False, _also=TRAIN_ERRORS)


def NET0_FACTORY():
    return sl.SNN.for_stimulus(STIM, n_hidden=[3, 2], tau_hidden=5e-3, threads=1,
                               recurrent=True, delays=sl.Delays(max_steps=2))


# ---------------------------------------------------------------------------- data options

def _regenerators(stim):
    """name -> a ``regenerate`` argument for train."""
    return {
        "regenerator": lambda: stim.regenerator(IPD, 1, 0, 1),
        "wrong_count": lambda: (lambda epoch: stim.spikes_for(IPD[:3], 1, epoch=epoch)),
        "events": lambda: (lambda epoch: sl.SpikeEvents.from_dense(
            stim.spikes_for(IPD, 1, threads=1, epoch=epoch), threads=1)),
        "other_stimulus": lambda: (lambda epoch: SPIKES[:, :, :-1]),
        "not_callable": lambda: 3,
    }


EPOCHS = st.one_of(st.integers(0, 3), INTS, st.sampled_from([None, 1.5, "1", True]))


@given(stimuli(), st.sampled_from(["per_epoch", "per_epoch", "per_set", "per_sample", 0.25,
                                   "bogus"]),
       st.one_of(st.sampled_from([0.0, 0.1, 0.5]), FLOATS, VALUES),
       st.sampled_from(["generate", "spikes_for", "phases", "regenerator", "train"]),
       st.one_of(st.integers(0, 6), INTS), st.one_of(st.integers(0, 3), INTS), EPOCHS,
       arrays(max_dims=2),
       st.sampled_from(["regenerator", "wrong_count", "events", "other_stimulus",
                        "not_callable"]), st.integers(0, 2))
@counted
def data_options_api(kw, phase, noise, method, n, seed, epoch, arr, regen, epochs):
    kw = dict(kw, phase_offset=phase, phase_delay_noise=noise)
    stim = attempt("data_options_api", sl.Stimulus, **kw)
    if stim is None:
        stim = sl.Stimulus(duration=0.01, anf_per_ear=3, num_classes=4,
                           phase_offset="per_epoch", phase_delay_noise=0.2)
    ipd = IPD if arr.size % 2 else arr
    if method == "generate":
        attempt("data_options_api", stim.generate, n, seed, 0, 1, epoch=epoch)
    elif method == "spikes_for":
        attempt("data_options_api", stim.spikes_for, ipd, seed, n, 1, epoch=epoch)
    elif method == "phases":
        attempt("data_options_api", stim.phases, n, seed, 0, epoch=epoch)
    elif method == "regenerator":
        fn = attempt("data_options_api", stim.regenerator, ipd, seed, n, 1)
        if fn is not None:
            attempt("data_options_api", fn, epoch)
    else:
        same = stim.n_in == NIN and stim.steps == T
        net = sl.SNN.for_stimulus(stim if same else STIM, n_hidden=3, threads=1)
        attempt("data_options_api", sl.train, net, IPD, SPIKES if same else SPIKES,
                stimulus=STIM, epochs=epochs, batch_size=2, progress=False,
                regenerate=_regenerators(stim if same else STIM)[regen](), _also=TRAIN_ERRORS)


# ---------------------------------------------------------------------------- analysis

def _models():
    return {"snn": lambda: sl.SNN.for_stimulus(STIM, n_hidden=3, threads=1),
            "variant": VAR0_FACTORY,
            "membrane": lambda: sl.MembraneOnly.for_stimulus(STIM, threads=1),
            "eprop": lambda: sl.EPropNetwork.for_stimulus(STIM, n_hidden=3, threads=1),
            "object": object}


UNITS = st.one_of(st.none(), st.lists(st.integers(-1, 4), max_size=4), st.lists(INTS, max_size=2),
                  arrays(dtypes=["int64", "uint8", "float64", "bool", "object"], max_dims=2),
                  VALUES)
BINS = st.one_of(st.none(), st.integers(0, 6), INTS,
                 st.lists(st.one_of(st.floats(-2, 2), FLOATS), max_size=5),
                 arrays(dtypes=["float64", "int64", "object", "complex64"], max_dims=2), VALUES)


@given(st.sampled_from(["snn", "snn", "variant", "membrane", "eprop", "object"]),
       st.sampled_from(["evaluate", "ablation", "tuning_curves", "silenced"]), model_inputs(),
       st.one_of(st.just(IPD), arrays(dtypes=["float64", "float32", "int64", "object",
                                              "complex64"], max_dims=2)),
       UNITS, BINS, st.one_of(st.none(), FLOATS, VALUES), st.booleans())
@counted
def analysis_api(which, what, inputs, ipd, units, bins, dt, with_labels):
    model = _models()[which]()
    spikes, labels, index = inputs
    labels = labels if with_labels else None
    if what == "evaluate":
        attempt("analysis_api", sl.evaluate, model, ipd, spikes, STIM, labels=labels,
                silence=units)
    elif what == "ablation":
        attempt("analysis_api", sl.ablation, model, ipd, spikes, STIM, labels=labels,
                units=units)
    elif what == "tuning_curves":
        tc = attempt("analysis_api", sl.tuning_curves, model, ipd, spikes, bins=bins, dt=dt)
        if tc is not None:
            attempt("analysis_api", tc.order)
    else:
        m = attempt("analysis_api", sl.analysis.silenced, model, units)
        if m is not None:
            attempt("analysis_api", m.forward, EVENTS)


# ---------------------------------------------------------------------------- N-MNIST readers

from spikeloc import checkpoint  # noqa: E402
from spikeloc.datasets import nmnist  # noqa: E402


@st.composite
def nmnist_bytes(draw):
    """Bytes of an N-MNIST file: valid events, truncated, or garbage."""
    kind = draw(st.sampled_from(["valid", "valid", "truncated", "garbage", "empty", "coords"]))
    if kind == "garbage":
        return draw(st.binary(max_size=40))
    if kind == "empty":
        return b""
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 999)))
    ev = np.zeros((n, 5), np.uint8)
    ev[:, 0] = rng.integers(0, 34, n)
    ev[:, 1] = rng.integers(0, 34, n)
    ev[:, 2:] = rng.integers(0, 256, (n, 3))
    if kind == "coords":
        ev[rng.integers(0, n), rng.integers(0, 2)] = rng.integers(34, 256)
    data = ev.tobytes()
    if kind == "truncated":
        data = data[:draw(st.integers(0, len(data) - 1))]
    return data


FIELD_DTYPES = ["<i8", "<i4", "<u2", "u1", "?", "<f8", "<f4", "O", "U2", ">i8"]


@st.composite
def structured_events(draw):
    """A random structured array, mostly with the fields x, y, t, p."""
    names = list(draw(st.sampled_from([("x", "y", "t", "p"), ("x", "y", "t", "p"),
                                       ("t", "x", "p", "y", "extra"), ("x", "y", "t"),
                                       ("a",)])))
    dtype = np.dtype([(n, draw(st.sampled_from(FIELD_DTYPES[:4] * 3 + FIELD_DTYPES)))
                      for n in names])
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=2)))
    arr = np.zeros(shape, dtype)
    rng = np.random.default_rng(draw(st.integers(0, 999)))
    bad = draw(st.sampled_from([False, False, True]))
    for n in names:
        kind = dtype[n].kind
        hi = {"x": 34, "y": 34, "p": 2, "t": 400000}.get(n, 5)
        vals = rng.integers(-3 if bad else 0, hi + (40 if bad else 0), shape)
        if kind in "iu":
            info = np.iinfo(dtype[n])
            arr[n] = np.clip(vals, max(info.min, -3), info.max)
        elif kind == "b":
            arr[n] = vals % 2
        elif kind == "f":
            arr[n] = vals + (rng.choice([0.0, 0.5, NAN]) if bad else 0.0)
        elif kind == "O":
            arr[n] = rng.choice(np.array([1, "a", None, 2.5], dtype=object), shape) \
                if bad else vals
        else:
            arr[n] = vals.astype(str)
    return arr


BLOCKLISTS = st.one_of(
    st.none(), st.lists(st.integers(-2, 2315), max_size=4), st.lists(INTS, max_size=2),
    arrays(dtypes=["int64", "float64", "bool", "object", "uint16"], max_dims=2),
    st.lists(st.sampled_from(["0", "1", "2311", "2312", "-1", "1.5", "nan", "x", "1e3", "\n"]),
             max_size=6).map(lambda words: ("file", " ".join(words))),
    VALUES)


def _blocklist(value):
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "file":
        path = os.path.join(TMP, "blocklist.txt")
        with open(path, "w") as f:
            f.write(value[1])
        return path
    return value


STEPS = st.one_of(st.integers(1, 8), INTS.filter(lambda v: v < 2**20), FLOATS, VALUES)


@given(st.sampled_from(["decode", "read_events", "check_events", "pixel_index",
                        "read_blocklist", "active_pixels", "events_to_spikes", "directory",
                        "inactive_pixels"]),
       nmnist_bytes(), structured_events(), BLOCKLISTS, STEPS,
       st.one_of(st.sampled_from([nmnist.T_MAX_US, 1000.0, 1]), FLOATS, VALUES),
       st.one_of(VALUES, arrays(dtypes=["uint8", "int64", "float32"], max_dims=1)),
       st.data())
@counted
def nmnist_api(what, data, events, blocklist, steps, t_max, other, draw):
    blocklist = _blocklist(blocklist)
    also = (FileNotFoundError,)
    if what == "decode":
        attempt("nmnist_api", nmnist.decode, data if draw.draw(st.booleans()) else other)
        attempt("nmnist_api", nmnist.decode, np.frombuffer(data, np.uint8))
    elif what == "read_events":
        path = os.path.join(TMP, "sample.bin")
        with open(path, "wb") as f:
            f.write(data)
        target = draw.draw(st.sampled_from([path, path, path, os.path.join(TMP, "missing.bin"),
                                            TMP, other]))
        attempt("nmnist_api", nmnist.read_events, target, _also=also)
    elif what == "check_events":
        attempt("nmnist_api", nmnist.check_events, events if draw.draw(st.booleans())
                else other)
    elif what == "pixel_index":
        attempt("nmnist_api", nmnist.pixel_index, events)
    elif what == "read_blocklist":
        attempt("nmnist_api", nmnist.read_blocklist, blocklist, _also=also)
    elif what == "active_pixels":
        attempt("nmnist_api", nmnist.active_pixels, blocklist, _also=also)
    elif what == "events_to_spikes":
        attempt("nmnist_api", nmnist.events_to_spikes, events, steps, t_max=t_max,
                blocklist=blocklist, _also=also)
    elif what == "inactive_pixels":
        counts = draw.draw(st.one_of(
            st.just(np.arange(nmnist.N_PIXELS)),
            arrays(dtypes=["int64", "float64", "object"], max_dims=2)))
        attempt("nmnist_api", nmnist.inactive_pixels, counts,
                draw.draw(st.one_of(st.integers(-1, 3), FLOATS, VALUES)))
    else:  # a data set directory with random files
        root = tempfile.mkdtemp(dir=TMP)
        try:
            for _ in range(draw.draw(st.integers(0, 3))):
                label = draw.draw(st.sampled_from(["0", "1", "7", "x", "10"]))
                split = draw.draw(st.sampled_from(["Train", "Train", "Test"]))
                folder = os.path.join(root, split, label)
                os.makedirs(folder, exist_ok=True)
                name = draw.draw(st.sampled_from(["a.bin", "b.bin", "c.txt", "d.bin"]))
                with open(os.path.join(folder, name), "wb") as f:
                    f.write(draw.draw(nmnist_bytes()))
            split = draw.draw(st.one_of(st.sampled_from(["Train", "Test", "Other", ""]),
                                        VALUES))
            mpc = draw.draw(st.one_of(st.none(), st.integers(-1, 3), VALUES))
            fn = draw.draw(st.sampled_from(["list_files", "iterate", "load", "event_counts"]))
            if fn == "list_files":
                attempt("nmnist_api", nmnist.list_files, root, split, max_per_class=mpc,
                        _also=also)
            elif fn == "iterate":
                attempt("nmnist_api", lambda: list(nmnist.iterate(root, split,
                                                                  max_per_class=mpc)),
                        _also=also)
            elif fn == "load":
                attempt("nmnist_api", nmnist.load, root, split, steps=steps,
                        max_per_class=mpc, blocklist=blocklist, t_max=t_max, _also=also)
            else:
                attempt("nmnist_api", nmnist.event_counts, root, split, max_per_class=mpc,
                        _also=also)
        finally:
            shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------- e-prop

@st.composite
def masks(draw, shape):
    kind = draw(st.sampled_from(["ones", "random01", "twos", "other"]))
    if kind == "other":
        return draw(arrays(dtypes=["uint8", "bool", "int64", "float64", "object"], max_dims=2))
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    m = {"ones": np.ones(shape), "random01": rng.integers(0, 2, shape),
         "twos": rng.integers(-1, 3, shape)}[kind]
    return m.astype(draw(st.sampled_from(["uint8", "bool", "int64", "int8"])))


EPROP_KW = {
    "n_in": INTS, "n_hidden": st.one_of(st.integers(1, 4), INTS), "n_out": INTS,
    "dt": FLOATS, "tau_m": FLOATS, "tau_out": FLOATS, "v_th": FLOATS, "gamma": FLOATS,
    "feedback": st.sampled_from(["random", "symmetric", "bogus", None]),
    "loss": st.sampled_from(["mse", "cross_entropy", "bogus", 1]),
    "window": st.one_of(st.integers(0, T + 1), INTS), "reg_c": FLOATS, "f_target": FLOATS,
    "sparsity_in": st.one_of(st.floats(0, 1), FLOATS), "sparsity_rec": st.floats(0, 1),
    "sparsity_out": st.one_of(st.floats(0, 1), FLOATS),
    "mask_in": masks((NIN, 3)), "mask_rec": masks((3, 3)), "mask_out": masks((3, 4)),
    "autapses": st.one_of(st.booleans(), VALUES), "recurrent": st.one_of(st.booleans(), VALUES),
    "seed": INTS, "threads": st.one_of(st.none(), INTS),
}


@given(st.lists(st.sampled_from(sorted(EPROP_KW)), max_size=3, unique=True).flatmap(
           lambda names: st.fixed_dictionaries({k: EPROP_KW[k] for k in names})),
       model_inputs(),
       st.sampled_from(["record", "record_labels", "logits", "predict", "loss_and_grad",
                        "set_weight", "save_load", "bptt", "train", "evaluate"]),
       st.sampled_from(["w_in", "w_rec", "w_out", "b"]),
       arrays(dtypes=["float32", "float64", "int64", "object"], max_dims=2))
@counted
def eprop_api(over, inputs, method, weight, arr):
    kw = {"n_hidden": 3, "threads": 1}
    kw.update(over)
    n_in, n_hidden, n_out = kw.pop("n_in", NIN), kw.pop("n_hidden"), kw.pop("n_out", 4)
    kw.setdefault("window", T)
    net = attempt("eprop_api", sl.EPropNetwork, n_in, n_hidden, n_out, **kw)
    if net is None:
        net = sl.EPropNetwork.for_stimulus(STIM, n_hidden=3, threads=1, recurrent=True)
    spikes, labels, index = inputs
    if method == "record":
        attempt("eprop_api", net.record, spikes, None, index)
    elif method == "record_labels":
        attempt("eprop_api", net.record, spikes, labels, index)
    elif method == "logits":
        attempt("eprop_api", net.logits, spikes, index)
    elif method == "predict":
        attempt("eprop_api", net.predict, spikes, index)
    elif method == "loss_and_grad":
        attempt("eprop_api", net.loss_and_grad, spikes, labels, index, return_logits=True)
    elif method == "set_weight":
        attempt("eprop_api", setattr, net, weight, arr)
        attempt("eprop_api", net.loss_and_grad, EVENTS, LABELS)
    elif method == "save_load":
        path = os.path.join(TMP, "eprop.npz")
        if attempt("eprop_api", net.save, path, extra={"k": arr.shape}) is not None:
            back = attempt("eprop_api", sl.EPropNetwork.load, path, threads=1)
            if back is not None:
                attempt("eprop_api", back.logits, EVENTS)
    elif method == "bptt":
        attempt("eprop_api", net.bptt().loss_and_grad, spikes, labels, index)
    elif method == "train":
        attempt("eprop_api", sl.train, net, IPD, spikes, stimulus=STIM, epochs=1, batch_size=2,
                progress=False, _also=TRAIN_ERRORS)
    else:
        attempt("eprop_api", sl.evaluate, net, IPD, spikes, STIM, labels=labels)


def _damaged_file(model, kind, draw):
    """Bytes of a damaged checkpoint (sl.save of an EPropNetwork, an SNN, a variant SNN or a
    MembraneOnly)."""
    buf = io.BytesIO()
    path = os.path.join(TMP, "good.npz")
    if model == "eprop":
        net = sl.EPropNetwork(NIN, 3, 4, window=2, threads=1,
                              recurrent=draw.draw(st.booleans()))
    else:
        net = {"snn": lambda: SNN0, "variant": VAR0_FACTORY, "membrane": lambda: MO0}[model]()
    sl.save(net, path, stimulus=STIM if draw.draw(st.booleans()) else None)
    key = checkpoint.HEADER_KEY
    with open(path, "rb") as f:
        good = f.read()
    if kind == "truncated":
        return good[:draw.draw(st.integers(0, len(good) - 1))]
    if kind == "flipped":
        b = bytearray(good)
        for _ in range(draw.draw(st.integers(1, 4))):
            i = draw.draw(st.integers(0, len(b) - 1))
            b[i] = draw.draw(st.integers(0, 255))
        return bytes(b)
    if kind == "garbage":
        return draw.draw(st.binary(max_size=64))
    with np.load(path) as z:
        arrays_ = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays_[key]).decode())
    if kind == "drop":
        arrays_.pop(draw.draw(st.sampled_from(sorted(arrays_))))
    elif kind == "array":
        name = draw.draw(st.sampled_from(sorted(arrays_)))
        arrays_[name] = draw.draw(arrays(dtypes=["float32", "float64", "int64", "uint8",
                                                 "complex64", "bool"], max_dims=3))
    elif kind == "header":
        what = draw.draw(st.sampled_from(["json", "config", "field", "format", "list"]))
        if what == "json":
            text = draw.draw(st.sampled_from(["{", "", "null", "[1]", "\xff", '"x"']))
        elif what == "config":
            header["config"] = draw.draw(st.one_of(st.none(), st.integers(), st.lists(
                st.integers(), max_size=2), st.just({"bogus": 1})))
            text = json.dumps(header)
        elif what == "field":
            key = draw.draw(st.sampled_from(sorted(header["config"])))
            header["config"][key] = draw.draw(st.one_of(
                st.none(), st.integers(-2, 70000), st.floats(allow_nan=False),
                st.text(max_size=3), st.lists(st.integers(), max_size=2),
                st.just({"a": 1})))
            text = json.dumps(header)
        elif what == "format":
            header["format"] = draw.draw(st.sampled_from([None, "spikeloc", 1]))
            text = json.dumps(header)
        else:
            header = draw.draw(st.sampled_from([[], 1, "x", None]))
            text = json.dumps(header)
        try:
            raw = text.encode("utf-8", "surrogatepass")
        except UnicodeEncodeError:
            raw = b"\\xff"
        arrays_[key] = np.frombuffer(raw, dtype=np.uint8) if raw else np.zeros(0, np.uint8)
    elif kind == "pickle":
        arrays_[sorted(arrays_)[0]] = np.array([object()], dtype=object)
        np.savez(buf, allow_pickle=True, **arrays_)
        return buf.getvalue()
    np.savez(buf, **arrays_)
    return buf.getvalue()


@given(st.sampled_from(["eprop", "eprop", "snn", "variant", "membrane"]),
       st.sampled_from(["truncated", "flipped", "garbage", "drop", "array", "header",
                        "header", "pickle", "missing", "directory"]), st.data())
@counted
def model_files(model, kind, draw):
    path = os.path.join(TMP, "damaged.npz")
    if kind == "missing":
        target = os.path.join(TMP, "no-such-file.npz")
    elif kind == "directory":
        target = TMP
    else:
        with open(path, "wb") as f:
            f.write(_damaged_file(model, kind, draw))
        target = path
    if model == "eprop":
        net = attempt("model_files", sl.EPropNetwork.load, target, threads=1,
                      _also=(FileNotFoundError,))
    else:
        fn = draw.draw(st.sampled_from([sl.load, checkpoint.load_with_metadata,
                                        checkpoint.read_header]))
        net = attempt("model_files", fn, target, _also=(FileNotFoundError,))
        net = net[0] if isinstance(net, tuple) else net
    if net is not None and hasattr(net, "loss_and_grad"):
        attempt("model_files", net.loss_and_grad, EVENTS, LABELS)


# ---------------------------------------------------------------------------- hostile files
# Checkpoints built to make a reader allocate: headers announcing absurd sizes, members of
# absurd (declared or decompressed) size, damaged zip directories and .npy headers, JSON
# nested deeply or bloated up to the header limit. Loading must raise CheckpointError (or
# FileNotFoundError) and nothing else, MemoryError included, with a peak resident memory
# at most 64 MB + 4 x the file's size above what the process used before.

import hostile_files  # noqa: E402
from spikeloc import checkpoint_io  # noqa: E402

HOSTILE_MODELS = {"snn": lambda: SNN0, "variant": lambda: VAR0_FACTORY(),
                  "membrane": lambda: MO0, "eprop": lambda: EP0}
_GOOD_FILES: dict = {}


def _good_file(model) -> bytes:
    if model not in _GOOD_FILES:
        path = os.path.join(TMP, "hostile-good.npz")
        sl.save(HOSTILE_MODELS[model](), path, stimulus=STIM, extra={"note": "good"})
        with open(path, "rb") as f:
            _GOOD_FILES[model] = f.read()
    return _GOOD_FILES[model]


def _status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


SIZES = st.one_of(st.integers(-2, 70000), st.sampled_from(
    [15000, 30000, 65535, 65536, 2**20, 2**31 - 1, 2**31, 2**40, 2**62, 10**18]))


@st.composite
def hostile_bytes(draw):
    """(model, kind, bytes of a hostile checkpoint)."""
    H = hostile_files
    model = draw(st.sampled_from(sorted(HOSTILE_MODELS)))
    data = _good_file(model)
    members = H.members_of(data)
    header = H.header_of(data)
    kind = draw(st.sampled_from(["config_sizes", "deep_json", "json_bloat", "huge_member",
                                 "npy_header", "member_sizes", "many_members", "directory",
                                 "aliases", "builder", "flipped"]))
    if kind == "config_sizes":
        for key in draw(st.lists(st.sampled_from(["n_in", "n_hidden", "n_out"]), min_size=1,
                                 unique=True)):
            header["config"][key] = draw(SIZES)
        if draw(st.booleans()):   # the declared shapes agree with the configuration
            header["params"] = {k: {"shape": [draw(SIZES)] * 2, "dtype": "float32"}
                                for k in header["params"]}
        out = H.with_header(data, json.dumps(header).encode())
    elif kind == "deep_json":
        out = H.deep_json(data, draw(st.integers(50, 300_000)))
    elif kind == "json_bloat":   # heavy Python objects per byte, near the header limit
        unit = draw(st.sampled_from(["[[]],", "{},", '{"a":[]},', "1e5,", '"ab",']))
        limit = checkpoint_io.max_header_bytes(len(data))
        count = draw(st.integers(1, limit // len(unit) + 10))
        text = json.dumps(header).replace('"extra": {"note": "good"}',
                                          '"extra": [' + unit * count + "0]")
        out = H.with_header(data, text.encode())
    elif kind == "huge_member":
        dtype = draw(st.sampled_from(["uint8", "float32", "<f8"]))
        size = draw(st.sampled_from([1 << 20, 16 << 20, 64 << 20, 256 << 20]))
        big = H._deflated_npy(dtype, size // np.dtype(dtype).itemsize)
        names = [m.name for m in members]
        big.name = draw(st.sampled_from(names + ["big.npy"]))
        if draw(st.booleans()):   # store it: the zip directory then lies about its size
            big.method, big.payload = 0, big.payload[:draw(st.integers(0, 4096))]
        out = H.archive([m for m in members if m.name != big.name] + [big])
    elif kind == "npy_header":
        m = draw(st.sampled_from(members))
        shape = draw(st.sampled_from(["(2**40,)", "(15000, 15000)", "(-1,)", "((),)", "(1.5,)",
                                      "(" + "(" * 300 + ")" * 300 + ",)", "()", "(3,"]))
        descr = draw(st.sampled_from(["'<f4'", "'|u1'", "'O'", "'<U100000'", "'|V99999999'",
                                      "[('a', '<f4')]", "'<f4'" + "," * 5, "1"]))
        text = ("{'descr': " + descr + ", 'fortran_order': " +
                draw(st.sampled_from(["False", "True", "0"])) + ", 'shape': " + shape + ", }")
        version = draw(st.sampled_from([1, 2, 3]))
        length = draw(st.one_of(st.just(len(text)), st.integers(0, 2**32 - 1)))
        pre = b"\x93NUMPY" + bytes([version, 0]) + (
            (length % 2**16).to_bytes(2, "little") if version == 1
            else length.to_bytes(4, "little"))
        m.payload = pre + text.encode("latin1") + m.payload[len(pre) + len(text):]
        m.crc, m.size = zlib.crc32(m.payload), len(m.payload)
        out = H.archive(members)
    elif kind == "member_sizes":
        m = draw(st.sampled_from(members))
        m.size = draw(st.one_of(st.integers(0, 2**32 - 1), st.just(len(m.payload) + 1)))
        out = H.archive(members)
    elif kind == "many_members":
        out = H.many_members(data, draw(st.integers(1, 30000)))
    elif kind == "directory":
        out = H.archive(members, entries=draw(st.integers(0, 65535)),
                        directory_size=draw(st.integers(0, 2**32 - 1)))
    elif kind == "aliases":
        out = H.archive(members, aliases=[(draw(st.sampled_from([m.name for m in members])),
                                           draw(st.integers(0, len(members) - 1)))
                                          for _ in range(draw(st.integers(1, 80)))])
    elif kind == "builder":
        out = H.BUILDERS[draw(st.sampled_from(sorted(H.BUILDERS)))](data)
    else:
        out = bytearray(H.BUILDERS[draw(st.sampled_from(sorted(H.BUILDERS)))](data))
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        out = bytes(out)
    return model, kind, out


@given(hostile_bytes(), st.sampled_from(["load", "load_with_metadata", "read_header",
                                         "class_load"]))
@counted
def hostile_checkpoints(case, how):
    model, kind, data = case
    path = os.path.join(TMP, "hostile.npz")
    with open(path, "wb") as f:
        f.write(data)
    del data
    fn = {"load": sl.load, "load_with_metadata": checkpoint.load_with_metadata,
          "read_header": checkpoint.read_header,
          "class_load": type(HOSTILE_MODELS[model]()).load}[how]
    measured = os.path.exists("/proc/self/clear_refs")
    if measured:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_bytes("VmRSS")
    attempt("hostile_checkpoints", fn, path, _allowed=(checkpoint.CheckpointError,
                                                       FileNotFoundError))
    if measured:
        peak = _status_bytes("VmHWM") - before
        bound = 64 * 2**20 + 4 * os.path.getsize(path)
        if peak > bound:
            sig = ("hostile_checkpoints", "memory", kind)
            UNEXPECTED.setdefault(sig, {"target": "hostile_checkpoints", "type": "memory",
                                        "message": f"{model} {kind} {how}: peak +{peak} bytes "
                                                   f"> {bound}", "call": "", "traceback": ""})


TMP = tempfile.mkdtemp(prefix="spikeloc-fuzz-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)

TARGETS = {f.__name__: f for f in (native_mutated, native_random, events_corrupted,
                                    native_configs, native_concurrent, stimulus_api, events_api,
                                    snn_api, mo_api, optim_api, evaluate_api, variant_api,
                                    general_api, data_options_api,
                                    analysis_api, nmnist_api, eprop_api, model_files,
                                    hostile_checkpoints)}


def main(argv=None):
    global SCALE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the example counts")
    ap.add_argument("--only", nargs="*", default=None, choices=sorted(TARGETS))
    args = ap.parse_args(argv)
    SCALE = args.scale
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = ADDRESS_SPACE_LIMIT if hard == resource.RLIM_INFINITY else min(hard,
                                                                            ADDRESS_SPACE_LIMIT)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    os.environ.setdefault("SPIKELOC_NUM_THREADS", "2")
    # silently dropping imaginary parts counts as a failure to reject bad input
    warnings.simplefilter("error", np.exceptions.ComplexWarning
                          if hasattr(np, "exceptions") else np.ComplexWarning)
    t0 = time.perf_counter()
    for name in args.only or TARGETS:
        print(f"target {name}", flush=True)
        t = time.perf_counter()
        fuzz(_BUDGET[name])(TARGETS[name])()
        print(f"  {EXAMPLES.get(name, 0)} cases, {COUNTS.get(name, 0)} calls in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
    summary = {"cases": EXAMPLES, "total": sum(EXAMPLES.values()), "calls": COUNTS,
               "returned": RETURNED,
               "seconds": round(time.perf_counter() - t0, 1),
               "native_entry_points": sorted({entry_point(n) for n in NATIVE_NAMES}),
               "concurrent_entry_points": sorted(CONCURRENT),
               "unexpected": list(UNEXPECTED.values())}
    print(json.dumps(summary))
    return 0


SCALE = 1.0
_BUDGET = {"native_mutated": 2200, "native_random": 500, "events_corrupted": 1000,
           "native_configs": 1200, "native_concurrent": 40,
           "stimulus_api": 600, "events_api": 400, "snn_api": 600,
           "mo_api": 400, "optim_api": 500, "evaluate_api": 400, "variant_api": 700,
           "general_api": 500,
           "data_options_api": 500, "analysis_api": 400, "nmnist_api": 900, "eprop_api": 700,
           "model_files": 300, "hostile_checkpoints": 300}

if __name__ == "__main__":
    sys.exit(main())

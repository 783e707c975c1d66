"""Property-based robustness fuzzing of spikeloc's public API and raw kernel entry points.

Run as a script (python/tests/test_fuzz.py runs it in a subprocess, so that a segfault or an
abort is seen as the process dying, with faulthandler's traceback, instead of killing pytest):

    python python/tests/fuzz_robustness.py [--scale 1.0] [--only NAME ...]

Every call gets random shapes, dtypes, layouts and values (NaN, infinities, zero sizes, sizes
far too large to allocate, corrupted event lists, wrong types) and must return or raise one of
ALLOWED. Hypothesis runs derandomized (fixed seed per target, no example database), so the
cases are the same on every run. The process runs under an address-space limit, so "huge"
sizes fail to allocate instead of being overcommitted and then touched. The last line printed
is a JSON summary: cases per target and the unexpected exceptions (deduplicated).
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import json
import math
import os
import resource
import sys
import time
import traceback
import warnings

faulthandler.enable()

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import spikeloc as sl  # noqa: E402
from spikeloc import _native  # noqa: E402
from spikeloc.evaluation import cross_entropy, labels_from_ipd  # noqa: E402

ALLOWED = (ValueError, TypeError, MemoryError, OverflowError)
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


def f32(n):
    return np.zeros(n, np.float32)


def base_calls():
    """name -> (function, valid positional arguments), fresh outputs each time."""
    cfg = SNN0._abi_config(T)
    mcfg = MO0._abi_config(T)
    ev = EVENTS._abi()
    return {
        "uniform53": (_native.uniform53, [3, 0, 5, np.zeros(4)]),
        "stimulus_uniforms": (_native.stimulus_uniforms, [3, 2, f32(7)]),
        "stimulus": (_native.stimulus, [STIM._params(), IPD.copy(), np.zeros(B), 3, 0,
                                        np.zeros(B * T * NIN, np.uint8), 1]),
        "events_index": (_native.events_index, [SPIKES, B, T, NIN, np.zeros(B * T + 1, np.int64),
                                                np.zeros(B * NIN + 1, np.int64), 1]),
        "events_fill": (_native.events_fill, [SPIKES, B, T, NIN, EVENTS.step_ptr,
                                              EVENTS.input_ptr,
                                              np.zeros(EVENTS.n_events, np.uint16),
                                              np.zeros(EVENTS.n_events, np.uint16), 1]),
        "events_to_dense": (_native.events_to_dense, [ev, np.zeros(B * T * NIN, np.uint8), 1]),
        "snn_forward": (_native.snn_forward, [cfg, ev, None, B, SNN0.w1, SNN0.w2, f32(B * 4),
                                              np.zeros(B * T * 3, np.uint8), f32(B * T * 4), 1]),
        "snn_loss_grad": (_native.snn_loss_grad, [cfg, ev, np.arange(B), B, LABELS, SNN0.w1,
                                                  SNN0.w2, np.zeros_like(SNN0.w1),
                                                  np.zeros_like(SNN0.w2), f32(B * 4), 1]),
        "mo_forward": (_native.mo_forward, [mcfg, ev, None, B, MO0.w, f32(B * 4),
                                            f32(B * T * 4), 1]),
        "mo_loss_grad": (_native.mo_loss_grad, [mcfg, ev, None, B, LABELS, MO0.w,
                                                np.zeros_like(MO0.w), f32(B * 4), 1]),
        "adam_step": (_native.adam_step, [f32(6), f32(6), f32(6), f32(6), 0.01, 0.9, 0.999,
                                          1e-8, 1]),
        "sgd_step": (_native.sgd_step, [f32(6), f32(6), 0.1]),
        "abi_version": (_native.abi_version, []),
        "default_threads": (_native.default_threads, []),
        "last_error": (_native.last_error, []),
    }


NATIVE_NAMES = sorted(base_calls())

# ---------------------------------------------------------------------------- bookkeeping

COUNTS: dict = {}
EXAMPLES: dict = {}
RETURNED: dict = {}
UNEXPECTED: dict = {}


def attempt(target, fn, *args, **kw):
    """Call and classify: allowed exceptions are fine, others are recorded (not raised)."""
    COUNTS[target] = COUNTS.get(target, 0) + 1
    try:
        out = fn(*args, **kw)
        RETURNED[target] = RETURNED.get(target, 0) + 1
        return out
    except ALLOWED:
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


@given(corrupted_events(), st.sampled_from(["to_dense", "snn_forward", "snn_loss_grad",
                                            "mo_forward", "mo_loss_grad"]),
       st.one_of(st.none(), st.lists(st.integers(-1, B), min_size=B, max_size=B)),
       st.integers(0, 3))
@counted
def events_corrupted(ev, which, index, threads):
    idx = None if index is None else np.array(index, dtype=np.int64)
    name = "events_to_dense" if which == "to_dense" else which
    fn, args = base_calls()[name]
    args = list(args)
    args[0 if name == "events_to_dense" else 1] = ev
    if name != "events_to_dense":
        args[2] = idx
    args[-1] = threads
    attempt("events_corrupted", fn, *args)


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
        attempt("optim_api", opt.step, grads)


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
                progress=False)


TARGETS = {f.__name__: f for f in (native_mutated, native_random, events_corrupted,
                                    stimulus_api, events_api, snn_api, mo_api, optim_api,
                                    evaluate_api)}


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
               "unexpected": list(UNEXPECTED.values())}
    print(json.dumps(summary))
    return 0


SCALE = 1.0
_BUDGET = {"native_mutated": 3600, "native_random": 800, "events_corrupted": 1500,
           "stimulus_api": 1000, "events_api": 700, "snn_api": 1000, "mo_api": 700,
           "optim_api": 900, "evaluate_api": 800}

if __name__ == "__main__":
    sys.exit(main())

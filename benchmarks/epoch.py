"""Benchmark: one training epoch of the spiking network, against yardsticks timed in the same run.

One epoch = 4096 samples, batch 64 (64 batches, last incomplete batch dropped), forward +
backward (surrogate-gradient BPTT) + Adam (lr 0.01), for two configurations:

* ``tutorial``: ``spikeloc.Stimulus(phase_offset="per_sample")`` (dt 1 ms, 20 Hz, T = 100),
  SNN 200 inputs, 100 hidden, 12 classes, tau_hidden = tau_output = 20 ms, readout mean;
* ``250hz``: ``spikeloc.Stimulus.hz250()`` (dt 0.1 ms, 250 Hz, T = 1000, one phase offset per
  set as in seed 000), 5 hidden, tau_hidden 0.5 ms, tau_output 5 ms, readout mean.

The data are generated and converted to ``SpikeEvents`` once (a one-time cost, reported
separately). A timed spikeloc epoch is: a permutation, then for each batch
``net.loss_and_grad(events, labels[idx], index=idx)`` and ``opt.step(grads)``. Every repetition
starts from the same initial weights and the same permutation, so all repetitions do the same
work. It is timed with the default thread count (all cores) and with ``threads=1``.

The machine is shared and noisy, so every result is a ratio against yardsticks measured in the
same run, interleaved with the subject (per repetition: (a), (a) single-threaded, epoch, epoch
threads=1, (b), (c), (c) single-threaded; repeated ``--reps`` times):

(a) NumPy/OpenBLAS: the epoch's 64 dense float32 products ``X_batch @ W1``, X_batch of shape
    (64 T, 200) with 0/1 entries at the data's spike density, W1 (200, N_h) float32, with
    OpenBLAS's default thread count. It runs in a fresh Python subprocess (best of 3 inside it),
    so that OpenBLAS's spinning worker threads never compete with spikeloc's. The products
    cycle through a pool of distinct X_batch matrices (up to 512 MB) so that caches do not
    flatter them. The same, with ``OPENBLAS_NUM_THREADS=1``, is the yardstick of the
    ``threads=1`` epoch.
(b) The NumPy reference (``spikeloc.reference.snn_loss_and_grad`` + ``adam_step``, float64):
    it is slow, so a few batches (default 4) are timed, also in a subprocess, and scaled
    linearly to the epoch's batch count.
(c) JAX: the same model written in JAX and compiled with ``jax.jit`` (``benchmarks/jax_snn.py``,
    see ``scaling.py``), one epoch of the same batches (same data set, permutation and initial
    weights; the batches as dense float32 arrays (64, T, 200) built before the timing: 3.3 GB
    for 250hz, whose worker peaks at ~4.4 GB), in a fresh subprocess, compiled and warmed up
    first, best of ``--best-of``; XLA's default threads, and single-threaded (the process pinned
    to one CPU) beside the ``threads=1`` epoch. Checked first against spikeloc
    (``jax_snn.agreement``); skipped with a note when jax is not installed (``pip install -e
    '.[bench]'``) or with ``--no-jax``.

Each repetition line also shows, per measurement, "cores" (CPU time / wall time of the measured
process) and "others" (cores busy with other processes meanwhile, from /proc/stat): a noise
indicator, ~0 on a quiet machine. Interleaving cancels slow drifts, not contention: when another
process holds a core, multi-threaded OpenBLAS slows down much more (up to 3x) than spikeloc, so
busy pairs give smaller, flattering ratios epoch / (a). The summary therefore also gives the
ratio over "quiet" pairs (others <= 0.25 cores in both measurements), and the single-threaded
comparison, which is less sensitive to a second busy process.

Printed per configuration: spikeloc epoch time, yardstick (a) time, the ratio epoch / (a) as
median [min, max] over the repetitions (each ratio from one interleaved pair), the speed-up
(b) / epoch over the reference, and epoch / JAX (issue 12: < 1). Bars of the issue, printed for
reference only, never asserted: tutorial epoch <= 0.8 x (a); 250 Hz epoch <= 0.2 x (a) (issue
12; the first build's bars were 1.0 and 0.25). Ends with markdown tables for
``benchmarks/RESULTS.md``.

Usage (from the repository root, after ``python setup.py build_ext --inplace``)::

    PYTHONPATH=python python benchmarks/epoch.py              # the issue's numbers (~3-4 min;
                                                              # JAX (c) adds ~10 min)
    PYTHONPATH=python python benchmarks/epoch.py --quick      # smoke run (~30 s)
    PYTHONPATH=python python benchmarks/epoch.py --configs 250hz --reps 7
    PYTHONPATH=python python benchmarks/epoch.py --profile --configs tutorial --reps 5

``--profile`` (Linux ``perf`` needed) times ``--reps`` single-threaded epochs under ``perf
record`` instead, and prints per phase (forward event sums; LIF with the surrogate and the
closed-form readout; loss, dW2 and the backward recursion; the input-weight gradient; the chunk
driver; Adam; the rest) its share, seconds per epoch and nanoseconds per input event, next to
the cost of one hidden-width row at the multiply-add rate of yardstick (a) run single-threaded
in the same run (the event sums' floor, see ``scaling.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import _bench
import jax_snn
from _bench import Timer, fmt_ratio, fmt_time, summary

sl = _bench.import_spikeloc()

#: The two configurations: stimulus keyword arguments and network sizes; ``bar`` is the
#: issue's bar on epoch / yardstick (a).
CONFIGS = {
    "tutorial": dict(stimulus=dict(phase_offset="per_sample"),
                     n_hidden=100, tau_hidden=20e-3, tau_output=20e-3, bar=0.8),
    "250hz": dict(stimulus=dict(dt=1e-4, freq=250.0),
                  n_hidden=5, tau_hidden=0.5e-3, tau_output=5e-3, bar=0.2),
}
LR = 0.01
DATA_SEED = 0      # seed of the generated data set
PERM_SEED = 1      # seed of the (per repetition identical) epoch permutation
POOL_BYTES = 512 * 2**20  # distinct X_batch matrices of yardstick (a), at most this many bytes


def make_stimulus(name: str):
    return sl.Stimulus(**CONFIGS[name]["stimulus"])


def make_net(name: str, stim, threads: int):
    c = CONFIGS[name]
    return sl.SNN.for_stimulus(stim, n_hidden=c["n_hidden"], tau_hidden=c["tau_hidden"],
                               tau_output=c["tau_output"], readout="mean", seed=0,
                               threads=threads)


def epoch_order(n_samples: int) -> np.ndarray:
    return np.random.default_rng(PERM_SEED).permutation(n_samples)


# ---------------------------------------------------------------------------- the subject

def spikeloc_epoch(name, stim, events, labels, batch, threads) -> tuple:
    """One timed epoch from fresh weights: (Timer, loss of the first batch, last loss)."""
    net = make_net(name, stim, threads)
    opt = sl.Adam(net, lr=LR)
    n_batches = len(events) // batch
    with Timer() as t:
        order = epoch_order(len(events))
        for b in range(n_batches):
            idx = order[b * batch:(b + 1) * batch]
            loss, grads = net.loss_and_grad(events, labels[idx], index=idx)
            opt.step(grads)
            if b == 0:
                first_loss = loss
    return t, first_loss, loss


# ---------------------------------------------------------------------------- workers

def worker_yardstick(steps, n_in, n_hidden, density, n_batches, batch, best_of,
                     dense_floor=False) -> dict:
    """(a): n_batches products X_batch @ W1 (float32, OpenBLAS default threads); best of
    ``best_of`` rounds.

    ``dense_floor``: also, in rounds interleaved with those of (a), the least a dense training
    path computes per batch: the forward product X_batch @ W1 and the weight-gradient product
    X_batch^T @ G (G float32 (batch T, N_h), random; one G for all batches: where it fits in a
    cache this errs in the dense path's favour); best of ``best_of`` as ``dense`` [s] (see
    scaling.py)."""
    rng = np.random.default_rng(123)
    rows = batch * steps
    x_bytes = rows * n_in * 4
    pool = max(1, min(n_batches, POOL_BYTES // x_bytes))
    xs = [(rng.random((rows, n_in), dtype=np.float32) < density).astype(np.float32)
          for _ in range(pool)]
    w1 = rng.uniform(-1, 1, size=(n_in, n_hidden)).astype(np.float32)
    g = rng.standard_normal((rows, n_hidden), dtype=np.float32) if dense_floor else None
    xs[0] @ w1  # warm-up: starts OpenBLAS's threads
    timers, dense = [], []
    for _ in range(best_of):
        with Timer() as t:
            for b in range(n_batches):
                y = xs[b % pool] @ w1
        timers.append(t)
        if dense_floor:
            with Timer() as t:
                for b in range(n_batches):
                    x = xs[b % pool]
                    y = x @ w1
                    gw = x.T @ g
            dense.append(t)
    best = min(timers, key=lambda t: t.seconds)
    out = {"best": best.seconds, "times": [t.seconds for t in timers], "pool": pool,
           "cpu": best.cpu, "others": best.others,
           "density": float(np.mean([x.mean() for x in xs])), "checksum": float(y.sum())}
    if dense_floor:
        best_d = min(dense, key=lambda t: t.seconds)
        out.update(dense=best_d.seconds, dense_times=[t.seconds for t in dense],
                   dense_others=best_d.others, dense_checksum=float(gw.sum()))
    return out


def worker_reference(config, n_samples, batch, ref_batches) -> dict:
    """(b): the first ``ref_batches`` batches of the epoch with the NumPy reference."""
    from spikeloc import reference as ref
    c = CONFIGS[config]
    stim = make_stimulus(config)
    order = epoch_order(n_samples)[:ref_batches * batch]
    # Counter-based generator: sample i of the data set is generate(1, seed, first_index=i).
    spikes = np.concatenate([stim.generate(1, DATA_SEED, first_index=int(i))[1] for i in order])
    labels = stim.labels(np.concatenate([stim.draw_ipd(1, DATA_SEED, int(i)) for i in order]))
    net = make_net(config, stim, threads=1)
    w1, w2 = net.w1.astype(np.float64), net.w2.astype(np.float64)
    m1, v1, m2, v2 = (np.zeros_like(w) for w in (w1, w1, w2, w2))
    losses = []
    with Timer() as t:
        for b in range(ref_batches):
            x = spikes[b * batch:(b + 1) * batch]
            loss, g1, g2, _ = ref.snn_loss_and_grad(x, labels[b * batch:(b + 1) * batch], w1, w2,
                                                    stim.dt, c["tau_hidden"], c["tau_output"],
                                                    "mean")
            w1, m1, v1 = ref.adam_step(w1, g1, m1, v1, lr=LR, t=b + 1)
            w2, m2, v2 = ref.adam_step(w2, g2, m2, v2, lr=LR, t=b + 1)
            losses.append(float(loss))
    return {"seconds": t.seconds, "batches": ref_batches, "losses": losses,
            "others": t.others}


def worker_jax(config, n_samples, batch, threads, best_of) -> dict:
    """(c): the epoch in JAX (``jax_snn``): the same data set, permutation and initial weights
    as the subject, the batches as dense float32 arrays built before the timing; ``threads``
    set up before jax is imported."""
    jax_snn.configure_threads(threads)
    c = CONFIGS[config]
    stim = make_stimulus(config)
    ipd, spikes = stim.generate(n_samples, DATA_SEED)
    xs, ys = jax_snn.dense_batches(spikes, stim.labels(ipd), epoch_order(n_samples), batch)
    del spikes
    net = make_net(config, stim, threads=1)
    return jax_snn.time_epochs(xs, ys, net.w1, net.w2, stim.dt, c["tau_hidden"],
                               c["tau_output"], best_of=best_of)


#: --profile: kernel symbols (substrings of their mangled names) -> phase of the epoch. The
#: kernels inline most helpers, so some phases share a symbol (named together).
PHASES = [
    ("forward event sums (x_n W1)", ("7addRows",)),
    ("LIF + surrogate + readout m = z W2", ("SNNKernelV7forward",)),
    ("loss + dW2 + backward recursion", ("SNNKernelV8backward", "hiddenBackward", "crossEntropy")),
    ("input-weight gradient (event sums)", ("inputWeightGradient",)),
    ("chunk driver + gradient reduction", ("lossAndGradients", "reducePartials", "PaddedWeights",
                                          "SNNKernelV__")),
    ("Adam", ("adamStep", "Adam")),
]


def worker_profile(config, n_samples, batch, epochs, freq) -> dict:
    """--profile: single-threaded epochs sampled by ``perf record`` attached to this process
    after the data are built; returns the epoch time and the share of each symbol."""
    import signal
    import subprocess
    import tempfile
    import time
    stim = make_stimulus(config)
    ipd, spikes = stim.generate(n_samples, DATA_SEED)
    events, labels = sl.SpikeEvents.from_dense(spikes), stim.labels(ipd)
    del spikes
    spikeloc_epoch(config, stim, events, labels, batch, threads=1)  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        perf = subprocess.Popen(["perf", "record", "-F", str(freq), "-o", data, "-p",
                                 str(os.getpid())], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf attaches
        times = [spikeloc_epoch(config, stim, events, labels, batch, threads=1)[0].seconds
                 for _ in range(epochs)]
        perf.send_signal(signal.SIGINT)
        perf.wait()
        report = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                 "--sort", "sym"], capture_output=True, text=True).stdout
    shares = {}
    for line in report.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith("%") and not line.startswith("#"):
            shares[" ".join(parts[2:])] = shares.get(" ".join(parts[2:]), 0.0) + float(parts[0][:-1])
    used = (n_samples // batch) * batch
    return {"times": times, "shares": shares, "events": events.n_events * used / len(events)}


WORKERS = {"yardstick": worker_yardstick, "reference": worker_reference,
           "profile": worker_profile, "jax": worker_jax}


def profile_config(name, args) -> None:
    """--profile: where the single-threaded epoch's time goes, per phase and per input event,
    next to the cost of one row at the dense products' lane rate (measured in the same run)."""
    import shutil
    c = CONFIGS[name]
    stim = make_stimulus(name)
    if shutil.which("perf") is None:
        print(f"\n=== {name}: --profile needs Linux perf (perf record), not found")
        return
    n_batches = args.samples // args.batch
    prof = _bench.run_worker(__file__, ["profile", json.dumps(dict(
        config=name, n_samples=args.samples, batch=args.batch, epochs=args.reps, freq=4000))],
        env={"OPENBLAS_NUM_THREADS": "1"})
    ipd, spikes = stim.generate(256, DATA_SEED)
    density = float(spikes.mean())
    a1 = _bench.run_worker(__file__, ["yardstick", json.dumps(dict(
        steps=stim.steps, n_in=stim.n_in, n_hidden=c["n_hidden"], density=density,
        n_batches=n_batches, batch=args.batch, best_of=args.best_of))],
        env={"OPENBLAS_NUM_THREADS": "1"})
    epoch = summary(prof["times"])[0]
    events = prof["events"]
    padded = -(-c["n_hidden"] // 8) * 8
    # one padded row of N_h lanes at the rate (a) multiply-adds lanes (see scaling.py)
    row_ns = a1["best"] / (n_batches * args.batch * stim.steps * stim.n_in * c["n_hidden"]) \
        * padded * 1e9
    total = sum(prof["shares"].values()) or 1.0
    print(f"\n=== {name}: profile of the single-threaded epoch ({args.reps} epochs, perf record "
          f"at 4 kHz): epoch {epoch:.3f} s, {events / 1e6:.1f} M input events, (a) 1 thread "
          f"{a1['best']:.3f} s")
    print(f"    {'phase':40s} {'share':>7s} {'s/epoch':>8s} {'ns/event':>9s}")
    rest = dict(prof["shares"])
    for label, keys in PHASES:
        share = sum(v for k, v in prof["shares"].items() if any(key in k for key in keys))
        for k in [k for k in rest if any(key in k for key in keys)]:
            del rest[k]
        sec = epoch * share / total
        note = ("  (N_h <= 8: summed inside the LIF loop, next row)"
                if share == 0 and keys[0] == "7addRows" else "")
        print(f"    {label:40s} {share / total:7.1%} {sec:8.4f} {sec / events * 1e9:9.2f}{note}")
    other = sum(rest.values())
    print(f"    {'Python, NumPy, kernel, rest':40s} {other / total:7.1%} "
          f"{epoch * other / total:8.4f} {epoch * other / total / events * 1e9:9.2f}")
    print(f"    one {padded}-lane row at (a)'s multiply-add rate: {row_ns:.2f} ns (the event "
          f"sums' floor: one row forward and one backward per event, {2 * row_ns:.2f} ns)")


# ---------------------------------------------------------------------------- driver

def one_repetition(name, stim, events, labels, args, yard_args, ref_args, jax_args) -> dict:
    """Yardstick (a), [(a) single-threaded], epoch, [epoch threads=1], reference (b), [JAX (c),
    [JAX single-threaded]] (``jax_args`` None: no JAX)."""
    n_batches = len(events) // args.batch
    m = {"a": _bench.run_worker(__file__, ["yardstick", json.dumps(yard_args)])}
    if not args.no_single_thread:
        m["a1"] = _bench.run_worker(__file__, ["yardstick", json.dumps(yard_args)],
                                    env={"OPENBLAS_NUM_THREADS": "1"})
    m["epoch"], m["first_loss"], m["last_loss"] = spikeloc_epoch(
        name, stim, events, labels, args.batch, threads=0)
    if not args.no_single_thread:
        m["epoch1"], _, _ = spikeloc_epoch(name, stim, events, labels, args.batch, threads=1)
    m["ref"] = _bench.run_worker(__file__, ["reference", json.dumps(ref_args)])
    m["ref_epoch"] = m["ref"]["seconds"] * n_batches / m["ref"]["batches"]
    if jax_args is not None:
        m["jax"] = _bench.run_worker(__file__, ["jax", json.dumps(dict(jax_args, threads=0))])
        if not args.no_single_thread:
            m["jax1"] = _bench.run_worker(__file__, ["jax", json.dumps(dict(jax_args,
                                                                            threads=1))])
    return m


def print_repetition(rep: int, m: dict, n_batches: int) -> None:
    """One line per measurement: seconds, cores used, others (cores busy elsewhere)."""
    a, e, r = m["a"], m["epoch"], m["ref"]
    rounds = " ".join(f"{x:.3f}" for x in a["times"])
    print(f"    rep {rep}: (a) numpy {a['best']:.3f} s (rounds {rounds}; pool {a['pool']}; "
          f"{a['cpu'] / a['best']:.1f} cores; others {a['others']:.1f})")
    if "a1" in m:
        a1 = m["a1"]
        print(f"           (a) numpy OPENBLAS_NUM_THREADS=1 {a1['best']:.3f} s "
              f"(others {a1['others']:.1f})")
    print(f"           epoch {e.seconds:.3f} s ({e.cpu / e.seconds:.1f} cores; others "
          f"{e.others:.1f}) -> {e.seconds / a['best']:.3f} x (a)")
    if "epoch1" in m:
        e1 = m["epoch1"]
        print(f"           epoch threads=1 {e1.seconds:.3f} s (others {e1.others:.1f}) -> "
              f"{e1.seconds / a['best']:.3f} x (a), "
              f"{e1.seconds / m['a1']['best']:.3f} x (a) single-threaded")
    print(f"           (b) reference {r['batches']} batches {r['seconds']:.2f} s (others "
          f"{r['others']:.1f}), scaled to {n_batches}: {m['ref_epoch']:.1f} s -> "
          f"{m['ref_epoch'] / e.seconds:.0f} x epoch", flush=True)
    if "jax" in m:
        j = m["jax"]
        print(f"           (c) JAX {j['best']:.3f} s ({j['cpu'] / j['best']:.1f} cores; others "
              f"{j['others']:.1f}; form {j['form']}) -> epoch / JAX {e.seconds / j['best']:.3f}",
              flush=True)
    if "jax1" in m:
        j1 = m["jax1"]
        print(f"           (c) JAX 1 thread {j1['best']:.3f} s ({j1['cpu'] / j1['best']:.1f} "
              f"cores; others {j1['others']:.1f}) -> epoch threads=1 / JAX 1 thread "
              f"{m['epoch1'].seconds / j1['best']:.3f}", flush=True)


def bench_config(name, args, jax_ok: str = "not requested") -> dict:
    c = CONFIGS[name]
    stim = make_stimulus(name)
    batch, n = args.batch, args.samples
    n_batches = n // batch
    print(f"\n=== {name}: {stim}")
    print(f"    SNN {stim.n_in} -> {c['n_hidden']} -> {stim.num_classes}, tau_hidden "
          f"{c['tau_hidden'] * 1e3:g} ms, tau_output {c['tau_output'] * 1e3:g} ms, readout mean, "
          f"Adam lr {LR}; {n} samples, batch {batch} -> {n_batches} batches per epoch")

    # One-time cost: data and event lists.
    with Timer() as t_gen:
        ipd, spikes = stim.generate(n, DATA_SEED)
    with Timer() as t_ev:
        events = sl.SpikeEvents.from_dense(spikes)
    labels = stim.labels(ipd)
    density = events.density
    del spikes
    print(f"    one-time: generate {t_gen.seconds:.3f} s, SpikeEvents.from_dense "
          f"{t_ev.seconds:.3f} s ({events.n_events} events, density {density:.4f})")

    spikeloc_epoch(name, stim, events, labels, batch, threads=0)  # warm-up, not timed

    yard_args = dict(steps=stim.steps, n_in=stim.n_in, n_hidden=c["n_hidden"], density=density,
                     n_batches=n_batches, batch=batch, best_of=args.best_of)
    ref_args = dict(config=name, n_samples=n, batch=batch, ref_batches=args.ref_batches)
    jax_args = (dict(config=name, n_samples=n, batch=batch, best_of=args.best_of)
                if jax_ok == "ok" else None)
    reps = []
    for rep in range(args.reps):
        reps.append(one_repetition(name, stim, events, labels, args, yard_args, ref_args,
                                   jax_args))
        print_repetition(rep + 1, reps[-1], n_batches)

    def col(f):
        return [f(m) for m in reps]

    res = dict(name=name, T=stim.steps, n_hidden=c["n_hidden"], density=density, bar=c["bar"],
               gen=t_gen.seconds, events=t_ev.seconds,
               a=col(lambda m: m["a"]["best"]),
               epoch=col(lambda m: m["epoch"].seconds),
               r_epoch=col(lambda m: m["epoch"].seconds / m["a"]["best"]),
               quiet=[m["epoch"].seconds / m["a"]["best"] for m in reps
                      if max(m["epoch"].others, m["a"]["others"]) <= _bench.QUIET],
               others=col(lambda m: max(m["epoch"].others, m["a"]["others"])),
               ref=col(lambda m: m["ref_epoch"]),
               speedup=col(lambda m: m["ref_epoch"] / m["epoch"].seconds), jax_status=jax_ok)
    if jax_args is not None:
        res.update(jax=col(lambda m: m["jax"]["best"]),
                   r_jax=col(lambda m: m["epoch"].seconds / m["jax"]["best"]),
                   jax_others=col(lambda m: m["jax"]["others"]))
        if not args.no_single_thread:
            res.update(jax1=col(lambda m: m["jax1"]["best"]),
                       r_jax1=col(lambda m: m["epoch1"].seconds / m["jax1"]["best"]))
    if not args.no_single_thread:
        res.update(a1=col(lambda m: m["a1"]["best"]),
                   epoch1=col(lambda m: m["epoch1"].seconds),
                   r_epoch1=col(lambda m: m["epoch1"].seconds / m["a"]["best"]),
                   r_single=col(lambda m: m["epoch1"].seconds / m["a1"]["best"]))

    last = reps[-1]
    print(f"    sanity: first-batch loss spikeloc {last['first_loss']:.6f}, reference "
          f"{last['ref']['losses'][0]:.6f}"
          + (f", JAX {last['jax']['first_loss']:.6f}" if "jax" in last else "")
          + f"; last-batch loss {last['last_loss']:.4f}"
          + (f", JAX {last['jax']['last_loss']:.4f}" if "jax" in last else ""))
    print(f"    spikeloc epoch (threads default): {fmt_time(res['epoch'])}")
    if "epoch1" in res:
        print(f"    spikeloc epoch (threads=1):       {fmt_time(res['epoch1'])}")
    print(f"    yardstick (a) numpy X@W1:         {fmt_time(res['a'])}")
    if "a1" in res:
        print(f"    (a) with OPENBLAS_NUM_THREADS=1:  {fmt_time(res['a1'])}")
    print(f"    ratio epoch / (a):                {fmt_ratio(res['r_epoch'])}   "
          f"(issue's bar: <= {c['bar']})")
    print(f"      others during the pairs: {fmt_ratio(res['others'], 1)} cores; quiet pairs "
          f"(others <= {_bench.QUIET}): {len(res['quiet'])} of {len(reps)}"
          + (f", ratio {fmt_ratio(res['quiet'])}" if res["quiet"] else ""))
    if "r_epoch1" in res:
        print(f"    ratio epoch threads=1 / (a):      {fmt_ratio(res['r_epoch1'])}")
        print(f"    ratio epoch threads=1 / (a) OPENBLAS_NUM_THREADS=1: "
              f"{fmt_ratio(res['r_single'])}")
    print(f"    (b) reference epoch (scaled from {args.ref_batches} batches): "
          f"{fmt_time(res['ref'])}")
    print(f"    speed-up (b) / epoch:             {fmt_ratio(res['speedup'], 0)}")
    if "jax" in res:
        print(f"    (c) JAX epoch:                    {fmt_time(res['jax'])}")
        print(f"    ratio epoch / JAX:                {fmt_ratio(res['r_jax'])}   "
              f"(issue 12: < 1)")
    if "jax1" in res:
        print(f"    (c) JAX epoch, 1 thread:          {fmt_time(res['jax1'])}")
        print(f"    ratio epoch threads=1 / JAX 1 thread: {fmt_ratio(res['r_jax1'])}")
    return res


def markdown(results, args, info) -> str:
    thr = info["spikeloc_threads"]
    lines = [f"| config | T | N_h | density | epoch, {thr} threads [s] | (a) numpy X@W1 [s] | "
             "epoch / (a) median [min, max] | bar | others [cores] | quiet pairs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        quiet = f"{len(r['quiet'])}/{len(r['epoch'])}"
        if r["quiet"]:
            quiet += f": {fmt_ratio(r['quiet'])}"
        lines.append(f"| {r['name']} | {r['T']} | {r['n_hidden']} | {r['density']:.4f} | "
                     f"{summary(r['epoch'])[0]:.3f} | {summary(r['a'])[0]:.3f} | "
                     f"{fmt_ratio(r['r_epoch'])} | <= {r['bar']} | "
                     f"{summary(r['others'])[0]:.1f} | {quiet} |")
    lines += ["", "| config | epoch threads=1 [s] | epoch threads=1 / (a) | (a) 1 thread [s] | "
              "epoch threads=1 / (a) 1 thread | (b) reference epoch [s] (scaled from "
              f"{args.ref_batches} batches) | speed-up (b) / epoch | one-time: generate [s] | "
              "one-time: SpikeEvents [s] |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "epoch1" in r:
            single = (f"{summary(r['epoch1'])[0]:.3f} | {fmt_ratio(r['r_epoch1'])} | "
                      f"{summary(r['a1'])[0]:.3f} | {fmt_ratio(r['r_single'])}")
        else:
            single = "- | - | - | -"
        lines.append(f"| {r['name']} | {single} | {summary(r['ref'])[0]:.1f} | "
                     f"{fmt_ratio(r['speedup'], 0)} | {r['gen']:.3f} | {r['events']:.3f} |")
    lines += ["", "| config | (c) JAX epoch [s] | epoch / JAX | JAX 1 thread [s] | "
              "epoch threads=1 / JAX 1 thread | JAX others [cores] |",
              "|---|---|---|---|---|---|"]
    for r in results:
        if "jax" not in r:
            lines.append(f"| {r['name']} | {r['jax_status']} | - | - | - | - |")
            continue
        single = (f"{summary(r['jax1'])[0]:.3f} | {fmt_ratio(r['r_jax1'])}" if "jax1" in r
                  else "- | -")
        lines.append(f"| {r['name']} | {summary(r['jax'])[0]:.3f} | {fmt_ratio(r['r_jax'])} | "
                     f"{single} | {summary(r['jax_others'])[0]:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Time one training epoch of spikeloc against yardsticks measured in the "
                    "same run (see the module docstring).")
    p.add_argument("--configs", default="tutorial,250hz",
                   help="comma-separated configurations among: " + ", ".join(CONFIGS)
                   + " (default: both)")
    p.add_argument("--reps", type=int, default=7,
                   help="interleaved repetitions (yardstick, epoch, ...) (default 7)")
    p.add_argument("--samples", type=int, default=4096, help="samples per epoch (default 4096)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--ref-batches", type=int, default=4,
                   help="batches of the NumPy reference timed per repetition, scaled to the "
                        "epoch (default 4)")
    p.add_argument("--best-of", type=int, default=3,
                   help="rounds of yardstick (a) inside its subprocess; the best counts "
                        "(default 3)")
    p.add_argument("--no-single-thread", action="store_true",
                   help="skip the threads=1 epochs and the single-threaded yardstick")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1024 samples, 2 repetitions, 1 reference batch")
    p.add_argument("--no-jax", action="store_true",
                   help="skip JAX (c) (it needs jax: pip install -e '.[bench]')")
    p.add_argument("--profile", action="store_true",
                   help="instead of the comparison: where the single-threaded epoch's time "
                        "goes (perf record; --reps epochs), per phase and per input event")
    _bench.add_worker_option(p)
    args = p.parse_args(argv)

    if _bench.serve_worker(args, WORKERS):
        return 0
    if args.quick:
        args.samples, args.reps, args.ref_batches = 1024, 2, 1
    names = [s.strip() for s in args.configs.split(",") if s.strip()]
    for s in names:
        if s not in CONFIGS:
            p.error(f"unknown configuration {s!r} (choose from {', '.join(CONFIGS)})")
    if args.samples < args.batch or args.reps < 1 or args.ref_batches < 1:
        p.error("need --samples >= --batch, --reps >= 1, --ref-batches >= 1")
    if args.ref_batches * args.batch > args.samples:
        p.error("--ref-batches x --batch must not exceed --samples")

    info = _bench.machine_info()
    if args.profile:
        _bench.print_machine(info)
        for s in names:
            profile_config(s, args)
        return 0
    print("spikeloc benchmark: one training epoch" + (" (--quick)" if args.quick else ""))
    _bench.print_machine(info)
    print(f"settings: samples {args.samples}, batch {args.batch}, reps {args.reps}, "
          f"yardstick best of {args.best_of}, reference batches {args.ref_batches}")
    jax_ok = jax_snn.benchmark_status(0, args.no_jax)
    results = [bench_config(s, args, jax_ok) for s in names]
    print("\nload average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("\nMarkdown (for benchmarks/RESULTS.md):\n")
    print(markdown(results, args, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())

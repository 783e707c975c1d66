"""Benchmark: how the training epoch scales with width, input density and length (issue 12).

For every cell of N_h in {100, 400, 1600} x density in {0.02, 0.22, 0.47} x T in {100, 1000}
(default grid), on synthetic data (1024 samples, 200 inputs, 12 classes, each input spiking
independently with probability ``density`` per step, fixed seeds), one epoch = 16 batches of
64: ``net.loss_and_grad(events, labels[idx], index=idx)`` + Adam, spikeloc's default threads
(``--threads 1``: one thread, against single-threaded OpenBLAS),
data already in ``SpikeEvents``; SNN 200 -> N_h -> 12, dt 1 ms, tau_hidden = tau_output = 20 ms,
readout mean. Per cell and repetition, interleaved:

(a) the yardstick of ``epoch.py``: the epoch's 16 dense float32 products ``X_batch @ W1``
    (X_batch (64 T, 200) 0/1 at the cell's density, W1 (200, N_h)), NumPy/OpenBLAS default
    threads, in a fresh subprocess, best of ``--best-of`` rounds; in the same subprocess, in
    interleaved rounds, the dense floor (below);
spikeloc's epoch (the subject), in this process;
JAX: the same model written in JAX and compiled with ``jax.jit`` (``benchmarks/jax_snn.py``:
    dense float32 inputs (64, T, 200), ``x @ W1`` then ``lax.scan`` over time, the surrogate
    as a ``jax.custom_jvp`` spike function, ``jax.value_and_grad``, Adam in jnp; one jitted
    step per batch; of its two ways to write the readout sum, the faster in a short trial),
    one epoch of the same 16 batches (same data, permutation and initial weights; the float32
    batches are built once before the timing), in a fresh subprocess, compiled and warmed up
    first, blocked on its results, best of ``--best-of`` epochs; XLA's default threads, or
    (``--threads 1``) one thread, the process pinned to one CPU (see
    ``jax_snn.configure_threads``). Before the grid, a subprocess runs
    ``jax_snn.agreement()`` (loss, gradients and Adam step against spikeloc's on a small fixed
    case); above float32 tolerance the JAX column is not timed. Without jax the column reads
    "jax not installed" and the rest runs (``pip install -e '.[bench]'`` installs it). The
    largest cell (N_h 1600, T 1000) takes ~55 s per JAX epoch single-threaded and its worker
    peaks at ~3.8 GB.

Printed per cell: epoch [s], (a) [s], the ratio epoch / (a) (median [min, max] over the
repetitions, each ratio from one interleaved pair; issue 12's bar: <= 1.0 at density <= 0.22,
<= 1.5 at 0.47), the path the kernels took (always ``events``: the kernels have no dense path
yet), JAX's epoch [s] and epoch / JAX (issue 12: spikeloc faster than the JAX jit in every
cell, i.e. < 1), and the distances to two floors:

dense floor: what any dense training path computes per batch at least, the forward product
    X_batch @ W1 and the weight-gradient product X_batch^T @ G (G (64 T, N_h) float32), timed
    with OpenBLAS at the same threads as (a) (the LIF recursion, the backward recursion and
    Adam come on top for a real dense path; JAX is such a path). Reported in units of (a)
    (about 2), and "wins": ``events`` when the measured epoch is below the dense floor (then
    no dense path can beat the event path in that cell, whatever it does besides), else
    ``dense could win by <= x`` with x = epoch / dense floor (the most a perfect dense path
    could gain).
event floor: the event sums at the machine's rate of the dense products, measured by (a) in the
    same run. An epoch moves one weight row (N_h floats, padded to Hp = a multiple of 8) per
    input event forward and one current-gradient row backward: 2 x events x Hp lanes, each one
    load and one add. (a) does 64 T x 200 x N_h multiply-adds per batch. This core (Zen 4)
    issues two 256-bit loads and two 256-bit FMAs per cycle, so a lane loaded and added costs
    what a lane multiply-added costs at best, and OpenBLAS runs near that peak: the event sums
    alone cannot take less than floor = (a) x 2 x density x Hp / N_h. "epoch / floor" shows how
    far each cell is from it (the LIF dynamics, the backward recursion and Adam come on top); at
    density 0.47 the floor alone is ~0.94 (a). A NumPy row-gather proxy (``np.take``) was tried
    first and rejected: at ~8 ns per 100-float row it is slower than the kernels' own event sums
    (~3 ns per row), so it bounds nothing. The floor holds for quiet pairs only: when another
    process holds a core, multi-threaded OpenBLAS slows down up to 3x and epoch / floor can drop
    below 1 (see RESULTS.md, "How to read the noise columns").

Usage (from the repository root, after ``python setup.py build_ext --inplace``)::

    PYTHONPATH=python python benchmarks/scaling.py            # the full grid (~40 min;
                                                              # ~5-8 min with --no-jax)
    PYTHONPATH=python python benchmarks/scaling.py --quick    # N_h 100, 400; T 100; 1 rep
    PYTHONPATH=python python benchmarks/scaling.py --threads 1  # both sides single-threaded
    PYTHONPATH=python python benchmarks/scaling.py --hidden 100 --densities 0.22 --steps 100
    PYTHONPATH=python python benchmarks/scaling.py --no-jax   # without the JAX column
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import _bench
import jax_snn
from _bench import Timer, fmt_ratio, summary
from epoch import worker_yardstick

sl = _bench.import_spikeloc()

N_IN, CLASSES, SAMPLES, BATCH = 200, 12, 1024, 64
DT, TAU = 1e-3, 20e-3
LR = 0.01
DATA_SEED, PERM_SEED = 5, 1


def bar(density: float) -> float:
    """Issue 12's bar on epoch / (a) for a density."""
    return 1.0 if density <= 0.22 + 1e-9 else 1.5


def make_spikes(steps: int, density: float):
    """Synthetic data: (spikes (SAMPLES, steps, N_IN) uint8, labels), each input spiking with
    probability ``density`` per step, independently (fixed seed)."""
    rng = np.random.default_rng([DATA_SEED, steps, int(round(density * 1000))])
    spikes = np.empty((SAMPLES, steps, N_IN), dtype=np.uint8)
    for s in range(0, SAMPLES, 64):  # in blocks: no float64 array of the whole set
        spikes[s:s + 64] = rng.random((min(64, SAMPLES - s), steps, N_IN), dtype=np.float32) < density
    labels = rng.integers(0, CLASSES, size=SAMPLES)
    return spikes, labels


def make_events(steps: int, density: float):
    """The data of :func:`make_spikes` as (SpikeEvents, labels)."""
    spikes, labels = make_spikes(steps, density)
    return sl.SpikeEvents.from_dense(spikes), labels


def make_net(n_hidden: int, threads: int = 0):
    """The cell's network, fresh weights (seed 0)."""
    return sl.SNN(N_IN, n_hidden, CLASSES, dt=DT, tau_hidden=TAU, tau_output=TAU,
                  readout="mean", seed=0, threads=threads or None)


def epoch_order() -> np.ndarray:
    return np.random.default_rng(PERM_SEED).permutation(SAMPLES)


def spikeloc_epoch(events, labels, n_hidden: int, threads: int = 0) -> Timer:
    net = make_net(n_hidden, threads)
    opt = sl.Adam(net, lr=LR)
    order = epoch_order()
    with Timer() as t:
        for b in range(len(events) // BATCH):
            idx = order[b * BATCH:(b + 1) * BATCH]
            _, grads = net.loss_and_grad(events, labels[idx], index=idx)
            opt.step(grads)
    return t


def worker_jax(steps, density, n_hidden, threads, best_of) -> dict:
    """JAX's epoch of a cell (see the module docstring), in a fresh process: threads set up
    before jax is imported; the same data, permutation and initial weights as the subject."""
    jax_snn.configure_threads(threads)
    spikes, labels = make_spikes(steps, density)
    xs, ys = jax_snn.dense_batches(spikes, labels, epoch_order(), BATCH)
    del spikes
    net = make_net(n_hidden, threads=1)
    return jax_snn.time_epochs(xs, ys, net.w1, net.w2, DT, TAU, TAU, best_of=best_of)


WORKERS = {"yardstick": worker_yardstick, "jax": worker_jax}


def bench_cell(n_hidden, density, steps, events, labels, args, jax_ok: str) -> dict:
    """One cell, ``args.reps`` interleaved repetitions of: yardstick (a) and the dense floor
    (one subprocess), spikeloc's epoch, JAX's epoch (a subprocess; when ``jax_ok == "ok"``)."""
    n_batches = len(events) // BATCH
    yard_args = dict(steps=steps, n_in=N_IN, n_hidden=n_hidden, density=events.density,
                     n_batches=n_batches, batch=BATCH, best_of=args.best_of, dense_floor=True)
    jax_args = dict(steps=steps, density=density, n_hidden=n_hidden, threads=args.threads,
                    best_of=args.best_of)
    env = {"OPENBLAS_NUM_THREADS": "1"} if args.threads == 1 else None
    spikeloc_epoch(events, labels, n_hidden, args.threads)  # warm-up (scratch pool, pages)
    a, dense, e, jx, others, jax_others, jax_cores, forms = [], [], [], [], [], [], [], []
    for _ in range(args.reps):
        ya = _bench.run_worker(__file__, ["yardstick", json.dumps(yard_args)], env=env)
        t = spikeloc_epoch(events, labels, n_hidden, args.threads)
        a.append(ya["best"]); dense.append(ya["dense"]); e.append(t.seconds)
        others.append(max(ya["others"], ya["dense_others"], t.others))
        if jax_ok == "ok":
            r = _bench.run_worker(__file__, ["jax", json.dumps(jax_args)])
            jx.append(r["best"]); jax_others.append(r["others"])
            jax_cores.append(r["cpu"] / r["best"]); forms.append(r["form"])
    padded = -(-n_hidden // 8) * 8
    floor = 2 * events.density * padded / n_hidden  # in units of (a)
    return dict(n_hidden=n_hidden, density=events.density, steps=steps, epoch=e, a=a,
                ratio=[x / y for x, y in zip(e, a)], others=others, floor=floor,
                bar=bar(density), path="events", dense=dense,
                dense_a=[x / y for x, y in zip(dense, a)],
                dense_ratio=[x / y for x, y in zip(e, dense)], jax=jx, jax_status=jax_ok,
                jax_ratio=[x / y for x, y in zip(e, jx)], jax_others=jax_others,
                jax_cores=jax_cores, jax_forms=forms)


def winner(c) -> str:
    """Which path wins a cell against the dense floor (median epoch / dense floor)."""
    r = summary(c["dense_ratio"])[0]
    return "events" if r < 1.0 else f"dense could win by <= {r:.2f}x"


def jax_cells(c) -> tuple:
    """(JAX [s], epoch / JAX) as table text."""
    if not c["jax"]:
        return c["jax_status"], "-"
    return f"{summary(c['jax'])[0]:.3f}", fmt_ratio(c["jax_ratio"], 2)


def markdown(cells) -> str:
    lines = ["| N_h | density | T | epoch [s] | (a) X@W1 [s] | epoch / (a) median [min, max] | "
             "bar | path | event floor [x (a)] | epoch / event floor | dense floor [x (a)] | "
             "epoch / dense floor | wins | JAX [s] | epoch / JAX median [min, max] | "
             "others [cores] |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        e = summary(c["epoch"])[0]
        ok = "met" if summary(c["ratio"])[0] <= c["bar"] else "**not met**"
        jax_s, jax_r = jax_cells(c)
        if c["jax"] and summary(c["jax_ratio"])[0] >= 1.0:
            jax_r += " **(JAX faster)**"
        lines.append(f"| {c['n_hidden']} | {c['density']:.3f} | {c['steps']} | {e:.3f} | "
                     f"{summary(c['a'])[0]:.3f} | {fmt_ratio(c['ratio'], 2)} | <= {c['bar']} "
                     f"({ok}) | {c['path']} | {c['floor']:.2f} | "
                     f"{summary(c['ratio'])[0] / c['floor']:.1f} | "
                     f"{summary(c['dense_a'])[0]:.2f} | {fmt_ratio(c['dense_ratio'], 2)} | "
                     f"{winner(c)} | {jax_s} | {jax_r} | "
                     f"{max(summary(c['others'])[0], max(c['jax_others'], default=0.0)):.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Training epoch / dense products over N_h x "
                                            "density x T (see the module docstring).")
    p.add_argument("--hidden", default="100,400,1600", help="N_h values (default 100,400,1600)")
    p.add_argument("--densities", default="0.02,0.22,0.47",
                   help="input spike densities (default 0.02,0.22,0.47)")
    p.add_argument("--steps", default="100,1000", help="T values (default 100,1000)")
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions (default 3)")
    p.add_argument("--best-of", type=int, default=2,
                   help="rounds of yardstick (a) in its subprocess (default 2)")
    p.add_argument("--threads", type=int, default=0, choices=(0, 1),
                   help="0: default threads for spikeloc and OpenBLAS; 1: both single-threaded "
                        "(the comparison a second busy process disturbs least) (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: N_h 100,400; T 100; 1 repetition")
    p.add_argument("--no-jax", action="store_true",
                   help="skip the JAX column (it needs jax: pip install -e '.[bench]')")
    _bench.add_worker_option(p)
    args = p.parse_args(argv)
    if _bench.serve_worker(args, WORKERS):
        return 0
    if args.quick:
        args.hidden, args.steps, args.reps = "100,400", "100", 1
    hidden = [int(x) for x in args.hidden.split(",")]
    densities = [float(x) for x in args.densities.split(",")]
    steps = [int(x) for x in args.steps.split(",")]
    if args.reps < 1 or any(h < 1 for h in hidden) or any(not 0 < d < 1 for d in densities) \
            or any(t < 2 for t in steps):
        p.error("need --reps >= 1, N_h >= 1, 0 < density < 1, T >= 2")

    info = _bench.machine_info()
    print("spikeloc benchmark: epoch scaling" + (" (--quick)" if args.quick else ""))
    _bench.print_machine(info)
    print(f"settings: {SAMPLES} samples, batch {BATCH}, {N_IN} inputs, {CLASSES} classes, "
          f"reps {args.reps}, yardstick best of {args.best_of}, threads "
          + ("1 (spikeloc, OpenBLAS and XLA)" if args.threads == 1 else "default"))
    jax_ok = jax_snn.benchmark_status(args.threads, args.no_jax)
    cells = []
    for t in steps:
        for d in densities:
            events, labels = make_events(t, d)
            for h in hidden:
                c = bench_cell(h, d, t, events, labels, args, jax_ok)
                cells.append(c)
                jax_s, jax_r = jax_cells(c)
                jax_extra = (f" ({summary(c['jax_cores'])[0]:.1f} cores, others "
                             f"{max(c['jax_others']):.1f}, form {'/'.join(c['jax_forms'])})"
                             if c["jax"] else "")
                print(f"  N_h {h:5d}  density {c['density']:.3f}  T {t:5d}: epoch "
                      f"{summary(c['epoch'])[0]:.3f} s, (a) {summary(c['a'])[0]:.3f} s, "
                      f"epoch / (a) {fmt_ratio(c['ratio'], 2)} (bar <= {c['bar']}), "
                      f"event floor {c['floor']:.2f} x (a) -> epoch / floor "
                      f"{summary(c['ratio'])[0] / c['floor']:.1f}; dense floor "
                      f"{summary(c['dense_a'])[0]:.2f} x (a), epoch / dense floor "
                      f"{fmt_ratio(c['dense_ratio'], 2)} -> {winner(c)}; JAX {jax_s} s"
                      f"{jax_extra}, epoch / JAX {jax_r}; others "
                      f"{summary(c['others'])[0]:.1f}", flush=True)
            del events
    print("\nload average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("\nMarkdown (for benchmarks/RESULTS.md):\n")
    print(markdown(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())

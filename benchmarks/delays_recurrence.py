"""Benchmark: what delays, recurrence and e-prop's BPTT view cost (MODEL.md section 7).

Epochs (as ``benchmarks/epoch.py``: the tutorial stimulus with one phase offset per sample,
4096 samples as SpikeEvents, batch 64 in a shuffled order, ``loss_and_grad`` + Adam lr 0.01)
of the tutorial network SNN 200 -> 100 -> 12, tau 20 ms, mean readout:

* ``default``: the tutorial's network, its own fast kernel (the yardstick);
* ``general``: the same network on the general kernel (per-neuron time constants, all equal:
  a research variant, no delays): what the general kernel itself costs;
* ``input``: ``delays=Delays(max_steps=10, per="input")`` (bar: <= 1.5x default);
* ``synapse``: ``delays=Delays(max_steps=10, per="synapse")`` (bar: <= 4x default);
* ``recurrent``: ``recurrent=True`` (bar: <= 2.5x default).

The configurations run interleaved in one process (one epoch of each per repetition, in
turn), with the default thread count and with ``threads=1``; each ratio is taken within a
repetition, reported as median [min, max]. The delays start from their default
``init="uniform"`` (U(0, 10) steps). Per configuration the table also gives the time per input
event, and for the delays the weight rows an input event adds to the forward currents and to
the weight gradient (counted on the data: per input a run of r consecutive spikes costs r + 1
rows forward and each event two adjoint rows backward; per synapse an event costs one row per
lag its synapses use, each way), which is what the extra time is made of, and the floor they
set: rows over the default's two (every kernel flushes subnormals since 38658f8).

e-prop: ``EPropNetwork.for_stimulus(stim, 100 hidden).bptt()`` on a batch of 64 (the general
network's Swift kernel) against the NumPy BPTT it replaced
(``spikeloc.reference.eprop.bptt_loss_and_grad`` on the same batch), interleaved; bar: >= 50x.
Beside it the machine's limit in the same run: the multiply-adds no BPTT can skip (a W_in row
per input event forward and one backward, a dense W_rec^T back-projection per step) at the
float32 GEMM rate of NumPy's BLAS, and the speed-up over the NumPy BPTT that this bound allows.

Usage::

    PYTHONPATH=python python benchmarks/delays_recurrence.py            # ~5 min
    PYTHONPATH=python python benchmarks/delays_recurrence.py --quick    # smoke run

Nothing is asserted; the bars are printed for reference.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench  # noqa: E402
from _bench import fmt_ratio, fmt_time  # noqa: E402

sl = _bench.import_spikeloc()

CONFIGS = {
    "default": dict(),
    "general": dict(tau_hidden=np.full(100, 20e-3)),
    "input": dict(delays=sl.Delays(max_steps=10, per="input")),
    "synapse": dict(delays=sl.Delays(max_steps=10, per="synapse")),
    "recurrent": dict(recurrent=True),
}
BARS = {"input": 1.5, "synapse": 4.0, "recurrent": 2.5}
LR = 0.01


def make_net(name, stim, threads):
    kw = dict(CONFIGS[name])
    return sl.SNN.for_stimulus(stim, n_hidden=100, tau_output=20e-3, seed=0, threads=threads,
                               **kw)


def epoch(net, events, labels, order, batch) -> float:
    """Seconds of one training epoch (the batches of ``order``), loss_and_grad + Adam."""
    opt = sl.Adam(net, lr=LR)
    t = time.perf_counter()
    for start in range(0, len(order) - batch + 1, batch):
        idx = order[start:start + batch]
        _, grads = net.loss_and_grad(events, labels[idx], index=idx)
        opt.step(grads)
        net.after_step()
    return time.perf_counter() - t


def rows_per_event(net, spikes) -> tuple[float, float]:
    """Weight rows an input event adds forward (to the currents) and backward (to the weight
    gradient), counted on the data: the work an epoch cannot skip, in units of the default
    network's one row each way."""
    opts = net.delay_options
    events = spikes.sum()
    if opts is None:
        return 1.0, 1.0
    d = net.delays.astype(np.float64)
    k = np.floor(d).astype(np.int64)
    f = d - k
    per_input = spikes.sum(axis=(0, 1))
    if opts.per == "input":
        # forward: a run of r spikes of input i reaches r + 1 steps (r with f = 0); backward:
        # each event reads the adjoints at lags k and k + 1 (one with f = 0)
        x = spikes.astype(bool)
        starts = (x[:, 1:] & ~x[:, :-1]).sum(axis=(0, 1)) + x[:, 0].sum(axis=0)
        forward = (events + (starts * (f > 0)).sum()) / events
        backward = (per_input * (1 + (f > 0))).sum() / events
        return float(forward), float(backward)
    w = net.w1
    rows = 0.0
    for i in range(net.n_in):
        lags = set(k[i][w[i] * (1 - f[i]) != 0]) | set(k[i][w[i] * f[i] != 0] + 1)
        rows += per_input[i] * len(lags)
    return float(rows / events), float(rows / events)


def bench_epochs(args) -> dict:
    stim = sl.Stimulus(phase_offset="per_sample")
    ipd, spikes = stim.generate(args.samples, seed=0)
    events = sl.SpikeEvents.from_dense(spikes)
    labels = stim.labels(ipd)
    order = np.random.default_rng(1).permutation(args.samples)
    n_events = float(spikes[order[: (args.samples // 64) * 64]].sum())
    nets = {(name, t): make_net(name, stim, t) for name in args.configs for t in (0, 1)}
    rows = {name: rows_per_event(nets[(name, 0)], spikes) for name in args.configs}
    for net in nets.values():  # warm up (pools, page faults)
        epoch(net, events, labels, order[:128], 64)
    times = {key: [] for key in nets}
    for rep in range(args.reps):
        line = []
        for threads in (0, 1):
            for name in args.configs:
                net = make_net(name, stim, threads)  # the same start every repetition
                times[(name, threads)].append(epoch(net, events, labels, order, 64))
            base = times[("default", threads)][-1]
            line.append(" ".join(f"{name} {times[(name, threads)][-1] / base:.2f}"
                                 for name in args.configs if name != "default"))
        print(f"rep {rep + 1}: threads=default: {line[0]} | threads=1: {line[1]}", flush=True)
    return {"times": times, "rows": rows, "events": n_events}


def bench_eprop(args) -> dict:
    """Swift BPTT view, e-prop's own kernel and the NumPy BPTT on one batch, interleaved; and
    the machine's limit: the multiply-adds the BPTT view cannot avoid at the float32 GEMM rate
    of this machine (NumPy's BLAS, the same two threads), measured in the same run."""
    from spikeloc.reference.eprop import bptt_loss_and_grad
    stim = sl.Stimulus(phase_offset="per_sample")
    ipd, spikes = stim.generate(64, seed=2)
    labels = stim.labels(ipd)
    events = sl.SpikeEvents.from_dense(spikes)
    net = sl.EPropNetwork.for_stimulus(stim, n_hidden=100, seed=0)
    view = net.bptt()
    view.loss_and_grad(events, labels)
    net.loss_and_grad(events, labels)
    swift, numpy, eprop, gemm = [], [], [], []
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    for _ in range(args.eprop_reps):
        t = time.perf_counter()
        view.loss_and_grad(events, labels)
        swift.append(time.perf_counter() - t)
        t = time.perf_counter()
        bptt_loss_and_grad(spikes, labels, net.w_in, net.w_rec, net.w_out, net.b, dt=net.dt,
                           tau_m=net.tau_m, tau_out=net.tau_out, v_th=net.v_th,
                           gamma=net.gamma, window=net.window, loss=net.loss)
        numpy.append(time.perf_counter() - t)
        t = time.perf_counter()
        net.loss_and_grad(events, labels)
        eprop.append(time.perf_counter() - t)
        t = time.perf_counter()
        a @ a
        gemm.append(1024 ** 3 / (time.perf_counter() - t))   # multiply-adds per second
    # unavoidable multiply-adds: each input event adds a row of W_in (forward) and a row of
    # its gradient (backward), each step back-projects the adjoint through W_rec^T (dense)
    B, T, _ = spikes.shape
    n_h = net.n_hidden
    fma = 2.0 * float(spikes.sum()) * n_h + (B * (T + 1) * n_h * n_h if net.recurrent else 0)
    return {"swift": swift, "numpy": numpy, "eprop": eprop, "gemm": gemm, "fma": fma}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--eprop-reps", type=int, default=5)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--quick", action="store_true", help="1024 samples, 2 repetitions")
    args = ap.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    if "default" not in args.configs:
        args.configs.insert(0, "default")
    if args.quick:
        args.samples, args.reps, args.eprop_reps = 1024, 2, 2
    info = _bench.machine_info()
    _bench.print_machine(info)
    print(f"tutorial epochs: {args.samples} samples, batch 64, {args.reps} repetitions", flush=True)
    res = bench_epochs(args)
    print("\n| config | threads | epoch | / default epoch | bar | time per input event "
          "[ns] | rows per input event (forward + backward) | floor: rows / default's rows |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.configs:
        fwd, bwd = res["rows"][name]
        for threads in (0, 1):
            t = res["times"][(name, threads)]
            ratios = [a / b for a, b in zip(t, res["times"][("default", threads)])]
            per_event = 1e9 * float(np.median(t)) / res["events"]
            print(f"| {name} | {'default' if threads == 0 else 1} | {fmt_time(t)} | "
                  f"{fmt_ratio(ratios)} | {BARS.get(name, '')} | {per_event:.1f} | "
                  f"{fwd:.2f} + {bwd:.2f} | {(fwd + bwd) / 2:.2f} |")
    print("\nfloor: the epoch of an event-driven kernel is its row adds (a 100-float weight row "
          "forward, a gradient row backward) at the default kernel's cost per row, measured "
          "above; a configuration's ratio cannot go below its rows over the default's 1 + 1 "
          "without a cheaper row (the recurrent row adds W_rec^T back-projections per step, "
          "not counted)")
    if args.eprop_reps:
        ep = bench_eprop(args)
        ratios = [n / s for n, s in zip(ep["numpy"], ep["swift"])]
        rate = float(np.median(ep["gemm"]))
        bound = ep["fma"] / rate
        print(f"\ne-prop BPTT view, batch 64, T = 100, 100 hidden, recurrent: Swift "
              f"{fmt_time(ep['swift'])}, NumPy reference {fmt_time(ep['numpy'])}, speed-up "
              f"{fmt_ratio(ratios, 1)} (bar >= 50); e-prop's own kernel {fmt_time(ep['eprop'])}")
        print(f"machine limit: {ep['fma'] / 1e6:.0f} M unavoidable multiply-adds at the float32 "
              f"GEMM rate {rate / 1e9:.1f} G/s = {1e3 * bound:.1f} ms; the Swift kernel runs at "
              f"{ep['fma'] / float(np.median(ep['swift'])) / 1e9:.1f} G/s; the largest speed-up "
              f"possible over the NumPy BPTT is {float(np.median(ep['numpy'])) / bound:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

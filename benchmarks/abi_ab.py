"""A/B timing of two builds of the package: the cost of crossing into the kernels.

Two ``python/`` directories (e.g. a copy of the build before a change to ``_native.c`` and the
current one) are timed in alternating fresh worker processes (A, B, B, A, ...; the kernels
library of one build cannot be loaded beside the other's in one process). Each worker, with
``threads=1`` and the calling thread's CPU time (steadier than the wall clock on a shared
machine), measures the best of several repetitions (the least disturbed one) of:

* ``native forward, 1 sample``: ``_native.snn_forward`` on one tutorial sample (the wrapper's
  argument handling around a small kernel call);
* ``net.logits, 1 sample``: the same through the public API (plus its Python checks);
* ``sgd_step, 4 floats``: ``_native.sgd_step`` on 4 weights (almost nothing but the wrapper);
* ``epoch``: one tutorial training epoch (4096 samples, batch 64, ``loss_and_grad`` + Adam);
* ``SpikeEvents.from_dense``: building the event lists of those 4096 samples;
* ``stimulus as events``: ``Stimulus.generate(4096, events=True)`` (the stimulus kernel);
* ``membrane-only epoch``, ``e-prop epoch``: the tutorial epoch of ``MembraneOnly`` (spk_snn_*
  with n_hidden 0 since ABI 5) and of ``EPropNetwork`` (100 hidden), ``loss_and_grad`` + Adam.

Prints per measure the median time of each build and the ratio B/A per pair of workers
(median [min, max]); the yardstick of each ratio is the other build, measured in the same run::

    cp -r python /tmp/before                     # before the change (built)
    python setup.py build_ext --inplace          # after it
    python benchmarks/abi_ab.py /tmp/before python --pairs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _bench  # noqa: E402

MEASURES = ("native forward, 1 sample", "net.logits, 1 sample", "sgd_step, 4 floats", "epoch",
            "SpikeEvents.from_dense", "stimulus as events", "membrane-only epoch", "e-prop epoch")


def per_call(fn, calls: int, repeats: int = 9) -> float:
    """Least thread CPU time per call [s] of ``repeats`` runs of ``calls`` calls."""
    times = []
    for _ in range(repeats):
        t = time.thread_time()
        for _ in range(calls):
            fn()
        times.append((time.thread_time() - t) / calls)
    return min(times)


def worker() -> dict:
    import numpy as np
    import spikeloc as sl
    from spikeloc import _native

    stim = sl.Stimulus.tutorial()
    ipd, spikes = stim.generate(4096, seed=1, threads=1)
    labels = stim.labels(ipd)
    x = sl.SpikeEvents.from_dense(spikes, threads=1)
    build = per_call(lambda: sl.SpikeEvents.from_dense(spikes, threads=1), 1, repeats=3)
    net = sl.SNN.for_stimulus(stim, n_hidden=100, threads=1)
    one = np.array([7], dtype=np.int64)
    cfg, ev, logits = net._abi_config(stim.steps), x._abi(), np.empty((1, 12), np.float32)
    w, g = np.zeros(4, np.float32), np.zeros(4, np.float32)
    out = {
        "native forward, 1 sample": per_call(
            lambda: _native.snn_forward(cfg, ev, one, 1, net.w1, net.w2, logits, None, None, 1),
            2000),
        "net.logits, 1 sample": per_call(lambda: net.logits(x, index=one), 2000),
        "sgd_step, 4 floats": per_call(lambda: _native.sgd_step(w, g, 0.0), 20000),
        "SpikeEvents.from_dense": build,
        "stimulus as events": per_call(lambda: stim.generate(4096, seed=1, threads=1,
                                                             events=True), 1, repeats=3),
    }
    batches = [np.arange(b, b + 64) for b in range(0, 4096, 64)]
    models = {"epoch": net, "membrane-only epoch": sl.MembraneOnly.for_stimulus(stim, threads=1),
              "e-prop epoch": sl.EPropNetwork.for_stimulus(stim, n_hidden=100, threads=1)}
    for name, model in models.items():
        opt = sl.Adam(model, lr=0.01)

        def epoch():
            for index in batches:
                opt.step(model.loss_and_grad(x, labels[index], index=index)[1])

        epoch()  # warm-up
        out[name] = per_call(epoch, 1, repeats=3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="python/ directory of build A (the yardstick)")
    ap.add_argument("b", help="python/ directory of build B")
    ap.add_argument("--pairs", type=int, default=5, help="pairs of workers (default 5)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args()
    if args.worker:
        print(json.dumps(worker()))
        return
    print(_bench.machine_info())
    runs = {"A": [], "B": []}
    for pair in range(args.pairs):
        for which in ("AB" if pair % 2 == 0 else "BA"):
            path = os.path.abspath(args.a if which == "A" else args.b)
            runs[which].append(_bench.run_worker(__file__, [args.a, args.b],
                                                 env={"PYTHONPATH": path}))
    print(f"{'measure':28s} {'A median':>12s} {'B median':>12s}   B / A per pair")
    for m in MEASURES:
        a = [r[m] for r in runs["A"]]
        b = [r[m] for r in runs["B"]]
        unit, scale = ("us", 1e6) if statistics.median(a) < 1e-2 else ("s", 1.0)
        print(f"{m:28s} {statistics.median(a) * scale:9.2f} {unit:2s} "
              f"{statistics.median(b) * scale:9.2f} {unit:2s}   "
              f"{_bench.fmt_ratio([y / x for x, y in zip(a, b)])}")


if __name__ == "__main__":
    main()

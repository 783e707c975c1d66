"""e-prop (spikeloc.EPropNetwork) against back-propagation through time: memory, speed, accuracy.

(a) Memory. One training step (loss_and_grad on a batch of 64) at T = 100 and T = 1000 steps,
    for e-prop (EPropNetwork, the IPD sizes 200 -> 100 -> 12, no recurrent weights) and for BPTT
    (spikeloc.SNN.loss_and_grad, 200 -> 100 -> 12), each in a fresh subprocess. Measured: the
    process's peak resident memory during two steps above its resident memory just before
    them (the data already built), from /proc/self/status: the high-water mark VmHWM is reset
    to the current RSS by writing "5" to /proc/self/clear_refs before the steps (Linux). This
    counts everything the step allocates, Swift scratch included (tracemalloc would see only
    Python-side arrays). Bar: e-prop grows < 10 % from T = 100 to 1000; BPTT grows with T.
(b) Speed. Time per sample-step of e-prop's loss_and_grad against the BPTT forward + backward
    (SNN.loss_and_grad) on the same sizes and data (tutorial stimulus, T = 100, batch 64),
    interleaved repeats in one process, default threads and threads=1; the ratio
    e-prop / BPTT per pair, median [min, max]. Bar: within 2x. e-prop with recurrent weights
    (100 more presynaptic rows) is reported too.
(c) Accuracy. The tutorial IPD task (4096 training, 1024 test samples, phase offset per
    sample, 10 epochs, Adam lr 0.01, batch 64): e-prop with random and with symmetric
    feedback, BPTT of the same network (net.bptt(): the NumPy reference), spikeloc.SNN, and
    random e-prop with lr 0.005 for 20 epochs (with lr 0.01 random feedback is unstable: its
    accuracy after 10 or 20 epochs scattered from 47 % to 61 % over runs that differed only in
    float rounding). One seed each. Bar: e-prop >= 50 % test accuracy (chance 8.3 %).

Run from the repository root after ``python setup.py build_ext --inplace``::

    PYTHONPATH=python python benchmarks/eprop.py            # ~10 min
    PYTHONPATH=python python benchmarks/eprop.py --quick    # smoke run (~1 min)
"""

from __future__ import annotations

import argparse
import os
import sys

# One OpenBLAS thread: the NumPy BPTT of (c) makes many small products, which multi-threaded
# OpenBLAS slows down ~10x on a busy 2-core machine (and its spinning threads would compete
# with the kernels being timed). Set before NumPy is imported; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import _bench  # noqa: E402

sl = _bench.import_spikeloc()
SCRIPT = os.path.abspath(__file__)


def worker_memory(kind, steps, n_hidden, batch):
    stim = sl.Stimulus.tutorial(phase_offset="per_sample", duration=steps * 1e-3)
    ipd, x = stim.generate(batch, seed=0, events=True)
    labels = stim.labels(ipd)

    if kind == "bptt":
        net = sl.SNN.for_stimulus(stim, n_hidden=n_hidden)
    else:
        net = sl.EPropNetwork.for_stimulus(stim, n_hidden=n_hidden, recurrent=False)
    before = _bench.rss_now()
    _bench.reset_hwm()
    for _ in range(2):
        net.loss_and_grad(x, labels)
    return {"extra_peak": _bench.hwm_since_reset() - before, "rss_before": before}


def memory(args):
    """Extra peak RSS of two training steps at several T, median of 3 fresh processes each.

    The bar compares T = 100 with T = 1000; the longer T show whether memory keeps growing.
    """
    steps_list = (100, 1000, 2000, 5000) if not args.quick else (50, 500)
    repeats = 3 if not args.quick else 1
    out = {}
    for kind in ("e-prop", "bptt"):
        out[kind] = [float(np.median([
            _bench.run_worker(SCRIPT, ["memory", _json(kind=kind, steps=T, n_hidden=100,
                                                       batch=64)])["extra_peak"]
            for _ in range(repeats)])) for T in steps_list]
        growth = out[kind][1] / out[kind][0] - 1
        print(f"(a) {kind:>6}: " + ", ".join(f"T={T}: {v / 2**20:7.2f} MiB" for T, v in
                                            zip(steps_list, out[kind]))
              + f"  growth T={steps_list[0]} -> {steps_list[1]}: {100 * growth:+.1f} %",
              flush=True)
    return steps_list, out


def _json(**kw):
    import json
    return json.dumps(kw)


def speed(args):
    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    ipd, x = stim.generate(64, seed=0, events=True)
    labels = stim.labels(ipd)
    repeats = 3 if args.quick else 9
    rows = []
    for threads in (None, 1):
        snn = sl.SNN.for_stimulus(stim, n_hidden=100, threads=threads)
        ff = sl.EPropNetwork.for_stimulus(stim, n_hidden=100, recurrent=False, threads=threads)
        rec = sl.EPropNetwork.for_stimulus(stim, n_hidden=100, recurrent=True, threads=threads)
        per = 64 * stim.steps
        times = {"bptt": [], "e-prop": [], "e-prop recurrent": []}
        for model in (snn, ff, rec):
            model.loss_and_grad(x, labels)                  # warm-up
        for _ in range(repeats):
            for name, model in (("bptt", snn), ("e-prop", ff), ("e-prop recurrent", rec)):
                with _bench.Timer() as t:
                    model.loss_and_grad(x, labels)
                times[name].append(t.seconds / per)
        ratios = [e / b for e, b in zip(times["e-prop"], times["bptt"])]
        ratios_rec = [e / b for e, b in zip(times["e-prop recurrent"], times["bptt"])]
        label = "default" if threads is None else str(threads)
        print(f"(b) threads={label}: BPTT {1e6 * np.median(times['bptt']):.2f} us, e-prop "
              f"{1e6 * np.median(times['e-prop']):.2f} us, recurrent "
              f"{1e6 * np.median(times['e-prop recurrent']):.2f} us per sample-step; ratio "
              f"e-prop/BPTT {_bench.fmt_ratio(ratios)}, recurrent {_bench.fmt_ratio(ratios_rec)}",
              flush=True)
        rows.append((label, times, ratios, ratios_rec))
    return rows


def accuracy(args):
    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    n_train, n_test, epochs = (512, 256, 2) if args.quick else (4096, 1024, 10)
    ipd, x = stim.generate(n_train, seed=0, events=True)
    ipd_t, xt = stim.generate(n_test, seed=1, events=True)
    out = {}
    for kind in ("e-prop random", "e-prop symmetric", "BPTT (same network, NumPy)",
                 "spikeloc.SNN (BPTT kernel)", "e-prop random, lr 0.005, 2x epochs"):
        run_epochs = 2 * epochs if "2x" in kind else epochs
        lr = 0.005 if "0.005" in kind else 0.01
        if kind.startswith("spikeloc.SNN"):
            net = trainee = sl.SNN.for_stimulus(stim, n_hidden=100)
        else:
            net = sl.EPropNetwork.for_stimulus(
                stim, n_hidden=100, recurrent=False,
                feedback="symmetric" if "symmetric" in kind else "random")
            trainee = net.bptt() if kind.startswith("BPTT") else net
        history = sl.train(trainee, ipd, x, stimulus=stim, epochs=run_epochs, lr=lr,
                           batch_size=64, progress=False)
        ev = sl.evaluate(net, ipd_t, xt, stim)
        out[kind] = (ev.accuracy, ev.mean_abs_error_deg, float(np.median(history.epoch_time)))
        print(f"(c) {kind:>28}: test {100 * ev.accuracy:5.1f} %, error "
              f"{ev.mean_abs_error_deg:5.1f} deg, {out[kind][2]:.2f} s/epoch", flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (small sizes)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["memory", "speed", "accuracy"])
    _bench.add_worker_option(parser)
    args = parser.parse_args(argv)
    if _bench.serve_worker(args, {"memory": worker_memory}):
        return 0
    print(_bench.machine_info() if hasattr(_bench, "machine_info") else "")
    mem = memory(args) if "memory" not in args.skip else None
    spd = speed(args) if "speed" not in args.skip else None
    acc = accuracy(args) if "accuracy" not in args.skip else None

    print("\nMarkdown (for benchmarks/RESULTS.md)\n")
    if mem:
        steps_list, out = mem
        head = " | ".join(f"T = {T}" for T in steps_list)
        print(f"| rule | extra peak RSS, {head} | growth {steps_list[0]} -> {steps_list[1]} "
              f"| bar |\n|---|" + "---|" * len(steps_list) + "---|---|")
        for kind, values in out.items():
            bar = "< 10 %" if kind == "e-prop" else "grows with T"
            cells = " | ".join(f"{v / 2**20:.2f} MiB" for v in values)
            print(f"| {kind} | {cells} | {100 * (values[1] / values[0] - 1):+.1f} % | {bar} |")
        print()
    if spd:
        print("| threads | BPTT [us/sample-step] | e-prop | e-prop / BPTT (bar <= 2) | "
              "e-prop recurrent | recurrent / BPTT |\n|---|---|---|---|---|---|")
        for label, times, ratios, ratios_rec in spd:
            print(f"| {label} | {1e6 * np.median(times['bptt']):.2f} | "
                  f"{1e6 * np.median(times['e-prop']):.2f} | {_bench.fmt_ratio(ratios)} | "
                  f"{1e6 * np.median(times['e-prop recurrent']):.2f} | "
                  f"{_bench.fmt_ratio(ratios_rec)} |")
        print()
    if acc:
        print("| training | test accuracy | abs. error [deg] | s/epoch |\n|---|---|---|---|")
        for kind, (a, e, s) in acc.items():
            print(f"| {kind} | {100 * a:.1f} % | {e:.1f} | {s:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The tutorial's envelope-power experiment (seed 002) as a spikeloc.sweep, on 1 and on 2
workers: total wall time and the 1 -> 2 worker speed-up.

The experiment: envelope power k in [0, 1, 2, 3, 4, 5, 10, 30, 40, 50, 100], 3 repeats each,
the tutorial's spiking network (100 hidden units, tau 20 ms, Adam lr 0.01, batch 64) trained
10 epochs on 4096 samples and tested on 2048 (:func:`spikeloc.experiment.tutorial_experiment`).
Seed 002 reports 49 minutes for one repeat of the 11 values. The issue's bars: under 2
minutes with 2 workers, and a speed-up of at least 1.7x from 1 to 2 workers.

Each run (1 worker, 2 workers) is a fresh Python process; with ``--rounds R`` they alternate
R times and the speed-up is reported per round (median [min, max]) next to the times. The
tables of the runs must be bit-identical (checked and printed). The machine is shared: the
"others" column is the mean number of cores busy with other processes during a run (with
``--executor processes`` it includes the pool's own worker processes, and "cpu" only counts
the parent; the pool is started and warmed up before the clock starts).

Usage::

    PYTHONPATH=python python benchmarks/sweep.py                 # the experiment, 1 round
    PYTHONPATH=python python benchmarks/sweep.py --rounds 3      # alternate 3 times
    PYTHONPATH=python python benchmarks/sweep.py --quick         # 3 values x 2 repeats, small
    PYTHONPATH=python python benchmarks/sweep.py --executor processes

Nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench  # noqa: E402

VALUES = [0, 1, 2, 3, 4, 5, 10, 30, 40, 50, 100]


def worker_sweep(workers, values, repeats, params, executor):
    sl = _bench.import_spikeloc()
    from spikeloc.experiment import tutorial_experiment
    grid = {"envelope_power": values, **{k: [v] for k, v in params.items()}}
    pool = None
    if executor == "processes":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        # start the worker processes and import spikeloc there before the clock starts
        tiny = {"n_train": 64, "n_test": 64, "epochs": 1, "n_hidden": 4, "anf_per_ear": 4}
        for f in [pool.submit(tutorial_experiment, tiny, 0) for _ in range(2 * workers)]:
            f.result()
    with _bench.Timer() as t:
        table = sl.sweep(tutorial_experiment, grid, repeats=repeats, progress=False,
                         workers=None if pool else workers, executor=pool)
    if pool is not None:
        pool.shutdown()
    records = table.without_timing()
    digest = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()[:16]
    summary = table.summary(["train_accuracy", "test_accuracy", "test_abs_error_deg"])
    return {"seconds": t.seconds, "cpu": t.cpu, "others": t.others, "digest": digest,
            "failed": len(table.failed), "jobs": len(table),
            "job_seconds": sum(r["time"] or 0 for r in table), "summary": summary}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--values", default=",".join(map(str, VALUES)),
                   help="envelope powers, comma-separated (default: the seed's 11 values)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per value (default 3)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per job (default 10)")
    p.add_argument("--n-train", type=int, default=4096, help="training samples (default 4096)")
    p.add_argument("--n-test", type=int, default=2048, help="test samples (default 2048)")
    p.add_argument("--rounds", type=int, default=1, help="alternations of 1 and 2 workers")
    p.add_argument("--executor", choices=["threads", "processes"], default="threads",
                   help="the default thread pool, or a spawn ProcessPoolExecutor")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: k in {0, 2, 10}, 2 repeats, 2 epochs, 1024/512 samples")
    _bench.add_worker_option(p)
    args = p.parse_args()
    if _bench.serve_worker(args, {"sweep": worker_sweep}):
        return
    values = [float(v) if "." in v else int(v) for v in args.values.split(",")]
    repeats, epochs, n_train, n_test = args.repeats, args.epochs, args.n_train, args.n_test
    if args.quick:
        values, repeats, epochs, n_train, n_test = [0, 2, 10], 2, 2, 1024, 512
    params = {"epochs": epochs, "n_train": n_train, "n_test": n_test}
    print(f"spikeloc benchmark: envelope-power sweep, {len(values)} values x {repeats} repeats "
          f"x {epochs} epochs, {n_train} training / {n_test} test samples, executor "
          f"{args.executor}" + (" (--quick)" if args.quick else ""))
    print("machine:", json.dumps(_bench.machine_info()))
    results = {1: [], 2: []}
    for r in range(args.rounds):
        for workers in (1, 2):
            res = _bench.run_worker(__file__, ["sweep", json.dumps(
                {"workers": workers, "values": values, "repeats": repeats, "params": params,
                 "executor": args.executor})], timeout=7200)
            results[workers].append(res)
            print(f"round {r + 1}, {workers} worker(s): {res['seconds']:.1f} s wall, "
                  f"{res['job_seconds']:.1f} s in jobs, cpu {res['cpu']:.1f} s, others "
                  f"{res['others']:.2f} cores, {res['jobs']} jobs ({res['failed']} failed), "
                  f"table {res['digest']}", flush=True)
    speedups = [a["seconds"] / b["seconds"] for a, b in zip(results[1], results[2])]
    digests = {res["digest"] for rs in results.values() for res in rs}
    print()
    print(f"1 worker : {_bench.fmt_time([r['seconds'] for r in results[1]])}")
    print(f"2 workers: {_bench.fmt_time([r['seconds'] for r in results[2]])}"
          f"   (bar: < 120 s for the full experiment)")
    print(f"speed-up 1 -> 2 workers: {_bench.fmt_ratio(speedups, 2)}   (bar: >= 1.7x)")
    print(f"tables bit-identical across runs and worker counts: {len(digests) == 1}")
    print("seed 002: 49 min for one repeat of the 11 values")
    print()
    print("| k | train accuracy | test accuracy | test error (deg) |")
    print("|---|---|---|---|")
    for row in results[2][-1]["summary"]:
        print(f"| {row['envelope_power']} | {100 * row['train_accuracy_mean']:.1f} +/- "
              f"{100 * row['train_accuracy_std']:.1f} % | {100 * row['test_accuracy_mean']:.1f} "
              f"+/- {100 * row['test_accuracy_std']:.1f} % | "
              f"{row['test_abs_error_deg_mean']:.1f} +/- {row['test_abs_error_deg_std']:.1f} |")


if __name__ == "__main__":
    main()

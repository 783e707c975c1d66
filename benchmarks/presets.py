"""Every experiment preset over several seeds, next to the number its seed notebook reports.

For a preset without a sweep, the experiment runs once per seed (``seed`` = 0 .. N-1: data,
weights and shuffling all follow it). For a preset with a sweep, the sweep runs with
``repeats = N`` (the sweep's job seeds; every combination sees the same ones) on local
threads. Each line gives the test accuracy as mean [min, max] over the runs, the standard
deviation, and the seconds per run (data generation, training and evaluation).

Usage::

    PYTHONPATH=python python benchmarks/presets.py                   # all IPD presets, 5 seeds
    PYTHONPATH=python python benchmarks/presets.py --presets tutorial,250hz --seeds 2
    PYTHONPATH=python python benchmarks/presets.py --presets eprop_nmnist --nmnist /data/N-MNIST

``250hz_tau_grid`` runs one repeat by default (``--grid-repeats``): seed 000 reports one run
per cell. It prints markdown tables for benchmarks/RESULTS.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench  # noqa: E402

sl = _bench.import_spikeloc()

#: What the seeds report (test accuracy, %), per preset and, for sweeps, per combination.
REPORTED = {
    "tutorial": "76.5 (other runs of the notebook: 54.8, 60.7)",
    "membrane_only": "22.7",
    "250hz": "81.5",
    "eprop": "- (spikeloc's BPTT network: 77.5)",
    "eprop_nmnist": "-",
}
REPORTED_SWEEPS = {
    "250hz_tau_grid": {(5e-4, 5e-4): "81.5", (1e-4, 5e-3): "77.4", (2e-4, 5e-3): "73.3",
                       (5e-4, 5e-3): "75.0", (1e-3, 5e-3): "59.3", (1.5e-3, 5e-3): "62.1",
                       (2e-3, 5e-3): "60.4", (2.5e-3, 5e-3): "61.7", (3e-3, 5e-3): "47.6",
                       (5e-3, 5e-3): "28.1"},
    "dale": {"[]": "about 65-80", '["w1"]': "about 45-54", '["w2"]': "about 63-73",
             "unconstrained": "-"},
    "learnable_tau": {0.0: "95.1 (DVS128 Gesture)", 0.01: "95.8 (DVS128 Gesture)",
                      0.1: "96.2 (DVS128 Gesture)"},
    "envelope_power": {},
}


def pct(values) -> str:
    values = [100 * v for v in values]
    spread = f" +- {statistics.pstdev(values):.1f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.1f}{spread} [{min(values):.1f}, {max(values):.1f}]"


def run_single(exp, seeds) -> list:
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        result = exp.replace({"seed": seed}).run(progress=False)
        rows.append(dict(result.metrics, seconds=time.perf_counter() - start))
        print(f"  seed {seed}: {result.summary()}", flush=True)
    return rows


def combination_label(name, combo) -> object:
    if name == "250hz_tau_grid":
        return (combo["model.tau_hidden"], combo["model.tau_output"])
    if name == "dale":
        if combo.get("model.dale.layers") == []:
            return "unconstrained"
        import json
        return json.dumps(combo.get("model.dale.excitatory_only"))
    return next(iter(combo.values()))


def run_sweep(name, exp, repeats, workers) -> list:
    start = time.perf_counter()
    table = exp.replace({"sweep.repeats": repeats}).sweep(progress=False, workers=workers)
    seconds = time.perf_counter() - start
    if table.failed:
        raise RuntimeError(f"{name}: {len(table.failed)} jobs failed: {table.failed[0]['error']}")
    print(table.summary(["test_accuracy"]), flush=True)
    rows = []
    for combo in table.combinations():
        label = combination_label(name, combo)
        values = table.values("test_accuracy", **combo)
        rows.append((label, values))
    print(f"  {len(table)} jobs in {seconds:.0f} s ({seconds / len(table):.1f} s per job on "
          f"{workers or sl.default_threads()} workers)", flush=True)
    return rows, seconds / len(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(p for p in sl.presets()
                                                      if p != "eprop_nmnist"))
    parser.add_argument("--seeds", type=int, default=5, help="runs (repeats) per preset")
    parser.add_argument("--grid-repeats", type=int, default=1,
                        help="repeats of 250hz_tau_grid (default 1, as seed 000)")
    parser.add_argument("--workers", type=int, default=None, help="sweep workers")
    parser.add_argument("--nmnist", default=None, help="N-MNIST folder for eprop_nmnist")
    args = parser.parse_args()
    _bench.print_machine(_bench.machine_info())
    single, sweeps = [], []
    for name in args.presets.split(","):
        exp = sl.Experiment.preset(name)
        if name == "eprop_nmnist":
            if not args.nmnist:
                print("eprop_nmnist skipped: give --nmnist /path/to/N-MNIST")
                continue
            exp = exp.replace({"nmnist.root": args.nmnist})
        print(f"{name}: {exp!r}", flush=True)
        if exp.has_sweep:
            repeats = args.grid_repeats if name == "250hz_tau_grid" else args.seeds
            rows, seconds = run_sweep(name, exp, repeats, args.workers)
            sweeps.append((name, repeats, rows, seconds))
        else:
            rows = run_single(exp, range(args.seeds))
            single.append((name, rows))

    print("\n| preset | test accuracy (%) mean +- std [min, max] | runs | seconds per run | "
          "seed reports (%) |")
    print("|---|---|---|---|---|")
    for name, rows in single:
        print(f"| `{name}` | {pct([r['test_accuracy'] for r in rows])} | {len(rows)} | "
              f"{statistics.fmean(r['seconds'] for r in rows):.1f} | {REPORTED[name]} |")
    for name, repeats, rows, seconds in sweeps:
        print(f"\n| `{name}` | test accuracy (%) mean +- std [min, max] over {repeats} | "
              f"seed reports (%) |")
        print("|---|---|---|")
        reported = REPORTED_SWEEPS.get(name, {})
        for label, values in rows:
            print(f"| {label} | {pct(values)} | {reported.get(label, '-')} |")
        print(f"\n({seconds:.1f} s per job)")


if __name__ == "__main__":
    main()

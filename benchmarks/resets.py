"""What a reset costs in accuracy: the ``tutorial`` experiment preset (100 hidden units, 10
epochs on 4096 samples, 2048 test samples) with each reset over several seeds (``seed`` =
0 .. N-1: data, weights and shuffling all follow it; every reset sees the same seeds).

Usage::

    PYTHONPATH=python python benchmarks/resets.py                       # delayed, zero, 5 seeds
    PYTHONPATH=python python benchmarks/resets.py --resets delayed,same_step,subtractive,zero

It prints each run and a markdown table for benchmarks/RESULTS.md (test accuracy in %, mean
+- population std [min, max], and the per-seed difference to the first reset listed).
Nothing is asserted; accuracy does not depend on the machine's load (results are the same
for every thread count).
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


def pct(values) -> str:
    values = [100 * v for v in values]
    spread = f" +- {statistics.pstdev(values):.1f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.1f}{spread} [{min(values):.1f}, {max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resets", default="delayed,zero", help="comma-separated resets")
    parser.add_argument("--seeds", type=int, default=5, help="runs per reset")
    args = parser.parse_args()
    resets = args.resets.split(",")
    _bench.print_machine(_bench.machine_info())
    accuracy = {r: [] for r in resets}
    seconds = {r: [] for r in resets}
    base = sl.Experiment.preset("tutorial")
    for seed in range(args.seeds):
        for reset in resets:
            start = time.perf_counter()
            result = base.replace({"seed": seed, "model.reset": reset}).run(progress=False)
            seconds[reset].append(time.perf_counter() - start)
            accuracy[reset].append(result.metrics["test_accuracy"])
            print(f"  seed {seed} reset {reset}: {result.summary()}", flush=True)
    first = resets[0]
    print(f"\n| reset | test accuracy (%) mean +- std [min, max] over {args.seeds} seeds | "
          f"minus `{first}`, per seed (points) | seconds per run |")
    print("|---|---|---|---|")
    for reset in resets:
        diff = [100 * (a - b) for a, b in zip(accuracy[reset], accuracy[first])]
        per_seed = ", ".join(f"{d:+.1f}" for d in diff) if reset != first else "-"
        print(f"| `{reset}` | {pct(accuracy[reset])} | {per_seed} | "
              f"{statistics.fmean(seconds[reset]):.1f} |")


if __name__ == "__main__":
    main()

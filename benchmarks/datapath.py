"""Benchmark: the data path of issue 12 (events from the start, from_dense at bandwidth).

Measured in one process, subject and yardstick interleaved in every repetition (median
[min, max] over repetitions; each ratio from one adjacent pair), with "others" (cores busy with
other processes, ~0 on a quiet machine) for each repetition:

1. **Training from a dense array** (tutorial): ``sl.train(net, ipd, dense, epochs=1)`` /
   the same call with the ``SpikeEvents`` of the same data (4096 samples, SNN 200 -> 100 -> 12,
   batch 64, Adam; ``train`` converts the dense array on every call). Bar: <= 1.25.
2. **250 Hz preset, events end to end**: ``Stimulus.hz250().generate(4096, seed,
   events=True)`` + one epoch of the ``250hz`` preset's network (``Experiment.preset("250hz")``:
   SNN 200 -> 5 -> 12, batch 64, Adam lr 0.01), wall seconds. Bar: <= 1.5 s.
3. **Stimulus generation** (tutorial and 250 Hz, 4096 samples): spikeloc dense
   (``generate``), spikeloc events (``generate(..., events=True)``) against the seeds' NumPy
   code (``benchmarks/stimulus.py``'s faithful copies: seed 002 / seed 000, ``np.random``) and
   the same code with NumPy's ``default_rng`` (``Generator.random``: same expressions, only the
   generator differs). Ratio: seed time / spikeloc time per sample. Bar: >= 30. The seeds' 250 Hz
   code holds three float64 arrays of the whole set (~5 MB per sample), so it runs on
   ``--seed-n-250hz`` samples (default 256) and its time is scaled per sample (it is linear in
   n: one vectorised pass).
4. **from_dense bandwidth**: ``SpikeEvents.from_dense`` of the tutorial and 250 Hz dense sets
   (4096 samples), GB/s of dense input, against ``np.copyto`` of the same array into a
   preallocated one (read + write of the array; the conversion reads it once).
5. **Peak memory** of ``Stimulus.hz250().generate(4096, seed, events=True)`` in a fresh
   subprocess: the peak RSS (VmHWM, reset just before) minus the RSS before, over the event
   lists' own bytes. Bar: <= 1.5.

Prints the machine (CPU, spikeloc's kernel variant from ``spikeloc.build_info()``, NumPy's BLAS
from threadpoolctl), then a markdown table for benchmarks/RESULTS.md. Bars are printed for
reference only, never asserted.

Usage (from the repository root, after ``python setup.py build_ext --inplace``)::

    PYTHONPATH=python python benchmarks/datapath.py            # ~2 min, ~3 GB peak
    PYTHONPATH=python python benchmarks/datapath.py --quick    # smoke run
    PYTHONPATH=python python benchmarks/datapath.py --parts 1,4  # only measurements 1 and 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

import _bench
from _bench import Timer, summary

sys.path.insert(0, os.path.dirname(__file__))
import stimulus as seeds  # noqa: E402  (the seeds' stimulus code, copied faithfully)


# ------------------------------------------------------- the seeds' code with default_rng
# The same expressions as seeds.seed002_input_signal / seed000_input_signal, with the global
# np.random replaced by a Generator (rng.random); nothing else changes.

def seed002_default_rng(num_samples, rng):
    ipd = rng.random(num_samples) * np.pi - np.pi / 2
    T = np.arange(seeds.duration_steps) * seeds.dt
    phi = 2 * np.pi * (seeds.f * T)
    phase_delays = np.linspace(0, np.pi / 2, seeds.anf_per_ear)
    a = seeds.anf_per_ear
    theta = np.zeros((num_samples, seeds.duration_steps, 2 * a))
    theta[:, :, :a] = phi[np.newaxis, :, np.newaxis] + phase_delays[np.newaxis, np.newaxis, :]
    theta[:, :, a:] = (phi[np.newaxis, :, np.newaxis] + phase_delays[np.newaxis, np.newaxis, :]
                       + ipd[:, np.newaxis, np.newaxis])
    spikes = (seeds.rate_max * seeds.dt * (0.5 * (1 + np.sin(theta))) ** seeds.envelope_power
              > rng.random((num_samples, seeds.duration_steps, 2 * a)))
    return ipd, spikes, theta


def seed000_default_rng(num_samples, rng):
    ipd = rng.random(num_samples) * np.pi - np.pi / 2
    times = np.arange(seeds.DURATION_STEPS) * seeds.DT
    phi = 2 * np.pi * (250 * seeds.HZ * times + rng.random())
    a = seeds.ANF_PER_EAR
    theta = np.zeros((num_samples, seeds.DURATION_STEPS, 2 * a))
    phase_delays = np.linspace(0, np.pi / 2, a)
    theta[:, :, :a] = phi[np.newaxis, :, np.newaxis] + phase_delays[np.newaxis, np.newaxis, :]
    theta[:, :, a:] = (phi[np.newaxis, :, np.newaxis] + phase_delays[np.newaxis, np.newaxis, :]
                       + ipd[:, np.newaxis, np.newaxis])
    spikes = (rng.random((num_samples, seeds.DURATION_STEPS, 2 * a))
              < 600 * seeds.HZ * seeds.DT * (0.5 * (1 + np.sin(theta))) ** 2)
    return ipd, spikes


SEED_CODE = {
    "tutorial": (lambda n: seeds.seed002_random_ipd_input_signal(n),
                 lambda n: seed002_default_rng(n, np.random.default_rng(0))),
    "250hz": (lambda n: seeds.seed000_random_ipd_input_signal(n),
              lambda n: seed000_default_rng(n, np.random.default_rng(0))),
}

# the measurement the test suite makes too (one script, run in a fresh process)
MEMORY_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "python",
                             "tests", "events_peak_memory.py")


def fmt(values, digits=3):
    med, lo, hi = summary(values)
    return f"{med:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def quiet(others):
    return "quiet" if max(others) <= 0.25 else f"others up to {max(others):.2f}"


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"({i.get('num_threads')} threads)" for i in threadpool_info()
                     if i.get("user_api") == "blas") or "no BLAS found"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--n", type=int, default=4096, help="samples per set")
    parser.add_argument("--seed-n-250hz", type=int, default=256,
                        help="samples of the seeds' 250 Hz code (scaled per sample)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 256 samples, 2 reps")
    parser.add_argument("--parts", default="1,2,3,4,5",
                        help="which measurements to make, comma-separated (default: all)")
    args = parser.parse_args()
    if args.quick:
        args.n, args.reps, args.seed_n_250hz = 256, 2, 64
    sl = _bench.import_spikeloc()
    from spikeloc.experiment import Experiment
    info = _bench.machine_info()
    _bench.print_machine(info)
    print(f"         spikeloc.build_info(): {sl.build_info().variant} kernels; "
          f"NumPy BLAS (threadpoolctl): {blas_info()}")
    n, reps = args.n, args.reps
    parts = {int(p) for p in args.parts.split(",")}
    rows = []

    if 1 in parts:
        train_dense_vs_events(sl, n, reps, rows)
    if 2 in parts:
        preset_epoch(sl, Experiment, n, reps, rows, args.quick)
    if 3 in parts:
        stimulus_generation(sl, n, reps, rows, args.seed_n_250hz)
    if 4 in parts:
        from_dense_bandwidth(sl, n, reps, rows)
    if 5 in parts:
        peak_memory(n, rows)

    print("\nMarkdown (for benchmarks/RESULTS.md):\n")
    print("| measure | median [min, max] | bar | load |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def train_dense_vs_events(sl, n, reps, rows):
    """1. train from dense vs from events (tutorial)."""
    stim = sl.Stimulus.tutorial()
    ipd, dense = stim.generate(n, seed=0)
    events = sl.SpikeEvents.from_dense(dense)

    def one_epoch(data):
        net = sl.SNN.for_stimulus(stim, n_hidden=100, tau_hidden=20e-3, seed=0)
        with Timer() as t:
            sl.train(net, ipd, data, stimulus=stim, epochs=1, batch_size=64, progress=False)
        return t
    one_epoch(events)
    ratios, others, t_dense, t_events = [], [], [], []
    for _ in range(reps):
        a, b = one_epoch(dense), one_epoch(events)
        ratios.append(a.seconds / b.seconds)
        others += [a.others, b.others]
        t_dense.append(a.seconds)
        t_events.append(b.seconds)
    print(f"\n1. train(dense, epochs=1) / train(events, epochs=1), tutorial {n}: {fmt(ratios)} "
          f"(dense {fmt(t_dense)} s, events {fmt(t_events)} s; {quiet(others)}); bar <= 1.25")
    rows.append(("`train(net, ipd, dense, epochs=1)` / same with `SpikeEvents` (tutorial, "
                 f"{n} samples, N_h 100)", fmt(ratios), "<= 1.25", quiet(others)))
    del dense, events


def preset_epoch(sl, Experiment, n, reps, rows, quick):
    """2. 250 Hz preset: generate as events + one epoch."""
    exp = Experiment.preset("250hz")
    hz = exp.stimulus()
    tr = exp.config["training"]
    n_train = n if quick else tr["n_train"]

    def preset_run():
        model = exp.model()
        with Timer() as t:
            ipd_h, ev_h = hz.generate(n_train, seed=0, events=True)
            sl.train(model, ipd_h, ev_h, stimulus=hz, epochs=1, lr=tr["lr"],
                     batch_size=tr["batch_size"], progress=False)
        return t
    preset_run()
    walls, others = [], []
    for _ in range(reps):
        t = preset_run()
        walls.append(t.seconds)
        others.append(t.others)
    print(f"2. 250hz preset: generate {n_train} samples as events + 1 epoch: {fmt(walls)} s "
          f"({quiet(others)}); bar <= 1.5 s")
    rows.append((f"250hz preset: generate {n_train} samples as events + train 1 epoch [s]",
                 fmt(walls), "<= 1.5 s", quiet(others)))


def stimulus_generation(sl, n, reps, rows, seed_n_250hz):
    """3. stimulus generation against the seeds' code."""
    for config, stim_c in (("tutorial", sl.Stimulus.tutorial()), ("250hz", sl.Stimulus.hz250())):
        seed_n = n if config == "tutorial" else min(n, seed_n_250hz)
        legacy, modern = SEED_CODE[config]
        stim_c.generate(8, seed=1)
        res = {k: [] for k in ("dense", "events", "np.random", "default_rng")}
        others = []
        for r in range(reps if config == "tutorial" else max(2, reps // 2)):
            with Timer() as td:
                stim_c.generate(n, seed=r)
            with Timer() as te:
                stim_c.generate(n, seed=r, events=True)
            np.random.seed(r)
            with Timer() as ts:
                out = legacy(seed_n)
            del out
            with Timer() as tm:
                out = modern(seed_n)
            del out
            res["dense"].append(td.seconds / n)
            res["events"].append(te.seconds / n)
            res["np.random"].append(ts.seconds / seed_n)
            res["default_rng"].append(tm.seconds / seed_n)
            others += [td.others, te.others, ts.others, tm.others]
        for seed_kind in ("np.random", "default_rng"):
            for kind in ("dense", "events"):
                ratio = [s / k for s, k in zip(res[seed_kind], res[kind])]
                label = (f"stimulus {config}: seed code ({seed_kind}, {seed_n} samples"
                         f"{', scaled' if seed_n != n else ''}) / spikeloc {kind} ({n})")
                print(f"3. {label}: {fmt(ratio, 1)} ({quiet(others)}); bar >= 30")
                rows.append((label, fmt(ratio, 1), ">= 30", quiet(others)))
        print("   per sample: " + ", ".join(f"{k} {1e6 * summary(v)[0]:.1f} us"
                                             for k, v in res.items()))


def from_dense_bandwidth(sl, n, reps, rows):
    """4. from_dense bandwidth against np.copyto."""
    for config, stim_c in (("tutorial", sl.Stimulus.tutorial()), ("250hz", sl.Stimulus.hz250())):
        _, x = stim_c.generate(n, seed=0)
        copy = np.empty_like(x)
        sl.SpikeEvents.from_dense(x)
        gbs, cps, ratios, others = [], [], [], []
        for _ in range(reps):
            with Timer() as tc:
                np.copyto(copy, x)
            with Timer() as tf:
                sl.SpikeEvents.from_dense(x)
            gbs.append(x.nbytes / tf.seconds / 1e9)
            cps.append(x.nbytes / tc.seconds / 1e9)
            ratios.append(tf.seconds / tc.seconds)
            others += [tc.others, tf.others]
        print(f"4. from_dense {config} ({x.nbytes / 1e6:.0f} MB): {fmt(gbs, 2)} GB/s; np.copyto "
              f"{fmt(cps, 2)} GB/s; time from_dense / copyto {fmt(ratios, 2)} ({quiet(others)})")
        rows.append((f"`SpikeEvents.from_dense` {config} ({x.nbytes / 1e6:.0f} MB) [GB/s]; "
                     f"np.copyto of the same array {fmt(cps, 2)} GB/s", fmt(gbs, 2),
                     "memory bandwidth", quiet(others)))
        del x, copy


def peak_memory(n, rows):
    """5. peak memory of generating events, in a fresh subprocess."""
    out = subprocess.run([sys.executable, MEMORY_SCRIPT, str(n)], capture_output=True,
                         text=True, check=True, env=_bench.child_env())
    m = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = m["peak"] / m["events"]
    print(f"5. peak memory, 250 Hz {n} samples as events: extra peak {m['peak'] / 1e6:.1f} "
          f"MB / events {m['events'] / 1e6:.1f} MB = {ratio:.2f} (dense array: "
          f"{m['dense'] / 1e6:.0f} MB); bar <= 1.5")
    rows.append((f"peak memory: generate 250 Hz {n} samples as events, extra peak RSS / event "
                 f"lists' bytes ({m['events'] / 1e6:.0f} MB; dense {m['dense'] / 1e6:.0f} MB)",
                 f"{ratio:.2f}", "<= 1.5", "fresh subprocess"))


if __name__ == "__main__":
    main()

"""Benchmark: generating the IPD stimulus, spikeloc against the seed notebooks' NumPy code.

For each configuration, 4096 samples are generated with ``spikeloc.Stimulus(...).generate(4096,
seed)`` and with a faithful copy of the seeds' ``input_signal`` + ``random_ipd_input_signal``
(below; only docstrings and the torch conversion are left out):

* ``tutorial``: dt 1 ms, 20 Hz, T = 100; seed 002 (the Cosyne tutorial; no phase offset, and
  its ``input_signal`` also returns ``theta``). spikeloc: ``Stimulus(phase_offset="per_sample")``.
* ``250hz``: dt 0.1 ms, 250 Hz, T = 1000; seed 000 (one random phase offset ``np.random.rand()``
  per call, inside ``phi``). spikeloc: ``Stimulus.hz250()`` (one offset per set).

Every measurement runs in a fresh Python subprocess and records the wall time of the generation
call and the memory: the RSS right before generation (after imports and a 2-sample warm-up), the
peak RSS after it (``getrusage(RUSAGE_SELF).ru_maxrss``), and their difference, the extra peak
memory of the call. spikeloc's worker then also times ``SpikeEvents.from_dense`` on the spikes.
Repetitions alternate spikeloc and seed code; each time ratio seed / spikeloc comes from one
adjacent pair, and the summary gives median [min, max] over pairs. Each line also shows "cores"
(CPU time / wall time of the generation call) and "others" (cores busy with other processes
meanwhile, from /proc/stat): a noise indicator, ~0 on a quiet machine. The seed code uses one
core and spikeloc all cores, so another busy process (others ~1) costs spikeloc its second core
and lowers the ratio seed / spikeloc; quiet pairs (others <= 0.25) are counted separately.

The seed's 250 Hz code holds three float64 arrays of the full (n, T, 200) shape at once (theta,
the uniforms, sin(theta)), about 5 MB per sample: ~20.5 GB for 4096 samples. Before each seed
run the benchmark reads MemAvailable from /proc/meminfo and runs the largest of 4096 / 2048 /
1024 samples whose estimated peak fits with a 2 GB margin; a smaller run's time and memory are
scaled linearly to 4096 and labelled "scaled from N". The seed worker also limits its own
address space (RLIMIT_AS) to what was available minus the margin, so a bad estimate ends in a
MemoryError (then the next smaller size is tried) instead of the kernel's OOM killer. The 250 Hz
seed case runs once by default (``--seed-reps-250hz``).

Printed: times, time ratio seed / spikeloc (issue's bar: >= 30), spikeloc's extra peak memory
/ output bytes (bar: <= 1.5), the seed code's peak memory, the SpikeEvents build time; bars are
printed for reference only, never asserted. Ends with a markdown table for
``benchmarks/RESULTS.md``.

Usage (from the repository root, after ``python setup.py build_ext --inplace``)::

    PYTHONPATH=python python benchmarks/stimulus.py            # the issue's numbers (~2-3 min, ~21 GB peak)
    PYTHONPATH=python python benchmarks/stimulus.py --quick    # smoke run, 256 samples
    PYTHONPATH=python python benchmarks/stimulus.py --configs tutorial --reps 7
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys

import numpy as np

import _bench
from _bench import GB, MB, Timer, fmt_ratio, fmt_time, summary

SEED = 0
MARGIN = 2 * 10**9          # bytes of MemAvailable left free when running the seed code
BARS = {"time": 30.0, "memory": 1.5}


# ============================================================================ seed code
# Seed 002 (Cosyne tutorial), `input_signal` and `random_ipd_input_signal`, as in the notebook
# (docstrings shortened; the torch branch is not used: tensor=False).
second = 1
ms = 1e-3
Hz = 1

dt = 1*ms            # large time step to make simulations run faster for tutorial
anf_per_ear = 100    # number of auditory nerve fibers connected to each ear with independent noise
envelope_power = 2   # higher values make sharper envelopes. Easier by eye => But does the network perform better ?
rate_max = 600*Hz    # maximum Poisson firing rate
f = 20*Hz            # stimulus frequency
duration = .1*second # stimulus duration
duration_steps = int(np.round(duration/dt))  # number of simulation steps
input_size = 2*anf_per_ear


def seed002_input_signal(ipd, envelope_power=envelope_power):
    """Seed 002's ``input_signal``: returns (spikes, theta)."""
    num_samples = len(ipd)
    T = np.arange(duration_steps)*dt
    phi = 2*np.pi*(f*T) #+ 2*np.pi*np.random.rand()
    phase_delays = np.linspace(0, np.pi/2, anf_per_ear)
    theta = np.zeros((num_samples, duration_steps, 2*anf_per_ear))
    theta[:, :, :anf_per_ear] = phi[np.newaxis, :, np.newaxis]+phase_delays[np.newaxis, np.newaxis, :]
    theta[:, :, anf_per_ear:] = phi[np.newaxis, :, np.newaxis]+phase_delays[np.newaxis, np.newaxis, :]+ipd[:, np.newaxis, np.newaxis]
    spikes = rate_max*dt*(0.5*(1+np.sin(theta)))**envelope_power > np.random.rand(num_samples, duration_steps, 2*anf_per_ear)
    return spikes, theta


def seed002_random_ipd_input_signal(num_samples, envelope_power=envelope_power, tensor=False):
    """Seed 002's ``random_ipd_input_signal``: returns (ipd, spikes, theta)."""
    ipd = np.random.rand(num_samples)*np.pi-np.pi/2 # uniformly random in (-pi/2, pi/2)
    spikes, theta = seed002_input_signal(ipd)
    assert not tensor
    return ipd, spikes, theta


# Seed 000 (250 Hz), `input_signal`, `spikes_from_fixed_idp_input_signal` and
# `random_ipd_input_signal`, as in the notebook (tensor=False).
SECONDS = 1
MS = 1e-3
HZ = 1
DT = .1 * MS
ANF_PER_EAR = 100    # repeats of each ear with independent noise
DURATION = .1 * SECONDS # stimulus duration (100 ms)
DURATION_STEPS = int(np.round(DURATION / DT))
INPUT_SIZE = 2 * ANF_PER_EAR
NULL_PHASE_DELAYS = False  # using the usual range


def seed000_input_signal(ipd):
    """Seed 000's ``input_signal`` (250 Hz, random phase offset per call): returns spikes."""
    envelope_power = 2   # higher values make sharper envelopes, easier
    rate_max = 600 * HZ   # maximum Poisson firing rate
    stimulus_frequency = 250 * HZ

    num_samples = len(ipd)
    times = np.arange(DURATION_STEPS) * DT # array of times
    phi = 2*np.pi*(stimulus_frequency * times + np.random.rand()) # array of phases corresponding to those times with random offset
    theta = np.zeros((num_samples, DURATION_STEPS, 2*ANF_PER_EAR))
    if NULL_PHASE_DELAYS:
        phase_delays = np.linspace(0, 0, ANF_PER_EAR) # CONTROL CASE (Null phase delays in baseline SNN)
    else:
        phase_delays = np.linspace(0, np.pi/2, ANF_PER_EAR)
    theta[:, :, :ANF_PER_EAR] = phi[np.newaxis, :, np.newaxis]+phase_delays[np.newaxis, np.newaxis, :]
    theta[:, :, ANF_PER_EAR:] = phi[np.newaxis, :, np.newaxis]+phase_delays[np.newaxis, np.newaxis, :]+ipd[:, np.newaxis, np.newaxis]
    spikes = np.random.rand(num_samples, DURATION_STEPS, 2*ANF_PER_EAR)<rate_max*DT*(0.5*(1+np.sin(theta)))**envelope_power
    return spikes


def seed000_spikes_from_fixed_idp_input_signal(ipd, tensor=False):
    spikes = seed000_input_signal(ipd)
    assert not tensor
    return spikes


def seed000_random_ipd_input_signal(num_samples, tensor=False):
    """Seed 000's ``random_ipd_input_signal``: returns (ipd, spikes)."""
    ipd = np.random.rand(num_samples)*np.pi-np.pi/2 # uniformly random in (-pi/2, pi/2)
    spikes = seed000_spikes_from_fixed_idp_input_signal(ipd, tensor)
    return ipd, spikes

# ============================================================================ configurations


CONFIGS = {
    "tutorial": dict(stimulus=dict(phase_offset="per_sample"), steps=100,
                     seed_code=seed002_random_ipd_input_signal, seed_name="seed 002"),
    "250hz": dict(stimulus=dict(dt=1e-4, freq=250.0), steps=1000,
                  seed_code=seed000_random_ipd_input_signal, seed_name="seed 000"),
}


def seed_bytes_estimate(config: str, n: int) -> int:
    """Estimated extra peak memory of the seed code: three float64 arrays of the full shape
    (theta, the uniforms, sin(theta) and its in-place successors) and the bool spikes."""
    return n * CONFIGS[config]["steps"] * 200 * (3 * 8 + 1)


# ============================================================================ workers
# Each runs in a fresh interpreter and returns a dict (printed as JSON by the driver's --worker).

def worker_spikeloc(config, n, threads) -> dict:
    sl = _bench.import_spikeloc()
    stim = sl.Stimulus(**CONFIGS[config]["stimulus"])
    sl.SpikeEvents.from_dense(stim.generate(2, SEED + 1, threads=threads)[1])  # warm-up
    gc.collect()
    rss0, peak0 = _bench.rss_now(), _bench.peak_rss()
    with Timer() as t:
        ipd, spikes = stim.generate(n, SEED, threads=threads)
    peak1 = _bench.peak_rss()
    with Timer() as te:
        events = sl.SpikeEvents.from_dense(spikes, threads=threads)
    peak2 = _bench.peak_rss()
    ev_bytes = sum(a.nbytes for a in (events.step_ptr, events.step_events, events.input_ptr,
                                      events.input_events))
    return {"seconds": t.seconds, "cores": t.cpu / t.seconds, "others": t.others,
            "rss_before": rss0, "peak_before": peak0, "peak": peak1,
            "out_bytes": ipd.nbytes + spikes.nbytes, "events_seconds": te.seconds,
            "events_peak": peak2, "events_bytes": ev_bytes, "density": events.density}


def worker_seed(config, n, address_space) -> dict:
    # Guard: at most `address_space` more bytes of address space than now (RLIMIT_AS), so that
    # running out of memory is a MemoryError here and not the OOM killer elsewhere.
    limit = _bench.vm_size() + int(address_space)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    code = CONFIGS[config]["seed_code"]
    np.random.seed(SEED)
    code(2)  # warm-up
    gc.collect()
    rss0, peak0 = _bench.rss_now(), _bench.peak_rss()
    try:
        with Timer() as t:
            out = code(n)
    except MemoryError:
        return {"error": "MemoryError", "n": n}
    peak1 = _bench.peak_rss()
    return {"seconds": t.seconds, "cores": t.cpu / t.seconds, "others": t.others,
            "rss_before": rss0, "peak_before": peak0, "peak": peak1,
            "out_bytes": sum(a.nbytes for a in out), "n": n,
            "density": float(out[1].mean())}


WORKERS = {"spikeloc": worker_spikeloc, "seed": worker_seed}


# ============================================================================ driver

def run_seed(config: str, n: int, allow_scaling: bool) -> dict:
    """Run the seed code for n samples, or (if it does not fit in memory) for n/2 or n/4 and
    scale time and memory linearly to n. Returns the worker's dict plus 'scaled_from'."""
    sizes = [n, n // 2, n // 4] if allow_scaling else [n]
    for size in sizes:
        if size < 1:
            break
        avail = _bench.mem_available()
        need = seed_bytes_estimate(config, size)
        if need + MARGIN > avail:
            print(f"      seed code, {size} samples: estimated {need / GB:.1f} GB + "
                  f"{MARGIN / GB:.0f} GB margin > MemAvailable {avail / GB:.1f} GB, skipped")
            continue
        r = _bench.run_worker(__file__, ["seed", json.dumps(
            dict(config=config, n=size, address_space=avail - MARGIN))])
        if "error" in r:
            print(f"      seed code, {size} samples: {r['error']} (address-space limit "
                  f"{(avail - MARGIN) / GB:.1f} GB)")
            continue
        k = n / size
        r["scaled_from"] = size if size != n else None
        r["seconds_raw"] = r["seconds"]
        r["seconds"] *= k
        r["extra"] = (r["peak"] - r["rss_before"]) * k
        r["peak_abs"] = r["rss_before"] + r["extra"]
        r["out_bytes"] *= k
        return r
    return {"error": "did not fit in memory at any size", "scaled_from": None}


def bench_config(config: str, args) -> dict:
    c = CONFIGS[config]
    n = args.samples
    seed_reps = args.seed_reps_250hz if config == "250hz" else args.reps
    seed_reps = min(seed_reps, args.reps)
    print(f"\n=== {config}: spikeloc.Stimulus(**{c['stimulus']}) vs {c['seed_name']} NumPy "
          f"code; {n} samples, T = {c['steps']}, threads "
          f"{'default' if args.threads is None else args.threads}")
    sl_runs, seed_runs, ratios, pair_others = [], [], [], []
    for rep in range(args.reps):
        s = _bench.run_worker(__file__, ["spikeloc", json.dumps(
            dict(config=config, n=n, threads=args.threads))])
        s["extra"] = s["peak"] - s["rss_before"]
        sl_runs.append(s)
        print(f"    rep {rep + 1}: spikeloc {s['seconds']:.3f} s ({s['cores']:.1f} cores; others "
              f"{s['others']:.1f}), RSS before "
              f"{s['rss_before'] / MB:.0f} MB, peak {s['peak'] / MB:.0f} MB, extra "
              f"{s['extra'] / MB:.0f} MB = {s['extra'] / s['out_bytes']:.3f} x output "
              f"({s['out_bytes'] / MB:.0f} MB); SpikeEvents {s['events_seconds']:.3f} s",
              flush=True)
        if rep < seed_reps:
            r = run_seed(config, n, allow_scaling=not args.no_scaling)
            if "error" in r:
                print(f"      seed code: {r['error']}")
                continue
            seed_runs.append(r)
            ratios.append(r["seconds"] / s["seconds"])
            pair_others.append(max(r["others"], s["others"]))
            label = (f" (scaled from {r['scaled_from']}: {r['seconds_raw']:.2f} s)"
                     if r["scaled_from"] else "")
            print(f"      seed code {r['seconds']:.2f} s{label} ({r['cores']:.1f} cores; others "
                  f"{r['others']:.1f}), RSS before "
                  f"{r['rss_before'] / MB:.0f} MB, peak {r['peak_abs'] / GB:.2f} GB, extra "
                  f"{r['extra'] / GB:.2f} GB -> seed / spikeloc {ratios[-1]:.1f}", flush=True)

    res = {"name": config, "n": n, "T": c["steps"], "seed_name": c["seed_name"],
           "sl_time": [s["seconds"] for s in sl_runs],
           "sl_peak": [s["peak"] for s in sl_runs],
           "sl_mem_ratio": [s["extra"] / s["out_bytes"] for s in sl_runs],
           "out_bytes": sl_runs[0]["out_bytes"],
           "ev_time": [s["events_seconds"] for s in sl_runs],
           "ev_ratio": [s["events_seconds"] / s["seconds"] for s in sl_runs],
           "events_bytes": sl_runs[0]["events_bytes"],
           "density": sl_runs[0]["density"],
           "seed_time": [r["seconds"] for r in seed_runs],
           "seed_peak": [r["peak_abs"] for r in seed_runs],
           "seed_extra": [r["extra"] for r in seed_runs],
           "seed_scaled": sorted({r["scaled_from"] for r in seed_runs if r["scaled_from"]}),
           "ratio": ratios, "others": pair_others,
           "quiet": [x for x, o in zip(ratios, pair_others) if o <= _bench.QUIET]}
    print(f"    spikeloc generate:                 {fmt_time(res['sl_time'])}")
    print(f"    spikeloc extra peak / output bytes: {fmt_ratio(res['sl_mem_ratio'])}   "
          f"(issue's bar: <= {BARS['memory']}); peak RSS "
          f"{summary(res['sl_peak'])[0] / MB:.0f} MB, output {res['out_bytes'] / MB:.0f} MB")
    print(f"    SpikeEvents.from_dense:            {fmt_time(res['ev_time'])} = "
          f"{fmt_ratio(res['ev_ratio'], 2)} x generate; event lists "
          f"{res['events_bytes'] / MB:.0f} MB (density {res['density']:.4f})")
    if seed_runs:
        scaled = (f" (scaled from {', '.join(map(str, res['seed_scaled']))})"
                  if res["seed_scaled"] else "")
        print(f"    seed code:                         {fmt_time(res['seed_time'])}{scaled}")
        print(f"    seed code peak RSS:                {summary(res['seed_peak'])[0] / GB:.2f} GB"
              f" (extra {summary(res['seed_extra'])[0] / GB:.2f} GB){scaled}")
        print(f"    time ratio seed / spikeloc:        {fmt_ratio(ratios, 1)}   "
              f"(issue's bar: >= {BARS['time']:g}; {len(ratios)} pair(s))")
        quiet = res["quiet"]
        print(f"      others during the pairs: {fmt_ratio(pair_others, 1)} cores; quiet pairs "
              f"(others <= {_bench.QUIET}): {len(quiet)} of {len(ratios)}"
              + (f", ratio {fmt_ratio(quiet, 1)}" if quiet else ""))
    return res


def markdown(results) -> str:
    lines = ["| config | samples | spikeloc [s] | seed code [s] | seed / spikeloc median "
             "[min, max] (bar >= 30) | others [cores] | quiet pairs | spikeloc extra peak / output (bar <= 1.5) "
             "| spikeloc peak RSS | seed peak RSS | SpikeEvents.from_dense [s] |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        scaled = (" (scaled from " + ", ".join(map(str, r["seed_scaled"])) + ")"
                  if r["seed_scaled"] else "")
        if r["seed_time"]:
            seed_t = f"{summary(r['seed_time'])[0]:.2f}{scaled}"
            ratio = f"{fmt_ratio(r['ratio'], 1)} ({len(r['ratio'])} pair(s))"
            seed_peak = f"{summary(r['seed_peak'])[0] / GB:.2f} GB{scaled}"
        else:
            seed_t = ratio = seed_peak = "-"
        others = f"{summary(r['others'])[0]:.1f}" if r["others"] else "-"
        quiet = f"{len(r['quiet'])}/{len(r['ratio'])}"
        if r["quiet"]:
            quiet += f": {fmt_ratio(r['quiet'], 1)}"
        lines.append(
            f"| {r['name']} | {r['n']} | {summary(r['sl_time'])[0]:.3f} | {seed_t} | {ratio} | {others} | {quiet} | "
            f"{fmt_ratio(r['sl_mem_ratio'])} | {summary(r['sl_peak'])[0] / MB:.0f} MB | "
            f"{seed_peak} | {summary(r['ev_time'])[0]:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description="Time and memory of stimulus generation: spikeloc vs the seeds' NumPy "
                    "code, each run in a fresh subprocess (see the module docstring).")
    p.add_argument("--configs", default="tutorial,250hz",
                   help="comma-separated configurations among: " + ", ".join(CONFIGS)
                   + " (default: both)")
    p.add_argument("--samples", type=int, default=4096, help="samples (default 4096)")
    p.add_argument("--reps", type=int, default=5,
                   help="spikeloc repetitions, interleaved with the seed code's (default 5)")
    p.add_argument("--seed-reps-250hz", type=int, default=1,
                   help="runs of the (very heavy) seed 250 Hz code (default 1; the tutorial "
                        "seed code runs --reps times)")
    p.add_argument("--threads", type=int, default=None,
                   help="spikeloc worker threads (default: all cores)")
    p.add_argument("--no-scaling", action="store_true",
                   help="run the seed code at --samples or not at all (no scaled runs)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 256 samples, 2 repetitions")
    _bench.add_worker_option(p)
    args = p.parse_args(argv)

    if _bench.serve_worker(args, WORKERS):
        return 0
    if args.quick:
        args.samples, args.reps = 256, 2
    names = [s.strip() for s in args.configs.split(",") if s.strip()]
    for s in names:
        if s not in CONFIGS:
            p.error(f"unknown configuration {s!r} (choose from {', '.join(CONFIGS)})")
    if args.samples < 4 or args.reps < 1:
        p.error("need --samples >= 4 and --reps >= 1")

    info = _bench.machine_info()
    print("spikeloc benchmark: stimulus generation" + (" (--quick)" if args.quick else ""))
    _bench.print_machine(info)
    print(f"settings: samples {args.samples}, reps {args.reps}, seed 250 Hz runs "
          f"{args.seed_reps_250hz}, MemAvailable {_bench.mem_available() / GB:.1f} GB")
    results = [bench_config(s, args) for s in names]
    print("\nload average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("\nMarkdown (for benchmarks/RESULTS.md):\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

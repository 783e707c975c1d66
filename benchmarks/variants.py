"""Quick training checks of the research variants (issue 4), and the general kernel's cost.

Studies (each over several seeds; weights, shuffling and data follow the seed):

* alif: the tutorial stimulus with one phase offset per sample, 30 hidden units, tau 2 ms,
  mean readout, Adam lr 0.01, batch 64, 10 epochs on 4096 samples, tested on 2048: the plain
  network against an adaptive threshold with subtractive reset (the follow-ups report
  87.3% against 84.7%);
* dale: Dale's law, ie_ratio 0.5 (inhibitory units drawn at random, as seed 001), 30 hidden,
  tau 5 ms, 30 epochs with a validation set and the best weights restored; all layers under
  Dale's law, "W1 positive" and "W2 positive" (seed 001: about 65-80%, 45-54%, 63-73%);
* speed: one loss-and-gradient call (batch 64, tutorial stimulus) of the general kernel with
  default options and with adaptive threshold + subtractive reset, as a ratio to the default
  network's fast path measured in the same run.

Usage::

    PYTHONPATH=python python benchmarks/variants.py --seeds 5 --studies alif,dale,speed

Prints one line per run and a summary per configuration. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench  # noqa: E402

sl = _bench.import_spikeloc()


def alif_run(seed: int, variant: dict, epochs: int) -> float:
    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    ipd, spikes = stim.generate(4096, seed=seed, events=True)
    ipd_test, spikes_test = stim.generate(2048, seed=seed + 1000, events=True)
    net = sl.SNN.for_stimulus(stim, n_hidden=30, tau_hidden=2 * sl.ms, seed=seed, **variant)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=epochs, lr=0.01, seed=seed, progress=False)
    return sl.evaluate(net, ipd_test, spikes_test, stim).accuracy


def dale_run(seed: int, dale: sl.Dale, epochs: int, phase: str) -> float:
    stim = sl.Stimulus.tutorial(phase_offset=phase)
    ipd, spikes = stim.generate(4096, seed=seed, events=True)
    ipd_val, spikes_val = stim.generate(4096, seed=seed + 1000, events=True)
    ipd_test, spikes_test = stim.generate(2048, seed=seed + 2000, events=True)
    net = sl.SNN.for_stimulus(stim, n_hidden=30, tau_hidden=5 * sl.ms, seed=seed, dale=dale)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=epochs, lr=0.01, seed=seed,
             validation=(ipd_val, spikes_val), progress=False)
    for layer, eff in (("w1", net.w1_eff), ("w2", net.w2_eff)):
        sign = net.dale_signs[layer]
        assert sign is None or (eff * sign[:, None] >= 0).all(), "a weight changed sign"
    return sl.evaluate(net, ipd_test, spikes_test, stim).accuracy


def speed(reps: int = 30) -> None:
    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    ipd, x = stim.generate(512, seed=0, events=True)
    y = stim.labels(ipd)

    def per_call(net) -> float:
        net.loss_and_grad(x, y[:64], index=np.arange(64))
        start = time.perf_counter()
        for r in range(reps):
            idx = np.arange(64 * (r % 8), 64 * (r % 8) + 64)
            net.loss_and_grad(x, y[idx], index=idx)
        return (time.perf_counter() - start) / reps

    for n_hidden in (30, 100):
        kw = dict(n_hidden=n_hidden, tau_output=2 * sl.ms, threads=1)
        fast = per_call(sl.SNN.for_stimulus(stim, tau_hidden=2 * sl.ms, **kw))
        # per-neuron time constants (all equal) run the general kernel with default options
        general = per_call(sl.SNN.for_stimulus(stim, tau_hidden=np.full(n_hidden, 2 * sl.ms), **kw))
        alif = per_call(sl.SNN.for_stimulus(stim, tau_hidden=2 * sl.ms, reset="subtractive",
                                            adapt_tau=20 * sl.ms, **kw))
        print(f"speed N_h {n_hidden}, 1 thread, batch 64: fast path {fast * 1e3:.2f} ms; general "
              f"kernel {general / fast:.2f}x; adaptive + subtractive {alif / fast:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per configuration (default 5)")
    parser.add_argument("--studies", default="alif,dale,speed", help="comma-separated")
    parser.add_argument("--adapt-tau", type=float, default=20e-3, help="tau_a [s] (default 20 ms)")
    parser.add_argument("--adapt-strength", type=float, default=1.0, help="beta_a (default 1)")
    parser.add_argument("--dale-phase", default="per_sample", help="phase offset of the Dale study")
    args = parser.parse_args()
    seeds = range(args.seeds)
    studies = args.studies.split(",")
    print(f"spikeloc {sl.__version__}, {sl.default_threads()} threads, seeds {list(seeds)}")
    if "alif" in studies:
        configs = {"plain": {},
                   "adaptive + subtractive": dict(reset="subtractive", adapt_tau=args.adapt_tau,
                                                  adapt_strength=args.adapt_strength)}
        for name, variant in configs.items():
            accs = []
            for s in seeds:
                accs.append(alif_run(s, variant, epochs=10))
                print(f"alif {name} seed {s}: test {accs[-1]:.3f}", flush=True)
            print(f"alif {name}: test {_bench.fmt_mean_range(accs)}", flush=True)
    if "dale" in studies:
        configs = {"dale": sl.Dale(0.5, inhibitory="random"),
                   "W1 positive": sl.Dale(0.5, inhibitory="random", excitatory_only=("w1",)),
                   "W2 positive": sl.Dale(0.5, inhibitory="random", excitatory_only=("w2",))}
        for name, dale in configs.items():
            accs = []
            for s in seeds:
                accs.append(dale_run(s, dale, epochs=30, phase=args.dale_phase))
                print(f"dale {name} seed {s}: test {accs[-1]:.3f}", flush=True)
            print(f"dale {name}: test {_bench.fmt_mean_range(accs)}", flush=True)
    if "speed" in studies:
        speed()


if __name__ == "__main__":
    main()

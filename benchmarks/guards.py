"""What the safety guards cost: the optimiser's all-or-nothing step and the model's lock.

Both are measured in one process, interleaved with the same work without the guard, on the
tutorial's network (SNN 200 -> 100 -> 12, T = 100, batch 64):

* optimiser step: ``Adam.step`` (copy of the weights and moments into buffers allocated once,
  the kernel step, a finiteness check) against the kernel step alone (``Adam._apply``), and
  the guard's extra time as a fraction of one training step (gradient + Adam step);
* lock: ``loss_and_grad`` on a batch of 64 and ``logits`` of a single sample (the smallest
  kernel call, where a fixed cost shows most) with and without the model's lock (the
  undecorated method, ``__wrapped__``).

Reported as median [min, max] over rounds of the ratio guarded / unguarded::

    PYTHONPATH=python python benchmarks/guards.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _bench import fmt_ratio, import_spikeloc, machine_info, print_machine

sl = import_spikeloc()


def _time(fn, reps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    print_machine(machine_info())

    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    ipd, x = stim.generate(256, seed=0, events=True)
    labels = stim.labels(ipd)
    net = sl.SNN.for_stimulus(stim, n_hidden=100, tau_hidden=20e-3)
    index = np.arange(64)
    opt = sl.Adam(net, lr=1e-6)
    _, grads = net.loss_and_grad(x, labels[index], index=index)
    checked = opt._checked_grads(grads)
    cls = type(net)

    def guarded_step():
        opt.step(grads)

    def bare_step():
        with net.lock:
            opt._apply(opt._checked_grads(grads))

    def training_step():
        _, g = net.loss_and_grad(x, labels[index], index=index)
        opt.step(g)

    def locked_grad():
        net.loss_and_grad(x, labels[index], index=index)

    def unlocked_grad():
        cls.loss_and_grad.__wrapped__(net, x, labels[index], index)

    one = np.array([0])

    def locked_logits():
        net.logits(x, one)

    def unlocked_logits():
        cls._logits.__wrapped__(net, x, one)

    del checked
    ratios = {"step": [], "grad": [], "logits": [], "share": []}
    for _ in range(args.rounds):
        g, b = _time(guarded_step, 200), _time(bare_step, 200)
        ratios["step"].append(g / b)
        ratios["share"].append((g - b) / _time(training_step, 20))
        ratios["grad"].append(_time(locked_grad, 20) / _time(unlocked_grad, 20))
        ratios["logits"].append(_time(locked_logits, 500) / _time(unlocked_logits, 500))
    print(f"Adam step with the non-finite guard / without: {fmt_ratio(ratios['step'])}")
    print(f"guard's extra time / one training step:        {fmt_ratio(ratios['share'], 4)}")
    print(f"loss_and_grad (batch 64) locked / unlocked:    {fmt_ratio(ratios['grad'])}")
    print(f"logits (1 sample) locked / unlocked:           {fmt_ratio(ratios['logits'])}")


if __name__ == "__main__":
    main()

"""A/B timing of two kernels libraries' worker threads, in one process, by the wall clock.

Loads two kernels libraries with ctypes (e.g. a build whose parallel loops ran on Dispatch,
copied aside, and the current one with its own worker pool; same target CPU) and alternates
their calls (order swapped every repetition) on the tutorial configuration with the default
thread count (one per CPU), where waking the workers is part of every call:

* ``loss_grad, batch 64``: ``spk_snn_loss_grad``, one training batch (~1 ms);
* ``forward, batch 64``: ``spk_snn_forward``;
* ``forward, batch 2``: ``spk_snn_forward`` on 2 samples (little work);
* ``stimulus, 64 samples``: ``spk_stimulus_noisy``;
* ``empty loop, 2 tasks``: ``spk_stimulus_noisy`` for 2 samples of 1 step and 2 inputs: almost
  nothing but the parallel loop itself (waking a helper and waiting for it).

Each repetition times ``--calls`` calls back to back (``--cpu``: by the CPU time of all the
process's threads, which leaves out time spent descheduled or asleep, so it shows what the
threads cost rather than how long the call took). Prints per measure the median and the
best (least disturbed) time per call of each library, the ratio of the best times, and the
ratio B/A per repetition (median [min, max]); the yardstick of each ratio is the other
library, measured in the same run::

    cp python/spikeloc/libSpikeLocKernels.avx2.so /tmp/before.so   # a build before the change
    python setup.py build_ext --inplace                             # after it
    PYTHONPATH=python python benchmarks/pool_ab.py /tmp/before.so python/spikeloc/libSpikeLocKernels.avx2.so
"""

from __future__ import annotations

import ctypes as ct
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import _bench  # noqa: E402

sl = _bench.import_spikeloc()


def main(argv=None):
    p = _bench.ab_parser(__doc__, repeats=31)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--cpu", action="store_true",
                   help="time by the process's CPU time (all threads) instead of the wall clock")
    args = p.parse_args(argv)
    clock = time.process_time if args.cpu else time.perf_counter
    _bench.print_machine(_bench.machine_info())

    stim = sl.Stimulus.tutorial()
    ipd, dense = stim.generate(64, seed=0)
    x, labels = sl.SpikeEvents.from_dense(dense), stim.labels(ipd)
    net = sl.SNN.for_stimulus(stim, n_hidden=100, seed=0)
    config, events = _bench.c_struct(net._abi_config(x.steps)), _bench.c_struct(x._abi())
    params = _bench.c_struct(stim._params())
    tiny = _bench.c_struct(sl.Stimulus(duration=stim.dt, dt=stim.dt, anf_per_ear=1)._params())
    phase = np.zeros(64)
    libs = _bench.load_two_libraries(args.lib_a, args.lib_b)
    _p = _bench.data_pointer
    g1, g2 = np.empty_like(net._w1), np.empty_like(net._w2)
    logits, spikes = np.empty((64, 12), np.float32), np.empty((64, x.steps, x.n_in), np.uint8)
    loss = ct.c_double()

    def check(rc):
        if rc != 0:
            raise RuntimeError(f"kernel call failed with status {rc}")

    measures = {
        "loss_grad, batch 64": lambda lib: check(lib.spk_snn_loss_grad(
            ct.byref(config), ct.byref(events), None, ct.c_int64(64), _p(labels), _p(net._w1),
            _p(net._w2), ct.byref(loss), _p(g1), _p(g2), None, ct.c_int32(0))),
        "forward, batch 64": lambda lib: check(lib.spk_snn_forward(
            ct.byref(config), ct.byref(events), None, ct.c_int64(64), _p(net._w1), _p(net._w2),
            _p(logits), None, None, ct.c_int32(0))),
        "forward, batch 2": lambda lib: check(lib.spk_snn_forward(
            ct.byref(config), ct.byref(events), None, ct.c_int64(2), _p(net._w1), _p(net._w2),
            _p(logits), None, None, ct.c_int32(0))),
        "stimulus, 64 samples": lambda lib: check(lib.spk_stimulus_noisy(
            ct.byref(params), _p(ipd), _p(phase), ct.c_int64(64), ct.c_uint64(0),
            ct.c_int64(0), ct.c_double(0.0), _p(spikes), ct.c_int32(0))),
        "empty loop, 2 tasks": lambda lib: check(lib.spk_stimulus_noisy(
            ct.byref(tiny), _p(ipd), _p(phase), ct.c_int64(2), ct.c_uint64(0),
            ct.c_int64(0), ct.c_double(0.0), _p(spikes), ct.c_int32(0))),
    }
    print(f"{args.repeats} repetitions of {args.calls} calls per library and measure, threads=0 "
          f"({sl.default_threads()} threads), {'process CPU time' if args.cpu else 'wall clock'}")
    print(f"{'measure':22s} {'A median':>10s} {'B median':>10s} {'A best':>9s} {'B best':>9s} "
          f"{'best B/A':>8s}  B/A per repetition")
    for name, call in measures.items():
        for lib in libs:
            call(lib)  # warm up: start the workers, fill the scratch pools
        times = ([], [])
        for r in range(args.repeats):
            for k in ((0, 1) if r % 2 == 0 else (1, 0)):
                t0 = clock()
                for _ in range(args.calls):
                    call(libs[k])
                times[k].append((clock() - t0) / args.calls)
        ta, tb = np.array(times[0]), np.array(times[1])
        print(f"{name:22s} {1e6 * np.median(ta):8.1f}us {1e6 * np.median(tb):8.1f}us "
              f"{1e6 * ta.min():7.1f}us {1e6 * tb.min():7.1f}us {tb.min() / ta.min():8.3f}  "
              f"{_bench.fmt_ratio(tb / ta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

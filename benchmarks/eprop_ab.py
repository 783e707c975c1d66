"""A/B timing of two builds of the e-prop kernel in one process, with BPTT as yardstick.

Loads two copies of a kernels library (libSpikeLocKernels.<variant>.so) with ctypes (e.g. the
build before a change, copied aside, and the current one), and alternates calls of
``spk_eprop_loss_grad`` of the two (order swapped every repetition) with a call of the BPTT
forward + backward of the package (``spikeloc.SNN.loss_and_grad``, same sizes and data), on
the IPD network of
``benchmarks/eprop.py`` part (b) (200 -> 100 -> 12, no recurrent weights unless
``--recurrent``, batch 64, tutorial stimulus). Prints the relative difference of the two
builds' gradients, then per build the median time per sample-step, the ratio B/A per pair
(median [min, max]) and each build's ratio to BPTT.

With ``--threads 1`` (the default) calls are timed by the calling thread's CPU time, which
leaves out time the thread spent descheduled: on a busy shared machine this is much steadier
than the wall clock (``--wall`` to use the wall clock; it is always used for other thread
counts, where the work runs on worker threads)::

    cp python/spikeloc/libSpikeLocKernels.avx2.so /tmp/old.so      # before the change
    python setup.py build_ext --inplace                             # after it
    PYTHONPATH=python python benchmarks/eprop_ab.py /tmp/old.so python/spikeloc/libSpikeLocKernels.avx2.so
"""

from __future__ import annotations

import ctypes as ct
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import _bench  # noqa: E402

sl = _bench.import_spikeloc()


def main(argv=None):
    p = _bench.ab_parser(__doc__, repeats=21)
    p.add_argument("--steps", type=int, default=100, help="T (1 ms steps)")
    p.add_argument("--threads", type=int, default=1, help="0: one per CPU")
    p.add_argument("--recurrent", action="store_true")
    p.add_argument("--wall", action="store_true", help="time by the wall clock")
    args = p.parse_args(argv)
    T, batch = args.steps, 64
    clock = time.thread_time if args.threads == 1 and not args.wall else time.perf_counter

    stim = sl.Stimulus.tutorial(phase_offset="per_sample", duration=T * 1e-3)
    ipd, dense = stim.generate(batch, seed=0)
    x, labels = sl.SpikeEvents.from_dense(dense), stim.labels(ipd)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    net = sl.EPropNetwork.for_stimulus(stim, n_hidden=100, recurrent=args.recurrent)
    snn = sl.SNN.for_stimulus(stim, n_hidden=100, threads=args.threads or None)
    events, config = _bench.c_struct(x._abi()), _bench.c_struct(net._abi_config(T))
    libs = _bench.load_two_libraries(args.lib_a, args.lib_b)
    _ptr = _bench.data_pointer
    weights = [net._w_in, net._w_rec, net._w_out, net._b,
               np.ascontiguousarray(net.feedback_weights, dtype=np.float32)]

    def eprop(lib):
        grads = [np.zeros_like(net._w_in), np.zeros_like(net._w_rec) if args.recurrent else None,
                 np.zeros_like(net._w_out), np.zeros_like(net._b)]
        loss = ct.c_double()
        rc = lib.spk_eprop_loss_grad(
            ct.byref(config), ct.byref(events), None, ct.c_int64(batch), _ptr(labels),
            *[_ptr(w) for w in weights], None, None, None, ct.byref(loss),
            *[_ptr(g) for g in grads], None, ct.c_int32(args.threads))
        if rc != 0:
            raise RuntimeError(f"spk_eprop_loss_grad returned {rc}")
        return loss.value, grads

    (loss_a, grads_a), (loss_b, grads_b) = eprop(libs[0]), eprop(libs[1])
    for name, a, b in zip(("w_in", "w_rec", "w_out", "b"), grads_a, grads_b):
        if a is not None:
            print(f"{name}: relative difference B vs A "
                  f"{np.linalg.norm(b - a) / max(np.linalg.norm(a), 1e-30):.2e}")
    print(f"loss A {loss_a:.8f}, B {loss_b:.8f}")
    snn.loss_and_grad(x, labels)

    times = {0: [], 1: [], "bptt": []}
    per = batch * T
    for r in range(args.repeats):
        for k in ((0, 1) if r % 2 == 0 else (1, 0)):
            t0 = clock()
            eprop(libs[k])
            times[k].append((clock() - t0) / per)
        t0 = clock()
        snn.loss_and_grad(x, labels)
        times["bptt"].append((clock() - t0) / per)
    ta, tb, ts = (np.array(times[k]) for k in (0, 1, "bptt"))
    print(f"T = {T}, threads = {args.threads}, recurrent = {args.recurrent}, "
          f"{'thread CPU time' if clock is time.thread_time else 'wall clock'}, "
          f"{args.repeats} repetitions")
    print(f"per sample-step: A {1e6 * np.median(ta):.3f} us, B {1e6 * np.median(tb):.3f} us, "
          f"BPTT {1e6 * np.median(ts):.3f} us")
    print(f"B/A {_bench.fmt_ratio(tb / ta)}; A/BPTT {_bench.fmt_ratio(ta / ts)}; "
          f"B/BPTT {_bench.fmt_ratio(tb / ts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

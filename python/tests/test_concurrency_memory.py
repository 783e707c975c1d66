"""Eight Python threads using the kernels at once give bit-identical results to running the
same work one after another; 10,000 calls of every kernel entry point (succeeding and
failing) leave resident memory within a few MB."""

import json
import subprocess
import sys
import textwrap
import threading

import numpy as np

import spikeloc as sl


def _work(i):
    """A small training run whose sizes, model and thread count depend on ``i``: thread 6
    trains a research-variant SNN on a stimulus with phase-delay noise and a per-epoch phase,
    thread 7 an EPropNetwork, threads 2 and 5 MembraneOnly models, the others plain SNNs."""
    extra = {"phase_offset": "per_epoch", "phase_delay_noise": 0.3} if i == 6 else {
        "phase_offset": "per_sample"}
    stim = sl.Stimulus(duration=0.03, anf_per_ear=6 + i, num_classes=4,
                       envelope_power=1.0 + i / 2, **extra)
    threads = 1 + i % 2
    ipd, spikes = stim.generate(96, seed=100 + i, threads=threads, epoch=1)
    x = sl.SpikeEvents.from_dense(spikes, threads=threads)
    labels = stim.labels(ipd)
    if i == 6:
        net = sl.SNN.for_stimulus(stim, n_hidden=8 + i, tau_hidden=5e-3, seed=i,
                                  threads=threads, reset="subtractive", surrogate="fast_sigmoid",
                                  adapt_tau=10e-3, dale=sl.Dale(0.25), dropout=0.2,
                                  rate_regularizer=(0.5, 50.0), learn_tau=True, tau_sigma=1e-3)
        net.w1 = net.w1 * 4
    elif i == 7:
        net = sl.EPropNetwork.for_stimulus(stim, n_hidden=8 + i, seed=i, threads=threads,
                                           sparsity_rec=0.5)
        net.w_in = net.w_in * 3
    elif i == 4:  # the general network: two layers, one recurrent, delays per synapse
        net = sl.SNN.for_stimulus(stim, n_hidden=[8, 6], tau_hidden=5e-3, seed=i,
                                  threads=threads, recurrent=[True, False],
                                  delays=sl.Delays(max_steps=3, per="synapse"), dropout=0.2)
        net.w1 = net.w1 * 4
    elif i == 5:
        net = sl.MembraneOnly.for_stimulus(stim, seed=i, threads=threads,
                                           delays=sl.Delays(max_steps=4), readout="max")
    elif i % 3 == 2:
        net = sl.MembraneOnly.for_stimulus(stim, seed=i, threads=threads)
    else:
        net = sl.SNN.for_stimulus(stim, n_hidden=8 + i, tau_hidden=5e-3, seed=i,
                                  threads=threads)
        net.w1 = net.w1 * 4  # a hidden layer that spikes
    opt = sl.Adam(net, lr=0.01) if i % 2 == 0 else sl.SGD(net, lr=0.05)
    losses = []
    for step in range(24):
        index = np.arange(8 * step, 8 * step + 8) % 96
        loss, grads = net.loss_and_grad(x, labels[index], index=index)
        opt.step(grads)
        if hasattr(net, "after_step"):
            net.after_step()  # clamps learned time constants, as train() does
        losses.append(loss)
    out = net.forward(spikes[:5])
    return (losses, spikes, x.step_events.copy(), x.to_dense(threads=threads),
            {k: v.copy() for k, v in net.parameters().items()}, tuple(out), net.predict(x))


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    return np.array_equal(np.asarray(a), np.asarray(b))


def test_eight_threads_at_once_equal_one_after_another():
    sequential = [_work(i) for i in range(8)]
    assert any(np.any(r[5][0]) for r in sequential if len(r[5]) == 3)  # hidden spikes
    assert np.any(sequential[6][5][0]) and np.any(sequential[7][5][1])  # variant, e-prop
    assert "tau_hidden" in sequential[6][4] and "w_rec" in sequential[7][4]
    assert {"w_rec1", "delays"} <= set(sequential[4][4]) and "delays" in sequential[5][4]
    assert np.any(sequential[4][5][0])  # the general network's hidden spikes
    for _ in range(2):
        results = [None] * 8
        errors = []
        barrier = threading.Barrier(8)

        def target(i):
            try:
                barrier.wait()
                results[i] = _work(i)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=target, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for i in range(8):
            assert _same(results[i], sequential[i]), f"thread {i} differs"


MEMORY = textwrap.dedent(r"""
    import json, numpy as np, spikeloc as sl
    from spikeloc import _native

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    stim = sl.Stimulus(duration=0.01, anf_per_ear=4, num_classes=4, phase_offset="per_sample")
    ipd, spikes = stim.generate(8, seed=0, threads=1)
    ev = sl.SpikeEvents.from_dense(spikes, threads=1)
    snn = sl.SNN.for_stimulus(stim, n_hidden=4, threads=1)
    mo = sl.MembraneOnly.for_stimulus(stim, threads=1)
    labels = stim.labels(ipd)
    B, T, N = 8, stim.steps, stim.n_in
    K = 1 << 12  # fresh 16 KiB outputs: a buffer never released would keep them alive

    def f32(n=K):
        return np.zeros(n, np.float32)

    def ok_and_bad(ok, bad):
        def call():
            ok()
            try:
                bad()
            except (ValueError, TypeError, MemoryError):
                pass
            else:
                raise AssertionError("the bad call did not fail")
        return call

    cfg, mcfg, e = snn._abi_config(T), mo._abi_config(T), ev._abi()
    calls = {
        "uniform53": ok_and_bad(lambda: _native.uniform53(1, 0, 5, np.zeros(K // 2)),
                                lambda: _native.uniform53(1, -1, 5, np.zeros(K // 2))),
        "events_to_dense": ok_and_bad(
            lambda: _native.events_to_dense(e, np.zeros(B * T * N, np.uint8), 1),
            lambda: _native.events_to_dense(e, np.zeros(K, np.uint8), 1)),
        # each spk_snn_* call runs the tutorial's network and the membrane-only one (n_hidden
        # 0: w1 and grad_w1 empty, the readout weights as w2)
        "snn_forward": ok_and_bad(
            lambda: (_native.snn_forward(cfg, e, None, B, snn.w1, snn.w2, f32(B * 4),
                                         np.zeros(B * T * 4, np.uint8), f32(B * T * 4), 1),
                     _native.snn_forward(mcfg, e, None, B, f32(0), mo.w, f32(B * 4), None,
                                         f32(B * T * 4), 1)),
            lambda: _native.snn_forward(cfg, e, None, B, snn.w1, snn.w2, f32(), None, None, 1)),
        "snn_loss_grad": ok_and_bad(
            lambda: (_native.snn_loss_grad(cfg, e, None, B, labels, snn.w1, snn.w2,
                                           np.zeros_like(snn.w1), np.zeros_like(snn.w2),
                                           f32(B * 4), 1),
                     _native.snn_loss_grad(mcfg, e, None, B, labels, f32(0), mo.w, f32(0),
                                           np.zeros_like(mo.w), f32(B * 4), 1)),
            lambda: _native.snn_loss_grad(cfg, e, None, B, labels + 9, snn.w1, snn.w2,
                                          np.zeros_like(snn.w1), np.zeros_like(snn.w2),
                                          f32(B * 4), 1)),
        "adam_step": ok_and_bad(
            lambda: _native.adam_step(f32(), f32(), f32(), f32(), 0.01, 0.9, 0.999, 1e-8, 1),
            lambda: _native.adam_step(f32(), f32(), f32(), f32(K - 1), 0.01, 0.9, 0.999,
                                      1e-8, 1)),
        "sgd_step": ok_and_bad(lambda: _native.sgd_step(f32(), f32(), 0.1),
                               lambda: _native.sgd_step(f32(), f32(K - 1), 0.1)),
        "abi_version": _native.abi_version,
        "default_threads": _native.default_threads,
        "last_error": _native.last_error,
    }
    # ---- entry points of the data options and e-prop ------------------------------------
    ep = sl.EPropNetwork.for_stimulus(stim, n_hidden=4, threads=1)
    ecfg = ep._abi_config(T)
    H = 4

    def eprop_grads():
        return (np.zeros_like(ep.w_in), np.zeros_like(ep.w_rec), np.zeros_like(ep.w_out),
                np.zeros_like(ep.b))

    calls.update({
        "stimulus_noisy": ok_and_bad(
            lambda: _native.stimulus_noisy(stim._params(), ipd, np.zeros(B), 1, 0, 0.3,
                                           np.zeros(B * T * N, np.uint8), 1),
            lambda: _native.stimulus_noisy(stim._params(), ipd, np.zeros(B), 1, 0, -0.3,
                                           np.zeros(B * T * N, np.uint8), 1)),
        "stimulus_events": ok_and_bad(
            lambda: _native.stimulus_events(stim._params(), ipd, np.zeros(B), 1, 0, 0.3, 1),
            lambda: _native.stimulus_events(stim._params(), ipd, np.zeros(B), 1, 0, -0.3, 1)),
        "events_from_dense": ok_and_bad(
            lambda: _native.events_from_dense(spikes, B, T, N, 1),
            lambda: _native.events_from_dense(spikes, B, T, N + 1, 1)),
        "eprop_forward": ok_and_bad(
            lambda: _native.eprop_forward(ecfg, e, None, B, labels, ep.w_in, ep.w_rec, ep.w_out,
                                          ep.b, ep.feedback_weights, f32(B * 4),
                                          f32(B * T * H), np.zeros(B * T * H, np.uint8),
                                          f32(B * T * H), f32(B * T * H), f32(B * T * 4), 1),
            lambda: _native.eprop_forward(ecfg, e, None, B, None, ep.w_in, ep.w_rec, ep.w_out,
                                          ep.b, None, f32(), threads=1)),
        "eprop_loss_grad": ok_and_bad(
            lambda: _native.eprop_loss_grad(ecfg, e, None, B, labels, ep.w_in, ep.w_rec,
                                            ep.w_out, ep.b, ep.feedback_weights, ep.masks["w_in"],
                                            ep.masks["w_rec"], ep.masks["w_out"],
                                            *eprop_grads(), f32(B * 4), 1),
            lambda: _native.eprop_loss_grad(ecfg, e, None, B, labels - 1, ep.w_in, ep.w_rec,
                                            ep.w_out, ep.b, ep.feedback_weights, None, None,
                                            None, *eprop_grads(), None, 1)),
    })
    # ---- the general network: delays, recurrence, depth ---------------------------------
    net = sl.SNN.for_stimulus(stim, n_hidden=[4, 3], threads=1, recurrent=True,
                              delays=sl.Delays(max_steps=3, per="synapse"),
                              dale=sl.Dale(0.5, layers="all"), dropout=0.2)
    gen, params = net._general, net._general_params()
    calls.update({
        "network_forward": ok_and_bad(
            lambda: _native.network_forward(gen.abi(T), e, None, B, params, net._signs_flat,
                                            f32(B * 4), np.zeros(B * T * 7, np.uint8),
                                            f32(B * T * 4), 1),
            lambda: _native.network_forward(gen.abi(T), e, None, B, params[:-1],
                                            net._signs_flat, f32(B * 4), None, None, 1)),
        "network_loss_grad": ok_and_bad(
            lambda: _native.network_loss_grad(gen.abi(T, 5), e, None, B, labels, params,
                                              net._signs_flat, np.zeros_like(params),
                                              f32(B * 4), 1),
            lambda: _native.network_loss_grad(gen.abi(T, 5), e, None, B, labels + 9, params,
                                              net._signs_flat, np.zeros_like(params), None, 1)),
    })
    growth = {}
    for name, call in calls.items():
        for _ in range(1000):   # warm up: pools, caches, allocator arenas
            call()
        start = rss()
        for _ in range(10000):
            call()
        growth[name] = rss() - start
    print(json.dumps(growth))
""")


def test_no_memory_growth_10000_calls_of_every_entry_point():
    out = subprocess.run([sys.executable, "-c", MEMORY], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    growth = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(growth) == {n for n in dir(sl._native_api._native)
                           if callable(getattr(sl._native_api._native, n))
                           and not n.startswith("_")}
    for name, grew in growth.items():
        assert grew < 2 * 2**20, f"{name}: resident memory grew by {grew} bytes"

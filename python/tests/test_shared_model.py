"""One model used from several threads: kernel calls, weight assignments, optimiser steps and
saves take turns on the model's lock, so a kernel never sees weights half assigned and an
assignment during training lands between two steps."""

import copy
import pickle
import threading
import time

import numpy as np
import pytest

import spikeloc as sl


def _models(stim):
    return {
        "snn": lambda: sl.SNN.for_stimulus(stim, n_hidden=60, tau_hidden=5e-3, seed=1),
        "variant": lambda: sl.SNN.for_stimulus(stim, n_hidden=60, tau_hidden=5e-3, seed=1,
                                               reset="subtractive", learn_tau=True),
        "membrane": lambda: sl.MembraneOnly.for_stimulus(stim, seed=1),
        "eprop": lambda: sl.EPropNetwork.for_stimulus(stim, n_hidden=60, seed=1),
    }


def _first_weight(net):
    return next(iter(net.parameters()))


@pytest.mark.parametrize("kind", ["snn", "variant", "membrane", "eprop"])
def test_logits_never_see_a_half_assigned_weight(kind):
    """Another thread assigns two weight matrices in turn; every forward pass gives the
    logits of one of them (without the lock, up to half of them came from a mix of both)."""
    stim = sl.Stimulus(duration=0.05, anf_per_ear=50, num_classes=4, phase_offset="per_sample")
    ipd, spikes = stim.generate(64, seed=4)
    x = sl.SpikeEvents.from_dense(spikes)
    net = _models(stim)[kind]()
    name = _first_weight(net)
    first = getattr(net, name) * 3
    second = -first
    expected = []
    for w in (first, second):
        setattr(net, name, w)
        expected.append(net.logits(x))
    assert not np.array_equal(*expected)
    stop = threading.Event()

    def assign():
        while not stop.is_set():
            setattr(net, name, first)
            setattr(net, name, second)

    writer = threading.Thread(target=assign)
    writer.start()
    try:
        for _ in range(200):
            got = net.logits(x)
            assert any(np.array_equal(got, e) for e in expected)
    finally:
        stop.set()
        writer.join()


@pytest.mark.parametrize("kind", ["snn", "eprop"])
def test_training_steps_wait_for_a_thread_holding_the_lock(kind, small_stim):
    """While a thread holds ``model.lock``, training in another thread changes no weight;
    weights assigned under the lock are the start of the next step."""
    ipd, spikes = small_stim.generate(256, seed=5)
    net = _models(small_stim)[kind]()
    name = _first_weight(net)
    errors, done = [], threading.Event()

    def run():
        try:
            sl.train(net, ipd, spikes, stimulus=small_stim, epochs=40, batch_size=16,
                     lr=0.01, progress=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    trainer = threading.Thread(target=run)
    trainer.start()
    held = 0
    try:
        while not done.is_set() and held < 20:
            with net.lock:
                before = {k: v.copy() for k, v in net.parameters().items()}
                time.sleep(0.005)
                for k, v in net.parameters().items():
                    np.testing.assert_array_equal(v, before[k])
                setattr(net, name, getattr(net, name) * 0.5)
            held += 1
            time.sleep(0.001)
    finally:
        trainer.join()
    assert errors == [] and held >= 5
    assert all(np.isfinite(v).all() for v in net.parameters().values())


def test_copies_and_pickles_get_their_own_lock(small_stim):
    for make in _models(small_stim).values():
        net = make()
        for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
            assert clone.lock is not net.lock
            for k, v in net.parameters().items():
                np.testing.assert_array_equal(clone.parameters()[k], v)
            with net.lock:                      # the clone does not wait for the original
                assert clone.lock.acquire(timeout=1)
                clone.lock.release()


def test_an_optimiser_built_on_a_model_steps_under_its_lock(small_stim):
    net = _models(small_stim)["snn"]()
    opt = sl.Adam(net, lr=0.1)
    grads = {k: np.ones_like(v) for k, v in net.parameters().items()}
    stepped = threading.Event()
    with net.lock:
        worker = threading.Thread(target=lambda: (opt.step(grads), stepped.set()))
        worker.start()
        assert not stepped.wait(0.2)            # the step waits for the lock
    worker.join(timeout=30)
    assert stepped.is_set() and opt.steps_taken == 1

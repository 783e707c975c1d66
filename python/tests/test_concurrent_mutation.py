"""Inputs changed by another thread while a kernel runs never crash the interpreter.

The kernels check their inputs, then read them; the GIL is released in between. Data they index
with (labels, sample indices, event lists) must therefore not change underneath them: the
extension copies such arrays for the call unless they live in memory nobody can write, which is
how :class:`spikeloc.SpikeEvents` holds its event lists. Each scenario runs in a subprocess (a
crash kills it, not pytest), 300 calls per model while a thread rewrites the input with valid
and wildly invalid values.
"""

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl

ITERATIONS = 300

SETUP = textwrap.dedent(r"""
    import faulthandler, sys, threading, time
    import numpy as np
    import spikeloc as sl
    faulthandler.enable()

    # the model, and a batch large enough that its kernel runs for a while (~1 ms)
    stim = sl.Stimulus(duration=0.1, anf_per_ear=20, num_classes=4, phase_offset="per_sample")
    net, batch = {
        "snn": lambda: (sl.SNN.for_stimulus(stim, n_hidden=24, threads=2), 128),
        "variant": lambda: (sl.SNN.for_stimulus(stim, n_hidden=24, threads=2,
                                                reset="subtractive", dale=sl.Dale(0.5),
                                                dropout=0.1), 128),
        "membrane_only": lambda: (sl.MembraneOnly.for_stimulus(stim, threads=2), 1024),
        "delays": lambda: (sl.SNN.for_stimulus(stim, n_hidden=24, threads=2,
                                               delays=sl.Delays(max_steps=8)), 128),
        "eprop": lambda: (sl.EPropNetwork.for_stimulus(stim, n_hidden=24, threads=2), 128),
    }[sys.argv[1]]()
    ipd, spikes = stim.generate(batch, seed=3, threads=1)
    ev = sl.SpikeEvents.from_dense(spikes, threads=1)
    good = stim.labels(ipd)

    def run_while_mutating(target, bad, good, call, iterations):
        '''call() `iterations` times while a thread writes `bad` then `good` into `target`, over
        and over; returns (calls that returned, calls refused with ValueError, rounds written).
        The writer keeps `bad` in place a while and yields the GIL only after writing `good`,
        so the caller's own checks mostly pass and the bad values arrive while a kernel that
        checked the good ones runs.'''
        stop = threading.Event()
        rounds = [0]

        def mutate():
            while not stop.is_set():
                target[...] = bad
                until = time.perf_counter() + 2e-4
                while time.perf_counter() < until:
                    pass
                target[...] = good
                rounds[0] += 1
                time.sleep(0)

        thread = threading.Thread(target=mutate, daemon=True)
        thread.start()
        ok = refused = 0
        try:
            for _ in range(iterations):
                try:
                    call()
                    ok += 1
                except ValueError:
                    refused += 1
        finally:
            stop.set()
            thread.join()
        return ok, refused, rounds[0]
""")

LABELS = SETUP + textwrap.dedent(r"""
    labels = good.copy()
    print("survived", *run_while_mutating(labels, 2**40, good,
                                          lambda: net.loss_and_grad(ev, labels),
                                          int(sys.argv[2])))
""")

EVENTS = SETUP + textwrap.dedent(r"""
    # A SpikeEvents whose event list was swapped (behind the read-only attribute) for a
    # caller-owned array that another thread corrupts: the extension reads a private copy.
    field = sys.argv[3]
    intact = getattr(ev, field).copy()
    owned, bad = intact.copy(), intact.copy()
    bad[1::2] = np.iinfo(bad.dtype).max
    object.__setattr__(ev, "_" + field, owned)
    print("survived", *run_while_mutating(owned, bad, intact, lambda: net.logits(ev),
                                          int(sys.argv[2])))
""")


PARAMS = SETUP + textwrap.dedent(r"""
    # The general kernel's parameter vector (weights, delays, time constants) handed straight to
    # the extension while another thread flips it between the intact values and `bad` as fast
    # as it can: a delay checked in range and read again out of range would index outside the
    # buffers, or trap converting a NaN to an integer (the kernel reads a private copy).
    sys.setswitchinterval(1e-5)
    params = net._general_params()
    intact, bad = params.copy(), np.full_like(params, float(sys.argv[3]))
    labels = good[:8].copy()
    stop, rounds = threading.Event(), [0]

    def flip():
        while not stop.is_set():
            params[...] = bad
            params[...] = intact
            rounds[0] += 1

    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    ok = refused = 0
    for _ in range(int(sys.argv[2])):
        try:
            net._general.loss_grad(ev, None, 8, labels, params, None, 1)
            ok += 1
        except ValueError:
            refused += 1
    stop.set()
    thread.join()
    print("survived", ok, refused, rounds[0])
""")


def run(script, *args, timeout=240):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(sl.__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                         text=True, timeout=timeout, env=env)
    assert out.returncode == 0, f"status {out.returncode}:\n{out.stdout[-2000:]}{out.stderr[-4000:]}"
    words = out.stdout.split()
    assert words[0] == "survived", out.stdout
    ok, refused, rounds = map(int, words[1:4])
    assert ok + refused == ITERATIONS  # each call returned or raised ValueError
    assert rounds > 0  # the writer ran


@pytest.mark.parametrize("model", ["snn", "variant", "membrane_only", "eprop", "delays"])
def test_labels_changed_during_loss_and_grad_never_crash(model):
    run(LABELS, model, ITERATIONS)


@pytest.mark.parametrize("model", ["snn", "variant", "membrane_only", "eprop"])
@pytest.mark.parametrize("field", ["step_ptr", "step_events"])
def test_event_lists_changed_during_a_forward_pass_never_crash(model, field):
    run(EVENTS, model, ITERATIONS, field)


@pytest.mark.parametrize("bad", ["nan", "1e30", "-3"])
def test_parameters_changed_during_a_general_kernel_call_never_crash(bad):
    run(PARAMS, "delays", ITERATIONS, bad)


def test_spike_events_own_immutable_arrays(small_data):
    stim, ipd, spikes, ev, labels = small_data
    for name in ("step_ptr", "step_events", "input_ptr", "input_events"):
        arr = getattr(ev, name)
        with pytest.raises(AttributeError):
            setattr(ev, name, arr.copy())
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr.flags.writeable = True
        with pytest.raises(ValueError):
            arr[0] = 1
    # the constructor copies what it is given: the caller's arrays stay the caller's
    source = [ev.step_ptr.copy(), ev.step_events.copy(), ev.input_ptr.copy(),
              ev.input_events.copy()]
    own = sl.SpikeEvents(ev.n_samples, ev.steps, ev.n_in, *source)
    source[1][:] = 0
    assert np.array_equal(own.step_events, ev.step_events)
    assert not own.step_events.flags.writeable
    assert np.array_equal(own.to_dense(), spikes)
    # a pickled copy (a sweep's job, a Dask worker) is rebuilt immutable too
    back = pickle.loads(pickle.dumps(ev))
    assert np.array_equal(back.to_dense(), spikes)
    assert all(type(getattr(back, name).base) is bytes for name in
               ("step_ptr", "step_events", "input_ptr", "input_events"))

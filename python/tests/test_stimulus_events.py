"""The data path of issue 12: stimulus spikes straight to event lists, and from_dense in one pass.

``Stimulus.generate(n, seed, events=True)`` (and ``spikes_for``, ``regenerator``) must equal
``SpikeEvents.from_dense`` of the dense array exactly, for every stimulus option; the event
arrays stay immutable (``bytes``-backed); ``from_dense`` (one pass, ``spk_events_from_dense``)
equals event lists built with NumPy; generating events needs about the event lists' own
memory, not the dense array's.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spikeloc as sl

FIELDS = ("step_ptr", "step_events", "input_ptr", "input_events")


def assert_same_events(a: sl.SpikeEvents, b: sl.SpikeEvents):
    assert a.shape == b.shape
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype, f
        np.testing.assert_array_equal(x, y, err_msg=f)


def assert_immutable(ev: sl.SpikeEvents):
    for f in FIELDS:
        arr = getattr(ev, f)
        assert not arr.flags.writeable, f
        assert isinstance(arr.base, bytes), f
        with pytest.raises(ValueError):
            arr.setflags(write=True)


def numpy_events(x: np.ndarray):
    """The event arrays of spikeloc.h built with NumPy (rows in order, nonzeros in order)."""
    n, steps, n_in = x.shape

    def lists(rows):
        r, c = np.nonzero(rows)
        ptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=rows.shape[0]))])
        return ptr.astype(np.int64), c.astype(np.uint16)
    sp, se = lists(x.reshape(n * steps, n_in))
    ip, ie = lists(np.swapaxes(x, 1, 2).reshape(n * n_in, steps))
    return sp, se, ip, ie


# every option of the stimulus: phase modes, delay noise, 250 Hz, envelope, null delays, odd
# fibre counts (rows that are not a multiple of 8 bytes), one fibre per ear
STIMULI = {
    "tutorial": sl.Stimulus.tutorial(duration=0.03),
    "per_set": sl.Stimulus(phase_offset="per_set", duration=0.02),
    "per_epoch": sl.Stimulus(phase_offset="per_epoch", duration=0.02),
    "fixed phase": sl.Stimulus(phase_offset=0.25, duration=0.02),
    "delay noise": sl.Stimulus(phase_delay_noise=0.3, anf_per_ear=13, duration=0.02),
    "250 Hz": sl.Stimulus.hz250(duration=0.02),
    "envelope 3.5": sl.Stimulus(envelope_power=3.5, rate_max=900.0, anf_per_ear=21,
                                duration=0.02),
    "null delays": sl.Stimulus(null_phase_delays=True, anf_per_ear=5, duration=0.02),
    "one fibre": sl.Stimulus(anf_per_ear=1, rate_max=3000.0, duration=0.05),
}


@pytest.mark.parametrize("name", sorted(STIMULI))
def test_generate_events_equals_the_dense_array_converted(name):
    stim = STIMULI[name]
    ipd, x = stim.generate(37, seed=4, first_index=3, epoch=2)
    assert 0 < x.sum() < x.size
    dense_events = sl.SpikeEvents.from_dense(x)
    for threads in (1, 2, 3):
        ipd_e, ev = stim.generate(37, seed=4, first_index=3, epoch=2, threads=threads,
                                  events=True)
        np.testing.assert_array_equal(ipd_e, ipd)
        assert isinstance(ev, sl.SpikeEvents)
        assert_same_events(ev, dense_events)
        assert_immutable(ev)
    np.testing.assert_array_equal(ev.to_dense(), x)


def test_spikes_for_and_regenerator_give_events_of_every_epoch():
    stim = sl.Stimulus(phase_offset="per_epoch", phase_delay_noise=0.1, duration=0.02)
    ipd = np.linspace(-1.5, 1.5, 11)
    dense = stim.regenerator(ipd, seed=9, first_index=2)
    events = stim.regenerator(ipd, seed=9, first_index=2, events=True)
    epochs = [events(e) for e in range(3)]
    for e in range(3):
        assert_same_events(epochs[e], sl.SpikeEvents.from_dense(dense(e)))
        assert_same_events(stim.spikes_for(ipd, 9, 2, epoch=e, events=True), epochs[e])
    # the tone's phase moves with the epoch, so the spikes do
    assert not np.array_equal(epochs[0].step_events, epochs[1].step_events)
    # epoch 0 is generate's set
    ipd0, ev0 = stim.generate(11, seed=9, first_index=2, events=True)
    assert_same_events(stim.regenerator(ipd0, 9, 2, events=True)(0), ev0)


def test_events_of_a_set_split_in_two_calls_are_the_events_of_the_whole():
    stim = sl.Stimulus(duration=0.02, anf_per_ear=7)
    _, whole = stim.generate(10, seed=1, events=True)
    _, head = stim.generate(6, seed=1, events=True)
    _, tail = stim.generate(4, seed=1, first_index=6, events=True)
    k = int(head.step_ptr[-1])
    np.testing.assert_array_equal(whole.step_events, np.concatenate([head.step_events,
                                                                     tail.step_events]))
    np.testing.assert_array_equal(whole.step_ptr[6 * stim.steps:], tail.step_ptr + k)


def test_empty_and_silent_sets():
    stim = sl.Stimulus(duration=0.01)
    ipd, ev = stim.generate(0, seed=0, events=True)
    assert ipd.shape == (0,) and ev.shape == (0, stim.steps, stim.n_in) and ev.n_events == 0
    np.testing.assert_array_equal(ev.step_ptr, [0])
    silent = sl.Stimulus(duration=0.01, rate_max=0.0)
    _, ev = silent.generate(5, seed=0, events=True)
    assert ev.n_events == 0
    np.testing.assert_array_equal(ev.input_ptr, np.zeros(5 * silent.n_in + 1))


def test_events_argument_is_checked():
    stim = sl.Stimulus(duration=0.01)
    with pytest.raises(TypeError, match="events must be a bool"):
        stim.generate(2, seed=0, events="yes")
    with pytest.raises(TypeError, match="events must be a bool"):
        stim.regenerator(np.zeros(2), seed=0, events=1)


def test_training_reads_generated_events_as_the_dense_array():
    stim = sl.Stimulus(duration=0.02, anf_per_ear=10)
    ipd, x = stim.generate(64, seed=0)
    _, ev = stim.generate(64, seed=0, events=True)
    runs = []
    for data in (x, ev):
        net = sl.SNN.for_stimulus(stim, n_hidden=8, seed=1, threads=1)
        history = sl.train(net, ipd, data, epochs=2, batch_size=16, seed=3, progress=False)
        runs.append((history.train_loss, net.w1.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


# ---------------------------------------------------------------------- from_dense, one pass

@pytest.mark.parametrize("shape,p", [((6, 20, 16), 0.2), ((5, 13, 37), 0.05), ((3, 1, 1), 0.5),
                                     ((2, 9, 203), 0.01), ((4, 7, 9), 1.0), ((3, 5, 8), 0.0),
                                     # rows of whole 64-byte blocks, blocks plus a tail, an odd
                                     # T * N_in; masks of every density (sparse, dense, all ones)
                                     ((3, 70, 64), 0.5), ((5, 11, 65), 0.03), ((2, 6, 130), 1.0),
                                     ((3, 300, 256), 0.1), ((4, 3, 199), 0.9)])
def test_from_dense_equals_the_event_lists_built_with_numpy(shape, p):
    x = (np.random.default_rng(3).random(shape) < p).astype(np.uint8)
    expected = numpy_events(x)
    for threads in (1, 2, 4):
        ev = sl.SpikeEvents.from_dense(x, threads=threads)
        for f, e in zip(FIELDS, expected):
            np.testing.assert_array_equal(getattr(ev, f), e, err_msg=f)
        assert_immutable(ev)
    np.testing.assert_array_equal(sl.SpikeEvents.from_dense(x.astype(bool)).step_events,
                                  expected[1])


def test_from_dense_refuses_values_other_than_0_and_1_with_their_position():
    x = np.zeros((3, 4, 19), np.uint8)
    x[2, 3, 17] = 2
    with pytest.raises(ValueError, match=r"only 0 and 1; spikes\[2, 3, 17\] = 2"):
        sl.SpikeEvents.from_dense(x)
    x[2, 3, 17] = 0
    x[1, 0, 5] = 255
    with pytest.raises(ValueError, match=r"spikes\[1, 0, 5\] = 255"):
        sl.SpikeEvents.from_dense(x, threads=2)


def test_from_dense_refuses_bad_values_inside_64_byte_blocks_and_empty_samples_are_kept():
    x = np.zeros((4, 5, 150), np.uint8)
    x[0, :, ::3] = 1
    x[2, 4, 70] = 2      # the second 64-byte block of the row; its low bit is 0
    with pytest.raises(ValueError, match=r"spikes\[2, 4, 70\] = 2"):
        sl.SpikeEvents.from_dense(x, threads=2)
    x[2, 4, 70] = 3      # low bit 1: would count as a spike if only low bits were read
    with pytest.raises(ValueError, match=r"spikes\[2, 4, 70\] = 3"):
        sl.SpikeEvents.from_dense(x, threads=1)
    x[2, 4, 70] = 1      # samples 1 and 3 have no events at all
    ev = sl.SpikeEvents.from_dense(x, threads=3)
    for f, e in zip(FIELDS, numpy_events(x)):
        np.testing.assert_array_equal(getattr(ev, f), e, err_msg=f)
    assert ev.step_ptr[5] == ev.step_ptr[10] == 5 * 50


def test_from_dense_mixes_dense_and_sparse_samples():
    """Dense samples are kept as bit rows, sparse ones as events, chosen per sample from the
    worker's previous one: every switch, with T and N_in not multiples of 64."""
    rng = np.random.default_rng(7)
    densities = [0.6, 0.01, 0.0, 1.0, 0.3, 0.02, 0.9, 0.0, 0.5, 0.05, 0.7]
    x = np.stack([(rng.random((130, 70)) < p) for p in densities]).astype(np.uint8)
    expected = numpy_events(x)
    for threads in (1, 2, 3):
        ev = sl.SpikeEvents.from_dense(x, threads=threads)
        for f, e in zip(FIELDS, expected):
            np.testing.assert_array_equal(getattr(ev, f), e, err_msg=f"{f}, threads {threads}")


def test_from_dense_reads_a_non_contiguous_array_through_a_copy():
    x = (np.random.default_rng(1).random((4, 10, 30)) < 0.3).astype(np.uint8)
    view = np.swapaxes(np.swapaxes(x, 1, 2).copy(), 1, 2)   # same values, strided
    assert not view.flags.c_contiguous
    assert_same_events(sl.SpikeEvents.from_dense(view), sl.SpikeEvents.from_dense(x))


# ----------------------------------------------------------------------------- peak memory

MEMORY_SCRIPT = str(Path(__file__).with_name("events_peak_memory.py"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_generating_events_needs_about_the_events_memory_not_the_dense_arrays():
    out = subprocess.run([sys.executable, MEMORY_SCRIPT, "2048"], capture_output=True,
                         text=True, timeout=300, check=True)
    m = json.loads(out.stdout)
    # 2048 samples at 250 Hz: ~58 MB of events, 410 MB as a dense array
    assert m["dense"] > 6 * m["events"]
    assert m["peak"] <= 1.5 * m["events"], m

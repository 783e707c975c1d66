"""Shared fixtures: a small stimulus and a small data set, fast enough for every test."""

import numpy as np
import pytest

import spikeloc as sl


@pytest.fixture
def small_stim():
    """A small tutorial-like stimulus: 20 steps of 1 ms, 2 x 8 fibres, 4 classes."""
    return sl.Stimulus(duration=0.02, anf_per_ear=8, num_classes=4, phase_offset="per_sample")


@pytest.fixture
def small_data(small_stim):
    """(stimulus, ipd (12,), dense spikes (12, 20, 16), SpikeEvents, labels (12,))."""
    ipd, spikes = small_stim.generate(12, seed=3)
    return small_stim, ipd, spikes, sl.SpikeEvents.from_dense(spikes), small_stim.labels(ipd)


@pytest.fixture
def small_snn(small_stim):
    """An SNN sized for ``small_stim`` (5 hidden units, tau 5 ms)."""
    return sl.SNN.for_stimulus(small_stim, n_hidden=5, tau_hidden=5e-3, seed=1)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)

"""Cross-simulation as the test of the NIR export: a network trained in spikeloc, exported,
imported by snnTorch's and by Norse's own NIR importers and run on the same input spikes
(helpers and the full-size measurement: nir_crosssim.py).

What must hold (see spikeloc.nir for why):

* with ``reset="zero"``, NIR's reset, the graph is spikeloc's network: the simulators' hidden
  spikes are spikeloc's except in spike trains whose first difference is a voltage within the
  rounding margin of the threshold (counted: they must be rare, and every one must be at
  threshold), and their predictions are spikeloc's;
* the simulators run exactly the model the graph describes: their hidden spikes equal a
  float64 run of the graph with NIR's reset in every sample whose voltages stay 2e-5
  (relative) away from the threshold;
* with ``reset="same_step"`` (exported with ``nearest=True``) the graph is spikeloc's network
  up to each neuron's first spike only: after it, spikeloc also discards the next step's
  input, NIR does not.
"""

import numpy as np
import pytest

for module in ("nir", "torch", "snntorch", "norse", "nirtorch"):
    pytest.importorskip(module, reason=f"cross-simulation needs {module!r}: "
                                       "pip install 'spikeloc[crosssim]'")

import spikeloc as sl  # noqa: E402

import nir_crosssim  # noqa: E402  (python/tests is on sys.path under pytest's rootdir mode)

SIMULATORS = ["snntorch", "norse"]


def _trained(reset):
    stim = sl.Stimulus.tutorial(phase_offset="per_sample", anf_per_ear=40)
    ipd, spikes = stim.generate(512, seed=7)
    net = sl.SNN.for_stimulus(stim, n_hidden=24, reset=reset, seed=3)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=3, progress=False)
    _, test = stim.generate(192, seed=8)
    return net, nir_crosssim.compare(net, test)


@pytest.fixture(scope="module")
def zero():
    return _trained("zero")


@pytest.fixture(scope="module")
def same_step():
    return _trained("same_step")


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_zero_reset_hidden_spikes_are_spikelocs_up_to_rounding_at_threshold(zero, simulator):
    net, r = zero
    c = r[simulator]["vs_spikeloc"]
    spikeloc = r["spikeloc_hidden_spikes"]
    assert spikeloc.mean() > 0.01  # the network spikes: the test compares something
    # every neuron that spikes at all spikes again after its first spike, where the resets
    # of NIR and of spikeloc's other modes part ways
    assert (spikeloc.sum(axis=1) >= 2).sum() > 0.5 * (spikeloc.sum(axis=1) >= 1).sum()
    assert c["trains_first_not_at_threshold"] == 0 and c["differ_first_not_at_threshold"] == 0
    assert c["trains_first_at_threshold"] == c["trains_differ"]
    assert c["differ"] <= 1e-4 * r["entries"]   # counted, and rare (99.99 %)
    assert c["samples_differ"] <= 0.01 * r["samples"]


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_zero_reset_predictions_are_spikelocs(zero, simulator):
    _, r = zero
    s = r[simulator]
    # the readout that decodes the simulators' spikes is spikeloc's own readout
    np.testing.assert_array_equal(s["decoded_spikeloc_predictions"], r["spikeloc_predictions"])
    # identical predictions in every sample whose hidden spikes are identical, and those are
    # all but a few (see the previous test)
    same = (s["hidden_spikes"] == r["spikeloc_hidden_spikes"]).all(axis=(1, 2))
    np.testing.assert_array_equal(s["predictions"][same], r["spikeloc_predictions"][same])
    assert s["predictions_differ"] <= 0.005 * r["samples"]


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_simulators_run_the_graphs_model(zero, simulator):
    _, r = zero
    s = r[simulator]
    assert s["samples_near_threshold"] < 0.2 * r["samples"]
    assert s["differ_from_nir_reference_away_from_threshold"] == 0
    away = s["away_from_threshold"]
    np.testing.assert_array_equal(s["predictions"][away], s["reference_predictions"][away])


def test_snntorch_and_norse_agree_away_from_threshold(zero):
    _, r = zero
    away = r["snntorch"]["away_from_threshold"] & r["norse"]["away_from_threshold"]
    np.testing.assert_array_equal(r["snntorch"]["hidden_spikes"][away],
                                  r["norse"]["hidden_spikes"][away])


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_same_step_graph_is_spikelocs_network_only_up_to_each_first_spike(same_step, simulator):
    _, r = same_step
    s = r[simulator]
    assert s["compared_up_to_first_spike"] > 0.5 * r["entries"]
    assert s["differ_up_to_first_spike"] == 0
    # after the first spike the models part ways: differences that rounding does not explain
    assert s["vs_spikeloc"]["trains_first_not_at_threshold"] > 0
    assert s["differ_from_nir_reference_away_from_threshold"] == 0


def test_differences_are_classified_by_the_voltage_at_their_first_step():
    """A train whose first difference sits at a voltage within MARGIN of threshold counts as
    rounding (its later differences with it); one whose first difference does not, does not."""
    ours = np.zeros((2, 6, 3), dtype=np.uint8)
    ours[0, 2, 1] = ours[1, 4, 2] = 1
    distance = np.full(ours.shape, 0.5)
    distance[0, 2, 1] = 0.5 * nir_crosssim.MARGIN        # at threshold
    sim = ours.copy()
    sim[0, 2, 1], sim[0, 3, 1] = 0, 1   # spikes one step later: two entries, one train
    sim[1, 1, 0] = 1                    # a spike from nowhere (voltage far from threshold)
    c = nir_crosssim.classify(sim, ours, distance)
    assert c == {"differ": 3, "trains_differ": 2, "trains_first_at_threshold": 1,
                 "trains_first_not_at_threshold": 1, "differ_first_not_at_threshold": 1,
                 "samples_differ": 2}

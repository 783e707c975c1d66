"""Cross-simulation as the test of the NIR export: a network trained in spikeloc, exported,
imported by snnTorch's and by Norse's own NIR importers and run on the same input spikes
(helpers and the full-size measurement: nir_crosssim.py).

What must hold (see spikeloc.nir for why):

* the simulators run exactly the model the graph describes: their hidden spikes equal a
  float64 run of the graph with NIR's reset in every sample whose voltages stay 2e-5
  (relative) away from the threshold, and so do the predictions decoded from them;
* the graph describes spikeloc's network (weights, decay, input scale, threshold, time
  alignment): hidden spikes identical to spikeloc's "same_step" network up to each
  neuron's first spike. After a spike the models differ by construction: spikeloc's
  same-step reset discards the next step's input, NIR's does not.
"""

import numpy as np
import pytest

for module in ("nir", "torch", "snntorch", "norse", "nirtorch"):
    pytest.importorskip(module, reason=f"cross-simulation needs {module!r}: "
                                       "pip install 'spikeloc[crosssim]'")

import spikeloc as sl  # noqa: E402

import nir_crosssim  # noqa: E402  (python/tests is on sys.path under pytest's rootdir mode)


@pytest.fixture(scope="module")
def result():
    stim = sl.Stimulus.tutorial(phase_offset="per_sample", anf_per_ear=40)
    ipd, spikes = stim.generate(512, seed=7)
    net = sl.SNN.for_stimulus(stim, n_hidden=24, reset="same_step", seed=3)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=3, progress=False)
    _, test = stim.generate(192, seed=8)
    return net, nir_crosssim.compare(net, test)


@pytest.mark.parametrize("simulator", ["snntorch", "norse"])
def test_simulators_run_the_graphs_model(result, simulator):
    _, r = result
    s = r[simulator]
    assert s["samples_near_threshold"] < 0.2 * r["samples"]
    assert s["differ_from_nir_reference_away_from_threshold"] == 0
    assert s["hidden_spikes"].mean() > 0.01  # the network spikes: the test compares something
    away = s["away_from_threshold"]
    np.testing.assert_array_equal(s["predictions"][away], s["reference_predictions"][away])


@pytest.mark.parametrize("simulator", ["snntorch", "norse"])
def test_graph_is_spikelocs_network_up_to_each_first_spike(result, simulator):
    _, r = result
    s = r[simulator]
    assert s["compared_up_to_first_spike"] > 0.5 * r["entries"]
    assert s["differ_up_to_first_spike"] == 0


def test_snntorch_and_norse_agree_away_from_threshold(result):
    _, r = result
    away = r["snntorch"]["away_from_threshold"] & r["norse"]["away_from_threshold"]
    np.testing.assert_array_equal(r["snntorch"]["hidden_spikes"][away],
                                  r["norse"]["hidden_spikes"][away])

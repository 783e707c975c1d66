"""spikeloc.nir: export to and import from NIR graphs and files.

Round trips through a NIR file are bit-exact (every forward output and parameter); the exported
parameters follow the mapping of the module docstring; reset="zero" (NIR's reset) exports
exactly, options NIR cannot hold raise unless ``nearest=True``; foreign graphs load with
reset="zero" and their input scales and thresholds folded into the weights; malformed graphs
raise ValueError naming what is wrong.
"""

import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the 'nir' package is not installed "
                                        "(pip install 'spikeloc[nir]')")

import spikeloc as sl  # noqa: E402
from spikeloc.nir import NIRExportError  # noqa: E402

DT = 1e-3


@pytest.fixture(scope="module")
def data():
    stim = sl.Stimulus.tutorial(phase_offset="per_sample", anf_per_ear=20)
    ipd, spikes = stim.generate(96, seed=3)
    return stim, ipd, spikes


def _trained(stim, ipd, spikes, **kw):
    net = sl.SNN.for_stimulus(stim, n_hidden=12, seed=5, **kw)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=2, batch_size=32, progress=False)
    return net


def _export(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return sl.nir.export(model, nearest=True, **kw)


def _through_file(graph, tmp_path):
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    return sl.nir.load(path)


def _assert_same_network(a, b, spikes):
    """Same class, configuration, effective weights, learned parameters and forward pass."""
    assert type(a) is type(b)
    assert a.config == b.config
    np.testing.assert_array_equal(a.w1_eff, b.w1_eff)
    np.testing.assert_array_equal(a.w2_eff, b.w2_eff)
    for name in ("tau_hidden", "tau_output"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        if name in a.parameters():
            np.testing.assert_array_equal(a.parameters()[name], b.parameters()[name])
    for out_a, out_b in zip(a.forward(spikes), b.forward(spikes)):
        np.testing.assert_array_equal(out_a, out_b)


VARIANTS = {
    "delayed": {},
    "same_step": {"reset": "same_step"},
    "zero": {"reset": "zero"},
    "zero_spike_count_dale": {"reset": "zero", "readout": "spike_count", "learn_tau": True,
                              "dale": sl.Dale(0.5, inhibitory="random")},
    "subtractive_arctan": {"reset": "subtractive", "surrogate": "arctan", "beta": 2.0},
    "dale_random": {"dale": sl.Dale(0.5, inhibitory="random")},
    "learned_tau": {"learn_tau": True, "tau_sigma": 3e-3, "reset": "same_step",
                    "dale": sl.Dale(0.3, inhibitory="random")},
    "per_neuron_tau": {"tau_hidden": np.linspace(5e-3, 30e-3, 12),
                       "tau_output": np.linspace(10e-3, 20e-3, 12)},
    "adaptive_spike_count": {"adapt_tau": 20e-3, "readout": "spike_count"},
    "max_readout": {"readout": "max", "rate_regularizer": (0.5, 80.0)},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("euler_step", [None, 1e-4])
def test_snn_round_trip_through_a_file_is_bit_exact(data, tmp_path, variant, euler_step):
    stim, ipd, spikes = data
    net = _trained(stim, ipd, spikes, **VARIANTS[variant])
    back = _through_file(_export(net, euler_step=euler_step), tmp_path)
    _assert_same_network(net, back, spikes)


def test_membrane_only_exports_exactly_and_round_trips(data, tmp_path):
    stim, ipd, spikes = data
    net = sl.MembraneOnly.for_stimulus(stim, tau=15e-3, readout="mean", seed=2)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=2, batch_size=32, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exact: no warning
        graph = sl.nir.export(net)
    back = _through_file(graph, tmp_path)
    assert back.config == net.config
    for a, b in zip(net.forward(spikes), back.forward(spikes)):
        np.testing.assert_array_equal(a, b)


def test_exported_parameters_follow_the_mapping(data):
    stim, ipd, spikes = data
    tau_h = np.linspace(5e-3, 30e-3, 12)
    net = sl.SNN.for_stimulus(stim, n_hidden=12, tau_hidden=tau_h, tau_output=10e-3,
                              dale=sl.Dale(0.5), seed=1)
    g = _export(net)
    assert [type(g.nodes[k]).__name__ for k in ("input", "w1", "hidden", "w2", "readout",
                                                 "output")] == \
        ["Input", "Linear", "LIF", "Linear", "LI", "Output"]
    np.testing.assert_array_equal(g.nodes["w1"].weight, net.w1_eff.T)  # signed, (out, in)
    np.testing.assert_array_equal(g.nodes["w2"].weight, net.w2_eff.T)
    assert (g.nodes["w1"].weight < 0).any() and not np.array_equal(net.w1, net.w1_eff)
    lif, li = g.nodes["hidden"], g.nodes["readout"]
    tau32 = np.asarray(net.tau_hidden, dtype=np.float64)
    np.testing.assert_array_equal(lif.tau, tau32)
    np.testing.assert_array_equal(lif.r, 1.0)
    np.testing.assert_array_equal(lif.v_threshold, 1.0 - np.exp(-DT / tau32))
    np.testing.assert_array_equal(lif.v_leak, 0.0)
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    np.testing.assert_array_equal(li.tau, 10e-3)
    np.testing.assert_array_equal(li.r, 1.0 / (1.0 - np.exp(-DT / 10e-3)))
    meta = g.metadata["spikeloc"]
    assert meta["dt"] == DT and meta["readout"] == "mean" and "euler_step" not in meta
    # the Euler reading: tau' = h / (1 - a), so that 1 - h / tau' is the decay a
    ge = _export(net, euler_step=1e-4)
    a = np.exp(-DT / tau32)
    np.testing.assert_allclose(1.0 - 1e-4 / ge.nodes["hidden"].tau, a, rtol=1e-14)
    np.testing.assert_array_equal(ge.nodes["hidden"].v_threshold, lif.v_threshold)
    assert ge.metadata["spikeloc"]["euler_step"] == 1e-4


def test_the_exact_reading_of_the_li_node_reproduces_the_membrane(data):
    """Integrating NIR's LI equation exactly over each step (input held constant during the
    step) with the exported tau and r gives spikeloc's readout membrane."""
    stim, ipd, spikes = data
    net = sl.MembraneOnly.for_stimulus(stim, tau=7e-3, seed=4)
    g = sl.nir.export(net)
    li = g.nodes["readout"]
    current = spikes.astype(np.float64) @ g.nodes["w"].weight.T.astype(np.float64)
    a = np.exp(-DT / li.tau)
    v = np.zeros((spikes.shape[0], spikes.shape[1], net.n_out))
    for n in range(spikes.shape[1] - 1):  # tau dv/dt = -v + r I over [n dt, (n+1) dt]
        v[:, n + 1] = a * v[:, n] + (1.0 - a) * li.r * current[:, n]
    np.testing.assert_allclose(net.forward(spikes).output_membrane, v, rtol=1e-5, atol=1e-5)


def test_zero_reset_exports_exactly_and_round_trips(data, tmp_path):
    """reset="zero" is NIR's reset: no nearest=True, no warning, and the file gives back the
    same network (the spike-count readout's output LIF node too)."""
    stim, ipd, spikes = data
    for kw in ({}, {"readout": "spike_count"}):
        net = _trained(stim, ipd, spikes, reset="zero", **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # exact: no warning
            graph = sl.nir.export(net)
            back = _through_file(graph, tmp_path)
        _assert_same_network(net, back, spikes)
        assert back.reset == "zero"


def test_exact_reading_of_the_lif_node_is_the_zero_reset_network(data):
    """The hidden LIF node integrated exactly with NIR's reset (spike when the updated voltage
    exceeds v_threshold, then v = v_reset = 0 before the next input) gives spikeloc's
    zero-reset spikes at every step, in every (sample, unit) whose voltage never comes within
    2e-5 (relative) of the threshold, where float32 may round either way."""
    stim, ipd, spikes = data
    net = _trained(stim, ipd, spikes, reset="zero")
    g = sl.nir.export(net)
    lif = g.nodes["hidden"]
    current = spikes.astype(np.float64) @ g.nodes["w1"].weight.T.astype(np.float64)
    a = np.exp(-DT / lif.tau)
    B, T, N = spikes.shape[0], spikes.shape[1], net.n_hidden
    v = np.zeros((B, N))
    nir_spikes = np.zeros((B, T, N), dtype=bool)
    margin = np.full((B, N), np.inf)
    for n in range(T - 1):
        v = a * v + (1.0 - a) * lif.r * current[:, n]
        margin = np.minimum(margin, np.abs(v - lif.v_threshold) / lif.v_threshold)
        nir_spikes[:, n + 1] = v > lif.v_threshold
        v[nir_spikes[:, n + 1]] = lif.v_reset[0]
    hidden = net.forward(spikes).hidden_spikes.astype(bool)
    safe = margin > 2e-5
    assert safe.mean() > 0.9
    assert nir_spikes.sum(axis=1)[safe].mean() > 2  # several spikes per train
    np.testing.assert_array_equal(hidden.transpose(0, 2, 1)[safe],
                                  nir_spikes.transpose(0, 2, 1)[safe])


def test_exact_reading_of_the_lif_node_matches_up_to_the_first_spike(data):
    """The hidden LIF node integrated exactly (same-step check against v_threshold) spikes
    first where spikeloc's same-step network first spikes."""
    stim, ipd, spikes = data
    net = _trained(stim, ipd, spikes, reset="same_step")
    g = _export(net)
    lif = g.nodes["hidden"]
    current = spikes.astype(np.float64) @ g.nodes["w1"].weight.T.astype(np.float64)
    a = np.exp(-DT / lif.tau)
    B, T, N = spikes.shape[0], spikes.shape[1], net.n_hidden
    v = np.zeros((B, T, N))
    for n in range(T - 1):
        v[:, n + 1] = a * v[:, n] + (1.0 - a) * lif.r * current[:, n]
    crossed = v > lif.v_threshold
    margin = np.abs(v - lif.v_threshold) / lif.v_threshold
    first_nir = np.where(crossed.any(1), crossed.argmax(1), T)
    hidden = net.forward(spikes).hidden_spikes.astype(bool)
    first_sl = np.where(hidden.any(1), hidden.argmax(1), T)
    assert (first_nir < T).mean() > 0.2  # the comparison has spikes to compare
    # (a float32 voltage within 2e-5 of threshold could go either way)
    safe = np.take_along_axis(margin, np.minimum(first_nir, T - 1)[:, None, :], 1)[:, 0] > 2e-5
    assert safe.mean() > 0.9
    np.testing.assert_array_equal(first_sl[safe], first_nir[safe])


@pytest.mark.parametrize("kw, phrase", [
    ({}, "pairs"),
    ({"reset": "same_step"}, "discards the input"),
    ({"reset": "subtractive"}, "subtracts the threshold"),
    ({"reset": "same_step", "adapt_tau": 10e-3}, "adaptive threshold"),
    ({"reset": "zero", "adapt_tau": 10e-3}, "adaptive threshold"),
])
def test_export_refuses_what_nir_cannot_hold_unless_nearest(data, kw, phrase):
    stim = data[0]
    net = sl.SNN.for_stimulus(stim, n_hidden=4, **kw)
    with pytest.raises(NIRExportError, match=phrase):
        sl.nir.export(net)
    with pytest.warns(UserWarning, match=phrase):
        sl.nir.export(net, nearest=True)


def test_export_validates_its_arguments(data):
    stim = data[0]
    with pytest.raises(TypeError, match="model"):
        sl.nir.export("not a model")
    with pytest.raises(ValueError, match="euler_step"):
        sl.nir.export(sl.MembraneOnly.for_stimulus(stim), euler_step=-1.0)


def _foreign_snn(r=2.0, threshold=0.5, tau=10e-3, tau_o=20e-3, bias=0.0, v_leak=0.0):
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(3, 4)).astype(np.float32)
    w2 = rng.normal(size=(2, 3)).astype(np.float32)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([4])}),
        "fc1": nir.Affine(weight=w1, bias=np.full(3, bias, dtype=np.float32)),
        "lif": nir.LIF(tau=np.full(3, tau), r=np.full(3, r), v_leak=np.full(3, v_leak),
                       v_threshold=np.full(3, threshold), v_reset=np.zeros(3)),
        "fc2": nir.Linear(weight=w2),
        "li": nir.LI(tau=np.full(2, tau_o), r=np.full(2, 3.0), v_leak=np.zeros(2)),
        "out": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("in", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "li"), ("li", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges), w1, w2


def test_foreign_graphs_fold_input_scale_and_threshold_into_the_weights():
    graph, w1, w2 = _foreign_snn()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NIR's LIF is reset="zero": exact, no warning
        net = sl.nir.load(graph, dt=DT)
        assert sl.nir.load(graph, dt=DT, nearest=True).config == net.config  # still accepted
    assert net.reset == "zero" and net.readout == "mean"
    assert net.tau_hidden == 10e-3 and net.tau_output == 20e-3
    scale_h = 2.0 * (1.0 - np.exp(-DT / 10e-3)) / 0.5
    scale_o = 3.0 * (1.0 - np.exp(-DT / 20e-3))
    np.testing.assert_array_equal(net.w1, (w1.T.astype(np.float64) * scale_h).astype(np.float32))
    np.testing.assert_array_equal(net.w2, (w2.T.astype(np.float64) * scale_o).astype(np.float32))


@pytest.mark.parametrize("change, message", [
    ({"bias": 0.5}, "bias"),
    ({"v_leak": 0.1}, "v_leak"),
    ({"threshold": 0.0}, "v_threshold"),
    ({"tau": -1.0}, "tau"),
])
def test_foreign_graphs_spikeloc_cannot_run_are_refused(change, message):
    graph = _foreign_snn(**change)[0]
    with pytest.raises(ValueError, match=message):
        sl.nir.load(graph, dt=DT, nearest=True)


def test_load_rejects_malformed_graphs(data):
    graph = _foreign_snn()[0]
    with pytest.raises(ValueError, match="dt="):
        sl.nir.load(graph, nearest=True)
    with pytest.raises(TypeError, match="graph_or_path"):
        sl.nir.load(42)
    branched = nir.NIRGraph(nodes=dict(graph.nodes),
                            edges=list(graph.edges) + [("fc1", "out")], type_check=False)
    with pytest.raises(ValueError, match="chain"):
        sl.nir.load(branched, dt=DT, nearest=True)
    short = nir.NIRGraph(nodes={k: graph.nodes[k] for k in ("in", "fc1", "lif")} |
                         {"out": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("in", "fc1"), ("fc1", "lif"), ("lif", "out")])
    with pytest.raises(ValueError, match="Linear -> LIF"):
        sl.nir.load(short, dt=DT, nearest=True)
    with pytest.raises(ValueError, match="euler_step"):
        sl.nir.load(graph, dt=DT, nearest=True, euler_step=0.5)  # tau 10 ms < 0.5 s


def test_an_edited_graph_disagreeing_with_its_metadata_is_refused(data):
    stim = data[0]
    g = sl.nir.export(sl.MembraneOnly.for_stimulus(stim, tau=10e-3))
    g.nodes["readout"].tau = g.nodes["readout"].tau * 2
    with pytest.raises(ValueError, match="disagree"):
        sl.nir.load(g)

"""Cross-simulation of exported spikeloc networks in snnTorch and Norse (needs
``pip install 'spikeloc[crosssim]'``): the helpers test_nir_crosssim.py uses, and, run as a
script, the measurement on a trained tutorial network (100 hidden units, 10 epochs on 4096
samples, a 2048-sample test set)::

    python python/tests/nir_crosssim.py [--reset zero] [--epochs 10] [--seed 0]

A network is exported with ``spikeloc.nir.export(net, euler_step=h)`` (h: the simulator's
integration step; the graph then holds the decay exp(-dt / tau) exactly for it; resets other
than ``"zero"`` need ``nearest=True``), its hidden part (input -> w1 -> hidden LIF) is
imported by ``snntorch.import_nir`` and by ``norse.torch.from_nir`` and run step by step on
the same input spikes. Neither importer reads NIR's LI node (snnTorch raises, Norse drops it
without a word), so the graph's readout (w2 -> LI) decodes the simulators' hidden spikes in
spikeloc: it is a :class:`~spikeloc.MembraneOnly` network over the hidden units.

Alignment: a simulator's step k adds the input x_k and spikes from the updated voltage; that
spike is spikeloc's s_{k+1} (spikeloc records s_0 = 0 and reads step k's input at step k+1).

Where a simulator's hidden spikes differ from spikeloc's, the difference is classified per
spike train (sample, unit; the hidden units do not interact): at its first differing step the
two had the same reset history, so both voltages are float32 roundings of one value, the
float64 voltage along spikeloc's spikes; the difference is "at threshold" when that value is
within ``MARGIN`` (relative) of the threshold, i.e. float32 rounding decided the spike. Later
entries of such a train differ as a consequence (one neuron reset, the other did not).
A float64 NumPy run of the graph's own model (NIR's reset) is the second reference.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time
import warnings

import numpy as np

import spikeloc as sl

#: Relative distance from the threshold below which float32 simulators may round either way.
MARGIN = 2e-5


def export_for(net, euler_step):
    """The NIR graph of ``net`` for a forward-Euler simulator at ``euler_step`` [s]: exact for
    ``reset="zero"``, the nearest NIR model (warning silenced) for the other resets."""
    if net.reset == "zero" and net.adapt_tau is None:
        return sl.nir.export(net, euler_step=euler_step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return sl.nir.export(net, nearest=True, euler_step=euler_step)


def subgraph(graph, names, n_out):
    """The chain of ``graph``'s nodes ``names`` (after its input) closed by an Output of n_out."""
    import nir
    first = graph.nodes[names[0]]
    n_in = int(np.asarray(first.weight).shape[1])
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    nodes.update({k: graph.nodes[k] for k in names})
    nodes["output"] = nir.Output(output_type={"output": np.array([n_out])})
    keys = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(keys[:-1], keys[1:])),
                        metadata=graph.metadata)


def hidden_part(graph):
    """input -> w1 -> hidden (the spiking layer that the simulators run)."""
    return subgraph(graph, ["w1", "hidden"], graph.nodes["hidden"].tau.size)


def readout_model(graph):
    """The graph's readout (w2 -> LI) as a spikeloc MembraneOnly over the hidden units."""
    part = subgraph(graph, ["w2", "readout"], graph.nodes["readout"].tau.size)
    return sl.nir.load(part)


def snntorch_module(graph):
    """snnTorch's import of ``graph`` (its importer prints notes; they are silenced)."""
    import snntorch.import_nir
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch's own API change
        return snntorch.import_nir.import_from_nir(graph)


def norse_module(graph, dt):
    """Norse's import of ``graph`` integrated at step ``dt`` [s]."""
    import norse.torch
    logging.getLogger().setLevel(logging.ERROR)  # Norse logs a note per node with r != 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch's own API change
        return norse.torch.from_nir(graph, dt=dt)


def run(module, spikes) -> np.ndarray:
    """Hidden spikes of an imported module on dense input spikes (B, T, N_in), aligned with
    spikeloc's recording: uint8 (B, T, N_h) with step 0 silent."""
    import torch
    state, out = None, []
    with torch.no_grad():
        for k in range(spikes.shape[1] - 1):
            x = torch.from_numpy(np.ascontiguousarray(spikes[:, k], dtype=np.float32))
            z, state = module(x) if state is None else module(x, state)
            out.append(z.numpy())
    z = np.stack(out, axis=1)
    return np.concatenate([np.zeros_like(z[:, :1]), z], axis=1).astype(np.uint8)


def nir_reference(graph, spikes, dt):
    """float64 run of the hidden LIF with NIR's reset at step ``dt`` (exact reading of the
    graph's decay for its euler_step): (spikes uint8 (B, T, N_h), min relative distance of
    the voltage from the threshold per sample (B,))."""
    lif = graph.nodes["hidden"]
    h = float(graph.metadata["spikeloc"]["euler_step"])
    a = 1.0 - h / lif.tau
    theta = lif.v_threshold
    scale = lif.r * h / lif.tau
    current = spikes.astype(np.float64) @ graph.nodes["w1"].weight.T.astype(np.float64)
    B, T, N = current.shape
    v = np.zeros((B, N))
    out = np.zeros((B, T, N), dtype=np.uint8)
    margin = np.full(B, np.inf)
    for k in range(T - 1):
        v = a * v + scale * current[:, k]
        margin = np.minimum(margin, (np.abs(v - theta) / theta).min(axis=1))
        fired = v > theta
        out[:, k + 1] = fired
        v[fired] = 0.0
    return out, margin


def threshold_distance(net, spikes, hidden) -> np.ndarray:
    """|v - 1| (B, T, N_h), float64, at each step n for the voltage that decides spikeloc's
    spike s_n (v_n; v_{n-1} with the delayed reset): ``net``'s hidden layer driven by
    ``spikes`` and reset along the spike trains ``hidden`` (spikeloc's own), in spikeloc's
    units (threshold 1; v_0 = 0; without an adaptive threshold)."""
    a = np.exp(-net.dt / np.asarray(net.tau_hidden, dtype=np.float64))
    current = spikes.astype(np.float64) @ net.w1_eff.astype(np.float64)
    B, T, N = current.shape
    v = np.zeros((B, T, N))
    for n in range(T - 1):
        s = hidden[:, n]
        if net.reset == "zero":
            v[:, n + 1] = a * v[:, n] * (1.0 - s) + current[:, n]
        elif net.reset == "subtractive":
            v[:, n + 1] = a * v[:, n] + current[:, n] - s
        else:
            v[:, n + 1] = (a * v[:, n] + current[:, n]) * (1.0 - s)
    if net.reset == "delayed":
        v = np.concatenate([np.zeros_like(v[:, :1]), v[:, :-1]], axis=1)
    return np.abs(v - 1.0)


def classify(sim, ours, distance) -> dict:
    """Counts of the entries where ``sim`` differs from ``ours`` (uint8 (B, T, N)), per spike
    train: see the module docstring."""
    differ = sim != ours
    trains = differ.any(axis=1)                        # (B, N)
    first = differ.argmax(axis=1)                      # first differing step per train
    b, j = np.nonzero(trains)
    at_threshold = distance[b, first[b, j], j] <= MARGIN
    return {
        "differ": int(differ.sum()),
        "trains_differ": int(trains.sum()),
        "trains_first_at_threshold": int(at_threshold.sum()),
        "trains_first_not_at_threshold": int((~at_threshold).sum()),
        "differ_first_not_at_threshold": int(differ[b[~at_threshold], :, j[~at_threshold]].sum()),
        "samples_differ": int(differ.any(axis=(1, 2)).sum()),
    }


def first_spike_mask(spikes) -> np.ndarray:
    """bool (B, T, N): the steps up to and including each (sample, unit)'s first spike
    (every step for a unit that never spikes)."""
    T = spikes.shape[1]
    fired = spikes.any(axis=1)
    first = np.where(fired, spikes.argmax(axis=1), T)
    return np.arange(T)[None, :, None] <= first[:, None, :]


def compare(net, spikes):
    """Hidden spikes and predictions of spikeloc, snnTorch and Norse on ``spikes``; a dict of
    counts (see ``main``)."""
    ours = net.forward(spikes)
    distance = threshold_distance(net, spikes, ours.hidden_spikes)
    spikeloc_predictions = net.predict(spikes)
    results = {"entries": ours.hidden_spikes.size, "samples": spikes.shape[0],
               "spikeloc_hidden_spikes": ours.hidden_spikes,
               "entries_near_threshold": int((distance <= MARGIN).sum()),
               "closest_to_threshold": float(distance.min()),
               "spikeloc_predictions": spikeloc_predictions}
    for name, h, make in (("snntorch", sl.nir.SNNTORCH_EULER_STEP, snntorch_module),
                          ("norse", net.dt, lambda g: norse_module(g, net.dt))):
        graph = export_for(net, h)
        sim = run(make(hidden_part(graph)), spikes)
        ref, margin = nir_reference(graph, spikes, net.dt)
        decode = readout_model(graph)
        upto = first_spike_mask(ours.hidden_spikes) & first_spike_mask(sim)
        predictions = decode.predict(sim)
        results[name] = {
            "hidden_spikes": sim,
            "vs_spikeloc": classify(sim, ours.hidden_spikes, distance),
            "compared_up_to_first_spike": int(upto.sum()),
            "differ_up_to_first_spike": int(((sim != ours.hidden_spikes) & upto).sum()),
            "differ_from_nir_reference": int((sim != ref).sum()),
            "samples_near_threshold": int((margin <= MARGIN).sum()),
            "away_from_threshold": margin > MARGIN,
            "differ_from_nir_reference_away_from_threshold":
                int((sim != ref)[margin > MARGIN].sum()),
            "predictions": predictions,
            "reference_predictions": decode.predict(ref),
            "decoded_spikeloc_predictions": decode.predict(ours.hidden_spikes),
            "predictions_differ": int((predictions != spikeloc_predictions).sum()),
        }
    return results


def report(r) -> str:
    """The measurement as text (what ``main`` prints)."""
    n, lines = r["entries"], []
    for name in ("snntorch", "norse"):
        s = r[name]
        c = s["vs_spikeloc"]
        lines += [
            f"{name}: hidden spikes identical to spikeloc's on {1 - c['differ'] / n:.4%} of "
            f"entries ({c['differ']} differ, in {c['trains_differ']} spike trains of "
            f"{c['samples_differ']} samples); first difference at threshold (within {MARGIN:g}) "
            f"in {c['trains_first_at_threshold']} trains, elsewhere in "
            f"{c['trains_first_not_at_threshold']} ({c['differ_first_not_at_threshold']} "
            "entries)",
            f"  up to each first spike {s['differ_up_to_first_spike']} of "
            f"{s['compared_up_to_first_spike']} entries differ",
            f"  vs the graph's model in float64 (NIR reset): {s['differ_from_nir_reference']} "
            f"differ, {s['differ_from_nir_reference_away_from_threshold']} in samples whose "
            f"voltages stay {MARGIN:g} (relative) from threshold "
            f"({s['samples_near_threshold']} samples come closer)",
            f"  predictions identical to spikeloc's on "
            f"{1 - s['predictions_differ'] / r['samples']:.2%} ({s['predictions_differ']} "
            f"differ), to the NIR reference's on "
            f"{(s['predictions'] == s['reference_predictions']).mean():.2%}; the readout "
            "decoding spikeloc's own spikes agrees with spikeloc on "
            f"{(s['decoded_spikeloc_predictions'] == r['spikeloc_predictions']).mean():.2%}"]
    same = int((r["snntorch"]["hidden_spikes"] != r["norse"]["hidden_spikes"]).sum())
    lines.append(f"snnTorch vs Norse: {same} hidden-spike entries differ; "
                 f"{r['entries_near_threshold']} spikeloc voltages lie within {MARGIN:g} of "
                 f"threshold (the closest {r['closest_to_threshold']:.2g} from it)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reset", default="zero",
                        choices=["delayed", "same_step", "subtractive", "zero"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stim = sl.Stimulus.tutorial(phase_offset="per_sample")
    ipd, spikes = stim.generate(4096, seed=args.seed)
    ipd_test, spikes_test = stim.generate(2048, seed=args.seed + 2)
    net = sl.SNN.for_stimulus(stim, n_hidden=100, reset=args.reset, seed=args.seed)
    sl.train(net, ipd, spikes, stimulus=stim, epochs=args.epochs, progress=False)
    print(f"trained {net!r}: test accuracy {sl.evaluate(net, ipd_test, spikes_test, stim).accuracy:.3f}")
    start = time.perf_counter()
    r = compare(net, spikes_test)
    print(f"cross-simulation of {r['samples']} samples, {r['entries']} (sample, step, unit) "
          f"entries, {time.perf_counter() - start:.1f} s")
    print(report(r))


if __name__ == "__main__":
    main()

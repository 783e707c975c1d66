r"""Networks to and from NIR, the Neuromorphic Intermediate Representation (``pip install
'spikeloc[nir]'``).

:func:`export` turns an :class:`~spikeloc.SNN` or a :class:`~spikeloc.MembraneOnly` into a
``nir.NIRGraph``, which snnTorch, Norse, Lava, Spyx, Rockpool, SpiNNaker2 and others read;
:func:`load` turns such a graph (or a NIR file written by ``nir.write``) back into a spikeloc
model. The graphs::

    SNN:           input (N_in) -> w1: Linear -> hidden: LIF (N_h) -> w2: Linear -> readout: LI (C) -> output
    MembraneOnly:  input (N_in) -> w: Linear -> readout: LI (C) -> output

``Linear.weight`` is the transposed spikeloc matrix (NIR and PyTorch write ``(out, in)``);
under Dale's law it is the signed effective matrix ``w1_eff`` / ``w2_eff``.

The mapping
-----------

NIR defines its neurons in continuous time (``nir.LIF``: tau dv/dt = (v_leak - v) + r I,
a spike and ``v = v_reset`` when v > v_threshold; ``nir.LI``: the same without spikes) and
leaves the discretisation to the simulator. spikeloc's update over one step dt
(MODEL.md sections 2 and 4; ``a = exp(-dt / tau)``, ``I_n`` the summed weights of the step's
input spikes)::

    v_{n+1} = a v_n + I_n                                              (between resets)

is the *exact* solution of NIR's equation over one step with the input held constant during
the step (zero-order hold), ``v((n+1) dt) = a v(n dt) + (1 - a) r I_n``. The export writes,
per neuron (``v_leak = 0``, ``v_reset = 0``)::

    LIF (hidden):   tau = tau_h,  r = 1,                v_threshold = 1 - a_h
    LI  (readout):  tau = tau_o,  r = 1 / (1 - a_o)

so that the graph's LIF voltage is ``(1 - a_h) v`` (the threshold scaled with it: a spike iff
``v > 1``) and the LI voltage is spikeloc's readout membrane ``u`` itself. (The LIF keeps
``r = 1`` and moves the scale into the threshold because Norse's importer ignores ``r``; the
two forms are the same NIR model.)

Simulators that integrate NIR's equations with forward Euler instead, ``v <- v + (h / tau)
(v_leak - v + r I)`` at a step h (snnTorch's importer: h = 1e-4 s, fixed; Norse's: its ``dt``
argument), reproduce spikeloc exactly when the time constants are written as::

    tau' = h / (1 - a)          (decay 1 - h / tau' = a, input scale h / tau' = 1 - a)

with ``r`` and the thresholds as above: ``export(model, euler_step=h)``. The graph then runs
one spikeloc step per step h of the simulator (its time axis is rescaled by h / dt); ``load``
inverts it (``a = 1 - h / tau'``, ``tau = -dt / ln a``) when given the same ``euler_step``
(a graph written by spikeloc says which it used).

Resets: what NIR can and cannot say
-----------------------------------

NIR's LIF resets ``v`` to ``v_reset`` in the step in which it crosses the threshold and keeps
integrating the input after it. As snnTorch's and Norse's importers discretise it (the spike
read from the updated voltage, the reset applied before the next step's input is added), in
spikeloc's indexing (``s_n`` read from ``v_n``, MODEL.md section 4)::

    s_n = H(v_n - 1),   v_{n+1} = a v_n (1 - s_n) + I_n

which is spikeloc's ``reset="zero"``: an ``SNN`` with it exports exactly (no ``nearest``
needed; a simulator's spike of its step k, which adds the input of step k, is spikeloc's
``s_{k+1}``). The other resets are not NIR's model:

* ``"delayed"`` (the seeds): the spike is read one step later, from the voltage before the
  update, and the reset acts one step after that, so spikes come in pairs;
* ``"same_step"``: ``v_{n+1} = (a v_n + I_n)(1 - s_n)`` also discards the input ``I_n`` of the
  step after a spike (a one-step refractory period for input); NIR only resets the voltage.
  Up to each neuron's first spike it is the same as ``"zero"``;
* ``"subtractive"``: subtracts the threshold (``v_{n+1} = a v_n + I_n - s_n``); NIR's reset
  is to a fixed value.

Nor has NIR an adaptive threshold (``adapt_tau``). :func:`export` therefore raises
:class:`NIRExportError` for an ``SNN`` with another reset or an adaptive threshold unless
called with ``nearest=True``, which writes the nearest NIR model (NIR's reset, i.e.
``"zero"``; a fixed threshold 1 without adaptation) and warns with what differs. The
readout's aggregation over time (``mean``, ``sum`` x 0.01, ``max``) is how the graph's output
is decoded, not part of its dynamics: it travels in the graph's metadata, as do the options
that only matter for training (surrogate, Dale's law signs, learned time constants,
regulariser, dropout) and the time step dt. ``readout="spike_count"`` exports the output layer
as a LIF node (exact with ``reset="zero"``, otherwise the same remark). The
:class:`~spikeloc.MembraneOnly` network has no spikes and exports exactly.

:func:`load` reads spikeloc's own graphs back bit-exactly (weights, time constants and every
option: ``spikeloc -> nir.write -> nir.read -> spikeloc`` gives the same forward pass) and
reads chains of the same shape written by other tools: ``Affine`` (zero bias) or ``Linear``,
``LIF`` (``v_leak = v_reset = 0``) and ``LI`` (``v_leak = 0``). Their input scales and
thresholds are folded into the weights (spikeloc's threshold is 1): the hidden column ``j`` of
``w1`` is multiplied by ``r_j (1 - a_j) / v_threshold_j`` and the readout column ``c`` of
``w2`` by ``r_c (1 - a_c)``. A foreign LIF graph loads with ``reset="zero"``, NIR's reset.
"""

from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np

from . import __version__
from ._native_api import check_positive
from .network import MembraneOnly, SNN

__all__ = ["export", "load", "NIRExportError", "SNNTORCH_EULER_STEP"]

#: The fixed step [s] with which snnTorch's NIR importer (``snntorch.import_nir``) integrates
#: LIF nodes: pass it as ``export(model, euler_step=SNNTORCH_EULER_STEP)`` for snnTorch.
SNNTORCH_EULER_STEP = 1e-4

#: What each spikeloc reset does differently from NIR's LIF (the warning of ``nearest=True``);
#: ``"zero"`` is NIR's reset and is not listed.
RESET_DIFFERENCES = {
    "delayed": "spikeloc's delayed reset (the seeds) reads each spike one step late and "
               "resets one step after that, so its spikes come in pairs; NIR's LIF spikes "
               "and resets in the step that crosses the threshold",
    "same_step": "spikeloc's same-step reset also discards the input of the step after a "
                 "spike ((a v + I)(1 - s)); NIR's LIF only resets the voltage and keeps "
                 "integrating (identical up to each neuron's first spike; reset='zero' is "
                 "NIR's reset)",
    "subtractive": "spikeloc's subtractive reset subtracts the threshold; NIR's LIF resets "
                   "to a fixed v_reset",
}

_META_KEY = "spikeloc"


class NIRExportError(ValueError):
    """A spikeloc model option that NIR cannot represent exactly (see :mod:`spikeloc.nir`)."""


def _nir():
    try:
        import nir
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("spikeloc.nir needs the 'nir' package: pip install 'spikeloc[nir]'"
                          ) from e
    return nir


def _decay(dt: float, tau: np.ndarray) -> np.ndarray:
    """a = exp(-dt / tau), float64 (the kernels round it to float32 after this)."""
    return np.exp(-dt / np.asarray(tau, dtype=np.float64))


def _per_neuron(tau, n: int) -> np.ndarray:
    """A layer's time constants [s] as a float64 array (n,) (a scalar is repeated)."""
    return np.broadcast_to(np.asarray(tau, dtype=np.float64), (n,)).copy()


def _node_tau(dt: float, tau: np.ndarray, euler_step) -> np.ndarray:
    """The time constants written to the graph: tau itself, or h / (1 - a) for Euler."""
    if euler_step is None:
        return tau
    return euler_step / (1.0 - _decay(dt, tau))


def _model_tau(dt: float, node_tau: np.ndarray, euler_step) -> np.ndarray:
    """Inverse of :func:`_node_tau`: spikeloc's tau [s] from a graph's."""
    if euler_step is None:
        return node_tau
    a = 1.0 - euler_step / node_tau
    if not ((a > 0) & (a < 1)).all():
        raise ValueError(f"with euler_step={euler_step} the graph's time constants must exceed "
                         f"euler_step (decay 1 - h/tau in (0, 1)), got min {node_tau.min()}")
    return -dt / np.log(a)


def _lif(nir, dt, tau, euler_step):
    n = tau.size
    return nir.LIF(tau=_node_tau(dt, tau, euler_step), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=1.0 - _decay(dt, tau), v_reset=np.zeros(n))


def _li(nir, dt, tau, euler_step):
    n = tau.size
    return nir.LI(tau=_node_tau(dt, tau, euler_step), r=1.0 / (1.0 - _decay(dt, tau)),
                  v_leak=np.zeros(n))


def _differences(model, nearest: bool) -> list:
    """The options of ``model`` that NIR cannot hold; raises unless ``nearest``."""
    if not isinstance(model, SNN):
        return []
    diffs = [RESET_DIFFERENCES[model.reset]] if model.reset in RESET_DIFFERENCES else []
    if model.adapt_tau is not None:
        diffs.append("NIR has no adaptive threshold: the graph's threshold is fixed at 1 "
                     f"(adapt_tau={model.adapt_tau} s, adapt_strength={model.adapt_strength} "
                     "dropped)")
    if model.readout == "spike_count" and model.reset in RESET_DIFFERENCES:
        diffs.append("the spike-count readout's output layer is a LIF node with NIR's reset")
    if diffs and not nearest:
        raise NIRExportError(
            "NIR cannot represent this SNN exactly: " + "; ".join(diffs)
            + ". Pass nearest=True to export the nearest NIR model (NIR's reset, fixed "
            "threshold), or use reset='zero' (NIR's reset); see the spikeloc.nir module "
            "docstring.")
    return diffs


def export(model, *, nearest: bool = False, euler_step=None):
    """The NIR graph of a spikeloc model.

    Parameters
    ----------
    model : SNN or MembraneOnly
        The network to export.
    nearest : bool
        An SNN with ``reset="zero"`` and no adaptive threshold exports exactly. The other
        resets (and the adaptive threshold) have no exact NIR counterpart: without
        ``nearest=True`` the export raises :class:`NIRExportError` saying what differs; with
        it, the graph holds the nearest NIR model and a ``UserWarning`` says what differs.
    euler_step : float or None
        None (default): the graph's time constants are the model's [s] (the exact reading of
        NIR's equations, see the module docstring). A step h [s]: time constants
        ``h / (1 - exp(-dt / tau))``, for simulators that integrate NIR's equations with
        forward Euler at step h (``SNNTORCH_EULER_STEP`` for snnTorch's importer; Norse's
        importer: the ``dt`` it is given).

    Returns
    -------
    nir.NIRGraph
        The graph (write it with ``nir.write(path, graph)``); its metadata holds
        ``"spikeloc"``: the model's configuration (JSON), dt, the readout and euler_step.
    """
    nir = _nir()
    if not isinstance(model, (SNN, MembraneOnly)):
        raise TypeError(f"model must be a spikeloc SNN or MembraneOnly, got {type(model).__name__}")
    if euler_step is not None:
        euler_step = check_positive(euler_step, "euler_step")
    diffs = _differences(model, nearest)
    if diffs:
        warnings.warn("spikeloc.nir.export: the graph is the nearest NIR model, not this "
                      "network: " + "; ".join(diffs), UserWarning, stacklevel=2)
    dt = model.dt
    meta = {"config": json.dumps(model.config), "dt": dt, "readout": model.readout,
            "version": __version__}
    if euler_step is not None:
        meta["euler_step"] = euler_step
    nodes = {"input": nir.Input(input_type={"input": np.array([model.n_in])})}
    if isinstance(model, MembraneOnly):
        chain = [("w", nir.Linear(weight=np.ascontiguousarray(model.w.T))),
                 ("readout", _li(nir, dt, _per_neuron(model.tau, model.n_out), euler_step))]
    else:
        tau_h = _per_neuron(model.tau_hidden, model.n_hidden)
        tau_o = _per_neuron(model.tau_output, model.n_out)
        readout = (_lif if model.readout == "spike_count" else _li)(nir, dt, tau_o, euler_step)
        chain = [("w1", nir.Linear(weight=np.ascontiguousarray(model.w1_eff.T))),
                 ("hidden", _lif(nir, dt, tau_h, euler_step)),
                 ("w2", nir.Linear(weight=np.ascontiguousarray(model.w2_eff.T))),
                 ("readout", readout)]
        for name, value in model.parameters().items():
            if name.startswith("tau_"):  # learned time constants, in units of dt
                meta[name + "_steps"] = value.copy()
    nodes.update(chain)
    nodes["output"] = nir.Output(output_type={"output": np.array([model.n_out])})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])),
                        metadata={_META_KEY: meta})


# ------------------------------------------------------------------------------- loading

def _chain(nir, graph) -> list:
    """The graph's nodes from its Input to its Output, which must form one chain."""
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise ValueError(f"graph must have one Input node, found {len(inputs)}")
    succ = {}
    for src, dst in graph.edges:
        if src in succ:
            raise ValueError(f"graph must be a chain, but node {src!r} has several successors")
        succ[src] = dst
    order, name = [], inputs[0]
    while True:
        if name in order:
            raise ValueError(f"graph must be a chain, but node {name!r} is in a cycle")
        order.append(name)
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            break
        if name not in succ:
            raise ValueError(f"graph must be a chain from Input to Output; {name!r} ends it")
        name = succ[name]
    if len(order) != len(graph.nodes):
        raise ValueError("graph must be one chain from Input to Output; nodes "
                         f"{sorted(set(graph.nodes) - set(order))} are not on it")
    return [graph.nodes[k] for k in order[1:-1]]


def _weight(nir, node) -> np.ndarray:
    """(in, out) float64 matrix of a Linear or zero-bias Affine node."""
    if isinstance(node, nir.Affine):
        if np.any(np.asarray(node.bias) != 0):
            raise ValueError("spikeloc networks have no biases: Affine nodes must have bias 0")
    elif not isinstance(node, nir.Linear):
        raise ValueError(f"expected a Linear or Affine node, got {type(node).__name__}")
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"weight matrices must be 2-D, got shape {w.shape}")
    return w.T


def _neuron(node, kind, dt, euler_step):
    """(spikeloc tau [s], input scale into spikeloc units) of a LIF or LI node."""
    arrays = {"tau": node.tau, "r": node.r, "v_leak": node.v_leak}
    if kind == "LIF":
        arrays.update(v_threshold=node.v_threshold, v_reset=node.v_reset)
    arrays = {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in arrays.items()}
    for k, v in arrays.items():
        if not np.isfinite(v).all():
            raise ValueError(f"{kind}.{k} must be finite")
    if (arrays["tau"] <= 0).any():
        raise ValueError(f"{kind}.tau must be > 0")
    for k in ("v_leak", "v_reset"):
        if k in arrays and (arrays[k] != 0).any():
            raise ValueError(f"spikeloc neurons rest and reset at 0: {kind}.{k} must be 0")
    tau = _model_tau(dt, arrays["tau"], euler_step)
    scale = arrays["r"] * (1.0 - _decay(dt, tau))
    if kind == "LIF":
        if (arrays["v_threshold"] <= 0).any():
            raise ValueError("LIF.v_threshold must be > 0")
        scale = scale / arrays["v_threshold"]
    return tau, scale


def _scaled(w, scale) -> np.ndarray:
    """float32 w * scale per column (a scale within 2^-25 of 1 leaves float32 weights as
    they are, so spikeloc's own graphs load bit-exactly)."""
    return np.ascontiguousarray(w * scale[None, :], dtype=np.float32)


def _tau_argument(tau: np.ndarray):
    """A float for equal time constants, else the per-neuron array."""
    return float(tau[0]) if (tau == tau[0]).all() else tau


def load(graph_or_path, *, dt=None, euler_step=None, readout=None, nearest: bool = False,
         threads=None):
    """A spikeloc model from a NIR graph or a NIR file (``nir.read``).

    Parameters
    ----------
    graph_or_path : nir.NIRGraph or path
        A graph, or the path of a NIR file.
    dt : float or None
        Time step [s] at which to run the graph. Default: the one a spikeloc export recorded;
        other graphs need it. (A dt different from the export's re-discretises NIR's
        continuous equations.)
    euler_step : float or None
        The graph's time constants were written for forward Euler at this step [s] (see
        :func:`export`). Default: what a spikeloc export recorded, else None (exact reading).
    readout : "mean", "sum", "max" or None
        How the readout membrane is aggregated over time. Default: the export's; else the
        class default ("mean" for SNN, "sum" for MembraneOnly).
    nearest : bool
        Not needed: a LIF graph not written by spikeloc has NIR's reset and loads exactly,
        with ``reset="zero"``. Accepted (and ignored) so that calls written when it loaded
        with the nearest reset keep working.
    threads : int or None
        Worker threads of the returned model.

    Returns
    -------
    SNN or MembraneOnly
        An :class:`~spikeloc.SNN` for Linear, LIF, Linear, LI (or LIF); a
        :class:`~spikeloc.MembraneOnly` for Linear, LI.
    """
    nir = _nir()
    graph = graph_or_path
    if isinstance(graph, (str, bytes, os.PathLike)):
        graph = nir.read(os.fsdecode(graph))
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph_or_path must be a nir.NIRGraph or a path, got "
                        f"{type(graph).__name__}")
    meta = (graph.metadata or {}).get(_META_KEY) or {}
    config = json.loads(meta["config"]) if "config" in meta else None
    if dt is None:
        if "dt" not in meta:
            raise ValueError("the graph does not record a time step: pass dt= (seconds)")
        dt = float(meta["dt"])
    dt = check_positive(dt, "dt")
    if euler_step is None and "euler_step" in meta:
        euler_step = float(meta["euler_step"])
    if euler_step is not None:
        euler_step = check_positive(euler_step, "euler_step")
    if readout is None:
        readout = str(meta["readout"]) if "readout" in meta else None
    nodes = _chain(nir, graph)
    kinds = [type(n).__name__ for n in nodes]
    if config is not None and config.get("model") not in ("SNN", "MembraneOnly"):
        config = None
    if kinds in (["Linear", "LI"], ["Affine", "LI"]):
        return _load_membrane(nir, nodes, config, dt, euler_step, readout, threads)
    if len(kinds) == 4 and kinds[0] in ("Linear", "Affine") and kinds[1] == "LIF" \
            and kinds[2] in ("Linear", "Affine") and kinds[3] in ("LI", "LIF"):
        return _load_snn(nir, nodes, meta, config, dt, euler_step, readout, threads)
    raise ValueError("spikeloc reads the chains Linear -> LI (MembraneOnly) and "
                     f"Linear -> LIF -> Linear -> LI (SNN); this graph is {' -> '.join(kinds)}")


def _check_taus(model, graph_taus: dict) -> None:
    """The recorded configuration's time constants must be the graph's (an edited graph, or
    one loaded at another dt, would otherwise silently run the recorded values)."""
    for name, want in graph_taus.items():
        got = np.broadcast_to(np.asarray(getattr(model, name), dtype=np.float64), want.shape)
        if not np.allclose(got, want, rtol=1e-6, atol=0):
            raise ValueError(f"the graph's {name} ({want[:3]}...) and the spikeloc "
                             f"configuration in its metadata ({got[:3]}...) disagree")


def _load_membrane(nir, nodes, config, dt, euler_step, readout, threads):
    w = _weight(nir, nodes[0])
    tau, scale = _neuron(nodes[1], "LI", dt, euler_step)
    if w.shape[1] != tau.size:
        raise ValueError(f"Linear has {w.shape[1]} outputs but LI has {tau.size} neurons")
    if not (tau == tau[0]).all():
        raise ValueError("MembraneOnly has one time constant: the LI node's taus must be equal")
    kw = {"tau": float(tau[0])}
    if config is not None and config["model"] == "MembraneOnly":
        kw.update(tau=config["tau"], seed=config["seed"], readout=config["readout"])
    if readout is not None:
        kw["readout"] = readout
    model = MembraneOnly(w.shape[0], w.shape[1], dt=dt, threads=threads, **kw)
    _check_taus(model, {"tau": tau})
    model.w = _scaled(w, scale)
    return model


def _load_snn(nir, nodes, meta, config, dt, euler_step, readout, threads):
    w1, w2 = _weight(nir, nodes[0]), _weight(nir, nodes[2])
    tau_h, scale_h = _neuron(nodes[1], "LIF", dt, euler_step)
    kind_o = type(nodes[3]).__name__
    tau_o, scale_o = _neuron(nodes[3], kind_o, dt, euler_step)
    if not (w1.shape[1] == tau_h.size == w2.shape[0] and w2.shape[1] == tau_o.size):
        raise ValueError(f"inconsistent layer sizes: w1 {w1.T.shape}, LIF {tau_h.size}, "
                         f"w2 {w2.T.shape}, readout {tau_o.size} (weights are (out, in))")
    if config is not None and config["model"] == "SNN":
        # spikeloc's own graph: replay its constructor (the same seed draws the same Dale
        # signs and initial time constants), then install the graph's weights
        kw = {k: v for k, v in config.items() if k not in ("model", "n_in", "n_hidden", "n_out")}
        kw["dt"] = dt
        if readout is not None and kind_o == "LI":
            kw["readout"] = readout
    else:
        kw = {"dt": dt, "tau_hidden": _tau_argument(tau_h), "tau_output": _tau_argument(tau_o),
              "reset": "zero",
              "readout": "spike_count" if kind_o == "LIF" else (readout or "mean")}
    model = SNN(w1.shape[0], w1.shape[1], w2.shape[1], threads=threads, **kw)
    for name in ("tau_hidden", "tau_output"):
        steps = meta.get(name + "_steps")
        param = model.parameters().get(name)
        if steps is not None and param is not None and np.shape(steps) == param.shape:
            np.copyto(param, np.asarray(steps, dtype=np.float32))  # learned values, bit for bit
    _check_taus(model, {"tau_hidden": tau_h, "tau_output": tau_o})
    model.w1 = _scaled(w1, scale_h)
    model.w2 = _scaled(w2, scale_o)
    return model

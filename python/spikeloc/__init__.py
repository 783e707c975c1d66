"""spikeloc: spiking neural networks for sound localisation, with Swift kernels.

Python allocates, Swift computes: the stimulus, the networks' forward and backward passes and
the optimisers are single calls into compiled kernels (through ``spikeloc._native``, with the
GIL released); everything here works on plain NumPy arrays.

Units: times in seconds, rates in Hz (``ms = 1e-3`` and ``Hz = 1.0`` are provided, so
``20 * ms`` reads as it should). Shapes: spikes ``(B, T, N_in)`` uint8, ``w1 (N_in, N_h)``,
``w2 (N_h, C)`` float32, labels ``(B,)`` int64.

Quick start::

    import numpy as np
    import spikeloc as sl
    stim = sl.Stimulus.tutorial()
    ipd, x = stim.generate(1024, seed=0, events=True)   # SpikeEvents (events=False: dense)
    labels = stim.labels(ipd)
    net = sl.SNN.for_stimulus(stim, n_hidden=100, tau_hidden=20 * sl.ms)
    opt = sl.Adam(net, lr=0.01)
    for start in range(0, 1024, 64):
        batch = np.arange(start, start + 64)
        loss, grads = net.loss_and_grad(x, labels[batch], index=batch)
        opt.step(grads)
    accuracy = (net.predict(x) == labels).mean()

The public names are imported lazily, so ``spikeloc.reference`` (the NumPy reference) can be
imported without the compiled extension.
"""

from importlib import import_module as _import_module

from . import _kernels

# The kernels library of the best CPU variant (or SPIKELOC_KERNELS's) is loaded before
# anything imports the extension, which takes its symbols from it (see spikeloc._kernels).
# Without a build it loads nothing, and spikeloc.reference still imports.
_kernels.load()

__version__ = "0.1.0"

#: One millisecond in seconds.
ms = 1e-3
#: One hertz.
Hz = 1.0

_LAZY = {
    # header constants of spikeloc.h: random-number words and the per-set stream index
    "WORD_IPD": "_abi",
    "WORD_PHASE": "_abi",
    "WORD_EPOCH_PHASE": "_abi",
    "WORD_DELAY_NOISE": "_abi",
    "SET_INDEX": "_abi",
    "Stimulus": "stimulus",
    "PRESETS": "stimulus",
    "SpikeEvents": "events",
    "as_events": "events",
    "SNN": "network",
    "MembraneOnly": "network",
    "SNNOutput": "network",
    "MembraneOutput": "network",
    "Adam": "optim",
    "SGD": "optim",
    "resolve_threads": "_native_api",
    "train": "training",
    "History": "training",
    "NonFiniteLossError": "training",
    "evaluate": "evaluation",
    "Evaluation": "evaluation",
    "save": "checkpoint",
    "load": "checkpoint",
    "CheckpointError": "checkpoint",
    # research variants (MODEL.md section 4)
    "Dale": "variants",
    "RateRegularizer": "variants",
    "Delays": "variants",
    # sweeps: ``spikeloc.sweep`` is the module, and calling it calls ``sweep.sweep``
    "SweepResult": "sweep",
    "SweepInterrupted": "sweep",
    "kernel_threads": "_native_api",
    "EPropNetwork": "eprop",
    # experiments as files, presets, run folders
    "Experiment": "experiment",
    "ExperimentError": "experiment",
    "RunResult": "experiment",
    "presets": "experiment",
}

#: Submodules importable as attributes (``sl.plots.loss_curves(...)``); plots needs matplotlib,
#: nir the ``nir`` package.
_SUBMODULES = ("plots", "reference", "tutorial", "sweep", "nir", "checkpoint", "experiment",
               "runs")

# ---- data options, analysis and data sets -------------------------------------------------
_LAZY.update({
    "silenced": "analysis",
    "ablation": "analysis",
    "Ablation": "analysis",
    "tuning_curves": "analysis",
    "TuningCurves": "analysis",
})
_SUBMODULES += ("analysis", "datasets")
# ---- end of data options block ------------------------------------------------------------

__all__ = ["ms", "Hz", "default_threads", "abi_version", "build_info", "sweep", *_LAZY]


def __getattr__(name):
    if name in _SUBMODULES:
        return _import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spikeloc' has no attribute {name!r}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def default_threads() -> int:
    """Number of worker threads the kernels use for ``threads=0`` (one per online CPU)."""
    from ._native_api import _native
    return _native.default_threads()


def abi_version() -> int:
    """Version of the kernels' C ABI (spikeloc.h)."""
    from ._native_api import _native
    return _native.abi_version()


def build_info() -> _kernels.BuildInfo:
    """The kernels in use: the CPU variant loaded (``baseline``, ``avx2`` or ``avx512``), the
    variants installed and those this CPU supports, the CPU features that decided, each
    variant's target CPU, the ABI version and the default thread count.
    ``print(spikeloc.build_info())`` gives a summary; ``SPIKELOC_KERNELS=avx2`` (set before
    the import) forces a variant."""
    from ._native_api import _native
    return _kernels.build_info(_native.abi_version(), _native.default_threads())

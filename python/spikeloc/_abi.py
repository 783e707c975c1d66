"""The C ABI of the kernels (``Sources/CSpikeLoc/include/spikeloc.h``) as Python sees it.

The header's codes come from the compiled extension, which exports them without their
``SPK_`` prefix (``_native.READOUT_MEAN`` is ``SPK_READOUT_MEAN``); here they are grouped into
name -> code tables whose names are the header's in lower case (``SPK_RESET_SAME_STEP`` ->
``"same_step"``), the names the Python API uses. The header's structs are NamedTuples with the
header's fields, in its order and with its C types (``python/tests/test_abi.py`` reads the
header and checks both); ``spikeloc._native`` takes them where the header takes a pointer to
the struct. Arrays in a struct are C-contiguous NumPy arrays of the pointer's element type, or
None where the header allows NULL.
"""

from typing import Annotated, NamedTuple, Optional

import numpy as np

from ._native_api import _native

__all__ = ["READOUTS", "RESETS", "SURROGATES", "EPROP_LOSSES", "TIMINGS", "DELAYS", "RATES",
           "ABI_VERSION", "WORD_IPD",
           "WORD_PHASE", "WORD_EPOCH_PHASE", "WORD_DELAY_NOISE", "SET_INDEX", "StimulusParams",
           "NetConfig", "Events", "EPropConfig", "Network"]


def _codes(prefix: str) -> dict:
    """{name: code} of the header's ``SPK_<prefix><NAME>`` codes, in code order."""
    found = {name[len(prefix):].lower(): getattr(_native, name)
             for name in dir(_native) if name.startswith(prefix)}
    return dict(sorted(found.items(), key=lambda item: item[1]))


#: readout name -> SPK_READOUT_* ("spike_count" needs spiking output units: SNN variants only)
READOUTS = _codes("READOUT_")
#: reset name -> SPK_RESET_*
RESETS = _codes("RESET_")
#: surrogate name -> SPK_SURROGATE_*
SURROGATES = _codes("SURROGATE_")
#: e-prop loss name -> SPK_EPROP_* (also the per-step losses of the general network's
#: "window" readout)
EPROP_LOSSES = _codes("EPROP_")
#: timing of the general network -> SPK_TIMING_* ("seeds", "eprop")
TIMINGS = _codes("TIMING_")
#: delays of the general network -> SPK_DELAYS_* ("none", "input", "synapse")
DELAYS = _codes("DELAYS_")
#: rate penalty of the general network -> SPK_RATE_* ("none", "upper", "target")
RATES = _codes("RATE_")

#: SPK_ABI_VERSION of the header the extension was built with (the import checks that the
#: loaded kernels have it too).
ABI_VERSION = _native.ABI_VERSION
#: Counter word of a sample's IPD draw (SPK_WORD_IPD).
WORD_IPD = _native.WORD_IPD
#: Counter word of a sample's phase-offset draw (SPK_WORD_PHASE).
WORD_PHASE = _native.WORD_PHASE
#: Counter word of the per-epoch phase offset, drawn on stream index ``epoch``
#: (SPK_WORD_EPOCH_PHASE).
WORD_EPOCH_PHASE = _native.WORD_EPOCH_PHASE
#: Base counter word of the phase-delay noise: input i uses words ``WORD_DELAY_NOISE + 2 i``
#: and ``+ 2 i + 1`` (SPK_WORD_DELAY_NOISE).
WORD_DELAY_NOISE = _native.WORD_DELAY_NOISE
#: Sample index of the per-set stream (the one phase offset of a generated set; SPK_SET_INDEX).
SET_INDEX = _native.SET_INDEX

# The header's C types, as annotations that name them (the test compares them with the header).
int32_t = Annotated[int, "int32_t"]
int64_t = Annotated[int, "int64_t"]
uint64_t = Annotated[int, "uint64_t"]
double = Annotated[float, "double"]


def _pointer(ctype: str):
    return Annotated[Optional[np.ndarray], f"{ctype} *"]


class StimulusParams(NamedTuple):
    """``spk_stimulus_params``: times in seconds, rates in Hz."""

    dt: double
    steps: int64_t
    freq: double
    anf_per_ear: int64_t
    rate_max: double
    envelope_power: double
    null_phase_delays: int32_t


class NetConfig(NamedTuple):
    """``spk_net_config``: sizes, time step and time constants [s], readout code, surrogate
    steepness."""

    n_in: int64_t
    n_hidden: int64_t
    n_out: int64_t
    steps: int64_t
    dt: double
    tau_hidden: double
    tau_output: double
    readout: int32_t
    beta: double


class Events(NamedTuple):
    """``spk_events``: a data set's spikes as event lists (see :mod:`spikeloc.events`)."""

    n_samples: int64_t
    steps: int64_t
    n_in: int64_t
    n_events: int64_t
    step_ptr: _pointer("const int64_t")
    step_events: _pointer("const uint16_t")
    input_ptr: _pointer("const int64_t")
    input_events: _pointer("const uint16_t")


class EPropConfig(NamedTuple):
    """``spk_eprop_config``: the e-prop network (MODEL.md section 5); times in seconds, rates
    in Hz."""

    n_in: int64_t
    n_hidden: int64_t
    n_out: int64_t
    steps: int64_t
    window: int64_t
    dt: double
    tau_m: double
    tau_out: double
    v_th: double
    gamma: double
    reg_c: double
    f_target: double
    loss: int32_t
    recurrent: int32_t


class Network(NamedTuple):
    """``spk_network``: the general network (MODEL.md section 7): sizes, the hidden layers'
    sizes (int64) and recurrence flags (uint8), time step [s], surrogate scale, codes and
    options (see the header); rates in Hz."""

    n_in: int64_t
    n_out: int64_t
    steps: int64_t
    n_layers: int64_t
    hidden: _pointer("const int64_t")
    recurrent: _pointer("const uint8_t")
    dt: double
    beta: double
    reset: int32_t
    surrogate: int32_t
    detach_reset: int32_t
    adapt_tau: double
    adapt_strength: double
    readout: int32_t
    window: int64_t
    window_loss: int32_t
    timing: int32_t
    bias: int32_t
    delays: int32_t
    max_delay: int64_t
    rate: int32_t
    rate_c: double
    rate_ref: double
    dropout: double
    dropout_seed: uint64_t


#: C struct name -> its NamedTuple
STRUCTS = {"spk_stimulus_params": StimulusParams, "spk_net_config": NetConfig,
           "spk_events": Events, "spk_eprop_config": EPropConfig, "spk_network": Network}

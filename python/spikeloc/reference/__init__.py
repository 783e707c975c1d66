"""NumPy reference implementation of spikeloc (the oracle of the tests).

Plain float64 NumPy, written to be read: the equations of ``shared/design/MODEL.md``
(sections 1-5) and of the C header ``spikeloc.h`` appear in the docstrings and comments.
It depends on NumPy only and never imports the compiled extension.

Modules: ``rng`` (counter-based generator), ``stim`` (IPD stimulus; its main function is ``stimulus``), ``network`` (spiking and
membrane-only networks with surrogate-gradient BPTT), ``optim`` (Adam, SGD), ``variants`` (the research variants of MODEL.md section 4), ``eprop`` (the
recurrent network of MODEL.md section 5, by e-prop and by BPTT), ``delays`` and ``general``
(trainable delays, recurrent and deeper networks of MODEL.md section 7), ``fixtures`` and
``variant_fixtures`` (known-answer files for the Swift tests).
"""

from .rng import (GAMMA, SET_INDEX, WORD_DELAY_NOISE, WORD_EPOCH_PHASE, WORD_IPD, WORD_PHASE,
                  as_u64, delay_noise_normals, key, mix64, stimulus_uniforms, uniform53, word)
from .stim import (NUM_CLASSES, StimulusParams, abs_error_deg, delay_noise_offsets, draw_ipd,
                   draw_phase_per_epoch, draw_phase_per_sample, draw_phase_per_set,
                   envelope_mean, expected_rate, labels, midpoints, phase_delays,
                   spike_probability, stimulus)
from .network import (READOUTS, aggregate, aggregate_backward, cross_entropy, init_weights,
                      leaky_readout, leaky_readout_backward, log_softmax,
                      membrane_only_forward, membrane_only_loss_and_grad, sigmoid,
                      snn_forward, snn_loss_and_grad, surrogate)
from .optim import adam_step, adam_trajectory, sgd_step
# the research variants (MODEL.md section 4) and e-prop (section 5), as submodules
from . import delays, eprop, general, variants

__all__ = [
    "GAMMA", "SET_INDEX", "WORD_IPD", "WORD_PHASE", "as_u64", "key", "mix64",
    "stimulus_uniforms", "uniform53", "word",
    "NUM_CLASSES", "StimulusParams", "abs_error_deg", "draw_ipd", "draw_phase_per_sample",
    "draw_phase_per_set", "envelope_mean", "expected_rate", "labels", "midpoints",
    "phase_delays", "spike_probability", "stimulus",
    "READOUTS", "aggregate", "aggregate_backward", "cross_entropy", "init_weights",
    "leaky_readout", "leaky_readout_backward", "log_softmax", "membrane_only_forward",
    "membrane_only_loss_and_grad", "sigmoid", "snn_forward", "snn_loss_and_grad", "surrogate",
    "adam_step", "adam_trajectory", "sgd_step",
    "WORD_DELAY_NOISE", "WORD_EPOCH_PHASE", "delay_noise_normals", "delay_noise_offsets",
    "draw_phase_per_epoch",
    "delays", "eprop", "general", "variants",
]

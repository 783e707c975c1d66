"""Bad arguments of the research-variant entry points (spk_variant_*) raise ValueError or
TypeError naming the argument, and never crash (python/tests/test_bad_input.py style)."""

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import _native

STIM = sl.Stimulus(duration=0.02, anf_per_ear=8, num_classes=4, phase_offset="per_sample")
IPD, SPIKES = STIM.generate(6, seed=1)
EVENTS = sl.SpikeEvents.from_dense(SPIKES)
LABELS = STIM.labels(IPD)
N_IN, H, C, T = 16, 5, 4, EVENTS.steps
CONFIG = (N_IN, H, C, T, 1e-3, 5e-3, 5e-3, 0, 5.0)
W1 = np.full((N_IN, H), 0.1, np.float32)
W2 = np.full((H, C), 0.1, np.float32)
TAU_H, TAU_O = np.full(H, 5e-3, np.float32), np.full(C, 5e-3, np.float32)
SIGN1, SIGN2 = np.ones(N_IN, np.float32), -np.ones(H, np.float32)
OPTIONS = dict(reset=0, surrogate=0, adapt_tau=5e-3, adapt_strength=1.0, tau_hidden=TAU_H,
               tau_output=TAU_O, sign_w1=SIGN1, sign_w2=SIGN2, rate_c=1.0, rate_max=100.0,
               dropout=0.2, dropout_seed=3)


def options(**changes):
    o = dict(OPTIONS)
    o.update(changes)
    return tuple(o.values())


def loss_grad(config=CONFIG, opts=None, w1=W1, g_tau_h=None, g_tau_o=None):
    return _native.variant_loss_grad(
        config, options() if opts is None else opts, EVENTS._abi(), None, 6, LABELS, w1, W2,
        np.empty_like(W1), np.empty_like(W2),
        np.empty(H, np.float32) if g_tau_h is None else g_tau_h,
        np.empty(C, np.float32) if g_tau_o is None else g_tau_o, None, 1)


def forward(config=CONFIG, opts=None):
    return _native.variant_forward(config, options() if opts is None else opts, EVENTS._abi(),
                                   None, 6, W1, W2, np.empty((6, C), np.float32), None, None, 1)


def bad_tau(value, n=H):
    arr = np.full(n, 5e-3, np.float32)
    arr[1] = value
    return arr


CASES = [
    ("options-not-tuple", lambda: loss_grad(opts=[0] * 12), TypeError, "options"),
    ("options-short", lambda: loss_grad(opts=options()[:11]), TypeError, "options"),
    ("reset-code", lambda: loss_grad(opts=options(reset=4)), ValueError, "options.reset"),
    ("reset-type", lambda: loss_grad(opts=options(reset="delayed")), TypeError, "options.reset"),
    ("surrogate-code", lambda: forward(opts=options(surrogate=-1)), ValueError,
     "options.surrogate"),
    ("readout-code", lambda: forward(config=CONFIG[:7] + (4, 5.0)), ValueError, "readout"),
    ("adapt-tau-negative", lambda: loss_grad(opts=options(adapt_tau=-1e-3)), ValueError,
     "adapt_tau"),
    ("adapt-tau-nan", lambda: forward(opts=options(adapt_tau=float("nan"))), ValueError,
     "adapt_tau"),
    ("adapt-strength-inf", lambda: loss_grad(opts=options(adapt_strength=float("inf"))),
     ValueError, "adapt_strength"),
    ("tau-hidden-size", lambda: loss_grad(opts=options(tau_hidden=np.full(H + 1, 5e-3,
                                                                         np.float32))),
     ValueError, "options.tau_hidden"),
    ("tau-hidden-dtype", lambda: loss_grad(opts=options(tau_hidden=TAU_H.astype(np.float64))),
     TypeError, "options.tau_hidden"),
    ("tau-hidden-zero", lambda: loss_grad(opts=options(tau_hidden=bad_tau(0.0))), ValueError,
     "tau_hidden[1]"),
    ("tau-hidden-nan", lambda: forward(opts=options(tau_hidden=bad_tau(np.nan))), ValueError,
     "tau_hidden[1]"),
    ("tau-output-negative", lambda: loss_grad(opts=options(tau_output=bad_tau(-1.0, C))),
     ValueError, "tau_output[1]"),
    ("sign-w1-size", lambda: loss_grad(opts=options(sign_w1=np.ones(N_IN - 1, np.float32))),
     ValueError, "options.sign_w1"),
    ("sign-w1-value", lambda: loss_grad(opts=options(sign_w1=np.full(N_IN, 0.5, np.float32))),
     ValueError, "sign_w1[0]"),
    ("sign-w2-zero", lambda: forward(opts=options(sign_w2=np.zeros(H, np.float32))), ValueError,
     "sign_w2[0]"),
    ("rate-c-negative", lambda: loss_grad(opts=options(rate_c=-1.0)), ValueError, "rate_c"),
    ("rate-max-zero", lambda: loss_grad(opts=options(rate_max=0.0)), ValueError, "rate_max"),
    ("dropout-one", lambda: loss_grad(opts=options(dropout=1.0)), ValueError, "dropout"),
    ("dropout-negative", lambda: loss_grad(opts=options(dropout=-0.1)), ValueError, "dropout"),
    ("dropout-nan", lambda: forward(opts=options(dropout=float("nan"))), ValueError, "dropout"),
    ("dropout-seed-negative", lambda: loss_grad(opts=options(dropout_seed=-1)), ValueError,
     "dropout_seed"),
    ("grad-tau-hidden-size", lambda: loss_grad(g_tau_h=np.empty(H + 2, np.float32)),
     ValueError, "grad_tau_hidden"),
    ("grad-tau-output-readonly", lambda: loss_grad(g_tau_o=np.frombuffer(bytes(4 * C),
                                                                        np.float32)),
     (TypeError, ValueError), "grad_tau_output"),
    ("w1-nan", lambda: loss_grad(w1=np.where(np.eye(N_IN, H) > 0, np.nan, W1).astype(
        np.float32)), ValueError, "w1"),
    ("api-tau-hidden-nan", lambda: sl.SNN(16, 3, 4, dt=1e-3, tau_hidden=[1e-3, np.nan, 1e-3],
                                          tau_output=5e-3), ValueError, "tau_hidden"),
    ("api-tau-hidden-zero", lambda: sl.SNN(16, 3, 4, dt=1e-3, tau_hidden=[1e-3, 0, 1e-3],
                                           tau_output=5e-3), ValueError, "tau_hidden"),
    ("api-tau-min", lambda: sl.SNN(16, 3, 4, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3,
                                   learn_tau=True, tau_min=0), ValueError, "tau_min"),
    ("api-dale-type", lambda: sl.SNN(16, 3, 4, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3,
                                     dale=0.5), TypeError, "dale"),
    ("api-dale-inhibitory", lambda: sl.Dale(0.5, inhibitory="last"), ValueError, "inhibitory"),
    ("api-rate-max", lambda: sl.RateRegularizer(r_max=0), ValueError, "r_max"),
    ("api-rate-c", lambda: sl.RateRegularizer(c=-1), ValueError, "rate_regularizer.c"),
]


@pytest.mark.parametrize("call, exc, fragment", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_variant_input_names_argument(call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value), f"message {str(info.value)!r} lacks {fragment!r}"


def test_valid_call_succeeds():
    """The baseline of the cases above is a valid call (so each case fails for its change)."""
    assert np.isfinite(loss_grad())
    forward()


def test_learned_tau_made_invalid_in_place_is_caught():
    net = sl.SNN(16, 3, 4, dt=1e-3, tau_hidden=5e-3, tau_output=5e-3, learn_tau=True)
    net.parameters()["tau_hidden"][2] = -1.0
    with pytest.raises(ValueError, match="tau_hidden"):
        net.loss_and_grad(EVENTS, LABELS)
    net.parameters()["tau_hidden"][2] = np.nan
    with pytest.raises(ValueError, match="tau_hidden"):
        net.logits(EVENTS)

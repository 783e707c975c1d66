"""Bad arguments of the research variants, which run on the general network's entry points
(spk_network_*: one feed-forward hidden layer), raise ValueError or TypeError naming the
argument, and never crash (python/tests/test_bad_input.py style)."""

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import _native
from spikeloc.general import GeneralNetwork

STIM = sl.Stimulus(duration=0.02, anf_per_ear=8, num_classes=4, phase_offset="per_sample")
IPD, SPIKES = STIM.generate(6, seed=1)
EVENTS = sl.SpikeEvents.from_dense(SPIKES)
LABELS = STIM.labels(IPD)
N_IN, H, C, T = 16, 5, 4, EVENTS.steps
# every variant option on: adaptive threshold, rate regulariser, dropout, Dale's law
GEN = GeneralNetwork(N_IN, [H], C, [False], dt=1e-3, beta=5.0, adapt_tau=5e-3,
                     adapt_strength=1.0, rate=("upper", 1.0, 100.0), dropout=0.2)
NET = GEN.abi(T, dropout_seed=3)
W1 = np.full((N_IN, H), 0.1, np.float32)
W2 = np.full((H, C), 0.1, np.float32)
TAU_H, TAU_O = np.full(H, 5e-3, np.float32), np.full(C, 5e-3, np.float32)
SIGNS = GEN.layout.pack_signs({"w1": np.ones(N_IN, np.float32), "w2": -np.ones(H, np.float32)})


def params(w1=W1, tau_h=TAU_H, tau_o=TAU_O):
    return GEN.layout.pack({"w1": w1, "w2": W2, "tau_hidden": tau_h, "tau_output": tau_o})


def loss_grad(net=NET, p=None, signs=SIGNS, grads=None):
    p = params() if p is None else p
    return _native.network_loss_grad(net, EVENTS._abi(), None, 6, LABELS, p, signs,
                                     np.empty_like(p) if grads is None else grads, None, 1)


def forward(net=NET, p=None, signs=SIGNS):
    return _native.network_forward(net, EVENTS._abi(), None, 6, params() if p is None else p,
                                   signs, np.empty((6, C), np.float32), None, None, 1)


def bad_tau(value, n=H):
    arr = np.full(n, 5e-3, np.float32)
    arr[1] = value
    return arr


def bad_signs(value, row):
    arr = SIGNS.copy()
    arr[row] = value
    return arr


CASES = [
    ("net-not-tuple", lambda: loss_grad(net=[0] * len(NET)), TypeError, "net"),
    ("net-short", lambda: loss_grad(net=tuple(NET)[:-1]), TypeError, "net"),
    ("reset-code", lambda: loss_grad(net=NET._replace(reset=4)), ValueError, "net.reset"),
    ("reset-type", lambda: loss_grad(net=NET._replace(reset="delayed")), TypeError, "net.reset"),
    ("surrogate-code", lambda: forward(net=NET._replace(surrogate=-1)), ValueError,
     "net.surrogate"),
    ("readout-code", lambda: forward(net=NET._replace(readout=5)), ValueError, "net.readout"),
    ("adapt-tau-negative", lambda: loss_grad(net=NET._replace(adapt_tau=-1e-3)), ValueError,
     "adapt_tau"),
    ("adapt-tau-nan", lambda: forward(net=NET._replace(adapt_tau=float("nan"))), ValueError,
     "adapt_tau"),
    ("adapt-strength-inf", lambda: loss_grad(net=NET._replace(adapt_strength=float("inf"))),
     ValueError, "adapt_strength"),
    ("params-size", lambda: loss_grad(p=params()[:-1]), ValueError, "params"),
    ("params-dtype", lambda: loss_grad(p=params().astype(np.float64)), TypeError, "params"),
    ("tau-hidden-zero", lambda: loss_grad(p=params(tau_h=bad_tau(0.0))), ValueError,
     "tau_hidden1[1]"),
    ("tau-hidden-nan", lambda: forward(p=params(tau_h=bad_tau(np.nan))), ValueError,
     "tau_hidden1[1]"),
    ("tau-output-negative", lambda: loss_grad(p=params(tau_o=bad_tau(-1.0, C))),
     ValueError, "tau_output[1]"),
    ("signs-size", lambda: loss_grad(signs=SIGNS[:-1]), ValueError, "signs"),
    ("sign-w1-value", lambda: loss_grad(signs=bad_signs(0.5, 0)), ValueError, "sign_w1[0]"),
    ("sign-w2-value", lambda: forward(signs=bad_signs(2.0, N_IN)), ValueError, "sign_w2[0]"),
    ("rate-c-negative", lambda: loss_grad(net=NET._replace(rate_c=-1.0)), ValueError, "rate_c"),
    ("rate-ref-zero", lambda: loss_grad(net=NET._replace(rate_ref=0.0)), ValueError, "rate_ref"),
    ("dropout-one", lambda: loss_grad(net=NET._replace(dropout=1.0)), ValueError, "dropout"),
    ("dropout-negative", lambda: loss_grad(net=NET._replace(dropout=-0.1)), ValueError,
     "dropout"),
    ("dropout-nan", lambda: forward(net=NET._replace(dropout=float("nan"))), ValueError,
     "dropout"),
    ("dropout-seed-negative", lambda: loss_grad(net=NET._replace(dropout_seed=-1)), ValueError,
     "dropout_seed"),
    ("grads-size", lambda: loss_grad(grads=np.empty(GEN.layout.size + 2, np.float32)),
     ValueError, "grads"),
    ("grads-readonly", lambda: loss_grad(grads=np.frombuffer(bytes(4 * GEN.layout.size),
                                                             np.float32)),
     (TypeError, ValueError), "grads"),
    ("w1-nan", lambda: loss_grad(p=params(w1=np.where(np.eye(N_IN, H) > 0, np.nan, W1).astype(
        np.float32))), ValueError, "w1"),
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

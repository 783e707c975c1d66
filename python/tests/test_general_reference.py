"""The NumPy reference of the general network (python/spikeloc/reference/general.py, delays.py;
MODEL.md section 7): exact gradients (finite differences with a smooth spike function, the
delay gradient away from integer delays), the delayed current against a direct sum, e-prop's
BPTT as a special case, and the variants' two-layer network as another.
"""

import numpy as np
import pytest

from spikeloc.reference import delays as RD
from spikeloc.reference import eprop as E
from spikeloc.reference.general import Spec, general_forward, general_loss_and_grad

from test_parity import relative_error


def _problem(seed, sizes, recurrent, delays=None, max_delay=3, C=3, B=2, T=14, n_in=4, dale=False,
             bias=True):
    rng = np.random.default_rng(seed)
    L = len(sizes)
    dims = [n_in] + list(sizes) + [C]
    x = (rng.random((B, T, n_in)) < 0.4).astype(float)
    params = {
        "w": [rng.normal(0.4 if l == 0 else 0.0, 0.6, (dims[l], dims[l + 1])) for l in range(L + 1)],
        "w_rec": [rng.normal(0, 0.4, (n, n)) if r else None for n, r in zip(sizes, recurrent)],
        "tau": [rng.uniform(3e-3, 9e-3, n) for n in list(sizes) + [C]],
        "b": rng.normal(0, 0.2, C) if bias else None,
    }
    if delays is not None:
        shape = (n_in,) if delays == "input" else (n_in, dims[1])
        d = rng.uniform(0, max_delay, shape)
        # away from integers, where the delay gradient is one-sided
        params["delays"] = np.where(np.abs(d - np.round(d)) < 0.1, d + 0.25, d)
    if dale:
        params["sign"] = [rng.choice([-1.0, 0.0, 1.0], n) for n in dims[:-1]]
        params["sign_rec"] = [rng.choice([-1.0, 1.0], n) for n in sizes]
    return x, rng.integers(0, C, B), params


def _finite_differences(f, params, key, index, h):
    arr = params[key] if index is None else params[key][index]
    numeric = np.zeros_like(arr)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + h
        up = f(params)[0]
        arr[i] = old - h
        down = f(params)[0]
        arr[i] = old
        numeric[i] = (up - down) / (2 * h)
    return numeric


FD_CASES = [
    dict(sizes=[5], recurrent=[True], delays="input", readout="mean", reset="delayed"),
    dict(sizes=[5], recurrent=[True], delays="synapse", readout="max", reset="same_step"),
    dict(sizes=[4, 3], recurrent=[True, False], delays="synapse", readout="window", window=5,
         loss="mse", reset="subtractive", dale=True),
    dict(sizes=[4, 3], recurrent=[False, True], delays="input", readout="spike_count",
         reset="subtractive", bias=False),
    dict(sizes=[], recurrent=[], delays="input", readout="sum", reset="delayed"),
    dict(sizes=[], recurrent=[], delays="synapse", readout="max", reset="delayed"),
    dict(sizes=[3, 3, 3], recurrent=[True, True, True], readout="window", window=5,
         reset="same_step", timing="eprop"),
    dict(sizes=[4, 3], recurrent=[True, True], delays="synapse", readout="spike_count",
         reset="zero", dale=True),
]


@pytest.mark.parametrize("case", range(len(FD_CASES)))
def test_gradients_match_finite_differences(case):
    """With the smooth spike function sigmoid(beta x), whose derivative is the sigmoid surrogate,
    every gradient (weights, recurrent weights, bias, delays, time constants) is exact."""
    c = dict(FD_CASES[case])
    x, labels, params = _problem(case, c.pop("sizes"), c["recurrent"], c.pop("delays", None),
                                 dale=c.pop("dale", False), bias=c.pop("bias", True))
    spec = Spec(dt=1e-3, recurrent=tuple(c.pop("recurrent")), beta=2.0, adapt_tau=5e-3,
                adapt_strength=1.0, rate=("upper", 0.5, 40.0),
                delays=None if "delays" not in params else ("input" if np.ndim(params["delays"]) == 1
                                                            else "synapse"), **c)

    def f(p):
        return general_loss_and_grad(x, labels, p, spec, spike_fn="sigmoid")

    _, grads, _ = f(params)
    checked = []
    for key in ("w", "w_rec", "tau"):
        for l, arr in enumerate(params[key]):
            if arr is None:
                continue
            h = 1e-9 if key == "tau" else 1e-6
            numeric = _finite_differences(f, params, key, l, h)
            assert np.max(np.abs(numeric)) > 0, (key, l)
            assert relative_error(grads[key][l], numeric) < 1e-5, (case, key, l)
            checked.append(key)
    for key in ("b", "delays"):
        if params.get(key) is not None:
            numeric = _finite_differences(f, params, key, None, 1e-6)
            assert np.max(np.abs(numeric)) > 0, key
            assert relative_error(grads[key], numeric) < 1e-5, (case, key)
            checked.append(key)
    assert "w" in checked and "tau" in checked


def test_delayed_current_is_the_interpolated_sum():
    """I_nj = sum_i W_ij [(1 - f_ij) x_{n-k_ij, i} + f_ij x_{n-k_ij-1, i}], term by term."""
    rng = np.random.default_rng(1)
    x = (rng.random((2, 12, 5)) < 0.5).astype(float)
    w = rng.normal(size=(5, 3))
    for d in (rng.uniform(0, 4, 5), rng.uniform(0, 4, (5, 3)), np.array([0.0, 1.0, 2.0, 3.0, 4.0])):
        got = RD.delayed_current(x, w, d)
        want = np.zeros((2, 12, 3))
        dd = np.broadcast_to(d[:, None], w.shape) if d.ndim == 1 else d
        for b in range(2):
            for n in range(12):
                for i in range(5):
                    for j in range(3):
                        k, f = int(np.floor(dd[i, j])), dd[i, j] - np.floor(dd[i, j])
                        a = x[b, n - k, i] if n - k >= 0 else 0.0
                        c = x[b, n - k - 1, i] if n - k - 1 >= 0 else 0.0
                        want[b, n, j] += w[i, j] * ((1 - f) * a + f * c)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_integer_delays_shift_the_inputs_and_take_the_right_derivative():
    rng = np.random.default_rng(2)
    x = (rng.random((2, 10, 3)) < 0.5).astype(float)
    w = rng.normal(size=(3, 4))
    d = np.array([0.0, 2.0, 1.0])
    got = RD.delayed_current(x, w, d)
    np.testing.assert_allclose(got, sum(RD.shift(x[..., [i]], int(d[i])) @ w[[i]]
                                        for i in range(3)), atol=1e-12)
    # at an integer d the gradient is the derivative from the right: compare with d + h
    gI = rng.normal(size=(2, 10, 4))
    _, gd = RD.delay_gradients(x, w, d, gI)
    h = 1e-6
    for i in range(3):
        up = d.copy()
        up[i] += h
        numeric = ((RD.delayed_current(x, w, up) - got) * gI).sum() / h
        assert gd[i] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("reset_in_gradient", [True, False])
@pytest.mark.parametrize("reg_c", [0.0, 0.01])
def test_eprop_bptt_is_the_general_network(loss, reset_in_gradient, reg_c):
    """e-prop's network (MODEL.md section 5) is the general network with a subtractive reset,
    the piecewise-linear surrogate of height gamma, weights divided by v_th (threshold 1), the
    e-prop timing and the window head with a bias; its BPTT gradients are equal."""
    rng = np.random.default_rng(3)
    B, T, N_in, N_h, C = 3, 20, 6, 5, 3
    x = (rng.random((B, T, N_in)) < 0.3).astype(float)
    labels = rng.integers(0, C, B)
    w_in, w_rec = rng.normal(0.3, 0.5, (N_in, N_h)), rng.normal(0, 0.4, (N_h, N_h))
    w_out, b = rng.normal(0, 0.5, (N_h, C)), rng.normal(0, 0.2, C)
    v_th, gamma, tau_m, tau_out, window = 0.7, 0.3, 20e-3, 15e-3, 6
    want_loss, want = E.bptt_loss_and_grad(
        x, labels, w_in, w_rec, w_out, b, dt=1e-3, tau_m=tau_m, tau_out=tau_out, v_th=v_th,
        gamma=gamma, window=window, loss=loss, reg_c=reg_c, f_target=10.0,
        reset_in_gradient=reset_in_gradient)
    spec = Spec(dt=1e-3, recurrent=(True,), readout="window", window=window, loss=loss,
                timing="eprop", reset="subtractive", surrogate="piecewise_linear", beta=gamma,
                detach_reset=not reset_in_gradient,
                rate=("target", reg_c, 10.0) if reg_c else None)
    params = {"w": [w_in / v_th, w_out], "w_rec": [w_rec / v_th], "b": b,
              "tau": [np.full(N_h, tau_m), np.full(C, tau_out)]}
    got_loss, got, fw = general_loss_and_grad(x, labels, params, spec)
    assert fw["layers"][0]["S"].sum() > 20  # the recurrent units spike
    assert got_loss == pytest.approx(want_loss, rel=1e-12)
    np.testing.assert_allclose(got["w"][0] / v_th, want["w_in"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["w_rec"][0] / v_th, want["w_rec"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["w"][1], want["w_out"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["b"], want["b"], rtol=1e-9, atol=1e-12)
    # and the forward pass: the recorded spikes are e-prop's z, the readout its y
    ref = E.eprop_forward(x, w_in, w_rec, w_out, b, dt=1e-3, tau_m=tau_m, tau_out=tau_out,
                          v_th=v_th, gamma=gamma, window=window)
    np.testing.assert_array_equal(fw["hidden_spikes"][0], ref["spikes"])
    np.testing.assert_allclose(fw["output_membrane"], ref["readout"], rtol=1e-12, atol=1e-12)


def test_the_reset_path_matters_in_the_eprop_check():
    """Detaching the reset changes the recurrent gradient (the check above is not vacuous)."""
    rng = np.random.default_rng(4)
    x = (rng.random((2, 15, 4)) < 0.4).astype(float)
    params = {"w": [rng.normal(0.5, 0.5, (4, 5)), rng.normal(0, 0.5, (5, 3))],
              "w_rec": [rng.normal(0, 0.4, (5, 5))], "b": np.zeros(3),
              "tau": [np.full(5, 20e-3), np.full(3, 20e-3)]}
    kw = dict(dt=1e-3, recurrent=(True,), readout="window", window=5, timing="eprop",
              reset="subtractive", surrogate="piecewise_linear", beta=0.3)
    _, kept, _ = general_loss_and_grad(x, [0, 1], params, Spec(**kw))
    _, detached, _ = general_loss_and_grad(x, [0, 1], params, Spec(detach_reset=True, **kw))
    assert relative_error(kept["w_rec"][0], detached["w_rec"][0]) > 1e-3


def test_zero_recurrent_weights_and_no_delays_give_the_feed_forward_network():
    rng = np.random.default_rng(5)
    x, labels, params = _problem(5, [4], [True], bias=False)
    params["w_rec"] = [np.zeros((4, 4))]
    plain = dict(params, w_rec=[None])
    a = general_loss_and_grad(x, labels, params, Spec(dt=1e-3, recurrent=(True,)))
    b = general_loss_and_grad(x, labels, plain, Spec(dt=1e-3, recurrent=(False,)))
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    np.testing.assert_allclose(a[1]["w"][0], b[1]["w"][0], rtol=1e-12, atol=1e-14)
    assert np.abs(a[1]["w_rec"][0]).max() > 0   # spikes drive the recurrent gradient
    zero = dict(params, delays=np.zeros(4))
    c = general_loss_and_grad(x, labels, dict(zero, w_rec=[None]),
                              Spec(dt=1e-3, recurrent=(False,), delays="input"))
    assert c[0] == pytest.approx(b[0], rel=1e-12)
    np.testing.assert_allclose(c[1]["w"][0], b[1]["w"][0], rtol=1e-12, atol=1e-14)


def test_bad_specifications_are_refused():
    x, labels, params = _problem(6, [3], [False], bias=False)
    with pytest.raises(ValueError, match="spike-count"):
        general_forward(x, params, Spec(dt=1e-3, recurrent=(False,), readout="spike_count",
                                        timing="eprop"))
    with pytest.raises(ValueError, match="hidden layer"):
        general_forward(x, {"w": [params["w"][0] @ params["w"][1]], "tau": [np.ones(3)]},
                        Spec(dt=1e-3, timing="eprop"))
    with pytest.raises(ValueError, match="recurrent flag"):
        general_forward(x, params, Spec(dt=1e-3, recurrent=()))

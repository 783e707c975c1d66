"""The spiking network and the membrane-only network, forward and backward (MODEL.md section 2).

Everything is float64 and vectorised over the batch and the units; loops run over time only.
Shapes: x (B, T, N_in), W1 (N_in, N_h), W2 (N_h, C), labels (B,). Times in seconds.

Hidden layer (leaky integrate-and-fire, "delayed reset" of the seeds), a_h = exp(-dt/tau_h),
I = x W1, v_0 = 0, s_0 = 0, for n = 0 .. T-2::

    v_{n+1} = (a_h v_n + I_n) (1 - s_n)
    s_{n+1} = H(v_n - 1),           H(x) = 1 if x > 0 else 0

Readout (leaky, non-spiking), a_o = exp(-dt/tau_o), J = S W2, u_0 = 0, for n = 0 .. T-2::

    u_{n+1} = a_o u_n + J_n

Logits m_b aggregate u_0 .. u_{T-1}: "mean" (default), "sum" (0.01 times the sum) or "max".
Loss: mean over the batch of -log softmax(m_b)[y_b].

Backward: exact reverse mode, except that dH/dx is replaced by the sigmoid surrogate
beta sigma(beta x) (1 - sigma(beta x)); the gradient also flows through the reset factor
(1 - s_n). This is what PyTorch autograd computes for the seed code (``snn`` with
``SurrGradSpike``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "READOUTS",
    "sigmoid",
    "surrogate",
    "log_softmax",
    "cross_entropy",
    "aggregate",
    "aggregate_backward",
    "leaky_readout",
    "leaky_readout_backward",
    "snn_forward",
    "snn_loss_and_grad",
    "membrane_only_forward",
    "membrane_only_loss_and_grad",
    "init_weights",
]

#: Aggregations of the readout membrane over time.
READOUTS = ("mean", "sum", "max")
SUM_SCALE = 0.01  # the tutorial's scale of the "sum" readout


# ---------------------------------------------------------------------------- elementwise

def sigmoid(x) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x)), evaluated without overflow for any |x|."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))                 # in (0, 1], never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def surrogate(x, beta: float = 5.0) -> np.ndarray:
    """Surrogate derivative of H: beta sigma(beta x) (1 - sigma(beta x)).

    Written as beta e / (1 + e)^2 with e = exp(-beta |x|) (the function is even), so large
    |x| gives 0 (or a denormal) instead of overflow or 0 * inf.
    """
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-beta * np.abs(x))
    return beta * e / (1.0 + e) ** 2


def _spike(x, spike_fn: str, beta: float) -> np.ndarray:
    """Forward spike nonlinearity: H(x) = (x > 0) ("heaviside", the model) or
    sigmoid(beta x) ("sigmoid", a smooth test-only variant whose exact derivative is the
    surrogate, so the backward pass can be checked against finite differences)."""
    if spike_fn == "heaviside":
        return (np.asarray(x) > 0).astype(np.float64)
    if spike_fn == "sigmoid":
        return sigmoid(beta * np.asarray(x, dtype=np.float64))
    raise ValueError(f"spike_fn must be 'heaviside' or 'sigmoid', got {spike_fn!r}")


# ---------------------------------------------------------------------------- loss

def log_softmax(m) -> np.ndarray:
    """Stable log softmax over the last axis: m - max - log(sum exp(m - max))."""
    m = np.asarray(m, dtype=np.float64)
    z = m - m.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def cross_entropy(m, labels):
    """Loss and its gradient with respect to the logits.

    m (B, C), labels (B,) int. Returns ``(loss, dm)``:
      loss = mean_b -log softmax(m_b)[y_b]
      dm   = (softmax(m) - onehot(y)) / B, shape (B, C)
    """
    labels = np.asarray(labels, dtype=np.int64)
    lp = log_softmax(m)
    B = lp.shape[0]
    loss = -lp[np.arange(B), labels].mean()
    dm = np.exp(lp)
    dm[np.arange(B), labels] -= 1.0
    return float(loss), dm / B


# ---------------------------------------------------------------------------- readout

def aggregate(u, readout: str = "mean") -> np.ndarray:
    """Logits m (B, C) from the recorded membranes u (B, T, C):
    "mean": mean_n u_n;  "sum": 0.01 sum_n u_n;  "max": max_n u_n."""
    if readout == "mean":
        return u.mean(axis=1)
    if readout == "sum":
        return SUM_SCALE * u.sum(axis=1)
    if readout == "max":
        return u.max(axis=1)
    raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")


def aggregate_backward(u, dm, readout: str = "mean") -> np.ndarray:
    """du (B, T, C) = dL/du_n given dm = dL/dm (B, C). For "max" the whole gradient goes to the
    first time index attaining the maximum (np.argmax; as in torch.max over a dimension)."""
    B, T, C = u.shape
    if readout == "mean":
        return np.broadcast_to(dm[:, None, :] / T, u.shape).copy()
    if readout == "sum":
        return np.broadcast_to(SUM_SCALE * dm[:, None, :], u.shape).copy()
    if readout == "max":
        du = np.zeros_like(u)
        first = np.argmax(u, axis=1)                      # (B, C), first maximum
        bi, ci = np.meshgrid(np.arange(B), np.arange(C), indexing="ij")
        du[bi, first, ci] = dm
        return du
    raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")


def leaky_readout(J, a: float) -> np.ndarray:
    """u (B, T, C) with u_0 = 0 and u_{n+1} = a u_n + J_n for n = 0 .. T-2 (J_{T-1} unused)."""
    B, T, C = J.shape
    u = np.zeros((B, T, C))
    for n in range(T - 1):
        u[:, n + 1] = a * u[:, n] + J[:, n]
    return u


def leaky_readout_backward(du, a: float) -> np.ndarray:
    """dJ (B, T, C) from du = dL/du_n (direct dependence only).

    Adjoint of u: gu_{T-1} = du_{T-1}, gu_n = du_n + a gu_{n+1} (u_n feeds u_{n+1} with factor
    a). J_n enters only u_{n+1}: dJ_n = gu_{n+1} for n <= T-2, and dJ_{T-1} = 0.
    """
    B, T, C = du.shape
    dJ = np.zeros_like(du)
    gu = du[:, T - 1].copy()                  # gu_{T-1}
    for n in range(T - 2, -1, -1):
        dJ[:, n] = gu                         # dJ_n = gu_{n+1}
        gu = du[:, n] + a * gu                # gu_n
    return dJ


# ---------------------------------------------------------------------------- SNN

def snn_forward(x, w1, w2, dt: float, tau_h: float, tau_o: float, readout: str = "mean",
                spike_fn: str = "heaviside", beta: float = 5.0) -> dict:
    """Forward pass of the two-layer network.

    x  (B, T, N_in) input spikes (any numeric dtype; used as float64)
    w1 (N_in, N_h), w2 (N_h, C) weights; dt, tau_h, tau_o [s]
    spike_fn, beta: "heaviside" (the model) or "sigmoid" (smooth, for gradient tests only)

    Returns a dict of float64 arrays:
      hidden_spikes    S (B, T, N_h) = s_0 .. s_{T-1}, with s_0 = 0
      hidden_v         V (B, T, N_h) = v_0 .. v_{T-1}, with v_0 = 0 (post-reset voltages)
      hidden_pre       P (B, T, N_h): P_n = a_h v_n + I_n (pre-reset); P_{T-1} unused
      output_membrane  U (B, T, C) = u_0 .. u_{T-1}, with u_0 = 0
      logits           m (B, C)
    """
    x = np.asarray(x, dtype=np.float64)
    w1 = np.asarray(w1, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    B, T, _ = x.shape
    N_h = w1.shape[1]
    a_h = np.exp(-dt / tau_h)
    a_o = np.exp(-dt / tau_o)
    I = x @ w1                                            # (B, T, N_h), I_n = x_n W1
    S = np.zeros((B, T, N_h))
    V = np.zeros((B, T, N_h))
    P = np.zeros((B, T, N_h))
    for n in range(T - 1):
        P[:, n] = a_h * V[:, n] + I[:, n]                # pre-reset voltage
        V[:, n + 1] = P[:, n] * (1.0 - S[:, n])          # v_{n+1} = (a v_n + I_n)(1 - s_n)
        S[:, n + 1] = _spike(V[:, n] - 1.0, spike_fn, beta)  # s_{n+1} = H(v_n - 1)
    P[:, T - 1] = a_h * V[:, T - 1] + I[:, T - 1]
    U = leaky_readout(S @ w2, a_o)                        # J = S W2
    return {
        "hidden_spikes": S,
        "hidden_v": V,
        "hidden_pre": P,
        "output_membrane": U,
        "logits": aggregate(U, readout),
    }


def snn_loss_and_grad(x, labels, w1, w2, dt: float, tau_h: float, tau_o: float,
                      readout: str = "mean", beta: float = 5.0,
                      spike_fn: str = "heaviside"):
    """Loss and surrogate gradient of the two-layer network (back-propagation through time).

    Returns ``(loss, grad_w1, grad_w2, extras)``: loss (float), grad_w1 (N_in, N_h), grad_w2
    (N_h, C) float64, extras = the dict of ``snn_forward`` plus "dlogits" (B, C).

    Adjoint equations (g* = dL/d*, total derivatives; P_n = a_h v_n + I_n; surr = surrogate):

      readout:   du_n from the aggregation; gu_{T-1} = du_{T-1}; gu_n = du_n + a_o gu_{n+1}
                 dJ_n = gu_{n+1} (n <= T-2);  dW2 = sum_{n <= T-2} s_n^T dJ_n
                 ds_readout_n = dJ_n W2^T (n <= T-2), 0 for n = T-1
      hidden:    v_{T-1} and s_{T-1} feed nothing in the hidden recursion: gv_{T-1} = 0.
                 s_n (n <= T-2) feeds J_n and the reset factor of v_{n+1} = P_n (1 - s_n):
                     gs_n = ds_readout_n - gv_{n+1} P_n
                 v_n (n <= T-2) feeds v_{n+1} (factor a_h (1 - s_n)) and s_{n+1} = H(v_n - 1):
                     gv_n = gv_{n+1} a_h (1 - s_n) + gs_{n+1} surr(v_n - 1)
                 (gs_{T-1} = 0 because s_{T-1} feeds nothing; the readout sum starts at J_0.)
                 I_n enters v_{n+1} with factor (1 - s_n):  gI_n = gv_{n+1} (1 - s_n)
                 dW1 = sum_{n <= T-2} x_n^T gI_n
    """
    x = np.asarray(x, dtype=np.float64)
    w2 = np.asarray(w2, dtype=np.float64)
    fw = snn_forward(x, w1, w2, dt, tau_h, tau_o, readout, spike_fn, beta)
    S, V, P, U = fw["hidden_spikes"], fw["hidden_v"], fw["hidden_pre"], fw["output_membrane"]
    B, T, N_h = S.shape
    a_h = np.exp(-dt / tau_h)
    a_o = np.exp(-dt / tau_o)

    loss, dm = cross_entropy(fw["logits"], labels)
    du = aggregate_backward(U, dm, readout)               # dL/du_n (direct)
    dJ = leaky_readout_backward(du, a_o)                  # dJ_n = gu_{n+1}; dJ_{T-1} = 0
    grad_w2 = np.einsum("btk,btc->kc", S, dJ)             # sum_n s_n^T dJ_n
    ds_readout = dJ @ w2.T                                # (B, T, N_h); zero at n = T-1

    gI = np.zeros((B, T, N_h))
    gv_next = np.zeros((B, N_h))                          # gv_{n+1}, starting at gv_{T-1} = 0
    gs_next = np.zeros((B, N_h))                          # gs_{n+1}, starting at gs_{T-1} = 0
    for n in range(T - 2, -1, -1):
        # gv_n = gv_{n+1} a_h (1 - s_n) + gs_{n+1} surr(v_n - 1)
        gv_n = gv_next * a_h * (1.0 - S[:, n]) + gs_next * surrogate(V[:, n] - 1.0, beta)
        # gI_n = gv_{n+1} (1 - s_n)
        gI[:, n] = gv_next * (1.0 - S[:, n])
        # gs_n = ds_readout_n - gv_{n+1} P_n  (through J_n and through the reset factor)
        gs_n = ds_readout[:, n] - gv_next * P[:, n]
        gv_next, gs_next = gv_n, gs_n
    grad_w1 = np.einsum("bti,bth->ih", x, gI)             # sum_n x_n^T gI_n

    extras = dict(fw)
    extras["dlogits"] = dm
    return loss, grad_w1, grad_w2, extras


# ---------------------------------------------------------------------------- membrane only

def membrane_only_forward(x, w, dt: float, tau: float, readout: str = "sum") -> dict:
    """The tutorial's membrane-only network: u_{n+1} = a u_n + J_n with J = x W, a = exp(-dt/tau).

    x (B, T, N_in), w (N_in, C). Returns {"output_membrane": (B, T, C), "logits": (B, C)}.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    U = leaky_readout(x @ w, np.exp(-dt / tau))
    return {"output_membrane": U, "logits": aggregate(U, readout)}


def membrane_only_loss_and_grad(x, labels, w, dt: float, tau: float, readout: str = "sum"):
    """Loss and exact gradient of the membrane-only network.

    Returns ``(loss, grad_w, extras)``; grad_w (N_in, C) = sum_{n <= T-2} x_n^T dJ_n with
    dJ_n = gu_{n+1} as in ``leaky_readout_backward``. extras: forward dict plus "dlogits".
    """
    x = np.asarray(x, dtype=np.float64)
    fw = membrane_only_forward(x, w, dt, tau, readout)
    loss, dm = cross_entropy(fw["logits"], labels)
    du = aggregate_backward(fw["output_membrane"], dm, readout)
    dJ = leaky_readout_backward(du, np.exp(-dt / tau))
    grad_w = np.einsum("bti,btc->ic", x, dJ)
    extras = dict(fw)
    extras["dlogits"] = dm
    return loss, grad_w, extras


def init_weights(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """Weights (n_in, n_out) ~ U(-1/sqrt(n_in), 1/sqrt(n_in)), float64 (as nn.init.uniform_
    with bound 1/sqrt(fan_in) in the seeds)."""
    bound = 1.0 / np.sqrt(n_in)
    return rng.uniform(-bound, bound, size=(n_in, n_out))

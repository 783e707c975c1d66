"""The e-prop network (MODEL.md section 5): a recurrent LIF layer with a leaky readout, trained
online with eligibility propagation, and the same network's gradient by back-propagation
through time (BPTT) with the same pseudo-derivative, for the tests.

Float64, vectorised over the batch; loops run over time only. Shapes and conventions (the
layout of ``spikeloc.EPropNetwork``; weights are stored [presynaptic, postsynaptic], so the
MODEL's ``Win_ji`` is ``w_in[i, j]``):

    x (B, T, N_in) input spikes, labels (B,) int
    w_in (N_in, N_h), w_rec (N_h, N_h) or None (no recurrent layer), w_out (N_h, C), b (C,)
    feedback (N_h, C): the learning-signal weights B; "symmetric" e-prop uses feedback = w_out

Steps n = 0 .. T-1 (MODEL's t = n + 1), all state 0 before step 0, alpha = exp(-dt/tau_m),
kappa = exp(-dt/tau_out)::

    v_n  = alpha v_{n-1} + x_n w_in + z_{n-1} w_rec - v_th z_{n-1}     (reset by subtraction)
    z_n  = H(v_n - v_th)                                                (H(0) = 0)
    psi_n = (gamma / v_th) max(0, 1 - |v_n - v_th| / v_th)               (pseudo-derivative)
    y_n  = kappa y_{n-1} + z_n w_out + b                                 (readout)

Loss of a sample: the mean over the learning window W (the last ``window`` steps) of the per-
step loss, cross-entropy ``-log softmax(y_n)[label]`` or squared error
``0.5 sum_k (y_nk - onehot_k)^2``, plus the firing-rate regulariser
``0.5 reg_c mean_j (f_j - f_target)^2`` with ``f_j = sum_n z_nj / (T dt)`` [Hz]. The batch loss
is the mean over samples, and every gradient is the gradient of that mean.

Logits (class scores, for prediction): the readout averaged over the window, mean_{n in W} y_n.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LOSSES", "pseudo_derivative", "eprop_forward", "eprop_loss_and_grad",
           "bptt_loss_and_grad"]

LOSSES = ("cross_entropy", "mse")


def pseudo_derivative(v, v_th: float, gamma: float) -> np.ndarray:
    """psi = (gamma / v_th) max(0, 1 - |v - v_th| / v_th) (piecewise linear, MODEL.md sec. 5)."""
    return (gamma / v_th) * np.maximum(0.0, 1.0 - np.abs(v - v_th) / v_th)


def _step_loss(y, onehot, loss: str):
    """Per-step loss (B,) and its gradient d/dy (B, C), the error signal err."""
    if loss == "cross_entropy":
        z = y - y.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return -(logp * onehot).sum(axis=-1), np.exp(logp) - onehot      # err = pi - pi*
    if loss == "mse":
        d = y - onehot
        return 0.5 * (d * d).sum(axis=-1), d                              # err = y - y*
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def eprop_forward(x, w_in, w_rec, w_out, b, *, dt, tau_m, tau_out, v_th, gamma, window):
    """Forward pass with recordings. Returns a dict of float64 arrays:
    voltage v (B, T, N_h), spikes z (B, T, N_h), psi (B, T, N_h), readout y (B, T, C),
    logits (B, C) = mean of y over the window."""
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    w_in = np.asarray(w_in, dtype=np.float64)
    N_h = w_in.shape[1]
    w_out = np.asarray(w_out, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    C = w_out.shape[1]
    alpha, kappa = np.exp(-dt / tau_m), np.exp(-dt / tau_out)
    V = np.zeros((B, T, N_h))
    Z = np.zeros((B, T, N_h))
    Y = np.zeros((B, T, C))
    v = np.zeros((B, N_h))
    z = np.zeros((B, N_h))
    y = np.zeros((B, C))
    I = (x.reshape(B * T, -1) @ w_in).reshape(B, T, N_h)   # x_n w_in for every step at once
    w_rec = np.asarray(w_rec, dtype=np.float64) if w_rec is not None else None
    for n in range(T):
        rec = z @ w_rec if w_rec is not None else 0.0
        v = alpha * v + I[:, n] + rec - v_th * z              # uses z_{n-1}
        z = (v > v_th).astype(np.float64)
        V[:, n], Z[:, n] = v, z
    J = (Z.reshape(B * T, N_h) @ w_out).reshape(B, T, C) + b  # z_n w_out + b, every step
    for n in range(T):
        y = kappa * y + J[:, n]
        Y[:, n] = y
    return {"voltage": V, "spikes": Z, "psi": pseudo_derivative(V, v_th, gamma),
            "readout": Y, "logits": Y[:, T - window:].mean(axis=1)}


def _check(loss, window, T):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not 1 <= window <= T:
        raise ValueError(f"window must be in [1, {T}], got {window}")


def eprop_loss_and_grad(x, labels, w_in, w_rec, w_out, b, feedback, *, dt, tau_m, tau_out,
                        v_th, gamma, window, loss="cross_entropy", reg_c=0.0, f_target=10.0):
    """Loss and e-prop gradients, computed online (forward in time, nothing kept over time).

    Returns ``(loss, grads, extras)`` with grads = {"w_in", "w_rec" (if w_rec is not None),
    "w_out", "b"} (float64) and extras = {"logits", "learning_signal" (B, T, N_h)}.

    Per step n (traces start at 0)::

        xbar_n = alpha xbar_{n-1} + x_n               zbar_n = alpha zbar_{n-1} + z_n
        e_in[i, j]  = psi_nj xbar_ni                  e_rec[i, j] = psi_nj zbar_{n-1, i}
        ebar = kappa ebar + e                         (eligibility filtered like the readout)
        zout_n = kappa zout_{n-1} + z_n               bbar_n = kappa bbar_{n-1} + 1
      in the window (err from _step_loss, divided by |W| and by B):
        L_nj = sum_k feedback[j, k] err_nk            (learning signal)
        dW_in += L_n * ebar_in, dW_rec += L_n * ebar_rec   (per postsynaptic column j)
        dW_out[j, k] += zout_nj err_nk,  db += bbar_n err_n
      regulariser, after the sample (f_j known): with E = sum_n e_n (unfiltered),
        dW += reg_c (f_j - f_target) / (N_h T dt) * E     (column j)
    """
    x = np.asarray(x, dtype=np.float64)
    B, T, N_in = x.shape
    _check(loss, window, T)
    w_in = np.asarray(w_in, dtype=np.float64)
    N_h = w_in.shape[1]
    w_out = np.asarray(w_out, dtype=np.float64)
    C = w_out.shape[1]
    b = np.asarray(b, dtype=np.float64)
    fb = np.asarray(feedback, dtype=np.float64)
    recurrent = w_rec is not None
    w_rec = np.asarray(w_rec, dtype=np.float64) if recurrent else np.zeros((N_h, N_h))
    labels = np.asarray(labels, dtype=np.int64)
    onehot = np.eye(C)[labels]
    alpha, kappa = np.exp(-dt / tau_m), np.exp(-dt / tau_out)
    scale = 1.0 / (window * B)

    v = np.zeros((B, N_h)); z = np.zeros((B, N_h)); y = np.zeros((B, C))
    xbar = np.zeros((B, N_in)); zbar = np.zeros((B, N_h))
    ebar_in = np.zeros((B, N_in, N_h)); ebar_rec = np.zeros((B, N_h, N_h))
    E_in = np.zeros((B, N_in, N_h)); E_rec = np.zeros((B, N_h, N_h))
    zout = np.zeros((B, N_h)); bbar = 0.0
    g_in = np.zeros((N_in, N_h)); g_rec = np.zeros((N_h, N_h))
    g_out = np.zeros((N_h, C)); g_b = np.zeros(C)
    count = np.zeros((B, N_h))
    total = 0.0
    logits = np.zeros((B, C))
    Ls = np.zeros((B, T, N_h))
    for n in range(T):
        v = alpha * v + x[:, n] @ w_in + z @ w_rec - v_th * z
        zbar_prev = zbar                                    # zbar_{n-1}
        z = (v > v_th).astype(np.float64)
        psi = pseudo_derivative(v, v_th, gamma)
        y = kappa * y + z @ w_out + b
        xbar = alpha * xbar + x[:, n]
        zbar = alpha * zbar + z
        e_in = xbar[:, :, None] * psi[:, None, :]           # (B, N_in, N_h)
        e_rec = zbar_prev[:, :, None] * psi[:, None, :]     # (B, N_h, N_h)
        ebar_in = kappa * ebar_in + e_in
        ebar_rec = kappa * ebar_rec + e_rec
        E_in += e_in
        E_rec += e_rec
        zout = kappa * zout + z
        bbar = kappa * bbar + 1.0
        count += z
        if n >= T - window:
            step, err = _step_loss(y, onehot, loss)
            total += step.sum() * scale
            err = err * scale
            L = err @ fb.T                                  # (B, N_h)
            Ls[:, n] = L
            g_in += np.einsum("bj,bij->ij", L, ebar_in)
            g_rec += np.einsum("bj,bij->ij", L, ebar_rec)
            g_out += np.einsum("bj,bk->jk", zout, err)
            g_b += bbar * err.sum(axis=0)
            logits += y / window
    if reg_c:
        f = count / (T * dt)                                # Hz
        total += 0.5 * reg_c * ((f - f_target) ** 2).mean(axis=1).sum() / B
        reg = reg_c * (f - f_target) / (N_h * T * dt * B)   # (B, N_h): dL/dz_nj, any n
        g_in += np.einsum("bj,bij->ij", reg, E_in)
        g_rec += np.einsum("bj,bij->ij", reg, E_rec)
    grads = {"w_in": g_in, "w_out": g_out, "b": g_b}
    if recurrent:
        grads["w_rec"] = g_rec
    return float(total), grads, {"logits": logits, "learning_signal": Ls}


def bptt_loss_and_grad(x, labels, w_in, w_rec, w_out, b, *, dt, tau_m, tau_out, v_th, gamma,
                       window, loss="cross_entropy", reg_c=0.0, f_target=10.0,
                       reset_in_gradient=True):
    """Loss and gradients of the same network by back-propagation through time, with psi in
    place of dH/dv. ``reset_in_gradient=False`` detaches the reset term ``-v_th z_{n-1}``
    (the path e-prop leaves out). Returns ``(loss, grads)`` like :func:`eprop_loss_and_grad`.

    Adjoints (g* = dL/d*, total; direct terms d*):
        gy_n = dy_n + kappa gy_{n+1}                   (dy_n = err_n / (|W| B) in the window)
        gz_n = gy_n w_out^T + dreg + gv_{n+1} (w_rec^T - v_th [reset_in_gradient])
        gv_n = psi_n gz_n + alpha gv_{n+1}
        dW_in = sum_n x_n^T gv_n,  dW_rec = sum_n z_{n-1}^T gv_n,
        dW_out = sum_n z_n^T gy_n, db = sum_n gy_n
    """
    x = np.asarray(x, dtype=np.float64)
    B, T, N_in = x.shape
    _check(loss, window, T)
    w_out = np.asarray(w_out, dtype=np.float64)
    C = w_out.shape[1]
    recurrent = w_rec is not None
    N_h = np.asarray(w_in).shape[1]
    w_rec_ = np.asarray(w_rec, dtype=np.float64) if recurrent else np.zeros((N_h, N_h))
    fw = eprop_forward(x, w_in, w_rec_, w_out, b, dt=dt, tau_m=tau_m, tau_out=tau_out,
                       v_th=v_th, gamma=gamma, window=window)
    Z, P, Y = fw["spikes"], fw["psi"], fw["readout"]
    onehot = np.eye(C)[np.asarray(labels, dtype=np.int64)]
    alpha, kappa = np.exp(-dt / tau_m), np.exp(-dt / tau_out)
    scale = 1.0 / (window * B)
    dy = np.zeros_like(Y)
    total = 0.0
    for n in range(T - window, T):
        step, err = _step_loss(Y[:, n], onehot, loss)
        total += step.sum() * scale
        dy[:, n] = err * scale
    dreg = np.zeros((B, N_h))
    if reg_c:
        f = Z.sum(axis=1) / (T * dt)
        total += 0.5 * reg_c * ((f - f_target) ** 2).mean(axis=1).sum() / B
        dreg = reg_c * (f - f_target) / (N_h * T * dt * B)
    back = w_rec_.T - (v_th * np.eye(N_h) if reset_in_gradient else 0.0)
    gy = np.zeros((B, C)); gv_next = np.zeros((B, N_h))
    GV = np.zeros((B, T, N_h)); GY = np.zeros((B, T, C))
    for n in range(T - 1, -1, -1):                            # the readout does not see v
        gy = dy[:, n] + kappa * gy
        GY[:, n] = gy
    DZ = (GY.reshape(B * T, C) @ w_out.T).reshape(B, T, N_h) + dreg[:, None, :]
    for n in range(T - 1, -1, -1):
        gz = DZ[:, n]
        if recurrent:
            gz = gz + gv_next @ back
        elif reset_in_gradient:
            gz = gz - v_th * gv_next                          # back = -v_th I
        gv = P[:, n] * gz + alpha * gv_next
        GV[:, n] = gv
        gv_next = gv
    # dW_in = sum_n x_n^T gv_n, dW_rec = sum_{n>0} z_{n-1}^T gv_n, dW_out = sum_n z_n^T gy_n
    g_in = x.reshape(B * T, N_in).T @ GV.reshape(B * T, N_h)
    g_rec = Z[:, :-1].reshape(-1, N_h).T @ GV[:, 1:].reshape(-1, N_h)
    g_out = Z.reshape(B * T, N_h).T @ GY.reshape(B * T, C)
    g_b = GY.sum(axis=(0, 1))
    grads = {"w_in": g_in, "w_out": g_out, "b": g_b}
    if recurrent:
        grads["w_rec"] = g_rec
    return float(total), grads

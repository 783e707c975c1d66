"""The spikeloc tutorial SNN in JAX (``jax.jit``): the competitor of issue 12's scaling table.

The model is spikeloc's default ``sl.SNN`` (docs/MODEL.md sections 2-3, mirrored from the NumPy
reference ``spikeloc.reference.snn_loss_and_grad`` / ``adam_step``), written the way one writes it
in JAX, on dense float32 inputs ``x`` (B, T, N_in) with 0/1 entries:

* hidden LIF, "delayed reset" of the seeds: ``I = x W1`` (one matrix product for the whole
  batch), then ``lax.scan`` over the T steps with carry (v_n, s_n), v_0 = s_0 = 0::

      s_{n+1} = H(v_n - 1)                     (read from the voltage before the update)
      v_{n+1} = (a_h v_n + I_n) (1 - s_n)      (the reset acts one step later; not detached)

  recording S = [s_0 .. s_{T-1}]; a_h = exp(-dt / tau_h);
* ``H`` is a ``jax.custom_jvp`` spike function: forward ``x > 0``, derivative the sigmoid
  surrogate ``beta sigma(beta x) (1 - sigma(beta x))`` (beta = 5), evaluated at ``v_n - 1`` like
  the reference (written ``beta e / (1 + e)^2``, ``e = exp(-beta |x|)``, as the reference does);
* readout: leaky membrane u_{n+1} = a_o u_n + S_n W2, u_0 = 0, logits = mean of u_0 .. u_{T-1}.
  The mean is taken in closed form, ``m = (sum_n c_n S_n) W2 / T`` with
  ``c_n = (1 - a_o^(T-1-n)) / (1 - a_o)`` (the weight of S_n in the sum of the u's; c_{T-1} = 0),
  which is the same function with one (B, N_h) x (N_h, C) product instead of T of them: the
  cheaper formulation, chosen in JAX's favour (spikeloc's kernels use the same closed form).
  Two ways to write it (``form``): "stacked" (the scan returns S (T, B, N_h), then an einsum
  over time) and "carry" (the scan carries the weighted sum z = sum_n c_n S_n / T; S is never
  stacked). Neither was faster everywhere in trials (carry ~20-40% faster at N_h 1600,
  stacked at N_h 100, on a busy machine), so :func:`time_epochs` picks the faster one per
  shape by a short trial;
* loss: mean over the batch of ``-log softmax(m_b)[y_b]``;
* gradients: ``jax.value_and_grad`` through the scan (reverse mode, the surrogate via the
  custom JVP): the backward recursion and the two weight products ``x^T gI``, ``S^T dJ``;
* Adam with ``torch.optim.Adam``'s order of operations (``spikeloc.reference.adam_step``; lr 0.01,
  betas (0.9, 0.999), eps 1e-8), in jnp; the bias corrections ``lr / (1 - beta1^t)`` and
  ``sqrt(1 - beta2^t)`` are computed on the host in float64 and passed in as scalars (no
  recompilation per step, no float32 power).

One jitted ``train_step(params, state, x, y, lr_t, sqrt_bc2)`` does forward + gradient + Adam for
one batch. :func:`check_agreement` compares loss and gradients with spikeloc's
``net.loss_and_grad`` (and the Adam update with ``sl.Adam``) on a small fixed case; the
benchmarks call it and refuse to time a model that disagrees (:data:`AGREEMENT_RTOL`).

Threads: XLA sizes its CPU thread pools when jax is first imported. :func:`configure_threads` sets
``XLA_FLAGS`` for one thread (``--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1``) and must run before ``import jax``; the benchmarks time JAX in a
fresh subprocess (``_bench.run_worker``) and report the cores it used (CPU time / wall time).

Small CLI (from the repository root, after ``python setup.py build_ext --inplace``; needs
``pip install -e '.[bench]'`` or any ``jax[cpu]``)::

    PYTHONPATH=python python benchmarks/jax_snn.py                # agreement check only
    PYTHONPATH=python python benchmarks/jax_snn.py --epoch --hidden 100 --steps 100 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

#: Largest accepted deviation of JAX from spikeloc in :func:`check_agreement` (float32): loss
#: relative to |loss|, each gradient relative to its max |entry|, the Adam update relative to lr.
AGREEMENT_RTOL = 1e-4

#: Smallest accepted distance of a voltage from the threshold in the agreement case: ~100x the
#: float32 rounding a voltage accumulates over its 50 steps (~1e-7 per step).
MIN_MARGIN = 1e-5

#: XLA_FLAGS for a single-threaded XLA CPU client (set before jax is imported).
SINGLE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

LR, BETAS, EPS, BETA = 0.01, (0.9, 0.999), 1e-8, 5.0

#: The two ways of writing the readout's time sum (see :func:`make_model`).
FORMS = ("stacked", "carry")


def configure_threads(threads: int) -> None:
    """``threads`` = 1: make this process's XLA CPU client single-threaded; 0: leave XLA's
    defaults (all cores). Must run before ``import jax`` (RuntimeError otherwise).

    One thread needs two things: ``XLA_FLAGS`` gets :data:`SINGLE_THREAD_XLA_FLAGS` (Eigen's
    single-threaded contractions), and the process is pinned to one CPU
    (``os.sched_setaffinity``, the lowest CPU it may use), because with the flags alone this
    jaxlib (0.10) still ran on 1.4-1.6 cores of 2 (pinned, it cannot use more than one core
    whatever its thread pools; it also starts fewer threads, 15 against 19). The pinned process
    cannot move to another core when a second process holds its own, so single-threaded JAX
    timings are only meaningful on a quiet machine (the benchmarks report the ``others``
    column)."""
    if threads not in (0, 1):
        raise ValueError(f"threads must be 0 (XLA's default) or 1, got {threads!r}")
    if threads == 0:
        return
    if "jax" in sys.modules:
        raise RuntimeError("configure_threads(1) must run before jax is imported")
    flags = os.environ.get("XLA_FLAGS", "")
    if SINGLE_THREAD_XLA_FLAGS not in flags:
        os.environ["XLA_FLAGS"] = (flags + " " + SINGLE_THREAD_XLA_FLAGS).strip()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def jax_version():
    """The installed jax's version string, or None when jax is not importable (checked without
    importing it, so that XLA's thread pools are not created in the calling process)."""
    import importlib.metadata
    import importlib.util
    if importlib.util.find_spec("jax") is None:
        return None
    try:
        return importlib.metadata.version("jax")
    except importlib.metadata.PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------- the model

def readout_weights(steps: int, a_o: float) -> np.ndarray:
    """c (T,) float64: the mean of u_0 .. u_{T-1} is (sum_n c_n J_n) / T for the leaky readout
    u_{n+1} = a_o u_n + J_n, u_0 = 0: J_n enters u_{n+1}, ..., u_{T-1} with weights
    1, a_o, ..., a_o^(T-2-n), so c_n = (1 - a_o^(T-1-n)) / (1 - a_o) and c_{T-1} = 0."""
    if not 0.0 < a_o < 1.0:
        raise ValueError(f"a_o = exp(-dt / tau_o) must be in (0, 1), got {a_o}")
    n = np.arange(steps)
    return (1.0 - a_o ** (steps - 1 - n)) / (1.0 - a_o)


def make_model(steps: int, dt: float, tau_h: float, tau_o: float, beta: float = BETA,
               lr: float = LR, betas=BETAS, eps: float = EPS, unroll: int = 1,
               form: str = "stacked") -> dict:
    """The jitted functions of the SNN for inputs of ``steps`` time steps (dt, tau_h, tau_o in
    seconds):

    * ``loss_and_grad(w1, w2, x, y)`` -> ``(loss, (g1, g2))``: x (B, T, N_in) float32, y (B,)
      int32; w1 (N_in, N_h), w2 (N_h, C) float32;
    * ``adam(params, grads, state, lr_t, sqrt_bc2)`` -> ``(params, state)``; params and grads are
      (w1, w2), state (m1, v1, m2, v2); ``lr_t = lr / (1 - beta1^t)``, ``sqrt_bc2 =
      sqrt(1 - beta2^t)`` for step t >= 1 (:func:`bias_corrections`);
    * ``train_step(params, state, x, y, lr_t, sqrt_bc2)`` -> ``(params, state, loss)``: both;
    * ``bias_corrections(t)``: the two scalars of step t (host, float64 -> float32).

    ``unroll``: ``lax.scan``'s unroll factor of the time loop (1: XLA's plain loop).
    ``form``: "stacked" or "carry", how the readout's time sum is written (module docstring).
    """
    import jax
    import jax.numpy as jnp

    a_h = float(np.exp(-dt / tau_h))
    c = jnp.asarray(readout_weights(steps, float(np.exp(-dt / tau_o))) / steps, jnp.float32)
    beta1, beta2 = betas

    @jax.custom_jvp
    def spike(x):
        return (x > 0).astype(x.dtype)

    @spike.defjvp
    def spike_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        e = jnp.exp(-beta * jnp.abs(x))
        return spike(x), beta * e / (1.0 + e) ** 2 * dx

    def step(carry, i_n):
        v, s = carry
        s_next = spike(v - 1.0)                    # s_{n+1} = H(v_n - 1)
        v_next = (a_h * v + i_n) * (1.0 - s)       # v_{n+1} = (a_h v_n + I_n)(1 - s_n)
        return (v_next, s_next), s                 # record s_n

    def step_carry(carry, inputs):
        v, s, z = carry
        i_n, c_n = inputs
        return (((a_h * v + i_n) * (1.0 - s), spike(v - 1.0), z + c_n * s)), None

    def weighted_spikes(current):
        """sum_n c_n s_n (B, N_h) from I (T, B, N_h)."""
        zero = jnp.zeros(current.shape[1:], current.dtype)
        if form == "stacked":
            _, spikes = jax.lax.scan(step, (zero, zero), current, unroll=unroll)  # S (T, B, N_h)
            return jnp.einsum("tbh,t->bh", spikes, c)
        (_, _, z), _ = jax.lax.scan(step_carry, (zero, zero, zero), (current, c), unroll=unroll)
        return z

    if form not in ("stacked", "carry"):
        raise ValueError(f"form must be 'stacked' or 'carry', got {form!r}")

    def loss_fn(w1, w2, x, y):
        current = jnp.swapaxes(x, 0, 1) @ w1       # I (T, B, N_h)
        logits = weighted_spikes(current) @ w2      # mean_n u_n (B, C)
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def adam(params, grads, state, lr_t, sqrt_bc2):
        new_params, new_state = [], []
        for w, g, m, v in zip(params, grads, state[0::2], state[1::2]):
            m = beta1 * m + (1.0 - beta1) * g
            v = beta2 * v + (1.0 - beta2) * g * g
            new_params.append(w - lr_t * m / (jnp.sqrt(v) / sqrt_bc2 + eps))
            new_state += [m, v]
        return tuple(new_params), tuple(new_state)

    value_and_grad = jax.value_and_grad(loss_fn, argnums=(0, 1))

    def train_step(params, state, x, y, lr_t, sqrt_bc2):
        loss, grads = value_and_grad(params[0], params[1], x, y)
        params, state = adam(params, grads, state, lr_t, sqrt_bc2)
        return params, state, loss

    def bias_corrections(t: int):
        return (np.float32(lr / (1.0 - beta1 ** t)), np.float32(np.sqrt(1.0 - beta2 ** t)))

    return {"loss_and_grad": jax.jit(value_and_grad), "adam": jax.jit(adam),
            "train_step": jax.jit(train_step), "bias_corrections": bias_corrections}


def zero_state(w1, w2) -> tuple:
    """Adam moments (m1, v1, m2, v2), float32 zeros."""
    import jax.numpy as jnp
    return tuple(jnp.zeros(w.shape, jnp.float32) for w in (w1, w1, w2, w2))


# ---------------------------------------------------------------------------- agreement

def agreement_case(seed: int = 7):
    """The fixed small case of :func:`check_agreement`: dict with x (8, 50, 40) uint8 (density
    0.2), y (8,), w1 (40, 24) float32 multiples of 1/4096 (exact in float32, so I = x W1 is exact
    on both sides, and never exactly 1), w2 (24, 6) float32 multiples of 1/64, dt 1 ms,
    tau_h 10 ms, tau_o 20 ms."""
    rng = np.random.default_rng(seed)
    B, T, n_in, n_h, C = 8, 50, 40, 24, 6
    x = (rng.random((B, T, n_in)) < 0.2).astype(np.uint8)
    y = rng.integers(0, C, size=B)
    # (64 k + 1) / 4096: I_n = x_n W1 = (64 K + events) / 4096 is never exactly 1 (fewer than
    # 64 input events per step), so no voltage after a reset sits on the threshold
    w1 = ((64 * rng.integers(-20, 33, size=(n_in, n_h)) + 1) / 4096).astype(np.float32)
    w2 = (rng.integers(-32, 33, size=(n_h, C)) / 64).astype(np.float32)
    return dict(x=x, y=y, w1=w1, w2=w2, dt=1e-3, tau_h=10e-3, tau_o=20e-3)


def agreement(seed: int = 7) -> dict:
    """Deviations of JAX from spikeloc on :func:`agreement_case`: ``loss`` (relative to
    |loss|), ``w1``, ``w2`` (max |g_jax - g_spikeloc| / max |g_spikeloc|; each the worse of the
    two :data:`FORMS`), ``adam`` (max
    |w_jax - w_spikeloc| / lr after one Adam step on spikeloc's gradients, both optimisers), and
    ``max`` of these; plus ``margin`` (min |v_n - 1| of the float64 reference, which must exceed
    float32 noise for the spikes to be comparable) and ``hidden_spikes`` (> 0: the case
    exercises the spike path)."""
    import jax.numpy as jnp

    sl = _import_spikeloc()
    from spikeloc import reference as ref
    case = agreement_case(seed)
    x, y, w1, w2 = case["x"], case["y"], case["w1"], case["w2"]
    fw = ref.snn_forward(x, w1, w2, case["dt"], case["tau_h"], case["tau_o"], "mean")
    margin = float(np.abs(fw["hidden_v"][:, :-1] - 1.0).min())  # v_0 .. v_{T-2} decide spikes

    net = sl.SNN(x.shape[2], w1.shape[1], w2.shape[1], dt=case["dt"], tau_hidden=case["tau_h"],
                 tau_output=case["tau_o"], readout="mean", seed=0, threads=1)
    net.w1, net.w2 = w1, w2
    loss_sl, g_sl = net.loss_and_grad(x, y)

    xj = jnp.asarray(x, jnp.float32)
    yj = jnp.asarray(y, jnp.int32)
    out = {"loss": 0.0, "w1": 0.0, "w2": 0.0}
    for form in FORMS:  # the worse of the two forms
        model = make_model(x.shape[1], case["dt"], case["tau_h"], case["tau_o"], form=form)
        loss_j, (g1, g2) = model["loss_and_grad"](jnp.asarray(w1), jnp.asarray(w2), xj, yj)
        out["loss"] = max(out["loss"], abs(float(loss_j) - loss_sl) / abs(loss_sl))
        for name, g in (("w1", g1), ("w2", g2)):
            ref_g = g_sl[name]
            out[name] = max(out[name],
                            float(np.abs(np.asarray(g) - ref_g).max() / np.abs(ref_g).max()))

    opt = sl.Adam(net, lr=LR, betas=BETAS, eps=EPS)
    opt.step(g_sl)
    params, _ = model["adam"]((jnp.asarray(w1), jnp.asarray(w2)),
                              (jnp.asarray(g_sl["w1"]), jnp.asarray(g_sl["w2"])),
                              zero_state(w1, w2), *model["bias_corrections"](1))
    out["adam"] = max(float(np.abs(np.asarray(p) - q).max()) / LR
                      for p, q in zip(params, (net.w1, net.w2)))
    out["max"] = max(out.values())
    out["margin"] = margin
    out["hidden_spikes"] = int(fw["hidden_spikes"].sum())
    return out


def check_agreement(seed: int = 7) -> float:
    """Max relative deviation of JAX's loss, gradients and Adam step from spikeloc's on the
    fixed small case (see :func:`agreement`). Raises RuntimeError when the case itself is not
    a fair test: no hidden spike, or a voltage within :data:`MIN_MARGIN` of the threshold (where
    float32 rounding could flip a spike on one side only)."""
    a = agreement(seed)
    if a["hidden_spikes"] == 0 or a["margin"] < MIN_MARGIN:
        raise RuntimeError(f"agreement case unusable: {a['hidden_spikes']} hidden spikes, "
                           f"closest voltage {a['margin']:.2e} from the threshold")
    return a["max"]


def require_agreement(seed: int = 7) -> float:
    """:func:`check_agreement`, raising RuntimeError above :data:`AGREEMENT_RTOL`."""
    dev = check_agreement(seed)
    if not dev <= AGREEMENT_RTOL:
        raise RuntimeError(f"the JAX model disagrees with spikeloc: max relative deviation "
                           f"{dev:.2e} > {AGREEMENT_RTOL:g}; not timing it")
    return dev


# ---------------------------------------------------------------------------- timing

def time_epochs(x_batches, y_batches, w1, w2, dt, tau_h, tau_o, best_of: int = 2,
                unroll: int = 1, forms=FORMS, trials: int = 3) -> dict:
    """Best of ``best_of`` epochs (one ``train_step`` per batch, from the weights w1, w2 and
    zero Adam state each time) over the device arrays ``x_batches`` (each (B, T, N_in)
    float32) and ``y_batches`` (each (B,) int32).

    First, for each of ``forms``: compile, run one step (not timed), then time ``trials``
    single steps; the form with the smallest step time is timed over the epochs (the other
    form is dropped). Each epoch blocks on its last results. Returns dict ``best``, ``times``
    [s], ``cpu`` (CPU seconds of the best), ``others`` (cores busy elsewhere), ``form``,
    ``trial`` ({form: best step [s]}), ``first_loss``, ``last_loss``."""
    import jax
    import jax.numpy as jnp
    from _bench import Timer

    w0 = (jnp.asarray(w1, jnp.float32), jnp.asarray(w2, jnp.float32))
    steps, trial = {}, {}
    for form in forms:
        model = make_model(x_batches[0].shape[1], dt, tau_h, tau_o, unroll=unroll, form=form)
        step, bias = model["train_step"], model["bias_corrections"]
        args = (w0, zero_state(w1, w2), x_batches[0], y_batches[0], *bias(1))
        jax.block_until_ready(step(*args))  # compile + warm-up
        times = []
        for _ in range(trials):
            with Timer() as t:
                jax.block_until_ready(step(*args))
            times.append(t.seconds)
        steps[form], trial[form] = step, min(times)
    form = min(trial, key=trial.get)
    step = steps[form]
    scalars = [bias(t) for t in range(1, len(x_batches) + 1)]
    timers = []
    for _ in range(best_of):
        params, state, losses = w0, zero_state(w1, w2), []
        with Timer() as t:
            for b, (xb, yb) in enumerate(zip(x_batches, y_batches)):
                params, state, loss = step(params, state, xb, yb, *scalars[b])
                losses.append(loss)
            jax.block_until_ready((params, state, losses))
        timers.append((t, float(losses[0]), float(losses[-1])))
    best, first, last = min(timers, key=lambda r: r[0].seconds)
    return {"best": best.seconds, "times": [r[0].seconds for r in timers], "cpu": best.cpu,
            "others": best.others, "form": form, "trial": trial, "first_loss": first,
            "last_loss": last}


def dense_batches(spikes: np.ndarray, labels, order, batch: int):
    """Device arrays for an epoch: the samples ``order`` in batches of ``batch`` (last
    incomplete batch dropped), x as float32 (B, T, N_in), y as int32."""
    import jax.numpy as jnp
    n_batches = len(order) // batch
    xs, ys = [], []
    for b in range(n_batches):
        idx = order[b * batch:(b + 1) * batch]
        xs.append(jnp.asarray(spikes[idx], jnp.float32))
        ys.append(jnp.asarray(np.asarray(labels)[idx], jnp.int32))
    return xs, ys


def _import_spikeloc():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _bench
    return _bench.import_spikeloc()


# ---------------------------------------------------------------------------- for the benchmarks

def worker_check(threads) -> dict:
    """:func:`agreement` in a fresh process with ``threads`` set up, plus jax's version."""
    configure_threads(threads)
    import jax
    return {**agreement(), "version": jax.__version__}


def is_unusable_or_disagrees(a: dict) -> bool:
    """Whether an :func:`agreement` result forbids timing the JAX model."""
    return not a["max"] <= AGREEMENT_RTOL or a["margin"] < MIN_MARGIN or a["hidden_spikes"] == 0


def benchmark_status(threads: int, no_jax: bool = False) -> str:
    """For a benchmark's JAX column: "ok" after the agreement check passed in a fresh
    subprocess (printed), else why the column is not timed ("not requested", "jax not
    installed", "check failed", "disagrees (<max deviation>)")."""
    _import_spikeloc()
    import _bench
    if no_jax:
        return "not requested"
    if jax_version() is None:
        print("JAX: jax not installed (pip install -e '.[bench]'); no JAX column")
        return "jax not installed"
    try:
        a = _bench.run_worker(os.path.abspath(__file__),
                              ["check", json.dumps(dict(threads=threads))])
    except RuntimeError as e:
        print(f"JAX: the agreement check failed to run: {e}")
        return "check failed"
    print(f"JAX {a['version']}: agreement with spikeloc on the check case (relative "
          f"deviations): loss {a['loss']:.1e}, dW1 {a['w1']:.1e}, dW2 {a['w2']:.1e}, Adam step "
          f"{a['adam']:.1e}; max {a['max']:.1e} (tolerance {AGREEMENT_RTOL:g})")
    if is_unusable_or_disagrees(a):
        print("JAX: disagrees with spikeloc (or the check case is unusable): not timed")
        return f"disagrees ({a['max']:.1e})"
    return "ok"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="The spikeloc SNN in JAX: agreement check with "
                                            "spikeloc, optionally a timed epoch.")
    p.add_argument("--threads", type=int, default=0, choices=(0, 1),
                   help="0: XLA's default threads; 1: single-threaded XLA (default 0)")
    p.add_argument("--epoch", action="store_true",
                   help="also time an epoch (1024 samples, batch 64) on synthetic data")
    p.add_argument("--hidden", type=int, default=100, help="N_h of --epoch (default 100)")
    p.add_argument("--steps", type=int, default=100, help="T of --epoch (default 100)")
    p.add_argument("--density", type=float, default=0.22,
                   help="input spike density of --epoch (default 0.22)")
    p.add_argument("--best-of", type=int, default=3, help="epochs timed by --epoch (default 3)")
    p.add_argument("--unroll", type=int, default=1, help="lax.scan unroll factor (default 1)")
    p.add_argument("--form", choices=FORMS, default=None,
                   help="time only this readout form (default: the faster of both)")
    p.add_argument("--worker", nargs=2, metavar=("NAME", "JSON"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:  # _bench.run_worker: one JSON line
        name, kwargs = args.worker
        print(json.dumps({"check": worker_check}[name](**json.loads(kwargs))), flush=True)
        return 0
    if jax_version() is None:
        print("jax is not installed (pip install -e '.[bench]' or 'jax[cpu]')")
        return 1
    configure_threads(args.threads)
    a = agreement()
    print("agreement with spikeloc (relative): " + ", ".join(
        f"{k} {a[k]:.2e}" for k in ("loss", "w1", "w2", "adam")) +
        f"; max {a['max']:.2e} (tolerance {AGREEMENT_RTOL:g}); {a['hidden_spikes']} hidden "
        f"spikes, closest voltage {a['margin']:.1e} from the threshold")
    if is_unusable_or_disagrees(a):
        print("DISAGREES (or the check case is unusable)")
        return 1
    if args.epoch:
        sl = _import_spikeloc()
        rng = np.random.default_rng(0)
        spikes = (rng.random((1024, args.steps, 200), dtype=np.float32)
                  < args.density).astype(np.uint8)
        labels = rng.integers(0, 12, size=1024)
        net = sl.SNN(200, args.hidden, 12, dt=1e-3, tau_hidden=20e-3, tau_output=20e-3, seed=0)
        xs, ys = dense_batches(spikes, labels, np.random.default_rng(1).permutation(1024), 64)
        r = time_epochs(xs, ys, net.w1, net.w2, 1e-3, 20e-3, 20e-3, best_of=args.best_of,
                        unroll=args.unroll, forms=[args.form] if args.form else FORMS)
        print(f"JAX epoch (N_h {args.hidden}, T {args.steps}, density {args.density}, 16 "
              f"batches of 64): best {r['best']:.3f} s of " + ", ".join(
                  f"{t:.3f}" for t in r["times"]) + f"; {r['cpu'] / r['best']:.2f} cores, "
              f"others {r['others']:.2f}; form {r['form']} (trial steps " + ", ".join(
                  f"{k} {v * 1e3:.1f} ms" for k, v in r["trial"].items())
              + f"); loss {r['first_loss']:.4f} -> {r['last_loss']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""spikeloc.training: the training loop, validation, best weights, stopping rules, Ctrl-C,
non-finite losses, progress output, History files."""

import csv
import json
import math
import os
import signal
import sys

import numpy as np
import pytest

import spikeloc as sl
from spikeloc import training
from spikeloc.evaluation import cross_entropy
from spikeloc.training import History, NonFiniteLossError, train


@pytest.fixture(scope="module")
def stim():
    return sl.Stimulus(duration=0.02, anf_per_ear=8, num_classes=4, phase_offset="per_sample")


@pytest.fixture(scope="module")
def data(stim):
    """Training (96 samples) and validation (64 samples) sets: ipd, dense spikes."""
    ipd, spikes = stim.generate(96, seed=0)
    ipd_val, spikes_val = stim.generate(64, seed=1)
    return ipd, spikes, ipd_val, spikes_val


def make_net(stim, seed=1):
    # the textbook bounds: these tests' learning rates and expectations were chosen for them
    return sl.SNN.for_stimulus(stim, n_hidden=6, tau_hidden=5e-3, seed=seed, init="fan_in")


def snapshot(model):
    return {k: v.copy() for k, v in model.parameters().items()}


def assert_weights_equal(model, weights):
    params = model.parameters()
    assert set(params) == set(weights)
    for k in params:
        assert params[k].tobytes() == weights[k].tobytes(), k


class Wrapped:
    """Delegates to a real model; ``hook(call_number, result)`` may change loss_and_grad."""

    def __init__(self, model, hook=None):
        self.model = model
        self.hook = hook
        self.calls = 0
        self.batches = []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def loss_and_grad(self, spikes, labels, index=None):
        self.calls += 1
        self.batches.append(np.array(index))
        result = self.model.loss_and_grad(spikes, labels, index=index)
        return self.hook(self.calls, result) if self.hook else result


class RecordingOptimizer:
    """Wraps Adam; keeps a copy of the weights after every step."""

    def __init__(self, model, lr=0.05):
        self.inner = sl.Adam(model, lr=lr)
        self.params = self.inner.params
        self.after_step = []

    def step(self, grads):
        self.inner.step(grads)
        self.after_step.append({k: v.copy() for k, v in self.params.items()})


class StubModel:
    """Same interface as the networks; validation losses follow ``schedule`` (one value per
    epoch); each step with SGD(lr=1) subtracts 1 from the single weight (grad = 1)."""

    n_out = 2

    def __init__(self, schedule):
        self.schedule = list(schedule)
        self.w = np.zeros((1, 2), dtype=np.float32)
        self.validations = 0

    def parameters(self):
        return {"w": self.w}

    def loss_and_grad(self, spikes, labels, index=None):
        return 1.0, {"w": np.ones((1, 2), dtype=np.float32)}

    def logits(self, spikes, index=None):
        # label 0, logits (0, d): cross-entropy log(1 + e^d) = L  <=>  d = log(e^L - 1)
        L = self.schedule[self.validations]
        self.validations += 1
        d = math.log(math.expm1(L))
        out = np.zeros((len(index), 2), dtype=np.float32)
        out[:, 1] = d
        return out


def run_stub(schedule, epochs=None, **kw):
    model = StubModel(schedule)
    spikes = np.zeros((4, 1, 1), dtype=np.uint8)
    zeros = np.zeros(4, dtype=np.int64)
    h = train(model, None, spikes, labels=zeros, epochs=epochs or len(schedule), batch_size=2,
              optimizer="sgd", lr=1.0, validation=(None, spikes, zeros), progress=False, **kw)
    return model, h


# ---------------------------------------------------------------------------- basics


def test_training_reduces_loss(stim, data):
    ipd, spikes, ipd_val, spikes_val = data
    net = make_net(stim)
    h = train(net, ipd, spikes, stimulus=stim, epochs=8, lr=0.05, batch_size=16,
              validation=(ipd_val, spikes_val), progress=False)
    assert h.epochs == 8 and len(h.epoch_time) == 8 and h.steps == 8 * 6
    assert h.train_loss[-1] < 0.8 * h.train_loss[0]
    assert h.val_loss[-1] < h.val_loss[0]
    assert h.stop_reason == "completed" and not h.stopped_early and not h.interrupted
    assert all(t >= 0 for t in h.epoch_time)


def test_reproducible_bitwise(stim, data):
    ipd, spikes, ipd_val, spikes_val = data
    runs = []
    for seed in (7, 7, 8):
        net = make_net(stim)
        h = train(net, ipd, sl.SpikeEvents.from_dense(spikes), stimulus=stim, epochs=3,
                  batch_size=16, validation=(ipd_val, spikes_val), seed=seed, progress=False)
        runs.append((h, snapshot(net)))
    (h1, w1), (h2, w2), (h3, w3) = runs
    assert h1.train_loss == h2.train_loss and h1.val_loss == h2.val_loss
    for k in w1:
        assert w1[k].tobytes() == w2[k].tobytes()
    assert h3.train_loss != h1.train_loss  # another shuffling seed: another run


def test_labels_from_ipd_without_stimulus_and_explicit_labels(stim, data):
    ipd, spikes, _, _ = data
    losses = []
    for kw in ({"stimulus": stim}, {}, {"labels": stim.labels(ipd)}):
        net = make_net(stim)
        args = (None, spikes) if "labels" in kw else (ipd, spikes)
        losses.append(train(net, *args, epochs=2, batch_size=16, progress=False,
                            **kw).train_loss)
    assert losses[0] == losses[1] == losses[2]


def test_drops_last_incomplete_batch(stim, data):
    ipd, spikes, _, _ = data
    net = Wrapped(make_net(stim))
    opt = RecordingOptimizer(net.model)
    h = train(net, ipd, spikes, stimulus=stim, epochs=2, batch_size=40,
              optimizer=opt, progress=False)
    # 96 samples, batches of 40: 2 batches per epoch, 16 samples left out each epoch.
    assert len(opt.after_step) == 4 == h.steps == net.calls
    assert all(len(b) == 40 for b in net.batches)
    for epoch in range(2):
        used = np.concatenate(net.batches[2 * epoch:2 * epoch + 2])
        assert len(np.unique(used)) == 80  # a permutation: no sample twice in an epoch
    # The two epochs use different permutations from the one generator.
    assert not np.array_equal(net.batches[0], net.batches[2])


def test_validation_recorded(stim, data):
    ipd, spikes, ipd_val, spikes_val = data
    net = make_net(stim)
    h = train(net, ipd, spikes, stimulus=stim, epochs=3, lr=0.05, batch_size=16,
              validation=(ipd_val, spikes_val), restore_best=False, progress=False)
    assert len(h.val_loss) == len(h.val_accuracy) == 3
    y_val = stim.labels(ipd_val)
    logits = net.forward(spikes_val).logits
    assert h.val_loss[-1] == pytest.approx(cross_entropy(logits, y_val), rel=1e-12)
    assert h.val_accuracy[-1] == np.mean(np.argmax(logits, 1) == y_val)
    # The kernel's own loss on the whole validation set agrees (float32 there).
    kernel_loss, _ = net.loss_and_grad(spikes_val, y_val)
    assert h.val_loss[-1] == pytest.approx(kernel_loss, rel=1e-5)
    # Validation given as (None, spikes, labels) gives the same numbers.
    net2 = make_net(stim)
    h2 = train(net2, ipd, spikes, stimulus=stim, epochs=3, lr=0.05, batch_size=16,
               validation=(None, spikes_val, y_val), restore_best=False, progress=False)
    assert h2.val_loss == h.val_loss


def test_best_weights_restored(stim, data):
    ipd, spikes, ipd_val, spikes_val = data
    snaps = []
    net = make_net(stim)
    h = train(net, ipd, spikes, stimulus=stim, epochs=8, lr=0.2, batch_size=16,
              validation=(ipd_val, spikes_val), progress=False,
              callback=lambda e, hist: snaps.append(snapshot(net)))
    assert len(snaps) == 8
    assert h.best_epoch < 7  # the last epoch is worse than the best one
    assert h.best_val_loss == min(h.val_loss) == h.val_loss[h.best_epoch]
    assert h.restored_best
    assert_weights_equal(net, snaps[h.best_epoch])
    assert any(snaps[7][k].tobytes() != snaps[h.best_epoch][k].tobytes() for k in snaps[7])
    # restore_best=False keeps the last weights.
    net2 = make_net(stim)
    h2 = train(net2, ipd, spikes, stimulus=stim, epochs=8, lr=0.2, batch_size=16,
               validation=(ipd_val, spikes_val), restore_best=False, progress=False)
    assert not h2.restored_best and h2.val_loss == h.val_loss
    assert_weights_equal(net2, snaps[7])
    h2.restore_best(net2)
    assert_weights_equal(net2, snaps[h.best_epoch])


def test_best_weights_restored_exactly_with_stub():
    # Two steps per epoch, each subtracts 1: after epoch e the weight is -2 (e + 1).
    model, h = run_stub([3.0, 1.0, 2.0, 4.0])
    assert h.best_epoch == 1 and h.best_val_loss == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_array_equal(model.w, np.full((1, 2), -4.0))
    model, h = run_stub([3.0, 1.0, 2.0, 4.0], restore_best=False)
    np.testing.assert_array_equal(model.w, np.full((1, 2), -8.0))


def test_callback_stops():
    seen = []
    model, h = run_stub([5.0] * 6, callback=lambda e, hist: seen.append(
        (e, hist.epochs)) or e == 1)
    assert seen == [(0, 1), (1, 2)]
    assert h.epochs == 2 and h.stop_reason == "callback" and h.stopped_early


# ---------------------------------------------------------------------------- stopping rules


@pytest.mark.parametrize("schedule, n, stop_after", [
    # e = 5 (from 0): last 3 = [2, 2.5, 2.6], the first is the minimum -> stop after 6 epochs
    ([5, 4, 3, 2, 2.5, 2.6, 2.7, 1, 1, 1], 3, 6),
    # rising from the start: the rule holds at e = 3 already but only applies once e > N = 3
    ([1, 2, 3, 4, 5, 6, 7, 8], 3, 5),
    # ties count as no improvement (argmin returns the first minimum)
    ([3, 2, 2, 2, 2, 2, 2, 2], 3, 5),
    # steady improvement: never stops
    ([9, 8, 7, 6, 5, 4, 3, 2], 3, 8),
    # N = 2: stop at the first e > 2 whose loss does not beat the previous one
    ([5, 4, 3, 2, 1, 1.5, 0.5], 2, 6),
])
def test_early_stopping_seed_rule(schedule, n, stop_after):
    model, h = run_stub([float(v) for v in schedule], early_stopping=n)
    assert h.epochs == stop_after
    assert h.stopped_early == (stop_after < len(schedule))
    assert h.stop_reason == ("early_stopping" if stop_after < len(schedule) else "completed")


def _seed_rule(schedule, n):
    """The seed's line, literally: after epoch e, stop if argmin(hist[-n:]) == 0 and e > n."""
    hist = []
    for e, v in enumerate(schedule):
        hist.append(v)
        if int(np.argmin(hist[-n:])) == 0 and e > n:
            return e + 1
    return len(schedule)


def test_early_stopping_matches_seed_line_on_random_sequences():
    rng = np.random.default_rng(3)
    for trial in range(30):
        n = int(rng.integers(2, 6))
        schedule = list(np.round(rng.uniform(0.5, 3.0, size=15), 1))  # rounding makes ties
        _, h = run_stub(schedule, early_stopping=n)
        assert h.epochs == _seed_rule(schedule, n), (schedule, n)


@pytest.mark.parametrize("schedule, patience, stop_after, best", [
    ([5, 4, 3, 3.5, 3.2, 3.1, 2.9, 3, 3, 3], 3, 6, 2),
    ([5, 4, 3, 3.5, 3.2, 2.9, 3, 3, 3, 3], 3, 9, 5),
    ([5, 5, 5, 5], 1, 2, 0),  # equal is no improvement
    ([5, 4, 3, 2], 1, 4, 3),
])
def test_patience(schedule, patience, stop_after, best):
    model, h = run_stub([float(v) for v in schedule], patience=patience)
    assert h.epochs == stop_after and h.best_epoch == best
    if stop_after < len(schedule):
        assert h.stop_reason == "patience" and h.stopped_early
    # The best weights are restored: -2 per epoch up to the best one.
    np.testing.assert_array_equal(model.w, np.full((1, 2), -2.0 * (best + 1)))


def test_stopping_rules_need_validation(stim, data):
    ipd, spikes, _, _ = data
    for kw in ({"early_stopping": 3}, {"patience": 2}):
        with pytest.raises(ValueError, match="validation"):
            train(make_net(stim), ipd, spikes, epochs=2, progress=False, **kw)
    with pytest.raises(ValueError, match="early_stopping"):
        run_stub([1.0, 2.0], early_stopping=1)


# ---------------------------------------------------------------------------- interrupts, NaN


def test_keyboard_interrupt_mid_epoch(stim, data):
    ipd, spikes, ipd_val, spikes_val = data

    def hook(call, result):
        if call == 9:  # epoch 1 (from 0), batch 2 (6 batches per epoch)
            raise KeyboardInterrupt
        return result

    net = Wrapped(make_net(stim), hook)
    opt = RecordingOptimizer(net.model, lr=0.2)
    h = train(net, ipd, spikes, stimulus=stim, epochs=5, batch_size=16, optimizer=opt,
              validation=(ipd_val, spikes_val), progress=False)
    assert h.interrupted and not h.restored_best
    assert h.stop_reason == "interrupted (epoch 1, batch 2)"
    assert h.steps == 8 == len(opt.after_step)
    assert h.epochs == 1 and len(h.val_loss) == 1  # the interrupted epoch is not recorded
    assert_weights_equal(net.model, opt.after_step[-1])
    assert h.best_weights is not None  # available on demand
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_real_sigint_stops_at_batch_boundary(stim, data):
    ipd, spikes, _, _ = data

    def hook(call, result):
        if call == 4:
            os.kill(os.getpid(), signal.SIGINT)  # like Ctrl-C during batch 3 (from 0)
        return result

    net = Wrapped(make_net(stim), hook)
    opt = RecordingOptimizer(net.model)
    h = train(net, ipd, spikes, stimulus=stim, epochs=3, batch_size=16, optimizer=opt,
              progress=False)
    # The batch in progress completes (its step is taken), then training stops.
    assert h.interrupted and h.steps == 4 == len(opt.after_step) == net.calls
    assert h.stop_reason == "interrupted (epoch 0, batch 4)"
    assert_weights_equal(net.model, opt.after_step[-1])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nonfinite_loss_raises_before_the_step(stim, data):
    ipd, spikes, _, _ = data

    def hook(call, result):
        return (float("nan"), result[1]) if call == 9 else result

    net = Wrapped(make_net(stim), hook)
    opt = RecordingOptimizer(net.model)
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch 2") as info:
        train(net, ipd, spikes, stimulus=stim, epochs=3, batch_size=16, optimizer=opt,
              progress=False)
    assert isinstance(info.value, FloatingPointError)
    assert (info.value.epoch, info.value.batch) == (1, 2)
    assert len(opt.after_step) == 8 and info.value.history.steps == 8
    assert info.value.history.epochs == 1
    assert_weights_equal(net.model, opt.after_step[-1])


def test_nonfinite_gradient_raises(stim, data):
    ipd, spikes, _, _ = data

    def hook(call, result):
        if call == 2:
            loss, grads = result
            grads = dict(grads)
            grads["w2"] = grads["w2"].copy()
            grads["w2"][0, 0] = np.inf
            return loss, grads
        return result

    net = Wrapped(make_net(stim), hook)
    opt = RecordingOptimizer(net.model)
    with pytest.raises(NonFiniteLossError, match=r"gradient of w2.*epoch 0, batch 1"):
        train(net, ipd, spikes, stimulus=stim, epochs=1, batch_size=16, optimizer=opt,
              progress=False)
    assert len(opt.after_step) == 1
    assert_weights_equal(net.model, opt.after_step[0])


def test_adam_without_eps_and_a_silent_unit_keeps_the_weights(stim, data):
    """eps=0: a hidden unit that never spikes has m = v = 0 for its row of w2, so Adam's
    step is 0/0. It used to leave NaN in w2 (the loss and gradients were finite)."""
    ipd, spikes, _, _ = data
    net = make_net(stim)
    net.w1 = np.where(np.arange(net.n_hidden) == 2, 0.0, net.w1 * 4)   # unit 2 is silent
    opt = sl.Adam(net, lr=0.01, eps=0.0)
    before = snapshot(net)
    with pytest.raises(NonFiniteLossError, match=r"'w2' NaN or infinite.*epoch 0, batch 0") \
            as info:
        train(net, ipd, spikes, stimulus=stim, epochs=2, batch_size=16, optimizer=opt,
              progress=False)
    assert info.value.history.stop_reason == "non-finite step (epoch 0, batch 0)"
    assert_weights_equal(net, before)
    assert opt.steps_taken == 0
    assert all(not st["m"].any() and not st["v"].any() for st in opt.state.values())


@pytest.mark.parametrize("optimizer", [sl.SGD, sl.Adam])
def test_a_huge_learning_rate_stops_with_the_last_good_weights(stim, data, optimizer):
    """lr = 3e38 takes the weights past the float32 range within a few steps; it used to
    leave NaN or infinities in them."""
    ipd, spikes, _, _ = data
    net = make_net(stim)
    kept = [snapshot(net)]

    class Recording(optimizer):
        def step(self, grads):
            super().step(grads)
            kept.append(snapshot(net))

    with pytest.raises(NonFiniteLossError, match=r"(non-finite|NaN or infinite).*epoch \d+, "
                                                 r"batch \d+") as info:
        train(net, ipd, spikes, stimulus=stim, epochs=3, batch_size=16,
              optimizer=Recording(net, lr=3e38), progress=False)
    assert info.value.history.steps == len(kept) - 1
    assert_weights_equal(net, kept[-1])
    assert all(np.isfinite(w).all() for w in net.parameters().values())


def test_an_optimiser_step_is_all_or_nothing():
    """Adam and SGD undo a step that would make any parameter or moment non-finite,
    including the parameters updated before the offending one ("a" changes in every step,
    "b" goes non-finite: by overflow for SGD, by 0/0 for Adam without eps)."""
    rng = np.random.default_rng(0)
    cases = [(lambda p: sl.SGD(p, lr=3e38), {"a": 1e-30, "b": 1.0}),
             (lambda p: sl.Adam(p, lr=0.01, eps=0.0), {"a": 1.0, "b": 0.0})]
    for make, g in cases:
        params = {"a": rng.normal(size=(3, 4)).astype(np.float32),
                  "b": rng.normal(size=5).astype(np.float32)}
        opt = make(params)
        grads = {k: np.full(params[k].shape, g[k], np.float32) for k in params}
        for step in range(10):
            before = {k: v.copy() for k, v in params.items()}
            state = {k: {"m": st["m"].copy(), "v": st["v"].copy(), "step": st["step"]}
                     for k, st in getattr(opt, "state", {}).items()}
            try:
                opt.step(grads)
            except sl.optim.NonFiniteStepError as exc:
                assert exc.name == "b"
                break
            assert not np.array_equal(params["a"], before["a"])
        else:
            raise AssertionError("the step never went non-finite")
        for k in params:
            np.testing.assert_array_equal(params[k], before[k])
        for k, st in state.items():
            assert opt.state[k]["step"] == st["step"]
            np.testing.assert_array_equal(opt.state[k]["m"], st["m"])
            np.testing.assert_array_equal(opt.state[k]["v"], st["v"])
    # gradients whose square overflows float32 would leave Adam's v infinite
    params = {"w": np.zeros(3, np.float32)}
    opt = sl.Adam(params, lr=0.01)
    with pytest.raises(sl.optim.NonFiniteStepError, match="'w'"):
        opt.step({"w": np.full(3, 1e30, np.float32)})
    assert opt.steps_taken == 0 and not opt.state["w"]["v"].any()


def test_train_undoes_a_non_finite_step_of_an_optimiser_of_the_users(stim, data):
    ipd, spikes, _, _ = data
    net = make_net(stim)

    class Exploding:
        params = net.parameters()

        def __init__(self):
            self.calls = 0

        def step(self, grads):
            self.calls += 1
            for name, w in self.params.items():
                w -= 0.01 * grads[name]
                if self.calls == 3:
                    w[0] = np.nan

    kept = []
    opt = Exploding()
    real = opt.step
    opt.step = lambda grads: (real(grads), kept.append(snapshot(net)))[0]
    with pytest.raises(NonFiniteLossError, match=r"made 'w1' NaN.*epoch 0, batch 2"):
        train(net, ipd, spikes, stimulus=stim, epochs=1, batch_size=16, optimizer=opt,
              progress=False)
    assert_weights_equal(net, kept[1])


# ---------------------------------------------------------------------------- output


def test_progress_false_prints_nothing(stim, data, capsys):
    ipd, spikes, ipd_val, spikes_val = data
    train(make_net(stim), ipd, spikes, stimulus=stim, epochs=2, batch_size=16,
          validation=(ipd_val, spikes_val), patience=5, progress=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_progress_bar_shows_loss(stim, data, capsys):
    ipd, spikes, _, _ = data
    train(make_net(stim), ipd, spikes, stimulus=stim, epochs=2, batch_size=16, progress=True)
    out, err = capsys.readouterr()
    assert "12/12" in err and "loss=" in err


def test_progress_without_tqdm_warns_once(stim, data, capsys, monkeypatch):
    ipd, spikes, _, _ = data
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails
    monkeypatch.setattr(training, "_warned_no_tqdm", False)
    with pytest.warns(RuntimeWarning, match="tqdm"):
        train(make_net(stim), ipd, spikes, stimulus=stim, epochs=2, batch_size=16)
    out, _ = capsys.readouterr()
    assert "epoch 1/2: loss" in out and "epoch 2/2: loss" in out
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would fail here
        train(make_net(stim), ipd, spikes, stimulus=stim, epochs=1, batch_size=16)


# ---------------------------------------------------------------------------- History, errors


def test_history_files_and_text(tmp_path, stim, data):
    ipd, spikes, ipd_val, spikes_val = data
    h = train(make_net(stim), ipd, spikes, stimulus=stim, epochs=3, batch_size=16,
              validation=(ipd_val, spikes_val), progress=False)
    h.to_json(tmp_path / "h.json")
    d = json.loads((tmp_path / "h.json").read_text())
    assert d == json.loads(json.dumps(h.to_dict()))
    assert d["train_loss"] == h.train_loss and d["best_epoch"] == h.best_epoch
    assert "best_weights" not in d
    h.to_csv(tmp_path / "h.csv")
    rows = list(csv.DictReader(open(tmp_path / "h.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["train_loss"]) for r in rows] == h.train_loss
    assert [float(r["val_loss"]) for r in rows] == h.val_loss
    text = h.summary()
    assert "train loss" in text and "val loss" in text and "completed" in text
    assert text.count("\n") >= 5
    assert "History(epochs=3" in repr(h) and "completed" in repr(h)
    # Without validation: empty validation column.
    h2 = train(make_net(stim), ipd, spikes, stimulus=stim, epochs=1, batch_size=16,
               progress=False)
    h2.to_csv(tmp_path / "h2.csv")
    (row,) = list(csv.DictReader(open(tmp_path / "h2.csv")))
    assert row["val_loss"] == "" and h2.best_epoch is None
    with pytest.raises(ValueError):
        h2.restore_best(make_net(stim))


def test_bad_arguments(stim, data):
    ipd, spikes, _, _ = data
    net = make_net(stim)
    with pytest.raises(ValueError, match="batch_size"):
        train(net, ipd, spikes, epochs=1, batch_size=200, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        train(net, ipd, spikes, epochs=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="parameter arrays"):
        train(net, ipd, spikes, epochs=1, optimizer=sl.Adam(make_net(stim)), progress=False)
    with pytest.raises(ValueError, match="ipd"):
        train(net, None, spikes, epochs=1, progress=False)
    with pytest.raises(ValueError, match="shape"):
        train(net, ipd[:10], spikes, epochs=1, progress=False)
    with pytest.raises(ValueError, match="classes"):
        train(net, ipd, spikes, stimulus=stim.replace(num_classes=12), epochs=1, progress=False)
    h = train(net, ipd, spikes, epochs=0, progress=False)
    assert isinstance(h, History) and h.epochs == 0 and h.steps == 0

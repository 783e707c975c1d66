"""spikeloc.evaluation: metrics on hand-made predictions, the class rule, cross-entropy."""

import math

import numpy as np
import pytest

import spikeloc as sl
from spikeloc.evaluation import (Evaluation, class_midpoints, cross_entropy, evaluate,
                                 labels_from_ipd)


class FixedPredictor:
    """A stand-in model whose predictions are given."""

    def __init__(self, predicted, n_out):
        self.predicted = np.asarray(predicted)
        self.n_out = n_out

    def predict(self, spikes, index=None):
        assert len(spikes) == len(self.predicted)
        return self.predicted.copy()


@pytest.fixture
def four_classes():
    return sl.Stimulus(duration=0.02, anf_per_ear=8, num_classes=4, phase_offset="per_sample")


# Classes of 45 degrees: [-90,-45) [-45,0) [0,45) [45,90); midpoints -67.5 -22.5 22.5 67.5.
IPD_DEG = np.array([-80.0, -30.0, -10.0, 50.0, 85.0, -60.0])
TRUE = np.array([0, 1, 1, 3, 3, 0])
PRED = np.array([0, 2, 1, 3, 1, 0])


def test_hand_made_case(four_classes):
    ipd = np.deg2rad(IPD_DEG)
    spikes = np.zeros((6, 1, 1), dtype=np.uint8)
    ev = evaluate(FixedPredictor(PRED, 4), ipd, spikes, four_classes)
    assert isinstance(ev, Evaluation)
    assert ev.n == 6
    np.testing.assert_array_equal(ev.true_labels, TRUE)
    np.testing.assert_array_equal(ev.predicted, PRED)
    assert ev.predicted.dtype == np.int64 and ev.true_labels.dtype == np.int64
    assert ev.accuracy == pytest.approx(4 / 6)
    assert ev.chance == 0.25
    # |ipd - midpoint(pred)|: 12.5, 52.5, 12.5, 17.5, 107.5, 7.5 -> mean 35
    assert ev.mean_abs_error_deg == pytest.approx(35.0, abs=1e-12)
    np.testing.assert_allclose(ev.abs_error_deg, [12.5, 52.5, 12.5, 17.5, 107.5, 7.5],
                               atol=1e-12)
    # |midpoint(true) - midpoint(pred)|: 0, 45, 0, 0, 90, 0 -> mean 22.5
    assert ev.mean_abs_error_midpoint_deg == pytest.approx(22.5, abs=1e-12)
    np.testing.assert_allclose(np.rad2deg(ev.estimate), [-67.5, 22.5, -22.5, 67.5, -22.5, -67.5],
                               atol=1e-12)
    np.testing.assert_array_equal(ev.ipd, ipd)
    expected = np.array([[2, 0, 0, 0],
                         [0, 1, 1, 0],
                         [0, 0, 0, 0],
                         [0, 1, 0, 1]])
    np.testing.assert_array_equal(ev.confusion, expected)
    assert ev.confusion.dtype == np.int64
    np.testing.assert_allclose(ev.confusion_normalised,
                               [[1, 0, 0, 0], [0, .5, .5, 0], [0, 0, 0, 0], [0, .5, 0, .5]])
    assert ev.num_classes == 4
    d = ev.to_dict()
    assert d["confusion"] == expected.tolist() and d["n"] == 6


def test_str_has_the_seeds_lines(four_classes):
    ev = evaluate(FixedPredictor(PRED, 4), np.deg2rad(IPD_DEG),
                  np.zeros((6, 1, 1), np.uint8), four_classes)
    text = str(ev)
    assert text.splitlines() == ["Chance accuracy level: 25.0%",
                                 "Classifier accuracy: 66.7%",
                                 "Absolute error: 35.0 deg"]
    rep = ev.report("Test")
    assert "Test classifier accuracy: 66.7%" in rep and "Test absolute error: 35.0 deg" in rep


def test_twelve_class_chance_line():
    ipd = np.deg2rad(np.array([-89.0, 0.0, 89.0]))
    ev = evaluate(FixedPredictor([0, 6, 11], 12), ipd, np.zeros((3, 1, 1), np.uint8))
    assert "Chance accuracy level: 8.3%" in str(ev)
    assert ev.accuracy == 1.0 and "Classifier accuracy: 100.0%" in str(ev)
    assert ev.mean_abs_error_midpoint_deg == 0.0


def test_all_correct_and_labels_override(four_classes):
    ipd = np.deg2rad(IPD_DEG)
    ev = evaluate(FixedPredictor(TRUE, 4), ipd, np.zeros((6, 1, 1), np.uint8), four_classes)
    assert ev.accuracy == 1.0
    np.testing.assert_array_equal(ev.confusion, np.diag([2, 2, 0, 2]))
    np.testing.assert_array_equal(ev.confusion_normalised, np.diag([1.0, 1.0, 0.0, 1.0]))
    # Explicit labels take precedence over the IPD rule.
    ev2 = evaluate(FixedPredictor(TRUE, 4), ipd, np.zeros((6, 1, 1), np.uint8), four_classes,
                   labels=PRED)
    assert ev2.accuracy == pytest.approx(4 / 6)


def test_bad_inputs(four_classes):
    spikes = np.zeros((6, 1, 1), np.uint8)
    with pytest.raises(ValueError, match="samples"):
        evaluate(FixedPredictor(PRED, 4), np.zeros(5), spikes, four_classes)
    with pytest.raises(ValueError, match="model.predict"):
        evaluate(FixedPredictor([0, 1, 2, 3, 4, 0], 4), np.deg2rad(IPD_DEG), spikes,
                 four_classes)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(FixedPredictor(PRED, 4), np.full(6, np.nan), spikes, four_classes)


def test_evaluate_real_network(four_classes):
    ipd, spikes = four_classes.generate(40, seed=5)
    net = sl.SNN.for_stimulus(four_classes, n_hidden=6, tau_hidden=5e-3, seed=2)
    ev = evaluate(net, ipd, spikes, four_classes)
    pred = net.predict(spikes)
    np.testing.assert_array_equal(ev.predicted, pred)
    assert ev.accuracy == np.mean(pred == four_classes.labels(ipd))
    assert ev.mean_abs_error_deg == pytest.approx(four_classes.abs_error_deg(ipd, pred).mean(),
                                                  rel=1e-12)
    assert ev.confusion.sum() == 40
    # Without a stimulus: C from the model, same class rule.
    ev2 = evaluate(net, ipd, sl.SpikeEvents.from_dense(spikes))
    np.testing.assert_array_equal(ev2.confusion, ev.confusion)


# ---------------------------------------------------------------------------- helpers


def test_labels_and_midpoints_match_stimulus(four_classes):
    rng = np.random.default_rng(0)
    ipd = np.concatenate([rng.uniform(-np.pi / 2, np.pi / 2, 200),
                          [-np.pi / 2, np.pi / 2, 0.0, np.nextafter(np.pi / 2, 0), -2.0, 2.0]])
    for c in (1, 4, 12):
        stim = four_classes.replace(num_classes=c)
        np.testing.assert_array_equal(labels_from_ipd(ipd, c), stim.labels(ipd))
        labels = np.arange(c)
        np.testing.assert_array_equal(class_midpoints(labels, c), stim.midpoints(labels))
    assert labels_from_ipd([np.pi / 2], 12)[0] == 11  # clamped
    assert labels_from_ipd([-np.pi / 2], 12)[0] == 0
    with pytest.raises(ValueError):
        class_midpoints([4], 4)


def test_cross_entropy_against_direct_formula():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(7, 5)) * 3
    y = rng.integers(0, 5, size=7)
    direct = np.mean([-np.log(np.exp(z[b, y[b]]) / np.exp(z[b]).sum()) for b in range(7)])
    assert cross_entropy(z, y) == pytest.approx(direct, rel=1e-12)
    assert cross_entropy(z.astype(np.float32), y) == pytest.approx(direct, rel=1e-6)
    # Uniform logits: log C.
    assert cross_entropy(np.zeros((3, 12)), [0, 5, 11]) == pytest.approx(math.log(12))
    # Shift invariance per row.
    assert cross_entropy(z + 1000.0, y) == pytest.approx(direct, rel=1e-9)


def test_cross_entropy_stable_for_huge_logits():
    z32 = np.array([[1e30, 0.0], [0.0, 3e38]], dtype=np.float32)
    assert cross_entropy(z32, [0, 1]) == 0.0
    val = cross_entropy(z32, [1, 1])
    assert math.isfinite(val) and val == pytest.approx(1e30 / 2, rel=1e-6)
    z64 = np.array([[1e300, -1e300, 0.0]])
    assert cross_entropy(z64, [0]) == 0.0
    assert cross_entropy(z64, [2]) == pytest.approx(1e300)


def test_cross_entropy_bad_input():
    with pytest.raises(ValueError):
        cross_entropy(np.zeros((3, 4)), [0, 1])
    with pytest.raises(ValueError):
        cross_entropy(np.zeros((2, 4)), [0, 4])
    with pytest.raises(TypeError):
        cross_entropy(np.zeros((2, 4)), [0.0, 1.0])
    with pytest.raises(ValueError):
        cross_entropy(np.zeros(4), [0])

import numpy as np
import pytest

from aelle.classifiers import (
    Orthant,
    Threshold,
    classifier_from_state,
    good_mask,
    le_statistics,
    scores,
)


def test_good_is_below_the_median_by_default():
    np.testing.assert_array_equal(good_mask([3.0, 1.0, 2.0, 4.0]), [False, True, True, False])
    np.testing.assert_array_equal(good_mask([3.0, 1.0], split=2.5), [False, True])


def test_scores_of_the_positive_class():
    s = scores([True, True, False, False], [True, False, True, False])
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    assert scores([False, False], [True, False]).f1 == 0.0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_best_f1_threshold_finds_the_side_and_the_cut(sign):
    x = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]) * sign
    good = np.array([True] * 4 + [False] * 4)
    rule = Threshold.best_f1(x, good)
    assert rule.below == (sign > 0)
    assert abs(rule.threshold) == pytest.approx(0.5)
    assert scores(rule.predict(x), good).f1 == 1.0


def test_median_split_takes_the_side_with_more_good_networks():
    x = np.arange(10.0)
    good = x > 6
    rule = Threshold.median(x, good)
    assert rule.threshold == 4.5 and not rule.below
    np.testing.assert_array_equal(rule.predict(x), x > 4.5)


def test_orthant_classifier_learns_a_quadrant_and_rejects_empty_cells():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    good = (x[:, 0] > 0) & (x[:, 1] > 0)
    rule = Orthant.fit(x, good, d=2)
    test = rng.standard_normal((400, 3))
    truth = (test[:, 0] > 0) & (test[:, 1] > 0)
    assert scores(rule.predict(test), truth).f1 > 0.9
    # one component only: the better half-line cannot hold a good majority -> all bad
    assert not Orthant.fit(x, good, d=1).predict(test).any()
    # a cell no training point fell in is bad
    sparse = Orthant([0.0, 0.0], good_cells=[])
    assert not sparse.predict(np.ones((1, 2))).any()


def test_classifier_state_round_trips():
    rules = [Threshold(0.25, below=False), Orthant([0.1, -0.2], good_cells=[1, 3])]
    x = np.random.default_rng(1).standard_normal((50, 2))
    for rule in rules:
        back = classifier_from_state(rule.state())
        np.testing.assert_array_equal(back.predict(x), rule.predict(x))
    with pytest.raises(ValueError, match="unknown classifier kind"):
        classifier_from_state({"kind": "svm"})


def test_bad_classifier_input_is_refused():
    with pytest.raises(ValueError, match="3 networks but 2 labels"):
        Threshold.best_f1([1.0, 2.0, 3.0], [True, False])
    with pytest.raises(ValueError, match="finite"):
        Threshold.best_f1([1.0, np.nan], [True, False])
    with pytest.raises(ValueError, match="coordinates"):
        Orthant.fit(np.zeros((4, 1)), [True] * 4, d=2)


def test_le_statistics():
    stats = le_statistics([[0.1, -0.3], [-0.5, -0.7, -0.9]])
    np.testing.assert_allclose(stats["mean_le"], [-0.1, -0.7])
    np.testing.assert_allclose(stats["max_le"], [0.1, -0.5])

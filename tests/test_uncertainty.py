import numpy as np
import pytest

from core import uncertainty as u


def votes(*columns):
    """Build (draw, digit) labels from per-digit lists of votes."""
    return np.array(columns).T


def test_vote_counts_and_mode():
    labels = votes([1, 1, 2, 2, 2], [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(u.vote_counts(labels)[0], [0, 2, 3, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(u.mode_label(labels), [2, 0])


def test_chi_square_hand_computed():
    # 100 draws: all agree -> statistic 900 -> uncertainty 0; uniform -> statistic 0 -> uncertainty 1
    agree = np.full(100, 7)
    uniform = np.repeat(np.arange(10), 10)
    split = np.repeat([3, 5], 50)  # counts 50, 50 and eight 0s: sum (c - 10)^2 / 10 = (1600 * 2 + 800) / 10 = 400
    out = u.chi_square(votes(agree, uniform, split))
    np.testing.assert_allclose(out, [0.0, 1.0, 1 - 400 / 900])


def test_post_chi_square_reproduces_quirks():
    # 99 zeros and one 9: mean 0.09, sum of squares 0.99 * 0.09^2 * 100 ... = 8.019; / 0.09 = 89.1 (x10 for scale)
    labels = votes(np.r_[np.zeros(99), 9], np.full(100, 4), np.zeros(100))
    out = u.post_chi_square(labels)
    values = np.r_[np.zeros(99), 9]
    assert out[0] == pytest.approx(((values - values.mean()) ** 2).sum() / values.mean())
    assert out[0] == pytest.approx(891.0)
    assert out[1] == 0.0
    assert out[2] == 0.0  # the post's NaN case (all zeros): all draws agree


def test_entropy_and_mutual_information():
    p = np.array([[1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0], np.full(10, 0.1)])
    np.testing.assert_allclose(u.predictive_entropy(p), [0.0, np.log(10)])
    # all draws certain but disagreeing -> expected entropy 0, MI = total entropy
    np.testing.assert_allclose(u.mutual_information(p, np.zeros(2)), [0.0, np.log(10)])
    # all draws uniform -> aleatoric only, MI = 0
    np.testing.assert_allclose(u.mutual_information(p[1:], np.array([np.log(10)])), [0.0], atol=1e-12)


def test_variation_ratio():
    np.testing.assert_allclose(u.variation_ratio(votes([1, 1, 1, 2], [3, 3, 3, 3])), [0.25, 0.0])


def test_measure_by_name_and_unknown():
    labels = votes([1, 1, 2, 2], [0, 0, 0, 0])
    p = np.full((2, 10), 0.1)
    for name in u.MEASURES:
        assert u.measure(name, labels, p, np.zeros(2)).shape == (2,)
    with pytest.raises(ValueError, match="unknown uncertainty measure 'x'"):
        u.measure("x", labels, p, np.zeros(2))


def test_auroc():
    assert u.auroc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0])) == 1.0
    assert u.auroc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([1, 1, 0, 0])) == 0.0
    assert u.auroc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5
    assert np.isnan(u.auroc(np.array([0.5]), np.array([0])))


def test_referral_curve():
    unc = np.array([0.9, 0.1, 0.8, 0.2])
    correct = np.array([0, 1, 0, 1])
    _, acc = u.referral_curve(unc, correct, np.array([0.0, 0.25, 0.5]))
    np.testing.assert_allclose(acc, [0.5, 2 / 3, 1.0])

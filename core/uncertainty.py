"""Uncertainty of a posterior predictive, from per-draw labels or probabilities. NumPy/SciPy only.

Conventions: ``labels`` is (draw, digit) integer class votes, ``probability`` is (digit, class) the
mean predictive probability over draws, ``expected_entropy`` is (digit,) the mean over draws of each
draw's predictive entropy. Every measure returns (digit,), oriented so that higher = more uncertain,
except :func:`post_chi_square`, which reproduces the post's statistic as it was.

``scipy.stats`` is imported where it is used: it takes 0.8 s to import, and the dashboard, which
reads the measures stored in a run file, needs only the NumPy parts of this module.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MEASURES",
    "auroc",
    "chi_square",
    "defined_measures",
    "least_confidence",
    "mode_label",
    "mutual_information",
    "post_chi_square",
    "predictive_entropy",
    "referral_curve",
    "variation_ratio",
    "vote_counts",
]

N_CLASSES = 10


def vote_counts(labels: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """(draw, digit) labels -> (digit, class) number of draws voting for each class."""
    labels = np.asarray(labels)
    counts = np.zeros((labels.shape[1], n_classes), dtype=np.int64)
    np.add.at(counts, (np.broadcast_to(np.arange(labels.shape[1]), labels.shape), labels), 1)
    return counts


def mode_label(labels: np.ndarray) -> np.ndarray:
    """(draw, digit) -> (digit,) the most frequent label (the lowest class on ties), as in the post."""
    return vote_counts(labels).argmax(axis=1)


def chi_square(labels: np.ndarray) -> np.ndarray:
    """Chi-square of the per-class vote counts against uniform, turned so that higher = more uncertain.

    With n draws and K classes the statistic runs from 0 (votes spread evenly: most uncertain) to
    n (K - 1) (all votes in one class). Returned as ``1 - statistic / (n (K - 1))``, in [0, 1]:
    0 when every draw agrees, 1 when the votes are uniform.
    """
    from scipy import stats

    counts = vote_counts(labels)
    n, k = counts.sum(axis=1), counts.shape[1]
    statistic = stats.chisquare(counts, axis=1).statistic
    return 1.0 - statistic / (n * (k - 1))


def post_chi_square(labels: np.ndarray) -> np.ndarray:
    """The post's statistic: ``scipy.stats.chisquare`` of the sampled label *values* of each digit.

    ``sum((x - mean)^2) / mean`` over draws: 0 when all draws agree, larger with disagreement, but
    also with which digits disagree (99 zeros and a 9 give about 891). When every draw says 0 the
    post got NaN (0 / 0) and dropped the digit; here that case is 0, since all draws agree.
    """
    values = np.asarray(labels, dtype=np.float64)
    mean = values.mean(axis=0)
    ss = ((values - mean) ** 2).sum(axis=0)
    return np.divide(ss, mean, out=np.zeros_like(mean), where=mean > 0)


def predictive_entropy(probability: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the mean predictive distribution: total uncertainty. (digit, class) -> (digit,)"""
    from scipy import stats

    return stats.entropy(np.asarray(probability, dtype=np.float64), axis=1)


def mutual_information(probability: np.ndarray, expected_entropy: np.ndarray) -> np.ndarray:
    """Mutual information between label and weights (nats): the epistemic part of the entropy.

    ``H[mean_d p_d] - mean_d H[p_d]``; clipped at 0 against float32 rounding.
    """
    return np.maximum(predictive_entropy(probability) - np.asarray(expected_entropy, dtype=np.float64), 0.0)


def variation_ratio(labels: np.ndarray) -> np.ndarray:
    """Share of draws that disagree with the modal label: 0 (all agree) to 1 - 1/K."""
    counts = vote_counts(labels)
    return 1.0 - counts.max(axis=1) / counts.sum(axis=1)


def least_confidence(probability: np.ndarray) -> np.ndarray:
    """One minus the largest mean class probability (the max-softmax probability of a single network):
    0 when one class takes all, up to 1 - 1/K. (digit, class) -> (digit,)"""
    return 1.0 - np.asarray(probability, dtype=np.float64).max(axis=1)


MEASURES = {
    "chi_square": "Chi-square of votes vs uniform (1 = uniform votes)",
    "post_chi_square": "The post's chi-square of label values",
    "entropy": "Predictive entropy (nats)",
    "mutual_information": "Mutual information (nats)",
    "variation_ratio": "Variation ratio",
    "least_confidence": "Least confidence (1 − top class probability)",
}
"""Measure key -> axis label, for ranking and plotting."""

SPREAD_MEASURES = ("chi_square", "post_chi_square", "mutual_information", "variation_ratio")
"""The measures of the spread between draws (their votes, or their probabilities against their mean):
a single network, a point estimate, has none, and they are not defined for it."""


def defined_measures(n_draws: int) -> list[str]:
    """The keys of :data:`MEASURES` defined for a predictive of ``n_draws`` draws (networks): every one
    for two or more, only those of the mean probabilities for one."""
    return [m for m in MEASURES if n_draws > 1 or m not in SPREAD_MEASURES]


def measure(name: str, labels: np.ndarray, probability: np.ndarray, expected_entropy: np.ndarray) -> np.ndarray:
    """Compute the measure ``name`` (a key of :data:`MEASURES`) for every digit."""
    if name == "chi_square":
        return chi_square(labels)
    if name == "post_chi_square":
        return post_chi_square(labels)
    if name == "entropy":
        return predictive_entropy(probability)
    if name == "mutual_information":
        return mutual_information(probability, expected_entropy)
    if name == "variation_ratio":
        return variation_ratio(labels)
    if name == "least_confidence":
        return least_confidence(probability)
    raise ValueError(f"unknown uncertainty measure {name!r}; choose one of {', '.join(MEASURES)}")


def auroc(uncertainty: np.ndarray, is_error: np.ndarray) -> float:
    """Area under the ROC curve of ``uncertainty`` as a score for telling errors from correct
    predictions (ties count one half): 1 = every error more uncertain than every correct digit."""
    is_error = np.asarray(is_error, dtype=bool)
    n_err, n_ok = is_error.sum(), (~is_error).sum()
    if n_err == 0 or n_ok == 0:
        return float("nan")
    from scipy import stats

    u = stats.mannwhitneyu(np.asarray(uncertainty)[is_error], np.asarray(uncertainty)[~is_error]).statistic
    return float(u / (n_err * n_ok))


def referral_curve(uncertainty: np.ndarray, correct: np.ndarray, fractions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy on the digits kept when the most uncertain fraction is referred (set aside).

    returns (fractions referred, accuracy of the rest), each (n,)
    """
    if fractions is None:
        fractions = np.linspace(0.0, 0.5, 51)
    order = np.argsort(-np.asarray(uncertainty), kind="stable")  # most uncertain first
    correct_sorted = np.asarray(correct, dtype=float)[order]
    n = len(order)
    kept_from = np.minimum(np.round(fractions * n).astype(int), n - 1)
    # accuracy of correct_sorted[k:] for each k, from a reversed cumulative sum
    tail_correct = np.cumsum(correct_sorted[::-1])[::-1]
    return fractions, tail_correct[kept_from] / (n - kept_from)

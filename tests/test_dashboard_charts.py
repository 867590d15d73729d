"""dashboard.inspector_charts: the columns each chart shows, and that showing a digit swaps them in place."""

from __future__ import annotations

import numpy as np

from dashboard.inspector_charts import SpreadChart, VoteChart, spread_columns, vote_columns
from dashboard.plots import BLUE, ORANGE


def test_vote_columns_count_draws_per_class_and_mark_the_truth():
    columns = vote_columns(np.array([3, 3, 3, 5]), true_label=5)
    assert columns["draws"] == [0, 0, 0, 3, 0, 1, 0, 0, 0, 0]
    assert columns["color"][5] == ORANGE and columns["color"].count(ORANGE) == 1


def test_spread_columns_hold_quantiles_per_class():
    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=100)
    columns = spread_columns(probs, true_label=4)
    assert all(len(v) == 30 for v in columns.values())
    np.testing.assert_allclose(columns["y0"][:10], np.quantile(probs, 0.025, axis=0))
    np.testing.assert_allclose(columns["y1"][:10], np.quantile(probs, 0.975, axis=0))
    np.testing.assert_allclose(columns["y0"][10:20], np.quantile(probs, 0.25, axis=0))
    np.testing.assert_allclose(columns["y1"][10:20], np.quantile(probs, 0.75, axis=0))
    np.testing.assert_allclose(columns["y0"][20:], np.median(probs, axis=0))
    assert columns["color"][14] == ORANGE and columns["color"][13] == BLUE


def test_showing_a_digit_replaces_the_data_in_the_same_figure():
    votes, spread = VoteChart(), SpreadChart()
    figure, source = votes.figure, votes.source
    votes.show(np.array([1] * 15 + [7] * 5), true_label=7)
    assert votes.figure is figure and votes.source is source
    assert source.data["draws"][1] == 15 and votes.figure.y_range.end == 20
    spread.show(np.full((100, 10), 0.1), true_label=0)
    assert spread.figure.title.text == "Class probabilities over 100 draws"
    np.testing.assert_allclose(spread.source.data["y0"], 0.1)

"""dashboard.inspector_charts: the columns each chart shows, and that showing a digit swaps them in place."""

from __future__ import annotations

import numpy as np

from dashboard.inspector_charts import SpreadChart, VoteChart, spread_columns, true_columns, vote_columns
from dashboard.plots import BLUE, ORANGE


def test_vote_columns_count_draws_per_class_and_run():
    columns = vote_columns([np.array([3, 3, 3, 5])], ["a"])
    assert columns["draws"] == [0, 0, 0, 3, 0, 1, 0, 0, 0, 0]
    assert columns["x"] == list(range(10)) and set(columns["color"]) == {BLUE}
    two = vote_columns([np.array([3, 3]), np.array([4, 4, 4])], ["a", "b"])
    assert len(two["x"]) == 20 and two["draws"][13] == 0 and two["draws"][14] == 3
    assert two["x"][3] < 3 < two["x"][13] and two["color"][10:] == [ORANGE] * 10 and two["run"][10] == "b"


def test_spread_columns_hold_quantiles_per_class():
    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=100)
    columns = spread_columns([probs], ["a"])
    assert all(len(v) == 30 for v in columns.values())
    np.testing.assert_allclose(columns["y0"][:10], np.quantile(probs, 0.025, axis=0))
    np.testing.assert_allclose(columns["y1"][:10], np.quantile(probs, 0.975, axis=0))
    np.testing.assert_allclose(columns["y0"][10:20], np.quantile(probs, 0.25, axis=0))
    np.testing.assert_allclose(columns["y1"][10:20], np.quantile(probs, 0.75, axis=0))
    np.testing.assert_allclose(columns["y0"][20:], np.median(probs, axis=0))
    assert columns["color"][14] == BLUE
    two = spread_columns([probs, probs], ["a", "b"])
    assert len(two["x0"]) == 60 and two["color"][44] == ORANGE and two["x0"][4] < 4 < two["x0"][34]


def test_the_true_class_is_marked_even_without_votes():
    votes = VoteChart()
    votes.show([np.array([1] * 20)], true_label=7, names=["a"])
    assert votes.source.data["draws"][7] == 0  # no bar for the true class...
    assert votes.truth.data == true_columns(7)  # ...but its column is shaded
    assert votes.figure.xaxis[0].major_label_overrides == {7: "7 true"}


def test_showing_a_digit_replaces_the_data_in_the_same_figure():
    votes, spread = VoteChart(), SpreadChart()
    figure, source = votes.figure, votes.source
    votes.show([np.array([1] * 15 + [7] * 5)], 7, ["a"])
    assert votes.figure is figure and votes.source is source
    assert source.data["draws"][1] == 15 and votes.figure.y_range.end == 20 and not votes.legend.visible
    votes.show([np.array([1] * 20), np.array([2] * 20)], 2, ["a", "b"])
    assert votes.legend.visible and votes.bars.glyph.width < 0.5
    spread.show([np.full((100, 10), 0.1)], 0, ["a"])
    assert spread.figure.title.text == "Class probabilities over 100 draws"
    np.testing.assert_allclose(spread.source.data["y0"], 0.1)

"""The Calibration and Shift tabs as a person sees them, on two synthetic runs compared."""

from __future__ import annotations

import pytest

from dashboard.views import CSS
from tests.browser.test_dashboard_browser import figure, open_app, text

pytestmark = pytest.mark.browser


def test_calibration_tab_shows_the_reliability_diagram_and_says_which_way_each_run_errs(page, server):
    open_app(page, f"{server}?run=mlp-hier&compare=cnn-normal&tab=calibration")
    summary = text(page.locator(f".{CSS.CALIBRATION_SUMMARY}"))
    assert "mlp-hier is " in summary and "cnn-normal is " in summary and "confident" in summary
    table = text(page.locator(f".{CSS.CALIBRATION_TABLE}"))
    assert "ECE" in table and "NLL" in table and "Brier" in table and "cnn-normal" in table
    diagram = figure(page, "Reliability")
    assert diagram["width"] > 200 and len(diagram["data"]) >= 4  # diagonal, bars, gap, counts, compared bars


def test_shift_tab_draws_both_runs_against_rotation_and_translation(page, server):
    open_app(page, f"{server}?run=mlp-hier&compare=cnn-normal&tab=shift&measure=entropy")
    assert "Shifted digits" in text(page.locator(f".{CSS.SHIFT_SUMMARY}"))
    for title in ("Accuracy against rotation", "ECE against translation", "Predictive entropy against rotation"):
        curves = [columns for columns in figure(page, title)["data"] if "amount" in columns]
        amounts = {tuple(c["amount"]) for c in curves}
        assert len(curves) >= 4 and len(amounts) == 1  # each run's line and points, over the same amounts
    foreign = text(page.locator(f".{CSS.FOREIGN_TABLE}"))
    assert "letters" in foreign and "AUROC" in foreign and "mlp-hier" in foreign and "cnn-normal" in foreign
    assert page.locator(".thumb").count() > 0  # the foreign galleries

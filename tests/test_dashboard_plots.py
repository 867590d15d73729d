"""dashboard.plots: the data inside each element, inspected without rendering."""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import numpy as np
import pytest
import xarray as xr

from dashboard import plots, stats


def elbo(n: int = 1000) -> xr.DataArray:
    values = -(1e4 * np.exp(-np.arange(n) / 100) + 100.0)
    return xr.DataArray(values.astype(np.float32), coords={"iteration": np.arange(1, n + 1)}, dims="iteration")


@pytest.mark.parametrize("window, start", [(1, 1), (50, 1), (10, 901), (200, 500)])
def test_elbo_curve_length_after_smoothing_and_start(window, start):
    curve = plots.elbo_curve(elbo(1000), window=window, start=start)
    assert len(curve) == (1000 - start + 1) - window + 1
    iterations = curve.dimension_values("iteration")
    assert iterations[0] == start + window - 1 and iterations[-1] == 1000
    assert curve.vdims[0].label == "ELBO (nats)"


def test_elbo_curve_is_thinned_to_max_points():
    curve = plots.elbo_curve(elbo(1000), window=1, max_points=300)
    assert len(curve) <= 300
    assert curve.dimension_values("iteration")[0] == 1


def test_elbo_curve_log_scale_plots_minus_elbo():
    data = elbo(100)
    data[10] = 5.0  # a positive ELBO cannot go on a log axis of -ELBO
    curve = plots.elbo_curve(data, log_scale=True)
    assert len(curve) == 99
    assert (curve.dimension_values(1) > 0).all()
    assert curve.opts.get().kwargs["logy"] is True
    assert "log" in curve.vdims[0].label


def test_elbo_plot_overlays_runs_and_marks_nonfinite_values():
    damaged = elbo(100)
    damaged[[9, 10, 11, 49]] = [np.nan, np.inf, -np.inf, np.nan]
    overlay = plots.elbo_plot({"a": elbo(100), "b": damaged}, window=5, start=1, log_scale=False)
    curve_a, curve_b, marks = overlay.values()
    assert [curve_a.label, curve_b.label] == ["a", "b"]
    assert curve_b.opts.get().kwargs["color"] == plots.ORANGE
    np.testing.assert_array_equal(marks.dimension_values(0), [10, 50])
    finite = curve_b.dimension_values("elbo")
    assert np.isfinite(finite).all() and len(finite) == 96  # one NaN no longer blanks every later point
    assert "trailing mean of 5 iterations" in overlay.opts.get().kwargs["title"]


def test_hyperprior_histogram_marks_mean_and_hdi():
    draws = np.random.default_rng(0).lognormal(-1, 0.1, 500)
    overlay = plots.hyperprior_histogram({"run": draws}, "dense_1.W_sd")
    span, hist, line = overlay.values()
    assert isinstance(hist, hv.Histogram) and hist.kdims[0].name == "dense_1.W_sd"
    assert line.data == pytest.approx(draws.mean())
    assert (span.data[0], span.data[1]) == pytest.approx(stats.hdi(draws))
    widths = np.diff(hist.edges)
    assert (hist.dimension_values(1) * widths).sum() == pytest.approx(1.0)  # a density


def test_hyperprior_histograms_of_two_runs_share_bins_and_colours():
    rng = np.random.default_rng(0)
    overlay = plots.hyperprior_histogram({"a": rng.lognormal(-1, 0.1, 500), "b": rng.lognormal(-2, 0.1, 300)}, "x_sd")
    hists = [e for e in overlay.values() if isinstance(e, hv.Histogram)]
    assert [h.label for h in hists] == ["a", "b"]
    np.testing.assert_array_equal(hists[0].edges, hists[1].edges)
    assert [h.opts.get().kwargs["color"] for h in hists] == list(plots.RUN_COLORS)
    assert "(a)" in overlay.opts.get().kwargs["title"] and "(b)" in overlay.opts.get().kwargs["title"]


def test_hyperprior_forest_one_row_per_hyperprior_in_order():
    posterior = {"dense_1.W_sd": np.full(10, 1.0), "dense_1.b_sd": np.full(10, 2.0), "dense_2.W_sd": np.full(10, 3.0)}
    overlay = plots.hyperprior_forest({"run": posterior})
    segments, dots = overlay.values()
    ticks = overlay.opts.get().kwargs["yticks"]
    assert [name for _, name in sorted(ticks, reverse=True)] == list(posterior)  # top to bottom
    np.testing.assert_allclose(dots.dimension_values(0), [1.0, 2.0, 3.0])
    assert len(segments) == 3


def test_hyperprior_forest_of_two_runs_offsets_their_bars_in_one_row():
    a = {"dense_1.W_sd": np.full(10, 1.0), "dense_2.W_sd": np.full(10, 3.0)}
    b = {"dense_1.W_sd": np.full(10, 2.0)}
    seg_a, dots_a, seg_b, dots_b = plots.hyperprior_forest({"a": a, "b": b}).values()
    assert seg_a.label == "a" and seg_b.label == "b"
    row_a, row_b = dots_a.dimension_values(1)[0], dots_b.dimension_values(1)[0]
    assert row_a - row_b == pytest.approx(0.3) and round(row_a) == round(row_b)  # same row, a above b


def test_weight_histograms_count_one_run_on_integer_ticks():
    rng = np.random.default_rng(0)
    summary = stats.weight_summary(rng.normal(size=32), rng.uniform(0.01, 1, 32))
    layout = plots.weight_histograms({"run": summary}, "conv_1.b")
    hists = [overlay.values()[0] for overlay in layout]
    assert [h.kdims[0].name for h in hists] == ["mean", "sd", "log10_snr"]
    assert all(h.dimension_values(1).sum() == 32 and len(h) == 6 for h in hists)  # 6 bins for 32 values
    ticker = layout.values()[0].opts.get().kwargs["yticks"]
    assert ticker.min_interval == 1


def test_weight_histograms_of_two_runs_are_densities():
    rng = np.random.default_rng(0)
    small = stats.weight_summary(rng.normal(size=100), rng.uniform(0.01, 1, 100))
    large = stats.weight_summary(rng.normal(size=10_000), rng.uniform(0.01, 1, 10_000))
    layout = plots.weight_histograms({"a": small, "b": large}, "dense_1.W")
    for overlay in layout:
        for hist in overlay.values():
            assert hist.vdims[0].name == "density"
            assert (hist.dimension_values(1) * np.diff(hist.edges)).sum() == pytest.approx(1.0)


def test_weight_scatter_draws_each_runs_sample():
    rng = np.random.default_rng(0)
    summaries = {r: stats.weight_summary(rng.normal(size=9000), rng.uniform(0.01, 1, 9000)) for r in ("a", "b")}
    a, b = plots.weight_scatter(summaries, "dense_1.W").values()
    assert len(a) == len(b) == 4000 and (a.label, b.label) == ("a", "b")


def test_confusion_heatmap_colours_errors_by_their_share_and_sets_the_diagonal_apart():
    counts = stats.confusion_counts(np.array([0] * 963 + [0] * 7 + [1] * 10), np.array([0] * 963 + [1] * 7 + [1] * 10))
    overlay = plots.confusion_heatmap(counts, "Confusion matrix of x")
    heat, labels = overlay.values()
    cells = {(p, t): (s, c) for p, t, s, c in zip(*(heat.dimension_values(i) for i in range(4)))}
    assert len(cells) == 100
    assert np.isnan(cells[("0", "0")][0]) and cells[("0", "0")][1] == 963  # the diagonal: no colour scale
    assert cells[("1", "0")] == (pytest.approx(100 * 7 / 970), 7)  # an error: its share of its true class
    options = heat.opts.get().kwargs
    assert options["colorbar"] is True and options["clipping_colors"]["NaN"] == plots.DIAGONAL_COLOR
    assert options["clim"] == (0.0, pytest.approx(100 * 7 / 970))
    assert 0 not in labels.dimension_values("count") and 963 in labels.dimension_values("count")
    assert [d.name for d in heat.kdims] == ["predicted", "true"]


def test_per_class_bars_keep_the_legend_off_the_bars():
    acc = stats.per_class_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    bars = plots.per_class_bars({"a": acc, "b": acc})
    assert len(bars) == 20 and bars.dimension_values("accuracy")[0] == 50.0
    options = bars.opts.get().kwargs
    assert options["show_legend"] is True and options["legend_position"] == "right"  # outside the frame
    assert options["cmap"] == {"a": plots.BLUE, "b": plots.ORANGE}
    assert plots.per_class_bars({"z": acc, "a": acc}).get_dimension("run").values == ["z", "a"]  # chosen run first


def test_measure_histograms_are_densities_per_group_on_the_given_range():
    rng = np.random.default_rng(0)
    values = rng.uniform(size=400)
    correct = values < 0.7
    correct_hist, wrong_hist = plots.measure_histograms(values, correct, "label").values()
    for hist in (correct_hist, wrong_hist):
        assert (hist.dimension_values(1) * np.diff(hist.edges)).sum() == pytest.approx(1.0)
    assert wrong_hist.dimension_values(1)[: int(0.6 * 40)].sum() == 0  # no error below 0.7
    assert f"({int(correct.sum())})" in correct_hist.label
    wide, _ = plots.measure_histograms(values, correct, "label", limits=(-1.0, 2.0)).values()
    assert (wide.edges[0], wide.edges[-1]) == (-1.0, 2.0)


def test_referral_plot_in_percent_one_curve_per_run():
    a, b = plots.referral_plot({"a": (np.array([0.0, 0.5]), np.array([0.9, 1.0])),
                                "b": (np.array([0.0, 0.5]), np.array([0.8, 0.9]))}).values()
    np.testing.assert_allclose(a.dimension_values(0), [0, 50])
    np.testing.assert_allclose(a.dimension_values(1), [90, 100])
    assert b.label == "b" and b.opts.get().kwargs["color"] == plots.ORANGE


def test_plots_module_does_not_import_panel():
    source = Path(plots.__file__).read_text().splitlines()
    assert not any(line.startswith(("import panel", "from panel")) for line in source)

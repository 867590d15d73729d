"""dashboard.plots: the data inside each element, inspected without rendering."""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import numpy as np
import pytest
import xarray as xr

from dashboard import plots


def elbo(n: int = 1000) -> xr.DataArray:
    values = -(1e4 * np.exp(-np.arange(n) / 100) + 100.0)
    return xr.DataArray(values.astype(np.float32), coords={"iteration": np.arange(1, n + 1)}, dims="iteration")


def test_smooth_is_a_trailing_mean_over_full_windows():
    out = plots.smooth(np.arange(10.0), 4)
    assert len(out) == 7
    np.testing.assert_allclose(out, np.arange(1.5, 8.5))
    assert len(plots.smooth(np.arange(3.0), 50)) == 1  # window cut to the data


def test_smooth_leaves_nonfinite_values_out_instead_of_spreading_them():
    values = np.arange(10.0)
    values[3], values[7] = np.nan, np.inf
    out = plots.smooth(values, 2)
    np.testing.assert_allclose(out, [0.5, 1.5, 2.0, 4.0, 4.5, 5.5, 6.0, 8.0, 8.5])
    gap = plots.smooth(np.array([1.0, np.nan, np.nan, 4.0]), 2)
    assert np.isnan(gap[1]) and gap[0] == 1.0 and gap[2] == 4.0  # a window with nothing finite is a gap
    assert np.isnan(plots.smooth(np.array([1.0, -np.inf]), 1)[1])


def test_nonfinite_elbo_values_are_found_and_grouped():
    history = elbo(100)
    history[[9, 10, 11, 49]] = [np.nan, np.inf, -np.inf, np.nan]
    iterations = plots.nonfinite_iterations(history)
    np.testing.assert_array_equal(iterations, [10, 11, 12, 50])
    assert plots.nonfinite_runs(iterations) == [(10, 12), (50, 50)]
    assert plots.nonfinite_runs(iterations[:0]) == []
    marks = plots.nonfinite_marks([(10, 12), (50, 50)])
    np.testing.assert_array_equal(marks.dimension_values(0), [10, 50])
    curve = plots.elbo_curve(history, window=5)
    finite = curve.dimension_values("elbo")
    assert np.isfinite(finite).all() and len(finite) == 96  # one NaN no longer blanks every later point


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


def test_hdi_holds_the_mass_in_the_narrowest_interval():
    x = np.random.default_rng(0).normal(size=20_000)
    lo, hi = plots.hdi(x, 0.94)
    assert np.mean((x >= lo) & (x <= hi)) == pytest.approx(0.94, abs=0.002)
    assert lo == pytest.approx(-1.88, abs=0.06) and hi == pytest.approx(1.88, abs=0.06)
    skewed = np.random.default_rng(1).exponential(size=20_000)
    assert plots.hdi(skewed)[0] < 0.01  # the narrowest interval of a decreasing density starts at 0


def test_hyperprior_histogram_marks_mean_and_hdi():
    draws = np.random.default_rng(0).lognormal(-1, 0.1, 500)
    overlay = plots.hyperprior_histogram(draws, "dense_1.W_sd")
    span, hist, line = overlay.values()
    assert isinstance(hist, hv.Histogram) and hist.kdims[0].name == "dense_1.W_sd"
    assert line.data == pytest.approx(draws.mean())
    assert (span.data[0], span.data[1]) == pytest.approx(plots.hdi(draws))
    widths = np.diff(hist.edges)
    assert (hist.dimension_values(1) * widths).sum() == pytest.approx(1.0)  # a density


def test_hyperprior_forest_one_row_per_hyperprior_in_order():
    posterior = {"dense_1.W_sd": np.full(10, 1.0), "dense_1.b_sd": np.full(10, 2.0), "dense_2.W_sd": np.full(10, 3.0)}
    overlay = plots.hyperprior_forest(posterior)
    segments, dots = overlay.values()
    ticks = overlay.opts.get().kwargs["yticks"]
    assert [name for _, name in sorted(ticks, reverse=True)] == list(posterior)  # top to bottom
    np.testing.assert_allclose(dots.dimension_values(0), [1.0, 2.0, 3.0])
    assert len(segments) == 3


def test_weight_sample_subsamples_large_tensors_keeping_pairs():
    mean = np.arange(200_000, dtype=np.float32).reshape(400, 500)
    sd = mean + 0.5
    m, s = plots.weight_sample(mean, sd, max_n=1000)
    assert m.shape == s.shape == (1000,)
    np.testing.assert_array_equal(s, m + 0.5)
    assert len(np.unique(m)) == 1000
    small = plots.weight_sample(np.ones(10), np.ones(10), max_n=1000)
    assert small[0].shape == (10,)


def test_weight_histograms_have_mean_sd_and_log_snr():
    rng = np.random.default_rng(0)
    mean, sd = rng.normal(size=5000), rng.uniform(0.01, 1, 5000)
    layout = plots.weight_histograms(mean, sd, "dense_1.W")
    names = [h.kdims[0].name for h in layout]
    assert names == ["mean", "sd", "log10_snr"]
    assert all(h.dimension_values(1).sum() == 5000 for h in layout)
    snr = layout[2]
    assert snr.edges[0] == pytest.approx(np.log10(np.abs(mean) / sd).min())


def test_confusion_counts_and_heatmap_cells():
    true = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 2, 0])
    counts = plots.confusion_counts(true, pred)
    assert counts.sum() == 6 and counts[0, 1] == 1 and counts[2, 2] == 2 and counts[2, 0] == 1
    heat, labels = plots.confusion_heatmap(counts).values()
    assert 0 not in labels.dimension_values("count")  # empty cells stay blank
    cells = {(p, t): c for p, t, c in zip(*(heat.dimension_values(i) for i in range(3)))}
    assert len(cells) == 100 and cells[("1", "0")] == 1 and cells[("0", "2")] == 1
    assert [d.name for d in heat.kdims] == ["predicted", "true"]


def test_per_class_accuracy_and_bars():
    true = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    acc = plots.per_class_accuracy(true, pred)
    assert acc[0] == 0.5 and acc[1] == 1.0 and np.isnan(acc[5])
    bars = plots.per_class_bars({"a": acc, "b": acc})
    assert len(bars) == 20
    assert bars.dimension_values("accuracy")[0] == 50.0


def test_measure_histograms_are_densities_per_group():
    rng = np.random.default_rng(0)
    values = rng.uniform(size=400)
    correct = values < 0.7
    correct_hist, wrong_hist = plots.measure_histograms(values, correct, "label").values()
    for hist in (correct_hist, wrong_hist):
        assert (hist.dimension_values(1) * np.diff(hist.edges)).sum() == pytest.approx(1.0)
    assert wrong_hist.dimension_values(1)[: int(0.6 * 40)].sum() == 0  # no error below 0.7
    assert f"({int(correct.sum())})" in correct_hist.label


def test_referral_plot_in_percent():
    curve = plots.referral_plot(np.array([0.0, 0.5]), np.array([0.9, 1.0]))
    np.testing.assert_allclose(curve.dimension_values(0), [0, 50])
    np.testing.assert_allclose(curve.dimension_values(1), [90, 100])


def test_plots_module_does_not_import_panel():
    source = Path(plots.__file__).read_text().splitlines()
    assert not any(line.startswith(("import panel", "from panel")) for line in source)

"""dashboard.stats: what the views derive from a run's arrays, on hand-made arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dashboard import stats


def elbo(n: int = 1000) -> xr.DataArray:
    values = -(1e4 * np.exp(-np.arange(n) / 100) + 100.0)
    return xr.DataArray(values.astype(np.float32), coords={"iteration": np.arange(1, n + 1)}, dims="iteration")


def test_smooth_is_a_trailing_mean_over_full_windows():
    out = stats.smooth(np.arange(10.0), 4)
    assert len(out) == 7
    np.testing.assert_allclose(out, np.arange(1.5, 8.5))
    assert len(stats.smooth(np.arange(3.0), 50)) == 1  # window cut to the data


def test_smooth_leaves_nonfinite_values_out_instead_of_spreading_them():
    values = np.arange(10.0)
    values[3], values[7] = np.nan, np.inf
    out = stats.smooth(values, 2)
    np.testing.assert_allclose(out, [0.5, 1.5, 2.0, 4.0, 4.5, 5.5, 6.0, 8.0, 8.5])
    gap = stats.smooth(np.array([1.0, np.nan, np.nan, 4.0]), 2)
    assert np.isnan(gap[1]) and gap[0] == 1.0 and gap[2] == 4.0  # a window with nothing finite is a gap
    assert np.isnan(stats.smooth(np.array([1.0, -np.inf]), 1)[1])


def test_nonfinite_elbo_values_are_found_and_grouped():
    history = elbo(100)
    history[[9, 10, 11, 49]] = [np.nan, np.inf, -np.inf, np.nan]
    iterations = stats.nonfinite_iterations(history)
    np.testing.assert_array_equal(iterations, [10, 11, 12, 50])
    assert stats.nonfinite_runs(iterations) == [(10, 12), (50, 50)]
    assert stats.nonfinite_runs(iterations[:0]) == []


def test_elbo_magnitude_and_scale_ratio_of_two_histories():
    small, large = -np.full(100, 5e4), -np.full(100, 4e6)
    large[-1] = np.nan  # left out of the mean
    assert stats.elbo_magnitude(small) == 5e4 and stats.elbo_magnitude(large) == 4e6
    assert stats.scale_ratio(small, large) == stats.scale_ratio(large, small) == pytest.approx(80)
    assert np.isnan(stats.scale_ratio(small, np.full(10, np.nan)))


def test_settled_start_skips_the_initial_drop():
    history = elbo(1000).values  # from -10,100 down to about -100
    start = stats.elbo_settled_start(history, window=1)
    assert np.abs(history[start - 1]) <= 10 * stats.elbo_magnitude(history) < np.abs(history[start - 2])
    assert stats.elbo_settled_start(-np.full(500, 3e6)) == 1  # already there from the start


def test_hdi_holds_the_mass_in_the_narrowest_interval():
    x = np.random.default_rng(0).normal(size=20_000)
    lo, hi = stats.hdi(x, 0.94)
    assert np.mean((x >= lo) & (x <= hi)) == pytest.approx(0.94, abs=0.002)
    assert lo == pytest.approx(-1.88, abs=0.06) and hi == pytest.approx(1.88, abs=0.06)
    skewed = np.random.default_rng(1).exponential(size=20_000)
    assert stats.hdi(skewed)[0] < 0.01  # the narrowest interval of a decreasing density starts at 0


@pytest.mark.parametrize("n, bins", [(10, 5), (32, 6), (800, 29), (1_300_000, 50)])
def test_bins_follow_the_number_of_values(n, bins):
    assert stats.histogram_bins(n) == bins


def test_histogram_counts_finite_values_and_gives_a_density():
    values = np.concatenate([np.arange(32.0), [np.nan, np.inf]])
    hist = stats.histogram(values)
    assert len(hist.counts) == 6 and hist.total == 32 and hist.counts.dtype.kind == "i"
    assert (hist.density() * np.diff(hist.edges)).sum() == pytest.approx(1.0)
    assert stats.histogram(np.array([np.nan])).density().sum() == 0


def test_weight_sample_subsamples_large_tensors_keeping_pairs():
    mean = np.arange(200_000, dtype=np.float32).reshape(400, 500)
    sd = mean + 0.5
    m, s = stats.weight_sample(mean, sd, max_n=1000)
    assert m.shape == s.shape == (1000,)
    np.testing.assert_array_equal(s, m + 0.5)
    assert len(np.unique(m)) == 1000
    small = stats.weight_sample(np.ones(10), np.ones(10), max_n=1000)
    assert small[0].shape == (10,)


def test_weight_summary_histograms_every_weight_and_samples_a_few():
    rng = np.random.default_rng(0)
    mean, sd = rng.normal(size=(300, 200)), rng.uniform(0.01, 1, (300, 200))
    summary = stats.weight_summary(mean, sd, sample=500)
    assert summary.size == 60_000
    assert summary.mean.total == summary.sd.total == summary.log10_snr.total == 60_000
    assert len(summary.mean.counts) == 50
    assert summary.log10_snr.edges[0] == pytest.approx(np.log10(np.abs(mean) / sd).min())
    assert summary.sample_mean.shape == summary.sample_sd.shape == (500,)


def test_confusion_counts_and_per_class_accuracy():
    true = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 2, 0])
    counts = stats.confusion_counts(true, pred)
    assert counts.sum() == 6 and counts[0, 1] == 1 and counts[2, 2] == 2 and counts[2, 0] == 1
    acc = stats.per_class_accuracy(true, pred)
    assert acc[0] == 0.5 and acc[1] == 1.0 and acc[2] == pytest.approx(2 / 3) and np.isnan(acc[5])


def test_stats_module_imports_neither_holoviews_nor_panel():
    source = Path(stats.__file__).read_text().splitlines()
    assert not any(line.startswith(("import panel", "from panel", "import holoviews")) for line in source)

"""liftos.validation.refute: the panels the refutation refits run on, and the confounder
robustness value, checked without sampling."""

from __future__ import annotations

import numpy as np

from liftos.validation.refute import (
    PLACEBO,
    robustness_values,
    subset_windows,
    time_shuffled,
    twin_panel,
    with_placebo,
)


def test_the_placebo_is_real_spend_permuted_in_time(demo_panel):
    panel, _ = demo_panel
    placebo = with_placebo(panel, seed=3)
    assert placebo.channels == [*panel.channels, PLACEBO]
    values = placebo.spend[0, :, -1]
    source = [c for c in range(len(panel.channels))
              if np.array_equal(np.sort(panel.spend[0, :, c]), np.sort(values))]
    assert source and not np.array_equal(values, panel.spend[0, :, source[0]])
    assert np.array_equal(placebo.spend[:, :, :-1], panel.spend)  # the real channels untouched


def test_a_shuffled_channel_keeps_its_total_but_not_its_timing(demo_panel):
    panel, _ = demo_panel
    c = panel.channels.index("tv")
    shuffled = time_shuffled(panel, "tv", seed=1)
    assert shuffled.spend[..., c].sum() == panel.spend[..., c].sum()
    assert not np.array_equal(shuffled.spend[..., c], panel.spend[..., c])
    others = [i for i in range(len(panel.channels)) if i != c]
    assert np.array_equal(shuffled.spend[..., others], panel.spend[..., others])


def test_shifted_windows_are_80_percent_each_from_either_end(demo_panel):
    panel, _ = demo_panel
    first, last = subset_windows(panel, 0.8)
    weeks = len(panel.dates)
    assert len(first.dates) == len(last.dates) == round(0.8 * weeks)
    assert first.dates[0] == panel.dates[0] and last.dates[-1] == panel.dates[-1]


def test_the_twin_is_drawn_from_the_posterior_with_its_truth(synthetic_fit):
    twin, truth = twin_panel(synthetic_fit, draw=5)
    assert set(truth) == set(synthetic_fit.spec.channels)
    assert all(value > 0 for value in truth.values())
    assert twin.spend.shape == synthetic_fit.panel.spend.shape
    assert not np.allclose(twin.target, synthetic_fit.panel.target)


def test_robustness_values_are_shares_between_0_and_1(synthetic_fit):
    values = robustness_values(synthetic_fit)
    assert set(values) == set(synthetic_fit.spec.channels)
    assert all(0.0 <= v <= 1.0 for v in values.values())

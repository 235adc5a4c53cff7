"""Calendar features: weekly aggregation with a configurable week start, seasonality, events."""

from datetime import date, timedelta

import numpy as np
import polars as pl

from liftos.features.calendar import (
    event_dummies,
    fourier_features,
    level_steps,
    linear_trend,
    to_weekly,
)


def daily_frame(days=28, start=date(2024, 1, 1)):
    return pl.DataFrame({"date": [start + timedelta(days=i) for i in range(days)],
                         "spend": [1.0] * days, "price": [float(i) for i in range(days)]})


def test_week_start_is_configurable():
    monday, _ = to_weekly(daily_frame(), "date", sum_columns=["spend"], week_start="monday")
    sunday, dropped = to_weekly(daily_frame(), "date", sum_columns=["spend"], week_start="sunday")
    assert monday["date"].to_list()[0] == date(2024, 1, 1)
    assert all(d.weekday() == 6 for d in sunday["date"].to_list())
    assert monday["spend"].to_list() == [7.0] * 4
    assert dropped == [date(2023, 12, 31), date(2024, 1, 28)]  # partial edge weeks


def test_controls_are_averaged_not_summed():
    weekly, _ = to_weekly(daily_frame(), "date", sum_columns=["spend"], mean_columns=["price"])
    assert weekly["price"].to_list()[0] == np.mean(range(7))


def test_fourier_features_are_periodic():
    dates = np.array(["2024-01-01", "2025-01-01"], dtype="datetime64[D]")
    f = fourier_features(dates, order=2, period_days=366.0)
    np.testing.assert_allclose(f[0], f[1], atol=1e-12)
    assert f.shape == (2, 4)


def test_trend_and_events():
    weeks = np.array(["2024-01-01", "2024-01-08", "2024-01-15"], dtype="datetime64[D]")
    np.testing.assert_allclose(linear_trend(weeks), [0.0, 0.5, 1.0])
    later = np.array(["2024-01-22"], dtype="datetime64[D]")
    np.testing.assert_allclose(linear_trend(later, weeks[0], weeks[-1]), [1.5])
    flags = event_dummies(weeks, {"sale": ["2024-01-10"], "launch": ["2024-01-15", "2024-01-02"]})
    np.testing.assert_array_equal(flags, [[0, 1], [1, 0], [0, 1]])


def test_level_steps_ramp_between_knots_and_hold_the_last_level_after_the_data():
    steps = level_steps(np.array([0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 1.5]), knots=4)
    np.testing.assert_allclose(steps, [[0, 0, 0, 0], [0.5, 0, 0, 0], [1, 0, 0, 0],
                                       [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1],
                                       [1, 1, 1, 1]])


def test_a_moving_level_is_part_of_the_baseline_and_extends_past_the_fitted_weeks(demo_panel):
    """Its steps are baseline columns with their own prior sd, so every consumer of the baseline
    (predictions, refutations, recovery) sees the level; a design for later weeks built on the
    fitted one keeps the level where the data left it."""
    from liftos.config import Level
    from liftos.model.spec import ModelSpec, build_design

    panel, template = demo_panel
    fitted_weeks = panel.window(until=str(panel.dates[-9]))
    plain = ModelSpec(template, panel.channels, panel.controls, "revenue")
    moving = ModelSpec(template.model_copy(update={"level": Level(knots=6, step_sd=0.04)}),
                       panel.channels, panel.controls, "revenue")
    design = build_design(fitted_weeks, moving)
    names = [n for n in design.baseline_names if n.startswith("level")]
    assert names == [f"level[{panel.geos[0]}][{k}]" for k in range(6)]
    columns = [design.baseline_names.index(n) for n in names]
    np.testing.assert_allclose(design.baseline_prior_sigma[columns], 0.04)
    assert moving.n_parameters(1) == plain.n_parameters(1) + 6
    assert moving.signature(1, "nutpie") != plain.signature(1, "nutpie")
    later = build_design(panel, moving, reference=design).baseline_matrix()[:, columns]
    np.testing.assert_allclose(later[-8:], 1.0)
    assert later[0].sum() == 0.0

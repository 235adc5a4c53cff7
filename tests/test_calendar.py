"""Calendar features: weekly aggregation with a configurable week start, seasonality, events."""

from datetime import date, timedelta

import numpy as np
import polars as pl

from liftos.features.calendar import event_dummies, fourier_features, linear_trend, to_weekly


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

"""Calendar features on polars: daily-to-weekly aggregation, seasonality, trend and events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np
import polars as pl

WEEKDAY_NUMBER = {"monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5,
                  "saturday": 6, "sunday": 7}


def week_start_expr(date_column: str, week_start: str = "monday") -> pl.Expr:
    """The first day of the week containing each date, for a configurable first weekday."""
    start = WEEKDAY_NUMBER[week_start]
    offset = (pl.col(date_column).dt.weekday() - start + 7) % 7
    return pl.col(date_column) - pl.duration(days=offset)


def to_weekly(frame: pl.DataFrame, date_column: str, *, sum_columns: Sequence[str] = (),
              mean_columns: Sequence[str] = (), max_columns: Sequence[str] = (),
              by: Sequence[str] = (), week_start: str = "monday",
              complete_weeks_only: bool = True) -> tuple[pl.DataFrame, list[date]]:
    """Aggregate daily rows to weeks: spend and outcomes are summed, prices averaged, event
    flags maxed. Partial weeks at the edges (fewer than 7 days) are dropped by default, since a
    half week looks like a collapse in spend; their start dates are returned for reporting."""
    aggregations = (
        [pl.col(c).sum() for c in sum_columns]
        + [pl.col(c).mean() for c in mean_columns]
        + [pl.col(c).max() for c in max_columns]
        + [pl.len().alias("_days")]
    )
    weekly = (frame.with_columns(week_start_expr(date_column, week_start).alias("_week"))
              .group_by([*by, "_week"], maintain_order=True).agg(aggregations)
              .sort([*by, "_week"]))
    dropped: list[date] = []
    if complete_weeks_only:
        partial = weekly.filter(pl.col("_days") < 7)
        dropped = sorted(set(partial["_week"].to_list()))
        weekly = weekly.filter(pl.col("_days") >= 7)
    return weekly.drop("_days").rename({"_week": date_column}), dropped


def fourier_features(dates: np.ndarray, order: int, period_days: float = 365.25) -> np.ndarray:
    """Yearly seasonality basis ``(T, 2*order)``: sin and cos of k * 2*pi * (days / period).

    Uses days since the epoch, not day of year, so the basis is continuous across new year."""
    if order == 0:
        return np.zeros((len(dates), 0))
    days = np.asarray(dates, dtype="datetime64[D]").astype(np.int64).astype(float)
    phase = 2 * np.pi * days / period_days
    columns = []
    for k in range(1, order + 1):
        columns += [np.sin(k * phase), np.cos(k * phase)]
    return np.column_stack(columns)


def linear_trend(dates: np.ndarray, start: np.datetime64 | None = None,
                 end: np.datetime64 | None = None) -> np.ndarray:
    """0 at ``start``, 1 at ``end`` (default: the first and last date), linear in time: the trend
    coefficient is the change over the fitted window, and later weeks extrapolate it."""
    days = np.asarray(dates, dtype="datetime64[D]")
    if len(days) == 0:
        return np.zeros(0)
    start = days[0] if start is None else np.datetime64(start, "D")
    end = days[-1] if end is None else np.datetime64(end, "D")
    span = (end - start).astype(float)
    return (days - start).astype(float) / span if span > 0 else np.zeros(len(days))


def level_steps(trend: np.ndarray, knots: int) -> np.ndarray:
    """``(T, knots)`` ramps over the trend's 0..1 scale: column j rises from 0 at j / knots to 1
    at (j + 1) / knots. A coefficient per column is the level's change over that stretch, so
    the level is piecewise linear through the knots; later weeks (trend > 1) keep the last
    level, as a random walk would."""
    edges = np.arange(knots) / knots
    return np.clip((trend[:, None] - edges[None, :]) * knots, 0.0, 1.0)


def event_dummies(week_starts: np.ndarray, event_dates: dict[str, Sequence[str]]) -> np.ndarray:
    """``(T, E)`` indicators: 1 in each week that contains one of the event's dates."""
    weeks = np.asarray(week_starts, dtype="datetime64[D]")
    columns = []
    for dates in event_dates.values():
        flags = np.zeros(len(weeks))
        for raw in dates:
            day = np.datetime64(raw, "D")
            flags[(weeks <= day) & (day < weeks + np.timedelta64(7, "D"))] = 1.0
        columns.append(flags)
    return np.column_stack(columns) if columns else np.zeros((len(weeks), 0))


def weekly_dates(start: date, n_weeks: int) -> list[date]:
    return [start + timedelta(weeks=i) for i in range(n_weeks)]

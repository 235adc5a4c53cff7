"""Out-of-sample checks: a holdout on the last weeks, and rolling-origin backtests.

A model is fitted on the weeks before the origin and predicts the next ``horizon`` weeks from
the spend and controls alone (the fitted scales and trend are kept, carry-over from the fitted
weeks included). Reported: MAPE, R2, CRPS (in KPI units, lower is better) and the coverage of
the 94% predictive interval.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from liftos.data import Panel
from liftos.model.results import hdi

MAX_DRAWS = 1000


class Forecast(BaseModel):
    origin: str
    horizon: int
    mape: float
    r2: float
    crps: float
    coverage: float


def forecast_scores(result, panel: Panel, horizon: int) -> Forecast:
    """Score ``result`` (fitted on the weeks before the last ``horizon``) on those weeks."""
    applied = result.on_panel(panel)
    index = applied.thinned_index(MAX_DRAWS)
    draws = applied.predictive(index)[:, :, -horizon:].sum(axis=1)       # (s, h)
    actual = panel.target[:, -horizon:].sum(axis=0)
    mean = draws.mean(axis=0)
    low, high = hdi(draws)
    total = ((actual - actual.mean()) ** 2).sum()
    return Forecast(
        origin=str(panel.dates[-horizon]), horizon=horizon,
        mape=float(np.mean(np.abs(actual - mean) / np.maximum(np.abs(actual), 1e-12))),
        r2=float(1 - ((actual - mean) ** 2).sum() / total) if total > 0 else 0.0,
        crps=crps(draws, actual), coverage=float(((actual >= low) & (actual <= high)).mean()))


def crps(draws: np.ndarray, actual: np.ndarray) -> float:
    """Mean continuous ranked probability score of sample forecasts ``(s, h)`` (energy form)."""
    first = np.abs(draws - actual[None]).mean(axis=0)
    ordered = np.sort(draws, axis=0)
    n = ordered.shape[0]
    weights = (2 * np.arange(1, n + 1) - n - 1)[:, None]
    second = (weights * ordered).sum(axis=0) / (n * n)   # E|X - X'| / 2
    return float((first - second).mean())


def holdout_split(panel: Panel, weeks: int) -> tuple[Panel, Panel]:
    """(train, full): fit on ``train``, score the last ``weeks`` of ``full``."""
    return panel.window(until=str(panel.dates[-weeks - 1])), panel


def rolling_origins(panel: Panel, folds: int, horizon: int) -> list[tuple[Panel, Panel]]:
    """Expanding windows: each fold trains up to an origin and scores the next ``horizon``."""
    splits = []
    for k in range(folds, 0, -1):
        end = panel.n_weeks - (k - 1) * horizon
        scored = panel.window(until=str(panel.dates[end - 1]))
        splits.append((scored.window(until=str(scored.dates[-horizon - 1])), scored))
    return splits

"""Signals the spend data cannot give: customer sentiment and AI-answer visibility.

A tenant may name them under ``signals:`` in its file; each then enters its model as a control
(one column, the same in every geo), so its association with the KPI is estimated with an
interval next to the channels (``summary.json`` ``controls``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from liftos.errors import InputError
from liftos.home import DataHome

if TYPE_CHECKING:
    from liftos.data import Panel
    from liftos.tenancy import Tenant

SIGNALS = ("sentiment", "visibility")
MIN_WEEKS = 8   # weeks of a signal the panel needs before the signal can be a control


def signal_series(tenant: Tenant, name: str, home: DataHome | None = None) -> pl.DataFrame:
    """``week`` (Monday) and ``value``: the sentiment index (VADER) or the brand's mention rate."""
    from liftos.signals import sentiment, visibility

    if name == "sentiment":
        index = sentiment.weekly_index(sentiment.load_texts(tenant.name, home))
        return (index.select("week", pl.col("index").alias("value")) if not index.is_empty()
                else pl.DataFrame(schema={"week": pl.Date, "value": pl.Float64}))
    series = visibility.load_series(tenant.name, home)
    if series.is_empty() or tenant.surfacing is None:
        return pl.DataFrame(schema={"week": pl.Date, "value": pl.Float64})
    return series.filter(pl.col("brand") == tenant.surfacing.brand).select(
        "week", pl.col("mention_rate").alias("value"))


def signals_digest(tenant: Tenant, home: DataHome | None = None) -> str:
    """A hash of the signal tables the tenant's model uses ("" when it uses none)."""
    import hashlib

    from liftos.signals import sentiment, visibility

    if not tenant.signals:
        return ""
    home = home or DataHome()
    digest = hashlib.sha256()
    for name in tenant.signals:
        module = sentiment if name == "sentiment" else visibility
        path = module.table_path(home, tenant.name)
        digest.update(name.encode() + (path.read_bytes() if path.exists() else b""))
    return digest.hexdigest()


def with_signals(panel: Panel, tenant: Tenant, home: DataHome | None = None) -> Panel:
    """The panel with one control column per signal the tenant names. A signal week belongs to
    the panel week it falls in; weeks without the signal take its mean (said in the notes)."""
    if not tenant.signals:
        return panel
    columns, notes = [], []
    for name in tenant.signals:
        series = signal_series(tenant, name, home)
        week = np.array(series["week"].to_list(), dtype="datetime64[D]") if series.height else (
            np.array([], dtype="datetime64[D]"))
        slot = np.searchsorted(panel.dates, week, side="right") - 1
        inside = (slot >= 0) & (week < panel.dates[-1] + np.timedelta64(7, "D"))
        values = np.full(panel.n_weeks, np.nan)
        for k in np.unique(slot[inside]):
            values[k] = float(np.mean(series["value"].to_numpy()[inside & (slot == k)]))
        covered = int(np.isfinite(values).sum())
        if covered < MIN_WEEKS:
            raise InputError("signal_coverage", (
                f"the tenant's model uses the '{name}' signal, but only {covered} of its "
                f"{panel.n_weeks} weeks have it (at least {MIN_WEEKS} needed); "
                + ("ingest texts with `liftos sentiment ingest`" if name == "sentiment" else
                   "run the visibility flow")), tenant.config_source, "signals")
        if covered < panel.n_weeks:
            notes.append(f"{name}: {panel.n_weeks - covered} of {panel.n_weeks} weeks without "
                         "the signal took its mean")
        values[~np.isfinite(values)] = np.nanmean(values)
        columns.append(values)
    extra = np.broadcast_to(np.stack(columns, axis=1), (len(panel.geos), panel.n_weeks,
                                                        len(columns)))
    return dataclasses.replace(
        panel, controls=[*panel.controls, *tenant.signals],
        control_values=np.concatenate([panel.control_values, extra], axis=2),
        notes=[*panel.notes, *notes])

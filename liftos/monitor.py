"""Always-on monitoring: does the newest week look like what the champion expects?

Two questions per tenant, answered from the champion's posterior without refitting:

1. Is the KPI outside the 94% posterior predictive interval for that week?
2. Did a channel's spend move enough to matter: by at least ``spend_change`` against its
   trailing mean, with a model-implied KPI impact of at least ``impact_share`` of the expected
   KPI? (Impact = the predicted contribution at this week's spend minus that at the trailing
   mean spend, carry-over included.)

Only the last ``max_lag + 1`` weeks are evaluated, which is exact for the newest week's adstock
and keeps a check to milliseconds of numpy.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liftos.data import Panel, load_panel
from liftos.errors import LiftOSError
from liftos.home import DataHome, write_json
from liftos.model.results import HDI_PROB, FitResult, hdi
from liftos.refresh import Record
from liftos.signals import with_signals
from liftos.tenancy import Tenant, load_tenant

MAX_DRAWS = 1000
_loaded: OrderedDict[tuple[str, float], FitResult] = OrderedDict()
_panels: OrderedDict[tuple, Panel] = OrderedDict()


@dataclass(frozen=True)
class Thresholds:
    spend_change: float = 0.5
    impact_share: float = 0.02
    trailing_weeks: int = 8


class ChannelMove(Record):
    channel: str
    spend: float
    trailing_mean: float
    change: float
    kpi_impact_mean: float
    material: bool


class MonitorCheck(Record):
    tenant: str
    week: str
    in_sample: bool
    kpi_actual: float
    kpi_expected: float
    kpi_low: float
    kpi_high: float
    outside_interval: bool
    moves: tuple[ChannelMove, ...]
    anomalies: tuple[str, ...]
    fit_dir: str
    data_path: str


def load_model(fit_dir: str | Path) -> FitResult:
    """Load a saved fit once per process (keyed by folder and modification time)."""
    path = Path(fit_dir)
    key = (str(path), (path / "posterior.nc").stat().st_mtime)
    return _once(_loaded, key, lambda: FitResult.load(path, draws_only=True))


def read_panel(config: Tenant) -> Panel:
    """The tenant's weekly panel, read once per version of its data file (a data folder is
    read every time: its own timestamp does not change when a file inside it does)."""
    path = Path(config.data_path)
    week_start = config.template.week_start

    def read() -> Panel:
        return load_panel(path, config.columns, week_start=week_start)

    if not path.is_file():
        return read()
    stat = path.stat()
    return _once(_panels, (str(path), stat.st_mtime_ns, stat.st_size, config.columns,
                           week_start), read)


def _once(cache: OrderedDict, key: tuple, make: Callable[[], Any], size: int = 128) -> Any:
    """``cache[key]``, made on first use; the least recently used beyond ``size`` dropped."""
    if key not in cache:
        cache[key] = make()
        while len(cache) > size:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]


def check_tenant(tenant: str, home: DataHome | None = None, data: str | None = None,
                 thresholds: Thresholds = Thresholds()) -> MonitorCheck:
    """Check the newest week of the tenant's data against its champion."""
    home = home or DataHome()
    config = load_tenant(tenant, data=data)
    champion = home.champion(config.name)
    if champion is None:
        raise LiftOSError(f"tenant '{config.name}' has no champion yet; run "
                          f"`liftos run --tenant {config.name}` first")
    model = load_model(champion["fit_dir"])
    panel = with_signals(read_panel(config), config, home)
    check = check_latest_week(model, panel, thresholds, tenant=config.name,
                              fit_dir=champion["fit_dir"])
    write_json(home.folder(config.name, "monitor") / f"{check.week}.json", check.model_dump())
    return check


def check_latest_week(model: FitResult, panel: Panel, thresholds: Thresholds = Thresholds(),
                      tenant: str = "", fit_dir: str = "") -> MonitorCheck:
    max_lag = max(block.max_lag for block in model.design.blocks)
    recent = panel.window(last_weeks=max(max_lag + 1, thresholds.trailing_weeks + 1))
    index = model.thinned_index(MAX_DRAWS)
    on_recent = model.on_panel(recent)
    contrib = on_recent.contributions(index)
    predictive = on_recent.predictive(index, contrib=contrib)[:, :, -1].sum(axis=1)
    low, high = hdi(predictive, HDI_PROB)
    actual = float(recent.target[:, -1].sum())
    expected = float(predictive.mean())
    moves = _channel_moves(on_recent, recent, contrib, index, expected, thresholds)
    outside = not low <= actual <= high
    anomalies = [f"kpi_{'above' if actual > high else 'below'}_interval"] if outside else []
    anomalies += [f"spend_shift:{m.channel}" for m in moves if m.material]
    return MonitorCheck(
        tenant=tenant, week=str(recent.dates[-1]),
        in_sample=bool(recent.dates[-1] <= model.panel.dates[-1]), kpi_actual=actual,
        kpi_expected=expected, kpi_low=float(low), kpi_high=float(high),
        outside_interval=outside, moves=tuple(moves), anomalies=tuple(anomalies),
        fit_dir=fit_dir, data_path=panel.source)


def _channel_moves(on_recent: FitResult, recent: Panel, contrib: np.ndarray, index: np.ndarray,
                   expected: float, thresholds: Thresholds) -> list[ChannelMove]:
    spend = recent.spend.sum(axis=0)                          # (T, C)
    trailing = spend[-thresholds.trailing_weeks - 1:-1].mean(axis=0)
    moves = []
    for c, channel in enumerate(recent.channels):
        change = (spend[-1, c] - trailing[c]) / trailing[c] if trailing[c] > 0 else (
            np.inf if spend[-1, c] > 0 else 0.0)
        impact = 0.0
        if abs(change) >= thresholds.spend_change:
            impact = _impact(on_recent, recent, contrib, index, c, trailing[c])
        material = bool(abs(change) >= thresholds.spend_change
                        and abs(impact) >= thresholds.impact_share * abs(expected))
        moves.append(ChannelMove(channel=channel, spend=float(spend[-1, c]),
                                 trailing_mean=float(trailing[c]), change=float(change),
                                 kpi_impact_mean=float(impact), material=material))
    return moves


def _impact(on_recent: FitResult, recent: Panel, contrib: np.ndarray, index: np.ndarray,
            c: int, trailing_total: float) -> float:
    """Mean KPI change of the newest week caused by its spend differing from the trailing mean."""
    counterfactual = recent.spend.copy()
    total = recent.spend[:, -1, c].sum()
    share = recent.spend[:, -1, c] / total if total > 0 else np.full(len(recent.geos),
                                                                       1 / len(recent.geos))
    counterfactual[:, -1, c] = trailing_total * share
    alt = on_recent.on_panel(dataclasses.replace(recent, spend=counterfactual))
    alt_contrib = alt.contributions(index)
    return float((contrib[:, :, -1, c] - alt_contrib[:, :, -1, c]).sum(axis=1).mean())

"""Simulate weekly marketing data with a known truth, from an industry template.

The data-generating process is the model's own: each channel's spend is adstocked and saturated
with the template's transformation objects, scaled by an effect chosen to hit a target ROAS, and
added to a baseline of trend, seasonality, controls and noise. The truth file records, per
channel, the parameters, total contribution, ROAS and share, so fits can be checked against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from liftos.config import ChannelConfig, Template
from liftos.features.calendar import WEEKDAY_NUMBER, fourier_features, linear_trend, weekly_dates
from liftos.features.transforms import adstock_numpy

START = date(2023, 1, 2)  # a Monday


@dataclass
class Simulation:
    frame: pl.DataFrame
    truth: dict[str, Any]
    contributions: np.ndarray | None = None  # (G, T, C) true weekly contribution
    spend: np.ndarray | None = None          # (G, T, C)

    def window_roas(self, weeks: slice) -> dict[str, float]:
        """True ROAS of each channel over a window of weeks (e.g. the last 40)."""
        names = list(self.truth["channels"])
        contribution = self.contributions[:, weeks].sum(axis=(0, 1))
        spend = self.spend[:, weeks].sum(axis=(0, 1))
        return {name: float(contribution[c] / spend[c]) for c, name in enumerate(names)}

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        data_path, truth_path = out / "data.csv", out / "truth.json"
        self.frame.write_csv(data_path)
        truth_path.write_text(json.dumps(self.truth, indent=2))
        return data_path, truth_path


def simulate(template: Template, weeks: int = 156, seed: int = 1, geos: int = 1,
             channels: list[str] | None = None, media_share: float = 0.35,
             noise: float = 0.04) -> Simulation:
    """Weekly data for ``geos`` geos (wide by channel) and its ground truth."""
    if weeks < 8:
        raise ValueError("simulate at least 8 weeks")
    rng = np.random.default_rng(seed)
    names = channels or list(template.channels) or ["search", "social", "tv"]
    offset = (WEEKDAY_NUMBER[template.week_start] - 1)
    dates = weekly_dates(date.fromordinal(START.toordinal() + offset), weeks)
    geo_names = ["all"] if geos == 1 else [f"geo_{g + 1:02d}" for g in range(geos)]
    truths = {name: _channel_truth(template.channel(name), rng) for name in names}
    geo_sizes = rng.uniform(0.5, 1.5, size=len(geo_names)) if geos > 1 else np.ones(1)

    rows, totals = [], {n: {"contribution": 0.0, "spend": 0.0} for n in names}
    all_contributions, all_spend = [], []
    outcome_total = 0.0
    for g, geo in enumerate(geo_names):
        # In cents, as written to the file: the truth must price the spend the data holds.
        spend = np.round(np.column_stack([_spend_pattern(name, i, weeks, rng) * geo_sizes[g]
                                          for i, name in enumerate(names)]), 2)
        contribution = np.zeros_like(spend)
        for c, name in enumerate(names):
            contribution[:, c], effect, scale = _channel_response(
                template.channel(name), truths[name], spend[:, c], rng, geos > 1)
            truths[name]["params"].setdefault("effect", []).append(effect)
            truths[name]["params"].setdefault("scale", []).append(scale)
            totals[name]["contribution"] += float(contribution[:, c].sum())
            totals[name]["spend"] += float(spend[:, c].sum())
        all_contributions.append(contribution)
        all_spend.append(spend)
        baseline, controls = _baseline(template, dates, contribution.sum(axis=1), media_share, rng)
        outcome = baseline + contribution.sum(axis=1)
        outcome = outcome + rng.normal(0, noise * baseline.mean(), size=weeks)
        outcome = np.maximum(outcome, 0.05 * baseline.mean())
        outcome_total += float(outcome.sum())
        for t in range(weeks):
            row = {"date": dates[t], **({"geo": geo} if geos > 1 else {}),
                   template.kpi.name: float(outcome[t])}
            row.update({name: round(float(spend[t, c]), 2) for c, name in enumerate(names)})
            row.update({k: float(v[t]) for k, v in controls.items()})
            rows.append(row)

    media_total = sum(v["contribution"] for v in totals.values())
    truth = {
        "template": template.name, "seed": seed, "weeks": weeks, "geos": geo_names,
        "kpi": template.kpi.name, "noise_sd_fraction_of_baseline": noise,
        "channels": {
            name: {
                **truths[name]["params"],
                "contribution_total": totals[name]["contribution"],
                "spend_total": totals[name]["spend"],
                "roas": totals[name]["contribution"] / totals[name]["spend"],
                "share_of_media": totals[name]["contribution"] / media_total,
                "share_of_outcome": totals[name]["contribution"] / outcome_total,
            } for name in names},
    }
    return Simulation(pl.DataFrame(rows), truth, np.stack(all_contributions), np.stack(all_spend))


def _channel_truth(config: ChannelConfig, rng: np.random.Generator) -> dict[str, Any]:
    """True transformation parameters near the prior's centre, and a target ROAS in bounds."""
    adstock, saturation = config.adstock, config.saturation
    ad = {p: float(np.clip(adstock.priors[p].mean() * rng.uniform(0.8, 1.2), 0.02, None))
          for p in adstock.parameter_names}
    if "alpha" in ad:
        ad["alpha"] = float(np.clip(ad["alpha"], 0.05, 0.9))
    if saturation.type == "logistic":
        sat = {"lam": float(rng.uniform(1.0, 4.0))}
    else:
        sat = {"half_saturation": float(rng.uniform(0.3, 0.7)), "slope": float(rng.uniform(1.2, 2.5))}
    low, high = max(config.roas_bounds[0], 1e-6), config.roas_bounds[1]
    target_roas = float(np.clip(np.sqrt(low * high) * rng.lognormal(0, 0.3), low, high))
    return {"adstock": ad, "saturation": sat, "target_roas": target_roas,
            "params": {"adstock": {"type": adstock.type, **ad, "max_lag": adstock.max_lag},
                       "saturation": {"type": saturation.type, **sat}}}


def _channel_response(config: ChannelConfig, truth: dict[str, Any], spend: np.ndarray,
                      rng: np.random.Generator, vary_by_geo: bool
                      ) -> tuple[np.ndarray, float, float]:
    """Contribution of one channel: effect * saturation(adstock(spend) / scale), scale the
    geo's largest weekly spend; with the effect and the scale (the truth a planner is judged
    against)."""
    ad = adstock_numpy(config.adstock, spend[:, None] / spend.max(),
                       **{k: np.array([v]) for k, v in truth["adstock"].items()})[:, 0]
    shape = config.saturation.apply(np, ad, **{k: np.array(v) for k, v in
                                               truth["saturation"].items()})
    effect = truth["target_roas"] * spend.sum() / max(shape.sum(), 1e-12)
    if vary_by_geo:
        effect *= float(np.exp(rng.normal(0, 0.15)))
    return effect * shape, float(effect), float(spend.max())


def _spend_pattern(name: str, index: int, weeks: int, rng: np.random.Generator) -> np.ndarray:
    """Plausible weekly spend: TV in flights, search following demand, others noisy always-on."""
    level = rng.uniform(5_000, 40_000)
    t = np.arange(weeks)
    season = 1 + 0.3 * np.sin(2 * np.pi * (t / 52.18 + rng.uniform()))
    if name in ("tv", "radio", "direct_mail"):
        on = np.zeros(weeks)
        week = int(rng.integers(0, 6))
        while week < weeks:
            length = int(rng.integers(3, 8))
            on[week:week + length] = 1
            week += length + int(rng.integers(3, 9))
        return level * 2 * on * rng.lognormal(0, 0.25, size=weeks)
    noise = rng.lognormal(0, 0.35, size=weeks)
    bursts = np.where(rng.uniform(size=weeks) < 0.1, rng.uniform(1.5, 2.5, size=weeks), 1.0)
    return level * season * noise * bursts


def _baseline(template: Template, dates: list[date], media: np.ndarray, media_share: float,
              rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    weeks = len(dates)
    level = media.mean() * (1 - media_share) / media_share
    trend = level * rng.uniform(-0.1, 0.25) * linear_trend(np.array(dates, dtype="datetime64[D]"))
    season_basis = fourier_features(np.array(dates, dtype="datetime64[D]"),
                                     template.seasonality.yearly_fourier_order)
    seasonality = level * (season_basis @ rng.normal(0, 0.06, size=season_basis.shape[1])
                           if season_basis.shape[1] else np.zeros(weeks))
    controls: dict[str, np.ndarray] = {}
    effect = np.zeros(weeks)
    for name in template.controls:
        if any(word in name for word in ("promo", "days", "event", "holiday")):
            values = (rng.uniform(size=weeks) < 0.12).astype(float)
            effect += level * rng.uniform(0.04, 0.1) * values
        else:
            values = 1 + 0.05 * rng.standard_normal(weeks).cumsum() / np.sqrt(weeks)
            effect += level * rng.uniform(-0.5, 0.5) * (values - 1)
        controls[name] = np.round(values, 4)
    return level + trend + seasonality + effect, controls

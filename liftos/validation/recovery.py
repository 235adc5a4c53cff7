"""Recovery: how often the model is right on this tenant's own spend, against truths we know.

The other checks compare a fit with itself (the simulated twin draws the KPI from the fitted
posterior, so a bias the model's structure cannot express passes its own test). Here each
replica draws a ground truth, builds a KPI from it on the tenant's **real** spend, weeks, geos
and controls, refits the tenant's model and records, per channel, whether the true ROAS lies
inside the 94% HDI and how far the estimate is from it.

Two families of truth:

* ``model``: the model's own forms (the template's adstock and saturation), parameters near the
  template's prior centres, a baseline of level, trend, seasonality and controls. On these, a
  correct sampler covers the truth ~94% of the time unless the spend cannot tell channels apart.
* ``outside``: forms the model does not have (delayed carry-over peaking after a week or two,
  Michaelis–Menten or exponential saturation) and a baseline whose level drifts as a random walk
  with one break. What the model gets wrong here, it gets wrong on real data too.

A channel is not recoverable when, on the model's own family, it is typically off by more than
``max_channel_error`` or confidently wrong (coverage below the limit and error above the
gate's), or when its spend hardly varies. The gate judges coverage and error on the channels the
model goes on to report (the recoverable ones); the others are published as "not recoverable",
never as a number.

True ROAS is drawn log-uniformly inside the template's plausible range, narrowed to a factor of
three around the fitted ROAS so the replicas keep the tenant's scale. Replicas share the fit's
shapes, so one compiled model serves them all (per process); a ``submit`` (Dask) runs them in
parallel. Results are cached per tenant shape (template, channels, controls, geos, options) and
reused while the data has grown by fewer than ``max_age_weeks``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from liftos.config import ChannelConfig, RecoveryThresholds
from liftos.data import Panel
from liftos.features.transforms import adstock_numpy

FAMILIES = ("model", "outside")
ROAS_SPAN = 3.0          # truths within this factor of the fitted ROAS (and the template range)
FLAT_SPEND_CV = 0.05     # a channel whose weekly spend varies less than this cannot be recovered


class RecoveryOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    replicas: int = 20          # shared out over the families in turn
    families: tuple[str, ...] = FAMILIES
    draws: int = 300
    tune: int = 300
    chains: int = 2
    seed: int = 11
    max_age_weeks: int = 13     # reuse a cached result until the data grew by this many weeks


class ChannelRecovery(BaseModel):
    channel: str
    coverage: float           # share of replicas whose true ROAS is inside the 94% HDI
    median_error: float       # median |estimate - truth| / truth
    own_coverage: float       # the same two on the model's own family (what decides below)
    own_median_error: float
    median_bias: float        # median (estimate - truth) / truth, own family: which way it errs
    interval_width: float     # median 94% interval width / truth, own family
    spend_explained: float    # R2 of its spend on the baseline terms and the other channels
    recoverable: bool
    reason: str = ""


class Recovery(BaseModel):
    shape: str
    weeks: int
    replicas: int
    coverage: float                  # over every channel and replica
    median_error: float
    reported_coverage: float | None  # over the channels the model reports (the recoverable)
    reported_median_error: float | None
    families: dict[str, dict[str, float]]
    channels: list[ChannelRecovery]
    thresholds: RecoveryThresholds
    seconds: float
    cached: bool = False
    rows: list[dict[str, Any]] = []   # per replica and channel: family, truth, mean, low, high

    @property
    def unrecoverable(self) -> list[ChannelRecovery]:
        return [c for c in self.channels if not c.recoverable]

    def refusal(self) -> str | None:
        """Why the gate refuses a model with this recovery, or None. Judged on the channels
        the model reports: an unrecoverable one is published as such, never as a number."""
        t = self.thresholds
        if self.reported_coverage is None or self.reported_median_error is None:
            return "no channel's ROAS is recoverable on this tenant's spend"
        if self.reported_coverage < t.min_coverage:
            return (f"recovery coverage {self.reported_coverage:.0%} of known truths inside the "
                    f"94% interval is below {t.min_coverage:.0%}: the model's intervals are "
                    "not to be trusted on this tenant's spend")
        if self.reported_median_error > t.max_median_error:
            return (f"median ROAS error {self.reported_median_error:.0%} on known truths is "
                    f"above {t.max_median_error:.0%}")
        return None


# ------------------------------------------------------------------------------- replicas
@dataclasses.dataclass
class Replica:
    panel: Panel                 # the tenant's panel with a KPI built from the truth
    truth: dict[str, float]      # true ROAS per channel over the panel
    media: np.ndarray            # (G, T, C) true contributions


def replica(result, k: int, family: str, seed: int, fitted: np.ndarray | None = None
            ) -> Replica:
    """Replica ``k``: a KPI built from a drawn truth on the fit's own spend (``fitted``: the
    fit's mean ROAS per channel, computed once by the caller)."""
    rng = np.random.default_rng([seed, k])
    panel, design, template = result.panel, result.design, result.spec.template
    fitted = result.roas_draws().mean(axis=0) if fitted is None else fitted
    media = np.zeros(panel.spend.shape)
    truth = {}
    for c, name in enumerate(panel.channels):
        config = template.channel(name)
        roas = _true_roas(config, fitted[c], rng)
        for g in range(len(panel.geos)):
            media[g, :, c] = _response(config, panel.spend[g, :, c], family, rng)
        total = media[:, :, c].sum()
        media[:, :, c] *= roas * panel.spend[:, :, c].sum() / max(total, 1e-12)
        truth[name] = roas
    base = _baseline(result, media, family, rng)
    sigma = float(result.draws("sigma").mean()) * design.y_scale[:, None]
    kpi = base + media.sum(axis=2) + rng.normal(size=base.shape) * sigma
    floor = 0.05 * np.abs(base).mean()
    replica_panel = dataclasses.replace(panel, target=np.maximum(kpi, floor),
                                        notes=[f"recovery replica {k} ({family})"])
    return Replica(replica_panel, truth, media)


def _true_roas(config: ChannelConfig, fitted: float, rng: np.random.Generator) -> float:
    low, high = max(config.roas_bounds[0], 1e-6), config.roas_bounds[1]
    if fitted > 0:
        low, high = max(low, fitted / ROAS_SPAN), min(high, fitted * ROAS_SPAN)
    if low >= high:
        low, high = sorted((max(config.roas_bounds[0], 1e-6), config.roas_bounds[1]))
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _response(config: ChannelConfig, spend: np.ndarray, family: str,
              rng: np.random.Generator) -> np.ndarray:
    """Unscaled response shape of one geo-channel's spend under a drawn truth."""
    x = spend / max(spend.max(), 1e-12)
    lags = config.adstock.max_lag
    if family == "model":
        adstock = config.adstock
        params = {p: np.array([max(adstock.priors[p].mean() * rng.uniform(0.6, 1.4), 0.02)])
                  for p in adstock.parameter_names}
        if "alpha" in params:
            params["alpha"] = np.clip(params["alpha"], 0.02, 0.9)
        carried = adstock_numpy(adstock, x[:, None], **params)[:, 0]
        saturation = config.saturation
        if saturation.type == "logistic":
            sat = {"lam": np.array(rng.uniform(1.0, 4.0))}
        else:
            sat = {"half_saturation": np.array(rng.uniform(0.3, 0.7)),
                   "slope": np.array(rng.uniform(1.2, 2.5))}
        return saturation.apply(np, carried, **sat)
    # Delayed carry-over (peak after theta weeks), then a saturation the model does not have.
    theta, decay = rng.uniform(0.5, 1.5), rng.uniform(0.3, 0.6)
    weights = decay ** ((np.arange(lags) - theta) ** 2)
    carried = np.convolve(x, weights / weights.sum())[: len(x)]
    scale = rng.uniform(0.3, 1.0)
    if config.saturation.type == "logistic":
        return carried / (carried + scale)
    return 1 - np.exp(-carried / scale)


def _baseline(result, media: np.ndarray, family: str, rng: np.random.Generator) -> np.ndarray:
    """``(G, T)`` non-media KPI: the real KPI's level less the drawn media, a trend, yearly
    seasonality, the real controls with drawn effects, and (outside) a drifting level."""
    panel, design = result.panel, result.design
    T = panel.n_weeks
    level = np.maximum(panel.target.mean(axis=1) - media.sum(axis=2).mean(axis=1),
                       0.5 * media.sum(axis=2).mean(axis=1))[:, None]
    shape = 1 + rng.uniform(-0.1, 0.25) * design.trend[None, :]
    if design.fourier.shape[1]:
        shape = shape + (design.fourier @ rng.normal(0, 0.06, design.fourier.shape[1]))[None]
    if design.covariates.shape[2]:
        shape = shape + design.covariates @ rng.uniform(-0.1, 0.1, design.covariates.shape[2])
    if family == "outside":
        drift = np.cumsum(rng.normal(0, 0.005, size=T))
        drift[int(rng.integers(T // 4, 3 * T // 4)):] += rng.choice([-1, 1]) * rng.uniform(0.03, 0.08)
        shape = shape + drift[None, :]
    return level * shape


def recover(panel: Panel, spec, options, truth: dict[str, float], family: str
            ) -> dict[str, Any]:
    """Refit one replica and score it against its truth (small, so it ships from a worker)."""
    from liftos.model import mmm
    from liftos.model.results import hdi

    fit = mmm.fit(panel, spec, options)
    roas = fit.roas_draws()
    low, high = hdi(roas)
    return {"family": family, "channels": {
        name: {"truth": truth[name], "mean": float(roas[:, c].mean()),
               "low": float(low[c]), "high": float(high[c])}
        for c, name in enumerate(panel.channels)}}


# ------------------------------------------------------------------------------ the suite
def recovery(result, options: RecoveryOptions = RecoveryOptions(),
             thresholds: RecoveryThresholds = RecoveryThresholds(),
             submit: Callable | None = None, cache: Path | None = None) -> Recovery:
    """The recovery suite for a fit, from ``cache`` when a fresh one of this shape is there."""
    return start(result, options, thresholds, submit, cache).result()


def start(result, options: RecoveryOptions, thresholds: RecoveryThresholds,
          submit: Callable | None = None, cache: Path | None = None) -> Pending:
    """Submit every replica refit at once (they run beside the validation's other refits)."""
    started = time.perf_counter()
    shape = shape_digest(result, options)
    cached = _cached(cache, shape, result.panel.n_weeks, options)
    if cached is not None:
        return Pending(result, [], shape, thresholds, cache, started,
                       done=cached.model_copy(update={"thresholds": thresholds, "cached": True}))
    fit_options = result.options.model_copy(update={
        "draws": options.draws, "tune": options.tune, "chains": options.chains,
        "seed": options.seed, "progress": False})
    jobs, fitted = [], result.roas_draws().mean(axis=0)
    for k in range(options.replicas):
        family = options.families[k % len(options.families)]
        drawn = replica(result, k, family, options.seed, fitted)
        jobs.append((submit or _now)(recover, drawn.panel, result.spec.uncalibrated(),
                                     fit_options, drawn.truth, family))
    return Pending(result, jobs, shape, thresholds, cache, started)


class Pending:
    """Submitted replicas; ``result()`` waits for them, summarises and caches."""

    def __init__(self, result, jobs: list, shape: str, thresholds: RecoveryThresholds,
                 cache: Path | None, started: float, done: Recovery | None = None):
        self.fit, self.jobs, self.shape, self.thresholds, self.cache = (
            result, jobs, shape, thresholds, cache)
        self.started, self.done = started, done

    def result(self) -> Recovery:
        if self.done is None:
            scored = [job.result() if hasattr(job, "result") else job for job in self.jobs]
            self.done = summarize(self.fit, scored, self.shape, self.thresholds,
                                  time.perf_counter() - self.started)
            if self.cache is not None:
                from liftos.home import write_json

                self.cache.mkdir(parents=True, exist_ok=True)
                write_json(self.cache / f"{self.shape}.json", self.done.model_dump(mode="json"))
        return self.done


def summarize(result, scored: list[dict[str, Any]], shape: str,
              thresholds: RecoveryThresholds, seconds: float) -> Recovery:
    """Coverage and error over all rows, per family, per channel, and over the channels found
    recoverable (what the gate judges)."""
    rows = [{"replica": k, "family": s["family"], "channel": name, **row}
            for k, s in enumerate(scored) for name, row in s["channels"].items()]
    explained = spend_explained(result)
    channels = [_channel(name, [r for r in rows if r["channel"] == name], explained[name],
                         result, thresholds) for name in result.panel.channels]
    kept = {c.channel for c in channels if c.recoverable}
    reported = [r for r in rows if r["channel"] in kept]
    families = {family: {"coverage": _coverage(of), "median_error": _median_error(of)}
                for family in FAMILIES if (of := [r for r in rows if r["family"] == family])}
    return Recovery(shape=shape, weeks=result.panel.n_weeks, replicas=len(scored),
                    coverage=_coverage(rows), median_error=_median_error(rows),
                    reported_coverage=_coverage(reported) if reported else None,
                    reported_median_error=_median_error(reported) if reported else None,
                    families=families, channels=channels, thresholds=thresholds,
                    seconds=round(seconds, 1), rows=rows)


def _channel(name: str, rows: list[dict], explained: float, result,
             thresholds: RecoveryThresholds) -> ChannelRecovery:
    """Judged on the truths of the model's own family (what this spend can identify; how the
    model copes with other forms is the gate's business): not recoverable when its spend
    hardly varies, when it is typically off by more than ``max_channel_error``, or when it is
    confidently wrong (coverage below the limit and error above the gate's)."""
    own = [r for r in rows if r["family"] == "model"] or rows
    coverage, error = _coverage(own), _median_error(own)
    bias = float(np.median([(r["mean"] - r["truth"]) / r["truth"] for r in own]))
    width = float(np.median([(r["high"] - r["low"]) / r["truth"] for r in own]))
    spend = result.panel.spend[:, :, result.panel.channels.index(name)]
    variation = float(spend.std() / max(spend.mean(), 1e-12))
    reasons = []
    if variation < FLAT_SPEND_CV:
        reasons.append(f"its weekly spend hardly varies (coefficient of variation "
                       f"{variation:.1%}), so its effect cannot be told from the baseline")
    wrong = error > thresholds.max_channel_error or (
        coverage < thresholds.min_coverage and error > thresholds.max_median_error)
    if wrong:
        direction = "under" if bias < 0 else "over"
        reasons.append(
            f"on {len(own)} known truths of the model's own form its ROAS was inside the 94% "
            f"interval {coverage:.0%} of the time, median error {error:.0%} "
            f"({direction}estimated by {abs(bias):.0%} typically)")
        if width > 1:
            reasons.append(f"its 94% interval typically spans {width:.1f}x the true ROAS: "
                           "this spend carries little information about it")
        if explained > 0.5:
            reasons.append(f"{explained:.0%} of its spend's variation is explained by trend, "
                           "seasonality, controls and the other channels")
    return ChannelRecovery(channel=name, coverage=_coverage(rows), median_error=_median_error(rows),
                           own_coverage=coverage, own_median_error=error, median_bias=bias,
                           interval_width=width, spend_explained=explained,
                           recoverable=not reasons, reason="; ".join(reasons))


def spend_explained(result) -> dict[str, float]:
    """Per channel, R2 of its weekly spend regressed on the baseline terms (trend, seasonality,
    controls, events) and the other channels' spend: near 1, the data cannot separate it."""
    G, T = result.design.y.shape
    base = result.design.baseline_matrix()
    spend = result.panel.spend.reshape(G * T, -1)
    out = {}
    for c, name in enumerate(result.panel.channels):
        x = np.column_stack([base, np.delete(spend, c, axis=1)])
        y = spend[:, c]
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        total = ((y - y.mean()) ** 2).sum()
        out[name] = float(1 - ((y - x @ coef) ** 2).sum() / total) if total > 0 else 1.0
    return out


def shape_digest(result, options: RecoveryOptions) -> str:
    """What a cached recovery is valid for: template, channels, controls, geos and options
    (not the week count: that grows every refresh; see ``max_age_weeks``)."""
    blob = json.dumps({"template": result.spec.template.model_dump(mode="json"),
                       "channels": list(result.spec.channels),
                       "controls": list(result.spec.controls), "geos": list(result.panel.geos),
                       "options": options.model_dump(exclude={"max_age_weeks"})},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cached(cache: Path | None, shape: str, weeks: int, options: RecoveryOptions
            ) -> Recovery | None:
    path = cache / f"{shape}.json" if cache is not None else None
    if path is None or not path.exists():
        return None
    found = Recovery.model_validate_json(path.read_text())
    return found if abs(weeks - found.weeks) < options.max_age_weeks else None


def _inside(row: dict) -> bool:
    return row["low"] <= row["truth"] <= row["high"]


def _error(row: dict) -> float:
    return abs(row["mean"] - row["truth"]) / row["truth"]


def _coverage(rows: list[dict]) -> float:
    return float(np.mean([_inside(r) for r in rows]))


def _median_error(rows: list[dict]) -> float:
    return float(np.median([_error(r) for r in rows]))


def _now(fn: Callable, *args: Any) -> Any:
    return fn(*args)

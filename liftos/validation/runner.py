"""Run the validation suite on a saved fit and write ``validation.json`` beside it.

Refits (holdout, placebo) reuse the compiled-model cache where shapes repeat; with a Dask
client they run in parallel (``submit``), else one after the other.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from liftos.home import write_json
from liftos.model.results import FitResult
from liftos.validation.checks import Check, review
from liftos.validation.lift import LiftTest, lift_agreement
from liftos.validation.outofsample import (
    Forecast,
    forecast_scores,
    holdout_split,
    rolling_origins,
)
from liftos.validation.recovery import Recovery, RecoveryOptions
from liftos.validation.recovery import start as start_recovery
from liftos.validation.refute import (
    PLACEBO,
    robustness_values,
    subset_windows,
    time_shuffled,
    twin_panel,
    with_placebo,
)
from liftos.validation.thresholds import THRESHOLDS as T
from liftos.validation.trust import TrustScore, trust_score


class ValidationOptions(BaseModel):
    holdout_weeks: int = 8
    placebo: bool = True
    refutations: bool = True  # time shuffle, shifted windows, simulated twin, confounding
    backtest_folds: int = 0   # rolling-origin folds (expanding window, horizon = holdout_weeks)
    recovery: RecoveryOptions = RecoveryOptions()  # known truths on the real spend; 0 replicas: off
    draws: int = 500
    tune: int = 500
    chains: int = 2
    seed: int = 7


class Validation(BaseModel):
    fit_dir: str
    checks: list[Check]
    holdout: Forecast | None = None
    backtest: list[Forecast] = []
    placebo_share: float | None = None
    lift_tests: list[dict[str, Any]] = []
    refutations: dict[str, Any] = {}
    recovery: Recovery | None = None
    trust: TrustScore


def validate(fit_dir: str | Path, options: ValidationOptions = ValidationOptions(),
             lift_tests: list[LiftTest] = (), submit: Callable | None = None,
             recovery_cache: Path | None = None) -> Validation:
    """All checks for the fit in ``fit_dir``; ``submit(fn, *args)`` may run refits elsewhere
    (a Dask client's ``submit``) and must return objects with ``.result()``.
    ``recovery_cache`` (a tenant's folder) keeps recovery results per tenant shape.

    Steps: submit every refit at once (they run in parallel), review the fit itself, then
    score each refit as it is needed; ``validation.json`` is written beside the fit."""
    result = FitResult.load(fit_dir)
    jobs = submit_refits(result, options, submit or _run_now, recovery_cache)
    figures: dict[str, Any] = {"fit_dir": str(fit_dir)}
    checks = review(result)
    for found, step_checks in (holdout_step(jobs, options), placebo_step(jobs),
                               backtest_step(jobs, options), refutation_step(result, jobs),
                               lift_step(result, lift_tests), recovery_step(jobs)):
        figures.update(found)
        checks += step_checks
    out = Validation(checks=checks, trust=trust_score(checks), **figures)
    write_json(Path(fit_dir) / "validation.json", out.model_dump(mode="json"))
    return out


Step = tuple[dict[str, Any], list[Check]]


def submit_refits(result: FitResult, options: ValidationOptions, run: Callable,
                  recovery_cache: Path | None = None) -> dict[str, Any]:
    """Every refit the options ask for, submitted at once: holdout, placebo, refutations,
    rolling-origin folds and recovery replicas (the data each is scored on rides along as a
    finished job)."""
    from liftos.model import mmm

    fit_options = result.options.model_copy(update={
        "draws": options.draws, "tune": options.tune, "chains": options.chains,
        "seed": options.seed, "progress": False})
    jobs: dict[str, Any] = {}
    if options.holdout_weeks:
        train, full = holdout_split(result.panel, options.holdout_weeks)
        jobs["holdout"], jobs["holdout_scored"] = (
            run(mmm.fit, train, result.spec.calibrated_within(train.dates), fit_options),
            _Done(full))
    if options.placebo:
        placebo_panel = with_placebo(result.panel, options.seed)
        placebo_spec = dataclasses.replace(result.spec, channels=(*result.spec.channels, PLACEBO))
        jobs["placebo"] = run(mmm.fit, placebo_panel, placebo_spec, fit_options)
    if options.refutations:
        jobs.update(_submit_refutations(result, fit_options, options.seed, run))
    folds = rolling_origins(result.panel, options.backtest_folds, options.holdout_weeks) if (
        options.backtest_folds and options.holdout_weeks) else []
    for k, (train, scored) in enumerate(folds):
        jobs[f"fold{k}"] = run(mmm.fit, train, result.spec.calibrated_within(train.dates),
                               fit_options)
        jobs[f"fold{k}_scored"] = _Done(scored)
    if options.recovery.replicas:
        jobs["recovery"] = start_recovery(result, options.recovery, result.spec.template.recovery,
                                          run, recovery_cache)
    return jobs


def holdout_step(jobs: dict[str, Any], options: ValidationOptions) -> Step:
    if "holdout" not in jobs:
        return {}, []
    forecast = forecast_scores(jobs["holdout"].result(), jobs["holdout_scored"].result(),
                               options.holdout_weeks)
    return {"holdout": forecast}, _holdout_checks(forecast)


def placebo_step(jobs: dict[str, Any]) -> Step:
    """A random-permutation channel must take (almost) none of the media contribution."""
    if "placebo" not in jobs:
        return {}, []
    share = jobs["placebo"].result().summary()["channels"][PLACEBO]["share_mean"]
    limit = T.placebo_share_max
    return {"placebo_share": share}, [Check(
        name="placebo share of media contribution", group="refutation", value=share,
        threshold=f"< {limit:.0%}", passed=share < limit,
        score=float(max(0.0, 1 - share / (4 * limit))))]


def backtest_step(jobs: dict[str, Any], options: ValidationOptions) -> Step:
    folds = sorted(k for k in jobs if k.startswith("fold") and not k.endswith("_scored"))
    if not folds:
        return {}, []
    backtest = [forecast_scores(jobs[k].result(), jobs[f"{k}_scored"].result(),
                                options.holdout_weeks) for k in folds]
    mape = float(np.mean([f.mape for f in backtest]))
    return {"backtest": backtest}, [Check(
        name=f"rolling-origin backtest MAPE ({len(folds)} folds)", group="fit", value=mape,
        threshold=f"<= {T.mape_ok:.0%}", passed=mape <= T.mape_ok,
        score=float(max(0.0, 1 - mape / T.mape_bad)))]


def refutation_step(result: FitResult, jobs: dict[str, Any]) -> Step:
    if "shuffle" not in jobs:
        return {}, []
    figures, checks = _refutation_checks(result, jobs)
    return {"refutations": figures}, checks


def lift_step(result: FitResult, lift_tests: list[LiftTest]) -> Step:
    """Experiments compared with the fit's interval of each channel's contribution."""
    if not lift_tests:
        return {}, []
    agreement = lift_agreement(result, list(lift_tests))
    inside = sum(a.contains for a in agreement)
    return {"lift_tests": [a.model_dump() for a in agreement]}, [Check(
        name="lift tests inside the model's predicted interval", group="calibration",
        value=inside / len(agreement), threshold="all", passed=inside == len(agreement),
        score=inside / len(agreement))]


def recovery_step(jobs: dict[str, Any]) -> Step:
    """Known truths on the tenant's own spend: how often the 94% interval holds them and how far
    off the estimates are, on the channels the model reports (those recoverable), and which
    channels this spend cannot recover."""
    if "recovery" not in jobs:
        return {}, []
    found: Recovery = jobs["recovery"].result()
    limits, lost, n = found.thresholds, found.unrecoverable, len(found.channels)
    coverage, error = found.reported_coverage or 0.0, found.reported_median_error
    overall = (f"{found.replicas} replicas{' (cached)' if found.cached else ''}; all channels: "
               f"{found.coverage:.0%} inside, median error {found.median_error:.0%}")
    return {"recovery": found}, [
        Check(name="recovery: known truths inside the 94% interval", group="recovery",
              value=coverage, threshold=f">= {limits.min_coverage:.0%}",
              passed=coverage >= limits.min_coverage,
              score=float(np.clip((coverage - 0.5) / 0.4, 0, 1)), detail=overall),
        Check(name="recovery: median ROAS error on known truths", group="recovery",
              value=error, threshold=f"<= {limits.max_median_error:.0%}",
              passed=error is not None and error <= limits.max_median_error,
              score=0.0 if error is None else float(
                  np.clip(1 - error / (2 * limits.max_median_error), 0, 1))),
        Check(name="recovery: channels recoverable on this spend", group="recovery",
              value=(n - len(lost)) / n, threshold="all", passed=not lost,
              score=(n - len(lost)) / n,
              detail="; ".join(f"{c.channel}: {c.reason}" for c in lost)),
    ]


def load_validation(fit_dir: str | Path) -> dict[str, Any] | None:
    path = Path(fit_dir) / "validation.json"
    return json.loads(path.read_text()) if path.exists() else None


def not_recoverable(fit_dir: str | Path) -> dict[str, str]:
    """Channels the fit's recovery check found its spend cannot recover, with why: the report,
    the planner and the next fit's priors treat them as unknown."""
    recovery = (load_validation(fit_dir) or {}).get("recovery") or {}
    return {c["channel"]: c["reason"] for c in recovery.get("channels", ()) if not c["recoverable"]}


def _submit_refutations(result, fit_options, seed: int, run) -> dict[str, Any]:
    from liftos.model import mmm

    summary = result.summary()["channels"]
    strongest = max(summary, key=lambda c: summary[c]["share_mean"])
    jobs = {"shuffle": run(mmm.fit, time_shuffled(result.panel, strongest, seed),
                           result.spec.uncalibrated((strongest,)), fit_options)}
    for k, window in enumerate(subset_windows(result.panel)):
        jobs[f"window{k}"] = run(mmm.fit, window, result.spec.calibrated_within(window.dates),
                                 fit_options)
    twin, truth = twin_panel(result, draw=result.n_draws // 2)
    jobs["twin"] = run(mmm.fit, twin, result.spec.uncalibrated(), fit_options)
    jobs["twin_truth"] = _Done(truth)
    jobs["strongest"] = _Done(strongest)
    return jobs


def _refutation_checks(result, jobs: dict[str, Any]) -> tuple[dict[str, Any], list[Check]]:
    full = result.summary()["channels"]
    strongest = jobs["strongest"].result()
    shuffled = jobs["shuffle"].result().summary()["channels"][strongest]["share_mean"]
    kept = shuffled / max(full[strongest]["share_mean"], 1e-12)
    windows = [jobs[f"window{k}"].result().summary()["channels"] for k in range(2)]
    stable = [c for c in full if all(full[c]["roas_hdi_low"] <= w[c]["roas_mean"]
                                     <= full[c]["roas_hdi_high"] for w in windows)]
    twin_truth = jobs["twin_truth"].result()
    twin = jobs["twin"].result().summary()["channels"]
    recovered = [c for c in full if twin[c]["roas_hdi_low"] <= twin_truth[c]
                 <= twin[c]["roas_hdi_high"]]
    robustness = robustness_values(result)
    weakest = min(robustness, key=robustness.get)
    n = len(full)
    figures = {"shuffled_channel": strongest, "shuffled_share_kept": kept,
               "stable_channels": stable, "twin_recovered": recovered,
               "twin_truth": twin_truth, "robustness_value": robustness}
    return figures, [
        Check(name=f"time-shuffled {strongest} loses its effect", group="refutation",
              value=kept, threshold=f"< {T.shuffle_share_kept_max:.0%} of its share kept",
              passed=kept < T.shuffle_share_kept_max,
              score=float(np.clip(1 - kept, 0, 1))),
        Check(name="ROAS stable on shifted 80% windows", group="refutation",
              value=len(stable) / n, threshold="all channels inside the full-fit HDI",
              passed=len(stable) == n, score=len(stable) / n,
              detail=f"unstable: {', '.join(sorted(set(full) - set(stable)))}"
              if len(stable) < n else ""),
        Check(name="simulated twin: truth recovered", group="refutation",
              value=len(recovered) / n, threshold="all channels inside the HDI",
              passed=len(recovered) == n, score=len(recovered) / n,
              detail=f"not identified: {', '.join(sorted(set(full) - set(recovered)))}"
              if len(recovered) < n else ""),
        Check(name="confounder robustness value (weakest channel)", group="refutation",
              value=robustness[weakest], threshold=f">= {T.robustness_ok:.2f}",
              passed=robustness[weakest] >= T.robustness_ok,
              score=float(min(1.0, robustness[weakest] / T.robustness_full)), detail=weakest),
    ]


def _holdout_checks(forecast: Forecast) -> list[Check]:
    return [
        Check(name="holdout MAPE", group="fit", value=forecast.mape,
              threshold=f"<= {T.mape_ok:.0%}", passed=forecast.mape <= T.mape_ok,
              score=float(max(0.0, 1 - forecast.mape / T.mape_bad))),
        Check(name="holdout R2", group="fit", value=forecast.r2,
              threshold=f">= {T.holdout_r2_ok}", passed=forecast.r2 >= T.holdout_r2_ok,
              score=float(min(1.0, max(0.0, forecast.r2)))),
        Check(name="holdout coverage (94%)", group="calibration", value=forecast.coverage,
              threshold=f">= {T.holdout_coverage_ok:.0%}",
              passed=forecast.coverage >= T.holdout_coverage_ok,
              score=float(min(1.0, forecast.coverage / 0.94))),
    ]


class _Done:
    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value


def _run_now(fn: Callable, *args: Any) -> _Done:
    return _Done(fn(*args))

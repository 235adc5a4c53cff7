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
from liftos.validation.refute import (
    PLACEBO,
    robustness_values,
    subset_windows,
    time_shuffled,
    twin_panel,
    with_placebo,
)
from liftos.validation.trust import TrustScore, trust_score

PLACEBO_SHARE_MAX = 0.02


class ValidationOptions(BaseModel):
    holdout_weeks: int = 8
    placebo: bool = True
    refutations: bool = True  # time shuffle, shifted windows, simulated twin, confounding
    backtest_folds: int = 0   # rolling-origin folds (expanding window, horizon = holdout_weeks)
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
    trust: TrustScore


def validate(fit_dir: str | Path, options: ValidationOptions = ValidationOptions(),
             lift_tests: list[LiftTest] = (), submit: Callable | None = None) -> Validation:
    """All checks for the fit in ``fit_dir``; ``submit(fn, *args)`` may run refits elsewhere
    (a Dask client's ``submit``) and must return objects with ``.result()``."""
    from liftos.model import mmm

    result = FitResult.load(fit_dir)
    fit_options = result.options.model_copy(update={
        "draws": options.draws, "tune": options.tune, "chains": options.chains,
        "seed": options.seed, "progress": False})
    run = submit or _run_now
    jobs = {}
    if options.holdout_weeks:
        train, full = holdout_split(result.panel, options.holdout_weeks)
        jobs["holdout"] = run(mmm.fit, train, result.spec, fit_options)
    if options.placebo:
        placebo_panel = with_placebo(result.panel, options.seed)
        placebo_spec = dataclasses.replace(result.spec, channels=(*result.spec.channels, PLACEBO))
        jobs["placebo"] = run(mmm.fit, placebo_panel, placebo_spec, fit_options)
    if options.refutations:
        jobs.update(_submit_refutations(result, fit_options, options.seed, run))
    folds = rolling_origins(result.panel, options.backtest_folds, options.holdout_weeks) if (
        options.backtest_folds and options.holdout_weeks) else []
    for k, (train, _) in enumerate(folds):
        jobs[f"fold{k}"] = run(mmm.fit, train, result.spec, fit_options)
    checks = review(result)
    validation: dict[str, Any] = {"fit_dir": str(fit_dir)}
    if "holdout" in jobs:
        forecast = forecast_scores(jobs["holdout"].result(), full, options.holdout_weeks)
        validation["holdout"] = forecast
        checks += _holdout_checks(forecast)
    if "placebo" in jobs:
        share = jobs["placebo"].result().summary()["channels"][PLACEBO]["share_mean"]
        validation["placebo_share"] = share
        checks.append(Check(name="placebo share of media contribution", group="refutation",
                            value=share, threshold=f"< {PLACEBO_SHARE_MAX:.0%}",
                            passed=share < PLACEBO_SHARE_MAX,
                            score=float(max(0.0, 1 - share / (4 * PLACEBO_SHARE_MAX)))))
    if folds:
        backtest = [forecast_scores(jobs[f"fold{k}"].result(), scored, options.holdout_weeks)
                    for k, (_, scored) in enumerate(folds)]
        validation["backtest"] = backtest
        mape = float(np.mean([f.mape for f in backtest]))
        checks.append(Check(name=f"rolling-origin backtest MAPE ({len(folds)} folds)",
                            group="fit", value=mape, threshold="<= 10%", passed=mape <= 0.10,
                            score=float(max(0.0, 1 - mape / 0.3))))
    if options.refutations:
        validation["refutations"], refutation_checks = _refutation_checks(result, jobs)
        checks += refutation_checks
    if lift_tests:
        agreement = lift_agreement(result, list(lift_tests))
        validation["lift_tests"] = [a.model_dump() for a in agreement]
        inside = sum(a.contains for a in agreement)
        checks.append(Check(name="lift tests inside the model's predicted interval",
                            group="calibration", value=inside / len(agreement),
                            threshold="all", passed=inside == len(agreement),
                            score=inside / len(agreement)))
    out = Validation(checks=checks, trust=trust_score(checks), **validation)
    write_json(Path(fit_dir) / "validation.json", out.model_dump(mode="json"))
    return out


def load_validation(fit_dir: str | Path) -> dict[str, Any] | None:
    path = Path(fit_dir) / "validation.json"
    return json.loads(path.read_text()) if path.exists() else None


def _submit_refutations(result, fit_options, seed: int, run) -> dict[str, Any]:
    from liftos.model import mmm

    summary = result.summary()["channels"]
    strongest = max(summary, key=lambda c: summary[c]["share_mean"])
    jobs = {"shuffle": run(mmm.fit, time_shuffled(result.panel, strongest, seed), result.spec,
                           fit_options)}
    for k, window in enumerate(subset_windows(result.panel)):
        jobs[f"window{k}"] = run(mmm.fit, window, result.spec, fit_options)
    twin, truth = twin_panel(result, draw=result.n_draws // 2)
    jobs["twin"] = run(mmm.fit, twin, result.spec, fit_options)
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
              value=kept, threshold="< 50% of its share kept", passed=kept < 0.5,
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
              value=robustness[weakest], threshold=">= 0.10", passed=robustness[weakest] >= 0.1,
              score=float(min(1.0, robustness[weakest] / 0.2)), detail=weakest),
    ]


def _holdout_checks(forecast: Forecast) -> list[Check]:
    return [
        Check(name="holdout MAPE", group="fit", value=forecast.mape, threshold="<= 10%",
              passed=forecast.mape <= 0.10, score=float(max(0.0, 1 - forecast.mape / 0.3))),
        Check(name="holdout R2", group="fit", value=forecast.r2, threshold=">= 0.5",
              passed=forecast.r2 >= 0.5, score=float(min(1.0, max(0.0, forecast.r2)))),
        Check(name="holdout coverage (94%)", group="calibration", value=forecast.coverage,
              threshold=">= 75%", passed=forecast.coverage >= 0.75,
              score=float(min(1.0, forecast.coverage / 0.94))),
    ]


class _Done:
    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value


def _run_now(fn: Callable, *args: Any) -> _Done:
    return _Done(fn(*args))

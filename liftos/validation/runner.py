"""Run the validation suite on a saved fit and write ``validation.json`` beside it.

Refits (holdout, placebo) reuse the compiled-model cache where shapes repeat; with a Dask
client they run in parallel (``submit``), else one after the other.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from liftos.home import write_json
from liftos.model.results import FitResult
from liftos.validation.checks import Check, review
from liftos.validation.lift import LiftTest, lift_agreement
from liftos.validation.outofsample import Forecast, forecast_scores, holdout_split
from liftos.validation.refute import PLACEBO, with_placebo
from liftos.validation.trust import TrustScore, trust_score

PLACEBO_SHARE_MAX = 0.02


class ValidationOptions(BaseModel):
    holdout_weeks: int = 8
    placebo: bool = True
    draws: int = 500
    tune: int = 500
    chains: int = 2
    seed: int = 7


class Validation(BaseModel):
    fit_dir: str
    checks: list[Check]
    holdout: Forecast | None = None
    placebo_share: float | None = None
    lift_tests: list[dict[str, Any]] = []
    trust: TrustScore


def validate(fit_dir: str | Path, options: ValidationOptions = ValidationOptions(),
             lift_tests: list[LiftTest] = (), submit: Callable | None = None) -> Validation:
    """All checks for the fit in ``fit_dir``; ``submit(fn, *args)`` may run refits elsewhere
    (a Dask client's ``submit``) and must return objects with ``.result()``."""
    from liftos.model import mmm

    result = FitResult.load(fit_dir)
    fit_options = dataclasses.replace(result.options, draws=options.draws, tune=options.tune,
                                      chains=options.chains, seed=options.seed, progress=False)
    run = submit or _run_now
    jobs = {}
    if options.holdout_weeks:
        train, full = holdout_split(result.panel, options.holdout_weeks)
        jobs["holdout"] = run(mmm.fit, train, result.spec, fit_options)
    if options.placebo:
        placebo_panel = with_placebo(result.panel, options.seed)
        placebo_spec = dataclasses.replace(result.spec, channels=(*result.spec.channels, PLACEBO))
        jobs["placebo"] = run(mmm.fit, placebo_panel, placebo_spec, fit_options)
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

"""One explainable trust score per run, 0–100, and the champion/challenger gate.

Score = weighted mean of the check groups' mean scores (each check scores 0–1):

| group | weight | checks |
|---|---:|---|
| convergence | 30 | r-hat, bulk ESS, divergences |
| fit | 25 | in-sample R2; holdout MAPE and R2 |
| calibration | 20 | predictive coverage in and out of sample; lift-test agreement |
| plausibility | 15 | ROAS in bounds, negative baseline, data/parameter ratio, VIF, prior contraction, saturation ridge |
| refutation | 10 | placebo share, time shuffle, shifted windows, simulated twin, confounding |
| recovery | 20 | known truths on the tenant's own spend: coverage, median ROAS error, channels lost |

Groups without checks (e.g. no lift tests, no refits) drop out and the rest are renormalised.
"""

from __future__ import annotations

from pydantic import BaseModel

from liftos.validation.checks import RIDGE, Check
from liftos.validation.recovery import Recovery
from liftos.validation.thresholds import THRESHOLDS

WEIGHTS = {"convergence": 30, "fit": 25, "calibration": 20, "plausibility": 15, "refutation": 10,
           "recovery": 20}
TRUST_THRESHOLD = THRESHOLDS.trust


class TrustScore(BaseModel):
    score: float
    components: dict[str, float]        # group -> 0..100
    weights: dict[str, float]


def trust_score(checks: list[Check]) -> TrustScore:
    groups: dict[str, list[float]] = {}
    for check in checks:
        groups.setdefault(check.group, []).append(check.score)
    components = {g: 100 * sum(v) / len(v) for g, v in groups.items()}
    weights = {g: float(WEIGHTS[g]) for g in components}
    total = sum(weights.values())
    score = sum(components[g] * weights[g] for g in components) / total if total else 0.0
    return TrustScore(score=round(score, 1), components={g: round(v, 1) for g, v in
                                                          components.items()}, weights=weights)


class Decision(BaseModel):
    promote: bool
    reasons: list[str]


def champion_decision(challenger: dict, champion: dict | None,
                      threshold: float = TRUST_THRESHOLD,
                      tolerance: float = THRESHOLDS.out_of_sample_tolerance) -> Decision:
    """A challenger replaces the champion only if it is trustworthy (score >= threshold, its
    recovery on known truths within the template's limits, no channel off its prior along a
    saturation ridge, no divergences) and not worse out of sample (holdout MAPE within
    ``tolerance`` of the champion's). ``challenger``/``champion`` are ``validation.json``
    contents."""
    reasons = []
    score = challenger["trust"]["score"]
    if score < threshold:
        reasons.append(f"trust score {score:.1f} below the threshold {threshold:.0f}")
    if challenger.get("recovery"):
        refusal = Recovery.model_validate(challenger["recovery"]).refusal()
        if refusal:
            reasons.append(refusal)
    ridge = _failed_detail(challenger, RIDGE)
    if ridge:
        reasons.append(f"{RIDGE}: {ridge}")
    divergences = _check_value(challenger, "divergences")
    if divergences:
        reasons.append(f"{divergences:.0f} divergent transitions: the posterior is unreliable")
    new_mape = (challenger.get("holdout") or {}).get("mape")
    old_mape = ((champion or {}).get("holdout") or {}).get("mape")
    if new_mape is not None and old_mape is not None and new_mape > old_mape * (1 + tolerance):
        reasons.append(f"holdout MAPE {new_mape:.1%} is worse than the champion's {old_mape:.1%}")
    return Decision(promote=not reasons, reasons=reasons or ["trusted and not worse out of sample"])


def _check_value(validation: dict, name: str) -> float | None:
    for check in validation["checks"]:
        if check["name"] == name:
            return check["value"]
    return None


def _failed_detail(validation: dict, name: str) -> str:
    """The detail of the check ``name`` where it failed (checks from before it existed pass)."""
    for check in validation["checks"]:
        if check["name"] == name and not check.get("passed", True):
            return check["detail"]
    return ""

"""What a plan may change, checked before any solving: a contradiction is named, never solved."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from liftos.errors import LiftOSError


class PlanInfeasible(LiftOSError):
    """Constraints that no allocation can satisfy; the message names the ones in conflict."""


class PlanConstraints(BaseModel):
    """Weekly amounts in the data's currency. Relative bounds multiply current spend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget: float | None = Field(None, description="weekly total; default: the current total")
    bounds: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="channel -> (min, max) weekly spend")
    relative_bounds: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="channel -> (min, max) as multiples of current")
    max_change: float = Field(0.3, ge=0, description="largest change of a channel vs current "
                                                     "(0.3: +-30%)")
    frozen: tuple[str, ...] = Field((), description="channels kept at their current spend")


@dataclass(frozen=True)
class Limits:
    """Per-channel weekly (min, max) and the budget, after every constraint was applied."""

    low: np.ndarray
    high: np.ndarray
    budget: float


def resolve_limits(constraints: PlanConstraints, channels: tuple[str, ...],
                   current: np.ndarray) -> Limits:
    """The channel limits the constraints imply for ``current`` ``(C,)`` weekly spend, or
    :class:`PlanInfeasible` naming every conflict."""
    named = {*constraints.bounds, *constraints.relative_bounds, *constraints.frozen}
    unknown = sorted(named - set(channels))
    if unknown:
        raise PlanInfeasible(f"unknown channel(s) {unknown}; the model has {list(channels)}")
    budget = float(current.sum()) if constraints.budget is None else constraints.budget
    if budget < 0:
        raise PlanInfeasible(f"budget {budget:,.2f} is negative")
    problems = []
    low = np.maximum(current * (1 - constraints.max_change), 0.0)
    high = current * (1 + constraints.max_change)
    for c, name in enumerate(channels):
        for kind, (lo, hi) in (("bounds", constraints.bounds.get(name, (0.0, np.inf))),
                               ("relative_bounds", tuple(current[c] * np.array(
                                   constraints.relative_bounds.get(name, (0.0, np.inf)))))):
            if lo > hi:
                problems.append(f"{name}: {kind} minimum {lo:,.2f} above its maximum {hi:,.2f}")
            if name in constraints.frozen and not lo <= current[c] <= hi:
                problems.append(f"{name} is frozen at its current {current[c]:,.2f}, outside "
                                f"its {kind} [{lo:,.2f}, {hi:,.2f}]")
            low[c], high[c] = max(low[c], lo), min(high[c], hi)
        if name in constraints.frozen:
            low[c] = high[c] = current[c]
        elif low[c] > high[c]:
            problems.append(f"{name}: max_change {constraints.max_change:.0%} around its "
                            f"current {current[c]:,.2f} allows [{current[c] * (1 - constraints.max_change):,.2f}, "
                            f"{current[c] * (1 + constraints.max_change):,.2f}], which misses its bounds")
    if problems:
        raise PlanInfeasible("contradictory constraints: " + "; ".join(problems))
    if low.sum() > budget * (1 + 1e-9) or high.sum() < budget * (1 - 1e-9):
        raise PlanInfeasible(
            f"the channel limits cannot sum to the budget {budget:,.2f}: together they allow "
            f"{low.sum():,.2f} to {high.sum():,.2f} a week (" + ", ".join(
                f"{n} [{lo:,.0f}, {hi:,.0f}]" for n, lo, hi in zip(channels, low, high,
                                                                   strict=True)) + ")")
    return Limits(low, high, budget)


def check_edits(constraints: PlanConstraints, channels: tuple[str, ...], current: np.ndarray,
                proposed: dict[str, float], edits: dict[str, float]
                ) -> tuple[dict[str, float], list[str]]:
    """The weekly amounts after a person's ``edits`` to the ``proposed`` plan, and why they
    break its constraints (empty: they hold). Channels not edited keep their proposed amount;
    the edited plan must still spend the proposed budget, to the cent."""
    unknown = sorted(set(edits) - set(channels))
    if unknown:
        return dict(proposed), [f"unknown channel(s) {unknown}; the plan has {list(channels)}"]
    final = {name: float(edits.get(name, proposed[name])) for name in channels}
    budget = sum(proposed.values())
    limits = resolve_limits(constraints.model_copy(update={"budget": budget}), channels, current)
    problems = [f"{name} {final[name]:,.2f} is outside its limits "
                f"[{limits.low[c]:,.2f}, {limits.high[c]:,.2f}]"
                for c, name in enumerate(channels)
                if not limits.low[c] - 0.005 <= final[name] <= limits.high[c] + 0.005]
    if abs(sum(final.values()) - budget) > 0.01:
        problems.append(f"the amounts total {sum(final.values()):,.2f} a week, not the plan's "
                        f"budget {budget:,.2f}")
    return final, problems

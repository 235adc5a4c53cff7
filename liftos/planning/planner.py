"""Allocate a weekly budget over channels (and geos) to maximise the incremental KPI over a
horizon, on every posterior draw: ``expected`` (the posterior mean), ``cvar`` (the mean of the
worst 10% of draws: a plan that holds up when the model is wrong in the bad direction) or
``target-roas`` (the largest budget whose next dollar still returns the target).

SLSQP with exact gradients (see ``response.py``) in budget units, so the gradient reads as
marginal ROAS; constraints are checked and named before the solver runs.
"""

from __future__ import annotations

import math
import time
from typing import Literal

import numpy as np
from pydantic import BaseModel
from scipy.optimize import minimize

from liftos.errors import LiftOSError
from liftos.model.results import hdi
from liftos.planning.constraints import Limits, PlanConstraints, resolve_limits
from liftos.planning.response import ResponseModel

Objective = Literal["expected", "cvar", "target-roas"]
CVAR_TAIL = 0.10
HORIZON_WEEKS = 13


class ChannelPlan(BaseModel):
    channel: str
    current_weekly: float
    recommended_weekly: float
    marginal_roas_current: float
    marginal_roas_recommended: float
    contribution_change_mean: float
    contribution_change_low: float
    contribution_change_high: float
    limit: str = ""   # "at its minimum" / "at its maximum" when a constraint binds


class BudgetPlan(BaseModel):
    objective: Objective
    horizon_weeks: int
    budget_weekly: float
    current_weekly: float
    channels: list[ChannelPlan]
    geo_allocation: dict[str, dict[str, float]]
    lift_mean: float
    lift_low: float
    lift_high: float
    probability_beats_current: float
    lift_draws: list[float]
    target_roas: float | None = None
    solver: dict[str, object]

    def describe(self) -> str:
        moves = ", ".join(f"{c.channel} {c.current_weekly:,.0f} -> {c.recommended_weekly:,.0f}"
                          for c in self.channels)
        return (f"{self.objective} plan for {self.horizon_weeks} weeks at {self.budget_weekly:,.0f} "
                f"a week: {moves}; expected lift {self.lift_mean:,.0f} [{self.lift_low:,.0f}, "
                f"{self.lift_high:,.0f}], beats the current allocation in "
                f"{self.probability_beats_current:.0%} of draws")


def plan_budget(response: ResponseModel, constraints: PlanConstraints = PlanConstraints(),
                objective: Objective = "expected", horizon: int = HORIZON_WEEKS,
                target_roas: float | None = None) -> BudgetPlan:
    """The best weekly allocation under ``constraints`` for ``objective``."""
    if horizon < 1:
        raise LiftOSError(f"horizon must be at least 1 week, got {horizon}")
    current = response.current.sum(axis=0)
    limits = resolve_limits(constraints, response.channels, current)
    started = time.perf_counter()
    if objective == "target-roas":
        if target_roas is None or target_roas <= 0:
            raise LiftOSError("the target-roas objective needs a positive target_roas")
        allocation, status = _largest_budget_at(response, limits, horizon, target_roas)
    else:
        allocation, status = _solve(response, limits, horizon, objective)
    status["seconds"] = round(time.perf_counter() - started, 3)
    return _report(response, allocation, limits, horizon, objective, status, target_roas)


# ------------------------------------------------------------------------------- solving
def _solve(response: ResponseModel, limits: Limits, horizon: int, objective: str
           ) -> tuple[np.ndarray, dict[str, object]]:
    n_geos, n_channels = response.current.shape
    if limits.budget == 0:
        return np.zeros((n_geos, n_channels)), {"status": "zero budget", "iterations": 0}
    unit = limits.budget
    tail = max(1, math.ceil(CVAR_TAIL * response.draws))

    def negative(u: np.ndarray) -> tuple[float, np.ndarray]:
        terms, slope = response.lift_terms(u.reshape(n_geos, n_channels) * unit, horizon)
        lift = terms.sum(axis=(1, 2))
        rows = np.argsort(lift)[:tail] if objective == "cvar" else slice(None)
        value, grad = lift[rows].mean(), slope[rows].mean(axis=0)
        return -value / (unit * horizon), -grad.ravel() / horizon

    by_channel = np.tile(np.eye(n_channels), n_geos)  # (C, G*C): each channel's total
    constraints = [
        {"type": "eq", "fun": lambda u: np.array([u.sum() - 1.0]),
         "jac": lambda u: np.ones((1, u.size))},
        {"type": "ineq", "fun": lambda u: by_channel @ u - limits.low / unit,
         "jac": lambda u: by_channel},
        {"type": "ineq", "fun": lambda u: limits.high / unit - by_channel @ u,
         "jac": lambda u: -by_channel}]
    upper = np.broadcast_to(limits.high / unit, (n_geos, n_channels)).ravel()
    start = _start(response.current, limits) / unit
    solved = minimize(negative, start.ravel(), jac=True, method="SLSQP",
                      bounds=list(zip(np.zeros(upper.size), upper, strict=True)),
                      constraints=constraints, options={"maxiter": 300, "ftol": 1e-10})
    allocation = np.clip(solved.x, 0, None).reshape(n_geos, n_channels) * unit
    _check(allocation, limits, solved.message)
    return allocation, {"status": "optimal" if solved.success else str(solved.message),
                        "iterations": int(solved.nit), "method": "SLSQP"}


def _start(current: np.ndarray, limits: Limits) -> np.ndarray:
    """Current spend moved into the limits and scaled to the budget (geo shares kept)."""
    totals = current.sum(axis=0)
    channel = np.clip(totals, limits.low, limits.high)
    gap = limits.budget - channel.sum()
    room = (limits.high - channel) if gap > 0 else (channel - limits.low)
    if room.sum() > 0:
        channel = channel + gap * room / room.sum()
    shares = np.where(totals > 0, current / np.where(totals > 0, totals, 1.0),
                      1.0 / current.shape[0])
    return shares * channel[None, :]


def _check(allocation: np.ndarray, limits: Limits, message: str) -> None:
    """The solver's answer spends the budget within every limit (to 0.01% of the budget)."""
    totals = allocation.sum(axis=0)
    tolerance = 1e-4 * max(limits.budget, 1.0)
    if (abs(totals.sum() - limits.budget) > tolerance
            or np.any(totals < limits.low - tolerance)
            or np.any(totals > limits.high + tolerance)):
        raise LiftOSError(f"the solver did not find a feasible plan ({message})")


def _largest_budget_at(response: ResponseModel, limits: Limits, horizon: int, target: float
                       ) -> tuple[np.ndarray, dict[str, object]]:
    """Bisection on the budget: the next dollar's return falls as the budget grows."""
    low, high = float(limits.low.sum()), float(limits.high.sum())

    def at(budget: float) -> tuple[np.ndarray, float]:
        allocation, _ = _solve(response, Limits(limits.low, limits.high, budget), horizon,
                               "expected")
        marginal = _marginal(response, allocation, horizon)
        totals = allocation.sum(axis=0)
        room = totals < limits.high * (1 - 1e-6)
        if room.any():  # the next dollar goes where it returns most
            return allocation, float(marginal[room].max())
        above = totals > limits.low * (1 + 1e-6)  # every channel full: the last dollar's return
        return allocation, float(marginal[above].min()) if above.any() else 0.0

    best, value = at(high)
    if value >= target:
        return best, {"status": "target met at the largest allowed budget", "iterations": 1}
    best, value = at(low)
    if value < target:
        return best, {"status": "target not met even at the smallest allowed budget",
                      "iterations": 2}
    steps = 2
    while high - low > 1e-3 * max(high, 1.0) and steps < 40:
        middle = (low + high) / 2
        allocation, value = at(middle)
        steps += 1
        if value >= target:
            low, best = middle, allocation
        else:
            high = middle
    return best, {"status": "optimal", "iterations": steps}


def _marginal(response: ResponseModel, allocation: np.ndarray, horizon: int) -> np.ndarray:
    """Expected KPI per extra unit of weekly spend on each channel (split as the geos are)."""
    _, slope = response.lift_terms(allocation, horizon)
    per_geo = slope.mean(axis=0) / horizon                                    # (G, C)
    totals = allocation.sum(axis=0)
    shares = np.where(totals > 0, allocation / np.where(totals > 0, totals, 1.0),
                      1.0 / allocation.shape[0])
    return (per_geo * shares).sum(axis=0)


# ------------------------------------------------------------------------------- report
def _report(response: ResponseModel, allocation: np.ndarray, limits: Limits, horizon: int,
            objective: Objective, status: dict[str, object], target: float | None
            ) -> BudgetPlan:
    terms, _ = response.lift_terms(allocation, horizon)
    by_channel = terms.sum(axis=1)                                             # (S, C)
    lift = terms.sum(axis=(1, 2))
    low, high = hdi(by_channel)
    lift_low, lift_high = hdi(lift)
    current, recommended = response.current.sum(axis=0), allocation.sum(axis=0)
    marginal_now = _marginal(response, response.current, horizon)
    marginal_then = _marginal(response, allocation, horizon)
    channels = []
    for c, name in enumerate(response.channels):
        gap = 1e-3 * max(limits.high[c], 1.0)
        limit = ("at its minimum" if recommended[c] <= limits.low[c] + gap and
                 limits.low[c] < limits.high[c] else "at its maximum" if
                 recommended[c] >= limits.high[c] - gap and limits.low[c] < limits.high[c]
                 else "frozen" if limits.low[c] == limits.high[c] else "")
        channels.append(ChannelPlan(
            channel=name, current_weekly=float(current[c]),
            recommended_weekly=float(recommended[c]),
            marginal_roas_current=float(marginal_now[c]),
            marginal_roas_recommended=float(marginal_then[c]),
            contribution_change_mean=float(by_channel[:, c].mean()),
            contribution_change_low=float(low[c]), contribution_change_high=float(high[c]),
            limit=limit))
    return BudgetPlan(
        objective=objective, horizon_weeks=horizon, budget_weekly=float(allocation.sum()),
        current_weekly=float(current.sum()), channels=channels,
        geo_allocation={geo: {name: float(allocation[g, c])
                              for c, name in enumerate(response.channels)}
                        for g, geo in enumerate(response.geos)},
        lift_mean=float(lift.mean()), lift_low=float(lift_low), lift_high=float(lift_high),
        probability_beats_current=float((lift > 0).mean()), lift_draws=lift.tolist(),
        target_roas=target, solver=status)

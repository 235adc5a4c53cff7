"""Plans are made from a tenant's champion only, and only while it is trusted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from liftos.errors import LiftOSError
from liftos.home import DataHome, write_json
from liftos.planning.audit import DecisionLog, DecisionRecord
from liftos.planning.constraints import PlanConstraints
from liftos.planning.planner import HORIZON_WEEKS, BudgetPlan, Objective, plan_budget
from liftos.planning.plots import write_plan_charts
from liftos.planning.response import ResponseModel
from liftos.validation.runner import not_recoverable
from liftos.validation.thresholds import THRESHOLDS


class PlanRefused(LiftOSError):
    """No champion, or one whose trust score is below the threshold: no plan is proposed."""


@dataclass(frozen=True)
class ChampionPlan:
    plan: BudgetPlan
    folder: Path
    champion_fit_dir: str
    trust_score: float
    proposal: DecisionRecord


def plan_from_champion(tenant: str, constraints: PlanConstraints = PlanConstraints(),
                       objective: Objective = "expected", horizon: int = HORIZON_WEEKS,
                       target_roas: float | None = None, home: DataHome | None = None,
                       trust_threshold: float = THRESHOLDS.trust, proposed_by: str = "",
                       flow_run_id: str = "", chain: str = "") -> ChampionPlan:
    """Plan from the tenant's champion, write ``plans/<time>-<objective>/`` (plan.json and two
    charts) and append the proposal to the tenant's decision audit; refuses, saying why, when
    there is no trusted champion."""
    from liftos.model.results import FitResult

    home = home or DataHome()
    champion = home.champion(tenant)
    if champion is None:
        raise PlanRefused(f"tenant '{tenant}' has no champion to plan from; run "
                          f"`liftos run --tenant {tenant}` first")
    trust = champion.get("trust_score")
    if trust is None or trust < trust_threshold:
        raise PlanRefused(f"tenant '{tenant}': the champion's trust score "
                          f"{'is unknown' if trust is None else f'{trust:.1f} is below'} "
                          f"the threshold {trust_threshold:.0f}; no plan is proposed")
    fit = FitResult.load(champion["fit_dir"])
    constraints, held = hold_unrecoverable(constraints, not_recoverable(champion["fit_dir"]))
    response = ResponseModel.from_fit(fit)
    first_week = str(fit.panel.dates[-1] + np.timedelta64(7, "D"))
    plan = plan_budget(response, constraints, objective, horizon, target_roas)
    folder = home.folder(tenant, "plans") / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{objective}"
    folder.mkdir(parents=True)
    write_json(folder / "plan.json", {
        "tenant": tenant, "champion_fit_dir": champion["fit_dir"], "trust_score": trust,
        "not_recoverable": held,
        "constraints": json.loads(constraints.model_dump_json()), **plan.model_dump()})
    write_plan_charts(response, plan, folder)
    alternatives = {"current": {"lift_mean": 0.0, "lift_low": 0.0, "lift_high": 0.0}}
    for other in ("expected", "cvar"):
        alt = plan if other == objective else plan_budget(response, constraints, other, horizon)
        alternatives[other] = {"lift_mean": alt.lift_mean, "lift_low": alt.lift_low,
                               "lift_high": alt.lift_high,
                               "weekly": {c.channel: c.recommended_weekly for c in alt.channels}}
    proposal = DecisionLog(tenant, home).append("proposal", {
        "tenant": tenant, "plan": str(folder / "plan.json"), "objective": objective,
        "horizon_weeks": horizon, "first_week": first_week, "champion_fit_dir": champion["fit_dir"],
        "data_sha256": champion.get("data_sha256"), "config_hash": champion.get("config_hash"),
        "trust_score": trust, "constraints": json.loads(constraints.model_dump_json()),
        "not_recoverable": held, "solver": plan.solver, "budget_weekly": plan.budget_weekly,
        "lift_mean": plan.lift_mean, "lift_low": plan.lift_low, "lift_high": plan.lift_high,
        "probability_beats_current": plan.probability_beats_current,
        "channels": [c.model_dump() for c in plan.channels],
        "binding": [f"{c.channel} {c.limit}" for c in plan.channels if c.limit],
        "alternatives": alternatives, "proposed_by": proposed_by, "flow_run_id": flow_run_id,
        **({"chain": chain} if chain else {})})
    return ChampionPlan(plan, folder, champion["fit_dir"], trust, proposal)


def hold_unrecoverable(constraints: PlanConstraints, unknown: dict[str, str]
                       ) -> tuple[PlanConstraints, dict[str, str]]:
    """A channel the model cannot recover keeps its current spend (its ROAS is not known well
    enough to move money on), unless the person set its bounds; with the channels held."""
    named = {*constraints.bounds, *constraints.relative_bounds, *constraints.frozen}
    held = {c: why for c, why in unknown.items() if c not in named}
    if not held:
        return constraints, {}
    return constraints.model_copy(update={"frozen": (*constraints.frozen, *held)}), held


def record_decision(tenant: str, proposal: DecisionRecord, verdict: str, by: str = "",
                    comment: str = "", weekly: dict[str, float] | None = None,
                    flow_run_id: str = "", home: DataHome | None = None) -> DecisionRecord:
    """A person's answer to a proposal (``approved``, ``rejected``) or its ``expired`` end,
    appended to the audit (``liftos.memory.remember.decision_memory`` makes it a memory)."""
    return DecisionLog(tenant, home).append("decision", {
        "proposal_seq": proposal.seq, "proposal_hash": proposal.hash, "verdict": verdict,
        "by": by, "comment": comment, "weekly": weekly or {}, "flow_run_id": flow_run_id,
        "objective": proposal.payload.get("objective"),
        "lift_mean": proposal.payload.get("lift_mean")})


def plans_in_force(records: list[DecisionRecord]) -> list[DecisionRecord]:
    """The approved plans, oldest first, with those rolled back removed: the last is in force."""
    stack: list[DecisionRecord] = []
    for record in records:
        if record.kind == "decision" and record.payload.get("verdict") == "approved":
            stack.append(record)
        elif record.kind == "rollback" and stack:
            stack.pop()
    return stack


def rollback(tenant: str, by: str, comment: str = "", home: DataHome | None = None
             ) -> DecisionRecord:
    """Reinstate the approved plan before the one in force, as a new record: history is never
    edited, so the audit shows who rolled back what, and when."""
    log = DecisionLog(tenant, home)
    stack = plans_in_force(log.verify())
    if len(stack) < 2:
        raise LiftOSError(f"tenant '{tenant}': no earlier approved plan to go back to "
                          f"({len(stack)} approved plan(s) in force)")
    current, previous = stack[-1], stack[-2]
    return log.append("rollback", {"reinstates": previous.seq, "replaces": current.seq,
                                   "weekly": previous.payload["weekly"], "by": by,
                                   "comment": comment})

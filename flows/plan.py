"""``budget-plan``: propose a plan from the tenant's trusted champion, then wait for a person.

The flow pauses with a typed form (:class:`PlanApproval`): approve, reject, or approve with
edited weekly amounts. It is answered from the Prefect UI, with ``liftos plan approve|reject
RUN_ID``, or over REST (``POST /flow_runs/{id}/resume`` with ``{"run_input": {...}}``). Edited
amounts that break the plan's constraints are refused, saying why in the run's log, and the
flow pauses again for a new answer. Without an answer within ``decision_timeout_s`` the
proposal expires. Every proposal and decision lands in the hash-chained decision audit.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from prefect import flow, tags
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from liftos.errors import LiftOSError
from liftos.planning.audit import DecisionRecord
from liftos.planning.constraints import PlanConstraints, check_edits
from liftos_app.tasks import observability
from liftos_app.tasks.planning import decide, propose_plan

WEEK_S = 7 * 24 * 3600


class PlanApproval(RunInput):
    """A person's answer to a proposed budget plan."""

    decision: Literal["approve", "reject"] = Field(description="approve or reject the plan")
    approver: str = Field(min_length=1, description="who decides (name or e-mail)")
    comment: str = Field("", description="why")
    amounts: dict[str, float] = Field(
        default_factory=dict, description="approve with these weekly amounts instead (channel "
                                          "-> amount; channels not named keep the plan's)")


@flow(name="budget-plan", flow_run_name="plan-{tenant}", validate_parameters=True)
def budget_plan(tenant: str = "demo", objective: Literal["expected", "cvar", "target-roas"]
                = "expected", constraints: PlanConstraints = PlanConstraints(),
                horizon: int = 13, target_roas: float | None = None,
                decision_timeout_s: int = WEEK_S, poll_s: int = 10, chain: str = ""
                ) -> DecisionRecord:
    """Propose a plan from the trusted champion and record a person's decision on it.

    Args:
        tenant: tenant name.
        objective: expected (posterior mean lift), cvar (worst 10% of draws) or target-roas.
        constraints: budget, bounds, relative bounds, max change, frozen channels.
        horizon: weeks the plan runs.
        target_roas: the marginal ROAS the last dollar must earn (target-roas).
        decision_timeout_s: how long the proposal waits for a decision before it expires.
        poll_s: how often the paused flow checks for an answer.
        chain: the signal chain that asked for this plan (its id lands on the proposal and the
            decision memory).
    """
    with tags(f"tenant:{tenant}"):
        proposed = propose_plan(tenant, constraints, objective, horizon, target_roas, chain)
        proposed_weekly = {c.channel: c.recommended_weekly for c in proposed.plan.channels}
        current = np.array([c.current_weekly for c in proposed.plan.channels])
        while True:
            try:
                answer = pause_flow_run(wait_for_input=PlanApproval, timeout=decision_timeout_s,
                                        poll_interval=poll_s)
            except FlowPauseTimeout:
                decide(tenant, proposed.proposal, "expired", "", f"no decision within "
                       f"{decision_timeout_s} s", proposed_weekly)
                raise LiftOSError(f"budget plan for '{tenant}' expired: no decision within "
                                  f"{decision_timeout_s} s (proposal #{proposed.proposal.seq})"
                                  ) from None
            if answer.decision == "reject":
                return decide(tenant, proposed.proposal, "rejected", answer.approver,
                              answer.comment, proposed_weekly)
            weekly, problems = check_edits(constraints, tuple(proposed_weekly), current,
                                           proposed_weekly, answer.amounts)
            if not problems:
                return decide(tenant, proposed.proposal, "approved", answer.approver,
                              answer.comment, weekly)
            observability.log_line(f"edited amounts from {answer.approver} refused: "
                                   + "; ".join(problems) + "; waiting for a new answer")

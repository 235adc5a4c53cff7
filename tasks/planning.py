"""Prefect tasks of the budget-plan flow: propose from the champion, record the decision."""

from __future__ import annotations

from prefect import task
from prefect.events import emit_event
from prefect.runtime import flow_run

from liftos.planning.audit import DecisionRecord
from liftos.planning.champion import ChampionPlan, plan_from_champion, record_decision
from liftos.planning.constraints import PlanConstraints
from liftos_app.tasks import observability
from liftos_app.tasks.stages import stage


@task(name="propose-plan", task_run_name="propose-plan-{tenant}")
@stage("propose-plan", say=lambda proposed: proposed.plan.describe())
def propose_plan(tenant: str, constraints: PlanConstraints, objective: str, horizon: int,
                 target_roas: float | None, chain: str = "") -> ChampionPlan:
    """Plan from the trusted champion; publish it (artifact, ``liftos.plan.proposed``)."""
    run_id = str(flow_run.id or "")
    proposed = plan_from_champion(tenant, constraints, objective, horizon, target_roas,
                                  proposed_by="budget-plan flow", flow_run_id=run_id,
                                  chain=chain)
    observability.publish_plan(tenant, proposed)
    write_plan_brief(tenant, proposed)
    emit_event(event="liftos.plan.proposed", resource=observability.tenant_resource(tenant),
               payload={"proposal_seq": proposed.proposal.seq,
                        "proposal_hash": proposed.proposal.hash, "flow_run_id": run_id,
                        "objective": objective, "lift_mean": proposed.plan.lift_mean,
                        "weekly": {c.channel: c.recommended_weekly
                                   for c in proposed.plan.channels}})
    return proposed


def write_plan_brief(tenant: str, proposed: ChampionPlan) -> None:
    """The plan in plain language, every number checked (``brief.md`` beside ``plan.json``)."""
    from liftos.brief.run import brief_for_plan
    from liftos.errors import LiftOSError
    from liftos.tenancy import load_tenant
    from liftos_app.blocks.openai import llm_settings

    try:
        language = load_tenant(tenant).language
    except LiftOSError:  # a tenant planned from its champion alone: English
        language = "en"
    result = brief_for_plan(tenant, proposed.champion_fit_dir, proposed.folder, language,
                            llm_settings())
    observability.publish_brief(tenant, result)
    observability.log_line(result.describe())


@task(name="record-decision", task_run_name="record-decision-{tenant}")
@stage("record-decision", say=lambda record: record.describe())
def decide(tenant: str, proposal: DecisionRecord, verdict: str, by: str, comment: str,
           weekly: dict[str, float]) -> DecisionRecord:
    """Append the decision to the audit, remember it, and emit ``liftos.plan.<verdict>``."""
    from liftos.memory.remember import decision_memory
    from liftos_app.blocks.chroma import memory_store

    run_id = str(flow_run.id or "")
    record = record_decision(tenant, proposal, verdict, by, comment, weekly, run_id)
    memory_store().remember([decision_memory(tenant, proposal, record)])
    emit_event(event=f"liftos.plan.{verdict}", resource=observability.tenant_resource(tenant),
               payload={"proposal_seq": proposal.seq, "decision_seq": record.seq, "by": by,
                        "comment": comment, "weekly": weekly, "flow_run_id": run_id})
    return record

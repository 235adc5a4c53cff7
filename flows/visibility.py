"""``visibility``: ask the tenant's AI-answer prompt panel this week, measure how visible the
brand is against its competitors, keep the weekly series, and emit ``liftos.visibility.shifted``
when the brand's mention rate moved beyond its binomial noise.

With no model configured (no OpenAI block or key) the flow says so and asks nothing.
"""

from __future__ import annotations

import datetime as dt
import sys

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from prefect.runtime import flow_run

from liftos.signals import visibility as library
from liftos.tenancy import load_tenant
from liftos_app.blocks.openai import llm_settings
from liftos_app.tasks import observability
from liftos_app.tasks.observability import artifact_key, tenant_resource
from liftos_app.tasks.stages import stage


@task(name="ask-prompts", task_run_name="ask-prompts-{tenant}")
@stage("ask-prompts", say=lambda answers: f"{len(answers)} answers landed raw")
def ask_prompts(tenant: str, panel: library.PromptPanel, week: dt.date) -> list[library.Answer]:
    return library.ask(panel, llm_settings(), tenant, week)


@task(name="measure-visibility", task_run_name="measure-visibility-{tenant}")
@stage("measure-visibility")
def measure_visibility(tenant: str, panel: library.PromptPanel, week: dt.date,
                       answers: list[library.Answer]) -> library.Visibility:
    found = library.measure(answers, panel, week)
    library.record(found, tenant)
    create_table_artifact(key=artifact_key("visibility", tenant), table=[
        {"brand": r["brand"], "mention_rate": round(r["mention_rate"], 4),
         "first_rank": None if r["first_rank"] is None else round(r["first_rank"], 2),
         "share_of_voice": round(r["share_of_voice"], 4)} for r in found.rows()],
        description=f"AI-answer visibility of {panel.brand} and its competitors, week of {week}")
    shift = library.detect_shift(library.load_series(tenant), panel.brand)
    if shift is not None:
        observability.log_line(shift.describe())
        chain = str(flow_run.id or "")
        observability.remember_shift(tenant, "visibility", shift.describe(), shift.week, chain,
                                     {"brand": shift.brand, "size": shift.rate - shift.baseline,
                                      "z": shift.z})
        emit_event(event="liftos.visibility.shifted", resource=tenant_resource(tenant),
                   payload={"week": str(shift.week), "brand": shift.brand, "rate": shift.rate,
                            "baseline": shift.baseline, "size": shift.rate - shift.baseline,
                            "z": shift.z, "answers": shift.answers, "chain": chain})
    return found


@flow(name="visibility", flow_run_name="visibility-{tenant}", validate_parameters=True)
def visibility(tenant: str, week: dt.date | None = None) -> library.Visibility | None:
    """Measure the brand's AI-answer visibility for one week.

    Args:
        tenant: tenant name (its file needs a ``surfacing`` section).
        week: the Monday of the week measured (default: this week's).
    """
    panel = library.panel_of(load_tenant(tenant))
    if llm_settings().api_key is None:
        observability.log_line("no model configured (OPENAI_API_KEY or the OpenAI block): "
                               "nothing asked, nothing recorded")
        return None
    week = week or library.monday()
    answers = ask_prompts(tenant, panel, week)
    return measure_visibility(tenant, panel, week, answers)


if __name__ == "__main__":
    visibility(sys.argv[1])

"""``sentiment``: ingest a tenant's customer texts, update the weekly index, and emit
``liftos.sentiment.shifted`` (size, noise, week and the texts that drove it) when the newest
week moved beyond the noise of the weeks before it.

Run locally: ``python -m liftos_app.flows.sentiment TENANT FILE [FILE ...]``.
"""

from __future__ import annotations

import sys
from typing import Literal

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from prefect.runtime import flow_run

from liftos.signals import sentiment as library
from liftos.tenancy import valid_tenant_name
from liftos_app.tasks import observability
from liftos_app.tasks.observability import artifact_key, tenant_resource
from liftos_app.tasks.stages import stage


@task(name="ingest-texts", task_run_name="ingest-texts-{tenant}")
@stage("ingest-texts")
def ingest_texts(tenant: str, path: str, scorer: str = "vader") -> library.SentimentCounts:
    from liftos.errors import LiftOSError
    from liftos_app.blocks.openai import llm_settings

    model = llm_settings() if scorer == "model" else None
    if model is not None and model.api_key is None:
        raise LiftOSError("scorer 'model' needs the OpenAI block or OPENAI_API_KEY")
    return library.ingest_texts(path, tenant, model=model)


@task(name="sentiment-index", task_run_name="sentiment-index-{tenant}")
@stage("sentiment-index", say=lambda shift: shift.describe() if shift else
       "no sentiment shift in the newest week")
def sentiment_index(tenant: str, weeks: int = 12) -> library.Shift | None:
    """The weekly index as an artifact; a shift as an event."""
    texts = library.load_texts(tenant)
    index = library.weekly_index(texts)
    if not index.is_empty():
        create_table_artifact(key=artifact_key("sentiment", tenant), table=[
            {"week": str(r["week"]), "index": round(r["index"], 4),
             "stderr": round(r["stderr"], 4), "texts": r["texts"], "scorer": r["scorer"]}
            for r in index.tail(weeks).iter_rows(named=True)],
            description=f"Weekly customer sentiment of {tenant} (VADER compound, -1..1)")
    shift = library.detect_shift(texts)
    if shift is not None:
        chain = str(flow_run.id or "")
        observability.remember_shift(tenant, "sentiment", shift.describe(), shift.week, chain,
                                     {"size": shift.size, "drivers": list(shift.drivers)})
        emit_event(event="liftos.sentiment.shifted", resource=tenant_resource(tenant),
                   payload={"week": str(shift.week), "index": shift.index,
                            "baseline": shift.baseline, "size": shift.size,
                            "noise": shift.noise, "texts": shift.texts,
                            "drivers": list(shift.drivers), "chain": chain})
    return shift


@flow(name="sentiment", flow_run_name="sentiment-{tenant}", validate_parameters=True)
def sentiment(tenant: str, files: list[str],
              scorer: Literal["vader", "model"] = "vader") -> library.Shift | None:
    """Ingest customer texts and check the newest week for a shift.

    Args:
        tenant: tenant name.
        files: CSV or Parquet files with date and text (optional source, channel, campaign,
            language).
        scorer: vader (offline, English) or model (the configured OpenAI model, any language).
    """
    if not valid_tenant_name(tenant):
        raise ValueError(f"{tenant!r} is not a tenant name")
    for path in files:
        ingest_texts(tenant, path, scorer)
    return sentiment_index(tenant)


if __name__ == "__main__":
    sentiment(sys.argv[1], sys.argv[2:])

"""Memory search as a Prefect task, for flows that need past context (e.g. a report that quotes
what happened the last time a channel moved like this)."""

from __future__ import annotations

from datetime import date

from prefect import task

from liftos.memory.store import Hit
from liftos_app.blocks.chroma import memory_store
from liftos_app.tasks.stages import stage


@task(name="search-memory", task_run_name="search-memory-{tenant}")
@stage("search-memory")
def search_memory(tenant: str, query: str, k: int = 5, channel: str | None = None,
                  kind: str | None = None, since: date | None = None) -> list[Hit]:
    return memory_store().search(tenant, query, k=k, channel=channel, kind=kind, since=since)

"""Ingestion as Prefect tasks: one per source, then the weekly panel the model reads.

Each sync holds a slot of its source's global concurrency limit for its whole duration and
takes a slot of the source's rate limit before every request (``strict``: a missing limit is an
error, not a silent no-op; :func:`ensure_limits` creates them from ``deployments/limits.yaml``).
The task itself is not retried: :class:`liftos.ingest.retry.RetryPolicy` owns every retry of
a request, so an error that reaches the task is final (a source that gave up, a Retry-After
above the ceiling, bad credentials, a schema field gone, a critical data-quality failure). A new
run resumes from the bookmarks.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from prefect import task
from prefect.concurrency.sync import concurrency, rate_limit

from liftos.errors import LiftOSError
from liftos.home import DataHome
from liftos.ingest import sources
from liftos.ingest.curate import curated_path
from liftos.ingest.files import weekly_panel
from liftos.ingest.klaviyo import SchemaError
from liftos.ingest.quality import Checker, QualityFailed
from liftos.ingest.sources import (
    CONNECTORS,
    ENDPOINT_FIELD,
    curator,
    source_settings,
)
from liftos.ingest.sync import SyncResult
from liftos.settings import settings
from liftos.tenancy import Tenant
from liftos_app.blocks.credentials import load_credentials
from liftos_app.tasks import observability
from liftos_app.tasks.stages import StageFailed


def ensure_limits(path: Path | None = None) -> list[str]:
    """Create the global concurrency/rate limits that do not exist yet (existing ones are left
    as an operator may have tuned them)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    created = []
    with get_client(sync_client=True) as client:
        limits = path or settings().deployment_file("limits.yaml")
        for spec in yaml.safe_load(limits.read_text())["limits"]:
            try:
                client.read_global_concurrency_limit_by_name(spec["name"])
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(**spec))
                created.append(spec["name"])
    return created


@task(name="ingest-source", task_run_name="ingest-{source}-{tenant.name}")
def ingest_source(tenant: Tenant, source: str, since: str | None = None, until: str | None = None,
                  endpoint: str | None = None, home: str | None = None) -> dict[str, Any]:
    """Sync one source of the tenant into its canonical tables (incremental from the bookmarks,
    or from ``since``); publish counts, quality findings and schema drift."""
    try:
        source_config = source_settings(tenant, source)
    except LiftOSError as exc:
        raise StageFailed(f"ingest-{source}", exc) from None
    kind = CONNECTORS[source][1]
    store = curator(tenant, DataHome(home), _run_label(source))
    ensure_limits()
    try:
        credentials = load_credentials(kind, source_config.credentials,
                                       {ENDPOINT_FIELD[source]: endpoint})
        with concurrency(f"liftos-ingest-{kind}", occupy=1, strict=True):
            result = sources.ingest_source(
                tenant, source, credentials, store, since=_date(since), until=_date(until),
                throttle=lambda: rate_limit(f"liftos-rate-{kind}", strict=True),
                progress=observability.log_line)
    except SchemaError as exc:
        observability.emit_schema_drift(tenant.name, source, str(exc), broken=True)
        observability.publish_ingest(tenant.name, source, None, store.reports, str(exc))
        raise StageFailed(f"ingest-{source}", exc) from exc
    except LiftOSError as exc:
        observability.publish_ingest(tenant.name, source, None, store.reports, str(exc))
        raise StageFailed(f"ingest-{source}", exc) from exc
    for drift in result.drift:
        observability.emit_schema_drift(tenant.name, source, drift.describe(), broken=False)
    observability.publish_ingest(tenant.name, source, result, store.reports)
    findings = sum(len(report["findings"]) for report in store.reports)
    observability.log_line(f"{result.line()} in {result.seconds:.1f} s; {len(result.drift)} "
                           f"schema drift(s), {findings} quality finding(s)")
    return _summary(result)


@task(name="build-panel", task_run_name="build-panel-{tenant.name}")
def build_panel(tenant: Tenant, ingested: list[dict[str, Any]] | None = None,
                home: str | None = None) -> str:
    """The weekly panel from the curated tables, after the cross-table checks (every week with
    spend has an outcome: critical)."""
    data_home = DataHome(home)
    import polars as pl

    media = pl.read_parquet(curated_path(data_home, tenant.name, "media_daily"))
    outcome = pl.read_parquet(curated_path(data_home, tenant.name, "outcome_daily"))
    report = Checker(tenant.sources.quality).check_panel(media, outcome, tenant.template.kpi.name)
    if report.critical:
        raise StageFailed("build-panel", QualityFailed(f"{tenant.name} weekly panel",
                                                       report.critical))
    panel = weekly_panel(tenant.name, tenant.template, data_home)
    observability.log_line(f"weekly panel {panel}: {media.height:,} media and {outcome.height:,} "
                           "outcome rows checked across tables")
    return str(panel)


def _summary(result: SyncResult) -> dict[str, Any]:
    return {"source": result.source, **result.counts.model_dump(),
            "windows": result.windows, "drift": [d.describe() for d in result.drift],
            "seconds": round(result.seconds, 2)}


def _run_label(source: str) -> str:
    from prefect.runtime import flow_run

    return f"{source}-{flow_run.id or dt.datetime.now().strftime('%Y%m%dT%H%M%S')}"


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None

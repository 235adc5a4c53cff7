"""``backfill``: replay a tenant's history, one fit per cut-off week, without touching the
champion. Gives the run history that stability checks and memory learn from.

Each cut-off is an ``mmm_refresh`` subflow (same stages, same caching: a re-run after a failure
resumes at the first missing fit; same-shaped windows reuse the compiled model).
"""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow

from liftos.errors import LiftOSError
from liftos.model.options import ModelOptions
from liftos.refresh import RunSummary
from liftos_app.flows.refresh import ingest_sources, mmm_refresh
from liftos_app.tasks.stages import resolve_tenant


def cutoffs(start: date, end: date, step_weeks: int) -> list[str]:
    if step_weeks < 1:
        raise LiftOSError(f"backfill: step_weeks must be at least 1, got {step_weeks}")
    if end < start:
        raise LiftOSError(f"backfill: end {end} is before start {start}")
    days = (end - start).days
    return [str(start + timedelta(weeks=k * step_weeks))
            for k in range(days // (7 * step_weeks) + 1)]


@flow(name="backfill", flow_run_name="backfill-{tenant}", validate_parameters=True)
def backfill(tenant: str, start: date, end: date, step_weeks: int = 4,
             options: ModelOptions = ModelOptions(), dask_address: str | None = None,
             history_since: date | None = None) -> list[RunSummary]:
    """Fit the tenant's model on data up to each cut-off from ``start`` to ``end``.

    For a tenant with ``sources``, history is ingested first, from ``history_since`` (default:
    each source's ``since`` setting, or its bookmarks) to ``end``, in chunks with a bookmark
    after each: a backfill killed mid-way resumes at its last stored chunk."""
    panel = ingest_sources(resolve_tenant(tenant), since=history_since and history_since.isoformat(),
                           until=end.isoformat())
    return [mmm_refresh(tenant=tenant, options=options, dask_address=dask_address, until=cut,
                        promote=False, data=panel, ingest=False)
            for cut in cutoffs(start, end, step_weeks)]

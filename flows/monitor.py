"""``monitor``: the always-on hourly check of every tenant's newest week against its model in
service. Never refits; emits ``liftos.anomaly.detected`` when something looks off.

Run locally: ``liftos monitor --tenant demo`` (or ``python -m flows.monitor demo``).
"""

from __future__ import annotations

import sys

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from prefect.runtime import flow_run

from liftos import monitor as library
from liftos.errors import LiftOSError
from liftos.home import DataHome
from liftos.tenancy import available_tenants
from liftos_app.tasks.observability import artifact_key, run_url, tenant_resource
from liftos_app.tasks.stages import stage


@task(name="check-tenant", task_run_name="check-{tenant}")
@stage("check-tenant")
def check_tenant(tenant: str, data: str | None = None) -> library.MonitorCheck:
    check = library.check_tenant(tenant, data=data)
    create_table_artifact(key=artifact_key("monitor", check.tenant), table=[
        {"week": check.week, "kpi_actual": round(check.kpi_actual, 2),
         "kpi_expected": round(check.kpi_expected, 2), "kpi_low": round(check.kpi_low, 2),
         "kpi_high": round(check.kpi_high, 2), "anomalies": ", ".join(check.anomalies) or "none"}],
        description=f"Newest week vs the champion, {check.tenant}")
    if check.anomalies:
        emit_event(event="liftos.anomaly.detected", resource=tenant_resource(check.tenant),
                   payload=check.model_dump())
        from liftos.memory.remember import anomaly_memories
        from liftos_app.blocks.chroma import memory_store

        run_id = flow_run.id or ""
        memory_store().remember(anomaly_memories(check, run_id, run_url(run_id)))
    return check


@flow(name="monitor", flow_run_name="monitor", validate_parameters=True)
def monitor(tenants: list[str] | None = None, data: str | None = None
            ) -> list[library.MonitorCheck]:
    """Check each tenant (default: every tenant with a champion).

    Args:
        tenants: tenant names; default all tenants in ``tenants/`` that have a champion.
        data: a data file overriding the tenant file's (single tenant only).
    """
    home = DataHome()
    names = tenants or [t for t in available_tenants() if home.champion(t) is not None]
    if data is not None and len(names) != 1:
        raise LiftOSError("monitor: 'data' overrides one tenant's data; pass exactly one tenant")
    return [check_tenant(name, data) for name in names]


if __name__ == "__main__":
    monitor(tenants=sys.argv[1:] or None)

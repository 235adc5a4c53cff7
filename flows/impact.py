"""``signal-impact``: a signal shifted (``liftos.sentiment.shifted`` or
``liftos.visibility.shifted``, through the automations in ``deployments/automations.yaml``);
refit the tenant with the signal as a control, estimate the shift's weekly KPI impact with its
interval, remember it under the chain id, and when it is material emit ``liftos.signal.impact``
(which proposes a budget plan for a tenant that asks for plans).
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, task
from prefect.events import emit_event
from prefect.runtime import flow_run

from liftos import refresh
from liftos.home import DataHome
from liftos.model.options import ModelOptions
from liftos.model.results import FitResult
from liftos.signals import impact as library
from liftos.tenancy import load_tenant
from liftos_app.tasks.observability import run_url, tenant_resource
from liftos_app.tasks.stages import stage


@task(name="estimate-impact", task_run_name="estimate-impact-{tenant}-{signal}")
@stage("estimate-impact")
def estimate_impact(tenant: str, signal: str, size: float, week: str, chain: str,
                    options: ModelOptions, min_share: float) -> library.SignalImpact:
    """Refit with the signal as a control (the tenant's own setting, or added for this fit)."""
    config = load_tenant(tenant)
    if signal not in config.signals:
        config = config.model_copy(update={"signals": (*config.signals, signal)})
    ref = refresh.tenant_ref(config, DataHome())
    features = refresh.build_features(refresh.validate_input(refresh.land_input(ref)))
    fitted = refresh.fit_model(features, options)
    return library.estimate(FitResult.load(fitted.fit_dir), tenant, signal, size, week,
                            min_share, chain, fitted.fit_dir)


@flow(name="signal-impact", flow_run_name="signal-impact-{tenant}-{signal}",
      validate_parameters=True)
def signal_impact(tenant: str, signal: Literal["sentiment", "visibility"], size: float,
                  week: str = "", chain: str = "", options: ModelOptions = ModelOptions(),
                  min_share: float = library.MIN_SHARE) -> library.SignalImpact:
    """Estimate what a signal's shift did to the KPI.

    Args:
        tenant: tenant name.
        signal: sentiment or visibility.
        size: the shift (index units, or mention-rate points).
        week: the week it shifted.
        chain: the id linking this chain's events and memories (default: this run's id).
        options: sampler settings of the refit.
        min_share: the smallest impact, as a share of the weekly KPI, that goes on to a plan.
    """
    from liftos_app.blocks.chroma import memory_store

    run_id = str(flow_run.id or "")
    found = estimate_impact(tenant, signal, size, week, chain or run_id, options, min_share)
    memory_store().remember([found.memory(run_id, run_url(run_id))])
    if found.material:
        config = load_tenant(tenant)
        emit_event(event="liftos.signal.impact", resource={
            **tenant_resource(tenant),
            "liftos.propose-plan": str(config.planning.propose_after_promotion).lower(),
            "liftos.plan-objective": config.planning.objective},
            payload={"signal": signal, "week": week, "size": size, "mean": found.mean,
                     "low": found.low, "high": found.high, "chain": found.chain,
                     "flow_run_id": run_id})
    return found

"""``mmm_refresh``: the weekly refresh of one tenant's model, and ``portfolio_refresh``: many
tenants in parallel on Dask. Both run the same stage chain (:func:`refresh_chain`), so both
ingest, validate and gate a model before it can become the champion.

In ``mmm_refresh`` light stages run in the flow's own process (a few ms of orchestration each)
and the fit and its validation are submitted to Dask; in ``portfolio_refresh`` every stage is a
Dask future, so the tenants' chains run side by side.

Run locally: ``liftos run --tenant demo`` (or ``python -m liftos_app.flows.refresh demo``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, tags
from prefect.futures import PrefectFuture, wait
from prefect.utilities.annotations import opaque
from pydantic import BaseModel

from liftos.errors import LiftOSError
from liftos.model.options import ModelOptions
from liftos.refresh import RunSummary
from liftos.tenancy import Tenant
from liftos.validation.runner import ValidationOptions
from liftos.validation.trust import TRUST_THRESHOLD
from liftos_app.flows.dask_runner import LiftOSDaskTaskRunner, near_compiled_model
from liftos_app.tasks import ingest, observability, stages


@dataclass(frozen=True)
class RefreshSettings:
    """What a refresh may vary, shared by the single-tenant and the portfolio flow."""

    template: str | None = None
    data: str | None = None
    options: ModelOptions = field(default_factory=ModelOptions)
    until: str | None = None
    promote: bool = True
    memory_priors: float | None = None
    run_validation: bool = True
    validation: ValidationOptions = field(default_factory=ValidationOptions)
    trust_threshold: float = TRUST_THRESHOLD
    refresh: bool = False
    ingest: bool = True


@dataclass
class Chain:
    """How a chain's stages run: inline (each result awaited in the flow process, heavy stages
    on Dask) or as Dask futures that depend on each other (``submit_all``)."""

    submit_all: bool
    stages: dict[str, Any] = field(default_factory=dict)
    # A heavy stage's result (by id) -> its future: a Dask result is not linked to its task
    # run in the flow's process, so a stage given it waits for the future, which the UI draws.
    heavy_results: dict[int, PrefectFuture] = field(default_factory=dict)

    def light(self, name: str, task: Any, *args: Any, wait_for: list | None = None) -> Any:
        result = (task.submit(*args, wait_for=wait_for) if self.submit_all else
                  task(*_opaque(args), wait_for=self._upstream(args)))
        self.stages[name] = result
        return result

    def heavy(self, name: str, task: Any, *args: Any, wait_for: list | None = None) -> Any:
        future = task.submit(*args, wait_for=wait_for or self._upstream(args))
        self.stages[name] = future
        if self.submit_all:
            return future
        result = future.result()
        self.heavy_results[id(result)] = future
        return result

    def _upstream(self, args: tuple) -> list[PrefectFuture] | None:
        return [self.heavy_results[id(a)] for a in args if id(a) in self.heavy_results] or None

    def futures(self) -> list[PrefectFuture]:
        return [s for s in self.stages.values() if isinstance(s, PrefectFuture)]


def _cached(stage_task: Any, refresh: bool) -> Any:
    return stages.refreshing(stage_task) if refresh else stage_task


def _opaque(args: tuple) -> tuple:
    """Records and futures marked opaque for a stage run in the flow's process: Prefect tracks
    the dependency but does not walk a record's fields looking for futures (two walks of ~300
    nodes, ~10 ms a stage). Cache keys are computed on the unwrapped values, so they do not
    change. Not for Dask: it rebuilds tuples, and an annotation is one."""
    return tuple(opaque(a) if isinstance(a, (BaseModel, PrefectFuture)) else a for a in args)


def refresh_chain(tenant: str, settings: RefreshSettings, chain: Chain) -> Any:
    """Resolve the tenant once, ingest (tenants with ``sources``), land, validate, featurize,
    fit, validate the model, summarize (gate and promote) and remember: the one place the stage
    order is written. Returns the summary (a future when ``chain.submit_all``)."""
    s = settings
    # Resolved in the flow's process whatever the chain: which stages follow depends on it.
    config = stages.resolve_tenant(tenant, s.template, s.data)
    chain.stages["resolve-tenant"] = config
    panel = ingest_sources(config, until=s.until, chain=chain) if (
        s.data is None and s.ingest) else None
    landed = chain.light("land-input", stages.land_input, config, panel)
    validated = chain.light("validate-input", stages.validate_input, landed, s.until)
    # Recomputed every run, so the memory-prior calibrations follow the champion of the day
    # (the fit is cached on the full spec, so an unchanged champion still reuses the fit).
    features = chain.light("build-features", stages.build_features, validated, s.memory_priors)
    with near_compiled_model(config.name):
        fitted = chain.heavy("fit-model", _cached(stages.fit_model, s.refresh), features,
                             s.options)
    checked = []
    if s.run_validation:
        checked = [chain.heavy("validate-model", _cached(stages.validate_model, s.refresh),
                               fitted, s.validation)]
    summary = chain.light("summarize-run", stages.summarize_run, fitted, s.promote,
                          s.trust_threshold, wait_for=checked if chain.submit_all else None)
    chain.light("evaluate-plans", stages.evaluate_plans, validated)
    chain.light("write-brief", stages.write_brief, summary, config.language)
    chain.light("remember-run", stages.remember_run, summary)
    return summary


@flow(name="mmm-refresh", flow_run_name="refresh-{tenant}", task_runner=LiftOSDaskTaskRunner(),
      validate_parameters=True)
def mmm_refresh(tenant: str = "demo", template: str | None = None, data: str | None = None,
                options: ModelOptions = ModelOptions(), dask_address: str | None = None,
                until: str | None = None, promote: bool = True,
                memory_priors: float | None = None, run_validation: bool = True,
                validation: ValidationOptions = ValidationOptions(),
                trust_threshold: float = TRUST_THRESHOLD, refresh: bool = False,
                ingest: bool = True) -> RunSummary:
    """Ingest (for tenants with ``sources``), land, validate, featurize, fit (on Dask), validate
    the model, summarize (gate and promote) and remember one tenant's model.

    Args:
        tenant: tenant name (``tenants/<tenant>.yaml``) or path to a tenant file.
        template: industry template overriding the tenant file's.
        data: a data file or folder overriding the tenant file's.
        options: sampler settings (draws, tune, chains, seed, sampler).
        dask_address: an existing Dask scheduler; default: Prefect Variable
            ``liftos-dask-address``, then ``LIFTOS_DASK_ADDRESS``, then a local cluster.
        until: fit only weeks up to this date (YYYY-MM-DD), e.g. to replay history.
        promote: let this model replace the champion if it passes the gate.
        memory_priors: carry what the champion learned into this fit (calibration terms on
            each channel's contribution, its posterior sd widened by this factor).
        run_validation: run the validation suite (holdout and placebo refits on Dask). Only a
            validated model can become champion: without it the fit is recorded, not promoted.
        validation: holdout weeks, placebo, sampler settings of the validation refits.
        trust_threshold: the trust score a model needs to become champion.
        refresh: ignore cached stage results and recompute.
        ingest: sync the tenant's sources (Google Ads, Klaviyo) incrementally and build the
            weekly panel from them first; ignored when ``data`` is given.
    """
    settings = RefreshSettings(template, data, options, until, promote, memory_priors,
                               run_validation, validation, trust_threshold, refresh, ingest)
    with tags(f"tenant:{tenant}"), observability.deferred():
        return refresh_chain(tenant, settings, Chain(submit_all=False))


def ingest_sources(tenant: Tenant, since: str | None = None, until: str | None = None,
                   chain: Chain | None = None) -> Any:
    """Sync each configured source, then build the weekly panel; None if the tenant has no
    sources (its data file is read as it is)."""
    sources = tenant.sources.configured()
    if not sources:
        return None
    chain = chain or Chain(submit_all=False)
    ingested = [chain.light(f"ingest-{source}", ingest.ingest_source, tenant, source, since,
                            until) for source in sources]
    return chain.light("build-panel", ingest.build_panel, tenant, ingested)


@flow(name="portfolio-refresh", task_runner=LiftOSDaskTaskRunner(), validate_parameters=True)
def portfolio_refresh(tenants: list[str], options: ModelOptions = ModelOptions(),
                      dask_address: str | None = None, run_validation: bool = True,
                      validation: ValidationOptions = ValidationOptions(),
                      trust_threshold: float = TRUST_THRESHOLD, promote: bool = True,
                      ) -> dict[str, RunSummary]:
    """Refresh many tenants at once: each tenant's chain (the same stages and gate as
    ``mmm-refresh``) is a set of Dask futures, and the chains run side by side. One failing
    tenant does not stop the others; the run then fails naming every failed tenant and its
    stage's message."""
    settings = RefreshSettings(options=options, run_validation=run_validation,
                               validation=validation, trust_threshold=trust_threshold,
                               promote=promote)
    chains: dict[str, Chain] = {}
    failed: dict[str, str] = {}
    for tenant in tenants:
        with tags(f"tenant:{tenant}"):
            chain = Chain(submit_all=True)
            try:
                refresh_chain(tenant, settings, chain)
                chains[tenant] = chain
            except LiftOSError as exc:  # its configuration: the other tenants still run
                failed[tenant] = str(exc)
    wait([future for chain in chains.values() for future in chain.futures()])
    failed |= {tenant: _first_failure(chain.futures()) for tenant, chain in chains.items()
               if not all(f.state.is_completed() for f in chain.futures())}
    if failed:
        raise LiftOSError(f"{len(failed)} of {len(tenants)} tenant refresh(es) failed: "
                          + "; ".join(f"{t}: {m}" for t, m in failed.items()))
    return {tenant: chain.stages["summarize-run"].result() for tenant, chain in chains.items()}


def _first_failure(futures: list[PrefectFuture]) -> str:
    """The message of the stage that failed first (later stages only report 'upstream')."""
    for future in futures:
        if future.state.is_failed() or future.state.is_crashed():
            return str(future.result(raise_on_failure=False))
    return futures[-1].state.message or futures[-1].state.name


if __name__ == "__main__":
    mmm_refresh(tenant=sys.argv[1] if len(sys.argv) > 1 else "demo")

"""``mmm_refresh``: the weekly refresh of one tenant's model, and ``portfolio_refresh``: many
tenants in parallel on Dask.

Light stages run in the flow's own process (a few ms of orchestration each); the fit is
submitted to Dask. Adding a stage is one task in ``tasks/stages.py`` and one line here.

Run locally: ``liftos run --tenant demo`` (or ``python -m flows.refresh demo``).
"""

from __future__ import annotations

import sys

from prefect import flow, tags
from prefect.futures import wait

from flows.dask_runner import LiftOSDaskTaskRunner
from liftos.errors import LiftOSError
from liftos.refresh import ModelOptions, RunSummary
from liftos.tenants import load_tenant_config
from liftos.validation.runner import ValidationOptions
from liftos.validation.trust import TRUST_THRESHOLD
from tasks import ingest, stages


@flow(name="mmm-refresh", flow_run_name="refresh-{tenant}", task_runner=LiftOSDaskTaskRunner(),
      validate_parameters=True)
def mmm_refresh(tenant: str = "demo", template: str | None = None, data: str | None = None,
                options: ModelOptions = ModelOptions(), dask_address: str | None = None,
                until: str | None = None, promote: bool = True,
                memory_priors: float | None = None, run_validation: bool = True,
                validation: ValidationOptions = ValidationOptions(),
                trust_threshold: float = TRUST_THRESHOLD, refresh: bool = False,
                ingest: bool = True) -> RunSummary:
    """Ingest (for tenants with ``sources``), land, validate, featurize, fit (on Dask), validate the model, summarize (gate and
    promote) and remember one tenant's model.

    Args:
        tenant: tenant name (``tenants/<tenant>.yaml``) or path to a tenant file.
        template: industry template overriding the tenant file's.
        data: a data file or folder overriding the tenant file's.
        options: sampler settings (draws, tune, chains, seed, sampler).
        dask_address: an existing Dask scheduler; default: Prefect Variable
            ``liftos-dask-address``, then ``LIFTOS_DASK_ADDRESS``, then a local cluster.
        until: fit only weeks up to this date (YYYY-MM-DD), e.g. to replay history.
        promote: make this model the one in service (monitoring compares against it).
        memory_priors: carry what the model in service learned into this fit (calibration
            terms on each channel's contribution, its posterior sd widened by this factor).
        run_validation: run the validation suite (holdout and placebo refits on Dask) and promote
            only a trustworthy model not worse out of sample than the champion.
        validation: holdout weeks, placebo, sampler settings of the validation refits.
        trust_threshold: the trust score a model needs to become champion.
        refresh: ignore cached stage results and recompute.
        ingest: sync the tenant's sources (Google Ads, Klaviyo) incrementally and build the
            weekly panel from them first; ignored when ``data`` is given.
    """
    with tags(f"tenant:{tenant}"):
        if data is None and ingest:
            data = ingest_sources(tenant, until=until)
        landed = stages.land_input(tenant, template, data)
        validated = stages.validate_input.with_options(refresh_cache=refresh)(landed, until)
        # The model in service may have changed since a cached run: recompute with memory priors.
        features = stages.build_features.with_options(
            refresh_cache=refresh or memory_priors is not None)(validated, memory_priors)
        fitted = stages.fit_model.with_options(refresh_cache=refresh).submit(
            features, options).result()
        if run_validation:
            stages.validate_model.with_options(refresh_cache=refresh).submit(
                fitted, validation).result()
        summary = stages.summarize_run(fitted, promote, trust_threshold)
        stages.remember_run(summary)
        return summary


def ingest_sources(tenant: str, since: str | None = None, until: str | None = None
                   ) -> str | None:
    """Sync each configured source, then build the weekly panel; None if the tenant has no
    sources (its data file is read as it is)."""
    sources = load_tenant_config(tenant).sources.configured()
    if not sources:
        return None
    ingested = [ingest.ingest_source(tenant, source, since=since, until=until)
                for source in sources]
    return ingest.build_panel(tenant, ingested)


@flow(name="portfolio-refresh", task_runner=LiftOSDaskTaskRunner(), validate_parameters=True)
def portfolio_refresh(tenants: list[str], options: ModelOptions = ModelOptions(),
                      dask_address: str | None = None) -> dict[str, RunSummary]:
    """Refresh many tenants at once: each tenant's stages form a chain of Dask futures, and the
    chains run side by side. One failing tenant does not stop the others; the run then fails
    naming every failed tenant and its stage's message."""
    chains = {}
    for tenant in tenants:
        with tags(f"tenant:{tenant}"):
            landed = stages.land_input.submit(tenant)
            validated = stages.validate_input.submit(landed)
            features = stages.build_features.submit(validated)
            fitted = stages.fit_model.submit(features, options)
            summary = stages.summarize_run.submit(fitted)
            chains[tenant] = [landed, validated, features, fitted, summary,
                              stages.remember_run.submit(summary)]
    wait([future for chain in chains.values() for future in chain])
    failed = {tenant: _first_failure(chain) for tenant, chain in chains.items()
              if not chain[-1].state.is_completed()}
    if failed:
        raise LiftOSError(f"{len(failed)} of {len(tenants)} tenant refresh(es) failed: "
                          + "; ".join(f"{t}: {m}" for t, m in failed.items()))
    return {tenant: chain[-2].result() for tenant, chain in chains.items()}


def _first_failure(chain: list) -> str:
    """The message of the stage that failed first (later stages only report 'upstream')."""
    for future in chain:
        if future.state.is_failed() or future.state.is_crashed():
            return str(future.result(raise_on_failure=False))
    return chain[-1].state.message or chain[-1].state.name

if __name__ == "__main__":
    mmm_refresh(tenant=sys.argv[1] if len(sys.argv) > 1 else "demo")

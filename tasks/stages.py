"""One Prefect task per refresh stage, each a thin wrapper over ``liftos.refresh``.

The expensive stages (the fit, the model's validation) are cached across flow runs on their
inputs, content-addressed records (file hashes + configuration + options), so re-running after
a failure resumes where it failed: a crash after the fit does not refit. A stage that fails raises :class:`StageFailed`, whose
message names the stage and carries the library's precise error.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.runtime import flow_run

from liftos import refresh
from liftos.errors import LiftOSError
from liftos.home import DataHome
from liftos.model.options import ModelOptions
from liftos.tenancy import Tenant, load_tenant
from liftos_app.tasks import observability

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

STAGE_CACHE = INPUTS + TASK_SOURCE
# Stages that run every time: no cache key to hash, no lookup, no result file. Validating and
# featurizing take 10-30 ms, about what caching them cost (~10 ms a stage); they write
# content-addressed files, so the fit's cache key does not change when they run again.
UNCACHED = {"cache_policy": NO_CACHE, "persist_result": False}


@functools.cache
def refreshing(stage_task: T) -> T:
    """The cached stage that recomputes (``refresh=True``), built once per process."""
    return stage_task.with_options(refresh_cache=True)


class StageFailed(LiftOSError):
    def __init__(self, stage: str, error: Exception):
        super().__init__(f"stage '{stage}' failed: {error}")
        self.stage = stage


def stage(name: str, say: Callable[[R], str] | None = None
          ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Name failures after the stage, so the failed run's state message says where it broke,
    and log one line saying what the stage did (the result's ``describe()``, or ``say``)."""
    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = fn(*args, **kwargs)
            except StageFailed:
                raise
            except LiftOSError as exc:
                raise StageFailed(name, exc) from exc
            line = say(result) if say else getattr(result, "describe", lambda: None)()
            if line:
                observability.log_line(line)
            return result
        return wrapper
    return decorate


@task(name="resolve-tenant", task_run_name="resolve-tenant-{tenant}", **UNCACHED)
@stage("resolve-tenant")
def resolve_tenant(tenant: str, template: str | None = None, data: str | None = None) -> Tenant:
    """Read the tenant's configuration once for the whole run (template and data overrides
    applied); every later stage receives this record and reads no configuration."""
    return load_tenant(tenant, template=template, data=data)


@task(name="land-input", task_run_name="land-input-{tenant.name}", **UNCACHED)
@stage("land-input")
def land_input(tenant: Tenant, data: str | None = None, home: str | None = None
               ) -> refresh.LandedInput:
    """Land the tenant's data file verbatim (never cached: this is where new data is noticed);
    ``data``: the weekly panel its ingestion built this run."""
    resolved = tenant.with_data(data) if data is not None else tenant
    return refresh.land_input(refresh.tenant_ref(resolved, DataHome(home)))


@task(name="validate-input", **UNCACHED)
@stage("validate-input")
def validate_input(landed: refresh.LandedInput, until: str | None = None
                   ) -> refresh.ValidatedPanel:
    return refresh.validate_input(landed, until)


@task(name="build-features", **UNCACHED)
@stage("build-features")
def build_features(validated: refresh.ValidatedPanel, memory_priors: float | None = None
                   ) -> refresh.Features:
    return refresh.build_features(validated, memory_priors)


@task(name="fit-model", cache_policy=STAGE_CACHE, persist_result=True)
@stage("fit-model")
def fit_model(features: refresh.Features, options: ModelOptions) -> refresh.FittedModel:
    """The heavy stage: submitted to Dask; sampling progress goes to a progress artifact."""
    progress = observability.SamplingProgress(features.panel.tenant.tenant)
    return refresh.fit_model(features, options, progress=progress.update)


@task(name="validate-model", cache_policy=STAGE_CACHE, persist_result=True)
@stage("validate-model")
def validate_model(fitted: refresh.FittedModel, options=None) -> refresh.ValidationRecord:
    """Holdout and placebo refits run in parallel on the Dask cluster when there is one."""
    with _dask_client() as client:
        submit = (lambda fn, *args: client.submit(fn, *args, pure=False)) if client else None
        record = refresh.validate_model(fitted, options, submit=submit)
    observability.publish(observability.publish_trust_card,
                          fitted.features.panel.tenant.tenant, record.fit_dir)
    return record


@task(name="summarize-run", **UNCACHED)
@stage("summarize-run")
def summarize_run(fitted: refresh.FittedModel, promote: bool = True,
                  trust_threshold: float | None = None) -> refresh.RunSummary:
    """Report, compare with the champion, gate and promote; artifacts and events."""
    run_id = flow_run.id
    summary = refresh.summarize_run(fitted, run_id=run_id, promote=promote,
                                    trust_threshold=trust_threshold)
    observability.publish_run(summary, fitted, run_id)
    if promote and not summary.promoted:
        observability.emit_rejected(summary, run_id)
    if summary.promoted:
        observability.emit_promoted(summary, run_id, fitted.features.panel.tenant.config.planning)
    return summary


@contextlib.contextmanager
def _dask_client():
    """The Dask cluster this task runs on, or None. The task's worker thread secedes while it
    waits for the refits it submitted (and rejoins after): otherwise validations running on
    every worker thread wait for refits that no thread is left to run."""
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except ValueError:
        yield None
        return
    with worker_client() as client:
        yield client


@task(name="evaluate-plans", **UNCACHED)
@stage("evaluate-plans", say=lambda outcomes: (
    f"{len(outcomes)} approved plan(s) held to account: "
    f"{sum(o.payload['inside'] for o in outcomes)} inside their 94% interval"
    if outcomes else "no approved plan has all its weeks in the data yet"))
def evaluate_plans(validated: refresh.ValidatedPanel) -> list:
    """Approved budget plans whose weeks have arrived: predicted vs observed, in the audit;
    ``liftos.plan.missed`` for each outcome outside its interval."""
    outcomes = refresh.evaluate_plans(validated)
    for outcome in outcomes:
        if not outcome.payload["inside"]:
            observability.emit_plan_missed(validated.tenant.tenant, outcome.payload)
    return outcomes


@task(name="write-brief", **UNCACHED)
@stage("write-brief", say=lambda result: result.describe())
def write_brief(summary: refresh.RunSummary, language: str = "en"):
    """The run's brief in plain language, every number checked against the facts; the model's
    when one is configured and grounded, else the deterministic one (``brief.md``)."""
    from liftos.brief.run import brief_for_run
    from liftos_app.blocks.openai import llm_settings

    result = brief_for_run(summary, language, llm_settings())
    observability.publish(observability.publish_brief, summary.tenant, result)
    return result


@task(name="remember-run", **UNCACHED)
@stage("remember-run", say=lambda count: f"remembered {count} memories (insights, situation)")
def remember_run(summary: refresh.RunSummary) -> int:
    """Store the run's insights in the tenant's memory (idempotent: a re-run updates)."""
    from liftos.memory.remember import run_memories
    from liftos_app.blocks.chroma import memory_store

    run_id = flow_run.id or ""
    return memory_store().remember(run_memories(summary, run_id, observability.run_url(run_id)))

"""The Prefect layer on the real engine: a Prefect test server, a real Dask LocalCluster.

Fits use few draws: these tests check orchestration (states, artifacts, events, caching,
failure messages), not statistics. Same-shaped fits reuse one compiled model.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from support import (
    DEMO_DATA,
    artifacts,
    events,
    flow_run_id,
    stage_logs,
    task_states,
    validated,
    write_tenant,
)

pytestmark = pytest.mark.slow

SMALL = {"draws": 100, "tune": 150, "chains": 2, "seed": 3}


@pytest.fixture
def tenants(tmp_path, monkeypatch, prefect_api):
    """A tenants folder and a fresh data home for one test."""
    folder = tmp_path / "tenants"
    folder.mkdir()
    monkeypatch.setenv("LIFTOS_TENANTS_DIR", str(folder))
    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    return folder


def run_refresh(dask_cluster, tenant="acme", **kwargs):
    from liftos.model.options import ModelOptions
    from liftos_app.flows.refresh import mmm_refresh

    options = ModelOptions(**{**SMALL, **kwargs.pop("options", {})})
    kwargs.setdefault("run_validation", False)  # validation has its own test below
    return mmm_refresh(tenant=tenant, options=options,
                       dask_address=dask_cluster.scheduler_address, return_state=True, **kwargs)


def test_refresh_runs_on_dask_with_artifacts_and_events(tenants, dask_cluster):
    write_tenant(tenants, "acme", DEMO_DATA)
    transitions_before = dask_cluster.scheduler.transition_counter
    state = run_refresh(dask_cluster)
    assert state.is_completed(), state.message
    summary = state.result()
    run_id = flow_run_id(state)

    assert dask_cluster.scheduler.transition_counter > transitions_before  # the fit ran on Dask
    assert set(summary.roas) == {"search", "social", "display", "email", "tv"}
    assert Path(summary.report_path).exists()

    table = artifacts(run_id, "roas-acme")
    assert len(table) == 1
    rows = json.loads(table[0].data)
    assert {r["channel"] for r in rows} == set(summary.roas)
    for row in rows:
        assert row["roas_hdi_low"] <= row["roas_mean"] <= row["roas_hdi_high"]

    report = artifacts(run_id, "report-acme")[0].data
    sha = summary.data_sha256
    assert sha in report and summary.config_hash in report and summary.fit_dir in report
    assert report.count("](data:image/png;base64,") == 4 and "file://" not in report

    progress = artifacts(run_id, "fit-progress-acme")
    assert len(progress) == 1 and float(progress[0].data) == 100.0

    from liftos.memory.store import MemoryStore
    from liftos_app.tasks.memory import search_memory

    memory = MemoryStore()  # the last stage remembered one insight per channel + the situation
    assert memory.count("acme") == 6
    hits = search_memory("acme", "email return on spend", k=1, kind="insight")  # as a task
    assert hits[0].memory.channel == "email" and hits[0].memory.run_id == run_id

    fitted = events("liftos.model.fitted", run_id)
    assert len(fitted) == 1
    assert fitted[0]["resource"]["prefect.resource.id"] == "liftos.tenant.acme"
    assert fitted[0]["payload"]["fit_dir"] == summary.fit_dir
    assert fitted[0]["payload"]["data_sha256"] == sha
    upstream = upstream_stages(run_id)  # the UI's graph: records passed opaque keep their edges
    for stage, before in {"land-input": "resolve-tenant", "validate-input": "land-input",
                          "build-features": "validate-input", "fit-model": "build-features",
                          "summarize-run": "fit-model",
                          "write-brief": "summarize-run",
                          "remember-run": "summarize-run"}.items():
        assert before in upstream.get(stage, set()), (stage, upstream)

def upstream_stages(run_id: str) -> dict[str, set[str]]:
    """Each stage's upstream stages as the Prefect UI draws them (from the task runs' inputs)."""
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[uuid.UUID(run_id)])))
    names = {run.id: run.task_key.rsplit("-", 1)[0].replace("_", "-") for run in runs}
    return {names[run.id]: {names[i.id] for inputs in run.task_inputs.values() for i in inputs
                            if getattr(i, "id", None) in names}
            for run in runs if any(run.task_inputs.values())}


def test_roas_outside_previous_interval_emits_shift_events(tenants, dask_cluster):
    from liftos.home import DataHome

    write_tenant(tenants, "acme", DEMO_DATA)
    # The champion claimed implausibly tight intervals far from today's estimates.
    impossible = {c: {"roas_mean": 500.0, "roas_hdi_low": 499.0, "roas_hdi_high": 501.0}
                  for c in ("search", "social")}
    DataHome().set_champion("acme", {"fit_dir": "previous", "roas": impossible})
    state = run_refresh(dask_cluster)
    assert state.is_completed(), state.message
    assert {s.channel for s in state.result().shifted} == {"search", "social"}
    shifted = events("liftos.roas.shifted", flow_run_id(state), minimum=2)
    assert sorted(e["payload"]["channel"] for e in shifted) == ["search", "social"]
    assert all(e["payload"]["champion_high"] == 501.0 for e in shifted)


def test_bad_data_fails_the_run_naming_stage_file_and_rule(tenants, dask_cluster, tmp_path):
    frame = pl.read_csv(DEMO_DATA)
    bad = tmp_path / "bad.csv"
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 9).then(-5.0)
                       .otherwise(pl.col("tv")).alias("tv")).write_csv(bad)
    write_tenant(tenants, "acme", bad)
    state = run_refresh(dask_cluster)
    assert state.is_failed()
    message = state.message + str(state.result(raise_on_failure=False))
    assert "validate-input" in message and "non_negative_spend" in message
    assert "bad.csv" in message and "'tv'" in message and "line 11" in message


def test_crash_after_fit_then_rerun_does_not_refit(tenants, dask_cluster, monkeypatch):
    from liftos import report
    from liftos.model import mmm

    write_tenant(tenants, "acme", DEMO_DATA)
    fits = []
    real_fit = mmm.fit
    monkeypatch.setattr(mmm, "fit", lambda *a, **k: fits.append(1) or real_fit(*a, **k))

    def crash(*args, **kwargs):
        raise RuntimeError("injected crash after the fit")

    monkeypatch.setattr(report, "write_report", crash)
    options = {"seed": 11}  # inputs no other test uses: the first run must really fit
    first = run_refresh(dask_cluster, options=options)
    assert first.is_failed() and "injected crash" in str(first.result(raise_on_failure=False))
    assert len(fits) == 1

    monkeypatch.undo()
    monkeypatch.setenv("LIFTOS_TENANTS_DIR", str(tenants))
    monkeypatch.setenv("LIFTOS_HOME", str(tenants.parent / "home"))
    monkeypatch.setattr(mmm, "fit", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    second = run_refresh(dask_cluster, options=options)
    assert second.is_completed(), second.message
    assert len(fits) == 1, "the re-run refitted although its inputs did not change"
    states = task_states(flow_run_id(second))
    assert states["fit-model"] == "Cached"
    assert states["summarize-run"] == "Completed" and states["remember-run"] == "Completed"


def test_a_data_home_deleted_and_made_again_refits_rather_than_failing(tenants, dask_cluster):
    """`rm -rf .liftos` then the same run: the cached fit's folder went with the old home, so
    the fit runs again (before, the run failed: 'missing its summary.json')."""
    import shutil

    from chromadb.api.client import SharedSystemClient

    write_tenant(tenants, "acme", DEMO_DATA)
    options = {"seed": 12}  # inputs no other test uses
    first = run_refresh(dask_cluster, options=options)
    assert first.is_completed(), first.message
    shutil.rmtree(tenants.parent / "home")
    # As in the real case (a new `liftos run` process), no Chroma client of the old home is open.
    SharedSystemClient.clear_system_cache()
    second = run_refresh(dask_cluster, options=options)
    assert second.is_completed(), second.message
    assert task_states(flow_run_id(second))["fit-model"] == "Completed"
    assert (Path(second.result().fit_dir) / "summary.json").exists()


def test_portfolio_refreshes_tenants_in_parallel_and_names_failures(tenants, dask_cluster,
                                                                     tmp_path):
    from liftos.model.options import ModelOptions
    from liftos_app.flows.refresh import portfolio_refresh

    write_tenant(tenants, "north", DEMO_DATA)
    write_tenant(tenants, "south", DEMO_DATA)
    write_tenant(tenants, "broken", tmp_path / "missing.csv")
    gate = validated()
    del gate["run_validation"]
    state = portfolio_refresh(tenants=["north", "south", "broken"],
                              options=ModelOptions(**SMALL),
                              dask_address=dask_cluster.scheduler_address, return_state=True,
                              **gate)
    assert state.is_failed()
    message = str(state.result(raise_on_failure=False))
    assert "1 of 3" in message and "broken" in message and "missing.csv" in message
    from liftos.home import DataHome

    # Every tenant went through the same chain as a single refresh, the gate included.
    single = run_refresh(dask_cluster, tenant="north", **validated())
    assert single.is_completed(), single.message
    portfolio_stages = set(task_states(flow_run_id(state)))
    assert set(task_states(flow_run_id(single))) == portfolio_stages == {
        "resolve-tenant", "land-input", "validate-input", "build-features", "fit-model",
        "validate-model", "summarize-run", "evaluate-plans", "write-brief", "remember-run"}
    assert DataHome().champion("north")["trust_score"] > 0
    assert DataHome().champion("south")["trust_score"] > 0
    assert DataHome().champion("broken") is None


def test_no_path_promotes_a_model_that_skipped_the_gate(tenants, dask_cluster):
    from liftos.home import DataHome
    from liftos.model.options import ModelOptions
    from liftos_app.flows.refresh import portfolio_refresh

    write_tenant(tenants, "acme", DEMO_DATA)
    state = run_refresh(dask_cluster, run_validation=False)
    assert state.is_completed(), state.message
    summary = state.result()
    assert not summary.promoted and "not validated" in summary.decision[0]
    assert DataHome().champion("acme") is None
    assert DataHome().runs("acme")[-1]["fit_dir"] == summary.fit_dir  # recorded, not promoted
    assert events("liftos.model.rejected", flow_run_id(state))[0]["payload"]["reasons"] == list(
        summary.decision)
    unvalidated = portfolio_refresh(tenants=["acme"], options=ModelOptions(**SMALL),
                                    run_validation=False,
                                    dask_address=dask_cluster.scheduler_address)
    assert not unvalidated["acme"].promoted and DataHome().champion("acme") is None


def test_monitor_flags_a_kpi_outside_the_predictive_interval(tenants, dask_cluster, tmp_path):
    from liftos_app.flows.monitor import monitor

    write_tenant(tenants, "acme", DEMO_DATA)
    assert run_refresh(dask_cluster, **validated()).result().promoted

    frame = pl.read_csv(DEMO_DATA, try_parse_dates=True)
    last = frame.tail(1)
    normal = last.with_columns(pl.col("date") + pl.duration(days=7))
    spike = normal.with_columns(pl.col("revenue") * 3)
    (tmp_path / "normal").mkdir()
    (tmp_path / "spike").mkdir()
    pl.concat([frame, normal]).write_csv(tmp_path / "normal" / "data.csv")
    pl.concat([frame, spike]).write_csv(tmp_path / "spike" / "data.csv")

    calm = monitor(tenants=["acme"], data=str(tmp_path / "normal"))[0]
    assert not calm.in_sample and not calm.outside_interval
    assert calm.kpi_low <= calm.kpi_actual <= calm.kpi_high

    state = monitor(tenants=["acme"], data=str(tmp_path / "spike"), return_state=True)
    check = state.result()[0]
    assert check.outside_interval and "kpi_above_interval" in check.anomalies
    assert check.kpi_actual == pytest.approx(3 * calm.kpi_actual)
    flagged = events("liftos.anomaly.detected", flow_run_id(state))
    assert flagged and flagged[0]["payload"]["week"] == check.week

    # A portfolio: a tenant without a model in service does not stop the others' checks; the
    # run lists every checked tenant in one table, then fails naming the one it could not check.
    from liftos.home import DataHome

    home = DataHome()
    for name in ("beta", "ghost"):
        write_tenant(tenants, name, tmp_path / "spike" / "data.csv")
    home.set_champion("beta", home.champion("acme"))
    state = monitor(tenants=["ghost", "acme", "beta"], return_state=True)
    assert state.is_failed()
    assert ("monitor: 1 of 3 tenant(s) not checked: ghost: tenant 'ghost' has no champion"
            in str(state.result(raise_on_failure=False)))
    rows = json.loads(artifacts(flow_run_id(state), "monitor")[0].data)
    assert [row["tenant"] for row in rows] == ["acme", "beta"]
    assert "kpi_above_interval" in rows[1]["anomalies"]
    assert artifacts(flow_run_id(state), "monitor-beta")  # a flagged tenant's own artifact


def test_monitor_without_a_model_in_service_fails_clearly(tenants):
    from liftos_app.flows.monitor import monitor

    write_tenant(tenants, "fresh", DEMO_DATA)
    state = monitor(tenants=["fresh"], return_state=True)
    assert state.is_failed()
    assert "no champion" in str(state.result(raise_on_failure=False))


def test_dask_address_comes_from_variable_then_environment(prefect_api, monkeypatch):
    from prefect.variables import Variable

    from liftos_app.flows.dask_runner import ADDRESS_ENV, ADDRESS_VARIABLE, configured_address

    monkeypatch.setenv(ADDRESS_ENV, "tcp://from-env:8786")
    assert configured_address() == ("tcp://from-env:8786", f"environment {ADDRESS_ENV}")
    Variable.set(ADDRESS_VARIABLE, "tcp://from-variable:8786", overwrite=True)
    try:
        assert configured_address()[0] == "tcp://from-variable:8786"
    finally:
        Variable.unset(ADDRESS_VARIABLE)
    monkeypatch.delenv(ADDRESS_ENV)
    assert configured_address() == (None, "none configured")


def test_a_dask_client_already_open_does_not_divert_the_run_from_its_scheduler(dask_cluster):
    """A process that already holds a Dask client (a notebook's, an in-process worker's) still
    sends the fit to the configured scheduler, not to the cluster that client happens to reach."""
    from distributed import Client, LocalCluster

    from liftos_app.flows.dask_runner import LiftOSDaskTaskRunner

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                      silence_logs=40) as configured, Client(dask_cluster) as stray:
        assert stray.scheduler.address == dask_cluster.scheduler_address
        with LiftOSDaskTaskRunner(address=configured.scheduler_address) as runner:
            assert runner.client.scheduler.address == configured.scheduler_address


def test_refresh_with_memory_priors_calibrates_on_the_model_in_service(tenants, dask_cluster):
    from liftos.model.spec import ModelSpec

    write_tenant(tenants, "acme", DEMO_DATA)
    first = run_refresh(dask_cluster, **validated())
    assert first.is_completed() and first.result().promoted, first.message
    state = run_refresh(dask_cluster, memory_priors=2.0, options={"seed": 4})
    assert state.is_completed(), state.message
    spec_path = Path(state.result().fit_dir) / "model.json"
    spec = ModelSpec.from_dict(json.loads(spec_path.read_text())["spec"])
    assert [c.channel for c in spec.calibrations] == ["search", "social", "display", "email", "tv"]
    assert all(first.result().fit_dir in c.source and c.sd > 0 for c in spec.calibrations)

    # Another widening factor is another posterior: it must be fitted, not served from the
    # cache of the first memory-priors fit, and that fit's spec must stay as it was.
    wider = run_refresh(dask_cluster, memory_priors=4.0, options={"seed": 4})
    assert wider.is_completed(), wider.message
    assert task_states(flow_run_id(wider))["fit-model"] == "Completed"
    assert wider.result().fit_dir != state.result().fit_dir
    wide_spec = ModelSpec.from_dict(json.loads(
        (Path(wider.result().fit_dir) / "model.json").read_text())["spec"])
    assert [round(w.sd / c.sd, 6) for w, c in zip(wide_spec.calibrations, spec.calibrations)] == [
        2.0] * 5
    assert ModelSpec.from_dict(json.loads(spec_path.read_text())["spec"]) == spec


def test_validation_gates_promotion_with_a_trust_card_and_rejection_event(tenants, dask_cluster):
    from liftos.home import DataHome
    from liftos.validation.recovery import RecoveryOptions
    from liftos.validation.runner import ValidationOptions

    # Two short recovery replicas: the check runs on Dask and reaches the card; lenient limits
    # in the tenant's template keep this test about the trust threshold.
    write_tenant(tenants, "acme", DEMO_DATA, overrides={
        "recovery": {"min_coverage": 0.0, "max_median_error": 100.0}})
    small = ValidationOptions(holdout_weeks=8, draws=100, tune=150, chains=2,
                              refutations=False,
                              recovery=RecoveryOptions(replicas=2, draws=60, tune=60))
    rejected = run_refresh(dask_cluster, run_validation=True, validation=small,
                           trust_threshold=101.0)
    assert rejected.is_completed(), rejected.message
    summary = rejected.result()
    assert not summary.promoted
    assert summary.decision[0] == f"trust score {summary.trust_score:.1f} below the threshold 101"
    assert DataHome().champion("acme") is None
    run_id = flow_run_id(rejected)
    card = artifacts(run_id, "trust-card-acme")[0].data
    assert "holdout MAPE" in card and "placebo share" in card
    assert "![trust card](data:image/png;base64," in card
    assert "## Recovery on known truths (2 replicas on this tenant's spend" in card
    cached = list((DataHome().tenant("acme") / "recovery").glob("*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["replicas"] == 2
    assert (Path(summary.fit_dir) / "plots" / "trust_card.png").exists()
    event = events("liftos.model.rejected", run_id)[0]
    assert event["payload"]["reasons"] == list(summary.decision)
    said = stage_logs(run_id, {"resolve-tenant", "land-input", "validate-input", "build-features",
                               "fit-model", "validate-model", "summarize-run", "write-brief",
                               "remember-run"})
    assert "brief deterministic (no OpenAI key configured)" in said["write-brief"]
    brief = artifacts(run_id, "brief-acme")[0].data
    assert f"the model in service stays, because trust score {summary.trust_score:.1f}" in brief
    assert (Path(summary.fit_dir) / "brief.md").read_text() in brief
    calls = json.loads(artifacts(run_id, "brief-calls-acme")[0].data)
    assert calls[0]["model"] == "templates" and "claims grounded" in calls[0]["grounding"]
    assert "tenant acme: template ecommerce, 5 channels" in said["resolve-tenant"]
    assert "validated 156 weeks (2023-01-02..2025-12-22), 1 geo(s)" in said["validate-input"]
    assert "r-hat max" in said["fit-model"] and "divergences" in said["fit-model"]
    assert f"trust score {summary.trust_score:.1f}" in said["validate-model"]
    assert "not promoted: trust score" in said["summarize-run"]

    accepted = run_refresh(dask_cluster, run_validation=True, validation=small,
                           trust_threshold=0.0)
    assert accepted.is_completed() and accepted.result().promoted
    promoted = events("liftos.model.promoted", flow_run_id(accepted))[0]
    assert promoted["resource"]["liftos.propose-plan"] == "false"  # the tenant did not ask
    assert not events("liftos.model.promoted", run_id, minimum=0, timeout=0)
    assert task_states(flow_run_id(accepted))["validate-model"] == "Cached"
    assert DataHome().champion("acme")["trust_score"] == summary.trust_score
    from liftos.memory.store import MemoryStore

    verdicts = MemoryStore().search("acme", "was the model trusted", kind="validation", k=5)
    assert {h.memory.facts["promoted"] for h in verdicts} == {False, True}


def test_a_stage_returns_before_its_artifacts_are_written_and_the_run_waits_for_them(
        prefect_api):
    """Inside ``deferred`` (as in ``mmm-refresh``) an artifact is written by a background
    thread: the stage that published it has returned while the write is still held back, the
    flow does not end before the write, and the artifact belongs to the stage's task run."""
    import threading

    from prefect import flow, task
    from prefect.artifacts import create_markdown_artifact
    from prefect.runtime import task_run

    from liftos_app.tasks import observability

    release, order = threading.Event(), []

    def write() -> None:
        release.wait(timeout=30)
        order.append("written")
        create_markdown_artifact(key="deferred-probe", markdown="# probe")

    @task
    def stage() -> str:
        observability.publish(write)
        return task_run.id

    @flow
    def chain() -> str:
        with observability.deferred():
            stage_run = stage()
            order.append("stage returned")
            release.set()
            return stage_run

    state = chain(return_state=True)
    assert order == ["stage returned", "written"]
    [artifact] = artifacts(flow_run_id(state), "deferred-probe")
    assert str(artifact.task_run_id) == state.result()

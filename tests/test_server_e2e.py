"""End to end against a real ``prefect server start`` on 127.0.0.1: ``liftos deploy`` creates the
pool, deployments and automations; a run is created over REST, executed with
``prefect flow-run execute`` (no worker polling), and its state and artifacts read over REST."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support import REPO, free_port, local_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "LIFTOS_HOME": str(home / "liftos")}
    env.pop("LIFTOS_TENANTS_DIR", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(port)]
    with local_server(command, f"{api}/health", home / "server.log", env=env):
        yield api, env


def _call(client: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    """One REST call, retried on 503 as Prefect's own client does (a SQLite-backed server
    answers 503 while its database is briefly locked)."""
    for attempt in range(6):
        response = client.request(method, url, **kwargs)
        if response.status_code != 503:
            return response
        time.sleep(0.5 * 2 ** attempt)
    return response


def _run(command: list[str], env: dict, timeout: int) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_deploy_then_trigger_over_rest_and_read_state_and_artifacts(prefect_server):
    api, env = prefect_server
    deployed = _run([sys.executable, "-m", "liftos_app.cli", "deploy"], env, timeout=180)
    assert "weekly-refresh" in deployed.stdout and "liftos-process" in deployed.stdout

    with httpx.Client(base_url=api, timeout=30) as client:
        deployment = _call(client, "GET", "/deployments/name/mmm-refresh/weekly-refresh").json()
        assert deployment["work_pool_name"] == "liftos-process"
        schedules = _call(client, "GET", f"/deployments/{deployment['id']}/schedules").json()
        assert schedules[0]["schedule"]["cron"] == "0 6 * * 1"
        assert schedules[0]["schedule"]["timezone"] == "America/New_York"
        automations = _call(client, "POST", "/automations/filter", json={}).json()
        assert "liftos-refresh-on-data-arrival" in {a["name"] for a in automations}

        create = f"/deployments/{deployment['id']}/create_flow_run"
        created = _call(client, "POST", create, json={
            "parameters": {"tenant": "demo", "options": {"draws": 100, "tune": 150,
                                                         "chains": 2, "seed": 5},
                           "validation": {"draws": 100, "tune": 100, "chains": 2,
                                          "recovery": {"replicas": 0}},
                           "trust_threshold": 0}})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]

        _run([sys.executable, "-m", "prefect", "flow-run", "execute", run_id], env, timeout=400)

        run = _call(client, "GET", f"/flow_runs/{run_id}").json()
        assert run["state"]["type"] == "COMPLETED", run["state"]
        found = _call(client, "POST", "/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
        keys = {a["key"] for a in found}
        assert {"roas-demo", "report-demo", "fit-progress-demo", "trust-card-demo"} <= keys
        roas = next(a for a in found if a["key"] == "roas-demo")
        assert roas["type"] == "table" and "search" in roas["data"]
    assert Path(env["LIFTOS_HOME"], "tenants", "demo", "champion.json").exists()


PROMOTE = """
import sys
from prefect.events.worker import EventsWorker
from liftos.refresh import RunSummary
from liftos.tenancy import PlanningConfig
from liftos_app.tasks.observability import emit_promoted

summary = RunSummary(tenant="demo", fit_dir="/fit", report_path="/fit/report.md", roas={},
                     diagnostics={}, data_sha256="d", config_hash="c", signature="s",
                     promoted=True, trust_score=88.0)
for propose in sys.argv[1:]:
    emit_promoted(summary, None, PlanningConfig(propose_after_promotion=propose == "yes",
                                                objective="cvar"))
EventsWorker.drain_all()
"""


def test_a_promotion_for_a_tenant_that_wants_plans_starts_budget_plan_via_the_automation(
        prefect_server):
    """The real server's trigger service matches ``liftos.model.promoted`` (as the refresh
    emits it) and the automation creates a ``budget-plan`` run for that tenant and objective;
    a promotion whose tenant did not ask for plans creates none."""
    api, env = prefect_server
    _run([sys.executable, "-m", "liftos_app.cli", "deploy"], env, timeout=180)
    _run([sys.executable, "-c", PROMOTE, "no", "yes"], env, timeout=60)
    with httpx.Client(base_url=api, timeout=30) as client:
        deployment = _call(client, "GET", "/deployments/name/budget-plan/budget-plan").json()
        query = {"deployments": {"id": {"any_": [deployment["id"]]}}}
        deadline = time.monotonic() + 60
        while not (runs := _call(client, "POST", "/flow_runs/filter", json=query).json()):
            assert time.monotonic() < deadline, "the automation created no budget-plan run"
            time.sleep(1)
        time.sleep(3)  # a second (wrong) run would have been created by now
        runs = _call(client, "POST", "/flow_runs/filter", json=query).json()
    assert len(runs) == 1, [r["parameters"] for r in runs]
    assert runs[0]["parameters"] == {"tenant": "demo", "objective": "cvar"}


def _runs_created(api: str, deployment: str, wanted) -> list[dict]:
    """The runs of ``deployment`` that ``wanted`` accepts, once an automation created one."""
    with httpx.Client(base_url=api, timeout=30) as client:
        found = _call(client, "GET", f"/deployments/name/{deployment}").json()
        query = {"deployments": {"id": {"any_": [found["id"]]}}}
        deadline = time.monotonic() + 60
        while not (runs := [r for r in _call(client, "POST", "/flow_runs/filter",
                                             json=query).json() if wanted(r)]):
            assert time.monotonic() < deadline, f"the automation created no {deployment} run"
            time.sleep(1)
    return runs


SHIFT = """
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from liftos_app.tasks.observability import tenant_resource

emit_event(event="liftos.sentiment.shifted", resource=tenant_resource("demo"),
           payload={"week": "2025-12-29", "size": -0.31, "chain": "chain-42", "drivers": []})
EventsWorker.drain_all()
"""


def test_a_sentiment_shift_starts_the_impact_flow_with_the_shift_and_its_chain(prefect_server):
    """The signal chain on the real server: ``liftos.sentiment.shifted`` (as the sentiment
    flow emits it) creates a ``signal-impact`` run carrying the shift's size, week and chain."""
    api, env = prefect_server
    _run([sys.executable, "-m", "liftos_app.cli", "deploy"], env, timeout=180)
    _run([sys.executable, "-c", SHIFT], env, timeout=60)
    runs = _runs_created(api, "signal-impact/signal-impact", lambda run: True)
    parameters = runs[0]["parameters"]
    assert (parameters["tenant"], parameters["signal"], parameters["week"],
            parameters["chain"]) == ("demo", "sentiment", "2025-12-29", "chain-42")
    assert float(parameters["size"]) == -0.31


IMPACT = """
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from liftos_app.tasks.observability import tenant_resource

emit_event(event="liftos.signal.impact", resource={**tenant_resource("demo"),
           "liftos.propose-plan": "true", "liftos.plan-objective": "cvar"},
           payload={"signal": "sentiment", "mean": -18000.0, "chain": "chain-42"})
EventsWorker.drain_all()
"""


def test_a_material_signal_impact_proposes_a_plan_carrying_the_chain(prefect_server):
    """The chain's last link on the real server: ``liftos.signal.impact`` for a tenant that
    asks for plans creates a ``budget-plan`` run with the chain id."""
    api, env = prefect_server
    _run([sys.executable, "-m", "liftos_app.cli", "deploy"], env, timeout=180)
    _run([sys.executable, "-c", IMPACT], env, timeout=60)
    _runs_created(api, "budget-plan/budget-plan",
                  lambda run: run["parameters"].get("chain") == "chain-42")

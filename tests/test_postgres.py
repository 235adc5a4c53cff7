"""The production topology's first piece: a Prefect server on PostgreSQL (its own database,
created by ``liftos server``), deployments from ``liftos deploy`` and a real process worker that
polls the pool and runs them. Needs PostgreSQL at ``LIFTOS_TEST_POSTGRES_URL`` or
127.0.0.1:5432; where none answers (a laptop) these tests are skipped, saying so."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import (
    DEMO_DATA,
    REPO,
    free_port,
    local_server,
    postgres_database,
    postgres_unreachable,
    prefect_server_command,
    write_tenant,
)

NO_POSTGRES = postgres_unreachable()
needs_postgres = pytest.mark.skipif(NO_POSTGRES is not None, reason=NO_POSTGRES or "")


def _server_env(home, port: int) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL":
           f"http://127.0.0.1:{port}/api", "PREFECT_UI_ENABLED": "false",
           "LIFTOS_HOME": str(home / "liftos")}
    env.pop("LIFTOS_TENANTS_DIR", None)
    return env


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory):
    from liftos_app.flows.server import drop_database

    home = tmp_path_factory.mktemp("prefect-postgres")
    url, port = postgres_database(), free_port()
    env = _server_env(home, port)
    try:
        with local_server(prefect_server_command(url, port), f"{env['PREFECT_API_URL']}/health",
                          home / "server.log", env=env, timeout=180):
            yield env["PREFECT_API_URL"], env, url
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def deployed(postgres_server):
    """``liftos deploy`` against the PostgreSQL-backed server: deployments, pool, automations."""
    env = postgres_server[1]
    done = subprocess.run([sys.executable, "-m", "liftos_app.cli", "deploy"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return postgres_server


@contextlib.contextmanager
def _worker(env: dict, log) -> Iterator[subprocess.Popen]:
    """A real ``prefect worker start`` in a session of its own (its flow runs are its
    children), polling every second."""
    worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1",
                  "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", "liftos-process",
               "--limit", "2"]
    with open(log, "a") as out:
        worker = subprocess.Popen(command, cwd=REPO, env=worker_env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield worker
        finally:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and every descendant at once, as a lost machine would."""
    import psutil

    parent = psutil.Process(pid)
    victims = [parent, *parent.children(recursive=True)]
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.kill()
    psutil.wait_procs(victims, timeout=30)
    return [v.pid for v in victims]


def _rows(url: str, query: str, *args) -> list:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)

    async def fetch() -> list:
        import asyncpg

        connection = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432,
                                           user=parsed.username, password=parsed.password,
                                           database=parsed.database)
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()

    return asyncio.run(fetch())


def _run_monitor(api: str, log) -> tuple[str, str]:
    """Create a ``monitor`` run over REST; the worker picks it up; its final state."""
    with httpx.Client(base_url=api, timeout=30) as client:
        deployment = client.get("/deployments/name/monitor/monitor").json()
        created = client.post(f"/deployments/{deployment['id']}/create_flow_run",
                              json={"parameters": {}})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        deadline = time.monotonic() + 180
        while (state := client.get(f"/flow_runs/{run_id}").json()["state"]["type"]) not in (
                "COMPLETED", "FAILED", "CRASHED"):
            assert time.monotonic() < deadline, (state, log.read_text()[-3000:])
            time.sleep(1)
    return run_id, state


@pytest.mark.slow
@needs_postgres
def test_a_worker_runs_a_deployment_on_the_postgres_backed_server(deployed, tmp_path):
    api, env, url = deployed
    log = tmp_path / "worker.log"
    with _worker(env, log):
        run_id, state = _run_monitor(api, log)
    assert state == "COMPLETED", log.read_text()[-3000:]
    stored = _rows(url, "select state_type from flow_run where id = $1", uuid.UUID(run_id))
    assert [r["state_type"] for r in stored] == ["COMPLETED"]  # in PostgreSQL, not SQLite


SMALL_REFRESH = {
    "options": {"draws": 100, "tune": 150, "chains": 2, "seed": 3},
    "run_validation": True, "trust_threshold": 0.0,
    "validation": {"holdout_weeks": 8, "draws": 100, "tune": 150, "chains": 2,
                   "refutations": False, "recovery": {"replicas": 0}},
}


def _create_run(client: httpx.Client, deployment: str, parameters: dict,
                job_variables: dict | None = None) -> str:
    found = client.get(f"/deployments/name/{deployment}").json()
    created = client.post(f"/deployments/{found['id']}/create_flow_run",
                          json={"parameters": parameters, "job_variables": job_variables or {}})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _stages(client: httpx.Client, run_id: str) -> dict[str, str]:
    """Stage name -> its task run's state name (``Cached``, ``Running``, ...)."""
    runs = client.post("/task_runs/filter", json={
        "flow_runs": {"id": {"any_": [run_id]}}}).json()
    return {run["task_key"].rsplit("-", 1)[0].replace("_", "-"): run["state"]["name"]
            for run in runs if run.get("state")}


def _wait(client: httpx.Client, run_id: str, done, timeout: float, log) -> dict:
    deadline = time.monotonic() + timeout
    while not done(run := client.get(f"/flow_runs/{run_id}").json()):
        assert time.monotonic() < deadline, (run["state"], log.read_text()[-3000:])
        time.sleep(0.5)
    return run


@pytest.mark.slow
@needs_postgres
def test_a_killed_prefect_worker_ends_the_run_crashed_and_a_rerun_does_not_refit(
        deployed, tmp_path):
    """Kill a worker and its flow-run process (SIGKILL, as a lost machine) after the fit and
    during the model's validation: the heartbeat automation marks the run Crashed, nothing is
    promoted, and the re-run reuses the cached fit and promotes once."""
    from liftos.home import DataHome

    api, env, _ = deployed
    tenant = write_tenant(tmp_path, "crash", DEMO_DATA)
    # The automation deploy created, its window shortened from 3 x 60 s to 3 x 15 s.
    with httpx.Client(base_url=api, timeout=30) as client:
        automation = [a for a in client.post("/automations/filter", json={}).json()
                      if a["name"] == "liftos-crash-silent-runs"]
        assert len(automation) == 1
        changed = {**automation[0], "trigger": {**automation[0]["trigger"], "within": 45}}
        for key in ("id", "created", "updated", "tags", "owner_resource"):
            changed.pop(key, None)
        assert client.put(f"/automations/{automation[0]['id']}", json=changed).is_success
        beats = {"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}
        parameters = {"tenant": str(tenant), **SMALL_REFRESH}
        log = tmp_path / "worker.log"
        with _worker(env, log) as worker:
            run_id = _create_run(client, "mmm-refresh/weekly-refresh", parameters, beats)
            _wait(client, run_id, lambda run: _stages(client, run_id).get(
                "validate-model") == "Running", 240, log)
            assert _stages(client, run_id)["fit-model"] == "Completed"
            killed = _kill_tree(worker.pid)
        assert len(killed) >= 2  # the worker and the flow run it started
        crashed = _wait(client, run_id, lambda run: run["state"]["type"] != "RUNNING", 150, log)
        assert crashed["state"]["type"] == "CRASHED", crashed["state"]
        assert "No heartbeat" in crashed["state"]["message"]
        home = DataHome(Path(env["LIFTOS_HOME"]))
        assert home.champion("crash") is None and home.runs("crash") == []

        with _worker(env, log):
            rerun = _create_run(client, "mmm-refresh/weekly-refresh", parameters, beats)
            finished = _wait(client, rerun, lambda run: run["state"]["type"] in (
                "COMPLETED", "FAILED", "CRASHED"), 240, log)
        assert finished["state"]["type"] == "COMPLETED", log.read_text()[-3000:]
        stages = _stages(client, rerun)
    assert stages["fit-model"] == "Cached" and stages["validate-model"] == "Completed", stages
    runs = home.runs("crash")
    assert len(runs) == 1 and runs[0]["promoted"] is True, runs


RUN_REFRESH = """
import json, sys
from liftos_app.flows.refresh import mmm_refresh
from liftos.model.options import ModelOptions
from liftos.validation.runner import ValidationOptions
from liftos.validation.recovery import RecoveryOptions
small = json.loads(sys.argv[2])
validation = ValidationOptions(**{**small["validation"], "recovery": RecoveryOptions(replicas=0)})
state = mmm_refresh(tenant=sys.argv[1], options=ModelOptions(**small["options"]),
                    run_validation=True, validation=validation, trust_threshold=0.0,
                    return_state=True)
print("FINAL", state.type.value, state.message)
sys.exit(0 if state.is_completed() else 1)
"""


@pytest.mark.slow
@needs_postgres
def test_a_server_restarted_mid_run_loses_no_state_and_orphans_no_promotion(tmp_path):
    """Stop the PostgreSQL-backed server while a refresh is fitting and start it again on the
    same database: the run keeps its history, completes, and is promoted exactly once."""
    from liftos.home import DataHome
    from liftos_app.flows.server import drop_database

    url, port = postgres_database(), free_port()
    env = _server_env(tmp_path, port)
    api, health = env["PREFECT_API_URL"], f"{env['PREFECT_API_URL']}/health"
    tenant = write_tenant(tmp_path, "restart", DEMO_DATA)
    log = tmp_path / "flow.log"
    try:
        with local_server(prefect_server_command(url, port), health, tmp_path / "server-1.log",
                          env=env, timeout=180), httpx.Client(base_url=api, timeout=30) as client:
            with open(log, "w") as out:
                flow = subprocess.Popen([sys.executable, "-c", RUN_REFRESH, str(tenant),
                                         json.dumps(SMALL_REFRESH)], cwd=REPO, env=env,
                                        stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 180
            while not (run := client.post("/flow_runs/filter", json={}).json()) or _stages(
                    client, run[0]["id"]).get("fit-model") != "Running":
                assert time.monotonic() < deadline and flow.poll() is None, log.read_text()
                time.sleep(0.3)
            run_id = run[0]["id"]
        # The server is down now, mid-fit; it comes back 5 s later on the same database.
        time.sleep(5)
        with local_server(prefect_server_command(url, port), health, tmp_path / "server-2.log",
                          env=env, timeout=180), httpx.Client(base_url=api, timeout=30) as client:
            flow.wait(timeout=300)
            final = client.get(f"/flow_runs/{run_id}").json()["state"]
            stages = _stages(client, run_id)
    finally:
        if flow.poll() is None:
            flow.kill()
        drop_database(url)
    said = log.read_text()
    assert flow.returncode == 0 and "FINAL COMPLETED" in said, said[-3000:]
    assert final["type"] == "COMPLETED", final
    assert all(stages[s] == "Completed" for s in ("fit-model", "validate-model",
                                                  "summarize-run")), stages
    runs = DataHome(Path(env["LIFTOS_HOME"])).runs("restart")
    assert len(runs) == 1 and runs[0]["promoted"] is True, runs


def test_an_unreachable_postgres_is_named_without_its_password():
    done = subprocess.run([sys.executable, "-m", "liftos_app.cli", "server", "database", "--url",
                           f"postgresql+asyncpg://liftos:s3cret-pw@127.0.0.1:{free_port()}/x"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error: PostgreSQL at postgresql+asyncpg://liftos:***@127.0.0.1:")
    assert "unreachable" in done.stderr and "s3cret-pw" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_deploy_to_an_unreachable_server_says_so_without_the_password(tmp_path):
    env = {**os.environ, "PREFECT_API_URL": f"http://ops:pw-9x2@127.0.0.1:{free_port()}/api",
           "PREFECT_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "liftos_app.cli", "deploy"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip() == ("error: the Prefect API at http://ops:***@127.0.0.1:"
                                   f"{env['PREFECT_API_URL'].split(':')[3]} does not answer "
                                   "(ConnectError); is the server running?")

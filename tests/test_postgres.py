"""The production topology's first piece: a Prefect server on PostgreSQL (its own database,
created by ``liftos server``), deployments from ``liftos deploy`` and a real process worker that
polls the pool and runs them. Needs PostgreSQL at ``LIFTOS_TEST_POSTGRES_URL`` or
127.0.0.1:5432; where none answers (a laptop) these tests are skipped, saying so."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from support import REPO, free_port, local_server

ADMIN_URL = os.environ.get("LIFTOS_TEST_POSTGRES_URL",
                           "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


def _unreachable() -> str | None:
    from sqlalchemy.engine import make_url

    url = make_url(ADMIN_URL)

    async def probe() -> None:
        import asyncpg

        connection = await asyncpg.connect(host=url.host, port=url.port or 5432,
                                           user=url.username, password=url.password,
                                           database=url.database or "postgres", timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL here
        return (f"no PostgreSQL at {url.render_as_string(hide_password=True)} "
                f"({type(exc).__name__}); set LIFTOS_TEST_POSTGRES_URL")
    return None


NO_POSTGRES = _unreachable()
needs_postgres = pytest.mark.skipif(NO_POSTGRES is not None, reason=NO_POSTGRES or "")


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory):
    from sqlalchemy.engine import make_url

    from liftos_app.flows.server import drop_database

    home = tmp_path_factory.mktemp("prefect-postgres")
    url = make_url(ADMIN_URL).set(database=f"liftos_test_{uuid.uuid4().hex[:8]}")
    url = url.render_as_string(hide_password=False)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": api,
           "PREFECT_UI_ENABLED": "false", "LIFTOS_HOME": str(home / "liftos")}
    env.pop("LIFTOS_TENANTS_DIR", None)
    command = [sys.executable, "-m", "liftos_app.cli", "server", "start", "--url", url,
               "--port", str(port)]
    try:
        with local_server(command, f"{api}/health", home / "server.log", env=env, timeout=180):
            yield api, env, url
    finally:
        drop_database(url)


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
def test_a_worker_runs_a_deployment_on_the_postgres_backed_server(postgres_server, tmp_path):
    api, env, url = postgres_server
    deployed = subprocess.run([sys.executable, "-m", "liftos_app.cli", "deploy"], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=240, check=False)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1",
                  "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", "liftos-process",
               "--limit", "2"]
    with open(log, "w") as out:
        worker = subprocess.Popen(command, cwd=REPO, env=worker_env, stdout=out,
                                  stderr=subprocess.STDOUT)
        try:
            run_id, state = _run_monitor(api, log)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert state == "COMPLETED", log.read_text()[-3000:]
    stored = _rows(url, "select state_type from flow_run where id = $1", uuid.UUID(run_id))
    assert [r["state_type"] for r in stored] == ["COMPLETED"]  # in PostgreSQL, not SQLite


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

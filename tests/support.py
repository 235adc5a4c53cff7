"""Constants and helpers the tests share (imported as ``support``; fixtures live in
``conftest.py``, which no test imports)."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO / "tests" / "data"
DEMO_DATA = REPO / "tenants" / "data" / "ecommerce_demo.csv"
POSTGRES_ADMIN_URL = os.environ.get("LIFTOS_TEST_POSTGRES_URL",
                                    "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
# gRPC reads its trusted roots once per process: the fake Google Ads certificate lives here. The
# pytest-xdist workers inherit the controller's folder (and its roots variable): one certificate.
FAKES_CERT_DIR = Path(os.environ.setdefault("LIFTOS_TEST_FAKES_CERTS",
                                            tempfile.mkdtemp(prefix="liftos-test-fakes-")))


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tenant(folder: Path, name: str, data: Path, **extra: object) -> Path:
    """A tenant file for the ecommerce demo data layout."""
    import yaml

    spec = {"tenant": name, "template": "ecommerce", "timezone": "America/New_York",
            "data": {"path": str(data), "date_column": "date", "target": "revenue",
                     "channels": ["search", "social", "display", "email", "tv"],
                     "controls": ["price_index", "promo"]}, **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def validated(**kwargs) -> dict:
    """Refresh arguments that run the (small) validation suite and a passable gate: the only
    way a model becomes champion."""
    from liftos.validation.recovery import RecoveryOptions
    from liftos.validation.runner import ValidationOptions

    small = ValidationOptions(holdout_weeks=8, draws=100, tune=150, chains=2, refutations=False,
                              recovery=RecoveryOptions(replicas=0))
    return {"run_validation": True, "validation": small, "trust_threshold": 0.0, **kwargs}


@functools.cache
def postgres_unreachable() -> str | None:
    """Why no PostgreSQL answers at ``POSTGRES_ADMIN_URL`` (a laptop), or None (CI, servers)."""
    import asyncio

    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_ADMIN_URL)

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


def postgres_database() -> str:
    """The URL of a new database on the test PostgreSQL (``liftos server`` creates it)."""
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_ADMIN_URL).set(database=f"liftos_test_{uuid.uuid4().hex[:8]}")
    return url.render_as_string(hide_password=False)


def prefect_server_command(url: str, port: int) -> list[str]:
    """``liftos server start``: the Prefect server on the PostgreSQL database ``url``."""
    return [sys.executable, "-m", "liftos_app.cli", "server", "start", "--url", url,
            "--port", str(port)]


@contextlib.contextmanager
def prefect_api_at(api: str, updates: dict | None = None) -> Iterator[None]:
    """Prefect's API URL (and ``updates``: setting -> value) for this process and its threads:
    a thread does not inherit the settings context (a flow run in a test's thread, nutpie's
    progress callback) and would start a temporary server of its own. As Prefect's harness."""
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api, **(updates or {})}), \
            _temporary_global_settings_context(get_settings_context()):
        yield


def free_port() -> int:
    """A free port below the kernel's ephemeral range, for a server started later: a port
    from bind(0) lies inside that range, where any process's bind(0) or outgoing connection
    can take it before the server binds (seen in CI: a Dask scheduler exiting on 'address
    already in use' while the other test process opened connections)."""
    low = _ephemeral_low()
    for _ in range(100):
        port = _PICK.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_PICK = random.SystemRandom()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; macOS's range starts at 49152


@contextlib.contextmanager
def local_server(command: list[str], health_url: str, log_path: Path, env: dict | None = None,
                 timeout: float = 90.0) -> Iterator[subprocess.Popen]:
    """Start a real server process on 127.0.0.1, wait until ``health_url`` answers, stop it."""
    import httpx

    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if httpx.get(health_url, timeout=2).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start:\n"
                                       + log_path.read_text()[-3000:])
                time.sleep(0.3)
            yield server
        finally:
            server.terminate()
            server.wait(timeout=30)


# ---------------------------------------------------------------- the Prefect API, as a user reads it
def flow_run_id(state) -> str:
    return str(state.state_details.flow_run_id)


def artifacts(run_id: str, key: str | None = None) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[uuid.UUID(run_id)]),
            key=ArtifactFilterKey(any_=[key]) if key else None))
    return found


def events(name: str, run_id: str, minimum: int = 1, timeout: float = 15.0) -> list[dict]:
    """Events of this flow run (they reach the server asynchronously: poll briefly)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            response = client._client.post("/events/filter", json={
                "filter": {"event": {"name": [name]},
                           "related": {"id": [f"prefect.flow-run.{run_id}"]}},
                "limit": 50})
        found = response.json()["events"]
        if len(found) >= minimum or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def stage_logs(run_id: str, stages: set[str], timeout: float = 15.0) -> dict[str, str]:
    """Each stage's own log lines in the run (what the Prefect UI shows), joined per stage;
    logs reach the server in batches: poll briefly."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = {run.id: run.name.rsplit("-", 1)[0] for run in client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(run_id)])))}
            logs = client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[uuid.UUID(run_id)])))
        said: dict[str, str] = {}
        for log in logs:
            name = runs.get(log.task_run_id)
            if name and not log.message.startswith("Finished in state"):
                said[name] = said.get(name, "") + log.message + "\n"
        if stages <= set(said) or time.monotonic() > deadline:
            return said
        time.sleep(0.5)


def task_states(run_id: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[uuid.UUID(run_id)])))
    return {run.name.rsplit("-", 1)[0]: run.state.name
            for run in runs}


# ---------------------------------------------------------------- a home for the API and the hub
def api_tenants(home, fit, tokens: tuple = (
        ("alice", ["acme"], ["read"]), ("ops", ["acme"], ["read", "trigger", "approve"]),
        ("bob", ["beta"], ["read"]))) -> dict[str, str]:
    """Tenants 'acme' and 'beta' in ``home``, each with a champion: acme's is the saved ``fit``
    (report, plots, series and a validation that finds 'tv' not recoverable); beta's a copy
    whose estimates are 1.37 times acme's (no number of one equals the other's). Two runs
    each; returns the tokens' secrets by name."""
    import json
    import shutil

    from liftos.access import TokenStore
    from liftos.home import write_json
    from liftos.report import write_report

    champion = home.champion("acme")
    fit_dir = Path(champion["fit_dir"]) if champion else fit.save(home.root / "fits" / "acme")
    write_report(fit, fit_dir)
    beta_dir = fit_dir.parent / "beta-fit"
    shutil.rmtree(beta_dir, ignore_errors=True)
    shutil.copytree(fit_dir, beta_dir)
    summary = json.loads((beta_dir / "summary.json").read_text())
    for entry in summary["channels"].values():
        for key in [k for k in entry if k.startswith(("roas_", "contribution_total"))]:
            if isinstance(entry[key], float):
                entry[key] *= 1.37
    write_json(beta_dir / "summary.json", summary)
    write_json(fit_dir / "validation.json", _validation(str(fit_dir)))
    for tenant, folder in (("acme", fit_dir), ("beta", beta_dir)):
        for k, promoted in enumerate((False, True)):
            home.append_run(tenant, {
                "run_id": f"00000000-0000-0000-0000-00000000000{k}", "fit_dir": str(folder),
                "trust_score": 82.5, "last_week": "2025-12-22", "promoted": promoted,
                "decision": [] if promoted else ["trust score 60.0 below the threshold 70"],
                "at": f"2026-11-{23 + k}T06:00:00+00:00"})
        home.set_champion(tenant, {"fit_dir": str(folder), "trust_score": 82.5,
                                   "run_id": "00000000-0000-0000-0000-000000000001"})
    from liftos.monitor import ChannelMove, MonitorCheck

    check = MonitorCheck(
        tenant="acme", week="2025-12-29", in_sample=False, kpi_actual=9.1e5, kpi_expected=1.2e6,
        kpi_low=1.0e6, kpi_high=1.4e6, outside_interval=True, anomalies=(
            "revenue 910,000 below the 94% interval [1,000,000, 1,400,000]",),
        moves=(ChannelMove(channel="search", spend=1e4, trailing_mean=2e4, change=-0.5,
                           kpi_impact_mean=-3e4, material=True),),
        fit_dir=str(fit_dir), data_path="acme.csv")
    write_json(home.folder("acme", "monitor") / "2025-12-29.json", check.model_dump())
    store = TokenStore(home)
    return {name: store.create(name, tenants, scopes)[1] for name, tenants, scopes in tokens}


def _validation(fit_dir: str) -> dict:
    return {"fit_dir": fit_dir, "trust": {"score": 82.5, "components": {"convergence": 100.0,
                                                                        "recovery": 50.0},
                                          "weights": {"convergence": 20.0, "recovery": 20.0}},
            "checks": [{"name": "r-hat max", "group": "convergence", "value": 1.004,
                        "threshold": "<= 1.01", "passed": True, "score": 1.0, "detail": ""},
                       {"name": "recovery: channels recoverable on this spend",
                        "group": "recovery", "value": 0.8, "threshold": "all", "passed": False,
                        "score": 0.8, "detail": "tv: error 55%"}],
            "recovery": {"channels": [{"channel": "tv", "recoverable": False,
                                       "reason": "error 55% on known truths"},
                                      {"channel": "search", "recoverable": True, "reason": ""}]}}

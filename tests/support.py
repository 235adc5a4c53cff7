"""Constants and helpers the tests share (imported as ``support``; fixtures live in
``conftest.py``, which no test imports)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO / "tests" / "data"
DEMO_DATA = REPO / "tenants" / "data" / "ecommerce_demo.csv"
# gRPC reads its trusted roots once per process: the fake Google Ads certificate lives here.
FAKES_CERT_DIR = Path(tempfile.mkdtemp(prefix="liftos-test-fakes-"))


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

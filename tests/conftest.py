"""Shared fixtures. Model fits are session-scoped: compiling a model costs seconds."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO / "tests" / "data"
DEMO_DATA = REPO / "tenants" / "data" / "ecommerce_demo.csv"

# Prefect reads its settings at import: keep the tests' Prefect state out of ~/.prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="liftos-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("LIFTOS_HOME", tempfile.mkdtemp(prefix="liftos-test-home-"))
# gRPC reads its trusted roots once per process: trust the fake Google Ads certificate from the
# start (the client code is the production one; only the endpoint and this trust differ).
FAKES_CERT_DIR = Path(tempfile.mkdtemp(prefix="liftos-test-fakes-"))


def _trust_fake_certificate() -> None:
    from liftos.fakes.tls import self_signed, trust_bundle

    cert, _ = self_signed(FAKES_CERT_DIR)
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(trust_bundle(cert, FAKES_CERT_DIR))


_trust_fake_certificate()


def _reference_data_dir() -> Path:
    """``LIFTOS_SHARED_DATA``, else ``../shared/data`` beside the checkout, else the bundled copy."""
    if "LIFTOS_SHARED_DATA" in os.environ:
        return Path(os.environ["LIFTOS_SHARED_DATA"])
    shared = REPO.parent / "shared" / "data"
    return shared if (shared / "mmm_example.csv").exists() else BUNDLED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = _reference_data_dir()
    assert (folder / "mmm_example.csv").exists(), f"reference data missing in {folder}"
    return folder


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def prefect_api():
    """One Prefect test server (SQLite) for the session; heartbeats off (they add ~1 s a flow)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60), temporary_settings(
            updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture(scope="session")
def dask_cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None, silence_logs=40) as cluster:
        yield cluster


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

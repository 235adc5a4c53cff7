"""The standing Dask cluster (`liftos cluster up|down|status`): real scheduler and worker
processes on this machine, real refresh flows on a Prefect test server."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import DEMO_DATA, free_port, validated, write_tenant

pytestmark = pytest.mark.slow

SMALL = {"draws": 100, "tune": 150, "chains": 2, "seed": 3}


def liftos(*args: str, home: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liftos_app.cli", *args], check=False,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "LIFTOS_HOME": str(home)})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker processes (one thread each) and a scheduler, started by the CLI."""
    home = tmp_path_factory.mktemp("cluster") / "home"
    port = free_port()
    started = liftos("cluster", "up", "--workers", "2", "--port", str(port), "--dashboard-port",
                     str(free_port()), "--no-register", home=home)
    assert started.returncode == 0, started.stderr
    yield {"address": f"tcp://127.0.0.1:{port}", "home": home}
    stopped = liftos("cluster", "down", home=home)
    assert stopped.returncode == 0, stopped.stderr


def workers(cluster) -> list[dict]:
    shown = liftos("cluster", "status", "--json", home=cluster["home"])
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["workers"]


def test_up_status_and_down_manage_real_processes(tmp_path):
    from liftos_app.flows.embedded import alive

    home = tmp_path / "home"
    port = free_port()
    started = liftos("cluster", "up", "--workers", "2", "--port", str(port), "--dashboard-port",
                     str(free_port()), "--no-register", home=home)
    assert started.returncode == 0, started.stderr
    assert f"export LIFTOS_DASK_ADDRESS=tcp://127.0.0.1:{port}" in started.stdout
    again = liftos("cluster", "up", "--port", str(free_port()), "--no-register", home=home)
    assert again.returncode == 2 and "already running" in again.stderr
    recorded = json.loads((home / "cluster" / "cluster.json").read_text())
    shown = liftos("cluster", "status", home=home)
    assert shown.returncode == 0 and "2 worker(s)" in shown.stdout, shown.stderr
    assert "liftos-0" in shown.stdout and "liftos-1" in shown.stdout
    stopped = liftos("cluster", "down", home=home)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not any(alive(pid) for pid in [recorded["scheduler_pid"], *recorded["worker_pids"]])
    gone = liftos("cluster", "status", home=home)
    assert gone.returncode == 2 and "no LiftOS Dask cluster is running" in gone.stderr
    assert "Traceback" not in gone.stderr


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port where something accepts connections and never speaks (not a Dask scheduler)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_up_refuses_a_port_another_process_holds_and_starts_nothing(tmp_path):
    home = tmp_path / "home"
    with silent_listener() as port:
        started = liftos("cluster", "up", "--workers", "1", "--port", str(port), "--no-register",
                         home=home, timeout=60)
        dashboard = liftos("cluster", "up", "--workers", "1", "--port", str(free_port()),
                           "--dashboard-port", str(port), "--no-register", home=home, timeout=60)
    assert started.returncode == 2, started.stderr
    assert f"port {port} on 127.0.0.1 cannot be used" in started.stderr
    assert "choose another with --port" in started.stderr
    assert dashboard.returncode == 2 and "with --dashboard-port" in dashboard.stderr
    assert "Traceback" not in started.stderr + dashboard.stderr
    assert not (home / "cluster" / "cluster.json").exists()


def test_status_of_an_address_that_is_not_a_scheduler_says_so_instead_of_hanging(tmp_path):
    with silent_listener() as port:
        shown = liftos("cluster", "status", "--address", f"tcp://127.0.0.1:{port}",
                       home=tmp_path / "home", timeout=60)
    assert shown.returncode == 2, shown.stderr
    assert f"tcp://127.0.0.1:{port} accepts connections but is not a Dask scheduler" \
        in shown.stderr
    assert "Traceback" not in shown.stderr


def test_a_scheduler_that_cannot_start_is_explained_by_its_own_log(tmp_path):
    """The cause of this start's failure, not an older run's line from the same log."""
    from liftos_app.flows.cluster import scheduler_failure

    log = tmp_path / "scheduler.log"
    log.write_text("ValueError: an older run's failure\n")
    since = log.stat().st_size
    with silent_listener() as port, open(log, "ab") as out:
        exited = subprocess.run([sys.executable, "-m", "distributed.cli.dask_scheduler",
                                 "--host", "127.0.0.1", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, timeout=60, check=False)
    assert exited.returncode != 0
    assert scheduler_failure(log, since) == "OSError: [Errno 98] Address already in use"


def tenant_folder(tmp_path, monkeypatch, home: Path, name: str) -> None:
    folder = tmp_path / "tenants"
    folder.mkdir()
    monkeypatch.setenv("LIFTOS_TENANTS_DIR", str(folder))
    monkeypatch.setenv("LIFTOS_HOME", str(home))
    write_tenant(folder, name, DEMO_DATA)


def test_a_tenants_weekly_refreshes_reuse_the_compiled_model_in_the_worker_that_holds_it(
        cluster, tmp_path, monkeypatch, prefect_api):
    """Four weekly refreshes of one tenant on two standing workers: only the first compiles;
    each later week is sent to the worker that holds the tenant's compiled model. (Dask left
    to itself picks either idle worker: all three later weeks would hit by chance 1 in 8.)"""
    import polars as pl

    from liftos.model.options import ModelOptions
    from liftos_app.flows.refresh import mmm_refresh

    tenant_folder(tmp_path, monkeypatch, cluster["home"], "weekly")
    weeks = pl.read_csv(DEMO_DATA)["date"].to_list()
    timings = []
    for last in weeks[-4:]:
        summary = mmm_refresh(tenant="weekly", options=ModelOptions(**SMALL), until=str(last),
                              run_validation=False, dask_address=cluster["address"])
        assert summary.last_week == str(last)
        timings.append(json.loads((Path(summary.fit_dir) / "summary.json").read_text())["timing"])
    assert [t["compile_cache_hit"] for t in timings] == [False, True, True, True], timings
    holders = [w["name"] for w in workers(cluster)
               if any("weekly" in owners for owners in w["models"].values())]
    assert len(holders) == 1, holders
    assert max(t["compile_s"] for t in timings[1:]) < 0.1 * timings[0]["compile_s"]


def test_a_worker_killed_mid_fit_loses_nothing_and_promotes_once(cluster, tmp_path, monkeypatch,
                                                                 prefect_api):
    """SIGKILL the worker process running a tenant's fit: Dask runs the fit again on a live
    worker, the flow completes, the model is promoted once, and the nanny brings the killed
    worker back."""
    import signal
    import threading
    import time

    from distributed import Client

    from liftos.home import DataHome
    from liftos.model.options import ModelOptions
    from liftos_app.flows.refresh import mmm_refresh

    tenant_folder(tmp_path, monkeypatch, cluster["home"], "fault")
    outcome: dict = {}

    def refresh() -> None:
        outcome["state"] = mmm_refresh(tenant="fault", options=ModelOptions(**SMALL),
                                       dask_address=cluster["address"], return_state=True,
                                       **validated())

    runner = threading.Thread(target=refresh)
    with Client(cluster["address"], timeout=10) as client:
        runner.start()
        deadline, busy = time.monotonic() + 120, []
        while not busy and time.monotonic() < deadline and runner.is_alive():
            busy = [w for w, keys in client.processing().items() if keys]  # only the fit
            time.sleep(0.05)
        assert busy, "the fit never reached a worker"
        victim = client.run(os.getpid, workers=busy[:1])[busy[0]]
        time.sleep(1.0)  # well inside the compile and sampling (about 10 s)
        os.kill(victim, signal.SIGKILL)
        runner.join(timeout=300)
        assert not runner.is_alive()
        client.wait_for_workers(2, timeout=60)
        assert victim not in client.run(os.getpid).values()
    state = outcome["state"]
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.promoted and Path(summary.fit_dir, "summary.json").exists()
    runs = DataHome(cluster["home"]).runs("fault")
    assert len(runs) == 1 and runs[0]["promoted"] is True, runs


def refresh_against(address: str, tmp_path, monkeypatch, tenant: str):
    import dask

    from liftos.model.options import ModelOptions
    from liftos_app.flows.refresh import mmm_refresh

    tenant_folder(tmp_path, monkeypatch, tmp_path / "home", tenant)
    monkeypatch.setenv("LIFTOS_DASK_ADDRESS", address)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        return mmm_refresh(tenant=tenant, options=ModelOptions(**SMALL),
                           run_validation=False, return_state=True)


def test_a_scheduler_that_does_not_answer_fails_the_run_naming_it(tmp_path, monkeypatch,
                                                                  prefect_api):
    """A cluster taken down without `liftos cluster down` leaves its address configured: the
    run fails saying which scheduler, from where, and what to do (not a bare timeout)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    state = refresh_against(address, tmp_path, monkeypatch, "orphan")
    assert state.is_failed()
    assert f"the Dask scheduler {address} (from environment LIFTOS_DASK_ADDRESS) does not " \
           "answer: start it (`liftos cluster up`)" in state.message, state.message


def test_a_configured_address_where_something_else_listens_fails_the_run_instead_of_hanging(
        tmp_path, monkeypatch, prefect_api):
    """distributed's Client waits forever on a peer that accepts and never answers (a port
    reused by another service): the run fails within the connect timeout, naming it."""
    with silent_listener() as port:
        state = refresh_against(f"tcp://127.0.0.1:{port}", tmp_path, monkeypatch, "squatted")
    assert state.is_failed()
    assert f"tcp://127.0.0.1:{port} accepts connections but is not a Dask scheduler: no " \
           "handshake within 2 s (address from environment LIFTOS_DASK_ADDRESS)" \
        in state.message, state.message

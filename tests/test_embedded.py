"""A command killed with SIGKILL leaves no orphaned Prefect server and no run Running for ever:
the watchdog beside the embedded API marks the run Crashed and stops the server."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import DEMO_DATA, REPO, write_tenant

pytestmark = pytest.mark.slow


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    stat = (entry / "stat").read_text().split()
                    if stat[2] != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def _runs(prefect_home: Path) -> list[tuple[str, str]]:
    db = prefect_home / "prefect.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "select flow_run.state_type, flow_run_state.message from flow_run join "
            "flow_run_state on flow_run_state.id = flow_run.state_id").fetchall()


def test_a_killed_run_is_marked_crashed_and_its_server_stopped(tmp_path):
    tenants, prefect_home, home = tmp_path / "tenants", tmp_path / "prefect", tmp_path / "home"
    tenants.mkdir()
    write_tenant(tenants, "acme", DEMO_DATA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(prefect_home), LIFTOS_HOME=str(home),
               LIFTOS_TENANTS_DIR=str(tenants), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    command = [sys.executable, "-m", "liftos_app.cli", "run", "--tenant", "acme", "--draws", "2000",
               "--tune", "2000", "--chains", "2"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not (home / "tenants" / "acme" / "features").exists():  # the run is under way
        assert process.poll() is None and time.monotonic() < deadline, "the run ended first"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 60
    while _processes_with(f"PREFECT_HOME={prefect_home}") or not any(
            state == "CRASHED" for state, _ in _runs(prefect_home)):
        assert time.monotonic() < deadline, (_runs(prefect_home),
                                             _processes_with(f"PREFECT_HOME={prefect_home}"))
        time.sleep(0.5)
    assert _runs(prefect_home) == [("CRASHED", (f"the process running it (pid {process.pid}) "
                                               "was killed"))]


@pytest.mark.parametrize("command", [["run", "--tenant", "ghost"], ["monitor", "--tenant", "ghost"]])
def test_an_unknown_tenant_is_one_line_before_any_server_starts(tmp_path, command):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), LIFTOS_HOME=str(tmp_path / "home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    done = subprocess.run([sys.executable, "-m", "liftos_app.cli", *command], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown tenant 'ghost'")
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "prefect" / "prefect.db").exists()  # no local API was started


def test_a_slow_first_start_of_the_local_api_is_waited_for(tmp_path):
    """A busy machine migrates a new PREFECT_HOME's database slower than Prefect's default
    wait; a 1 s setting stands in for it (a new database needs several seconds). The run then
    fails on bad data inside the flow: one line naming the stage, file, row and rule."""
    import polars as pl

    tenants = tmp_path / "tenants"
    tenants.mkdir()
    bad = tmp_path / "bad.csv"
    pl.read_csv(DEMO_DATA).with_columns(pl.when(pl.int_range(pl.len()) == 9).then(-5.0)
                                        .otherwise(pl.col("tv")).alias("tv")).write_csv(bad)
    write_tenant(tenants, "acme", bad)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), LIFTOS_HOME=str(tmp_path / "home"),
               LIFTOS_TENANTS_DIR=str(tenants), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1")
    done = subprocess.run([sys.executable, "-m", "liftos_app.cli", "run", "--tenant", "acme"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    error = done.stderr.splitlines()[-1]
    assert error.startswith("error: run ") and "stage 'validate-input' failed" in error, error
    assert "bad.csv" in error and "'tv'" in error and "line 11" in error, error
    assert "Traceback" not in done.stdout + done.stderr
    assert "Error logging to API" not in done.stderr

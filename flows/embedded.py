"""The embedded Prefect API a command uses when no server is configured, and its watchdog.

Prefect starts a temporary local server for a flow run when ``PREFECT_API_URL`` is unset. If
the command is killed (``kill -9``, an OOM kill), nothing stops that server and nothing ends the
run: an orphaned server holds its port and SQLite file, and the run stays Running for ever.
:func:`embedded_api` starts that server itself and a small watchdog process beside it: when the
command's process disappears, the watchdog marks the command's unfinished runs Crashed (naming
the lost process) and stops the server.

    python -m flows.embedded COMMAND_PID SERVER_PID API_URL   (the watchdog; started for you)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx

from liftos.errors import LiftOSError

PID_TAG = "liftos-pid:{pid}"
POLL_S = 0.5
# A new PREFECT_HOME migrates its SQLite database first: 7-12 s on a quiet 2-core machine, and
# well past Prefect's 20 s default when that machine is busy.
STARTUP_S = 120


@contextlib.contextmanager
def embedded_api() -> Iterator[str | None]:
    """Run the body against a configured server, or else a temporary one that cannot outlive
    this process; yields the API URL (None when a server is configured)."""
    from prefect import tags
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    if PREFECT_API_URL.value():
        yield None
        return
    server = SubprocessASGIServer()
    timeout = max(STARTUP_S, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    try:
        server.start(timeout=timeout)
    except RuntimeError as exc:
        raise LiftOSError(f"the local Prefect API did not answer within {timeout} s "
                          f"({str(exc).splitlines()[0]}); raise "
                          "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start a server "
                          "with `liftos server` and set PREFECT_API_URL") from None
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "liftos_app.flows.embedded", str(os.getpid()),
         str(server.server_process.pid), server.api_url],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}), tags(
                PID_TAG.format(pid=os.getpid())):
            yield server.api_url
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # the run's last logs reach the server before it stops
        watchdog.terminate()
        server.stop()


def watch(command_pid: int, server_pid: int, api_url: str) -> None:
    """Wait for the command to disappear; then end its runs and the server."""
    while alive(command_pid):
        if not alive(server_pid):
            return
        time.sleep(POLL_S)
    crash_runs(api_url, command_pid)
    _stop(server_pid)


def crash_runs(api_url: str, command_pid: int) -> list[str]:
    """Mark the command's unfinished flow runs Crashed; returns their ids."""
    crashed = []
    with httpx.Client(base_url=api_url, timeout=10) as client:
        found = client.post("/flow_runs/filter", json={"flow_runs": {
            "tags": {"all_": [PID_TAG.format(pid=command_pid)]},
            "state": {"type": {"any_": ["RUNNING", "PENDING", "SCHEDULED"]}}}})
        for run in found.json() if found.is_success else []:
            client.post(f"/flow_runs/{run['id']}/set_state", json={"state": {
                "type": "CRASHED", "name": "Crashed",
                "message": f"the process running it (pid {command_pid}) was killed"},
                "force": True})
            crashed.append(run["id"])
    return crashed


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child of ours that nobody reaped yet is gone too
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return True


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not alive(pid):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])

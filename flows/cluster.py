"""A standing Dask cluster on this machine: one scheduler and N worker processes that outlive
the flow runs, so compiled models stay warm in the workers between weekly refreshes.

``liftos cluster up`` starts ``dask scheduler`` and ``dask worker`` processes (each worker under
its nanny, which restarts it if it dies) with this module as their preload, records them in
``LIFTOS_HOME/cluster/cluster.json`` and registers the scheduler address as the Prefect Variable
``liftos-dask-address``: the existing address precedence (``flows/dask_runner.py``) then sends
every flow's heavy stages there. ``liftos cluster down`` stops the processes and clears the
Variable; ``liftos cluster status`` lists the workers and the compiled models each holds.

On more machines: run ``dask scheduler`` on one and ``dask worker tcp://HOST:8786 --preload
liftos_app.flows.cluster`` on the others, with the same ``LIFTOS_HOME`` (a shared file system)
and Prefect result storage, and set the Variable to the scheduler's address.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from liftos.errors import LiftOSError
from liftos.home import DataHome, write_json
from liftos_app.flows.embedded import alive

log = logging.getLogger("liftos.cluster")
PRELOAD = "liftos_app.flows.cluster"
# One thread per BLAS/OpenMP pool in each worker: the worker's threads are the parallelism.
THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS")}


@dataclass
class Cluster:
    """What ``cluster up`` started: enough for ``down`` and ``status`` from another shell."""

    address: str
    dashboard: str
    scheduler_pid: int
    worker_pids: list[int] = field(default_factory=list)
    started_at: float = 0.0
    registered: bool = False  # set as the Prefect Variable liftos-dask-address

    @staticmethod
    def path(home: DataHome | None = None) -> Path:
        return (home or DataHome()).root / "cluster" / "cluster.json"

    @classmethod
    def load(cls, home: DataHome | None = None) -> Cluster | None:
        path = cls.path(home)
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self, home: DataHome | None = None) -> None:
        write_json(self.path(home), asdict(self))

    def pids(self) -> list[int]:
        return [*self.worker_pids, self.scheduler_pid]


def dask_setup(worker: Any) -> None:
    """Worker preload: import the model stack before the first task arrives (a fresh worker
    otherwise spends its first fit's first seconds importing PyMC and nutpie)."""
    import liftos.model.mmm  # noqa: F401

    log.info("LiftOS worker %s ready (pid %d)", worker.name, os.getpid())


def up(workers: int = 2, threads: int = 1, host: str = "127.0.0.1", port: int = 8786,
       dashboard_port: int = 8787, memory_limit: str = "auto", timeout: float = 120.0,
       home: DataHome | None = None) -> Cluster:
    """Start the scheduler and ``workers`` worker processes, detached from this shell."""
    home = home or DataHome()
    running = Cluster.load(home)
    if running is not None and alive(running.scheduler_pid):
        raise LiftOSError(f"a LiftOS Dask cluster is already running at {running.address} "
                          f"(pid {running.scheduler_pid}); `liftos cluster down` first")
    _claimable(host, port, "--port")
    _claimable(host, dashboard_port, "--dashboard-port")
    logs = Cluster.path(home).parent
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **THREAD_ENV, "LIFTOS_HOME": str(home.root)}
    address = f"tcp://{host}:{port}"
    scheduler_log = logs / "scheduler.log"
    since = scheduler_log.stat().st_size if scheduler_log.exists() else 0
    scheduler = _spawn([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", host,
                        "--port", str(port), "--dashboard-address", f"{host}:{dashboard_port}"],
                       scheduler_log, env)
    pids = [_spawn([sys.executable, "-m", "distributed.cli.dask_worker", address,
                    "--name", f"liftos-{index}", "--nthreads", str(threads), "--nworkers", "1",
                    "--memory-limit", memory_limit, "--preload", PRELOAD,
                    "--local-directory", str(logs / "work")],
                   logs / f"worker-{index}.log", env).pid for index in range(workers)]
    cluster = Cluster(address, f"http://{host}:{dashboard_port}/status", scheduler.pid, pids,
                      time.time())
    cluster.save(home)
    try:
        _wait_for_workers(address, workers, timeout, scheduler, logs, since)
    except LiftOSError:
        down(home)
        raise
    return cluster


def down(home: DataHome | None = None, timeout: float = 30.0) -> Cluster | None:
    """Stop what ``up`` started (workers first, then the scheduler); None if nothing was up."""
    cluster = Cluster.load(home)
    if cluster is None:
        return None
    for pid in cluster.pids():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in cluster.pids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in cluster.pids():
        _signal(pid, signal.SIGKILL)
    Cluster.path(home).unlink(missing_ok=True)
    return cluster


def status(address: str, timeout: float = 10.0) -> dict[str, Any]:
    """The scheduler's workers: name, pid, threads, memory, tasks running, models held."""
    from distributed import Client

    from liftos.model.mmm import held_models
    from liftos_app.flows.dask_runner import handshake

    try:
        handshake(address, timeout)
        client = Client(address, timeout=timeout)
    except OSError as exc:
        raise LiftOSError(f"no Dask scheduler answers at {address}: {exc}") from exc
    with client:
        info = client.scheduler_info(n_workers=-1)["workers"]
        processing = client.processing()
        held = client.run(held_models, on_error="return")
        pids = client.run(os.getpid, on_error="return")
    workers = []
    for addr, worker in sorted(info.items(), key=lambda item: str(item[1].get("name"))):
        models = held.get(addr)
        workers.append({
            "address": addr, "name": worker.get("name"), "pid": pids.get(addr),
            "threads": worker.get("nthreads"),
            "memory_mb": round(worker.get("metrics", {}).get("memory", 0) / 2**20),
            "running": len(processing.get(addr, ())),
            "models": models if isinstance(models, dict) else {}})
    return {"address": address, "workers": workers}


def _spawn(command: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log_path, "ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _claimable(host: str, port: int, option: str) -> None:
    """Refuse a port another process listens on before starting anything: the scheduler would
    exit on it, and its dashboard would silently move elsewhere than the address we record."""
    if port == 0:
        return
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Dask binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise LiftOSError(f"port {port} on {host} cannot be used ({exc.strerror}); choose "
                              f"another with {option}") from exc


def scheduler_failure(log_path: Path, since: int = 0) -> str:
    """The first exception line of a scheduler's log from byte ``since`` on (the cause; later
    ones are its consequences, such as 'Scheduler failed to start'), or '' if none."""
    with open(log_path, "rb") as log_file:
        log_file.seek(since)
        text = log_file.read().decode(errors="replace")
    found = re.search(r"^[\w.]*(?:Error|Exception): .+$", text, re.MULTILINE)
    return found.group(0).strip() if found else ""


def _signal(pid: int, sig: int) -> None:
    """Signal the process's whole session (a nanny and the worker it started)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_for_workers(address: str, count: int, timeout: float,
                      scheduler: subprocess.Popen, logs: Path, since: int) -> None:
    from distributed import Client

    from liftos_app.flows.dask_runner import handshake

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scheduler.poll() is not None:
            cause = scheduler_failure(logs / "scheduler.log", since)
            raise LiftOSError(f"the Dask scheduler exited ({scheduler.returncode})"
                              f"{': ' + cause if cause else ''}; see {logs / 'scheduler.log'}")
        try:
            handshake(address, 5)
            with Client(address, timeout=5) as client:
                client.wait_for_workers(count, timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            time.sleep(0.5)
    raise LiftOSError(f"{count} Dask worker(s) did not join {address} within {timeout:.0f} s; "
                      f"see the logs in {logs}")

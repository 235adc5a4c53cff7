"""Flow-run API under load (issue 14): PostgreSQL-backed Prefect server against the SQLite one.

    .venv/bin/python bench/bench_load.py [--runs 200] [--burst 50] [--pause 5] [--workers 2]

For each database, the same work: a fresh ``liftos server start`` (PostgreSQL, a database of
its own) or ``prefect server start`` (SQLite, the embedded default), ``liftos deploy``, and
process workers (``prefect worker start --pool liftos-process``) polling every second. Then
``--runs`` ``create_flow_run`` REST calls on the ``monitor`` deployment (20 tenants, each with
its own champion: cheap runs), fired in concurrent bursts while the workers run the earlier
ones, so the API serves creates, worker polls and the runs' own state, log and event writes at
once. Reported per database: create latency p50/p95/max, HTTP statuses, runs accepted,
completed, lost (never finished) and duplicated (started more than once), and the wall time
until the last run finished. The databases alternate which goes first with ``--repeats``.
Writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
POSTGRES = os.environ.get("LIFTOS_TEST_POSTGRES_URL",
                          "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def start_server(database: str, env: dict, port: int, log: Path) -> tuple[subprocess.Popen, str]:
    """The server on ``database`` ('sqlite' or 'postgres'); returns it and its database URL."""
    if database == "postgres":
        from sqlalchemy.engine import make_url

        url = make_url(POSTGRES).set(database=f"liftos_bench_{uuid.uuid4().hex[:8]}")
        url = url.render_as_string(hide_password=False)
        command = [sys.executable, "-m", "liftos_app.cli", "server", "start", "--url", url,
                   "--port", str(port)]
    else:
        url = f"sqlite+aiosqlite:///{env['PREFECT_HOME']}/prefect.db"
        command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                   "--port", str(port)]
    with open(log, "w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).is_success:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the {database} server did not start; see {log}")


async def fire(api: str, deployment: str, runs: int, burst: int, pause: float
               ) -> list[tuple[float, int, str | None]]:
    """``runs`` creates in bursts of ``burst`` concurrent calls: (seconds, status, run id)."""
    results: list[tuple[float, int, str | None]] = []
    limits = httpx.Limits(max_connections=burst, max_keepalive_connections=burst)
    async with httpx.AsyncClient(base_url=api, timeout=120, limits=limits) as client:
        async def create(index: int) -> tuple[float, int, str | None]:
            started = time.perf_counter()
            answer = await client.post(f"/deployments/{deployment}/create_flow_run", json={
                "parameters": {}, "tags": [f"load-{index}"]})
            took = time.perf_counter() - started
            return took, answer.status_code, answer.json().get("id") if (
                answer.status_code == 201) else None

        for start in range(0, runs, burst):
            results += await asyncio.gather(*(create(i) for i in range(
                start, min(start + burst, runs))))
            if start + burst < runs:
                await asyncio.sleep(pause)
    return results


def measure(database: str, work: Path, args: argparse.Namespace, port: int) -> dict:
    home = work / database
    home.mkdir()
    env = {**os.environ, "PREFECT_HOME": str(home / "prefect"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
           "LIFTOS_HOME": str(work / "home"), "LIFTOS_TENANTS_DIR": str(work / "tenants")}
    server, url = start_server(database, env, port, home / "server.log")
    workers: list[subprocess.Popen] = []
    try:
        subprocess.run([sys.executable, "-m", "liftos_app.cli", "deploy"], cwd=REPO, env=env,
                       check=True, capture_output=True, timeout=300)
        api = env["PREFECT_API_URL"]
        httpx.patch(f"{api}/work_pools/liftos-process", json={
            "concurrency_limit": args.workers * 2}).raise_for_status()
        worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1",
                      "PREFECT_WORKER_PREFETCH_SECONDS": "1"}
        for index in range(args.workers):
            with open(home / f"worker-{index}.log", "w") as out:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "prefect", "worker", "start", "--pool",
                     "liftos-process", "--limit", "2", "--name", f"load-{index}"], cwd=REPO,
                    env=worker_env, stdout=out, stderr=subprocess.STDOUT))
        deployment = httpx.get(f"{api}/deployments/name/monitor/monitor").json()["id"]
        started = time.monotonic()
        calls = asyncio.run(fire(api, deployment, args.runs, args.burst, args.pause))
        ids = [run_id for _, _, run_id in calls if run_id]
        states, run_counts = wait_all(api, ids, args.timeout)
        wall = time.monotonic() - started
        stored = count_runs(api, deployment)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        server.terminate()
        server.wait(timeout=60)
        if database == "postgres":
            from liftos_app.flows.server import drop_database

            drop_database(url)
    latencies = sorted(took * 1000 for took, _, _ in calls)
    return {"database": database, "runs": args.runs, "accepted": len(ids),
            "statuses": dict(Counter(status for _, status, _ in calls)),
            "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(0.95 * (len(latencies) - 1))], "max_ms": latencies[-1],
            "completed": states.get("COMPLETED", 0), "states": states,
            "lost": len(ids) - sum(states.values()) + states.get("PENDING", 0),
            "duplicated": sum(count > 1 for count in run_counts), "stored": stored,
            "wall_s": wall}


def wait_all(api: str, ids: list[str], timeout: float) -> tuple[dict[str, int], list[int]]:
    """Poll until every run is in a terminal state (or ``timeout``): state counts, run counts."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=api, timeout=60) as client:
        while True:
            runs = []
            for start in range(0, len(ids), 200):
                runs += client.post("/flow_runs/filter", json={
                    "flow_runs": {"id": {"any_": ids[start:start + 200]}},
                    "limit": 200}).json()
            states = Counter(run["state"]["type"] for run in runs)
            if sum(states[s] for s in TERMINAL) == len(ids) or time.monotonic() > deadline:
                return dict(states), [run["run_count"] for run in runs]
            time.sleep(2)


def count_runs(api: str, deployment: str) -> int:
    """Runs of the deployment this bench created (tag ``load-N``; the hourly schedule's own
    runs are not counted): more than were accepted would be duplicates."""
    found, offset = 0, 0
    with httpx.Client(base_url=api, timeout=60) as client:
        while page := client.post("/flow_runs/filter", json={
                "deployments": {"id": {"any_": [deployment]}}, "limit": 200,
                "offset": offset}).json():
            found += sum(any(t.startswith("load-") for t in run["tags"]) for run in page)
            offset += len(page)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between bursts")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, 2 runs each")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for runs")
    args = parser.parse_args()

    from bench_monitor import newest_week, portfolio

    work = Path(tempfile.mkdtemp(prefix="liftos-bench-load-"))
    results = []
    try:
        portfolio(work, args.tenants)
        shutil.copyfile(newest_week(work, 1.0), work / "data.csv")
        for repeat in range(args.repeats):
            for database in ("sqlite", "postgres")[::1 - 2 * (repeat % 2)]:
                result = measure(database, work, args, 18700 + len(results))
                results.append(result)
                print(json.dumps(result), flush=True)
                shutil.rmtree(work / database, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, args)
    return 0


def report(results: list[dict], args: argparse.Namespace) -> None:
    print(f"\n{args.runs} create_flow_run calls on `monitor` ({args.tenants} tenants), bursts "
          f"of {args.burst} every {args.pause:g} s, {args.workers} process workers")
    print(f"{'database':<10}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'accepted':>10}"
          f"{'completed':>10}{'stored':>8}{'lost':>6}{'dup':>5}{'wall s':>8}  statuses")
    for r in results:
        print(f"{r['database']:<10}{r['p50_ms']:>8.0f}{r['p95_ms']:>8.0f}{r['max_ms']:>8.0f}"
              f"{r['accepted']:>10}{r['completed']:>10}{r['stored']:>8}{r['lost']:>6}"
              f"{r['duplicated']:>5}{r['wall_s']:>8.0f}  {r['statuses']}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())

"""Orchestration overhead per stage and always-on monitoring latency.

    .venv/bin/python bench/bench_orchestration.py [--repeats 7] [--database sqlite|postgres]

Runs against a Prefect server (Prefect's local test server on SQLite, the embedded default, or
``liftos server start`` on PostgreSQL, the production topology, a database of its own dropped
afterwards) and a persistent in-process Dask cluster, with
the demo tenant and a small sampler (the fit's own time is subtracted, so its size does not
matter). Per run:

* library: the refresh stages called directly, no Prefect (the baseline): land, validate,
  features, fit, summarize and the memory write;
* flow: ``mmm_refresh`` running the same stages and nothing else (``run_validation=False``, so
  no validation refits on one side only; every stage recomputed with ``refresh=True``); inside
  it each library stage is timed, so overhead per stage = (flow wall - fixed flow cost -
  library time) / stages. The two sides alternate which goes first in each repeat;
* fixed flow cost: an empty flow with the same settings;
* per stage: each stage's task called inside a flow (cached stages forced to recompute, the fit
  submitted to Dask) against the same library call, alternating, medians;
* monitor: ``monitor`` flow end to end on a warm process, and the library check alone.

Prints a table and writes bench/results/orchestration-DATABASE.json.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
for _name, _prefix in (("PREFECT_HOME", "liftos-bench-prefect-"),
                      ("LIFTOS_HOME", "liftos-bench-home-")):
    if _name not in os.environ:  # a temporary home of our own, removed at exit
        os.environ[_name] = tempfile.mkdtemp(prefix=_prefix)
        atexit.register(shutil.rmtree, os.environ[_name], ignore_errors=True)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

STAGES = ("land_input", "validate_input", "build_features", "fit_model", "summarize_run",
          "remember")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--heartbeat", action="store_true",
                        help="keep Prefect's flow heartbeats on (adds ~1 s at each flow end)")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="the Prefect server's database (postgres: LIFTOS_TEST_POSTGRES_URL "
                             "or 127.0.0.1:5432)")
    args = parser.parse_args()

    from distributed import LocalCluster
    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from liftos import monitor as monitor_lib
    from liftos import refresh
    from liftos.home import DataHome
    from liftos.model.options import ModelOptions
    from liftos.tenancy import load_tenant
    from liftos_app.flows.monitor import monitor
    from liftos_app.flows.refresh import mmm_refresh

    options = ModelOptions(draws=100, tune=100, chains=2, seed=1)
    inner: dict[str, float] = {}
    from liftos.memory.remember import run_memories
    from liftos.memory.store import MemoryStore

    for name in STAGES[:-1]:  # time each library stage where the tasks call it
        setattr(refresh, name, _timed(getattr(refresh, name), name, inner))
    MemoryStore.remember = _timed(MemoryStore.remember, "remember", inner)

    def library_once() -> float:
        ref = refresh.tenant_ref(load_tenant("demo"), DataHome())
        started = time.perf_counter()
        landed = refresh.land_input(ref)
        features = refresh.build_features(refresh.validate_input(landed))
        summary = refresh.summarize_run(refresh.fit_model(features, options))
        MemoryStore().remember(run_memories(summary, "", ""))
        return time.perf_counter() - started

    def flow_once() -> tuple[float, float]:
        inner.clear()
        started = time.perf_counter()
        mmm_refresh(tenant="demo", options=options, dask_address=address, refresh=True,
                    run_validation=False)
        return time.perf_counter() - started, sum(inner.values())

    @flow(name="empty")
    def empty_flow(dask_address: str | None = None) -> None:
        return None

    updates = {} if args.heartbeat else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    rows = {"library_s": [], "flow_s": [], "flow_library_s": [], "empty_flow_s": [],
            "monitor_flow_s": [], "monitor_library_s": []}
    with prefect_server(args.database), temporary_settings(updates=updates), \
            LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                         dashboard_address=None, silence_logs=40) as cluster:
        address = cluster.scheduler_address
        # warm (compile, imports) and make a champion for the monitor: only a validated,
        # gated model becomes one
        from liftos.validation.runner import ValidationOptions

        mmm_refresh(tenant="demo", options=options, dask_address=address, trust_threshold=0.0,
                    validation=ValidationOptions(draws=100, tune=100, refutations=False))
        library_once()
        monitor(tenants=["demo"])
        for k in range(args.repeats):
            if k % 2:
                rows["library_s"].append(library_once())
            flow_s, flow_library_s = flow_once()
            rows["flow_s"].append(flow_s)
            rows["flow_library_s"].append(flow_library_s)
            if not k % 2:
                rows["library_s"].append(library_once())
            started = time.perf_counter()
            empty_flow(dask_address=address)
            rows["empty_flow_s"].append(time.perf_counter() - started)
            started = time.perf_counter()
            monitor(tenants=["demo"])
            rows["monitor_flow_s"].append(time.perf_counter() - started)
            started = time.perf_counter()
            monitor_lib.check_tenant("demo")
            rows["monitor_library_s"].append(time.perf_counter() - started)
        stage_rows = per_stage(address, args.repeats)
    report(rows, stage_rows, args)
    return 0


@contextlib.contextmanager
def prefect_server(database: str):
    """A Prefect server for the bench, its API URL set in this process's settings."""
    from prefect.testing.utilities import prefect_test_harness

    if database == "sqlite":
        with prefect_test_harness(server_startup_timeout=60):
            yield
        return
    sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests")]
    from bench_load import start_server
    from support import prefect_api_at

    from liftos_app.flows.server import drop_database

    port, home = 18650, Path(os.environ["PREFECT_HOME"])
    api = f"http://127.0.0.1:{port}/api"
    server, url = start_server("postgres", {**os.environ, "PREFECT_API_URL": api,
                                            "PREFECT_UI_ENABLED": "false"}, port,
                               home / "server.log")
    try:
        with prefect_api_at(api):
            yield
    finally:
        server.terminate()
        server.wait(timeout=60)
        drop_database(url)


def per_stage(address: str, repeats: int) -> dict[str, dict[str, float]]:
    """Each stage as a task inside a flow vs the same library call (same inputs), and a task
    that does nothing: what any Prefect task costs here."""
    from prefect import flow, task

    from liftos import refresh
    from liftos.home import DataHome
    from liftos.model.options import ModelOptions
    from liftos.tenancy import load_tenant
    from liftos_app.flows.dask_runner import LiftOSDaskTaskRunner
    from liftos_app.flows.refresh import _opaque
    from liftos_app.tasks import observability, stages

    options = ModelOptions(draws=50, tune=50, chains=2, seed=2)

    tenant = load_tenant("demo")

    def land_library():  # the task is given the tenant resolved once per run, as in the flow
        return refresh.land_input(refresh.tenant_ref(tenant, DataHome()))

    landed = land_library()
    validated = refresh.validate_input(landed)
    features = refresh.build_features(validated)
    fitted = refresh.fit_model(features, options)

    @task(name="empty", **stages.UNCACHED)
    def empty_task(value):
        return value

    pairs = {
        "land-input": (lambda: stages.land_input(*_opaque((tenant,))), land_library),
        "validate-input": (
            lambda: stages.validate_input(*_opaque((landed,))),
            lambda: refresh.validate_input(landed)),
        "build-features": (
            lambda: stages.build_features(
                *_opaque((validated,))),
            lambda: refresh.build_features(validated)),
        "fit-model (on Dask)": (
            lambda: stages.refreshing(stages.fit_model).submit(
                features, options).result(),
            lambda: refresh.fit_model(features, options)),
        "summarize-run": (lambda: stages.summarize_run(*_opaque((fitted, False))),
                          lambda: refresh.summarize_run(fitted, promote=False)),
        "empty task (Prefect's own floor)": (lambda: empty_task(*_opaque((tenant,))),
                                             lambda: tenant),
    }

    @flow(name="per-stage-overhead", task_runner=LiftOSDaskTaskRunner())
    def measure(dask_address: str) -> dict[str, dict[str, float]]:
        out = {}
        for name, (as_task, as_library) in pairs.items():
            as_task()  # warm
            task_s, library_s = [], []
            for _ in range(repeats):
                with observability.deferred():  # as in mmm-refresh; draining is not timed
                    task_s.append(_wall(as_task))
                library_s.append(_wall(as_library))
            out[name] = {"task_s": statistics.median(task_s),
                         "library_s": statistics.median(library_s)}
        out[BACK_TO_BACK] = back_to_back(lambda: empty_task(*_opaque((tenant,))))
        return out

    return measure(dask_address=address)


BACK_TO_BACK = "empty tasks back to back"


def back_to_back(call, count: int = 200) -> dict[str, float]:
    """What a task costs the flow's process in all: ``count`` empty tasks in a row, wall and
    CPU per task over every thread (Prefect's event and API threads included), the CPU of the
    events still being sent when the loop ends counted too (the idle process's CPU over the
    same drain is subtracted). The per-stage rows time only the calling thread, so work these
    threads do after a stage returns is not in them."""
    time.sleep(2.0)
    idle_started = time.process_time()
    time.sleep(2.0)
    idle = time.process_time() - idle_started
    cpu_started, started = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    wall = time.perf_counter() - started
    time.sleep(2.0)
    cpu = time.process_time() - cpu_started - idle
    return {"wall_s": wall / count, "cpu_s": cpu / count, "count": count}


def _wall(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _timed(fn, name: str, sink: dict[str, float]):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sink[name] = sink.get(name, 0.0) + time.perf_counter() - started
    return wrapper


def report(rows: dict[str, list[float]], stage_rows: dict[str, dict[str, float]], args) -> None:
    med = {k: statistics.median(v) for k, v in rows.items()}
    per_stage = [(f - e - lib) / len(STAGES) for f, e, lib in
                 zip(rows["flow_s"], rows["empty_flow_s"], rows["flow_library_s"])]
    monitor_sorted = sorted(rows["monitor_flow_s"])
    p95 = monitor_sorted[min(len(monitor_sorted) - 1, int(0.95 * len(monitor_sorted)))]
    table = [
        ("refresh stages as library calls (baseline)", f"{med['library_s']:.3f} s", ""),
        ("mmm_refresh flow, all stages recomputed", f"{med['flow_s']:.3f} s",
         f"{med['flow_s'] / med['library_s']:.2f}x baseline"),
        ("  of which library work inside the tasks", f"{med['flow_library_s']:.3f} s", ""),
        ("empty flow (fixed cost per flow run)", f"{med['empty_flow_s']:.3f} s", ""),
        ("orchestration overhead per stage, flow average",
         f"{1000 * statistics.median(per_stage):.1f} ms", "target < 6 ms"),
        ("monitor flow, warm, p50", f"{med['monitor_flow_s']:.3f} s", "target < 2 s"),
        ("monitor flow, warm, p95", f"{p95:.3f} s", ""),
        ("monitor check as a library call, p50", f"{med['monitor_library_s']:.3f} s",
         f"flow = {med['monitor_flow_s'] / med['monitor_library_s']:.1f}x"),
    ]
    together = stage_rows.pop(BACK_TO_BACK)
    table.append((f"{BACK_TO_BACK}: wall per task", f"{1000 * together['wall_s']:.1f} ms",
                  f"{together['count']} tasks"))
    table.append((f"{BACK_TO_BACK}: CPU per task, all threads", f"{1000 * together['cpu_s']:.1f} ms",
                  "what each task costs the flow's process in all"))
    for name, row in stage_rows.items():
        overhead = 1000 * (row["task_s"] - row["library_s"])
        table.append((f"stage {name}: task - library", f"{overhead:.1f} ms",
                      f"library {1000 * row['library_s']:.1f} ms"))
    width = max(len(r[0]) for r in table)
    print(f"\nOrchestration ({args.repeats} repeats, medians; the same {len(STAGES)} stages on "
          "both sides, order alternated, both warm; heartbeats "
          f"{'on' if args.heartbeat else 'off'}; Prefect server on {args.database}, "
          "in-process Dask cluster)")
    print(f"{'measure':<{width}}  {'value':>10}  note")
    for name, value, note in table:
        print(f"{name:<{width}}  {value:>10}  {note}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"orchestration-{args.database}.json").write_text(json.dumps(
        {"rows": rows, "per_stage_overhead_s": per_stage, "stages": stage_rows,
         "back_to_back": together,
         "heartbeat": args.heartbeat, "database": args.database},
        indent=2))


if __name__ == "__main__":
    sys.exit(main())

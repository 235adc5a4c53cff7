"""Scale-out on one machine (issue 14): a standing Dask cluster against today's fresh process.

    .venv/bin/python bench/bench_scale.py [--tenants 20] [--repeats 2]
        [--parts refresh load monitor memory stages] [--memory-store DIR]

One table for the scale-out (issue 14). ``refresh`` is measured here (below); the other parts
run their own bench in a process of its own, one after another, and their figures join the table:
``load`` (bench_load.py: 200 flow-run creations in bursts, PostgreSQL and SQLite servers),
``monitor`` (bench_monitor.py: one run over 100 tenants), ``memory`` (bench_memory.py: 1M
memories over 100 tenants, embedded and on a Chroma server; the fill takes ~13 min, and
``--memory-store`` keeps it for later runs) and ``stages`` (bench_orchestration.py on a
PostgreSQL-backed server: per-stage Prefect overhead).

Every run is a process of its own, as a Prefect worker starts one per flow run, against one
Prefect server (SQLite) started here, sampler 2 x 300/300, no validation refits (the fit is
what is compared). Two sides, same runs, same data, order alternated per repeat:

* fresh: no scheduler configured, so each run starts its own LocalCluster
  (``deployments/dask-cluster.yaml``) and compiles every model it fits;
* standing: ``liftos cluster up --workers 2 --threads 1`` (new for each repeat), every run
  pointed at it; the workers keep compiled models between runs.

Measured: a tenant's weekly refresh (week N-1, then week N: the second run is the one
reported), and a 20-tenant portfolio of mixed shapes (3 templates, 3-5 channels, 1-2 geos,
104-156 weeks) refreshed for week N-1 then week N. Prints a table and writes
bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = ("ecommerce", "education", "healthcare")


def make_tenants(folder: Path, data: Path, count: int) -> dict[str, tuple[Path, Path]]:
    """Simulated tenants of mixed shapes; each one's data file holds all weeks but the last,
    and ``advance`` swaps in the full file (next week's data arriving)."""
    from liftos.config import load_template
    from liftos.simulate import simulate

    tenants = {}
    for index in range(count):
        name = f"t{index:02d}"
        template = load_template(TEMPLATES[index % 3])
        channels = list(template.channels)[: 3 + index % 3]
        geos = 1 + (index // 3) % 2
        frame = simulate(template, weeks=(104, 130, 156)[index % 3], seed=index + 1, geos=geos,
                         channels=channels).frame
        target = frame.columns[2 if geos > 1 else 1]
        full, current = data / f"{name}-full.csv", data / f"{name}.csv"
        frame.write_csv(full)
        frame.filter(frame["date"] < frame["date"].max()).write_csv(current)
        spec = {"tenant": name, "template": TEMPLATES[index % 3], "timezone": "UTC",
                "data": {"path": str(current), "date_column": "date", "target": target,
                         "channels": channels, "controls": list(template.controls),
                         **({"geo_column": "geo"} if geos > 1 else {})}}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec))
        tenants[name] = (full, current)
    return tenants


def rewind(tenants: dict[str, tuple[Path, Path]]) -> None:
    import polars as pl

    for full, current in tenants.values():
        frame = pl.read_csv(full, try_parse_dates=True)
        frame.filter(frame["date"] < frame["date"].max()).write_csv(current)


def advance(tenants: dict[str, tuple[Path, Path]]) -> None:
    for full, current in tenants.values():
        shutil.copyfile(full, current)


def run(names: list[str], env: dict[str, str], address: str | None) -> dict:
    command = [sys.executable, str(REPO / "bench" / "_scale_run.py"), "--tenants",
               ",".join(names)] + (["--dask-address", address] if address else [])
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"run of {names} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def weekly_pair(names: list[str], tenants: dict, env: dict, address: str | None) -> dict:
    """Week N-1 then week N for ``names``; week N's run is returned."""
    subset = {name: tenants[name] for name in names}
    rewind(subset)
    run(names, env, address)
    advance(subset)
    return run(names, env, address)


def cluster(action: str, env: dict, port: int) -> None:
    args = ["up", "--workers", "2", "--threads", "1", "--port", str(port), "--dashboard-port",
            str(port + 1), "--no-register"] if action == "up" else ["down"]
    subprocess.run([sys.executable, "-m", "liftos_app.cli", "cluster", *args], env=env,
                   check=True, capture_output=True)


def prefect_server(env: dict, port: int, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:  # the child keeps its own copy of the file
        server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server",
                                   "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the Prefect server did not start; see {log}")


def fit_row(result: dict) -> dict:
    fits = list(result["fits"].values())
    return {"process_s": result["process_s"], "flow_s": result["wall_s"],
            "compile_s": sum(f["compile_s"] for f in fits),
            "sampling_s": sum(f["sampling_s"] for f in fits),
            "compiled": sum(not f["compile_cache_hit"] for f in fits), "fits": len(fits)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--memory-store", type=Path, default=None,
                        help="bench_memory's --portfolio-store: the filled 1M store, kept")
    args = parser.parse_args()
    table = refresh_rows(args) if "refresh" in args.parts else []
    for part in (p for p in args.parts if p != "refresh"):
        table += other_part(part, args)
    print_table(table)
    return 0


def refresh_rows(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """A tenant's weekly refresh and the portfolio's, standing cluster against fresh process."""
    work = Path(tempfile.mkdtemp(prefix="liftos-bench-scale-"))
    folder, data = work / "tenants", work / "data"
    folder.mkdir()
    data.mkdir()
    tenants = make_tenants(folder, data, args.tenants)
    port = 18600
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "LIFTOS_HOME": str(work / "home"),
           "LIFTOS_TENANTS_DIR": str(folder), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("LIFTOS_DASK_ADDRESS", None)
    server = prefect_server(env, port, work / "prefect.log")
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    rows: dict[str, dict[str, list[dict]]] = {"one tenant, week N": {}, "portfolio, week N": {}}
    try:
        for repeat in range(args.repeats):
            sides = ["fresh", "standing"] if repeat % 2 == 0 else ["standing", "fresh"]
            for side in sides:
                address = None
                if side == "standing":
                    cluster("up", env, port + 10)
                    address = f"tcp://127.0.0.1:{port + 10}"
                try:  # a data home and result store per measurement: no stage cached from another
                    one, many = (weekly_pair(names, tenants, {
                        **env, "LIFTOS_HOME": str(work / f"home-{repeat}-{side}-{label}"),
                        "PREFECT_LOCAL_STORAGE_PATH": str(work / f"results-{repeat}-{side}-{label}")},
                        address) for label, names in (("one", ["t00"]), ("many", sorted(tenants))))
                finally:
                    if address:
                        cluster("down", env, port + 10)
                rows["one tenant, week N"].setdefault(side, []).append(fit_row(one))
                rows["portfolio, week N"].setdefault(side, []).append(fit_row(many))
                print(f"repeat {repeat + 1} {side}: one {fit_row(one)}, portfolio "
                      f"{fit_row(many)}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(rows, indent=2))
    return report(rows, args)


def report(rows: dict, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    def median(side: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in side)

    table = []
    for name, sides in rows.items():
        for side, results in sides.items():
            compile_s, sampling_s = median(results, "compile_s"), median(results, "sampling_s")
            note = (f"flow {median(results, 'flow_s'):.1f} s; compile {compile_s:.1f} s, "
                    f"sampling {sampling_s:.1f} s, fit/sampling "
                    f"{(compile_s + sampling_s) / sampling_s:.2f}x (target <= 1.3x standing); "
                    f"compiled {median(results, 'compiled'):.0f}/{results[0]['fits']}")
            table.append((f"{name}, {side} (2 x 300/300, {args.repeats} repeats)",
                          f"{median(results, 'process_s'):.1f} s", note))
        fresh, standing = (median(sides[s], "process_s") for s in ("fresh", "standing"))
        table.append((f"{name}: standing / fresh wall", f"{standing / fresh:.2f}x", ""))
    return table


PARTS = ("refresh", "load", "monitor", "memory", "stages")


def other_part(part: str, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Run the part's own bench (its output passes through) and read its results file."""
    script, extra, result = {
        "load": ("bench_load.py", [], "load.json"),
        "monitor": ("bench_monitor.py", ["--tenants", "100"], "monitor.json"),
        "memory": ("bench_memory.py", ["--skip-small", "--queries", "300", *(
            ["--portfolio-store", str(args.memory_store)] if args.memory_store else [])],
                   "memory.json"),
        "stages": ("bench_orchestration.py", ["--database", "postgres"],
                   "orchestration-postgres.json"),
    }[part]
    subprocess.run([sys.executable, str(REPO / "bench" / script), *extra], cwd=REPO, check=True)
    found = json.loads((REPO / "bench" / "results" / result).read_text())
    return globals()[f"{part}_rows"](found)


def load_rows(results: list[dict]) -> list[tuple[str, str, str]]:
    table = []
    for r in results:
        note = (f"{r['accepted']}/{r['runs']} accepted, {r['completed']} completed, "
                f"{r['lost']} lost, {r['duplicated']} duplicated; HTTP {r['statuses']}")
        table.append((f"flow-run API under load, {r['database']}: create p50 / p95",
                      f"{r['p50_ms']:.0f} / {r['p95_ms']:.0f} ms", note))
    return table


def monitor_rows(found: dict) -> list[tuple[str, str, str]]:
    runs = found["runs_s"]["normal"]
    return [(f"monitor, {found['tenants']} tenants, a normal week: median wall",
             f"{statistics.median(runs):.2f} s", f"first run {runs[0]:.2f} s; target < 2 s")]


def memory_rows(rows: list[list[str]]) -> list[tuple[str, str, str]]:
    return [(f"memory: {name}", value, note) for name, value, note in rows
            if "tenants" in name and "query incl. embedding" in name]


def stages_rows(found: dict) -> list[tuple[str, str, str]]:
    table = []
    for name, row in found["stages"].items():
        note = f"task - library, medians; library {1000 * row['library_s']:.1f} ms; target < 6 ms"
        table.append((f"Prefect overhead per stage, PostgreSQL server: {name}",
                      f"{1000 * (row['task_s'] - row['library_s']):.1f} ms", note))
    if together := found.get("back_to_back"):
        table.append(("Prefect, empty tasks back to back: CPU per task, all threads",
                      f"{1000 * together['cpu_s']:.1f} ms",
                      f"wall {1000 * together['wall_s']:.1f} ms per task"))
    return table


def print_table(table: list[tuple[str, str, str]]) -> None:
    width = max(len(row[0]) for row in table)
    print("\nScale-out on this machine (each part measured in this run)")
    print(f"{'measure':<{width}}  {'value':>12}  note")
    for name, value, note in table:
        print(f"{name:<{width}}  {value:>12}  {note}")


if __name__ == "__main__":
    sys.exit(main())

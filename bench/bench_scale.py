"""Scale-out on one machine (issue 14): a standing Dask cluster against today's fresh process.

    .venv/bin/python bench/bench_scale.py [--tenants 20] [--repeats 2]

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
    args = parser.parse_args()
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
    report(rows, args)
    return 0


def report(rows: dict, args: argparse.Namespace) -> None:
    def median(side: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in side)

    print(f"\nScale-out on this machine (2 x 300/300, no validation, {args.repeats} repeats, "
          "medians; 'fresh' = today's process with its own LocalCluster)")
    print(f"{'run':<22}{'side':<10}{'process s':>10}{'flow s':>8}{'compile s':>10}"
          f"{'sampling s':>11}{'compiled':>10}{'fit/sampling':>13}")
    for name, sides in rows.items():
        for side, results in sides.items():
            compile_s, sampling_s = median(results, "compile_s"), median(results, "sampling_s")
            print(f"{name:<22}{side:<10}{median(results, 'process_s'):>10.1f}"
                  f"{median(results, 'flow_s'):>8.1f}{compile_s:>10.1f}{sampling_s:>11.1f}"
                  f"{median(results, 'compiled'):>6.0f}/{results[0]['fits']:<3}"
                  f"{(compile_s + sampling_s) / sampling_s:>13.2f}")
        fresh, standing = (median(sides[s], "process_s") for s in ("fresh", "standing"))
        print(f"{'':<22}standing / fresh wall: {standing / fresh:.2f}x")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    sys.exit(main())

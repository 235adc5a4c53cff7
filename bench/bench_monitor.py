"""Always-on monitoring at portfolio scale (issue 14): one ``monitor`` run over many tenants.

    .venv/bin/python bench/bench_monitor.py [--tenants 100] [--repeats 3]

One real fit (the demo data, 2 x 500/500) becomes the champion of every tenant (each its own
copy under its own folder, so every check loads its own model), each tenant's data the demo
file. A Prefect test server (SQLite) runs the flow; the process is warm (imports done, one
monitor run before timing), as in a Prefect worker that has served a run. Reported: the flow's
wall time on a normal newest week (few or no anomalies) and on one where every tenant's KPI
tripled (every tenant flagged, its anomaly remembered), alternating; the first run loads every
champion; and the library check alone for one tenant. Writes bench/results/monitor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="liftos-bench-prefect-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def newest_week(work: Path, revenue_factor: float) -> Path:
    """The demo data plus a next week like the last (revenue scaled: 1 is a normal week, 3 an
    anomaly in every tenant)."""
    import polars as pl

    frame = pl.read_csv(REPO / "tenants" / "data" / "ecommerce_demo.csv", try_parse_dates=True)
    week = frame.tail(1).with_columns(pl.col("date") + pl.duration(days=7),
                                      pl.col("revenue") * revenue_factor)
    path = work / f"data-{revenue_factor:g}.csv"
    pl.concat([frame, week]).write_csv(path)
    return path


def portfolio(work: Path, count: int) -> list[str]:
    import yaml

    from liftos.config import load_template
    from liftos.data import ColumnSpec, load_panel
    from liftos.home import DataHome
    from liftos.model.mmm import fit
    from liftos.model.options import FitOptions
    from liftos.model.spec import ModelSpec

    data = REPO / "tenants" / "data" / "ecommerce_demo.csv"
    channels, controls = ("search", "social", "display", "email", "tv"), ("price_index", "promo")
    panel = load_panel(data, ColumnSpec("date", "revenue", channels, controls))
    spec = ModelSpec(load_template("ecommerce"), channels, controls, "revenue")
    result = fit(panel, spec, FitOptions(draws=500, tune=500, chains=2, seed=1, progress=False))
    home, folder = DataHome(work / "home"), work / "tenants"
    folder.mkdir(parents=True)
    names = [f"m{index:03d}" for index in range(count)]
    for name in names:
        fit_dir = home.folder(name, "fits") / "champion"
        result.save(fit_dir) if name == names[0] else shutil.copytree(
            home.folder(names[0], "fits") / "champion", fit_dir, dirs_exist_ok=True)
        home.set_champion(name, {"fit_dir": str(fit_dir), "run_id": "bench"})
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({
            "tenant": name, "template": "ecommerce", "timezone": "UTC",
            "data": {"path": str(work / "data.csv"), "date_column": "date", "target": "revenue",
                     "channels": list(channels), "controls": list(controls)}}))
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="liftos-bench-monitor-"))
    os.environ["LIFTOS_HOME"], os.environ["LIFTOS_TENANTS_DIR"] = (str(work / "home"),
                                                                  str(work / "tenants"))
    try:
        names = portfolio(work, args.tenants)
        from prefect.testing.utilities import prefect_test_harness

        from liftos.monitor import check_tenant
        from liftos_app.flows.monitor import monitor

        normal, spike = newest_week(work, 1.0), newest_week(work, 3.0)
        timings: dict[str, list[float]] = {"normal": [], "anomalous": []}
        anomalies: dict[str, int] = {}
        with prefect_test_harness(server_startup_timeout=60):
            shutil.copyfile(normal, work / "data.csv")
            monitor(tenants=names[:1])  # imports and the API client warm; one model loaded
            for repeat in range(args.repeats):
                for week, data in (("normal", normal), ("anomalous", spike))[::1 - 2 * (
                        repeat % 2)]:
                    shutil.copyfile(data, work / "data.csv")
                    started = time.perf_counter()
                    checks = monitor()
                    timings[week].append(time.perf_counter() - started)
                    assert len(checks) == len(names), len(checks)
                    anomalies[week] = sum(bool(check.anomalies) for check in checks)
        started = time.perf_counter()
        for _ in range(20):
            check_tenant(names[0])
        library_ms = (time.perf_counter() - started) / 20 * 1000
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmonitor over {args.tenants} tenants (target < 2 s wall), {args.repeats} repeats")
    print(f"{'newest week':<34}{'first run':>10}{'median':>8}{'tenants flagged':>17}")
    for week, runs in timings.items():
        print(f"{week:<34}{runs[0]:>9.2f}s{statistics.median(runs):>7.2f}s"
              f"{anomalies[week]:>17}")
    print(f"{'library check, one tenant (warm)':<34}{library_ms:>9.1f} ms")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "monitor.json").write_text(json.dumps({"tenants": args.tenants, "runs_s": timings,
                                                  "flagged": anomalies,
                                                  "library_ms": library_ms}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

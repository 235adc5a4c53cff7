"""The API under load and the hub's first paint (issue 16's targets: read routes p95 < 200 ms
at 50 concurrent clients on a tenant with a year of weekly runs).

    .venv/bin/python bench/bench_api.py [--users 50] [--seconds 30]

A tenant 'bench' gets a real fit (simulated ecommerce data, 5 channels x 104 weeks, 2 x 200
draws) as its champion, then a year of history: 52 weekly runs, 52 monitor checks, 52 budget
proposals with their decisions in the hash-chained audit, 52 memories. `liftos api serve` runs
as its own process; Locust (headless, no think time) drives it with ``--users`` clients, each
reading every read route in turn. Where Chromium is installed, the hub's first paint is timed in
it: the sign-in page, then the Overview after signing in (median of 5 fresh pages).
Writes bench/results/api.json.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from bench_brief import _fit_folder

CHROMIUM = Path("/usr/bin/chromium")


def year_of_history(home, fit_dir: Path) -> None:
    """A champion and 52 weeks of runs, checks, plans, decisions and memories."""
    from liftos.home import write_json
    from liftos.memory.store import Memory, MemoryStore
    from liftos.model.results import FitResult
    from liftos.planning.audit import DecisionLog
    from liftos.report import write_report

    write_report(FitResult.load(fit_dir), fit_dir)
    checks = [{"name": f"check {k}", "group": g, "value": 1.0, "threshold": "<= 1",
               "passed": k % 7 != 0, "score": 1.0, "detail": ""}
              for k, g in enumerate(["convergence", "fit", "causal", "recovery"] * 6)]
    write_json(fit_dir / "validation.json", {
        "fit_dir": str(fit_dir), "checks": checks, "trust": {
            "score": 84.0, "components": {"convergence": 90.0, "fit": 80.0},
            "weights": {"convergence": 30.0, "fit": 25.0}}})
    log, memories = DecisionLog("bench", home), []
    first = date(2025, 12, 29)
    for week in range(52):
        day = first + timedelta(weeks=week)
        home.append_run("bench", {"run_id": f"00000000-0000-0000-0000-{week:012d}",
                                  "fit_dir": str(fit_dir), "trust_score": 84.0,
                                  "last_week": str(day), "promoted": week % 4 == 0,
                                  "decision": [], "at": f"{day}T06:00:00+00:00"})
        write_json(home.folder("bench", "monitor") / f"{day}.json", {
            "tenant": "bench", "week": str(day), "in_sample": False, "kpi_actual": 1e6,
            "kpi_expected": 1e6, "kpi_low": 9e5, "kpi_high": 1.1e6, "outside_interval": False,
            "moves": [], "anomalies": [], "fit_dir": str(fit_dir), "data_path": "x.csv"})
        proposal = log.append("proposal", {"objective": "expected", "lift_mean": 1e4 + week,
                                           "lift_low": 5e3, "lift_high": 2e4, "channels": []})
        log.append("decision", {"proposal_seq": proposal.seq, "verdict": "approved",
                                "by": "ana", "comment": "", "weekly": {}})
        memories.append(Memory(tenant="bench", kind="insight", run_id=f"run-{week}",
                               text=f"week of {day}: tv moved by {week % 9}% after a price change",
                               date_end=day))
    home.set_champion("bench", {"fit_dir": str(fit_dir), "trust_score": 84.0,
                                "run_id": "00000000-0000-0000-0000-000000000051"})
    MemoryStore(home.root / "memory").remember(memories)


def load(url: str, token: str, users: int, seconds: int, out: Path) -> list[dict]:
    env = {**os.environ, "LIFTOS_BENCH_TOKEN": token, "LIFTOS_BENCH_TENANT": "bench"}
    subprocess.run([sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "_locust_api.py"),
                    "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
                    "--host", url, "--csv", str(out / "locust"), "--only-summary"],
                   env=env, check=False, capture_output=True)  # exit 1 when any failed
    with open(out / "locust_stats.csv") as stats:
        return list(csv.DictReader(stats))


def first_paint(url: str, token: str, repeats: int = 5) -> dict[str, float] | None:
    if not CHROMIUM.exists():
        return None
    from playwright.sync_api import sync_playwright

    sign_in, overview = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for _ in range(repeats):
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(url)
            page.get_by_label("API token", exact=True).wait_for()
            sign_in.append(1000 * (time.perf_counter() - started))
            page.get_by_label("API token", exact=True).fill(token)
            started = time.perf_counter()
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Plans waiting for you").wait_for(timeout=60_000)
            overview.append(1000 * (time.perf_counter() - started))
            page.close()
        browser.close()
    return {"sign-in page": statistics.median(sign_in),
            "overview after sign-in": statistics.median(overview)}


def wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="API server processes")
    args = parser.parse_args()
    if importlib.util.find_spec("locust") is None:
        raise SystemExit("Locust is not installed: make .venv/.installed-bench (the bench extra)")
    from liftos.access import TokenStore
    from liftos.home import DataHome

    work = Path(tempfile.mkdtemp(prefix="liftos-bench-api-"))
    home = DataHome(work / "home")
    year_of_history(home, _fit_folder())
    _, token = TokenStore(home).create("bench", ["bench"], ["read"])
    env = {**os.environ, "LIFTOS_HOME": str(home.root), "LIFTOS_API_RATE_PER_MINUTE": "1e9",
           "LIFTOS_API_BURST": "1000000000"}
    api_url, page_url = "http://127.0.0.1:18765", "http://127.0.0.1:18501"
    api = subprocess.Popen([sys.executable, "-m", "liftos_app.cli", "api", "serve", "--port",
                            "18765", "--workers", str(args.workers)], env=env,
                           stdout=subprocess.DEVNULL)
    page = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "hub" / "page.py"),
         "--server.port", "18501", "--server.headless", "true", "--server.fileWatcherType",
         "none", "--browser.gatherUsageStats", "false"],
        env={**env, "LIFTOS_API_URL": api_url}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait_for(f"{api_url}/v1/health", api)
        wait_for(f"{page_url}/_stcore/health", page)
        for route in ("", "/model", "/contributions", "/curves", "/trust", "/plans"):
            httpx.get(f"{api_url}/v1/tenants/bench{route}", timeout=60,
                      headers={"Authorization": f"Bearer {token}"}).raise_for_status()  # warm
        rows = load(api_url, token, args.users, args.seconds, work)
        paint = first_paint(page_url, token)
    finally:
        for process in (page, api):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nAPI read routes under load: {args.users} clients, {args.seconds} s, no think time "
          "(target p95 < 200 ms)")
    print(f"{'route':<22}{'requests':>10}{'failures':>10}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>8}")
    for row in rows:
        print(f"{row['Name']:<22}{row['Request Count']:>10}{row['Failure Count']:>10}"
              f"{row['50%']:>9}{row['95%']:>9}{float(row['Requests/s']):>8.1f}")
    if paint:
        print("\nHub first paint in Chromium (median of 5 fresh pages)")
        for name, ms in paint.items():
            print(f"{name:<26}{ms:>8.0f} ms")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "api.json").write_text(json.dumps({"users": args.users, "seconds": args.seconds,
                                              "routes": rows, "first_paint_ms": paint}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

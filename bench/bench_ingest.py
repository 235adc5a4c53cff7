"""Ingestion throughput from the fakes, and Great Expectations validation time.

Google Ads: 2 years x 200 campaigns (2 accounts x 100) = 146,200 daily rows, served by
``python -m liftos.fakes`` in its own process (gRPC + TLS, 10,000 rows per streamed message).
Baseline: the same SearchStream requests through the same SDK client, only iterating the
messages (no landing, parsing, checks or upserts) -- what the wire and the SDK cost. Fair: both
sides are warmed once (server caches, TLS, imports, GX), then run ``--repeats`` times each in
alternating order (sync first on odd repeats), each sync into a fresh data home; medians.

Run: ``.venv/bin/python bench/bench_ingest.py`` (part of ``make bench``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"fake on port {port} did not start")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="liftos-bench-ingest-"))
    ads_port, oauth_port, klaviyo_port = free_port(), free_port(), free_port()
    fakes = subprocess.Popen([sys.executable, "-m", "liftos.fakes", "--campaigns", "100",
                              "--ads-port", str(ads_port), "--oauth-port", str(oauth_port),
                              "--klaviyo-port", str(klaviyo_port), "--cert-dir", str(work)],
                             cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        for port in (ads_port, oauth_port, klaviyo_port):
            wait_port(port)
        from liftos.fakes.tls import trust_bundle

        os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(
            trust_bundle(work / "fake-ca.pem", work))
        rows = run(ads_port, oauth_port, work)
    finally:
        fakes.terminate()
    print_table(rows)


def run(ads_port: int, oauth_port: int, work: Path, repeats: int = 3) -> list[tuple[str, str]]:
    import polars as pl

    from liftos.config import load_template
    from liftos.home import DataHome
    from liftos.ingest import google_ads
    from liftos.ingest.curate import curated_path
    from liftos.ingest.quality import Checker
    from liftos_app.blocks.credentials import GoogleAdsCredentials

    credentials = GoogleAdsCredentials(
        developer_token="fake-developer-token", client_id="fake-client",
        client_secret="fake-client-secret", refresh_token="fake-refresh",
        endpoint=f"localhost:{ads_port}", token_uri=f"http://127.0.0.1:{oauth_port}/token")
    since, until = dt.date(2024, 1, 1), dt.date(2025, 12, 31)
    settings = google_ads.GoogleAdsSettings(customer_id="111-222-3334", chunk_days=92)
    template = load_template("ecommerce")

    def sync(k: int):
        home = DataHome(work / f"home-{k}")
        started = time.perf_counter()
        result = google_ads.sync(credentials, "bench", template, settings, since=since,
                                 until=until, home=home)
        return time.perf_counter() - started, result, home

    Checker()  # import Great Expectations outside the timed regions (6-8 s, once per process)
    wire_only(credentials, since, until, settings.chunk_days)  # warm both sides once
    sync(0)
    baselines, fulls = [], []
    for k in range(1, repeats + 1):
        order = ("sync", "wire") if k % 2 else ("wire", "sync")
        for side in order:
            if side == "wire":
                baselines.append(wire_only(credentials, since, until, settings.chunk_days))
            else:
                full_s, result, home = sync(k)
                fulls.append(full_s)
    baseline, full = sorted(baselines)[len(baselines) // 2], sorted(fulls)[len(fulls) // 2]
    table = pl.read_parquet(curated_path(home, "bench", "media_daily"))
    assert table.height == result.counts.inserted == 146_200, table.height
    gx_seconds = sum(r["seconds"] for r in result.quality)

    checker = Checker()
    sample = table.head(100_000)
    timings = []
    for _ in range(3):
        t = time.perf_counter()
        checker.check_media(sample, None, since, until)
        timings.append(time.perf_counter() - t)
    gx_100k = sorted(timings)[1]
    return [
        ("rows (2 accounts x 100 campaigns x 731 days)", f"{table.height:,}"),
        (f"(both sides warm, {repeats} runs each, alternating order, medians)", ""),
        ("baseline: SDK stream only, rows/s", f"{table.height / baseline:,.0f} ({baseline:.2f} s)"),
        ("LiftOS sync (land + parse + GX + upsert + bookmarks), rows/s",
         f"{table.height / full:,.0f} ({full:.2f} s)"),
        ("sync time / baseline", f"{full / baseline:.2f}x"),
        ("raw pages landed", f"{result.counts.landed}"),
        ("of which Great Expectations, s", f"{gx_seconds:.2f} ({100 * gx_seconds / full:.0f}%)"),
        ("GX media suite on 100k rows (median of 3), s", f"{gx_100k:.2f}"),
    ]


def wire_only(credentials, since: dt.date, until: dt.date, chunk_days: int) -> float:
    from liftos.ingest.google_ads import API_VERSION, CAMPAIGN_QUERY
    from liftos.ingest.state import chunks

    client = credentials.client(login_customer_id="1112223334")
    service = client.get_service("GoogleAdsService", version=API_VERSION)
    started = time.perf_counter()
    rows = 0
    for customer in ("1234567890", "9876543210"):
        for first, last in chunks(since, until, chunk_days):
            query = CAMPAIGN_QUERY.format(first=first, last=last)
            for message in service.search_stream(customer_id=customer, query=query):
                rows += len(message.results)
    assert rows == 146_200, rows
    return time.perf_counter() - started


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'ingestion (Google Ads fake, same run)':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|---:|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()

"""``rebuild`` equals live ingestion for every curated and quarantine table, whatever raw
landing holds (refused batches, byte-identical pages of different requests, broken pages, a
torn manifest line), and never leaves a tenant without its tables."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest
from support import DEMO_DATA, FAKES_CERT_DIR, REPO, write_csv, write_tenant

from liftos.config import load_template
from liftos.fakes.klaviyo import FakeKlaviyo
from liftos.fakes.world import AdsWorld, KlaviyoWorld
from liftos.home import DataHome
from liftos.ingest import klaviyo
from liftos.ingest.curate import Curator
from liftos.ingest.files import ingest_file
from liftos.ingest.landing import RawLanding
from liftos.ingest.quality import Checker, QualityFailed, QualityRules
from liftos.ingest.rebuild import rebuild
from liftos.ingest.retry import RetryPolicy
from liftos_app.blocks.credentials import KlaviyoCredentials

HEADER = ["date", "account_id", "campaign_id", "campaign_name", "cost_micros"]
# the tenant's own rules: a spike is 3x the rolling median (default 25x), over 5 days of history
RULES = QualityRules(spike_factor=3.0, spike_min_history=5)


def tables(home: DataHome) -> dict[str, pl.DataFrame]:
    folder = home.folder("acme", "curated")
    return {p.stem: pl.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


def _media(days: int, start: int = 1, spike_on: int | None = None) -> list[list]:
    rows = []
    for d in range(start, start + days):
        micros = 50_000_000 if d == spike_on else 1_000_000
        rows.append([f"2025-03-{d:02d}", "111", "c1", "Brand search", micros])
        rows.append([f"2025-03-{d:02d}", "111", "c2", "Podcast read", 2_000_000])  # unmapped
    return rows


@pytest.fixture
def klaviyo_fake():
    world = AdsWorld(start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31))
    fake = FakeKlaviyo(KlaviyoWorld(world, campaigns=5), page_size=2).start()
    yield fake
    fake.stop()


def test_rebuild_equals_live_for_every_table_whatever_raw_holds(tmp_path, klaviyo_fake):
    home, template = DataHome(tmp_path / "home"), load_template("ecommerce")
    curator = Curator("acme", home, "live", Checker(RULES))
    ingest_file(write_csv(tmp_path / "a.csv", HEADER, _media(10)), "acme", template, home=home,
                curator=curator)
    # a spike only the tenant's rules call one, and a negative spend: quarantined
    spiky = _media(6, start=11, spike_on=14)
    spiky[0][4] = -5_000_000
    ingest_file(write_csv(tmp_path / "b.csv", HEADER, spiky), "acme", template, home=home,
                curator=curator)
    # a batch that failed a critical check (duplicate keys), and an HTML page as an upload
    duplicated = _media(2, start=20) + _media(1, start=20)
    with pytest.raises(QualityFailed, match="unique_keys"):
        ingest_file(write_csv(tmp_path / "dup.csv", HEADER, duplicated), "acme", template,
                    home=home, curator=curator)
    html = tmp_path / "export.csv"
    html.write_text("<html><body>Session expired</body></html>\n")
    with pytest.raises(Exception, match="export.csv"):
        ingest_file(html, "acme", template, home=home, curator=curator)
    # two KPIs on one metric: byte-identical response bodies for two requests
    settings = klaviyo.KlaviyoSettings(kpis={
        "revenue": klaviyo.KlaviyoKPI(metric="Placed Order"),
        "revenue_check": klaviyo.KlaviyoKPI(metric="Placed Order")})
    credentials = KlaviyoCredentials(api_key=klaviyo_fake.api_key,
                                     base_url=klaviyo_fake.base_url)
    klaviyo.sync(credentials, "acme", template, settings, since=dt.date(2025, 1, 1),
                 until=dt.date(2025, 1, 31), home=home, curator=curator,
                 policy=RetryPolicy(base_delay=0.01))
    # a torn last manifest line (power loss mid-write) must not break later ingests or rebuild
    with open(RawLanding("acme", "files", home).manifest, "a") as manifest:
        manifest.write('{"path": "2025-03-')
    ingest_file(write_csv(tmp_path / "c.csv", HEADER, _media(3, start=25)), "acme", template,
                home=home, curator=curator)

    live = tables(home)
    assert {"media_daily", "outcome_daily", "quarantine_media_daily", "klaviyo_campaigns"} <= set(
        live)
    outcome = live["outcome_daily"]
    assert outcome.filter(pl.col("kpi") == "revenue").height == 31
    assert outcome.filter(pl.col("kpi") == "revenue_check").height == 31
    held = live["quarantine_media_daily"]
    assert {"spend_spike", "non_negative_spend", "channel_mapped"} <= set(held["expectation"])

    result = rebuild("acme", template, home, rules=RULES)
    rebuilt = tables(home)
    assert rebuilt.keys() == live.keys()
    for name, frame in live.items():
        assert rebuilt[name].equals(frame), name
    assert len(result.refused) == 2 and not result.broken
    assert "unique_keys" in result.refused[0] and "export.csv" in result.refused[1]
    assert list(home.tenant("acme").glob(".curated*")) == []  # staging swapped in, old removed


def test_rebuild_reports_unparseable_raw_and_keeps_the_rest(tmp_path):
    home, template = DataHome(tmp_path / "home"), load_template("ecommerce")
    ingest_file(write_csv(tmp_path / "a.csv", HEADER, _media(5)), "acme", template, home=home)
    ingest_file(write_csv(tmp_path / "b.csv", HEADER, _media(5, start=6)), "acme", template,
                home=home)
    live = tables(home)
    landing = RawLanding("acme", "files", home)
    first = landing.folder / landing.entries()[0]["path"]
    first.write_bytes(b"not gzip at all")  # a damaged raw page
    result = rebuild("acme", template, home)
    assert len(result.broken) == 1 and "a.csv" in result.broken[0]
    after = tables(home)["media_daily"]
    assert after.equals(live["media_daily"].filter(pl.col("date") >= dt.date(2025, 3, 6)))


def test_killed_rebuild_leaves_the_live_tables_and_the_next_one_completes(tmp_path):
    home, template = DataHome(tmp_path / "home"), load_template("ecommerce")
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    write_tenant(tenants, "acme", DEMO_DATA)
    for k in range(3):
        ingest_file(write_csv(tmp_path / f"m{k}.csv", HEADER, _media(8, start=1 + 8 * k)),
                    "acme", template, home=home)
    live = tables(home)
    env = {**os.environ, "LIFTOS_HOME": str(home.root), "LIFTOS_TENANTS_DIR": str(tenants)}
    process = subprocess.Popen([sys.executable, "-m", "liftos_app.cli", "rebuild", "--tenant",
                                "acme"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # killed once it has checked its first replayed batch (its quality log appears)
    while not list(home.folder("acme", "quality").glob("rebuild-*.jsonl")):
        assert process.poll() is None and time.monotonic() < deadline, "rebuild ended first"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert all(tables(home)[name].equals(frame) for name, frame in live.items())
    rebuild("acme", template, home)
    assert all(tables(home)[name].equals(frame) for name, frame in live.items())
    assert list(home.tenant("acme").glob(".curated*")) == []


def test_an_interrupted_swap_is_undone_on_next_access(tmp_path):
    home = DataHome(tmp_path)
    (home.folder("acme", "curated") / "media_daily.parquet").write_text("tables")
    os.rename(home.tenant("acme") / "curated", home.tenant("acme") / ".curated.previous")
    assert (home.folder("acme", "curated") / "media_daily.parquet").read_text() == "tables"


_ = FAKES_CERT_DIR  # conftest trusts the fake certificates for the whole session

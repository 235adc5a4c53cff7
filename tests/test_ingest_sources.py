"""Google Ads and Klaviyo ingestion: the real SDK clients against local fakes that speak the real
protocols (gRPC over TLS + OAuth; JSON:API over HTTP), with the faults real APIs produce."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest
import yaml
from support import FAKES_CERT_DIR, REPO

from liftos.config import load_template
from liftos.fakes.google_ads import FakeGoogleAds
from liftos.fakes.klaviyo import FakeKlaviyo
from liftos.fakes.world import AdsWorld, KlaviyoWorld
from liftos.home import DataHome
from liftos.ingest import google_ads, klaviyo
from liftos.ingest.curate import curated_path
from liftos.ingest.landing import RawLanding
from liftos.ingest.rebuild import rebuild
from liftos.ingest.retry import RetryPolicy, SourceError
from liftos_app.blocks.credentials import GoogleAdsCredentials, KlaviyoCredentials

FAST = RetryPolicy(base_delay=0.05, max_delay=0.2, ceiling=5.0)
ADS_SETTINGS = google_ads.GoogleAdsSettings(customer_id="111-222-3334", chunk_days=30)
SECRETS = ("fake-developer-token", "fake-client-secret", "fake-refresh", "pk_fake_key")


@pytest.fixture
def world():
    return AdsWorld(start=dt.date(2024, 1, 1), end=dt.date(2024, 6, 30), campaigns_per_account=5)


@pytest.fixture
def ads(world):
    fake = FakeGoogleAds(world, cert_dir=FAKES_CERT_DIR, batch_rows=40).start()
    yield fake
    fake.stop()


@pytest.fixture
def klaviyo_fake(world):
    fake = FakeKlaviyo(KlaviyoWorld(world, campaigns=10), page_size=3).start()
    yield fake
    fake.stop()


@pytest.fixture
def template():
    return load_template("ecommerce")


def ads_credentials(fake: FakeGoogleAds, **changes) -> GoogleAdsCredentials:
    values = {"developer_token": fake.developer_token, "client_id": fake.client_id,
                  "client_secret": fake.client_secret, "refresh_token": fake.refresh_token,
                  "endpoint": fake.endpoint, "token_uri": fake.token_uri}
    return GoogleAdsCredentials(**{**values, **changes})


def truth(world: AdsWorld, first: dt.date, last: dt.date) -> pl.DataFrame:
    rows = []
    for account in world.accounts:
        m = world.metrics(account.customer_id)
        for k in world.day_range(first, last):
            for c, (campaign_id, _) in enumerate(world.campaigns(account.customer_id)):
                rows.append((account.customer_id, str(campaign_id), world.date(k),
                             int(m["cost_micros"][c, k]), float(m["conversions"][c, k])))
    return pl.DataFrame(rows, schema=["account_id", "campaign_id", "date", "spend_micros",
                                      "conversions"], orient="row").sort(
        ["account_id", "campaign_id", "date"])


def media(home: DataHome) -> pl.DataFrame:
    return pl.read_parquet(curated_path(home, "acme", "media_daily")).sort(
        ["account_id", "campaign_id", "date"])


def test_google_ads_many_pages_5xx_bursts_and_quota(tmp_path, ads, world, template, caplog):
    home = DataHome(tmp_path / "home")
    # the listing call: a burst of 5xx, then quota; the first chunk: a stream broken after one
    # message, then a GoogleAdsFailure with an internal error
    ads.faults = ["unavailable", "internal", "unavailable", "quota:0.4", "none",
                  "break-after:1", "ads-internal"]
    caplog.set_level(logging.DEBUG)
    waits: list[float] = []
    result = google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS,
                             since=dt.date(2024, 1, 1), until=dt.date(2024, 3, 31), home=home,
                             policy=dataclasses.replace(FAST, sleep=waits.append))
    expected = truth(world, dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    table = media(home)
    assert table.height == expected.height == 2 * 5 * 91
    assert table.select(expected.columns).equals(expected)  # no row lost, none duplicated
    assert result.counts.inserted == expected.height and result.counts.quarantined == 0
    assert result.counts.landed > 20  # 40 rows per streamed message: many pages, each landed
    # the quota error's RetryInfo delay was waited as asked; the other 5 retries backed off
    # (FAST: 0.05 s doubling to at most 0.2 s, +-20% jitter)
    assert len(waits) == 6 and waits.count(0.4) == 1
    assert all(0.04 <= w <= 0.24 for w in waits if w != 0.4)
    assert [c["login_customer_id"] for c in ads.calls] == ["1112223334"] * len(ads.calls)
    assert len(ads.calls) == 2 * 4 + 1 + 6  # 4 chunks x 2 accounts, the listing, 6 retries
    assert set(table["channel"]) == {"search", "tv", "display"}
    assert "RESOURCE_EXHAUSTED" in caplog.text and "An internal error has occurred" in caplog.text
    assert not any(secret in caplog.text for secret in SECRETS)


def test_google_ads_final_errors_name_code_and_request_without_secrets(tmp_path, ads, template):
    bad = ads_credentials(ads, developer_token="wrong-token-123")
    with pytest.raises(SourceError) as caught:
        google_ads.sync(bad, "acme", template, ADS_SETTINGS, since=dt.date(2024, 1, 1),
                        until=dt.date(2024, 1, 31), home=DataHome(tmp_path), policy=FAST)
    message = str(caught.value)
    assert "authorization_error.DEVELOPER_TOKEN_NOT_APPROVED" in message or (
        "authorization_error" in message)
    assert "request id fake-" in message and "wrong-token-123" not in message
    with pytest.raises(SourceError, match="OAuth token refresh failed: invalid_grant"):
        google_ads.sync(ads_credentials(ads, refresh_token="revoked-token-456"), "acme",
                        template, ADS_SETTINGS, since=dt.date(2024, 1, 1),
                        until=dt.date(2024, 1, 31), home=DataHome(tmp_path), policy=FAST)
    ads.faults = ["unavailable"] * 3
    with pytest.raises(SourceError, match="gave up after 3 attempts"):
        google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS,
                        since=dt.date(2024, 1, 1), until=dt.date(2024, 1, 31),
                        home=DataHome(tmp_path), policy=RetryPolicy(max_attempts=3,
                                                                    base_delay=0.01))


def test_token_endpoint_retries_belong_to_our_policy_alone(tmp_path, ads, template):
    """google-auth retries a busy token endpoint by itself; here only RetryPolicy does, with
    the endpoint's Retry-After, and a bad token URL is final at once."""
    ads.token_faults = ["503:0.3", "503", "503"]
    waits: list[float] = []
    with pytest.raises(SourceError, match="OAuth token endpoint HTTP 503; gave up after 3"):
        google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS,
                        since=dt.date(2024, 1, 1), until=dt.date(2024, 1, 31),
                        home=DataHome(tmp_path), policy=RetryPolicy(
                            max_attempts=3, base_delay=0.01, sleep=waits.append))
    assert ads.token_calls == 3 and waits[0] == 0.3 and len(waits) == 2
    ads.token_calls = 0
    with pytest.raises(SourceError, match="OAuth token refresh"):
        google_ads.sync(ads_credentials(ads, token_uri="htp:/nowhere"), "acme", template,
                        ADS_SETTINGS, since=dt.date(2024, 1, 1), until=dt.date(2024, 1, 31),
                        home=DataHome(tmp_path), policy=RetryPolicy(sleep=waits.append))
    assert len(waits) == 2  # not retried


def test_retry_after_as_http_date_is_honoured_and_capped():
    from email.utils import format_datetime

    from liftos.ingest.retry import retry_after

    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    assert retry_after(format_datetime(now + dt.timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after("Mon, 30 Nov 2026 11:00:00 GMT", now) == 0.0  # a date in the past
    assert retry_after("2.5", now) == 2.5 and retry_after("soon", now) is None
    error = klaviyo._HttpStatus(429, b"{}", format_datetime(
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=600), usegmt=True))
    verdict = klaviyo.classify(error)
    assert 595 <= verdict.after <= 600  # so the ceiling applies: not a silent backoff
    with pytest.raises(SourceError, match="above the 5 s ceiling"):
        FAST.run(lambda: (_ for _ in ()).throw(error), klaviyo.classify, "klaviyo", "metrics")


def test_late_conversions_are_updated_inside_the_lookback_only(tmp_path, ads, world, template):
    home = DataHome(tmp_path / "home")
    until = dt.date(2024, 4, 30)
    google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS,
                    since=dt.date(2024, 3, 1), until=until, home=home, policy=FAST)
    before = media(home)
    world.late_conversions(until - dt.timedelta(days=29), 1.5)  # 30 days of late conversions
    result = google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS,
                             until=until, home=home, policy=FAST)
    assert result.windows["1234567890"] == ("2024-04-17", "2024-04-30")  # 14-day lookback
    assert (result.counts.inserted, result.counts.updated) == (0, 2 * 5 * 14)
    after = media(home)
    inside = pl.col("date") >= dt.date(2024, 4, 17)
    late = truth(world, dt.date(2024, 4, 17), until)
    assert after.filter(inside).select(late.columns).equals(late)
    assert after.filter(~inside).equals(before.filter(~inside))  # outside the lookback: as was
    assert (after.filter(inside)["conversions"].sum()
            > 1.4 * before.filter(inside)["conversions"].sum())


def _write_tenant(folder, **sources) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme.yaml").write_text(yaml.safe_dump({
        "tenant": "acme", "template": "ecommerce", "timezone": "America/New_York",
        "data": {"target": "revenue", "channels": ["display", "search", "tv"], "controls": []},
        "sources": sources}))


def _killed_at(command: list[str], env: dict, fake, hook: str, count: int) -> str:
    """Run ``command``; SIGKILL it when the fake serves its ``count``-th message or request."""
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    setattr(fake, hook, lambda n: n == count and os.kill(process.pid, signal.SIGKILL))
    output, _ = process.communicate(timeout=240)
    setattr(fake, hook, None)
    assert process.returncode == -signal.SIGKILL, output
    return output


def test_backfill_killed_mid_way_resumes_to_the_same_table(tmp_path, ads, world, template):
    _write_tenant(tmp_path / "tenants", google_ads={"customer_id": "111-222-3334",
                                                    "chunk_days": 14})
    env = {**os.environ, "LIFTOS_TENANTS_DIR": str(tmp_path / "tenants"),
           "LIFTOS_HOME": str(tmp_path / "killed"),
           "GOOGLE_ADS_DEVELOPER_TOKEN": ads.developer_token,
           "GOOGLE_ADS_CLIENT_ID": ads.client_id, "GOOGLE_ADS_CLIENT_SECRET": ads.client_secret,
           "GOOGLE_ADS_REFRESH_TOKEN": ads.refresh_token, "GOOGLE_ADS_TOKEN_URI": ads.token_uri}
    command = [sys.executable, "-m", "liftos_app.cli", "ingest", "google-ads", "--tenant", "acme",
               "--since", "2024-01-01", "--until", "2024-06-30", "--endpoint", ads.endpoint]
    output = _killed_at(command, env, ads, "on_message", 20)
    killed_home = DataHome(tmp_path / "killed")
    bookmarks = yaml.safe_load((killed_home.folder("acme", "state") / "google_ads.json")
                               .read_text())["streams"]
    done = max(dt.date.fromisoformat(b["through"]) for b in bookmarks.values())
    assert dt.date(2024, 1, 1) < done < dt.date(2024, 6, 30)  # it died mid-backfill
    resumed = subprocess.run(command, env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=240, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "google_ads: fetched" in resumed.stdout
    clean = DataHome(tmp_path / "clean")
    google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS.model_copy(
        update={"chunk_days": 14}), since=dt.date(2024, 1, 1), until=dt.date(2024, 6, 30),
        home=clean, policy=FAST)
    assert media(killed_home).drop("tenant").equals(media(clean).drop("tenant"))
    assert media(clean).height == truth(world, dt.date(2024, 1, 1), dt.date(2024, 6, 30)).height
    assert not any(s in output + resumed.stdout + resumed.stderr for s in SECRETS)


def test_klaviyo_pages_retry_after_and_rebuild(tmp_path, klaviyo_fake, world, template):
    home = DataHome(tmp_path / "home")
    credentials = KlaviyoCredentials(api_key=klaviyo_fake.api_key,
                                     base_url=klaviyo_fake.base_url)
    klaviyo_fake.faults = ["429:1", "503", "502", "500"]
    waits: list[float] = []
    result = klaviyo.sync(credentials, "acme", template, klaviyo.KlaviyoSettings(),
                          since=dt.date(2024, 1, 1), until=dt.date(2024, 3, 31), home=home,
                          policy=dataclasses.replace(FAST, sleep=waits.append))
    assert waits[0] == 1.0 and len(waits) == 4  # Retry-After: 1 was waited, not the backoff
    paths = [r["path"] for r in klaviyo_fake.requests]
    assert paths.count("/api/metrics") == 4 + 3  # 3 pages of 3 metrics, 4 faulted attempts
    assert paths.count("/api/campaigns") == 4  # 10 campaigns, 3 a page, cursors from links.next
    outcome = pl.read_parquet(curated_path(home, "acme", "outcome_daily"))
    revenue = outcome.filter(pl.col("kpi") == "revenue").sort("date")
    daily = KlaviyoWorld(world, campaigns=10).daily("RcVz1a")["sum_value"][:91]
    assert revenue.height == 91 and np.allclose(revenue["value"].cast(pl.Float64).to_numpy(), daily,
                                                atol=0.01)
    assert set(outcome["kpi"]) == {"revenue", "email_opens", "email_clicks"}
    assert pl.read_parquet(curated_path(home, "acme", "klaviyo_campaigns")).height == 10
    assert result.drift == []
    klaviyo_fake.faults = ["429:600"]
    with pytest.raises(SourceError, match="asks to wait 600 s, above the 5 s ceiling"):
        klaviyo.sync(credentials, "acme", template, klaviyo.KlaviyoSettings(),
                     home=home, policy=FAST)
    live = outcome.sort(["date", "kpi"])
    rebuild("acme", template, home)
    assert pl.read_parquet(curated_path(home, "acme", "outcome_daily")).sort(
        ["date", "kpi"]).equals(live)


def test_klaviyo_schema_drift_is_reported_or_stops_precisely(tmp_path, klaviyo_fake, template):
    home = DataHome(tmp_path / "home")
    credentials = KlaviyoCredentials(api_key=klaviyo_fake.api_key,
                                     base_url=klaviyo_fake.base_url)
    settings = klaviyo.KlaviyoSettings()
    klaviyo.sync(credentials, "acme", template, settings, since=dt.date(2024, 1, 1),
                 until=dt.date(2024, 1, 31), home=home, policy=FAST)
    klaviyo_fake.schema = "drifted"
    result = klaviyo.sync(credentials, "acme", template, settings,
                          until=dt.date(2024, 2, 29), home=home, policy=FAST)
    assert [d.describe() for d in result.drift] == [
        ("campaigns: moved attributes.send_time -> attributes.send_strategy.send_time; "
        "added attributes.ab_test")]
    campaigns = pl.read_parquet(curated_path(home, "acme", "klaviyo_campaigns"))
    assert campaigns["send_time"].null_count() == 0  # still derived from where it moved
    klaviyo_fake.schema = "broken"
    with pytest.raises(klaviyo.SchemaError) as caught:
        klaviyo.sync(credentials, "acme", template, settings, until=dt.date(2024, 3, 31),
                     home=home, policy=FAST)
    message = str(caught.value)
    assert "metric-aggregates revenue 2024-02-16..2024-03-16" in message
    assert "field 'attributes.dates' is missing" in message
    assert "added attributes.date_buckets; removed attributes.dates" in message
    landed = RawLanding("acme", "klaviyo", home).entries()
    assert landed[-1]["request"]["first"] == "2024-02-16"  # the drifted page is kept raw
    from liftos.views import TenantViews

    seen = TenantViews(home).quality("acme")["drift"]  # what the hub's Data page shows
    assert [(d["change"], d["load_stopped"]) for d in seen] == [
        ("metric-aggregates: added attributes.date_buckets; removed attributes.dates", True),
        (("campaigns: moved attributes.send_time -> attributes.send_strategy.send_time; "
         "added attributes.ab_test"), False)]


def test_google_ads_rebuild_from_raw_equals_live_tables(tmp_path, ads, world, template):
    home = DataHome(tmp_path / "home")
    google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS,
                    since=dt.date(2024, 1, 1), until=dt.date(2024, 2, 29), home=home,
                    policy=FAST)
    world.late_conversions(dt.date(2024, 2, 20), 2.0)
    google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS,
                    until=dt.date(2024, 2, 29), home=home, policy=FAST)
    live = media(home)
    result = rebuild("acme", template, home)
    assert result.counts.fetched > live.height  # replays the re-read lookback pages too
    assert media(home).equals(live)


def test_ingest_tasks_in_a_flow_limits_artifacts_drift_event_and_no_secret(
        prefect_api, tmp_path, ads, klaviyo_fake, monkeypatch):
    from prefect import flow
    from support import artifacts, events, flow_run_id

    from liftos_app.flows.refresh import ingest_sources
    from liftos_app.tasks.ingest import ensure_limits
    from liftos_app.tasks.stages import resolve_tenant

    _write_tenant(tmp_path / "tenants", google_ads={"customer_id": "111-222-3334",
                                                    "since": "2024-01-01", "chunk_days": 60},
                  klaviyo={"since": "2024-01-01", "chunk_days": 60})
    monkeypatch.setenv("LIFTOS_TENANTS_DIR", str(tmp_path / "tenants"))
    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    for name, value in {"GOOGLE_ADS_DEVELOPER_TOKEN": ads.developer_token,
                        "GOOGLE_ADS_CLIENT_ID": ads.client_id,
                        "GOOGLE_ADS_CLIENT_SECRET": ads.client_secret,
                        "GOOGLE_ADS_REFRESH_TOKEN": ads.refresh_token,
                        "GOOGLE_ADS_TOKEN_URI": ads.token_uri,
                        "GOOGLE_ADS_ENDPOINT": ads.endpoint,
                        "KLAVIYO_API_KEY": klaviyo_fake.api_key,
                        "KLAVIYO_BASE_URL": klaviyo_fake.base_url}.items():
        monkeypatch.setenv(name, value)
    fast_limits = tmp_path / "limits.yaml"  # the real limits throttle Klaviyo to 1 request/s
    fast_limits.write_text(yaml.safe_dump({"limits": [
        {"name": n, "limit": 50, "slot_decay_per_second": 50.0} if "rate" in n else
        {"name": n, "limit": 2} for n in ("liftos-ingest-google-ads", "liftos-rate-google-ads",
                                          "liftos-ingest-klaviyo", "liftos-rate-klaviyo")]}))
    ensure_limits(fast_limits)
    klaviyo_fake.schema = "drifted"
    ads.faults = ["none", "unavailable"]

    @flow
    def ingest_only(tenant: str) -> str | None:
        return ingest_sources(resolve_tenant(tenant), until="2024-06-30")

    state = ingest_only("acme", return_state=True)
    panel = pl.read_csv(state.result())
    assert panel.columns == ["date", "revenue", "display", "search", "tv"]
    assert panel.height == 26  # Mon 2024-01-01 .. Sun 2024-06-30: 26 complete weeks
    run_id = flow_run_id(state)
    found = {a.key: a.data for a in artifacts(run_id)}
    report = found["ingest-google-ads-acme"]
    assert "fetched **1820** rows" in report and "quarantined **0**" in report
    assert "## Data quality" in found["ingest-klaviyo-acme"]
    assert "moved attributes.send_time -> attributes.send_strategy.send_time" in found[
        "ingest-klaviyo-acme"]
    drift = events("liftos.schema.drift", run_id)
    assert drift and drift[0]["payload"]["source"] == "klaviyo"
    assert drift[0]["payload"]["load_stopped"] is False
    everything = " ".join(str(a) for a in found.values()) + str(drift)
    assert not any(secret in everything for secret in SECRETS)


def _klaviyo(fake, home, template, **kw):
    credentials = KlaviyoCredentials(api_key=fake.api_key, base_url=kw.pop("base_url",
                                                                           fake.base_url))
    settings = klaviyo.KlaviyoSettings(**kw.pop("settings", {}))
    return klaviyo.sync(credentials, "acme", template, settings, home=home,
                        policy=kw.pop("policy", FAST), **kw)


@pytest.mark.parametrize("mangle, message", [
    (lambda a: a.update(data=[]), r"30 date\(s\) but no values .*nothing stored"),
    (lambda a: a["data"][0]["measurements"].update(
        sum_value=["$24070.49"] * len(a["dates"])), r"values must be numbers; got \"\$24070.49\""),
    (lambda a: a["data"][0]["measurements"].update(sum_value=[1.0]),
     r"30 date\(s\) but \[1.0\] as 'sum_value' values"),
    (lambda a: a.update(dates="2024-02-01"), r"'attributes.dates' is not a list of dates"),
    (lambda a: a["dates"].__setitem__(3, "yesterday"), r"a date is not ISO 8601: \"yesterday\""),
])
def test_klaviyo_aggregates_of_the_wrong_shape_are_refused_and_lose_nothing(
        tmp_path, klaviyo_fake, template, mangle, message):
    home = DataHome(tmp_path / "home")
    _klaviyo(klaviyo_fake, home, template, since=dt.date(2024, 1, 1), until=dt.date(2024, 1, 31),
             settings={"kpis": {"revenue": {"metric": "Placed Order"}}, "campaigns": False})
    before = pl.read_parquet(curated_path(home, "acme", "outcome_daily"))
    klaviyo_fake.hostile_aggregate = mangle
    with pytest.raises(klaviyo.SchemaError, match="metric-aggregates revenue 2024-01-18..2024-"
                                                  "02-16: .*" + message):
        _klaviyo(klaviyo_fake, home, template, until=dt.date(2024, 2, 16),
                 settings={"kpis": {"revenue": {"metric": "Placed Order"}}, "campaigns": False})
    assert pl.read_parquet(curated_path(home, "acme", "outcome_daily")).equals(before)
    assert RawLanding("acme", "klaviyo", home).entries()[-1]["request"]["kind"] == (
        "metric-aggregates")  # the refused page is kept raw


def test_klaviyo_negative_values_are_quarantined(tmp_path, klaviyo_fake, template):
    home = DataHome(tmp_path / "home")
    def refund(attributes):  # a refund larger than the day's orders
        if len(attributes["dates"]) > 2:
            attributes["data"][0]["measurements"]["sum_value"][2] = -120.5

    klaviyo_fake.hostile_aggregate = refund
    result = _klaviyo(klaviyo_fake, home, template, since=dt.date(2024, 1, 1),
                      until=dt.date(2024, 1, 31), settings={
                          "kpis": {"revenue": {"metric": "Placed Order"}}, "campaigns": False})
    assert result.counts.quarantined == 1
    held = pl.read_parquet(home.folder("acme", "curated") / "quarantine_outcome_daily.parquet")
    assert held["expectation"].to_list() == ["non_negative_value"]
    assert held["date"].to_list() == [dt.date(2024, 1, 3)]


def test_klaviyo_loops_stalls_and_bad_addresses_end_with_a_message(tmp_path, klaviyo_fake,
                                                                   template):
    home = DataHome(tmp_path / "home")
    klaviyo_fake.loop_cursor = True
    with pytest.raises(SourceError, match=r"metrics page 2: links.next points back to an "
                                          r"earlier page .*loops; stopped"):
        _klaviyo(klaviyo_fake, home, template, since=dt.date(2024, 1, 1),
                 until=dt.date(2024, 1, 31))
    assert len(klaviyo_fake.requests) == 2
    klaviyo_fake.loop_cursor, klaviyo_fake.stall_s = False, 1.5
    waits: list[float] = []
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"connection to 127.0.0.1:\d+ failed .*gave up after 2"):
        _klaviyo(klaviyo_fake, home, template, since=dt.date(2024, 1, 1),
                 until=dt.date(2024, 1, 31), settings={"read_timeout_s": 0.3},
                 policy=RetryPolicy(max_attempts=2, sleep=waits.append))
    assert time.monotonic() - started < 2 * 1.5  # the read timeout ended each attempt
    klaviyo_fake.stall_s = 0.0
    for base_url in ("htp//127.0.0.1:1", "https://127.0.0.1:" + klaviyo_fake.base_url.rsplit(
            ":", 1)[1]):  # a malformed URL; TLS to a plain-HTTP server
        waits.clear()
        with pytest.raises(SourceError):
            _klaviyo(klaviyo_fake, home, template, since=dt.date(2024, 1, 1),
                     until=dt.date(2024, 1, 31), base_url=base_url,
                     policy=RetryPolicy(sleep=waits.append))
        assert waits == [], f"{base_url} was retried"


def test_secrets_echoed_by_a_server_never_reach_our_messages_or_logs(tmp_path, ads,
                                                                     klaviyo_fake, template,
                                                                     caplog):
    """A token endpoint quoting the request body and an API quoting the request headers in
    their errors: every configured secret is redacted from what we print, raise and log."""
    caplog.set_level(logging.DEBUG)
    ads.token_faults = ["echo"]
    with pytest.raises(SourceError) as google:
        google_ads.sync(ads_credentials(ads), "acme", template, ADS_SETTINGS,
                        since=dt.date(2024, 1, 1), until=dt.date(2024, 1, 31),
                        home=DataHome(tmp_path), policy=FAST)
    assert "invalid_grant" in str(google.value) and "***" in str(google.value)
    klaviyo_fake.faults = ["echo"]
    with pytest.raises(SourceError) as klav:
        _klaviyo(klaviyo_fake, DataHome(tmp_path), template, since=dt.date(2024, 1, 1),
                 until=dt.date(2024, 1, 31))
    assert "Klaviyo-API-Key ***" in str(klav.value)
    everything = str(google.value) + str(klav.value) + caplog.text
    assert not any(secret in everything for secret in SECRETS)


def test_klaviyo_revenue_is_stored_exactly(tmp_path, klaviyo_fake, template):
    """Revenue a float cannot hold (2**53 + 1 cents) is kept to the cent, from the bytes."""
    home = DataHome(tmp_path / "home")

    def big_day(attributes):
        attributes["data"][0]["measurements"]["sum_value"][0] = "<num:90071992547409.93:num>"

    klaviyo_fake.hostile_aggregate = big_day
    _klaviyo(klaviyo_fake, home, template, since=dt.date(2024, 1, 1), until=dt.date(2024, 1, 5),
             settings={"kpis": {"revenue": {"metric": "Placed Order"}}, "campaigns": False})
    first = pl.read_parquet(curated_path(home, "acme", "outcome_daily")).sort("date")["value"][0]
    assert str(first) == "90071992547409.930000"


def test_klaviyo_sync_killed_mid_way_resumes_to_the_same_tables(tmp_path, klaviyo_fake, world,
                                                                template):
    _write_tenant(tmp_path / "tenants", klaviyo={"chunk_days": 14})
    env = {**os.environ, "LIFTOS_TENANTS_DIR": str(tmp_path / "tenants"),
           "LIFTOS_HOME": str(tmp_path / "killed"), "KLAVIYO_API_KEY": klaviyo_fake.api_key}
    command = [sys.executable, "-m", "liftos_app.cli", "ingest", "klaviyo", "--tenant", "acme",
               "--since", "2024-01-01", "--until", "2024-06-30", "--base-url",
               klaviyo_fake.base_url]
    # 3 metric pages, then 13 two-week chunks per KPI: killed inside the second KPI
    output = _killed_at(command, env, klaviyo_fake, "on_request", 20)
    killed = DataHome(tmp_path / "killed")
    partial = pl.read_parquet(curated_path(killed, "acme", "outcome_daily"))
    assert 0 < partial.height < 3 * 182  # it died mid-sync
    resumed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                             timeout=240, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    clean = DataHome(tmp_path / "clean")
    _klaviyo(klaviyo_fake, clean, template, since=dt.date(2024, 1, 1),
             until=dt.date(2024, 6, 30), settings={"chunk_days": 14})
    for table in ("outcome_daily", "klaviyo_campaigns"):
        key = ["date", "kpi"] if table == "outcome_daily" else ["id"]
        got = pl.read_parquet(curated_path(killed, "acme", table)).sort(key)
        want = pl.read_parquet(curated_path(clean, "acme", table)).sort(key)
        assert got.equals(want), table
    assert got.height == 10 and pl.read_parquet(curated_path(
        clean, "acme", "outcome_daily")).height == 3 * 182
    assert klaviyo_fake.api_key not in output + resumed.stdout + resumed.stderr


def test_an_untrusted_certificate_is_final_not_retried(tmp_path, world, template):
    """A server whose certificate this process does not trust: gRPC says UNAVAILABLE, which is
    otherwise retried; here it fails at once and says why."""
    stranger = FakeGoogleAds(world, cert_dir=tmp_path / "other-ca").start()
    waits: list[float] = []
    try:
        with pytest.raises(SourceError, match="TLS certificate is not trusted"):
            google_ads.sync(ads_credentials(stranger), "acme", template, ADS_SETTINGS,
                            since=dt.date(2024, 1, 1), until=dt.date(2024, 1, 5),
                            home=DataHome(tmp_path), policy=RetryPolicy(sleep=waits.append))
    finally:
        stranger.stop()
    assert waits == []

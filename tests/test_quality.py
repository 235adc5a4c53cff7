"""Every Great Expectations rule of the canonical tables, exercised on rows that break it:
critical rules stop the batch and name example rows, quarantine rules set exactly the
offending rows aside with their reason, and valid rows pass."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from liftos.ingest.quality import Checker, QualityRules
from liftos.ingest.tables import media_frame, outcome_frame

DAY = dt.date(2025, 3, 3)


@pytest.fixture(scope="module")
def checker():
    return Checker(QualityRules(spike_min_history=3))


def media(days: int = 7, **changes) -> pl.DataFrame:
    rows = {"tenant": "acme", "source": "files", "account_id": "111", "campaign_id": "c1",
            "campaign_name": "Brand search", "channel": "search", "currency": "USD",
            "spend_micros": 1_000_000, "impressions": 10, "clicks": 1, "conversions": 1.0,
            "conversion_value": "2.5"}
    frame = pl.DataFrame([{**rows, "date": DAY + dt.timedelta(days=k)} for k in range(days)])
    return media_frame(frame.with_columns(**{k: pl.lit(v) for k, v in changes.items()}))


def outcome(values: list) -> pl.DataFrame:
    return outcome_frame(pl.DataFrame({
        "tenant": "acme", "source": "files", "kpi": "revenue",
        "date": [DAY + dt.timedelta(days=k) for k in range(len(values))],
        "value": [None if v is None else str(v) for v in values]},
        schema_overrides={"value": pl.Utf8}))


def findings(report) -> dict[str, tuple[str, int]]:
    return {f.expectation: (f.severity, f.failed) for f in report.findings}


def test_valid_batches_pass_every_rule(checker):
    report = checker.check_media(media(), None, DAY, DAY + dt.timedelta(days=6))
    assert findings(report) == {} and report.passed.height == 7
    assert findings(checker.check_outcome(outcome([10, 11, 12]), DAY, None)) == {}


def test_critical_media_rules_stop_the_batch(checker):
    twice = pl.concat([media(2), media(1)])
    assert findings(checker.check_media(twice, None, None, None))["unique_keys"] == (
        "critical", 2)
    euros = media(3).with_columns(
        pl.when(pl.col("date") == DAY).then(pl.lit("EUR")).otherwise(pl.col("currency"))
        .alias("currency"))
    report = checker.check_media(euros, None, None, None)
    assert findings(report)["one_currency_per_account"][0] == "critical"
    assert report.critical and "one_currency_per_account" in report.critical[0].line()


def test_quarantine_media_rules_set_aside_exactly_the_bad_rows(checker):
    day = pl.col("date") - pl.lit(DAY)
    frame = media(8).with_columns(
        pl.when(day == dt.timedelta(0)).then(-1)
        .when(day == dt.timedelta(days=7)).then(100_000_000)
        .otherwise(pl.col("spend_micros")).alias("spend_micros"),
        pl.when(day == dt.timedelta(days=1)).then(None)
        .otherwise(pl.col("channel")).alias("channel"))
    report = checker.check_media(frame, None, DAY, DAY + dt.timedelta(days=6))
    held = dict(zip(report.quarantined["date"].to_list(),
                    report.quarantined["expectation"].to_list(), strict=True))
    assert held[DAY] == "non_negative_spend"
    assert held[DAY + dt.timedelta(days=1)] == "channel_mapped"
    assert held[DAY + dt.timedelta(days=7)] in {"dates_in_range", "spend_spike"}
    assert {"non_negative_spend", "channel_mapped", "dates_in_range", "spend_spike"} <= set(
        findings(report))
    assert report.passed.height == 5 and not report.critical


def test_quarantine_outcome_rules(checker):
    report = checker.check_outcome(outcome([10, None, -3, 12]), DAY, DAY + dt.timedelta(days=2))
    assert findings(report) == {"value_present": ("quarantine", 1),
                                "non_negative_value": ("quarantine", 1),
                                "dates_in_range": ("quarantine", 1)}
    assert report.passed["value"].cast(pl.Float64).to_list() == [10.0]


def test_a_week_with_spend_but_no_outcome_is_critical_for_the_panel(checker):
    spend = media(21)
    days = outcome([5] * 7)  # outcome for the first week only
    report = checker.check_panel(spend, days, "revenue")
    assert findings(report) == {"outcome_every_week": ("critical", 2)}

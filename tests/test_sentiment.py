"""Lift Sentiment: texts landed, checked, scored offline (VADER) and stored once; bad input named
by file, column, line and rule with the raw copy kept; the weekly index; shifts found when the
customers' mood really moves, not in noise."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from support import write_csv

from liftos.errors import InputError
from liftos.home import DataHome
from liftos.signals.sentiment import (
    MAX_TEXT_BYTES,
    UNSCORED,
    VADER,
    detect_shift,
    ingest_texts,
    load_texts,
    weekly_index,
)

TODAY = dt.date(2026, 11, 30)
HAPPY = ("Love it, works great and arrived early", "Excellent quality, very happy",
         "Great service, would buy again", "Fantastic value, the best purchase this year")
ANGRY = ("Terrible, broke after a day", "Awful support, very disappointed",
         "The worst delivery ever, late and damaged", "Bad quality, I want a refund")


def _mood(weeks: list[float], per_week: int = 60, seed: int = 0) -> pl.DataFrame:
    """``per_week`` texts a week; each is happy with the week's probability."""
    rng = np.random.default_rng(seed)
    rows = []
    for w, happy in enumerate(weeks):
        monday = dt.date(2026, 1, 5) + dt.timedelta(weeks=w)
        for k in range(per_week):
            pool = HAPPY if rng.random() < happy else ANGRY
            rows.append({"date": monday + dt.timedelta(days=int(rng.integers(0, 7))),
                         "text": f"{pool[int(rng.integers(0, 4))]} (order {w}-{k})"})
    return pl.DataFrame(rows)


def test_a_file_is_landed_scored_and_stored_once(tmp_path):
    home = DataHome(tmp_path / "home")
    path = write_csv(tmp_path / "reviews.csv", ["date", "text", "source", "channel", "language"], [
        ["2026-11-02", "Absolutely love it and great quality", "trustpilot", "search", "en"],
        ["2026-11-03", "Terrible. Broke after one day.", "trustpilot", "", "EN"],
        ["2026-11-03", "Schlechte Qualität und sehr enttäuscht", "survey", "", "de"]])
    counts = ingest_texts(path, "acme", home, today=TODAY)
    assert (counts.texts, counts.scored, counts.unscored) == (3, 2, {"de": 1})
    assert "1 in 'de': no offline scorer" in counts.describe()
    texts = load_texts("acme", home).sort("date")
    assert texts["label"].to_list() == ["positive", "negative", None]
    assert texts["scorer"].to_list() == [VADER, VADER, UNSCORED]
    assert texts["score"][0] > 0.5 and texts["score"][1] < -0.5 and texts["score"][2] is None
    again = ingest_texts(path, "acme", home, today=TODAY)
    assert (again.inserted, again.updated) == (0, 3) and load_texts("acme", home).height == 3
    manifest = home.tenant("acme") / "raw" / "sentiment" / "manifest.jsonl"
    landed = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(landed) == 2 and len({e["path"] for e in landed}) == 1  # one copy, two receipts


@pytest.mark.parametrize("row, column, rule", [
    (["2026-11-02", "   ", "en"], "text", "text_not_empty"),
    (["2026-11-02", "x" * (MAX_TEXT_BYTES + 1), "en"], "text", "text_size"),
    (["2026-11-02", "fine", "xx"], "language", "language_code"),
    (["1999-12-31", "fine", "en"], "date", "date_in_range"),
    (["2027-01-05", "fine", "en"], "date", "date_in_range"),
    (["02/11/2026", "fine", "en"], "date", "date_parses")])
def test_bad_input_names_file_column_line_and_rule_and_keeps_the_raw_copy(tmp_path, row, column,
                                                                         rule):
    home = DataHome(tmp_path / "home")
    path = write_csv(tmp_path / "texts.csv", ["date", "text", "language"],
                     [["2026-11-01", "good", "en"], row])
    with pytest.raises(InputError) as refused:
        ingest_texts(path, "acme", home, today=TODAY)
    said = str(refused.value)
    assert said.startswith(f"{path}, column '{column}', line 3: ") and f"[rule: {rule}]" in said
    assert len(said) < 300  # a 100 kB text is not echoed
    assert load_texts("acme", home).is_empty()
    assert list((home.tenant("acme") / "raw" / "sentiment").rglob("*.csv.gz"))


def test_the_cli_says_one_line_and_exits_2_on_a_file_without_texts(tmp_path, capsys,
                                                                   monkeypatch):
    from liftos_app.cli import main

    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    path = write_csv(tmp_path / "t.csv", ["date", "review"], [["2026-11-01", "good"]])
    assert main(["sentiment", "ingest", str(path), "--tenant", "acme"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing column(s) 'text'" in err and "Traceback" not in err


def test_the_weekly_index_counts_and_brackets_each_week(tmp_path):
    texts = _mood([0.8] * 3 + [0.2] * 3).with_columns(pl.lit("en").alias("language"))
    from liftos.signals.sentiment import score

    index = weekly_index(score(texts))
    assert index["texts"].to_list() == [60] * 6 and set(index["scorer"]) == {VADER}
    happy, angry = index["index"][:3], index["index"][3:]
    assert happy.min() > 0.2 and angry.max() < -0.2
    assert (index["stderr"] > 0).all() and (index["stderr"] < 0.1).all()


@pytest.mark.parametrize("last, shifted", [(0.35, True), (0.7, False)])
def test_a_real_drop_is_a_shift_and_noise_is_not(tmp_path, monkeypatch, capsys, last, shifted):
    """Eleven weeks at 70% happy customers, then a week at 35% (a real drop) or 70% (the same
    mood, new noise)."""
    from liftos_app.cli import main

    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    frame = _mood([0.7] * 11 + [last], seed=4)
    frame.with_columns(pl.col("date").cast(pl.Utf8)).write_parquet(tmp_path / "texts.parquet")
    assert main(["sentiment", "ingest", str(tmp_path / "texts.parquet"), "--tenant", "acme"]) == 0
    found = detect_shift(load_texts("acme"))
    out = capsys.readouterr().out
    assert (found is not None) == shifted, out
    if shifted:
        assert found.size < 0 and found.week == dt.date(2026, 3, 23) and found.texts == 60
        assert all(any(a in text for a in ANGRY) for text in found.drivers)
        assert "sentiment fell to" in out
    else:
        assert "no sentiment shift in the newest week" in out


@pytest.mark.slow
def test_the_flow_emits_a_shift_event_with_the_texts_that_drove_it(tmp_path, monkeypatch,
                                                                   prefect_api):
    from support import artifacts, events, flow_run_id

    from liftos_app.flows.sentiment import sentiment

    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    path = tmp_path / "texts.parquet"
    _mood([0.7] * 11 + [0.3], seed=4).write_parquet(path)
    state = sentiment(tenant="acme", files=[str(path)], return_state=True)
    assert state.is_completed(), state.message
    run_id = flow_run_id(state)
    event = events("liftos.sentiment.shifted", run_id)[0]
    assert event["resource"]["prefect.resource.id"] == "liftos.tenant.acme"
    assert event["payload"]["size"] < 0 and event["payload"]["week"] == "2026-03-23"
    assert len(event["payload"]["drivers"]) == 5 and event["payload"]["chain"] == run_id
    from liftos.memory.store import MemoryStore

    first = MemoryStore().search("acme", "customer sentiment fell", kind="anomaly")[0].memory
    assert first.facts["chain"] == run_id and "sentiment fell to" in first.text
    table = json.loads(artifacts(run_id, "sentiment-acme")[0].data)
    assert len(table) == 12 and table[-1]["texts"] == 60


@pytest.fixture
def model():
    from pydantic import SecretStr

    from liftos.brief.llm import LLMSettings
    from liftos.fakes.openai import FakeOpenAI

    fake = FakeOpenAI(api_key="sk-sentiment").start()
    yield fake, LLMSettings(api_key=SecretStr("sk-sentiment"), base_url=fake.base_url,
                            max_attempts=1)
    fake.stop()


def test_the_model_scores_every_language_and_names_itself(tmp_path, model):
    fake, settings = model
    home = DataHome(tmp_path / "home")
    path = write_csv(tmp_path / "mixed.csv", ["date", "text", "language"], [
        ["2026-11-02", "Love it and great quality", "en"],
        ["2026-11-03", "Terrible and broke after a day", "en"],
        ["2026-11-03", "Schlechte Qualität und sehr enttäuscht", "de"]])
    counts = ingest_texts(path, "acme", home, today=TODAY, model=settings)
    assert (counts.scored, counts.unscored, counts.scorer) == (3, {}, "openai:gpt-4o-mini")
    texts = load_texts("acme", home).sort("date")
    assert texts["label"].to_list() == ["positive", "negative", "negative"]
    assert set(texts["scorer"]) == {"openai:gpt-4o-mini"} and set(texts["aspect"]) == {"product"}
    sent = json.loads(fake.requests[0]["body"]["messages"][1]["content"].split("\n", 1)[1])
    assert [t["text"] for t in sent][2] == "Schlechte Qualität und sehr enttäuscht"


def test_an_incomplete_model_answer_stores_nothing_and_says_which_texts(tmp_path, model):
    fake, settings = model
    fake.behaviours = ["partial"]
    home = DataHome(tmp_path / "home")
    path = write_csv(tmp_path / "t.csv", ["date", "text"],
                     [["2026-11-02", "Love it"], ["2026-11-03", "Awful"]])
    from liftos.errors import LiftOSError

    with pytest.raises(LiftOSError, match=r"texts 1-2: no score for 1 of them; nothing of this "
                                          "file was stored"):
        ingest_texts(path, "acme", home, today=TODAY, model=settings)
    assert load_texts("acme", home).is_empty()
    assert list((home.tenant("acme") / "raw" / "sentiment").rglob("*.csv.gz"))


def test_a_shift_is_judged_within_one_scorers_series(tmp_path):
    """Eleven weeks scored by VADER, then the newest by another scorer: the new series is too
    short to judge, and the two scorers' numbers are never compared."""
    from liftos.signals.sentiment import score

    texts = score(_mood([0.7] * 12, seed=4).with_columns(pl.lit("en").alias("language")))
    newest = texts["date"] >= dt.date(2026, 3, 23)
    assert detect_shift(texts.with_columns(pl.when(newest).then(pl.lit("openai:m"))
                                           .otherwise(pl.col("scorer")).alias("scorer"),
                                           pl.when(newest).then(-0.9).otherwise(pl.col("score"))
                                           .alias("score"))) is None
    assert detect_shift(texts.with_columns(pl.when(newest).then(-0.9).otherwise(pl.col("score"))
                                           .alias("score"))) is not None


@pytest.fixture
def reviews_fake():
    """Klaviyo with two reviews a day for 14 weeks: 75% happy until the last week, then 25%."""
    from liftos.fakes.klaviyo import FakeKlaviyo
    from liftos.fakes.world import AdsWorld, KlaviyoWorld

    ads = AdsWorld(start=dt.date(2026, 1, 5), end=dt.date(2026, 4, 12))
    world = KlaviyoWorld(ads, reviews_per_day=6,
                         mood=lambda day: 0.25 if day >= dt.date(2026, 4, 6) else 0.75)
    fake = FakeKlaviyo(world, page_size=50).start()
    yield fake
    fake.stop()


def test_klaviyo_reviews_through_the_sdk_become_scored_texts_once(tmp_path, reviews_fake,
                                                                  capsys, monkeypatch):
    from liftos_app.cli import main

    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KLAVIYO_API_KEY", reviews_fake.api_key)
    command = ["sentiment", "klaviyo", "--tenant", "acme", "--since", "2026-01-05",
               "--until", "2026-04-12", "--base-url", reviews_fake.base_url]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "klaviyo reviews 2026-01-05..2026-04-12: 588 texts: 588 scored (vader-3.3.2)" in out
    assert "sentiment fell to" in out and "the week of 2026-04-06" in out
    texts = load_texts("acme")
    assert set(texts["source"]) == {"klaviyo"} and set(texts["campaign"]) == {"Standing desk"}
    assert texts.filter(pl.col("text").str.starts_with("Terrible."))["label"][0] == "negative"
    pages = [r for r in reviews_fake.requests if r["path"].rstrip("/") == "/api/reviews"]
    assert len(pages) == 12 and "greater-or-equal(created,2026-01-05" in pages[0]["query"]["filter"]
    assert main(command) == 0  # again: the same reviews, stored once
    assert "0 new, 588 updated" in capsys.readouterr().out and load_texts("acme").height == 588
    landed = DataHome().tenant("acme") / "raw" / "klaviyo" / "manifest.jsonl"
    assert len(landed.read_text().splitlines()) == 24  # every page, both runs, kept raw
    assert not (DataHome().tenant("acme") / "quality" / "drift.jsonl").exists()

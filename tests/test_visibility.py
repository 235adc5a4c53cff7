"""Lift Surfacing: the prompt panel asked through the real OpenAI SDK (a local fake model),
answers landed raw, mention rate / first-mention rank / share of voice measured, a drop found;
nothing asked, and nothing made up, without a model."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from support import DEMO_DATA, events, flow_run_id, write_tenant

from liftos.errors import ConfigError
from liftos.signals.visibility import Answer, PromptPanel, load_series, measure
from liftos.tenancy import load_tenant

PANEL = {"brand": "Acme", "competitors": ["Zoom", "Stride"],
         "prompts": [f"Which running shoes should I buy for {need}?" for need in (
             "flat feet", "trails", "a marathon", "winter", "wide feet", "beginners", "speed",
             "the gym", "walking", "a budget")] * 4}


def test_mentions_first_ranks_and_share_of_voice_are_counted_by_whole_words():
    panel = PromptPanel(**PANEL)
    answers = [Answer("q", "Try Acme or Zoom; Zoom is cheaper.", "m"),
               Answer("q", "Zoom runners are best, then STRIDE.", "m"),
               Answer("q", "I like acmeshoes and zoomers.", "m")]  # no whole-word brand
    found = measure(answers, panel, dt.date(2026, 11, 30))
    assert found.mention_rate == {"Acme": 1 / 3, "Zoom": 2 / 3, "Stride": 1 / 3}
    assert found.first_rank == {"Acme": 1.0, "Zoom": 1.5, "Stride": 2.0}
    assert found.share_of_voice == {"Acme": 0.2, "Zoom": 0.6, "Stride": 0.2}
    assert "Acme named in 33% of 3 answers" in found.describe()


@pytest.mark.parametrize("panel, said", [
    ({"brand": " ", "prompts": ["which shoes?"]}, "surfacing.brand"),
    ({"competitors": ["Zoom"], "prompts": ["which shoes?"]}, "surfacing.brand"),
    ({"brand": "Acme", "prompts": []}, "surfacing.prompts")])
def test_a_panel_without_a_brand_or_prompts_is_refused_naming_the_file(tmp_path, panel, said):
    path = write_tenant(tmp_path, "acme", DEMO_DATA, surfacing=panel)
    with pytest.raises(ConfigError) as refused:
        load_tenant(path)
    assert str(path) in str(refused.value) and said in str(refused.value)


class World:
    """A fake assistant: names Acme with the week's probability, the competitors often."""

    def __init__(self) -> None:
        self.acme, self.rng = 0.8, random.Random(7)

    def __call__(self, prompt: str) -> str:
        names = ["Zoom", "Stride"] + (["Acme"] if self.rng.random() < self.acme else [])
        self.rng.shuffle(names)
        return f"For that I'd look at {', '.join(names)}."


@pytest.fixture
def surfacing(tmp_path, monkeypatch, prefect_api):
    folder = tmp_path / "tenants"
    folder.mkdir()
    write_tenant(folder, "acme", DEMO_DATA, surfacing=PANEL)
    monkeypatch.setenv("LIFTOS_TENANTS_DIR", str(folder))
    monkeypatch.setenv("LIFTOS_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.mark.slow
def test_weekly_runs_measure_through_the_sdk_land_raw_and_flag_a_drop(surfacing, monkeypatch):
    from liftos.fakes.openai import FakeOpenAI
    from liftos.home import DataHome
    from liftos_app.flows.visibility import visibility

    world = World()
    fake = FakeOpenAI(api_key="sk-visibility", assistant=world).start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-visibility")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    try:
        weeks = [dt.date(2026, 10, 5) + dt.timedelta(weeks=k) for k in range(6)]
        for k, week in enumerate(weeks):
            world.acme = 0.8 if k < 5 else 0.3
            state = visibility(tenant="acme", week=week, return_state=True)
            assert state.is_completed(), state.message
    finally:
        fake.stop()
    assert len(fake.requests) == 6 * 40
    assert all(r["body"]["messages"][0]["content"] in PANEL["prompts"] for r in fake.requests)
    series = load_series("acme")
    acme = series.filter(series["brand"] == "Acme")
    assert acme["answers"].to_list() == [40] * 6 and acme["mention_rate"][-1] < 0.5
    assert (acme["mention_rate"][:5] > 0.6).all()
    assert (series.filter(series["brand"] == "Zoom")["mention_rate"] == 1.0).all()
    shifted = events("liftos.visibility.shifted", flow_run_id(state))
    assert shifted[0]["payload"]["brand"] == "Acme" and shifted[0]["payload"]["z"] < -3
    from liftos.memory.store import MemoryStore

    first = MemoryStore().search("acme", "AI assistants stopped naming the brand",
                                 kind="anomaly")[0].memory
    assert first.facts["chain"] == shifted[0]["payload"]["chain"] == flow_run_id(state)
    manifest = DataHome().tenant("acme") / "raw" / "visibility" / "manifest.jsonl"
    landed = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(landed) == 240 and landed[-1]["request"] == {"week": "2026-11-09", "prompt": 40}


@pytest.mark.slow
def test_without_a_model_nothing_is_asked_and_nothing_recorded(surfacing):
    from liftos_app.flows.visibility import visibility

    state = visibility(tenant="acme", return_state=True)
    assert state.is_completed() and state.result() is None
    assert load_series("acme").is_empty()


def test_the_cli_measures_one_week_and_without_a_key_asks_nothing(surfacing, monkeypatch,
                                                                   capsys):
    from liftos.fakes.openai import FakeOpenAI
    from liftos_app.cli import main

    assert main(["visibility", "--tenant", "acme"]) == 0
    assert "no model configured" in capsys.readouterr().out
    world = World()
    fake = FakeOpenAI(api_key="sk-cli", assistant=world).start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    try:
        assert main(["visibility", "--tenant", "acme", "--week", "2026-11-30"]) == 0
        assert main(["visibility", "--tenant", "acme", "--week", "30/11/2026"]) == 2
    finally:
        fake.stop()
    out, err = capsys.readouterr()
    assert "week of 2026-11-30: Acme named in" in out and "Zoom: named in 100%" in out
    assert "--week '30/11/2026': expected YYYY-MM-DD" in err

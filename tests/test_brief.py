"""The weekly brief: facts, the grounding check, the deterministic writer, and a model reached
through the real OpenAI SDK on a local fake server that speaks the HTTP API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr
from support import REPO, free_port

from liftos.brief import evalset
from liftos.brief.facts import build_facts
from liftos.brief.grounding import check, numbers
from liftos.brief.llm import LLMSettings, write_brief
from liftos.brief.writer import deterministic_brief
from liftos.config import load_template
from liftos.fakes.openai import FakeOpenAI
from liftos.ingest.retry import RetryPolicy

KEY = "sk-test-0123456789-secret"


@pytest.fixture(scope="module")
def fit_facts(synthetic_fit, tmp_path_factory):
    """Facts of a saved fit, as a refresh that replaced a champion sees them."""
    folder = tmp_path_factory.mktemp("brief") / "fit"
    synthetic_fit.save(folder)
    summary = json.loads((folder / "summary.json").read_text())["channels"]
    run = {"tenant": "acme", "promoted": True, "decision": [],
           "champion_roas": {"search": summary["search"]["roas_mean"] / 1.3,
                             "tv": summary["tv"]["roas_mean"] * 1.5},
           "champion_share": {"email": summary["email"]["share_mean"] - 0.031}}
    return build_facts(folder, "acme", run)


@pytest.fixture
def model():
    fake = FakeOpenAI(api_key=KEY).start()
    yield fake
    fake.stop()


def _write(facts, fake, behaviours, slept=None, timeout=5.0):
    fake.behaviours = list(behaviours)
    settings = LLMSettings(api_key=SecretStr(KEY), base_url=fake.base_url, timeout=timeout)
    policy = RetryPolicy(max_attempts=3, sleep=(slept if slept is not None else []).append)
    return write_brief(facts, settings, policy=policy)


def test_a_grounded_answer_is_published_with_its_call_recorded(fit_facts, model):
    result = _write(fit_facts, model, ["grounded"])
    assert result.source == "model" and result.grounding.ok
    assert result.grounding.claims == len(fit_facts.facts)
    [call] = result.calls
    assert call.outcome == "grounded" and call.prompt_version == "v1"
    assert call.input_tokens > 0 and call.cost_usd > 0 and call.latency_s > 0
    sent = model.requests[0]["body"]
    assert sent["response_format"]["json_schema"]["strict"] is True
    facts_sent = sent["messages"][1]["content"]
    assert "FACTS:" in facts_sent and "posterior" not in facts_sent  # facts, never raw data
    assert "Write in English" in sent["messages"][0]["content"]


@pytest.mark.parametrize("mistake, kind", [
    ("invent_roas", "invented number"), ("wrong_channel", "channel without a fact"),
    ("flip_direction", "direction"), ("percent_points", "percent vs points")])
def test_a_mistake_is_caught_regenerated_once_then_replaced_by_the_deterministic_brief(
        fit_facts, model, mistake, kind):
    fixed = _write(fit_facts, model, [mistake, "grounded"])
    assert fixed.source == "model" and [c.outcome for c in fixed.calls] == ["violations",
                                                                             "grounded"]
    retry = model.requests[-1]["body"]["messages"][-1]["content"]
    assert retry.startswith("Your previous brief was refused") and kind in retry
    failed = _write(fit_facts, model, [mistake, mistake])
    assert failed.source == "deterministic" and failed.grounding.ok
    assert failed.reason.startswith("the model's brief failed the grounding check twice")
    assert kind in failed.reason
    assert failed.markdown == deterministic_brief(fit_facts).markdown()


def test_429_waits_as_retry_after_says_then_publishes(fit_facts, model):
    slept = []
    result = _write(fit_facts, model, ["429:0.4", "grounded"], slept)
    assert result.source == "model" and slept == [0.4]


@pytest.mark.parametrize("behaviours, reason", [
    (["500", "500", "500"], "server error (HTTP 500); gave up after 3 attempts"),
    (["timeout:3"], "timed out; gave up after 3 attempts"),
    (["malformed"], "unusable answer"),
    (["refusal"], "the model refused: I can't help with that."),
])
def test_a_failing_model_leaves_the_deterministic_brief_and_says_why(fit_facts, model,
                                                                    behaviours, reason):
    result = _write(fit_facts, model, behaviours, timeout=1.0)
    assert result.source == "deterministic" and result.grounding.ok
    assert reason in result.reason


def test_no_key_or_a_closed_port_gives_the_deterministic_brief_and_no_secret(fit_facts):
    offline = write_brief(fit_facts, LLMSettings())
    assert offline.source == "deterministic" and offline.reason == "no OpenAI key configured"
    closed = LLMSettings(api_key=SecretStr(KEY), base_url=f"http://127.0.0.1:{free_port()}/v1",
                         timeout=2.0)
    result = write_brief(fit_facts, closed, policy=RetryPolicy(max_attempts=2,
                                                               sleep=lambda s: None))
    assert result.source == "deterministic" and "could not connect" in result.reason
    assert KEY not in result.model_dump_json() and KEY not in result.markdown


def test_a_wrong_key_is_named_without_the_key(fit_facts, model):
    settings = LLMSettings(api_key=SecretStr("sk-wrong-key-abcdef"), base_url=model.base_url)
    result = write_brief(fit_facts, settings)
    assert result.reason == "the model failed: the API key was refused (HTTP 401)"
    assert "sk-wrong-key-abcdef" not in result.model_dump_json()


@pytest.mark.parametrize("template", ["ecommerce", "education", "healthcare"])
def test_the_deterministic_brief_reads_as_sentences_and_is_grounded(template):
    config = load_template(template)
    names = list(config.channels)[:4]
    channels = {c: (1.8 - 0.3 * i, 0.9 - 0.3 * i, 2.6 - 0.2 * i, 0.4 - 0.08 * i)
                for i, c in enumerate(names)}
    if config.kpi.kind == "count":
        channels = {c: (v[0] / 100, v[1] / 100, v[2] / 100, v[3]) for c, v in channels.items()}
    facts = evalset.facts(channels, kpi=config.kpi.name, kind=config.kpi.kind,
                          currency="USD" if config.kpi.kind == "revenue" else "",
                          before={names[0]: channels[names[0]][0] * 0.8},
                          plan={names[0]: (10_000.0, 12_500.0), names[1]: (8_000.0, 6_000.0)},
                          lift=(1_250.0, 400.0, 2_100.0, 0.91))
    brief = deterministic_brief(facts)
    for claim in brief.claims()[1:]:
        assert claim.text[0].isupper() and claim.text.endswith("."), claim.text
        assert "None" not in claim.text and "nan" not in claim.text and "roas." not in claim.text
    assert check([(c.text, c.fact_ids) for c in brief.claims()], facts).ok
    assert config.kpi.name in brief.markdown()


def test_numbers_are_read_in_the_tenants_format():
    assert [(t.value, t.decimals, t.suffix) for t in numbers("Umsatz 1.234,5 €, 8,2 %", "de")] \
        == [(1234.5, 1, ""), (8.2, 1, "%")]
    assert [(t.value, t.suffix) for t in numbers("$6.26 million and 3.1 percentage points")] \
        == [(6.26e6, "money"), (3.1, "pp")]
    assert [t.value for t in numbers("the 94% interval, 78.5 out of 100, on 2025-12-22")] \
        == [78.5]


def test_grounding_holds_numbers_to_the_cited_facts_at_their_rounding(fit_facts):
    roas = fit_facts.get("roas.search")
    ok = f"Paid search returned {roas.shown:.1f} per dollar."
    assert check([(ok, ["roas.search"])], fit_facts).ok
    uncited = check([(ok, ["share.search"])], fit_facts).violations
    assert [v.kind for v in uncited] == ["uncited fact"]
    invented = check([(f"Paid search returned {roas.shown + 0.2:.1f}.", ["roas.search"])],
                     fit_facts).violations
    assert [v.kind for v in invented] == ["invented number"]
    doubled = check([("Paid search ROAS doubled.", ["roas_change.search"])], fit_facts)
    assert [v.kind for v in doubled.violations] == ["direction"]  # up 30%, not doubled
    unknown = check([("Radio did well.", [])], fit_facts,
                    vocabulary={"radio": "radio"}).violations
    assert [v.kind for v in unknown] == ["unknown channel"]


def test_the_eval_set_runs_against_the_fake_model_and_the_templates(model, tmp_path):
    """``liftos brief eval`` through the SDK's own environment variables."""
    env = {**os.environ, "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": model.base_url,
           "LIFTOS_HOME": str(tmp_path)}
    env.pop("LIFTOS_OPENAI_BLOCK", None)
    done = subprocess.run([sys.executable, "-m", "liftos_app.cli", "brief", "eval",
                           "--prompt-version", "v1"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()
            if line.startswith(("templates", "gpt-"))}
    assert rows["templates"][2:4] == ["22/22", "22/22"]
    passed, total = map(int, rows["gpt-4o-mini"][2].split("/"))
    assert total == 22 and 0 < passed < 22   # the one-claim-per-fact model misses some cases
    assert KEY not in done.stdout + done.stderr
    assert len(evalset.CASES) >= 20


def test_the_openai_block_keeps_the_key_secret_and_drives_the_brief(prefect_api, fit_facts,
                                                                      model, monkeypatch):
    from liftos_app.blocks.openai import OpenAICredentials, llm_settings

    OpenAICredentials(api_key=KEY, base_url=model.base_url).save("brief-model", overwrite=True)
    monkeypatch.setenv("LIFTOS_OPENAI_BLOCK", "brief-model")
    settings = llm_settings()
    loaded = OpenAICredentials.load("brief-model")
    assert KEY not in repr(settings) + str(loaded) + json.dumps(loaded.model_dump(mode="json"))
    result = write_brief(fit_facts, settings)
    assert result.source == "model" and model.requests[-1]["authorization"] == f"Bearer {KEY}"

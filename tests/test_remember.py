"""liftos.memory.remember: what a refresh leaves in memory (pure: no store involved)."""

from __future__ import annotations

from liftos.memory.remember import run_memories
from liftos.refresh import RoasShift, RunSummary


def _summary(**extra) -> RunSummary:
    roas = {"search": {"roas_mean": 2.5, "roas_hdi_low": 2.0, "roas_hdi_high": 3.0,
                       "share_mean": 0.6, "contribution_total_mean": 1.0},
            "tv": {"roas_mean": 1.2, "roas_hdi_low": 0.8, "roas_hdi_high": 1.6,
                   "share_mean": 0.4, "contribution_total_mean": 1.0}}
    return RunSummary(tenant="acme", fit_dir="/f", report_path="/f/report.md", roas=roas,
                      diagnostics={}, first_week="2025-01-06", last_week="2025-12-29",
                      template="ecommerce", data_sha256="d", config_hash="c", signature="s",
                      **extra)


def test_one_insight_per_channel_and_one_situation_ranked_best_first():
    memories = run_memories(_summary(), run_id="r1")
    kinds = [m.kind for m in memories]
    assert kinds == ["insight", "insight", "situation"]  # no validation: not validated
    assert memories[-1].text.startswith("Channel efficiency, best to worst: paid search 2.5, ")
    assert "No channel moved outside the champion's interval" in memories[-1].text


def test_a_validated_run_says_whether_it_became_champion_and_changes_are_against_it():
    summary = _summary(trust_score=81.0, promoted=False, decision=("trust score low",),
                       champion_roas={"search": 2.0},
                       shifted=(RoasShift(channel="search", champion_mean=2.0, champion_low=1.9,
                                          champion_high=2.1, roas_mean=2.5),))
    memories = {m.kind + m.channel: m for m in run_memories(summary, run_id="r2")}
    assert "kept out of service: trust score low" in memories["validation"].text
    assert "up 25% vs the champion (2)" in memories["insightsearch"].text
    assert memories["insightsearch"].facts["champion_roas"] == 2.0
    assert "shifted outside the champion's interval for paid search" in memories["situation"].text


def test_the_same_run_remembered_twice_has_the_same_ids():
    assert ([m.id for m in run_memories(_summary(), run_id="r1")]
            == [m.id for m in run_memories(_summary(), run_id="r1")])
    assert (run_memories(_summary(), run_id="r1")[0].id
            != run_memories(_summary(), run_id="r2")[0].id)


def test_a_channel_the_recovery_check_lost_is_remembered_as_not_recoverable():
    why = "on 10 known truths of the model's own form ... median error 51%"
    memories = {m.kind + m.channel: m
                for m in run_memories(_summary(not_recoverable={"search": why}), run_id="r3")}
    text = memories["insightsearch"].text
    assert text.startswith(f"paid search ROAS not recoverable on this spend ({why}; the fit "
                           "said 2.5)")
    assert "94% interval" not in text
    assert memories["insightsearch"].facts["recoverable"] is False
    assert memories["insighttv"].facts["recoverable"] is True

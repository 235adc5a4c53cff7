"""liftos.planning.evaluate: approved plans are held to account once their weeks arrive."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from liftos.planning.audit import DecisionLog
from liftos.planning.evaluate import evaluate_plans, forecast_coverage


def _approved_plan(home, fit_dir: str, first_week: str, horizon: int = 13):
    log = DecisionLog("acme", home)
    proposal = log.append("proposal", {"champion_fit_dir": fit_dir, "first_week": first_week,
                                       "horizon_weeks": horizon, "objective": "expected",
                                       "lift_mean": 1.0})
    return log.append("decision", {"proposal_seq": proposal.seq, "verdict": "approved",
                                   "by": "ana", "weekly": {"tv": 1.0}})


def test_a_plan_whose_weeks_came_out_as_predicted_is_inside(champion_home, synthetic_fit):
    fit_dir = champion_home.champion("acme")["fit_dir"]
    panel = synthetic_fit.panel
    first = str(panel.dates[-13])
    decision = _approved_plan(champion_home, fit_dir, first)
    assert evaluate_plans("acme", panel.window(until=str(panel.dates[-2])),
                          champion_home) == []  # one week still missing
    outcome = evaluate_plans("acme", panel, champion_home)[0].payload
    assert outcome["decision_seq"] == decision.seq and outcome["first_week"] == first
    assert outcome["inside"]
    assert outcome["predicted_low"] <= outcome["observed"] <= outcome["predicted_high"]
    assert evaluate_plans("acme", panel, champion_home) == []  # evaluated once
    assert forecast_coverage(DecisionLog("acme", champion_home).verify()) == (1, 1)


def test_a_kpi_far_from_the_prediction_is_a_miss_with_its_realised_lift(champion_home,
                                                                        synthetic_fit):
    fit_dir = champion_home.champion("acme")["fit_dir"]
    panel = synthetic_fit.panel
    target = panel.target.copy()
    target[:, -13:] *= 1.3
    _approved_plan(champion_home, fit_dir, str(panel.dates[-13]))
    outcome = evaluate_plans("acme", dataclasses.replace(panel, target=target),
                             champion_home)[0].payload
    assert not outcome["inside"] and outcome["observed"] > outcome["predicted_high"]
    # 30% more KPI than the model expects shows up as realised lift the model did not predict
    extra = 0.3 * panel.target[:, -13:].sum()
    assert outcome["realised"] - outcome["predicted_lift_mean"] == pytest.approx(extra, rel=0.05)
    assert np.isfinite(outcome["predicted_lift_low"])

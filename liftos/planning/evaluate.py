"""Holding plans to account: once the weeks an approved plan covered have arrived, compare what
the model that proposed it predicts for the spend that really happened with what was observed.

For each approved decision the model of its proposal (its champion then) is applied to the newest
panel. Over the plan's weeks it predicts the KPI for the realised spend (94% predictive interval,
observation noise included) and for the allocation in force before the plan (the counterfactual).
The outcome records the observed KPI, whether it fell inside the interval, the predicted lift of
the realised spend over the counterfactual, and the realised lift estimate (observed minus the
counterfactual's expected KPI). Over many decisions, the share inside is the coverage of our
decision forecasts: about 94% if the intervals are honest.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from liftos.data import Panel
from liftos.home import DataHome
from liftos.model.results import HDI_PROB, hdi
from liftos.planning.audit import DecisionLog, DecisionRecord

MAX_DRAWS = 500


def evaluate_decision(proposal: DecisionRecord, decision: DecisionRecord, panel: Panel
                      ) -> dict[str, Any] | None:
    """The outcome of one approved plan on ``panel``, or None while its weeks have not all
    arrived."""
    from liftos.model.results import FitResult

    p = proposal.payload
    first, horizon = np.datetime64(p["first_week"], "D"), int(p["horizon_weeks"])
    weeks = np.flatnonzero(panel.dates >= first)[:horizon]
    if len(weeks) < horizon:
        return None
    model = FitResult.load(p["champion_fit_dir"])
    cut = panel.window(until=str(panel.dates[weeks[-1]]))
    realised = model.on_panel(cut)
    before = model.panel.spend[:, -13:, :].mean(axis=1)  # the allocation the plan replaced
    spend = cut.spend.copy()
    spend[:, weeks, :] = before[:, None, :]
    counterfactual = model.on_panel(dataclasses.replace(cut, spend=spend))
    index = model.thinned_index(MAX_DRAWS)
    base = realised.baseline(index)
    contrib, contrib_cf = realised.contributions(index), counterfactual.contributions(index)
    predicted = realised.predictive(index, base=base, contrib=contrib)[:, :, weeks].sum(axis=(1, 2))
    low, high = hdi(predicted, HDI_PROB)
    lift = (contrib - contrib_cf)[:, :, weeks, :].sum(axis=(1, 2, 3))
    lift_low, lift_high = hdi(lift, HDI_PROB)
    observed = float(cut.target[:, weeks].sum())
    expected_cf = float((base + contrib_cf.sum(axis=-1))[:, :, weeks].sum(axis=(1, 2)).mean())
    return {"decision_seq": decision.seq, "proposal_seq": proposal.seq,
            "first_week": str(cut.dates[weeks[0]]), "last_week": str(cut.dates[weeks[-1]]),
            "observed": observed, "predicted_mean": float(predicted.mean()),
            "predicted_low": float(low), "predicted_high": float(high),
            "inside": bool(low <= observed <= high),
            "predicted_lift_mean": float(lift.mean()), "predicted_lift_low": float(lift_low),
            "predicted_lift_high": float(lift_high), "realised": observed - expected_cf,
            "realised_spend": float(cut.spend[:, weeks].sum()),
            "planned_spend": float(sum(decision.payload["weekly"].values()) * horizon)}


def evaluate_plans(tenant: str, panel: Panel, home: DataHome | None = None
                   ) -> list[DecisionRecord]:
    """Evaluate every approved plan whose weeks have arrived and that has no outcome yet; each
    outcome is appended to the audit. Returns the new outcome records."""
    log = DecisionLog(tenant, home)
    records = log.verify()
    by_seq = {r.seq: r for r in records}
    done = {r.payload["decision_seq"] for r in records if r.kind == "outcome"}
    outcomes = []
    for record in records:
        if (record.kind != "decision" or record.payload.get("verdict") != "approved"
                or record.seq in done):
            continue
        proposal = by_seq[record.payload["proposal_seq"]]
        outcome = evaluate_decision(proposal, record, panel)
        if outcome is not None:
            outcomes.append(log.append("outcome", outcome))
    return outcomes


def forecast_coverage(records: list[DecisionRecord]) -> tuple[int, int]:
    """(outcomes inside their 94% interval, outcomes) over the tenant's audit."""
    outcomes = [r for r in records if r.kind == "outcome"]
    return sum(r.payload["inside"] for r in outcomes), len(outcomes)

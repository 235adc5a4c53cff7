"""liftos.monitor on a posterior built without sampling: the interval check and the spend-shift
check, in milliseconds (the flow-level monitor tests fit a real model)."""

from __future__ import annotations

import dataclasses

import numpy as np

from liftos.monitor import Thresholds, check_latest_week


def _with_last_week(panel, kpi_factor: float = 1.0, spend: dict[str, float] | None = None):
    target = panel.target.copy()
    target[:, -1] *= kpi_factor
    values = panel.spend.copy()
    for channel, factor in (spend or {}).items():
        values[:, -1, panel.channels.index(channel)] *= factor
    return dataclasses.replace(panel, target=target, spend=values)


def test_the_week_the_model_expects_raises_nothing(synthetic_fit):
    check = check_latest_week(synthetic_fit, synthetic_fit.panel, tenant="acme")
    assert check.kpi_low <= check.kpi_actual <= check.kpi_high
    assert not [a for a in check.anomalies if a.startswith("kpi")] and check.in_sample
    assert abs(check.kpi_expected - check.kpi_actual) / check.kpi_actual < 0.02


def test_a_kpi_far_above_the_interval_is_an_anomaly(synthetic_fit):
    check = check_latest_week(synthetic_fit, _with_last_week(synthetic_fit.panel, 1.5))
    assert check.outside_interval and check.anomalies[0] == "kpi_above_interval"
    below = check_latest_week(synthetic_fit, _with_last_week(synthetic_fit.panel, 0.5))
    assert below.anomalies[0] == "kpi_below_interval"


def test_a_material_spend_shift_is_named_with_its_kpi_impact(synthetic_fit):
    before = check_latest_week(synthetic_fit, synthetic_fit.panel, Thresholds(spend_change=0.5))
    assert "spend_shift:search" not in before.anomalies
    panel = _with_last_week(synthetic_fit.panel, spend={"search": 4.0})
    check = check_latest_week(synthetic_fit, panel, Thresholds(spend_change=0.5))
    move = {m.channel: m for m in check.moves}["search"]
    assert move.change > 2.0 and move.kpi_impact_mean > 0 and move.material
    assert "spend_shift:search" in check.anomalies
    small = [m for m in check.moves if abs(m.change) < 0.5]
    assert small and all(not m.material and m.kpi_impact_mean == 0.0 for m in small)
    assert np.isfinite(check.kpi_expected)

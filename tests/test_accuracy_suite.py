"""The accuracy suite's generator (bench/accuracy_suite.py): a fixed, varied set of panels
whose stated truth is what the panel's media actually did."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from support import REPO

sys.path.insert(0, str(REPO / "bench"))
from accuracy_suite import (
    FAMILIES,
    _carry,
    _saturate,
    generate,
    recipe,
    suite,
)


def test_the_suite_spans_what_the_issue_asks_for():
    scenarios = suite()
    assert len(scenarios) >= 30 and {s.family for s in scenarios} == set(FAMILIES)
    assert min(s.channels for s in scenarios) == 2 and max(s.channels for s in scenarios) == 10
    assert all(104 <= s.weeks <= 208 for s in scenarios)
    assert all(0.03 <= s.noise <= 0.10 for s in scenarios)
    foreign = [s for s in scenarios if s.family == "foreign"]
    assert all(a["form"] == "delayed" for s in foreign for a in s.adstock)
    assert all(z["form"] in {"exponential", "tanh"} for s in foreign for z in s.saturation)
    assert all(s.level_break and s.walk for s in scenarios if s.family == "shifting")


def test_a_panel_is_the_same_every_time_and_its_truth_is_its_media_over_its_spend():
    scenario = recipe("flighted", 2)
    first, again = generate(scenario), generate(recipe("flighted", 2))
    assert first.frame.equals(again.frame) and first.truth == again.truth
    frame = first.frame
    assert (frame[first.channels] == 0).any().all()  # flights: weeks with no spend
    for c, channel in enumerate(first.channels):
        shape = _saturate(_carry(frame[channel].to_numpy(), scenario.adstock[c]),
                          scenario.saturation[c])
        # the contribution is that shape scaled to the recipe's ROAS on the unrounded spend
        assert first.truth[channel] == pytest.approx(scenario.roas[c], rel=1e-3)
        assert np.corrcoef(shape, frame[channel])[0, 1] > 0.5


def test_correlated_panels_move_their_channels_together():
    panel = generate(recipe("correlated", 1))
    logs = np.log(panel.frame[panel.channels].to_numpy())
    pairs = np.corrcoef(logs.T)[np.triu_indices(len(panel.channels), 1)]
    assert pairs.mean() > 0.5


def test_the_bound_is_told_the_response_the_truth_was_made_from():
    """``known_shapes`` regresses on ``Panel.response``: each channel's weekly contribution per
    unit of ROAS, so response x recipe ROAS summed over weeks is the stated truth x spend."""
    from accuracy_suite import known_shapes

    panel = generate(recipe("wide", 1))
    spend = panel.frame[panel.channels].to_numpy().sum(axis=0)
    made = panel.response.sum(axis=0) * np.array(panel.scenario.roas)
    assert made == pytest.approx([panel.truth[c] * s for c, s in zip(panel.channels, spend,
                                                                    strict=True)], rel=1e-9)
    bound = known_shapes(panel)["roas"]
    assert all(low < estimate < high for estimate, low, high in bound.values())

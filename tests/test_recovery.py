"""The recovery check: known truths on the tenant's own spend, refitted and scored."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from liftos.config import RecoveryThresholds
from liftos.validation.recovery import (
    FAMILIES,
    Recovery,
    RecoveryOptions,
    _cached,
    replica,
    shape_digest,
    summarize,
)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_replica_prices_the_tenants_own_spend_at_its_true_roas(synthetic_fit, family):
    drawn = replica(synthetic_fit, 3, family, seed=11)
    panel = synthetic_fit.panel
    assert np.array_equal(drawn.panel.spend, panel.spend)
    assert np.array_equal(drawn.panel.control_values, panel.control_values)
    fitted = synthetic_fit.roas_draws().mean(axis=0)
    for c, name in enumerate(panel.channels):
        priced = drawn.media[:, :, c].sum() / panel.spend[:, :, c].sum()
        assert priced == pytest.approx(drawn.truth[name], rel=1e-9)
        low, high = synthetic_fit.spec.template.channel(name).roas_bounds
        assert low <= drawn.truth[name] <= high
        assert fitted[c] / 3 - 1e-9 <= drawn.truth[name] <= fitted[c] * 3 + 1e-9
    assert not np.allclose(drawn.panel.target, panel.target)
    assert (drawn.panel.target > 0).all()
    other = replica(synthetic_fit, 4, family, seed=11)
    assert other.truth != drawn.truth


def _scored(channels, estimate, inside=True):
    """Replica results where each channel's estimate is ``estimate(truth)``."""
    out = []
    for k in range(20):
        rows = {}
        for name in channels:
            truth = 1.0 + 0.1 * k
            mean = estimate(name, truth)
            width = 0.3 if inside else 0.01
            rows[name] = {"truth": truth, "mean": mean, "low": mean - width * mean,
                          "high": mean + width * mean}
        out.append({"family": FAMILIES[k % 2], "channels": rows})
    return out


def test_a_biased_channel_is_named_not_recoverable_with_the_direction_it_is_wrong(
        synthetic_fit):
    channels = synthetic_fit.panel.channels
    scored = _scored(channels, lambda name, truth: truth * (1.6 if name == "search" else 1.02),
                     inside=False)
    found = summarize(synthetic_fit, scored, "shape", RecoveryThresholds(), 1.0)
    lost = {c.channel: c for c in found.unrecoverable}
    assert set(lost) == {"search"}
    assert "overestimated by 60%" in lost["search"].reason
    assert "inside the 94% interval 0% of the time" in lost["search"].reason
    assert found.median_error == pytest.approx(0.02, abs=1e-9)


def test_overconfident_but_close_stays_recoverable_wide_and_right_too(synthetic_fit):
    """Coverage alone does not condemn a channel: 8% off with too-narrow intervals is usable;
    40% off inside honest wide intervals is too. 60% off is not, whatever the intervals."""
    channels = synthetic_fit.panel.channels
    close = summarize(synthetic_fit, _scored(channels, lambda n, t: t * 1.08, inside=False),
                      "shape", RecoveryThresholds(), 1.0)
    assert not close.unrecoverable and close.coverage == 0.0
    assert close.refusal().startswith("recovery coverage 0% of known truths")
    wide = summarize(synthetic_fit, _scored(channels, lambda n, t: t * 1.4 if n == "tv" else t),
                     "shape", RecoveryThresholds(), 1.0)
    assert not wide.unrecoverable
    far = summarize(synthetic_fit, _scored(channels, lambda n, t: t * 1.6 if n == "tv" else t),
                    "shape", RecoveryThresholds(), 1.0)
    assert [c.channel for c in far.unrecoverable] == ["tv"]


def test_a_channel_whose_spend_never_varies_is_not_recoverable(synthetic_fit):
    spend = synthetic_fit.panel.spend.copy()
    spend[:, :, 1] = 5_000.0
    flat = dataclasses.replace(synthetic_fit,
                               panel=dataclasses.replace(synthetic_fit.panel, spend=spend))
    scored = _scored(flat.panel.channels, lambda name, truth: truth)
    found = summarize(flat, scored, "shape", RecoveryThresholds(), 1.0)
    assert [c.channel for c in found.unrecoverable] == [flat.panel.channels[1]]
    assert "weekly spend hardly varies" in found.unrecoverable[0].reason


def test_the_gate_refuses_a_challenger_its_recovery_condemns_at_the_templates_limits(
        synthetic_fit):
    from liftos.validation.trust import champion_decision

    def decide(factor: float, thresholds: RecoveryThresholds):
        scored = _scored(synthetic_fit.panel.channels, lambda n, t: t * factor, inside=False)
        found = summarize(synthetic_fit, scored, "shape", thresholds, 1.0)
        return champion_decision({"trust": {"score": 90.0}, "checks": [],
                                  "recovery": found.model_dump(mode="json")}, None)

    narrow = decide(1.2, RecoveryThresholds())  # 20% off, intervals that never hold the truth
    assert not narrow.promote
    assert narrow.reasons == [("recovery coverage 0% of known truths inside the 94% interval is "
                              "below 75%: the model's intervals are not to be trusted on this "
                              "tenant's spend")]
    assert decide(1.2, RecoveryThresholds(min_coverage=0.0)).promote
    far = decide(1.3, RecoveryThresholds())   # 30% off and never covered: nothing recoverable
    assert far.reasons == ["no channel's ROAS is recoverable on this tenant's spend"]
    assert decide(1.3, RecoveryThresholds(min_coverage=0.0, max_median_error=0.5)).promote


def test_a_cached_recovery_serves_its_shape_until_the_data_grew_a_quarter(synthetic_fit,
                                                                           tmp_path):
    from liftos.home import write_json

    options = RecoveryOptions()
    shape = shape_digest(synthetic_fit, options)
    found = summarize(synthetic_fit, _scored(synthetic_fit.panel.channels, lambda n, t: t),
                      shape, RecoveryThresholds(), 1.0)
    write_json(tmp_path / f"{shape}.json", found.model_dump(mode="json"))
    weeks = synthetic_fit.panel.n_weeks
    assert isinstance(_cached(tmp_path, shape, weeks + 12, options), Recovery)
    assert _cached(tmp_path, shape, weeks + 13, options) is None
    fewer = dataclasses.replace(synthetic_fit, spec=dataclasses.replace(
        synthetic_fit.spec, channels=synthetic_fit.spec.channels[:-1]))
    assert shape_digest(fewer, options) != shape
    assert shape_digest(synthetic_fit, RecoveryOptions(replicas=10)) != shape
    assert shape_digest(synthetic_fit, RecoveryOptions(max_age_weeks=4)) == shape


@pytest.mark.slow
def test_on_the_demo_data_recovery_finds_that_search_is_not_recoverable(demo_panel, tmp_path):
    """The bundled demo's fit puts search at ~1.5 against a true 2.52, scored trust 89 and was
    promoted before this check existed. On truths of the model's own form drawn on the demo's
    own spend, search comes back typically >40% off: the card must say so, not print a ROAS."""
    from liftos.model import mmm
    from liftos.model.options import FitOptions
    from liftos.model.spec import ModelSpec
    from liftos.validation.card import recovery_lines
    from liftos.validation.recovery import recovery

    panel, template = demo_panel
    spec = ModelSpec(template, tuple(panel.channels), tuple(panel.controls), "revenue")
    fit = mmm.fit(panel, spec, FitOptions(draws=500, tune=500, chains=2, seed=1, progress=False))
    options = RecoveryOptions()  # the product's: 20 replicas, half of the model's own form
    found = recovery(fit, options, cache=tmp_path)
    lost = {c.channel: c for c in found.unrecoverable}
    assert set(lost) == {"search"}, [(c.channel, c.own_median_error) for c in found.channels]
    assert lost["search"].own_median_error > 0.4
    assert found.refusal() is None  # the channels it does report pass: search is flagged, the
    #                                 model is not thrown away
    assert any(line.startswith("| search |") and "**not recoverable**" in line
               for line in recovery_lines(found.model_dump(mode="json")))
    again = recovery(fit, options, cache=tmp_path)
    assert again.cached and again.rows == found.rows

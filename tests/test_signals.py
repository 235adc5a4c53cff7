"""Signals as controls of the model: the weekly sentiment index joins the tenant's panel (weeks
without texts take its mean, too few weeks is a clear error), and a true effect of sentiment on
the KPI is recovered with an interval; where sentiment has no effect, the interval holds zero."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from support import write_tenant

from liftos.errors import InputError
from liftos.home import DataHome

HAPPY = ("Love it, works great", "Excellent quality, very happy", "Great service again")
ANGRY = ("Terrible, broke after a day", "Awful support, very disappointed", "Bad, I want a refund")
# Revenue per unit of the index. The posterior's 94% interval is ~90,000 wide here: at 60,000
# its lower end sat at 4,000-6,000 (4 chains x 1000 draws), inside the Monte Carlo noise of a
# 2 x 300 test fit, which put it on either side of zero from one seed or setting to the next.
TRUE_EFFECT = 90_000.0


def _texts(dates, moods, per_week: int = 40, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for monday, happy in zip(dates, moods, strict=True):
        for k in range(per_week):
            pool = HAPPY if rng.random() < happy else ANGRY
            rows.append({"date": str(monday + dt.timedelta(days=int(rng.integers(0, 7)))),
                         "text": f"{pool[int(rng.integers(0, 3))]} #{monday}-{k}"})
    return pl.DataFrame(rows)


def _tenant(tmp_path, effect: float, weeks_with_texts: int | None = None):
    """Simulated ecommerce data whose revenue moves with the weekly sentiment index by
    ``effect`` per unit; the texts behind the index ingested; a tenant using the signal."""
    from liftos.config import load_template
    from liftos.signals.sentiment import ingest_texts, load_texts, weekly_index
    from liftos.simulate import simulate
    from liftos.tenancy import load_tenant

    home = DataHome(tmp_path / "home")
    template = load_template("ecommerce")
    channels = ["search", "social", "display", "email", "tv"]
    data, _ = simulate(template, weeks=104, seed=2, channels=channels).write(tmp_path / "sim")
    frame = pl.read_csv(data, try_parse_dates=True)
    dates = frame["date"].to_list()
    rng = np.random.default_rng(5)
    moods = np.clip(0.6 + np.cumsum(rng.normal(0, 0.08, len(dates))), 0.1, 0.95)
    keep = slice(None) if weeks_with_texts is None else slice(0, weeks_with_texts)
    _texts(dates[keep], moods[keep]).write_csv(tmp_path / "texts.csv")
    ingest_texts(tmp_path / "texts.csv", "acme", home, today=dt.date(2026, 11, 30))
    index = weekly_index(load_texts("acme", home))
    by_week = dict(zip(index["week"].to_list(), index["index"].to_list(), strict=True))
    signal = np.array([by_week.get(d, 0.0) for d in dates])
    frame.with_columns(pl.col("revenue") + effect * pl.Series(signal)).write_csv(data)
    path = write_tenant(tmp_path, "acme", data, signals=["sentiment"])
    return load_tenant(path), home, signal


def test_the_index_joins_the_panel_and_too_few_weeks_is_named(tmp_path):
    from liftos.data import load_panel
    from liftos.signals import with_signals

    tenant, home, signal = _tenant(tmp_path, effect=0.0, weeks_with_texts=30)
    panel = load_panel(tenant.data_path, tenant.columns)
    joined = with_signals(panel, tenant, home)
    assert joined.controls == [*panel.controls, "sentiment"]
    values = joined.control_values[0, :, -1]
    assert np.allclose(values[:30], signal[:30])
    assert np.allclose(values[30:], signal[:30].mean())
    assert "sentiment: 74 of 104 weeks without the signal took its mean" in joined.notes
    assert tenant.model_controls == ("price_index", "promo", "sentiment")
    short = panel.window(last_weeks=104)
    from liftos.signals.sentiment import table_path

    table_path(home, "acme").unlink()
    with pytest.raises(InputError) as refused:
        with_signals(short, tenant, home)
    said = str(refused.value)
    assert "only 0 of its 104 weeks have it" in said and "[rule: signal_coverage]" in said
    assert str(tenant.config_source) in said and "liftos sentiment ingest" in said


@pytest.mark.slow
@pytest.mark.parametrize("effect", [TRUE_EFFECT, 0.0])
def test_a_true_effect_of_sentiment_is_recovered_and_no_effect_holds_zero(tmp_path, effect):
    from liftos import refresh
    from liftos.model.options import ModelOptions

    tenant, home, _ = _tenant(tmp_path, effect=effect)
    ref = refresh.tenant_ref(tenant, home)
    landed = refresh.land_input(ref)
    assert landed.signals_sha256
    features = refresh.build_features(refresh.validate_input(landed))
    fitted = refresh.fit_model(features, ModelOptions(draws=300, tune=300, chains=2, seed=1))
    import json
    from pathlib import Path

    summary = json.loads((Path(fitted.fit_dir) / "summary.json").read_text())
    sentiment = summary["controls"]["sentiment"]
    low, high = sentiment["effect_per_unit_hdi_low"], sentiment["effect_per_unit_hdi_high"]
    assert low <= effect <= high, sentiment
    assert (low > 0) == (effect > 0), sentiment  # a real effect excludes zero; none holds it


@pytest.mark.slow
@pytest.mark.parametrize("effect", [TRUE_EFFECT, 0.0])
def test_the_impact_flow_prices_a_drop_and_remembers_the_chain(tmp_path, monkeypatch,
                                                             prefect_api, effect):
    """As the automation starts it: a drop of 0.3 in the index. Where revenue truly moves
    90,000 per unit, the impact's interval holds the true -27,000 and excludes zero, and
    ``liftos.signal.impact`` goes on; where sentiment does nothing, no event."""
    from support import events, flow_run_id

    from liftos.memory.store import MemoryStore
    from liftos.model.options import ModelOptions
    from liftos_app.flows.impact import signal_impact

    _, home, _ = _tenant(tmp_path, effect=effect)
    monkeypatch.setenv("LIFTOS_TENANTS_DIR", str(tmp_path))
    monkeypatch.setenv("LIFTOS_HOME", str(home.root))
    state = signal_impact(tenant="acme", signal="sentiment", size="-0.3", week="2025-12-29",
                          chain="chain-7", options=ModelOptions(draws=300, tune=300, chains=2,
                                                                seed=1),
                          return_state=True)
    assert state.is_completed(), state.message
    found = state.result()
    assert found.low <= -0.3 * effect <= found.high and found.material == (effect > 0)
    run_id = flow_run_id(state)
    impact = events("liftos.signal.impact", run_id, minimum=1 if effect else 0)
    assert len(impact) == (1 if effect else 0)
    if effect:
        assert impact[0]["payload"]["chain"] == "chain-7"
        assert impact[0]["resource"]["liftos.propose-plan"] == "false"
    remembered = MemoryStore().search("acme", "what did the sentiment drop do to revenue",
                                      kind="insight")
    assert remembered[0].memory.facts["chain"] == "chain-7"
    assert remembered[0].memory.facts["material"] == (effect > 0)

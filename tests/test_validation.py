"""Causal validation and trust: placebo, misspecification, lift-test calibration, the gate."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import polars as pl
import pytest
from support import BUNDLED_DATA

from liftos.config import load_template
from liftos.data import ColumnSpec, load_panel
from liftos.model import mmm
from liftos.model.options import FitOptions
from liftos.model.spec import ModelSpec
from liftos.simulate import simulate
from liftos.validation.checks import variance_inflation
from liftos.validation.lift import LiftTest, lift_agreement
from liftos.validation.outofsample import crps, rolling_origins
from liftos.validation.recovery import RecoveryOptions
from liftos.validation.runner import ValidationOptions, load_validation, validate
from liftos.validation.trust import champion_decision, trust_score

CHANNELS = ("search", "social", "tv")
OPTIONS = FitOptions(draws=500, tune=500, chains=2, progress=False)
OFF = RecoveryOptions(replicas=0)  # the recovery check has its own tests (test_recovery.py)


def _fit_simulation(tmp_path, template, fit_template=None, seed=3):
    sim = simulate(template, weeks=104, seed=seed, channels=list(CHANNELS))
    data, _ = sim.write(tmp_path / "data")
    panel = load_panel(data, ColumnSpec("date", "revenue", CHANNELS, tuple(template.controls)))
    spec = ModelSpec(fit_template or template, CHANNELS, tuple(template.controls), "revenue")
    return mmm.fit(panel, spec, OPTIONS)


@pytest.mark.slow
def test_placebo_gets_almost_nothing_and_validation_is_saved(tmp_path):
    result = _fit_simulation(tmp_path, load_template("ecommerce"), seed=2)
    result.save(tmp_path / "fit")
    validation = validate(tmp_path / "fit", ValidationOptions(holdout_weeks=8, recovery=OFF))
    assert validation.placebo_share < 0.02
    refuted = {c.name: c for c in validation.checks if c.group == "refutation"}
    shuffled = next(c for name, c in refuted.items() if name.startswith("time-shuffled"))
    assert shuffled.value < 0.5  # permuting the strongest channel destroys most of its share
    assert refuted["ROAS stable on shifted 80% windows"].value >= 2 / 3
    assert refuted["confounder robustness value (weakest channel)"].value > 0
    assert set(validation.refutations["twin_truth"]) == set(CHANNELS)
    assert 0 <= validation.trust.score <= 100
    assert set(validation.trust.components) == {"convergence", "fit", "calibration",
                                                "plausibility", "refutation"}
    saved = load_validation(tmp_path / "fit")
    assert saved["trust"]["score"] == validation.trust.score
    assert {c["name"] for c in saved["checks"]} >= {"r-hat", "divergences", "holdout MAPE",
                                                    "placebo share of media contribution"}


@pytest.mark.slow
def test_validate_command_with_lift_tests(tmp_path, capsys):
    from liftos_app.cli import main

    result = _fit_simulation(tmp_path, load_template("ecommerce"), seed=2)
    result.save(tmp_path / "fit")
    tests = tmp_path / "lift.yaml"
    tests.write_text("- {channel: tv, start: '2024-03-04', end: '2024-04-22', lift: 1.0e9, "
                     "se: 1.0e7, name: impossible}\n")
    assert main(["validate", str(tmp_path / "fit"), "--no-placebo", "--no-refutations",
                 "--holdout-weeks", "4", "--folds", "2",
                 "--draws", "100", "--recovery-replicas", "0", "--lift-tests", str(tests)]) == 0
    out = capsys.readouterr().out
    assert "NO  calibration  lift tests inside the model's predicted interval" in out
    assert "trust score" in out
    saved = load_validation(tmp_path / "fit")
    assert saved["lift_tests"][0]["contains"] is False
    assert [f["horizon"] for f in saved["backtest"]] == [4, 4]
    assert saved["backtest"][0]["origin"] < saved["backtest"][1]["origin"]
    assert "rolling-origin backtest MAPE (2 folds)" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {channel: tv}\n")
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "fit"), "--lift-tests", str(bad)]) == 2
    assert f"{bad}, column 'start', line 1: Field required [rule: lift_test]" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_a_model_without_carry_over_scores_lower_on_carry_over_data(tmp_path):
    strong = {"channels": {c: {"adstock": {"type": "geometric", "max_lag": 10, "priors": {
        "alpha": {"dist": "Beta", "alpha": 8, "beta": 3}}}} for c in CHANNELS}}
    truth_template = load_template("ecommerce", strong)
    none = {"channels": {c: {"adstock": {"type": "geometric", "max_lag": 1}} for c in CHANNELS}}
    scores = {}
    for label, template in (("right", truth_template),
                            ("no adstock", load_template("ecommerce", none))):
        result = _fit_simulation(tmp_path / label, truth_template, template)
        result.save(tmp_path / label / "fit")
        scores[label] = validate(tmp_path / label / "fit",
                                 ValidationOptions(placebo=False, refutations=False,
                                                   recovery=OFF))
    # The checks that judge the model, not the sampler: on a CPU where the right model's two
    # short chains reached r-hat 1.04 (convergence 61-63 vs 83), its whole score (75-76) was
    # within 5 of the wrong one's (72.5) while fit and calibration still told them apart by 14.
    # Measured there: right 81.8 (holdout MAPE 2.8%), no adstock 67.4.
    judged = {label: trust_score([c for c in v.checks if c.group != "convergence"]).score
              for label, v in scores.items()}
    assert judged["no adstock"] < judged["right"] - 5, judged
    assert scores["no adstock"].holdout.mape > scores["right"].holdout.mape


@pytest.mark.slow
def test_a_lift_test_halves_the_confounded_channels_roas_error(tmp_path, capsys):
    """Through the product: `liftos fit --lift-tests FILE` (a third experiment, after the data
    ends, is noted and not used)."""
    from liftos.model.results import FitResult
    from liftos_app.cli import main

    frame = pl.read_csv(BUNDLED_DATA / "mmm_roas_data.csv")
    truth = {k: float((frame["y"] - frame[f"y0{i}"]).sum() / frame[k].sum())
             for i, k in ((1, "x1"), (2, "x2"))}
    path = tmp_path / "roas.csv"
    frame.select("date", "x1", "x2", "y").write_csv(path)  # the confounder z is dropped
    panel = load_panel(path, ColumnSpec("date", "y", ("x1", "x2"), ()))
    spec = ModelSpec(load_template("generic"), ("x1", "x2"), (), "y")
    dates = frame["date"].to_list()
    tests = []
    for start in (40, 80):  # two 8-week experiments on x1, 10% standard error
        lift = float((frame["y"] - frame["y01"])[start:start + 8].sum())
        tests.append(LiftTest(channel="x1", start=dates[start], end=dates[start + 7], lift=lift,
                              se=0.1 * lift, name=f"geo test {start}"))
    later = LiftTest(channel="x1", start="2031-01-06", end="2031-02-24", lift=1.0, se=1.0,
                     name="next year")
    experiments = tmp_path / "experiments.csv"
    pl.DataFrame([t.model_dump() for t in (*tests, later)]).write_csv(experiments)
    plain = mmm.fit(panel, spec, OPTIONS)
    assert main(["fit", str(path), "--date-column", "date", "--target", "y", "--channels",
                 "x1,x2", "--draws", "500", "--tune", "500", "--chains", "2", "--no-progress",
                 "--lift-tests", str(experiments), "--out", str(tmp_path / "calibrated")]) == 0
    assert ("note: lift test next year (x1, 2031-01-06 to 2031-02-24) is outside the data's "
            "weeks: not used") in capsys.readouterr().err
    calibrated = FitResult.load(tmp_path / "calibrated")
    assert calibrated.spec.calibrations == tuple(t.calibration() for t in tests)
    report = (tmp_path / "calibrated" / "report.md").read_text()
    assert "calibrated on 2 measurement(s)" in report
    row = next(line for line in report.splitlines() if line.startswith("| geo test 40 | x1 |"))
    assert f"{tests[0].lift:,.0f} (± {tests[0].se:,.0f})" in row, row
    assert "Note: lift test next year (x1, 2031-01-06 to 2031-02-24) is outside" in report
    error = {label: abs(r.summary()["channels"]["x1"]["roas_mean"] / truth["x1"] - 1)
             for label, r in (("plain", plain), ("calibrated", calibrated))}
    # Measured 2026-12-01: +99% uncalibrated, +46% with one 8-week test, +28% with these two.
    assert error["calibrated"] <= 0.5 * error["plain"], error
    agreement = lift_agreement(plain, tests)
    assert not any(a.contains for a in agreement)  # the confounded model over-predicts both
    assert all(a.predicted_low > a.test.lift for a in agreement)


class _Submitted:
    """What ``submit_refits`` asked to run (the refits themselves are not run here)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def result(self):
        return self.args[0]


def test_refits_of_a_calibrated_fit_keep_only_the_lift_tests_they_can_match(synthetic_fit):
    """A refit on fewer weeks keeps the experiments inside its weeks; a refit whose KPI or
    spend is not the real one (twin, recovery replicas, the shuffled channel) keeps none of
    what was measured in the real world; the placebo refit keeps all."""
    from liftos.model.spec import Calibration
    from liftos.validation.runner import submit_refits

    dates = [str(d) for d in synthetic_fit.panel.dates]
    shares = synthetic_fit.summary()["channels"]
    strongest = max(shares, key=lambda c: shares[c]["share_mean"])
    other = next(c for c in synthetic_fit.spec.channels if c != strongest)
    early = Calibration(other, 1000.0, 100.0, dates[10], dates[17], "early test")
    late = Calibration(other, 1000.0, 100.0, dates[-4], dates[-1], "test in the holdout weeks")
    shuffled = Calibration(strongest, 1000.0, 100.0, dates[20], dates[27], "strongest's test")
    result = dataclasses.replace(synthetic_fit, spec=dataclasses.replace(
        synthetic_fit.spec, calibrations=(early, late, shuffled)))
    jobs = submit_refits(result, ValidationOptions(holdout_weeks=8, backtest_folds=2,
                                                   recovery=RecoveryOptions(replicas=2)),
                         _Submitted)

    def kept(job) -> tuple:
        return job.args[1].calibrations

    assert kept(jobs["holdout"]) == (early, shuffled)
    assert kept(jobs["placebo"]) == (early, late, shuffled)
    assert kept(jobs["shuffle"]) == (early, late)
    assert kept(jobs["twin"]) == ()
    assert [kept(job) for job in jobs["recovery"].jobs] == [(), ()]
    for name in ("fold0", "fold1", "window0", "window1"):
        weeks = jobs[name].args[0].dates
        assert kept(jobs[name]) == tuple(
            c for c in (early, late, shuffled)
            if weeks.min() <= np.datetime64(c.start) and np.datetime64(c.end) <= weeks.max())
    assert late not in kept(jobs["fold1"])


def _validation(score: float, divergences: int = 0, mape: float | None = 0.05) -> dict:
    return {"trust": {"score": score}, "holdout": {"mape": mape} if mape is not None else None,
            "checks": [{"name": "divergences", "value": float(divergences)}]}


def test_champion_stays_when_the_challenger_is_worse_out_of_sample():
    decision = champion_decision(_validation(85, mape=0.09), _validation(80, mape=0.05))
    assert not decision.promote and "worse than the champion" in decision.reasons[0]
    assert champion_decision(_validation(85, mape=0.052), _validation(80, mape=0.05)).promote


def test_a_run_with_divergences_or_low_trust_cannot_become_champion():
    decision = champion_decision(_validation(95, divergences=3), None)
    assert not decision.promote and "divergent" in decision.reasons[0]
    decision = champion_decision(_validation(55), None)
    assert not decision.promote and "below the threshold" in decision.reasons[0]
    assert champion_decision(_validation(75), None).promote


@pytest.mark.slow
def test_a_really_divergent_fit_is_refused_by_the_gate_at_its_real_threshold(tmp_path):
    """A real fit that diverges (15 tuning steps at NUTS's usual 0.8 target; at LiftOS's 0.9
    this one does not), validated as a refresh does, and gated with the product's threshold:
    refused, and the reason cites its divergences."""
    from liftos.fitting import FitRequest, fit_and_save
    from liftos.refresh import gate

    request = FitRequest(data=BUNDLED_DATA / "mmm_example.csv", date_column="date_week",
                         target="y", channels=("x1", "x2"), controls=("event_1", "event_2"),
                         options=FitOptions(draws=200, tune=15, chains=2, progress=False,
                                            target_accept=0.8))
    result = fit_and_save(request, tmp_path / "fit", report=False)
    divergences = result.summary()["diagnostics"]["divergences"]
    assert divergences > 0
    validate(tmp_path / "fit", ValidationOptions(draws=100, tune=100, refutations=False,
                                                 recovery=OFF))
    promoted, reasons = gate(load_validation(tmp_path / "fit"), None, True, None)
    assert not promoted
    assert f"{divergences:.0f} divergent transitions: the posterior is unreliable" in reasons


def test_trust_score_is_the_weighted_mean_of_group_scores():
    from liftos.validation.checks import Check

    checks = [Check(name="a", group="convergence", value=1, threshold="", passed=True, score=1.0),
              Check(name="b", group="fit", value=0, threshold="", passed=False, score=0.0)]
    trust = trust_score(checks)
    assert trust.score == pytest.approx(100 * 30 / 55, abs=0.1)
    assert trust.components == {"convergence": 100.0, "fit": 0.0}


def test_crps_vif_and_rolling_origins():
    rng = np.random.default_rng(0)
    assert crps(rng.normal(size=(20000, 1)), np.array([0.0])) == pytest.approx(0.2337, abs=0.01)
    x = rng.normal(size=(200, 3))
    x[:, 2] = x[:, 0] + 0.1 * rng.normal(size=200)
    vif = variance_inflation(x)
    assert vif[1] < 1.2 and vif[0] > 50 and vif[2] > 50
    template = load_template("ecommerce")
    sim = simulate(template, weeks=60, seed=1, channels=["search"])
    import tempfile
    from pathlib import Path

    data, _ = sim.write(Path(tempfile.mkdtemp()))
    panel = load_panel(data, ColumnSpec("date", "revenue", ("search",), tuple(template.controls)))
    folds = rolling_origins(panel, folds=3, horizon=4)
    assert [(train.n_weeks, scored.n_weeks) for train, scored in folds] == [
        (48, 52), (52, 56), (56, 60)]
    assert json.dumps([str(scored.dates[-1]) for _, scored in folds])


def test_a_channel_whose_roas_has_not_converged_is_named_in_the_review_and_the_report(
        synthetic_fit, tmp_path):
    """Issue 15's 20-geo fit put display's ROAS at 2x its truth with r-hat 1.019: the worst
    variable was all the review showed. Here the chains disagree on one channel's effect only:
    the review's convergence checks and the report name that channel, and no other."""
    import xarray as xr

    from liftos.report import write_report
    from liftos.validation.checks import review

    rng = np.random.default_rng(0)
    old = synthetic_fit.idata.posterior
    posterior = xr.Dataset({    # 2 x 1000 independent draws with the synthetic fit's spread
        name: (("chain", "draw", *value.dims[2:]),
               value.mean(("chain", "draw")).values + value.std(("chain", "draw")).values
               * rng.standard_normal((2, 1000, *value.shape[2:])))
        for name, value in old.data_vars.items()})
    block = synthetic_fit.design.blocks[0]
    name = block.variable("effect")
    effect = posterior[name].values.copy()
    effect[1, :, 0] *= 1.5                  # chain 2 sits elsewhere for the block's first channel
    posterior[name] = (posterior[name].dims, effect)
    idata = synthetic_fit.idata.copy()
    idata.posterior = posterior
    fit = dataclasses.replace(synthetic_fit, idata=idata, _summary=None, _series=None,
                              _totals=None)
    stuck = fit.spec.channels[block.indices[0]]
    channels = fit.summary()["channels"]
    assert channels[stuck]["roas_rhat"] > 1.1
    assert all(ch["roas_rhat"] < 1.05 for c, ch in channels.items() if c != stuck)
    checks = {c.name: c for c in review(fit)}
    assert not checks["r-hat"].passed
    assert checks["r-hat"].detail.startswith(f"ROAS not converged: {stuck} (r-hat ")
    assert checks["r-hat"].detail.count("(r-hat") == 1
    report = write_report(fit, tmp_path).read_text()
    rows = [line for line in report.splitlines() if "not converged" in line]
    assert len(rows) == 1 and rows[0].startswith(f"| {stuck} |"), rows


def _slid(fit, along_ridge: bool):
    """``fit`` with its first channel's effect draws moved to its prior's 99.5th percentile and
    its saturation draws moving with them (one shared shock per draw) if ``along_ridge``, else
    held by the data (1% spread of their own)."""
    import pymc as pm

    block = fit.design.blocks[0]
    prior = block.configs[0].effect_prior
    far = np.quantile(pm.draw(getattr(pm, prior.dist).dist(**prior.params), draws=4000,
                              random_seed=1), 0.995)
    shock = np.random.default_rng(2).standard_normal((2, 100))
    posterior = fit.idata.posterior.copy()
    effect = posterior[block.variable("effect")].values.copy()
    effect[:, :, 0] = far * np.exp(0.05 * shock)
    posterior[block.variable("effect")] = (posterior[block.variable("effect")].dims, effect)
    name = block.variable("saturation", block.saturation.parameter_names[0])
    bend = posterior[name].values.copy()
    own = np.random.default_rng(3).standard_normal((2, 100))
    bend[:, :, 0] = bend[:, :, 0].mean() * np.exp(0.3 * shock if along_ridge else 0.01 * own)
    posterior[name] = (posterior[name].dims, bend)
    idata = fit.idata.copy()
    idata.posterior = posterior
    return dataclasses.replace(fit, idata=idata, _summary=None, _series=None,
                              _totals=None), \
        fit.spec.channels[block.indices[0]]


def test_a_channel_slid_along_a_saturation_ridge_into_its_priors_tail_is_not_promoted(
        synthetic_fit):
    """Issue 15's 20-geo fit put display's ROAS at 2x its truth, outside its HDI, and nothing
    said so. A channel whose posterior sits in its prior's far tail while its ROAS moves with
    its saturation is named by the review, and the gate refuses the fit; far from the prior
    alone (the data can say so) is not flagged."""
    from liftos.validation.checks import RIDGE, review

    assert {c.name: c for c in review(synthetic_fit)}[RIDGE].passed
    slid, channel = _slid(synthetic_fit, along_ridge=True)
    check = {c.name: c for c in review(slid)}[RIDGE]
    assert not check.passed and check.detail.startswith(f"{channel} (posterior median at its "
                                                        f"prior's 99.")
    assert check.detail.count("corr") == 1
    validation = {**_validation(90), "checks": [c.model_dump() for c in review(slid)]}
    decision = champion_decision(validation, None)
    assert not decision.promote and channel in decision.reasons[0]
    alone, _ = _slid(synthetic_fit, along_ridge=False)
    assert {c.name: c for c in review(alone)}[RIDGE].passed

"""The MMM recovers known truth, reuses its compiled model, and round-trips through disk."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from liftos.config import load_template
from liftos.data import ColumnSpec, load_panel
from liftos.model import mmm
from liftos.model.options import FitOptions
from liftos.model.results import FitResult, loo_difference
from liftos.model.spec import ModelSpec
from liftos.simulate import simulate

pytestmark = pytest.mark.slow

# Truth for pymc-marketing's mmm_example.csv (shared/DESIGN.md).
EXAMPLE_TRUE_ROAS = {"x1": 4968.0, "x2": 2275.0}
FAST = FitOptions(draws=500, tune=500, chains=4, seed=1, progress=False)
SIM_CHANNELS = ["search", "social", "tv"]


@pytest.fixture(scope="session")
def example_fit(shared_data):
    panel = load_panel(shared_data / "mmm_example.csv",
                       ColumnSpec("date_week", "y", ("x1", "x2"), ("event_1", "event_2")))
    spec = ModelSpec(load_template("generic"), ("x1", "x2"), ("event_1", "event_2"), "y")
    return mmm.fit(panel, spec, FAST)


def test_recovers_mmm_example_roas(example_fit):
    summary = example_fit.summary()
    for channel, truth in EXAMPLE_TRUE_ROAS.items():
        ch = summary["channels"][channel]
        assert abs(ch["roas_mean"] - truth) / truth < 0.15, (channel, ch["roas_mean"])
        assert ch["roas_hdi_low"] <= truth <= ch["roas_hdi_high"], (channel, ch)
    diag = summary["diagnostics"]
    assert diag["rhat_max"] < 1.05 and diag["divergences"] <= 5
    assert summary["fit"]["r2"] > 0.9


def test_media_that_could_pass_for_an_intercept_does_not_trade_against_it(example_fit):
    """A channel's contribution has a mean level the intercept could hold as well: uncentred,
    the ROAS multiple and the intercept traded along a narrow diagonal ridge (this fit: bulk
    ESS 420 and 416 of 2,000 draws). With the media term centred in the model, each moves on
    its own (ESS ~1,600 and ~1,300)."""
    import arviz as az

    posterior = example_fit.idata.posterior
    intercept = posterior["baseline_coef"].values[..., 0]          # (chain, draw)
    multiples = posterior["roas_multiple_0"].values                 # (chain, draw, channel)
    for name, draws in [("intercept", intercept)] + [
            (f"roas_multiple[{c}]", multiples[..., c]) for c in range(multiples.shape[-1])]:
        ess = float(az.ess(draws, method="bulk"))
        assert ess >= 800, (name, ess)


def test_the_baseline_holds_no_media_after_a_centred_fit(example_fit):
    """The sampler sees media centred (its mean in the intercept); the stored intercept draws
    are the uncentred model's, so baseline + contributions is the fitted KPI and the baseline
    is what the KPI would be with no media."""
    index = example_fit.band_index()
    fitted = example_fit.baseline(index) + example_fit.contributions(index).sum(axis=-1)
    y = example_fit.panel.target
    level = example_fit.contributions(index).sum(axis=-1).mean()
    assert abs(fitted.mean() - y.mean()) < 0.02 * level, (fitted.mean(), y.mean(), level)


def test_psis_loo_prefers_the_model_that_has_the_trend_in_the_kpi(example_fit, shared_data):
    """``loo`` is what compares two forms fitted to the same weeks: without the linear trend
    mmm_example's KPI has, the model must predict left-out weeks worse, by more than four
    standard errors of the paired difference."""
    panel = load_panel(shared_data / "mmm_example.csv",
                       ColumnSpec("date_week", "y", ("x1", "x2"), ("event_1", "event_2")))
    flat = load_template("generic").model_copy(update={"trend": False})
    spec = ModelSpec(flat, ("x1", "x2"), ("event_1", "event_2"), "y")
    difference, se = loo_difference(example_fit, mmm.fit(panel, spec, FAST))
    assert difference > 4 * se, (difference, se)


def test_summary_contract(example_fit):
    summary = example_fit.summary()
    for ch in summary["channels"].values():
        for key in ("roas_mean", "roas_hdi_low", "roas_hdi_high", "contribution_total_mean",
                    "share_mean"):
            assert isinstance(ch[key], float)
        assert ch["roas_hdi_low"] < ch["roas_mean"] < ch["roas_hdi_high"]
    assert sum(ch["share_mean"] for ch in summary["channels"].values()) == pytest.approx(1.0)
    assert set(summary["diagnostics"]) >= {"rhat_max", "ess_bulk_min", "divergences"}
    assert set(summary["timing"]) >= {"compile_s", "sampling_s", "total_s"}


def _simulated(tmp_path_factory, seed):
    template = load_template("ecommerce")
    sim = simulate(template, weeks=156, seed=seed, channels=SIM_CHANNELS)
    data, _ = sim.write(tmp_path_factory.mktemp(f"sim{seed}"))
    panel = load_panel(data, ColumnSpec("date", "revenue", tuple(SIM_CHANNELS),
                                        tuple(template.controls)))
    return panel, ModelSpec(template, tuple(SIM_CHANNELS), tuple(template.controls), "revenue"), sim


@pytest.fixture(scope="session")
def simulated_fits(tmp_path_factory):
    # The first fit must compile whatever this process fitted before (in a two-process run,
    # another module may have compiled this shape here first).
    mmm.clear_compiled_models()
    fits = []
    for seed in (1, 2):
        panel, spec, sim = _simulated(tmp_path_factory, seed)
        fits.append((mmm.fit(panel, spec, FAST), sim.truth))
    return fits


def test_recovers_simulated_truth_on_two_seeds(simulated_fits):
    for result, truth in simulated_fits:
        summary = result.summary()
        for channel in SIM_CHANNELS:
            true_roas = truth["channels"][channel]["roas"]
            ch = summary["channels"][channel]
            assert ch["roas_hdi_low"] <= true_roas <= ch["roas_hdi_high"], (
                truth["seed"], channel, true_roas, ch)


def test_second_same_shaped_fit_reuses_the_compiled_model(simulated_fits):
    first, second = simulated_fits[0][0], simulated_fits[1][0]
    assert first.timing["compile_cache_hit"] is False
    assert second.timing["compile_cache_hit"] is True
    assert second.timing["compile_s"] < 0.1 * first.timing["compile_s"]
    # the reused model saw the second data set, not the first
    assert not np.allclose(first.design.y, second.design.y)
    assert (first.summary()["channels"]["search"]["roas_mean"]
            != second.summary()["channels"]["search"]["roas_mean"])


def test_a_fit_loaded_from_its_draws_predicts_like_the_full_load(example_fit, tmp_path):
    """The monitor loads only the posterior draws (draws.npz): contributions, baseline and the
    monitor's check must equal the full netCDF load's. A fit saved before draws.npz existed
    falls back to the netCDF and gets its draws.npz written."""
    from liftos.monitor import check_latest_week

    example_fit.save(tmp_path / "run")
    (tmp_path / "run" / "draws.npz").unlink()
    full = FitResult.load(tmp_path / "run")
    assert not (tmp_path / "run" / "draws.npz").exists()
    FitResult.load(tmp_path / "run", draws_only=True)  # the old fit: netCDF, then draws.npz
    assert (tmp_path / "run" / "draws.npz").exists()
    light = FitResult.load(tmp_path / "run", draws_only=True)
    assert light.n_draws == full.n_draws
    index = full.thinned_index(300)
    np.testing.assert_array_equal(light.contributions(index), full.contributions(index))
    np.testing.assert_array_equal(light.baseline(index), full.baseline(index))
    assert (check_latest_week(light, full.panel).model_dump()
            == check_latest_week(full, full.panel).model_dump())


def test_next_weeks_refresh_reuses_this_weeks_compiled_model(demo_panel):
    """A weekly refresh has one more week than the last: the model compiled on 155 weeks
    samples 156 without compiling, to the posterior a model compiled on 156 weeks gives. Two
    fits of that shape started together (a portfolio's tenants on one threaded worker) compile
    it once: the second waits for the first's compile."""
    panel, template = demo_panel
    spec = ModelSpec(template, tuple(panel.channels), tuple(panel.controls), "revenue")
    quick = FitOptions(draws=150, tune=150, chains=2, seed=5, progress=False)
    mmm.clear_compiled_models()
    together = threading.Barrier(2)

    def week(last: int):
        together.wait()
        return mmm.fit(panel.window(until=str(panel.dates[last])), spec, quick)

    with ThreadPoolExecutor(2) as pool:
        first = list(pool.map(week, (-2, -3)))
    assert sorted(f.timing["compile_cache_hit"] for f in first) == [False, True]
    assert mmm.compiled_model_count() == 1
    reused = mmm.fit(panel, spec, quick)
    mmm.clear_compiled_models()
    fresh = mmm.fit(panel, spec, quick)
    mmm.clear_compiled_models()
    assert reused.timing["compile_cache_hit"] is True and not fresh.timing["compile_cache_hit"]
    assert reused.design.y.shape[1] == fresh.design.y.shape[1] == panel.n_weeks
    for name, values in fresh.idata.posterior.data_vars.items():
        np.testing.assert_array_equal(reused.idata.posterior[name].values, values.values,
                                      err_msg=name)


def test_save_then_load_in_a_new_process_gives_the_same_summaries(example_fit, tmp_path):
    example_fit.save(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    script = ("import json, sys; from liftos.model.results import FitResult; "
              "s = FitResult.load(sys.argv[1]).summary(); "
              "print(json.dumps({'channels': s['channels'], 'diagnostics': s['diagnostics'], "
              "'fit': s['fit']}))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")],
                         capture_output=True, text=True, check=True)
    reloaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert reloaded["channels"] == saved["channels"]
    assert reloaded["diagnostics"] == saved["diagnostics"]
    assert reloaded["fit"] == pytest.approx(saved["fit"])
    local = FitResult.load(tmp_path / "run")
    assert local.spec == example_fit.spec


def test_model_variables_are_named_by_their_owner_with_role_prefixes(example_fit):
    """Every block parameter carries the role of the transformation that owns it."""
    expected = {"baseline_coef", "sigma"}
    for block in example_fit.design.blocks:
        expected |= {block.variable("adstock", p) for p in block.adstock.parameter_names}
        expected |= {block.variable("saturation", p) for p in block.saturation.parameter_names}
        expected.add(block.variable("effect"))
        if block.roas_priced:  # the free variable; the effect derives from it
            expected.add(block.variable("roas_multiple"))
    named = {v for v in example_fit.idata.posterior.data_vars if not v.endswith("__")}
    assert named == expected  # (PyMC names unconstrained copies "..._log__" itself)
    assert "adstock_alpha_0" in expected and "saturation_lam_0" in expected


def test_a_fit_saved_with_unprefixed_names_still_loads(example_fit, tmp_path):
    """Fits saved before the role prefixes (``alpha_0``) load with the same summaries."""
    example_fit.save(tmp_path / "run")
    old = example_fit.idata.copy()
    old.posterior = old.posterior.rename({"adstock_alpha_0": "alpha_0", "saturation_lam_0": "lam_0"})
    old.to_netcdf(str(tmp_path / "run" / "posterior.nc"))
    loaded = FitResult.load(tmp_path / "run")
    assert loaded.summary()["channels"] == example_fit.summary()["channels"]


@pytest.fixture(scope="module")
def geo_fit(tmp_path_factory):
    template = load_template("ecommerce")
    sim = simulate(template, weeks=104, seed=3, geos=3, channels=["search", "tv"])
    data, _ = sim.write(tmp_path_factory.mktemp("geo"))
    panel = load_panel(data, ColumnSpec("date", "revenue", ("search", "tv"),
                                        tuple(template.controls), "geo"))
    spec = ModelSpec(template, ("search", "tv"), tuple(template.controls), "revenue")
    return sim, mmm.fit(panel, spec, FitOptions(draws=500, tune=500, chains=2, progress=False))


def test_geo_model_pools_channel_effects(geo_fit):
    sim, result = geo_fit
    assert result.design.n_geos == 3 and "effect_geo_sd_0" in result.idata.posterior
    summary = result.summary()
    assert summary["diagnostics"]["rhat_max"] < 1.05
    # Each geo has its own seasonality here; with one shared seasonal shape the model put it
    # on search (+9%, truth on the HDI edge; 12/20 covered over 10 seeds, bench_coverage.py).
    for channel in ("search", "tv"):
        true_roas = sim.truth["channels"][channel]["roas"]
        ch = summary["channels"][channel]
        assert ch["roas_hdi_low"] <= true_roas <= ch["roas_hdi_high"], (channel, true_roas, ch)
    contributions = result.contributions(np.arange(10))
    assert contributions.shape == (10, 3, 104, 2) and (contributions >= 0).all()


def test_geo_baseline_has_no_ridge_for_the_sampler_to_crawl_along(geo_fit):
    """A shared seasonal coefficient plus a deviation per geo (only their sum identified) and an
    uncentred price index near 1 (a second intercept) were ridges: mean tree depth 9.9 of 10,
    baseline bulk ESS 178, 67 s of sampling. Centred, the same fit: depth 6.7, ESS ~600, 11 s."""
    import arviz as az

    result = geo_fit[1]
    depth = float(result.idata.sample_stats["depth"].mean())
    ess = float(az.ess(result.idata.posterior[["baseline_coef"]], method="bulk")
                ["baseline_coef"].min())
    assert depth < 8.0, depth
    assert ess >= 400, ess


def test_a_geo_fit_saved_in_design_version_1_predicts_the_same(geo_fit, tmp_path):
    """Fits saved before DESIGN_VERSION 2 hold baseline draws for the older columns (shared
    Fourier terms plus each geo's deviation, uncentred controls): loaded, they give the
    baseline those columns gave."""
    from liftos.model.spec import SEASON_MEAN

    result = geo_fit[1]
    d = result.design
    G, T = d.y.shape
    F = d.fourier.shape[1]
    K = len(d.covariate_center)
    new = d.baseline_matrix()
    per_geo = slice(2 * G, 2 * G + G * F)
    covariates = new[:, 2 * G + G * F:].copy()
    covariates[:, :K] += d.covariate_center / d.covariate_scale
    old = np.column_stack([new[:, :2 * G], np.tile(d.fourier, (G, 1)), new[:, per_geo],
                           covariates])
    coef = 0.1 * np.random.default_rng(0).standard_normal((2, 500, old.shape[1]))
    run = result.save(tmp_path / "run")
    idata = result.idata.copy()
    idata.posterior = idata.posterior.drop_vars(["baseline_coef", "baseline_coef_dim_0",
                                                 SEASON_MEAN, f"{SEASON_MEAN}_dim_0"],
                                                errors="ignore")
    idata.posterior["baseline_coef"] = (("chain", "draw", "baseline_coef_dim_0"), coef)
    idata.to_netcdf(str(run / "posterior.nc"))
    config = json.loads((run / "model.json").read_text())
    del config["design_version"]
    (run / "model.json").write_text(json.dumps(config))
    loaded = FitResult.load(run)
    index = np.arange(0, 1000, 7)
    expected = (coef.reshape(1000, -1)[index] @ old.T).reshape(len(index), G, T)
    np.testing.assert_allclose(loaded.baseline(index), expected * d.y_scale[None, :, None],
                               rtol=1e-9, atol=1e-6)


def test_a_roas_prior_sets_each_channels_roas_as_a_multiple_of_the_reference(shared_data):
    """With ``roas_prior`` the free variable is each channel's ROAS over the reference ROAS
    (media_share x KPI / spend); the effect derives from it. The ROAS the results report from
    contributions must equal that multiple x the reference, draw by draw, and recover the
    truth as the raw-effect prior does."""
    from liftos.model.spec import ROAS_MULTIPLE

    panel = load_panel(shared_data / "mmm_example.csv",
                       ColumnSpec("date_week", "y", ("x1", "x2"), ("event_1", "event_2")))
    template = load_template("generic")  # its default prior is on ROAS
    assert template.channel_defaults.roas_prior is not None
    spec = ModelSpec(template, ("x1", "x2"), ("event_1", "event_2"), "y")
    result = mmm.fit(panel, spec, FAST)
    block = result.design.blocks[0]
    reference = template.media_share * panel.target.sum() / panel.spend.sum()
    assert result.design.reference_roas == pytest.approx(reference)
    index = np.arange(result.n_draws)
    roas = result.contributions(index).sum(axis=(1, 2)) / panel.spend.sum(axis=(0, 1))
    multiple = result.draws(block.variable(ROAS_MULTIPLE))
    np.testing.assert_allclose(roas[:, list(block.indices)], multiple * reference, rtol=1e-6)
    summary = result.summary()
    for channel, truth in EXAMPLE_TRUE_ROAS.items():
        ch = summary["channels"][channel]
        assert abs(ch["roas_mean"] - truth) / truth < 0.15, (channel, ch["roas_mean"])
        assert ch["roas_hdi_low"] <= truth <= ch["roas_hdi_high"], (channel, ch)
    assert summary["diagnostics"]["rhat_max"] < 1.05


def test_the_target_acceptance_rate_reaches_the_sampler(shared_data):
    """A higher target takes smaller steps (what cuts divergences on ridged posteriors); the
    default is 0.9, above NUTS's usual 0.8."""
    panel = load_panel(shared_data / "mmm_example.csv",
                       ColumnSpec("date_week", "y", ("x1", "x2"), ("event_1", "event_2")))
    spec = ModelSpec(load_template("generic"), ("x1", "x2"), ("event_1", "event_2"), "y")
    assert FitOptions().target_accept == 0.9
    steps = {}
    for target in (0.6, 0.95):
        options = FitOptions(draws=100, tune=200, chains=2, seed=1, progress=False,
                             target_accept=target)
        result = mmm.fit(panel, spec, options)
        steps[target] = float(result.idata.sample_stats["step_size"].mean())
    assert steps[0.95] < 0.7 * steps[0.6], steps


def _panel_with_a_level_break(folder, seed: int):
    """156 weeks, two channels; at week 80 the baseline steps up 25% and channel ``a``'s budget
    by 60%: the break and the spend move together, as when a launch and its campaign coincide."""
    import pandas as pd

    rng, weeks, brk = np.random.default_rng(seed), 156, 80
    t = np.arange(weeks)

    def wander():
        out, shocks = np.zeros(weeks), rng.normal(0, 0.8, weeks)
        for i in range(1, weeks):
            out[i] = 0.6 * out[i - 1] + shocks[i]
        return out

    spend = {"a": 5000 * np.exp(0.3 * wander()) * np.where(t >= brk, 1.6, 1.0),
             "b": 8000 * np.exp(0.3 * wander())}
    roas, alpha, media = {"a": 2.0, "b": 1.5}, {"a": 0.3, "b": 0.5}, {}
    for c, x in spend.items():
        weights = alpha[c] ** np.arange(8)
        carried = np.convolve(x, weights / weights.sum())[:weeks]
        shape = 1 - np.exp(-carried / carried.mean())
        media[c] = shape * roas[c] * x.sum() / shape.sum()
    level = 60000 * (1 + 0.08 * np.sin(2 * np.pi * t / 52.18)) * np.where(t >= brk, 1.25, 1.0)
    y = level + media["a"] + media["b"]
    frame = pd.DataFrame({"date": pd.date_range("2022-01-03", periods=weeks, freq="7D")
                          .strftime("%Y-%m-%d"),
                          "y": (y + rng.normal(0, 0.04 * y.mean(), weeks)).round(2),
                          **{c: x.round(2) for c, x in spend.items()}})
    frame.to_csv(folder / "data.csv", index=False)
    truth = {c: float(media[c].sum() / frame[c].sum()) for c in spend}
    return load_panel(folder / "data.csv", ColumnSpec("date", "y", ("a", "b"), ())), truth


def test_a_level_break_that_coincides_with_a_budget_rise_is_not_credited_to_media(tmp_path):
    """Without a moving level the fit credits channel ``a`` with the baseline's step (its ROAS
    ~1.8x the truth, the truth outside its HDI); with the level's knots both ROAS come back."""
    from liftos.config import Level

    options = FitOptions(draws=500, tune=500, chains=2, seed=1, progress=False)
    generic = load_template("generic")
    moving = ModelSpec(generic.model_copy(update={"level": Level(knots=12)}), ("a", "b"), (), "y")
    for seed in (1, 2):
        folder = tmp_path / str(seed)
        folder.mkdir()
        panel, truth = _panel_with_a_level_break(folder, seed)
        if seed == 1:
            still = mmm.fit(panel, ModelSpec(generic, ("a", "b"), (), "y"), options).summary()
            assert still["channels"]["a"]["roas_hdi_low"] > 1.2 * truth["a"], still["channels"]
        summary = mmm.fit(panel, moving, options).summary()
        for channel, true in truth.items():
            found = summary["channels"][channel]
            assert abs(found["roas_mean"] / true - 1) < 0.2, (seed, channel, found, true)
            assert found["roas_hdi_low"] <= true <= found["roas_hdi_high"], (seed, channel)
        assert summary["diagnostics"]["rhat_max"] < 1.05

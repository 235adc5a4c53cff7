"""The Bayesian marketing-mix model in PyMC, sampled with nutpie, compiled once per shape.

KPI[g, t] = intercept[g] + slope[g] * trend[t] + seasonality[t] + covariates[g, t] @ gamma
            + sum_c effect[g, c] * saturation_c(adstock_c(spend[g, :, c]))[t] + noise

Compilation dominates a fit (pytensor -> numba). Compiled models are cached per signature (spec,
shapes, sampler) for the life of the process; a new data set of the same shapes only swaps the
``pm.Data`` values (nutpie's ``with_data``) and samples. Fits of one signature that start together
(a portfolio's tenants on one threaded worker) compile it once: the others wait for it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from liftos.data import Panel
from liftos.features.transforms import Prior
from liftos.model.options import FitOptions
from liftos.model.spec import (
    ADSTOCK,
    BASELINE_COEF,
    CALIBRATION,
    EFFECT,
    EFFECT_GEO_SD,
    EFFECT_GEO_Z,
    KPI,
    LAGGED,
    NOISE_SD,
    ROAS_MULTIPLE,
    ROAS_UNIT,
    SATURATION,
    SEASON_MEAN,
    ChannelBlock,
    Design,
    ModelSpec,
    build_design,
)

log = logging.getLogger(__name__)

_CACHE_SIZE = int(os.environ.get("LIFTOS_COMPILED_MODELS", "16"))
PROGRESS_RATE_MS = 1000
ProgressCallback = Callable[[float], None]
_compiled_models: OrderedDict[str, Any] = OrderedDict()
_owners: dict[str, set[str]] = {}  # signature -> tenants whose fits used it here
_cache_lock = threading.Lock()  # guards the two dicts above and the one below
_compiling: dict[str, threading.Lock] = {}  # signature -> held while it compiles


def build_model(design: Design, spec: ModelSpec) -> pm.Model:
    """The PyMC model for ``design``; every array that varies between data sets is ``pm.Data``.

    All non-media terms (per-geo intercepts and trends, seasonality, controls, events) are one
    design matrix with one coefficient vector: a single dot product compiles and runs far faster
    than a handful of small ones."""
    with pm.Model(check_bounds=False) as model:
        data = {name: pm.Data(name, value) for name, value in design.data_arrays().items()}
        mu = pt.dot(data["baseline"], _baseline_coef(design))
        columns = {}
        for b, block in enumerate(design.blocks):
            term = _media_term(block, design, data)
            mu = mu + _centred(term.sum(axis=1), data)
            columns.update({c: term[:, j] for j, c in enumerate(block.indices)})
        if spec.calibrations:
            _calibration_term(spec, columns, data)
        sigma = pm.HalfNormal(NOISE_SD, 1.0)
        pm.Normal(KPI, mu=mu, sigma=sigma, observed=data["y"])
    return model


def _centred(media, data: dict[str, Any]):
    """``media`` ``(N,)`` less each geo's mean over the fit's weeks: the intercepts hold the
    KPI's level with media's mean in it (``FitResult.restore_intercepts`` takes it back out
    after sampling). Uncentred, a channel whose curve flattens (deep saturation, a Hill slope
    near 0) becomes a second intercept: its ROAS then trades against the intercept along a
    narrow diagonal ridge whose length changes with the curve's shape, a funnel where NUTS
    diverged. On the accuracy suite's 30 fits, centred: Hill saturation 26 -> 0 fits with
    divergences, the logistic 19 -> 0, its median fit 16 s -> 5 s."""
    onehot = data.get("geo_onehot")
    if onehot is None:
        return media - media.mean()
    level = pt.dot(onehot.T, media) / onehot.sum(axis=0)
    return media - pt.dot(onehot, level)


def _baseline_coef(design: Design):
    """The non-media coefficients; in a geo model each geo's seasonal ones are centred on the
    shared shape (``Design._baseline`` says why centred)."""
    pooling = design.season_pooling
    mean = 0.0 if pooling is None else pt.dot(
        pooling, pm.Normal(SEASON_MEAN, 0.0, 1.0, shape=pooling.shape[1]))
    return pm.Normal(BASELINE_COEF, mean, design.baseline_prior_sigma,
                     shape=len(design.baseline_names))


def _calibration_term(spec: ModelSpec, columns: dict[int, Any], data: dict[str, Any]) -> None:
    """Each calibration's known contribution observed against the modelled one (same units:
    KPI over the mean KPI scale; the mask carries each row's geo scale)."""
    modelled = pt.stack([
        (data["calibration_mask"][k] * columns[spec.channels.index(c.channel)]).sum()
        for k, c in enumerate(spec.calibrations)])
    pm.Normal(CALIBRATION, mu=modelled, sigma=data["calibration_sd"],
              observed=data["calibration_target"])


def _media_term(block: ChannelBlock, design: Design, data: dict[str, Any]):
    """Scaled contribution ``(N, Cb)`` of one block of channels."""
    lagged_spend, geo_onehot = data[block.variable(LAGGED)], data.get("geo_onehot")
    adstock, saturation, mask = block.adstock, block.saturation, design.masks[block.number]
    ad_params = {p: _vector_prior(block.variable(ADSTOCK, p),
                                  [c.adstock.priors[p] for c in block.configs])
                 for p in adstock.parameter_names}
    sat_params = {p: _vector_prior(block.variable(SATURATION, p),
                                   [c.saturation.priors[p] for c in block.configs])
                  for p in saturation.parameter_names}
    weights = block.weights(pt, mask, ad_params)  # (L, Cb)
    n_lags, n_channels = mask.shape
    # lagged_spend is (N, L * Cb); a block-diagonal (L * Cb, Cb) weight matrix turns the adstock
    # into one matrix product, ~25% cheaper per gradient than broadcasting and summing.
    selector = np.kron(np.ones((n_lags, 1)), np.eye(n_channels))
    adstocked = pt.dot(lagged_spend, weights.reshape((n_lags * n_channels, 1)) * selector)
    saturated = saturation.apply(pt, adstocked, **sat_params)
    effect = (_roas_priced_effect(block, saturated, data) if block.roas_priced else
              _vector_prior(block.variable(EFFECT), [c.effect_prior for c in block.configs]))
    if design.n_geos > 1:
        spread = pm.HalfNormal(block.variable(EFFECT_GEO_SD), 0.3, shape=len(block.channels))
        offset = pm.Normal(block.variable(EFFECT_GEO_Z), 0.0, 1.0,
                           shape=(design.n_geos, len(block.channels)))
        return pt.dot(geo_onehot, effect[None, :] * pt.exp(spread[None, :] * offset)) * saturated
    return effect * saturated


def _roas_priced_effect(block: ChannelBlock, saturated, data: dict[str, Any]):
    """The effect that gives each channel ROAS = its multiple x the reference ROAS over the
    fit's weeks (Meridian's ROI parameterisation): the data pin down ROAS far better than a
    raw coefficient, whose prior says little once saturation rescales it. The effect's draws
    are stored after sampling (``FitResult.store_roas_priced_effects``): a Deterministic here adds
    ~1.5 s to every compile."""
    multiple = _vector_prior(block.variable(ROAS_MULTIPLE), [c.roas_prior for c in block.configs])
    if "row_kpi_scale" in data:
        saturated = saturated * data["row_kpi_scale"][:, None]
    summed = pt.maximum(saturated.sum(axis=0), 1e-12)
    return multiple * data[block.variable(ROAS_UNIT)] / summed


def _vector_prior(name: str, priors: list[Prior]):
    """One vector variable for a block; each channel keeps its own prior parameters."""
    params = {}
    for key in priors[0].params:
        values = np.array([p.params[key] for p in priors])
        params[key] = float(values[0]) if np.all(values == values[0]) else values
    return getattr(pm, priors[0].dist)(name, shape=len(priors), **params)


def fit(panel: Panel, spec: ModelSpec, options: FitOptions = FitOptions(), source: str = "",
        progress: ProgressCallback | None = None, owner: str = ""):
    """Fit the MMM to ``panel``; returns a :class:`~liftos.model.results.FitResult`.

    ``progress`` receives the fraction of draws done (0 to 1) about once a second while
    sampling with nutpie. ``owner`` (a tenant) is remembered with the compiled model, so a
    scheduler can send the owner's next fit to the process that holds it (``held_models``)."""
    from liftos.model.results import FitResult

    started = time.perf_counter()
    design = build_design(panel, spec, source)
    if options.sampler == "nutpie":
        idata, compile_s, cache_hit, sampling_s = _sample_nutpie(design, spec, options, progress,
                                                                 owner)
    else:
        idata, compile_s, cache_hit, sampling_s = _sample_pymc(design, spec, options)
    timing = {"compile_s": compile_s, "sampling_s": sampling_s, "compile_cache_hit": cache_hit}
    result = FitResult(spec=spec, panel=panel, design=design, idata=idata, options=options,
                       timing=timing)
    result.store_roas_priced_effects()
    result.restore_intercepts()
    result.timing["total_s"] = time.perf_counter() - started
    return result


def _sample_nutpie(design: Design, spec: ModelSpec, options: FitOptions,
                   progress: ProgressCallback | None = None, owner: str = ""):
    key = spec.signature(design.n_geos, "nutpie")
    started = time.perf_counter()
    compiled, cache_hit = _compiled(key, design, spec)
    if cache_hit:
        compiled = compiled.with_data(**design.data_arrays())
    if owner:
        with _cache_lock:
            _owners.setdefault(key, set()).add(owner)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    idata = _run_nutpie(compiled, options, progress)
    return idata, compile_s, cache_hit, time.perf_counter() - started


def _compiled(key: str, design: Design, spec: ModelSpec) -> tuple[Any, bool]:
    """The compiled model of signature ``key`` and whether it was already here. One lock per
    signature: a fit that finds another compiling its signature waits and reuses the result
    (two threads compiling the same graph take twice the CPU for one model)."""
    with _cache_lock:
        signature_lock = _compiling.setdefault(key, threading.Lock())
    with signature_lock:
        with _cache_lock:
            compiled = _compiled_models.get(key)
            if compiled is not None:
                _compiled_models.move_to_end(key)
                return compiled, True
        log.info("compiling model %s (first fit of this shape in this process)", key)
        import nutpie

        compiled = nutpie.compile_pymc_model(build_model(design, spec))
        with _cache_lock:
            _compiled_models[key] = compiled
            while len(_compiled_models) > _CACHE_SIZE:
                evicted = _compiled_models.popitem(last=False)[0]
                _owners.pop(evicted, None)
                _compiling.pop(evicted, None)
        return compiled, False


def _run_nutpie(compiled, options: FitOptions, progress: ProgressCallback | None):
    """``nutpie.sample`` with one addition: sampling progress can go to a callback (a Prefect
    progress artifact) instead of the terminal. Mirrors nutpie 0.16's ``sample``."""
    from nutpie import _lib
    from nutpie.sample import _BackgroundSampler

    settings = (_lib.PyNutsSettings.LowRank if options.mass_matrix == "low_rank"
                else _lib.PyNutsSettings.Diag)(options.seed)
    settings.num_tune, settings.num_draws, settings.num_chains = (
        options.tune, options.draws, options.chains)
    settings.target_accept = options.target_accept
    cores = options.cores or min(options.chains, os.cpu_count() or 1)
    if progress is not None:
        progress_type = _lib.ProgressType.template_callback(
            PROGRESS_RATE_MS, "{{ total_finished_draws }}/{{ total_draws }}", cores,
            _progress_parser(progress))
    elif options.progress:
        progress_type = _lib.ProgressType.indicatif(PROGRESS_RATE_MS)
    else:
        progress_type = _lib.ProgressType.none()
    sampler = _BackgroundSampler.__new__(_BackgroundSampler)
    sampler._settings, sampler._compiled_model = settings, compiled
    sampler._save_warmup, sampler._return_raw_trace, sampler._html = False, False, None
    sampler._zarr_store, sampler._store = None, _lib.PyStorage.arrow()
    sampler._sampler = compiled._make_sampler(
        settings, np.zeros(compiled.n_dim), cores, progress_type, sampler._store)
    try:
        idata = sampler.wait()
    except BaseException:
        sampler.cancel()
        raise
    if progress is not None:
        progress(1.0)
    return idata


def _progress_parser(progress: ProgressCallback) -> Callable[[str], None]:
    def on_update(formatted: str) -> None:
        done, total = (int(part) for part in formatted.strip().split("/"))
        try:
            progress(done / total if total else 0.0)
        except Exception:  # a progress sink must never break sampling
            log.warning("progress callback failed", exc_info=True)
    return on_update


def _sample_pymc(design: Design, spec: ModelSpec, options: FitOptions):
    """PyMC's own NUTS: the fallback when nutpie is unavailable or unsuitable."""
    started = time.perf_counter()
    model = build_model(design, spec)
    with model:
        idata = pm.sample(
            draws=options.draws, tune=options.tune, chains=options.chains,
            random_seed=options.seed, cores=options.cores or min(options.chains, os.cpu_count() or 1),
            progressbar=options.progress, compute_convergence_checks=False,
            target_accept=options.target_accept)
    elapsed = time.perf_counter() - started
    return idata, 0.0, False, elapsed


def compiled_model_count() -> int:
    """How many compiled models this process holds (tests assert reuse with it)."""
    return len(_compiled_models)


def held_models() -> dict[str, list[str]]:
    """The compiled models this process holds: signature -> tenants whose fits used it."""
    return {key: sorted(_owners.get(key, ())) for key in _compiled_models}


def clear_compiled_models() -> None:
    with _cache_lock:
        _compiled_models.clear()
        _owners.clear()

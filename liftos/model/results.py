"""What a fit produces: contributions, ROAS, shares, response curves, diagnostics; save and load.

Every quantity is recomputed from the posterior draws with the same transformation objects the
model used, so a run reloaded in a new process gives identical summaries.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import liftos
from liftos.data import Panel
from liftos.errors import InputError
from liftos.home import atomic_write, write_json
from liftos.model.options import FitOptions
from liftos.model.spec import (
    ADSTOCK,
    BASELINE_COEF,
    DESIGN_VERSION,
    EFFECT,
    EFFECT_GEO_SD,
    EFFECT_GEO_Z,
    KPI,
    NOISE_SD,
    ROAS_MULTIPLE,
    SATURATION,
    SEASON_MEAN,
    Design,
    ModelSpec,
    build_design,
)

HDI_PROB = 0.94
CHUNK_DRAWS = 500
BAND_DRAWS = 400


def hdi(samples: np.ndarray, prob: float = HDI_PROB) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval over axis 0 (the shortest interval holding ``prob``)."""
    ordered = np.sort(samples, axis=0)
    n = ordered.shape[0]
    inside = int(np.floor(prob * n))
    if inside >= n:
        return ordered[0], ordered[-1]
    widths = ordered[inside:] - ordered[: n - inside]
    start = np.argmin(widths, axis=0)
    low = np.take_along_axis(ordered, start[None], axis=0)[0]
    high = np.take_along_axis(ordered, (start + inside)[None], axis=0)[0]
    return low, high


@dataclass
class FitResult:
    spec: ModelSpec
    panel: Panel
    design: Design
    idata: Any
    options: FitOptions
    timing: dict[str, Any] = field(default_factory=dict)
    _summary: dict[str, Any] | None = None
    _series: dict[str, np.ndarray] | None = None
    _totals: np.ndarray | None = None

    # ----------------------------------------------------------------------------- draws
    @property
    def n_draws(self) -> int:
        post = self.idata.posterior
        return post.sizes["chain"] * post.sizes["draw"]

    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of a variable, chains flattened: ``(S, ...)``."""
        values = self.idata.posterior[name].values
        return values.reshape((-1,) + values.shape[2:])

    def _transform_params(self, b: int, index: np.ndarray) -> tuple[dict, dict]:
        block = self.design.blocks[b]
        ad = {p: self.draws(block.variable(ADSTOCK, p))[index]
              for p in block.adstock.parameter_names}
        sat = {p: self.draws(block.variable(SATURATION, p))[index]
               for p in block.saturation.parameter_names}
        return ad, sat

    def _block_params(self, b: int, index: np.ndarray) -> tuple[dict, dict, np.ndarray]:
        block = self.design.blocks[b]
        ad, sat = self._transform_params(b, index)
        effect = self.draws(block.variable(EFFECT))[index][:, None, :]  # (s, 1, Cb)
        if self.design.n_geos > 1:
            spread = self.draws(block.variable(EFFECT_GEO_SD))[index][:, None, :]
            offset = self.draws(block.variable(EFFECT_GEO_Z))[index]
            effect = effect * np.exp(spread * offset)  # (s, G, Cb)
        return ad, sat, effect

    def contributions(self, index: np.ndarray) -> np.ndarray:
        """Channel contributions in KPI units for the draws ``index``: ``(s, G, T, C)``."""
        G, T = self.design.y.shape
        out = np.zeros((len(index), G, T, len(self.spec.channels)))
        for b, block in enumerate(self.design.blocks):
            effect = self._block_params(b, index)[2]
            scaled = effect[:, :, None, :] * self.saturated(b, index)
            out[..., list(block.indices)] = scaled * self.design.y_scale[None, :, None, None]
        return out

    def saturated(self, b: int, index: np.ndarray) -> np.ndarray:
        """Block ``b``'s adstocked, saturated scaled spend for the draws ``index``:
        ``(s, G, T, Cb)``, the media term before its effect."""
        block = self.design.blocks[b]
        ad, sat = self._transform_params(b, index)
        weights = block.weights(np, self.design.masks[b], ad)  # (s, L, Cb)
        adstocked = np.einsum("gtlc,slc->sgtc", self.design.lagged[b], weights)
        return block.saturation.apply(
            np, adstocked, **{k: v[:, None, None, :] for k, v in sat.items()})

    def store_roas_priced_effects(self) -> None:
        """Add each ROAS-priced block's effect draws to the posterior, derived from the fit's
        own data as the model derives them (``mmm._roas_priced_effect``), so everything
        downstream reads an effect; a Deterministic in the model would add ~1.5 s to compile."""
        d, posterior = self.design, self.idata.posterior
        for b, block in enumerate(d.blocks):
            if not block.roas_priced:
                continue
            summed = np.concatenate([np.einsum("sgtc,g->sc", self.saturated(b, i), d.geo_kpi_scale)
                                     for i in self._chunks()])
            multiple = self.draws(block.variable(ROAS_MULTIPLE))
            effect = multiple * d.roas_unit(b) / np.maximum(summed, 1e-12)
            name = block.variable(EFFECT)
            posterior[name] = (("chain", "draw", f"{name}_dim_0"),
                               effect.reshape(posterior.sizes["chain"], posterior.sizes["draw"],
                                              -1))

    def restore_intercepts(self) -> None:
        """Rewrite the intercept draws of a model sampled with its media term and baseline
        columns centred on each geo's level (``mmm._centred``, ``Design.column_levels``) to the
        intercepts of the uncentred columns: the same expected KPI, so everything downstream
        reads a baseline without media's mean in it, on the design's own columns."""
        d, posterior = self.design, self.idata.posterior
        levels, totals = [], []
        for index in self._chunks():  # one pass also gives contribution_totals its draws
            contributions = self.contributions(index)
            levels.append(contributions.sum(axis=-1).mean(axis=2) / d.y_scale[None, :])
            totals.append(contributions.sum(axis=(1, 2)))
        self._totals = np.concatenate(totals)
        coef = posterior[BASELINE_COEF].values.copy()            # (chain, draw, P)
        media = np.concatenate(levels).reshape(coef.shape[:2] + (d.n_geos,))
        coef[..., :d.n_geos] -= media + coef @ d.column_levels().T
        posterior[BASELINE_COEF] = (posterior[BASELINE_COEF].dims, coef)

    def baseline(self, index: np.ndarray) -> np.ndarray:
        """Non-media part of the expected KPI in KPI units: ``(s, G, T)``."""
        d = self.design
        G, T = d.y.shape
        scaled = self.draws(BASELINE_COEF)[index] @ d.baseline_matrix().T  # (s, N)
        return scaled.reshape(len(index), G, T) * d.y_scale[None, :, None]

    def _chunks(self):
        for start in range(0, self.n_draws, CHUNK_DRAWS):
            yield np.arange(start, min(start + CHUNK_DRAWS, self.n_draws))

    def band_index(self) -> np.ndarray:
        """An evenly thinned subset of draws for time-series bands (fixed, so reproducible)."""
        return self.thinned_index(BAND_DRAWS)

    def thinned_index(self, max_draws: int) -> np.ndarray:
        """At most ``max_draws`` draws, evenly spread over all chains (fixed, so reproducible)."""
        return np.unique(np.linspace(0, self.n_draws - 1, min(max_draws, self.n_draws)).astype(int))

    # ------------------------------------------------------------------------- summaries
    def contribution_totals(self) -> np.ndarray:
        """Total contribution over the window per draw and channel: ``(S, C)`` (computed once:
        the summary, the model review and recovery all read it; 4.5 s at 20 geos x 8 channels)."""
        if self._totals is None:
            self._totals = np.concatenate([self.contributions(i).sum(axis=(1, 2))
                                           for i in self._chunks()])
        return self._totals

    def spend_totals(self) -> np.ndarray:
        return self.panel.spend.sum(axis=(0, 1))

    def roas_draws(self) -> np.ndarray:
        return self.contribution_totals() / self.spend_totals()[None, :]

    def time_series(self) -> dict[str, np.ndarray]:
        """Means and 94% bands over time (summed over geos) for the report's plots (computed
        once: the summary, the report and the model review all read it)."""
        if self._series is not None:
            return self._series
        index = self.band_index()
        contrib = self.contributions(index)
        base = self.baseline(index)
        expected = (base + contrib.sum(axis=3)).sum(axis=1)
        predictive = self.predictive(index, base, contrib).sum(axis=1)
        low, high = hdi(predictive)
        self._series = {
            "dates": self.panel.dates, "actual": self.panel.target.sum(axis=0),
            "fitted_mean": expected.mean(axis=0), "fitted_low": low, "fitted_high": high,
            "baseline_mean": base.sum(axis=1).mean(axis=0),
            "contribution_mean": contrib.sum(axis=1).mean(axis=0)}
        return self._series

    def predictive(self, index: np.ndarray, base: np.ndarray | None = None,
                   contrib: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """Posterior predictive KPI draws ``(s, G, T)`` in KPI units (observation noise added)."""
        base = self.baseline(index) if base is None else base
        contrib = self.contributions(index) if contrib is None else contrib
        sigma = self.draws(NOISE_SD)[index]
        noise = np.random.default_rng(seed).normal(size=(len(index),) + self.design.y.shape)
        scaled_noise = noise * sigma[:, None, None] * self.design.y_scale[None, :, None]
        return base + contrib.sum(axis=3) + scaled_noise

    def loo(self) -> dict[str, float]:
        """Expected log predictive density of each week left out (PSIS-LOO, ArviZ) on the
        scaled KPI, summed, its standard error and the worst Pareto k: what compares two forms
        of the model fitted to the same data (higher is better; k > 0.7 makes it unreliable).
        Two fits' difference has its own standard error: see ``loo_difference``."""
        pointwise, pareto_k = self.loo_pointwise()
        elpd, se = _summed(pointwise)
        return {"elpd": elpd, "se": se, "pareto_k_max": float(pareto_k.max())}

    def loo_pointwise(self) -> tuple[np.ndarray, np.ndarray]:
        """Each geo-week's PSIS-LOO expected log predictive density and Pareto k: ``(N,)``."""
        import arviz as az
        from scipy.stats import norm

        d = self.design
        scale = d.y_scale[None, :, None]
        sigma = self.draws(NOISE_SD)
        log_lik = np.concatenate([
            norm.logpdf(d.y[None], (self.baseline(i) + self.contributions(i).sum(axis=3))
                        / scale, sigma[i, None, None])
            for i in self._chunks()])                                 # (S, G, T)
        chains = self.idata.posterior.sizes["chain"]
        log_lik = log_lik.reshape(chains, -1, log_lik.shape[1] * log_lik.shape[2])
        found = az.loo(az.from_dict(posterior={NOISE_SD: sigma.reshape(chains, -1)},
                                    log_likelihood={KPI: log_lik}), pointwise=True)
        return np.asarray(found.loo_i), np.asarray(found.pareto_k)

    def on_panel(self, panel: Panel) -> FitResult:
        """This posterior applied to another panel of the same geos, channels and controls (for
        instance with newer weeks), keeping the fitted scales and trend span."""
        for what in ("geos", "channels", "controls"):
            if list(getattr(panel, what)) != list(getattr(self.panel, what)):
                raise InputError("same_layout_as_model",
                                 f"{what} {list(getattr(panel, what))} differ from the fitted "
                                 f"model's {list(getattr(self.panel, what))}", panel.source)
        design = build_design(panel, self.spec, reference=self.design)
        return FitResult(spec=self.spec, panel=panel, design=design, idata=self.idata,
                         options=self.options, timing=self.timing)

    def response_curves(self, points: int = 41, max_multiple: float = 2.0) -> dict[str, dict]:
        """Steady-state weekly KPI response to a constant weekly spend per channel.

        Spend is split across geos by their historical share. With normalised adstock a spend
        held constant adstocks to itself, so the curve is effect * saturation(spend / scale)."""
        index = self.band_index()
        curves: dict[str, dict] = {}
        geo_share = self.panel.spend.sum(axis=1) / np.maximum(self.spend_totals(), 1e-12)  # (G,C)
        for b, block in enumerate(self.design.blocks):
            ad, sat, effect = self._block_params(b, index)
            carry = block.weights(np, self.design.masks[b], ad).sum(axis=1)  # (s, Cb)
            for j, c in enumerate(block.indices):
                weekly = self.panel.spend[:, :, c].sum(axis=0)
                grid = np.linspace(0.0, max_multiple * weekly.max(), points)
                x = (grid[None, :, None] * geo_share[None, None, :, c]
                     / self.design.x_scale[None, None, :, c])            # (1, P, G)
                x = x * carry[:, j][:, None, None]                       # (s, P, G)
                params = {k: v[:, None, None, j] for k, v in sat.items()}
                response = (effect[:, None, :, j] * block.saturation.apply(np, x, **params)
                            * self.design.y_scale[None, None, :]).sum(axis=2)  # (s, P)
                low, high = hdi(response)
                curves[self.spec.channels[c]] = {
                    "spend": grid.tolist(), "response_mean": response.mean(axis=0).tolist(),
                    "response_hdi_low": low.tolist(), "response_hdi_high": high.tolist(),
                    "current_weekly_spend": float(weekly.mean())}
        return curves

    def diagnostics(self) -> dict[str, Any]:
        import arviz as az

        post = self.idata.posterior
        rhat = az.rhat(post)
        ess = az.ess(post, method="bulk")
        stats = self.idata.sample_stats
        diverging = int(stats["diverging"].values.sum()) if "diverging" in stats else 0
        return {
            "rhat_max": float(max(float(rhat[v].max()) for v in rhat.data_vars)),
            "ess_bulk_min": float(min(float(ess[v].min()) for v in ess.data_vars)),
            "divergences": diverging,
            "chains": int(post.sizes["chain"]), "draws": int(post.sizes["draw"]),
            "tune": self.options.tune, "sampler": self.options.sampler,
        }

    def fit_quality(self, series: dict[str, np.ndarray]) -> dict[str, float]:
        actual, fitted = series["actual"], series["fitted_mean"]
        residual = actual - fitted
        r2 = 1.0 - float((residual ** 2).sum() / ((actual - actual.mean()) ** 2).sum())
        mape = float(np.mean(np.abs(residual) / np.maximum(np.abs(actual), 1e-12)))
        return {"r2": r2, "mape": mape}

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` contract: per-channel ROAS/contribution/share, diagnostics,
        timing, and where the numbers came from (data hash, template, options)."""
        if self._summary is not None:
            return self._summary
        totals = self.contribution_totals()
        spend = self.spend_totals()
        roas = totals / spend[None, :]
        shares = totals / np.maximum(totals.sum(axis=1, keepdims=True), 1e-12)
        roas_low, roas_high = hdi(roas)
        tot_low, tot_high = hdi(totals)
        share_low, share_high = hdi(shares)
        kpi = self.spec.template.kpi
        mixing = self._roas_mixing(roas)
        channels: dict[str, Any] = {}
        for c, name in enumerate(self.spec.channels):
            config = self.spec.channel_config(name)
            entry = {
                "roas_mean": float(roas[:, c].mean()), "roas_hdi_low": float(roas_low[c]),
                "roas_hdi_high": float(roas_high[c]),
                "contribution_total_mean": float(totals[:, c].mean()),
                "contribution_total_hdi_low": float(tot_low[c]),
                "contribution_total_hdi_high": float(tot_high[c]),
                "share_mean": float(shares[:, c].mean()), "share_hdi_low": float(share_low[c]),
                "share_hdi_high": float(share_high[c]),
                "spend_total": float(spend[c]),
                "roas_rhat": mixing[c][0], "roas_ess_bulk": mixing[c][1],
                "roas_bounds": list(config.roas_bounds),
                "roas_plausible": bool(config.roas_bounds[0] <= roas[:, c].mean()
                                       <= config.roas_bounds[1]),
                "adstock": self._parameter_means(name, ADSTOCK, config.adstock),
                "saturation": self._parameter_means(name, SATURATION, config.saturation),
            }
            if kpi.kind == "count":
                entry["cost_per_kpi_mean"] = float(spend[c] / max(totals[:, c].mean(), 1e-12))
            channels[name] = entry
        series = self.time_series()
        self._summary = {
            "channels": channels,
            "controls": self.control_effects(),
            "diagnostics": self.diagnostics(),
            "fit": self.fit_quality(series),
            "timing": {k: (round(v, 4) if isinstance(v, float) else v)
                       for k, v in self.timing.items()},
            "kpi": kpi.model_dump(),
            "run": {
                "liftos_version": liftos.__version__,
                "template": self.spec.template.name,
                "target": self.spec.target,
                "data": {"source": self.panel.source, "sha256": self.panel.source_sha256,
                         "weeks": self.panel.n_weeks, "geos": self.panel.geos,
                         "start": str(self.panel.dates[0]), "end": str(self.panel.dates[-1]),
                         "notes": self.panel.notes},
                "options": self.options.model_dump(),
            },
        }
        return self._summary

    def _roas_mixing(self, roas: np.ndarray) -> list[tuple[float | None, float | None]]:
        """r-hat and bulk ESS of each channel's ROAS draws ``(S, C)``. The number a reader acts
        on can be unconverged while the worst-variable diagnostics look passable (an effect and
        a saturation trading along a ridge); this names the channel. ``None`` with one chain."""
        import arviz as az

        chains = self.idata.posterior.sizes["chain"]
        if chains < 2:
            return [(None, None)] * roas.shape[1]
        by_chain = roas.reshape(chains, -1, roas.shape[1])
        return [(_finite(az.rhat(draws)), _finite(az.ess(draws, method="bulk")))
                for draws in np.moveaxis(by_chain, -1, 0)]

    def control_effects(self) -> dict[str, dict[str, float]]:
        """Each control's weekly KPI change (all geos) per unit of the control, with its 94%
        interval: a signal's association with the KPI, next to the channels."""
        effects = {}
        for name in self.panel.controls:
            per_unit = self.control_draws(name)
            low, high = hdi(per_unit[:, None])
            effects[name] = {"effect_per_unit_mean": float(per_unit.mean()),
                             "effect_per_unit_hdi_low": float(low[0]),
                             "effect_per_unit_hdi_high": float(high[0])}
        return effects

    def control_draws(self, name: str) -> np.ndarray:
        """Posterior draws ``(S,)`` of the weekly KPI change (all geos) per unit of a control."""
        k = self.panel.controls.index(name)
        coef = self.draws(BASELINE_COEF)[:, self.design.baseline_names.index(name)]
        return coef * self.design.y_scale.sum() / self.design.covariate_scale[k]

    def _parameter_means(self, channel: str, role: str, transform) -> dict[str, Any]:
        c = self.spec.channels.index(channel)
        for b, block in enumerate(self.design.blocks):
            if c in block.indices:
                j = block.indices.index(c)
                means = {p: float(self.draws(block.variable(role, p))[:, j].mean())
                         for p in transform.parameter_names}
                return {"type": transform.type, **means}
        raise KeyError(channel)

    # ----------------------------------------------------------------------- persistence
    def save(self, out_dir: str | Path) -> Path:
        """Write posterior (netCDF), model config (JSON), input panel and summary atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "posterior.nc", lambda p: self.idata.to_netcdf(str(p)))
        atomic_write(out / "draws.npz", lambda p: _save_draws(self.idata, p))
        atomic_write(out / "panel.parquet", lambda p: self.panel.save(p))
        config = {"spec": self.spec.to_dict(), "options": self.options.model_dump(),
                  "timing": self.timing,
                  "panel": {"source": self.panel.source, "sha256": self.panel.source_sha256,
                            "notes": self.panel.notes},
                  "design_version": DESIGN_VERSION,
                  "saved_at": datetime.now(UTC).isoformat()}
        write_json(out / "model.json", config)
        write_json(out / "summary.json", self.summary())
        return out

    @classmethod
    def load(cls, run_dir: str | Path, draws_only: bool = False) -> FitResult:
        """The saved fit. ``draws_only`` reads just the posterior draws (``draws.npz``, 1 ms
        instead of 130 ms for the whole netCDF): enough to predict and to check, as the
        monitor does across every tenant each hour; summaries that need the other groups
        (sampler statistics) are not available then."""
        import arviz as az

        run = Path(run_dir)
        config = json.loads((run / "model.json").read_text())
        spec = ModelSpec.from_dict(config["spec"])
        meta = config["panel"]
        panel = Panel.load(run / "panel.parquet", spec.target, spec.channels, spec.controls,
                           meta["source"], meta["sha256"])
        panel.notes = meta.get("notes", [])
        if draws_only and (run / "draws.npz").exists():
            with np.load(run / "draws.npz") as saved:
                idata = az.InferenceData(posterior=_dataset({n: saved[n] for n in saved.files}))
        else:
            idata = az.from_netcdf(str(run / "posterior.nc"))
            idata.load()
            if draws_only:  # a fit saved before draws.npz existed: write it for next time
                with contextlib.suppress(OSError):
                    atomic_write(run / "draws.npz", lambda p: _save_draws(idata, p))
        design = build_design(panel, spec)
        _read_unprefixed_names(idata, design)
        if config.get("design_version", 1) < DESIGN_VERSION:
            _read_design_version_1(idata, design)
        return cls(spec=spec, panel=panel, design=design, idata=idata,
                   options=FitOptions(**config["options"]), timing=config["timing"])


def _finite(value: Any) -> float | None:
    """A diagnostic as JSON can hold it: constant draws give NaN, stored as null."""
    value = float(value)
    return value if np.isfinite(value) else None


def _save_draws(idata: Any, path: Path) -> None:
    with open(path, "wb") as out:
        np.savez(out, **{name: values.values for name, values in
                         idata.posterior.data_vars.items()})


def _dataset(arrays: dict[str, np.ndarray]) -> Any:
    """Posterior draws ``(chain, draw, ...)`` as an xarray Dataset (no coordinates)."""
    import xarray as xr

    return xr.Dataset({name: (("chain", "draw", *(f"{name}_dim_{k}" for k in range(
        value.ndim - 2))), value) for name, value in arrays.items()})


def _read_unprefixed_names(idata: Any, design: Design) -> None:
    """Fits saved before variable names had role prefixes called ``alpha_0`` what is now
    ``adstock_alpha_0``: rename them so an older champion still loads."""
    renames = {}
    for block in design.blocks:
        for role, transform in ((ADSTOCK, block.adstock), (SATURATION, block.saturation)):
            for p in transform.parameter_names:
                old = f"{p}_{block.number}"
                if old in idata.posterior and block.variable(role, p) not in idata.posterior:
                    renames[old] = block.variable(role, p)
    if renames:
        for group in idata.groups():
            data = getattr(idata, group)
            present = {k: v for k, v in renames.items() if k in data}
            if present:
                setattr(idata, group, data.rename(present))


def _read_design_version_1(idata: Any, design: Design) -> None:
    """Fits saved before ``DESIGN_VERSION`` 2 used uncentred controls and, in geo models, shared
    seasonal coefficients plus each geo's deviation: rewrite their baseline draws in today's
    terms (the same expected KPI) so an older champion still loads and predicts."""
    posterior = idata.posterior
    coef = posterior[BASELINE_COEF].values                     # (chain, draw, P [+ F])
    dims = posterior[BASELINE_COEF].dims
    update = {}
    pooling = design.season_pooling
    if pooling is not None and coef.shape[-1] == len(design.baseline_names) + pooling.shape[1]:
        n_fourier, n_geos = pooling.shape[1], design.n_geos
        first = int(np.argmax(pooling.any(axis=1)))
        shared = coef[..., first:first + n_fourier]
        rest = coef[..., first + n_fourier:]
        per_geo = rest[..., :n_geos * n_fourier] + np.tile(shared, n_geos)
        coef = np.concatenate([coef[..., :first], per_geo, rest[..., n_geos * n_fourier:]],
                              axis=-1)
        update[SEASON_MEAN] = (dims[:2] + (f"{SEASON_MEAN}_dim_0",), shared)
    names = design.baseline_names
    controls = [names.index(c) for c in design.covariate_names[:len(design.covariate_center)]]
    shift = coef[..., controls] @ (design.covariate_center / design.covariate_scale)
    coef = coef.copy()
    coef[..., :design.n_geos] += shift[..., None]              # intercept[g] columns come first
    update[BASELINE_COEF] = (dims, coef)
    stale = [BASELINE_COEF, *(d for d in dims[2:] if d in posterior.coords)]
    idata.posterior = posterior.drop_vars(stale).assign(update)


def _summed(pointwise: np.ndarray) -> tuple[float, float]:
    """A sum over weeks and its standard error, as ArviZ gives for an elpd."""
    return float(pointwise.sum()), float(np.sqrt(len(pointwise) * pointwise.var()))


def loo_difference(better: FitResult, other: FitResult) -> tuple[float, float]:
    """How much better ``better`` predicts a left-out week than ``other`` (same weeks), summed
    over weeks, and the standard error of that difference (paired by week, as ArviZ's
    ``compare``): far smaller than either fit's own, since both miss the same odd weeks."""
    return _summed(better.loo_pointwise()[0] - other.loo_pointwise()[0])

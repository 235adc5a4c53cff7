"""Model specification (what to fit) and design (the scaled arrays the model sees).

Keeping the two apart follows Meridian: the spec is small, serialisable configuration; the design
is derived deterministically from a panel and a spec, so a saved run can rebuild it exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from liftos.config import ChannelConfig, Template
from liftos.data import Panel
from liftos.errors import InputError
from liftos.features.calendar import event_dummies, fourier_features, level_steps, linear_trend
from liftos.features.transforms import lagged

MIN_ROWS_PER_PARAMETER = 2
GEO_SEASON_SIGMA = 0.5  # prior sd of a geo's seasonal deviation from the shared shape


# Variable roles: a block's parameters are prefixed by the transformation that owns them, so a
# saturation parameter can never collide with an adstock one of the same name.
ADSTOCK, SATURATION, EFFECT = "adstock", "saturation", "effect"
EFFECT_GEO_SD, EFFECT_GEO_Z, LAGGED = "effect_geo_sd", "effect_geo_z", "lagged"
ROAS_MULTIPLE, ROAS_UNIT = "roas_multiple", "roas_unit"
BASELINE_COEF, NOISE_SD, KPI, CALIBRATION = "baseline_coef", "sigma", "kpi", "calibration"
# 2: a geo model's controls centred on their mean and seasonality on the shared shape
DESIGN_VERSION = 2
SEASON_MEAN = "season_mean"  # a geo model's shared seasonal shape, each geo's Fourier prior mean


def variable_name(role: str, block: int, parameter: str = "") -> str:
    """``adstock_alpha_0``, ``saturation_lam_1``, ``effect_0``, ``lagged_2``."""
    return f"{role}_{parameter}_{block}" if parameter else f"{role}_{block}"


@dataclass(frozen=True)
class ChannelBlock:
    """Channels that share functional forms (and prior families) get one vectorised term."""

    channels: tuple[str, ...]
    indices: tuple[int, ...]
    configs: tuple[ChannelConfig, ...]
    number: int = 0

    def variable(self, role: str, parameter: str = "") -> str:
        """This block's PyMC variable of ``role``: the one owner of model variable names."""
        return variable_name(role, self.number, parameter)

    def weights(self, xp: Any, mask: np.ndarray, params: dict[str, Any]) -> Any:
        """Adstock weights ``(..., L, Cb)``, cut at each channel's own window, then normalised;
        ``xp`` is numpy (posterior draws) or pytensor (inside the model)."""
        lags = np.arange(self.max_lag, dtype=float)  # constants, for pytensor too
        raw = self.adstock.model_copy(update={"normalize": False}).weights(xp, lags, **params)
        masked = raw if mask.all() else raw * mask
        return masked / masked.sum(axis=-2, keepdims=True) if self.adstock.normalize else masked

    @property
    def adstock(self):
        return self.configs[0].adstock

    @property
    def saturation(self):
        return self.configs[0].saturation

    @property
    def roas_priced(self) -> bool:
        """Whether the block's prior is on ROAS (its effect then derives from it)."""
        return self.configs[0].roas_prior is not None

    @property
    def max_lag(self) -> int:
        return max(c.adstock.max_lag for c in self.configs)

    def lag_mask(self) -> np.ndarray:
        """``(L, Cb)``: 1 up to each channel's own carry-over window, 0 beyond it."""
        lags = np.arange(self.max_lag)[:, None]
        return (lags < np.array([c.adstock.max_lag for c in self.configs])[None, :]).astype(float)


@dataclass(frozen=True)
class Calibration:
    """Outside knowledge of one channel's total contribution over a window, in KPI units, with
    its standard error: a lift test, or what an earlier model implies for this window. It enters
    the model as an extra likelihood term on the modelled contribution."""

    channel: str
    contribution: float
    sd: float
    start: str | None = None   # first week start included (YYYY-MM-DD); None: from the start
    end: str | None = None     # last week start included; None: to the end
    source: str = ""

    def __post_init__(self) -> None:
        if not self.sd > 0:
            raise ValueError(f"calibration for '{self.channel}': sd must be > 0, got {self.sd}")


@dataclass(frozen=True)
class ModelSpec:
    template: Template
    channels: tuple[str, ...]
    controls: tuple[str, ...] = ()
    target: str = "y"
    calibrations: tuple[Calibration, ...] = ()

    @property
    def fourier_order(self) -> int:
        return self.template.seasonality.yearly_fourier_order

    @property
    def events(self) -> dict[str, list[str]]:
        return {event.name: event.dates for event in self.template.events}

    def channel_config(self, channel: str) -> ChannelConfig:
        return self.template.channel(channel)

    def blocks(self) -> list[ChannelBlock]:
        groups: dict[tuple, list[int]] = {}
        for i, channel in enumerate(self.channels):
            groups.setdefault(_form_key(self.channel_config(channel)), []).append(i)
        return [ChannelBlock(tuple(self.channels[i] for i in idx), tuple(idx),
                             tuple(self.channel_config(self.channels[i]) for i in idx), b)
                for b, idx in enumerate(groups.values())]

    def calibrated_within(self, dates: np.ndarray) -> ModelSpec:
        """Only the calibrations whose whole window lies within ``dates``: a refit on fewer
        weeks (holdout, backtest fold, sub-window) cannot match a lift measured partly over
        weeks it lacks."""
        return replace(self, calibrations=tuple(
            c for c in self.calibrations if window_within(c.start, c.end, dates)))

    def uncalibrated(self, channels: tuple[str, ...] | None = None) -> ModelSpec:
        """Without the calibrations of ``channels`` (None: all). A refit whose KPI or spend is
        not the real one (a simulated twin, a recovery replica, a time-shuffled channel) must
        not be pulled towards what was measured in the real world."""
        kept = () if channels is None else tuple(
            c for c in self.calibrations if c.channel not in channels)
        return replace(self, calibrations=kept)

    def n_parameters(self, n_geos: int) -> int:
        """Free parameters, for the too-few-rows check and the data-to-parameter ratio."""
        per_channel = sum(len(self.channel_config(c).adstock.parameter_names)
                          + len(self.channel_config(c).saturation.parameter_names) + 1
                          for c in self.channels)
        geo_terms = (n_geos + 1) * len(self.channels) if n_geos > 1 else 0
        baseline = n_geos * ((2 if self.template.trend else 1) + self.template.level.knots)
        seasonal = 2 * self.fourier_order * (1 + (n_geos if n_geos > 1 else 0))
        return (per_channel + geo_terms + baseline + seasonal
                + len(self.controls) + len(self.events) + 1)

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.template.model_dump(mode="json"), "channels": list(self.channels),
                "controls": list(self.controls), "target": self.target,
                "calibrations": [asdict(c) for c in self.calibrations]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(Template.model_validate(data["template"]), tuple(data["channels"]),
                   tuple(data["controls"]), data["target"],
                   tuple(Calibration(**c) for c in data.get("calibrations", [])))

    def sha256(self) -> str:
        """The whole spec, calibration values included: what identifies the model's posterior
        (with the data), where ``signature`` identifies only its compiled graph."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def signature(self, n_geos: int, sampler: str) -> str:
        """Everything that fixes the compiled model's graph and parameter shapes, not the data:
        calibration targets are data, only their channels shape the graph; the number of weeks
        is data too (a model compiled on 155 weeks samples 156 to the same posterior as one
        compiled on 156), so next week's refresh reuses this week's compiled model."""
        spec = {**self.to_dict(), "calibrations": [c.channel for c in self.calibrations]}
        blob = json.dumps({"spec": spec, "geos": n_geos, "sampler": sampler}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _form_key(config: ChannelConfig) -> tuple:
    adstock, saturation = config.adstock, config.saturation
    return (
        adstock.type, getattr(adstock, "kind", None), adstock.normalize, saturation.type,
        tuple(adstock.priors[p].dist for p in adstock.parameter_names),
        tuple(saturation.priors[p].dist for p in saturation.parameter_names),
        config.effect_prior.dist, config.roas_prior.dist if config.roas_prior else None,
    )


@dataclass(frozen=True)
class Baseline:
    """The non-media regressors and their coefficients' priors."""

    matrix: np.ndarray            # (N, P)
    names: list[str]
    sigma: np.ndarray             # (P,) prior sd of each coefficient
    pooling: np.ndarray | None    # (P, F) geo Fourier columns -> the shared shape, geo models


@dataclass
class Design:
    """Scaled model inputs. Spend is divided by each geo-channel's maximum and the KPI by each
    geo's maximum, so priors are on a unit scale whatever the currency or business size."""

    y: np.ndarray                 # (G, T) scaled KPI
    y_scale: np.ndarray           # (G,)
    x_scale: np.ndarray           # (G, C)
    lagged: list[np.ndarray]      # per block (G, T, L, Cb) of scaled spend
    masks: list[np.ndarray]       # per block (L, Cb)
    covariates: np.ndarray        # (G, T, K + E): scaled controls then event flags
    covariate_scale: np.ndarray   # (K,)
    covariate_center: np.ndarray  # (K,) each control's mean, subtracted before scaling
    fourier: np.ndarray           # (T, 2 * order)
    trend: np.ndarray             # (T,)
    blocks: list[ChannelBlock] = field(default_factory=list)
    geos: list[str] = field(default_factory=list)
    covariate_names: list[str] = field(default_factory=list)
    has_trend: bool = True
    level_knots: int = 0
    level_step_sd: float = 0.05
    trend_span: tuple[np.datetime64, np.datetime64] | None = None
    calibration_mask: np.ndarray | None = None     # (K, N) rows inside each calibration window
    calibration_target: np.ndarray | None = None   # (K,) contribution / mean KPI scale
    calibration_sd: np.ndarray | None = None       # (K,)
    reference_roas: float = 0.0   # media_share x total KPI / total spend (ROAS-prior blocks)

    @property
    def n_geos(self) -> int:
        return self.y.shape[0]

    @property
    def geo_kpi_scale(self) -> np.ndarray:
        """``(G,)`` each geo's KPI scale over the mean one: what a scaled row is worth."""
        return self.y_scale / self.y_scale.mean()

    def roas_unit(self, b: int) -> np.ndarray:
        """``(Cb,)`` reference ROAS x the block's channels' total spend over the mean KPI
        scale: a channel's effect is its ROAS multiple x this / its summed saturated spend."""
        first_lag = self.lagged[b][:, :, 0, :]  # (G, T, Cb) scaled spend
        indices = list(self.blocks[b].indices)
        spend = (first_lag.sum(axis=1) * self.x_scale[:, indices]).sum(axis=0)
        return self.reference_roas * spend / self.y_scale.mean()

    @property
    def baseline_names(self) -> list[str]:
        return self._baseline.names

    @property
    def baseline_prior_sigma(self) -> np.ndarray:
        return self._baseline.sigma

    @property
    def season_pooling(self) -> np.ndarray | None:
        """``(P, F)`` in a geo model: 1 where baseline column p is a geo's Fourier term f, so
        the prior mean of each geo's seasonal coefficients is the shared shape (``SEASON_MEAN``)."""
        return self._baseline.pooling

    def baseline_matrix(self) -> np.ndarray:
        """``(N, P)`` non-media regressors, rows ordered geo-major (N = G * T)."""
        return self._baseline.matrix

    @cached_property
    def _baseline(self) -> Baseline:
        """Per-geo intercepts and trends, seasonality, controls and events. A geo model gives
        each geo its own Fourier coefficients centred on a shared shape (partial pooling, prior
        sd ``GEO_SEASON_SIGMA``) rather than a shared coefficient plus a deviation per geo: only
        their sum is identified, a ridge (posterior correlation -0.9999) that kept the sampler
        at its maximum tree depth (8 geos x 156 weeks: bulk ESS 30, 466 s of sampling)."""
        G, T = self.y.shape
        onehot = np.repeat(np.eye(G), T, axis=0)
        trend = np.tile(self.trend, G)[:, None]
        n_fourier = self.fourier.shape[1]
        blocks = [(onehot, [f"intercept[{g}]" for g in self.geos], 2.0)]
        if self.has_trend:
            blocks.append((onehot * trend, [f"trend[{g}]" for g in self.geos], 1.0))
        if self.level_knots:
            blocks.append((_per_geo(onehot, level_steps(self.trend, self.level_knots)),
                           [f"level[{g}][{k}]" for g in self.geos
                            for k in range(self.level_knots)], self.level_step_sd))
        pooling = None
        if G > 1:
            first = sum(len(ns) for _, ns, _ in blocks)
            pooling = np.zeros((first + G * n_fourier, n_fourier))
            pooling[first:] = np.tile(np.eye(n_fourier), (G, 1))
            blocks.append((_per_geo(onehot, self.fourier),
                           [f"fourier[{g}][{k}]" for g in self.geos for k in range(n_fourier)],
                           GEO_SEASON_SIGMA))
        else:
            blocks.append((self.fourier, [f"fourier[{k}]" for k in range(n_fourier)], 1.0))
        blocks.append((self.covariates.reshape(G * T, -1), list(self.covariate_names), 1.0))
        names = [n for _, ns, _ in blocks for n in ns]
        if pooling is not None:  # the controls' and events' rows, after the Fourier ones
            pooling = np.vstack([pooling, np.zeros((len(names) - len(pooling), n_fourier))])
        return Baseline(matrix=np.concatenate([m for m, _, _ in blocks], axis=1), names=names,
                        sigma=np.concatenate([np.full(len(ns), s) for _, ns, s in blocks]),
                        pooling=pooling)

    def column_levels(self) -> np.ndarray:
        """``(G, P)`` what the sampler's baseline columns are centred by: each geo's mean of
        its trend and level ramps and, in a geo model, of the controls and events; 0 elsewhere.
        Each geo's intercept is then its KPI's level, not its value in the first week or at a
        control's zero: a ramp from 0 to 1 and the intercept are correlated (-0.87), which cut a
        3-geo fit's trend and price ESS to ~300 of 1,000 draws once media was centred.
        ``FitResult.restore_intercepts`` gives the stored draws back their own columns. National
        controls stay uncentred, as in ``_covariate_scaling`` (centring them too drew single
        divergent transitions in 3 of the accuracy suite's 30 fits)."""
        G, T = self.y.shape
        centred = np.zeros(len(self.baseline_names), dtype=bool)
        centred[G:G * (1 + int(self.has_trend) + self.level_knots)] = True
        if G > 1:
            centred[len(centred) - self.covariates.shape[2]:] = True
        levels = self.baseline_matrix().reshape(G, T, -1).mean(axis=1)
        return np.where(centred[None, :], levels, 0.0)

    def data_arrays(self) -> dict[str, np.ndarray]:
        """The values behind the model's ``pm.Data`` containers, by name.

        Geo and week are flattened into one row axis (N = G * T): small dense 1-D/2-D/3-D
        arrays compile and run much faster than 4-D broadcasting in the numba backend."""
        G, T = self.y.shape
        centred = self.baseline_matrix().reshape(G, T, -1) - self.column_levels()[:, None, :]
        arrays = {"y": self.y.reshape(-1), "baseline": centred.reshape(G * T, -1)}
        if G > 1:
            arrays["geo_onehot"] = np.repeat(np.eye(G), T, axis=0)
        for b, x in enumerate(self.lagged):
            arrays[variable_name(LAGGED, b)] = x.reshape(G * T, -1)  # (N, L * Cb), lag-major
        priced = [b for b, block in enumerate(self.blocks) if block.roas_priced]
        arrays.update({variable_name(ROAS_UNIT, b): self.roas_unit(b) for b in priced})
        if priced and G > 1:
            arrays["row_kpi_scale"] = np.repeat(self.geo_kpi_scale, T)
        if self.calibration_mask is not None:
            arrays["calibration_mask"] = self.calibration_mask * np.repeat(
                self.geo_kpi_scale, T)[None, :]
            arrays["calibration_target"] = self.calibration_target
            arrays["calibration_sd"] = self.calibration_sd
        return arrays


def build_design(panel: Panel, spec: ModelSpec, source: str = "",
                 reference: Design | None = None) -> Design:
    """Scaled model inputs for ``panel``. With ``reference`` (the design a model was fitted on),
    the reference's scales and trend span are kept, so that model can predict new weeks."""
    if reference is None:
        check_enough_rows(panel, spec, source)
        y_scale = np.abs(panel.target).max(axis=1)
        x_scale = panel.spend.max(axis=1)
        x_scale = np.where(x_scale > 0, x_scale, 1.0)
        trend_span = (panel.dates[0], panel.dates[-1])
    else:
        y_scale, x_scale, trend_span = reference.y_scale, reference.x_scale, reference.trend_span
    scaled_spend = panel.spend / x_scale[:, None, :]
    blocks = spec.blocks()
    lagged_blocks = [lagged(scaled_spend[:, :, list(block.indices)], block.max_lag)
                     for block in blocks]
    if reference is not None:
        covariate_scale, covariate_center = reference.covariate_scale, reference.covariate_center
    else:
        covariate_scale, covariate_center = _covariate_scaling(panel)
    controls = (panel.control_values - covariate_center) / covariate_scale
    events = event_dummies(panel.dates, spec.events)
    covariates = np.concatenate(
        [controls, np.broadcast_to(events, (panel.target.shape[0],) + events.shape)], axis=2)
    return Design(
        y=panel.target / y_scale[:, None],
        y_scale=y_scale,
        x_scale=x_scale,
        lagged=lagged_blocks,
        masks=[block.lag_mask() for block in blocks],
        covariates=covariates,
        covariate_scale=covariate_scale,
        covariate_center=covariate_center,
        fourier=fourier_features(panel.dates, spec.fourier_order),
        trend=linear_trend(panel.dates, *trend_span),
        trend_span=trend_span,
        blocks=blocks,
        geos=list(panel.geos),
        covariate_names=[*panel.controls, *(f"event:{name}" for name in spec.events)],
        has_trend=spec.template.trend,
        level_knots=spec.template.level.knots,
        level_step_sd=spec.template.level.step_sd,
        reference_roas=_reference_roas(panel, spec.template.media_share),
        **_calibration_arrays(panel, spec, y_scale),
    )


def _per_geo(onehot: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``(G * T, G * K)``: the shared ``(T, K)`` columns once per geo, zero in other geos'
    rows (geo-major), so each geo gets its own coefficients on the same shape."""
    G = onehot.shape[1]
    return (onehot[:, :, None] * np.tile(columns, (G, 1))[:, None, :]).reshape(len(onehot), -1)


def _covariate_scaling(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Each control's scale (its largest absolute value, so a coefficient is the KPI change for
    the control at its largest) and, in a geo model, centre (its mean). Centred, a control that
    barely moves (a price index near 1) is no longer a second intercept: uncentred, the two
    traded off along a ridge (posterior correlation -0.998) that held a 3-geo fit to bulk ESS
    22. National fits keep centre 0, as validated before (centred, the demo's fit drew one
    divergent transition and was refused; not yet studied)."""
    if not panel.controls:
        return np.zeros(0), np.zeros(0)
    values = panel.control_values
    scale = np.abs(values).max(axis=(0, 1))
    centre = values.mean(axis=(0, 1)) if len(panel.geos) > 1 else np.zeros(len(panel.controls))
    return np.where(scale > 0, scale, 1.0), centre


def _reference_roas(panel: Panel, media_share: float) -> float:
    spend = float(panel.spend.sum())
    return media_share * float(panel.target.sum()) / spend if spend > 0 else 0.0


def _calibration_arrays(panel: Panel, spec: ModelSpec, y_scale: np.ndarray) -> dict[str, Any]:
    if not spec.calibrations:
        return {}
    unknown = [c.channel for c in spec.calibrations if c.channel not in spec.channels]
    if unknown:
        raise InputError("calibration_channel", f"calibration for channel(s) {unknown} that the "
                         f"model does not have ({list(spec.channels)})", panel.source)
    masks = []
    for c in spec.calibrations:
        inside = week_mask(panel.dates, c.start, c.end)
        if not inside.any():
            raise InputError("calibration_window", f"calibration for '{c.channel}' "
                             f"({c.start} to {c.end}) covers no week of the data", panel.source)
        masks.append(np.tile(inside, len(panel.geos)).astype(float))
    unit = float(y_scale.mean())
    return {"calibration_mask": np.array(masks),
            "calibration_target": np.array([c.contribution / unit for c in spec.calibrations]),
            "calibration_sd": np.array([c.sd / unit for c in spec.calibrations])}


def window_within(start: str | None, end: str | None, dates: np.ndarray) -> bool:
    """Does the window start and end within ``dates`` and hold at least one of its weeks?"""
    days = np.asarray(dates, dtype="datetime64[D]")
    return ((start is None or np.datetime64(start, "D") >= days.min())
            and (end is None or np.datetime64(end, "D") <= days.max())
            and bool(week_mask(days, start, end).any()))


def week_mask(dates: np.ndarray, start: str | None, end: str | None) -> np.ndarray:
    """Weeks starting between ``start`` and ``end`` (inclusive; None leaves that side open)."""
    days = np.asarray(dates, dtype="datetime64[D]")
    inside = np.ones(len(days), dtype=bool)
    if start is not None:
        inside &= days >= np.datetime64(start, "D")
    if end is not None:
        inside &= days <= np.datetime64(end, "D")
    return inside


def check_enough_rows(panel: Panel, spec: ModelSpec, source: str = "") -> None:
    rows = panel.target.size
    parameters = spec.n_parameters(len(panel.geos))
    needed = MIN_ROWS_PER_PARAMETER * parameters
    if rows < needed:
        raise InputError(
            "enough_rows",
            f"{rows} weekly rows for {parameters} parameters; need at least {needed} "
            f"({MIN_ROWS_PER_PARAMETER} per parameter). Add history, or fit fewer channels, "
            "controls or seasonal terms", source or panel.source)

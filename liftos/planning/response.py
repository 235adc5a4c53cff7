"""The KPI response to a weekly budget held for a horizon, on every posterior draw.

A plan runs for ``horizon`` weeks, after the current allocation and before it resumes; spend keeps
working for its adstock window, so the plan's effect is counted over ``horizon + L - 1`` weeks
(``L`` the longest carry-over window) and compared with the current allocation over the same
weeks. With per-draw parameters the lift is a distribution, not a number.

Every (geo, channel) term depends on its own spend only, so the gradient of the lift is one
vectorised central difference per evaluation: exact up to rounding, and as cheap as two
evaluations whatever the number of variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

CURRENT_WEEKS = 13


@dataclass(frozen=True)
class SaturationBlock:
    """One saturation form applied to some channels, with per-draw parameters ``(S, Cb)``."""

    transform: Any
    indices: tuple[int, ...]
    params: dict[str, np.ndarray]


@dataclass(frozen=True)
class ResponseModel:
    channels: tuple[str, ...]
    geos: tuple[str, ...]
    effect: np.ndarray          # (S, G, C): KPI units at full saturation
    weights: np.ndarray         # (S, L, C): adstock weights, zero beyond a channel's window
    blocks: tuple[SaturationBlock, ...]
    x_scale: np.ndarray         # (G, C): spend that maps to saturation input 1
    current: np.ndarray         # (G, C): weekly spend now (mean of the last 13 weeks)
    # per horizon: what every evaluation of a plan shares (a solver evaluates hundreds)
    _fixed: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False, compare=False)

    @property
    def draws(self) -> int:
        return self.effect.shape[0]

    @classmethod
    def from_fit(cls, fit: Any, max_draws: int = 1000) -> ResponseModel:
        """The champion's posterior (thinned to ``max_draws``), current = its last 13 weeks."""
        index = fit.thinned_index(max_draws)
        design = fit.design
        n_geos, n_channels = design.x_scale.shape
        max_lag = max(block.max_lag for block in design.blocks)
        effect = np.zeros((len(index), n_geos, n_channels))
        weights = np.zeros((len(index), max_lag, n_channels))
        blocks = []
        for b, block in enumerate(design.blocks):
            ad, sat, block_effect = fit._block_params(b, index)
            cols = list(block.indices)
            effect[:, :, cols] = np.broadcast_to(block_effect, (len(index), n_geos, len(cols)))
            weights[:, :block.max_lag, cols] = block.weights(np, design.masks[b], ad)
            blocks.append(SaturationBlock(block.saturation, block.indices, sat))
        effect = effect * design.y_scale[None, :, None]
        current = fit.panel.spend[:, -CURRENT_WEEKS:, :].mean(axis=1)
        return cls(tuple(fit.spec.channels), tuple(fit.panel.geos), effect, weights,
                   tuple(blocks), design.x_scale, current)

    @classmethod
    def from_truth(cls, template: Any, truth: dict[str, Any], spend: np.ndarray
                   ) -> ResponseModel:
        """The simulator's true response (one "draw"), for judging plans against the truth;
        ``spend`` ``(G, T, C)`` is the simulated spend (current = its last 13 weeks)."""
        channels = tuple(truth["channels"])
        configs = [template.channel(name) for name in channels]
        max_lag = max(config.adstock.max_lag for config in configs)
        n_geos = len(truth["geos"])
        effect = np.zeros((1, n_geos, len(channels)))
        weights = np.zeros((1, max_lag, len(channels)))
        scale = np.zeros((n_geos, len(channels)))
        blocks = []
        for c, (name, config) in enumerate(zip(channels, configs, strict=True)):
            params = truth["channels"][name]
            effect[0, :, c], scale[:, c] = params["effect"], params["scale"]
            ad = {k: np.array([params["adstock"][k]]) for k in config.adstock.parameter_names}
            lags = np.arange(config.adstock.max_lag, dtype=float)
            weights[0, :config.adstock.max_lag, c] = config.adstock.weights(np, lags, **ad)[:, 0]
            sat = {k: np.array([[params["saturation"][k]]])
                   for k in config.saturation.parameter_names}
            blocks.append(SaturationBlock(config.saturation, (c,), sat))
        current = spend[:, -CURRENT_WEEKS:, :].mean(axis=1)
        return cls(channels, tuple(truth["geos"]), effect, weights, tuple(blocks), scale, current)

    # ------------------------------------------------------------------------------ response
    def saturation(self, x: np.ndarray) -> np.ndarray:
        """``x`` ``(S, ..., C)`` in scaled units -> saturated, each block with its parameters."""
        out = np.empty_like(x)
        extra = (None,) * (x.ndim - 2)
        for block in self.blocks:
            cols = list(block.indices)
            params = {k: v[(slice(None), *extra, slice(None))] for k, v in block.params.items()}
            out[..., cols] = block.transform.apply(np, x[..., cols], **params)
        return out

    def _horizon(self, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a plan of ``horizon`` weeks: ``m`` (S, T, C), the share of week t's adstock that
        comes from plan weeks; the total adstock weight ``(S, C)`` (1 when normalised); and the
        saturated current allocation ``(S, G, C)``. Computed once per horizon."""
        if horizon not in self._fixed:
            n_lags = self.weights.shape[1]
            t = np.arange(horizon + n_lags - 1)[:, None]
            lags = np.arange(n_lags)[None, :]
            inside = ((t - lags >= 0) & (t - lags < horizon)).astype(float)   # (T, L)
            total = self.weights.sum(axis=1)
            now = self.saturation(total[:, None, :] * self.current[None] / self.x_scale[None])
            self._fixed[horizon] = (np.einsum("tl,slc->stc", inside, self.weights), total, now)
        return self._fixed[horizon]

    def lift_terms(self, plan: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """KPI lift of running ``plan`` (G, C weekly spend) for ``horizon`` weeks instead of the
        current allocation, per draw and (geo, channel): ``(S, G, C)``, and its derivative with
        respect to each plan entry (same shape)."""
        exposure, total, now = self._horizon(horizon)
        m = exposure[:, :, None, :]                                       # (S, T, 1, C)
        base = (total[:, None, None, :] - m) * self.current[None, None]    # (S, T, G, C)
        adstocked = m * plan[None, None] + base
        scale = self.x_scale[None, None]
        step = 1e-4 * np.maximum(adstocked, 1.0)
        up = self.saturation((adstocked + step) / scale)
        down = self.saturation((adstocked - step) / scale)
        level = self.saturation(adstocked / scale)
        effect = self.effect
        terms = effect * (level.sum(axis=1) - adstocked.shape[1] * now)
        slope = effect * ((up - down) / (2 * step) * m).sum(axis=1)
        return terms, slope

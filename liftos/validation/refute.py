"""Refutation tests: the model should find nothing where there is nothing.

* Placebo: a channel of random spend (same level and variability as the real channels, but
  unrelated to the KPI) must get close to zero contribution.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from liftos.data import Panel

PLACEBO = "placebo"


def with_placebo(panel: Panel, seed: int = 0) -> Panel:
    """``panel`` plus a ``placebo`` channel: each real week's spend of a random channel, shuffled
    in time, so it looks like real spend but cannot have caused anything."""
    rng = np.random.default_rng(seed)
    source = panel.spend[:, :, rng.integers(panel.spend.shape[2])]
    placebo = np.stack([rng.permutation(source[g]) for g in range(source.shape[0])])
    return dataclasses.replace(
        panel, channels=[*panel.channels, PLACEBO],
        spend=np.concatenate([panel.spend, placebo[:, :, None]], axis=2))


def time_shuffled(panel: Panel, channel: str, seed: int = 0) -> Panel:
    """``channel``'s weekly spend permuted in time: any real effect it had is destroyed."""
    rng = np.random.default_rng(seed)
    c = panel.channels.index(channel)
    spend = panel.spend.copy()
    order = rng.permutation(panel.n_weeks)
    spend[:, :, c] = spend[:, order, c]
    return dataclasses.replace(panel, spend=spend)


def subset_windows(panel: Panel, fraction: float = 0.8) -> list[Panel]:
    """The first and the last ``fraction`` of the weeks (two shifted windows, same length)."""
    weeks = max(2, round(fraction * panel.n_weeks))
    first = panel.window(until=str(panel.dates[weeks - 1]))
    last = panel.window(last_weeks=weeks)
    return [first, last]


def twin_panel(result, draw: int) -> tuple[Panel, dict[str, float]]:
    """A simulated twin: the KPI drawn from the posterior predictive of one posterior draw with
    the same spend and design; returns it with that draw's true ROAS per channel."""
    index = np.array([draw])
    contributions = result.contributions(index)                      # (1, G, T, C)
    target = result.predictive(index, contrib=contributions, seed=draw)[0]
    twin = dataclasses.replace(result.panel, target=np.maximum(target, 1e-9),
                               notes=[*result.panel.notes, f"simulated twin of draw {draw}"])
    spend = result.panel.spend.sum(axis=(0, 1))
    truth = contributions[0].sum(axis=(0, 1)) / spend
    return twin, {c: float(truth[i]) for i, c in enumerate(result.panel.channels)}


def robustness_values(result) -> dict[str, float]:
    """How strong an omitted confounder would have to be to erase each channel's effect
    (Cinelli & Hazlett 2020, robustness value for q = 1): the share of the residual variance of
    both the channel's media term and the KPI it would have to explain. Computed on the linear
    regression of the KPI on the posterior-mean media terms and the baseline regressors."""
    index = result.band_index()
    media = result.contributions(index).mean(axis=0).sum(axis=0)     # (T, C) summed over geos
    baseline = result.design.baseline_matrix()
    G, T = result.design.y.shape
    base_t = baseline.reshape(G, T, -1).sum(axis=0)                  # (T, P)
    y = result.panel.target.sum(axis=0)
    x = np.column_stack([media, base_t])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    dof = max(len(y) - np.linalg.matrix_rank(x), 1)
    sigma2 = (residual ** 2).sum() / dof
    variances = np.diag(sigma2 * np.linalg.pinv(x.T @ x))
    out = {}
    for c, channel in enumerate(result.panel.channels):
        f2 = coef[c] ** 2 / max(variances[c], 1e-300) / dof
        out[channel] = float(0.5 * (np.sqrt(f2 * f2 + 4 * f2) - f2))
    return out

"""The two charts a marketer reads a plan by: where each channel sits on its response curve now
and under the plan, and current vs planned spend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from liftos.model.results import hdi
from liftos.planning.planner import BudgetPlan
from liftos.planning.response import ResponseModel


def weekly_response(response: ResponseModel, channel: int, weekly: np.ndarray) -> np.ndarray:
    """Steady-state weekly KPI ``(S, P)`` of ``weekly`` total spend on one channel, split over
    geos as now (normalised adstock: constant spend adstocks to itself)."""
    current = response.current[:, channel]
    shares = current / current.sum() if current.sum() > 0 else np.full(len(current),
                                                                       1 / len(current))
    carry = response.weights[:, :, channel].sum(axis=1)                       # (S,)
    x = (weekly[None, :, None] * shares[None, None, :] * carry[:, None, None]
         / response.x_scale[None, None, :, channel])                          # (S, P, G)
    full = np.zeros(x.shape + (len(response.channels),))
    full[..., channel] = x
    return (response.effect[:, None, :, channel]
            * response.saturation(full)[..., channel]).sum(axis=2)


def write_plan_charts(response: ResponseModel, plan: BudgetPlan, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    curves, bars = folder / "plan_response_curves.png", folder / "plan_spend.png"
    n = len(plan.channels)
    cols = min(n, 3)
    fig, axes = plt.subplots(int(np.ceil(n / cols)), cols, figsize=(4 * cols, 3 * np.ceil(n / cols)),
                             squeeze=False)
    for c, (ax, row) in enumerate(zip(axes.flat, plan.channels, strict=False)):
        grid = np.linspace(0, 2 * max(row.current_weekly, row.recommended_weekly, 1.0), 41)
        draws = weekly_response(response, c, grid)
        low, high = hdi(draws)
        ax.fill_between(grid, low, high, alpha=0.25)
        ax.plot(grid, draws.mean(axis=0))
        for spend, marker, label in ((row.current_weekly, "o", "current"),
                                     (row.recommended_weekly, "*", "plan")):
            point = weekly_response(response, c, np.array([spend]))[:, 0]
            p_low, p_high = hdi(point)
            ax.errorbar([spend], [point.mean()], yerr=[[point.mean() - p_low],
                                                        [p_high - point.mean()]],
                        fmt=marker, ms=9, capsize=3, label=label)
        ax.set_title(row.channel)
        ax.set_xlabel("weekly spend")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Weekly KPI response with 94% intervals: now and under the plan")
    fig.tight_layout()
    fig.savefig(curves, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.5 * n))
    y = np.arange(n)
    ax.barh(y - 0.2, [r.current_weekly for r in plan.channels], 0.4, label="current")
    ax.barh(y + 0.2, [r.recommended_weekly for r in plan.channels], 0.4, label="plan")
    ax.set_yticks(y, [r.channel for r in plan.channels])
    ax.set_xlabel("weekly spend")
    ax.legend()
    ax.set_title(f"{plan.objective} plan: expected lift {plan.lift_mean:,.0f} "
                 f"[{plan.lift_low:,.0f}, {plan.lift_high:,.0f}] over {plan.horizon_weeks} weeks")
    fig.tight_layout()
    fig.savefig(bars, dpi=110)
    plt.close(fig)
    return [curves, bars]

"""Posteriors as priors: what the champion learned, carried into the next fit.

Why contributions and not parameters: effect and saturation trade off along a ridge in the
posterior, so independent priors on each (moment-matched, even after converting them to the new
window's spend and KPI scales) put the prior's centre off that ridge. On the simulator that
biased a short-window refit by +10 to +24% in ROAS. What the data did identify is each channel's
contribution, so the earlier posterior is applied to the new window (its spend, carry-over and
saturation) and its implied contribution enters the new model as a calibration term.
"""

from __future__ import annotations

from liftos.data import Panel


def calibrations_from_posterior(result, panel: Panel, widen: float = 2.0, source: str = "",
                                max_draws: int = 500) -> tuple:
    """What an earlier posterior implies for each channel's contribution over ``panel``'s weeks
    (carry-over and saturation at this window's spend), as calibration terms whose sd is the
    posterior sd widened by ``widen``. Contribution is what the data identified well; single
    parameters are not (effect and saturation trade off along a ridge)."""
    from liftos.model.spec import Calibration

    if widen <= 0:
        raise ValueError(f"prior widening must be > 0, got {widen}")
    applied = result.on_panel(panel)
    index = applied.thinned_index(max_draws)
    totals = applied.contributions(index).sum(axis=(1, 2))       # (s, C)
    return tuple(Calibration(channel=name, contribution=float(totals[:, c].mean()),
                             sd=float(max(totals[:, c].std() * widen, 1e-9)),
                             start=str(panel.dates[0]), end=str(panel.dates[-1]), source=source)
                 for c, name in enumerate(panel.channels))

"""What a signal's shift did to the KPI: the tenant refitted with the signal as a control, its
per-unit effect (every posterior draw) times the shift's size, with a 94% interval.

An impact is *material* when its interval excludes zero and its mean is at least ``min_share``
of the mean weekly KPI: only then does the chain go on (``liftos.signal.impact``, and a budget
plan where the tenant asks for plans). Otherwise the impact is reported and remembered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from liftos.memory.store import Memory
from liftos.model.results import HDI_PROB, FitResult, hdi

MIN_SHARE = 0.01


@dataclass(frozen=True)
class SignalImpact:
    tenant: str
    signal: str
    week: str
    size: float            # the signal's change (index units, or mention-rate points)
    mean: float            # weekly KPI change it implies
    low: float
    high: float
    weekly_kpi: float      # the mean weekly KPI, for scale
    min_share: float
    kpi: str
    fit_dir: str
    chain: str = ""

    @property
    def material(self) -> bool:
        excludes_zero = self.low > 0 or self.high < 0
        return excludes_zero and abs(self.mean) >= self.min_share * self.weekly_kpi

    def describe(self) -> str:
        verdict = ("material" if self.material else
                   "not material (interval holds zero or under "
                   f"{self.min_share:.0%} of the weekly {self.kpi})")
        return (f"{self.signal} moved {self.size:+.3f} in the week of {self.week}: weekly "
                f"{self.kpi} change {self.mean:+,.0f} [{self.low:+,.0f}, {self.high:+,.0f}] "
                f"({HDI_PROB:.0%} interval; {self.mean / self.weekly_kpi:+.1%} of the weekly "
                f"{self.kpi}); {verdict}")

    def memory(self, run_id: str = "", run_url: str = "") -> Memory:
        return Memory(tenant=self.tenant, kind="insight", text=self.describe(),
                      run_id=run_id, run_url=run_url, key=f"signal-impact:{self.chain}",
                      date_end=dt.date.fromisoformat(self.week) if self.week else None,
                      facts={"chain": self.chain, "signal": self.signal, "size": self.size,
                             "impact_mean": self.mean, "impact_low": self.low,
                             "impact_high": self.high, "material": self.material})


def estimate(fit: FitResult, tenant: str, signal: str, size: float, week: str,
             min_share: float = MIN_SHARE, chain: str = "", fit_dir: str = "") -> SignalImpact:
    """The shift's weekly KPI impact on every posterior draw of a fit that has the signal."""
    draws = fit.control_draws(signal) * size
    low, high = hdi(draws[:, None])
    return SignalImpact(tenant=tenant, signal=signal, week=week, size=size,
                        mean=float(draws.mean()), low=float(low[0]), high=float(high[0]),
                        weekly_kpi=float(np.asarray(fit.panel.target).sum(axis=0).mean()),
                        min_share=min_share, kpi=fit.spec.template.kpi.name, fit_dir=fit_dir,
                        chain=chain)

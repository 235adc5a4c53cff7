"""Lift tests (experiments) as calibration: what a channel incrementally caused over a window.

Each experiment enters the model as a likelihood term on the channel's modelled contribution
over the test window (``liftos.model.spec.Calibration``). Before that, the uncalibrated model's
predicted lift interval is compared with each measured lift.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from liftos.model.results import hdi
from liftos.model.spec import Calibration, week_mask


class LiftTest(BaseModel):
    channel: str
    start: str
    end: str
    lift: float = Field(description="incremental KPI over the window")
    se: float = Field(gt=0, description="standard error of the measured lift")
    name: str = ""

    def calibration(self) -> Calibration:
        return Calibration(channel=self.channel, contribution=self.lift, sd=self.se,
                           start=self.start, end=self.end, source=self.name or "lift test")


class LiftAgreement(BaseModel):
    test: LiftTest
    predicted_mean: float
    predicted_low: float
    predicted_high: float
    contains: bool


def lift_agreement(result, tests: list[LiftTest]) -> list[LiftAgreement]:
    """Does the (uncalibrated) model's 94% interval for each test window contain the lift?"""
    index = result.band_index()
    contributions = result.contributions(index)                   # (s, G, T, C)
    out = []
    for test in tests:
        inside = week_mask(result.panel.dates, test.start, test.end)
        c = result.spec.channels.index(test.channel)
        predicted = contributions[:, :, inside, c].sum(axis=(1, 2))
        low, high = hdi(predicted)
        out.append(LiftAgreement(test=test, predicted_mean=float(predicted.mean()),
                                 predicted_low=float(low), predicted_high=float(high),
                                 contains=bool(low <= test.lift <= high)))
    return out

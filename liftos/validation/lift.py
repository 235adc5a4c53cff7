"""Lift tests (experiments) as calibration: what a channel incrementally caused over a window.

Each experiment enters the model as a likelihood term on the channel's modelled contribution
over the test window (``liftos.model.spec.Calibration``): a tenant's ``experiments`` file in
every refresh, ``liftos fit --lift-tests FILE`` for one fit. ``liftos validate --lift-tests``
instead compares a fit's predicted lift interval with each measured lift.

A file is CSV (a header row ``channel,start,end,lift,se[,name]``) or YAML (a list of mappings
with those keys); ``start`` and ``end`` are the first and last week starts (YYYY-MM-DD).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from liftos.errors import InputError
from liftos.model.results import hdi
from liftos.model.spec import Calibration, week_mask, window_within

FIELDS = ("channel", "start", "end", "lift", "se", "name")


class LiftTest(BaseModel):
    channel: str = Field(min_length=1)
    start: str
    end: str
    lift: float = Field(description="incremental KPI over the window")
    se: float = Field(gt=0, description="standard error of the measured lift")
    name: str = ""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso_week(cls, value: object) -> str:
        if isinstance(value, dt.date):
            return value.isoformat()
        try:
            return dt.date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError("expected a date YYYY-MM-DD") from None

    @field_validator("lift")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> LiftTest:
        if self.end < self.start:
            raise ValueError(f"the window ends ({self.end}) before it starts ({self.start})")
        return self

    def calibration(self) -> Calibration:
        return Calibration(channel=self.channel, contribution=self.lift, sd=self.se,
                           start=self.start, end=self.end, source=self.name or "lift test")

    def label(self) -> str:
        return f"{self.name or 'lift test'} ({self.channel}, {self.start} to {self.end})"


def split_within(tests: list[LiftTest], dates) -> tuple[list[LiftTest], list[LiftTest]]:
    """The tests whose whole window lies within ``dates``, and the others (not over yet, or
    from before the data starts): those cannot be matched to a contribution over these weeks,
    so they wait for data that holds them."""
    inside = [t for t in tests if window_within(t.start, t.end, dates)]
    return inside, [t for t in tests if t not in inside]


def read_lift_tests(path: Path, channels: tuple[str, ...] | None = None) -> list[LiftTest]:
    """Every experiment in ``path``; the first bad one is an :class:`InputError` naming the
    file, its line, the key and the rule. With ``channels``, an
    experiment on any other channel is refused too."""
    tests = []
    for line, row, lines in _rows(path):
        try:
            test = LiftTest(**{k: v for k, v in row.items() if k in FIELDS and v not in ("", None)})
        except ValidationError as exc:
            err = exc.errors()[0]
            column = ".".join(str(part) for part in err["loc"]) or None
            message = err["msg"].removeprefix("Value error, ")
            got = f" (got {err['input']!r})" if column and err["type"] != "missing" else ""
            raise InputError("lift_test", message + got, str(path), column,
                             lines.get(column, line)) from None
        if channels is not None and test.channel not in channels:
            raise InputError("lift_test_channel", f"channel {test.channel!r} is not one the model "
                             f"has ({', '.join(channels)})", str(path), "channel", line)
        tests.append(test)
    return tests


def _rows(path: Path) -> list[tuple[int, dict, dict[str, int]]]:
    """Per experiment: its first line, its mapping, and (YAML) the line of each key."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError("lift_test_file", f"cannot read: {exc.strerror}", str(path)) from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        missing = [k for k in FIELDS[:-1] if k not in (reader.fieldnames or ())]
        if missing:
            raise InputError("lift_test_header", f"missing column(s) {missing}; expected a header "
                             f"row {','.join(FIELDS)}", str(path), line=1)
        return [(reader.line_num, row, {}) for row in reader]
    try:
        # Every scalar as text (the model checks it): no half-parsed dates, and lines kept.
        node = yaml.compose(text, Loader=yaml.BaseLoader)
        entries = yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        raise InputError("lift_test_file", f"not valid YAML: {exc}", str(path)) from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError("lift_test_file", "expected a list of mappings with keys "
                         f"{', '.join(FIELDS)} (or a .csv file)", str(path))
    return [(item.start_mark.line + 1, entry,
             {key.value: key.start_mark.line + 1 for key, _ in item.value})
            for item, entry in zip(node.value, entries)]


class LiftAgreement(BaseModel):
    test: LiftTest
    predicted_mean: float
    predicted_low: float
    predicted_high: float
    contains: bool


def lift_agreement(result, tests: list[LiftTest]) -> list[LiftAgreement]:
    """Does the (uncalibrated) model's 94% interval for each test window contain the lift?"""
    out, draws = [], result.contributions(result.band_index())   # (s, G, T, C)
    for test in tests:
        predicted = window_contribution(result, draws, test.channel, test.start, test.end)
        low, high = hdi(predicted)
        out.append(LiftAgreement(test=test, predicted_mean=float(predicted.mean()),
                                 predicted_low=float(low), predicted_high=float(high),
                                 contains=bool(low <= test.lift <= high)))
    return out


def window_contribution(result, draws, channel: str, start: str | None, end: str | None):
    """``channel``'s contribution over the window, summed over geos, per draw of ``draws``
    (the fit's contributions, ``(s, G, T, C)``)."""
    inside = week_mask(result.panel.dates, start, end)
    return draws[:, :, inside, result.spec.channels.index(channel)].sum(axis=(1, 2))


def calibration_rows(result) -> list[dict]:
    """Each calibration of the fit beside what the calibrated posterior says for its window:
    a measurement the model could not come near is worth a look."""
    if not result.spec.calibrations:
        return []
    rows, draws = [], result.contributions(result.band_index())
    for c in result.spec.calibrations:
        window = window_contribution(result, draws, c.channel, c.start, c.end)
        low, high = hdi(window)
        rows.append({"source": c.source, "channel": c.channel, "start": c.start, "end": c.end,
                     "measured": c.contribution, "sd": c.sd, "model_mean": float(window.mean()),
                     "model_low": float(low), "model_high": float(high)})
    return rows

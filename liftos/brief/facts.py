"""Every number a brief may state, typed, rounded and traced to the field it came from.

A brief (written by a model or by templates) receives only these facts, and the grounding check
holds its text to them. Values are kept at full precision; ``decimals`` is the finest rounding a
brief may state them at, and the check accepts any coarser rounding of the same value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Unit = Literal["ratio", "money", "percent", "points", "score", "count", "text"]
Direction = Literal["up", "down", "flat"]

CHANNEL_WORDS = {"search": "paid search", "social": "paid social", "display": "display",
                 "email": "email", "tv": "TV"}
FLAT_CHANGE = 0.02   # a change smaller than this (2%) is "flat", not "up" or "down"


def direction_of(change: float, flat: float = FLAT_CHANGE) -> Direction:
    """Which way a change goes, "flat" when smaller than ``flat``."""
    return "flat" if abs(change) < flat else ("up" if change > 0 else "down")


def channel_words(channel: str) -> str:
    """How a marketer names the channel in a sentence."""
    return CHANNEL_WORDS.get(channel, channel.replace("_", " "))


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str                      # "roas.search", "trust.score", "plan.change.tv"
    label: str                   # what it is, in words
    value: float | str
    unit: Unit
    decimals: int = 2            # the finest rounding a brief may use
    channel: str | None = None
    direction: Direction | None = None   # for changes: the sign, so direction words are checked
    source: str                  # the file and field it was read from

    @property
    def shown(self) -> float:
        """The value on the scale text uses: percent and points x 100."""
        return float(self.value) * (100 if self.unit in ("percent", "points") else 1)

    def display(self, language: str = "en") -> str:
        """The fact as a brief writes it, in the tenant's number format."""
        if self.unit == "text":
            return str(self.value)
        number = format_number(self.shown, self.decimals, language)
        return {"percent": f"{number}%", "points": f"{number} percentage points",
                "money": number, "ratio": number, "score": number, "count": number}[self.unit]


class Facts(BaseModel):
    """The brief's whole evidence: the tenant, the KPI, the channels and the facts."""

    tenant: str
    kpi: str
    currency: str                # of spend (and of a revenue KPI); "" when not known
    kind: str                    # revenue (ROAS) or count (KPI per unit of spend)
    kpi_unit: str = ""           # what a count KPI counts (students, appointments)
    language: str = "en"
    channels: list[str]
    facts: list[Fact]

    def get(self, fact_id: str) -> Fact | None:
        return next((f for f in self.facts if f.id == fact_id), None)

    def about(self, channel: str) -> list[Fact]:
        return [f for f in self.facts if f.channel == channel]

    def for_prompt(self) -> str:
        """What the model sees: ids, labels and displayed values; never the raw data."""
        return json.dumps({
            "tenant": self.tenant, "kpi": self.kpi, "currency": self.currency,
            "language": self.language,
            "channels": {c: channel_words(c) for c in self.channels},
            "facts": [{"id": f.id, "label": f.label, "value": f.display(self.language),
                       "unit": f.unit, **({"direction": f.direction} if f.direction else {})}
                      for f in self.facts]}, ensure_ascii=False, indent=1)


def ratio_decimals(value: float) -> int:
    """Two significant digits at least: 9.06, 1.52, 0.012 (a count KPI per unit of spend)."""
    import math

    return max(2, 1 - math.floor(math.log10(abs(value)))) if value else 2


def format_number(value: float, decimals: int, language: str = "en") -> str:
    """``1234.5`` as ``1,234.5`` (en) or ``1.234,5`` (de, es, fr, it, pt, nl)."""
    text = f"{value:,.{max(decimals, 0)}f}"
    if language.split("-")[0] in COMMA_DECIMAL:
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


COMMA_DECIMAL = {"de", "es", "fr", "it", "pt", "nl", "da", "sv", "pl"}


# --------------------------------------------------------------------------------- building
def build_facts(fit_dir: str | Path, tenant: str = "", run: dict[str, Any] | None = None,
                plan: dict[str, Any] | None = None, language: str = "en",
                anomaly: dict[str, Any] | None = None,
                similar: list[tuple[str, str]] = ()) -> Facts:
    """Facts of a fit folder (``summary.json``, ``validation.json``), the run record that
    gated it (``run``: promoted, decision, champion ROAS), a budget plan (``plan.json``), a
    monitor anomaly and the memory's similar past situations (``(date, text)``), whichever
    exist."""
    fit = Path(fit_dir)
    summary = json.loads((fit / "summary.json").read_text())
    validation_path = fit / "validation.json"
    validation = json.loads(validation_path.read_text()) if validation_path.exists() else None
    kpi = summary["kpi"]
    channels = list(summary["channels"])
    facts = [*_channel_facts(summary, kpi), *_window_facts(summary)]
    if validation is not None:
        facts += _trust_facts(validation)
    if run is not None:
        facts += _run_facts(run, summary)
    if plan is not None:
        facts += _plan_facts(plan)
    if anomaly is not None:
        facts += _anomaly_facts(anomaly)
    facts += [Fact(id=f"similar.{k}", label=f"a similar past situation (week ending {when})",
                   value=text, unit="text", source="memory situations")
              for k, (when, text) in enumerate(similar)]
    return Facts(tenant=tenant or (run or {}).get("tenant", ""), kpi=kpi["name"],
                 currency=kpi["unit"] if kpi["kind"] == "revenue" else "", kind=kpi["kind"],
                 kpi_unit=kpi["unit"], language=language, channels=channels, facts=facts)


def _channel_facts(summary: dict[str, Any], kpi: dict[str, Any]) -> list[Fact]:
    ratio = "ROAS" if kpi["kind"] == "revenue" else f"{kpi['name']} per unit of spend"
    out = []
    for name, ch in summary["channels"].items():
        words, src = channel_words(name), f"summary.json channels.{name}"
        digits = ratio_decimals(ch["roas_mean"])
        out += [
            Fact(id=f"roas.{name}", label=f"{words} {ratio}", value=ch["roas_mean"],
                 unit="ratio", decimals=digits, channel=name, source=f"{src}.roas_mean"),
            Fact(id=f"roas_low.{name}", label=f"{words} {ratio}, low end of the 94% interval",
                 value=ch["roas_hdi_low"], unit="ratio", decimals=digits, channel=name,
                 source=f"{src}.roas_hdi_low"),
            Fact(id=f"roas_high.{name}", label=f"{words} {ratio}, high end of the 94% interval",
                 value=ch["roas_hdi_high"], unit="ratio", decimals=digits, channel=name,
                 source=f"{src}.roas_hdi_high"),
            Fact(id=f"share.{name}", label=f"{words} share of media-driven {kpi['name']}",
                 value=ch["share_mean"], unit="percent", decimals=1, channel=name,
                 source=f"{src}.share_mean"),
            Fact(id=f"contribution.{name}", label=f"{kpi['name']} {words} caused ({kpi['unit']})",
                 value=ch["contribution_total_mean"], unit="money", decimals=0, channel=name,
                 source=f"{src}.contribution_total_mean"),
            Fact(id=f"spend.{name}", label=f"{words} spend",
                 value=ch["spend_total"], unit="money", decimals=0, channel=name,
                 source=f"{src}.spend_total"),
        ]
    return out


def _window_facts(summary: dict[str, Any]) -> list[Fact]:
    data = summary["run"]["data"]
    return [Fact(id="weeks", label="weeks of data", value=float(data["weeks"]), unit="count",
                 decimals=0, source="summary.json run.data.weeks"),
            Fact(id="first_week", label="first week", value=str(data["start"]), unit="text",
                 source="summary.json run.data.start"),
            Fact(id="last_week", label="last week", value=str(data["end"]), unit="text",
                 source="summary.json run.data.end")]


def _trust_facts(validation: dict[str, Any]) -> list[Fact]:
    out = [Fact(id="trust.score", label="trust score out of 100",
                value=validation["trust"]["score"], unit="score", decimals=1,
                source="validation.json trust.score")]
    recovery = validation.get("recovery") or {}
    for c in recovery.get("channels", ()):
        if not c["recoverable"]:
            out.append(Fact(id=f"not_recoverable.{c['channel']}",
                            label=f"{channel_words(c['channel'])} ROAS is not recoverable on "
                                  "this spend; why", value=c["reason"], unit="text",
                            channel=c["channel"], source="validation.json recovery.channels"))
    return out


def _run_facts(run: dict[str, Any], summary: dict[str, Any]) -> list[Fact]:
    promoted = bool(run.get("promoted"))
    out = [Fact(id="model.promoted", label="the new model was put in service",
                value="yes" if promoted else "no", unit="text", source="runs.jsonl promoted")]
    if run.get("decision") and not promoted:
        out.append(Fact(id="model.reasons", label="why the model was not put in service",
                        value="; ".join(run["decision"]), unit="text",
                        source="runs.jsonl decision"))
    for name, before in (run.get("champion_roas") or {}).items():
        now = summary["channels"].get(name, {}).get("roas_mean")
        if before is None or now is None or before <= 0:
            continue
        change = now / before - 1
        direction = direction_of(change)
        out += [Fact(id=f"roas_before.{name}", label=f"{channel_words(name)} ROAS of the model "
                                                     "in service before", value=before,
                     unit="ratio", channel=name, source="runs.jsonl champion_roas"),
                Fact(id=f"roas_change.{name}", label=f"change of {channel_words(name)} ROAS "
                                                     "vs the model in service before",
                     value=change, unit="percent", decimals=0, channel=name,
                     direction=direction, source="summary.json vs runs.jsonl champion_roas")]
    for name, before in (run.get("champion_share") or {}).items():
        now = summary["channels"].get(name, {}).get("share_mean")
        if before is None or now is None:
            continue
        change = now - before
        direction = direction_of(change, flat=0.005)
        out.append(Fact(id=f"share_change.{name}", label=f"change of {channel_words(name)} "
                        "share of media-driven KPI vs the model in service before",
                        value=change, unit="points", decimals=1, channel=name,
                        direction=direction, source="summary.json vs runs.jsonl champion share"))
    return out


def _plan_facts(plan: dict[str, Any]) -> list[Fact]:
    out = [Fact(id="plan.objective", label="plan objective", value=plan["objective"],
                unit="text", source="plan.json objective"),
           Fact(id="plan.lift", label="expected extra KPI over the plan's horizon",
                value=plan["lift_mean"], unit="money", decimals=0, source="plan.json lift_mean"),
           Fact(id="plan.lift_low", label="expected extra KPI, low end of the 94% interval",
                value=plan["lift_low"], unit="money", decimals=0, source="plan.json lift_low"),
           Fact(id="plan.lift_high", label="expected extra KPI, high end of the 94% interval",
                value=plan["lift_high"], unit="money", decimals=0, source="plan.json lift_high"),
           Fact(id="plan.probability", label="chance the plan beats the current allocation",
                value=plan["probability_beats_current"], unit="percent", decimals=0,
                source="plan.json probability_beats_current"),
           Fact(id="plan.horizon", label="plan horizon in weeks", value=float(plan["horizon_weeks"]),
                unit="count", decimals=0, source="plan.json horizon_weeks")]
    for c in plan["channels"]:
        name, words = c["channel"], channel_words(c["channel"])
        change = c["recommended_weekly"] / c["current_weekly"] - 1 if c["current_weekly"] else 0.0
        direction = direction_of(change)
        out += [Fact(id=f"plan.current.{name}", label=f"{words} weekly spend now",
                     value=c["current_weekly"], unit="money", decimals=0, channel=name,
                     source=f"plan.json channels.{name}.current_weekly"),
                Fact(id=f"plan.recommended.{name}", label=f"{words} recommended weekly spend",
                     value=c["recommended_weekly"], unit="money", decimals=0, channel=name,
                     source=f"plan.json channels.{name}.recommended_weekly"),
                Fact(id=f"plan.change.{name}", label=f"change of {words} weekly spend in the plan",
                     value=change, unit="percent", decimals=0, channel=name, direction=direction,
                     source=f"plan.json channels.{name}")]
    return out


def _anomaly_facts(anomaly: dict[str, Any]) -> list[Fact]:
    return [Fact(id="anomaly.week", label="week the KPI left its expected range",
                 value=str(anomaly["week"]), unit="text", source="monitor week"),
            Fact(id="anomaly.actual", label="KPI that week", value=anomaly["kpi_actual"],
                 unit="money", decimals=0, source="monitor kpi_actual"),
            Fact(id="anomaly.expected", label="KPI the model expected that week",
                 value=anomaly["kpi_expected"], unit="money", decimals=0,
                 source="monitor kpi_expected")]

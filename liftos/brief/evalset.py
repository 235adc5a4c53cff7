"""The brief's evaluation set: facts -> claims a brief must and must not make.

Each case passes when the brief is grounded, cites every required fact, matches every required
pattern and no forbidden one, and cites no forbidden fact. ``liftos brief eval`` runs it against
the deterministic writer and any configured model, per prompt version, so a prompt change is
compared with the last one on the same cases.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from liftos.brief.facts import Fact, Facts, channel_words, direction_of, ratio_decimals
from liftos.brief.grounding import check
from liftos.brief.writer import BriefText


@dataclass
class Case:
    name: str
    facts: Facts
    required_facts: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)     # regular expressions (any claim)
    forbidden: list[str] = field(default_factory=list)
    forbidden_facts: list[str] = field(default_factory=list)


class CaseResult(BaseModel):
    case: str
    passed: bool
    grounded: bool
    failures: list[str]
    seconds: float


def score(case: Case, brief: BriefText, seconds: float = 0.0) -> CaseResult:
    claims = brief.claims()
    grounding = check([(c.text, c.fact_ids) for c in claims], case.facts)
    cited = {i for c in claims for i in c.fact_ids}
    text = " ".join(c.text for c in claims)
    failures = [f"ungrounded: {v.kind}: {v.detail}" for v in grounding.violations]
    failures += [f"does not cite {f}" for f in case.required_facts if f not in cited]
    failures += [f"does not say /{p}/" for p in case.required if not re.search(p, text, re.IGNORECASE)]
    failures += [f"says /{p}/" for p in case.forbidden if re.search(p, text, re.IGNORECASE)]
    failures += [f"cites {f}" for f in case.forbidden_facts if f in cited]
    return CaseResult(case=case.name, passed=not failures, grounded=grounding.ok,
                      failures=failures, seconds=round(seconds, 3))


def run(writer: Callable[[Facts], BriefText], cases: list[Case] | None = None
        ) -> list[CaseResult]:
    """Every case through ``writer``; a writer that raises fails the case, saying why."""
    out = []
    for case in cases or CASES:
        started = time.perf_counter()
        try:
            brief = writer(case.facts)
        except Exception as exc:  # noqa: BLE001 (an eval reports every failure, never stops)
            out.append(CaseResult(case=case.name, passed=False, grounded=False,
                                  failures=[f"writer failed: {exc}"],
                                  seconds=time.perf_counter() - started))
            continue
        out.append(score(case, brief, time.perf_counter() - started))
    return out


# ---------------------------------------------------------------------------------- the cases
def facts(channels: dict[str, tuple[float, float, float, float]], *, kpi: str = "revenue",
          currency: str = "USD", kind: str = "revenue", language: str = "en",
          trust: float | None = 82.0, promoted: bool | None = True, reasons: str = "",
          before: dict[str, float] | None = None, lost: dict[str, str] | None = None,
          plan: dict[str, tuple[float, float]] | None = None, lift: tuple = (),
          anomaly: tuple | None = None, weeks: int = 104) -> Facts:
    """Facts as :func:`~liftos.brief.facts.build_facts` makes them, from compact values:
    ``channels``: name -> (ROAS, low, high, share); ``plan``: name -> (current, recommended)
    weekly; ``lift``: (mean, low, high, probability); ``anomaly``: (week, actual, expected)."""
    out = [Fact(id="weeks", label="weeks of data", value=float(weeks), unit="count", decimals=0,
                source="eval"),
           Fact(id="last_week", label="last week", value="2025-12-22", unit="text",
                source="eval")]
    for name, (roas, low, high, share) in channels.items():
        words, digits = channel_words(name), ratio_decimals(roas)
        out += [Fact(id=f"roas.{name}", label=f"{words} ROAS", value=roas, unit="ratio",
                     decimals=digits, channel=name, source="eval"),
                Fact(id=f"roas_low.{name}", label=f"{words} ROAS, low end of the 94% interval",
                     value=low, unit="ratio", decimals=digits, channel=name, source="eval"),
                Fact(id=f"roas_high.{name}", label=f"{words} ROAS, high end of the 94% interval",
                     value=high, unit="ratio", decimals=digits, channel=name, source="eval"),
                Fact(id=f"share.{name}", label=f"{words} share of media-driven {kpi}",
                     value=share, unit="percent", decimals=1, channel=name, source="eval")]
    if trust is not None:
        out.append(Fact(id="trust.score", label="trust score out of 100", value=trust,
                        unit="score", decimals=1, source="eval"))
    if promoted is not None:
        out.append(Fact(id="model.promoted", label="the new model was put in service",
                        value="yes" if promoted else "no", unit="text", source="eval"))
    if reasons:
        out.append(Fact(id="model.reasons", label="why the model was not put in service",
                        value=reasons, unit="text", source="eval"))
    for name, old in (before or {}).items():
        change = channels[name][0] / old - 1
        direction = direction_of(change)
        out += [Fact(id=f"roas_before.{name}", label=f"{channel_words(name)} ROAS before",
                     value=old, unit="ratio", channel=name, source="eval"),
                Fact(id=f"roas_change.{name}", label=f"change of {channel_words(name)} ROAS",
                     value=change, unit="percent", decimals=0, channel=name,
                     direction=direction, source="eval")]
    for name, why in (lost or {}).items():
        out.append(Fact(id=f"not_recoverable.{name}", label=f"{channel_words(name)} ROAS is "
                        "not recoverable on this spend; why", value=why, unit="text",
                        channel=name, source="eval"))
    if plan:
        mean, low, high, probability = lift
        out += [Fact(id="plan.objective", label="plan objective", value="expected", unit="text",
                     source="eval"),
                Fact(id="plan.lift", label="expected extra KPI", value=mean, unit="money",
                     decimals=0, source="eval"),
                Fact(id="plan.lift_low", label="expected extra KPI, low end", value=low,
                     unit="money", decimals=0, source="eval"),
                Fact(id="plan.lift_high", label="expected extra KPI, high end", value=high,
                     unit="money", decimals=0, source="eval"),
                Fact(id="plan.probability", label="chance the plan beats the current allocation",
                     value=probability, unit="percent", decimals=0, source="eval"),
                Fact(id="plan.horizon", label="plan horizon in weeks", value=13.0, unit="count",
                     decimals=0, source="eval")]
        for name, (current, recommended) in plan.items():
            change = recommended / current - 1
            direction = direction_of(change)
            out += [Fact(id=f"plan.current.{name}", label=f"{channel_words(name)} weekly spend now",
                         value=current, unit="money", decimals=0, channel=name, source="eval"),
                    Fact(id=f"plan.recommended.{name}", label=f"{channel_words(name)} "
                         "recommended weekly spend", value=recommended, unit="money",
                         decimals=0, channel=name, source="eval"),
                    Fact(id=f"plan.change.{name}", label=f"change of {channel_words(name)} "
                         "weekly spend", value=change, unit="percent", decimals=0,
                         channel=name, direction=direction, source="eval")]
    if anomaly:
        week, actual, expected = anomaly
        out += [Fact(id="anomaly.week", label="anomaly week", value=week, unit="text",
                     source="eval"),
                Fact(id="anomaly.actual", label="KPI that week", value=actual, unit="money",
                     decimals=0, source="eval"),
                Fact(id="anomaly.expected", label="KPI expected that week", value=expected,
                     unit="money", decimals=0, source="eval")]
    return Facts(tenant="eval", kpi=kpi, currency=currency, kind=kind, kpi_unit=kpi,
                 language=language, channels=list(channels), facts=out)


THREE = {"search": (2.41, 1.9, 2.95, 0.31), "social": (1.35, 0.74, 2.04, 0.22),
         "email": (9.06, 8.16, 9.94, 0.47)}
WIDE = {**THREE, "display": (0.41, 0.01, 1.2, 0.04)}
LOST = ("on 10 known truths of the model's own form its ROAS was inside the 94% interval "
        "90% of the time, median error 51%")
PLAN = {"search": (20_000.0, 26_000.0), "social": (15_000.0, 10_500.0), "email": (4_000.0, 4_000.0)}
LIFT = (182_400.0, 96_100.0, 270_900.0, 0.96)


def _cases() -> list[Case]:
    def say(*patterns: str) -> list[str]:
        return list(patterns)

    return [
        Case("three channels, promoted", facts(THREE), ["share.email", "trust.score"],
             say(r"email")),
        Case("headline names the biggest channel", facts(THREE), ["share.email"]),
        Case("interval crossing zero is uncertain", facts(WIDE), ["roas_low.display"],
             say(r"display[^;]*uncertain|uncertain[^;]*display")),
        Case("rejected model says so with the reason",
             facts(THREE, promoted=False, reasons="trust score 55.0 below the threshold 70"),
             ["model.reasons"], say(r"stays|not (?:put )?in service|rejected|kept")),
        Case("rejected model does not claim service",
             facts(THREE, promoted=False, reasons="3 divergent transitions"), ["model.promoted"],
             forbidden=[r"now in service"]),
        Case("anomaly week", facts(THREE, anomaly=("2025-12-15", 412_000.0, 530_000.0)),
             ["anomaly.week", "anomaly.actual", "anomaly.expected"]),
        Case("not recoverable gets no ROAS", facts(THREE, lost={"search": LOST}),
             ["not_recoverable.search"], say(r"not recoverable|cannot be measured"),
             forbidden_facts=["roas.search"]),
        Case("ROAS rose", facts(THREE, before={"search": 1.9}), ["roas_change.search"],
             say(r"rose|up|increased")),
        Case("ROAS fell", facts(THREE, before={"social": 1.9}), ["roas_change.social"],
             say(r"fell|down|decreased|dropped")),
        Case("ROAS flat", facts(THREE, before={"email": 9.0}), ["roas_change.email"],
             forbidden=[r"email[^.]*\b(rose|fell)\b"]),
        Case("ROAS doubled", facts(THREE, before={"search": 1.1}), ["roas_change.search"]),
        Case("plan raises and cuts", facts(THREE, plan=PLAN, lift=LIFT),
             ["plan.change.search", "plan.change.social", "plan.lift", "plan.probability"]),
        Case("plan keeps a channel", facts(THREE, plan=PLAN, lift=LIFT), ["plan.lift"],
             forbidden=[r"(raise|cut)[^.]*email"]),
        Case("German numbers", facts(THREE, language="de", currency="EUR"), ["share.email"],
             say(r"\d,\d")),
        Case("Spanish numbers", facts(THREE, language="es", currency="EUR"), ["share.email"],
             say(r"\d,\d")),
        Case("count KPI", facts({"search": (0.012, 0.008, 0.016, 0.6),
                                 "social": (0.004, 0.001, 0.007, 0.4)}, kpi="enrolments",
                                currency="USD", kind="count"), ["share.search"]),
        Case("single channel", facts({"search": (3.1, 2.5, 3.7, 1.0)}), ["roas.search"]),
        Case("eight channels", facts({f"{n}": (1.0 + i / 4, 0.5 + i / 8, 1.5 + i / 3, 1 / 8)
                                      for i, n in enumerate(["search", "social", "display",
                                                             "email", "tv", "radio", "ooh",
                                                             "affiliates"])}),
             ["share.search"]),
        Case("euro amounts", facts(THREE, currency="EUR", plan=PLAN, lift=LIFT), ["plan.lift"]),
        Case("pound amounts", facts(THREE, currency="GBP", plan=PLAN, lift=LIFT), ["plan.lift"]),
        Case("unvalidated run states no trust score", facts(THREE, trust=None, promoted=None),
             forbidden=[r"trust score"]),
        Case("lost channel, plan and change together",
             facts(WIDE, lost={"display": LOST}, before={"search": 2.0}, plan=PLAN, lift=LIFT),
             ["not_recoverable.display", "roas_change.search", "plan.lift"],
             forbidden_facts=["roas.display"]),
    ]


CASES = _cases()

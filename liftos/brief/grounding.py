"""The grounding check: every number, channel and direction in a brief, held to its facts.

A brief is a list of claims, each citing the fact ids it rests on. In each claim:

* every number (with its unit: %, percentage points, a currency amount, a ratio) must equal one
  of the *cited* facts at the rounding the text uses (never finer than the fact's own); a number
  that only an uncited fact supports, or none, is a violation, and so is a percent written for
  percentage points or the other way round;
* every channel it names must be one of the tenant's and must have a cited fact;
* every direction word ("rose", "fell", "doubled", "cut") must agree with a cited change fact;
* dates must be the facts' own.

Numbers are read in the tenant's format (``1,234.5`` in English, ``1.234,5`` in German).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from liftos.brief.facts import CHANNEL_WORDS, COMMA_DECIMAL, Fact, Facts

# Stock phrases whose numbers are not claims (the interval's level, the score's scale).
STOCK = re.compile(r"94\s?%[\s-]*(?:credible\s+|highest[- ]density\s+)?interval|"
                   r"out of 100|/\s?100\b", re.IGNORECASE)
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
NUMBER = re.compile(
    r"(?<![\w.,])(?P<sign>[-−+])?(?P<currency>[$€£])?\s?"
    r"(?P<number>\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)"
    r"(?:\s?(?P<suffix>%|percent(?:age points?)?|per ?cent|pp\b|points?\b|x\b|×|"
    r"k\b|thousand\b|m\b|mn\b|million\b|bn\b|billion\b|"
    r"Tsd\.?|Mio\.?|Mrd\.?|mil(?:lones)?\b))?", re.IGNORECASE)
MULTIPLIER = {"k": 1e3, "thousand": 1e3, "tsd": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6,
              "mio": 1e6, "mil": 1e6, "millones": 1e6, "bn": 1e9, "billion": 1e9, "mrd": 1e9}
UP = {"rose", "risen", "rises", "increased", "increases", "grew", "grown", "raise", "raised",
      "increase", "up", "doubled", "gained"}
DOWN = {"fell", "fallen", "falls", "decreased", "decreases", "dropped", "declined", "cut",
        "cuts", "reduce", "reduced", "decrease", "down", "halved", "lost"}
FLAT = {"unchanged", "flat", "steady"}
WORD = re.compile(r"[A-Za-zÀ-ÿ]+")
Kind = Literal["invented number", "uncited fact", "percent vs points", "unknown channel",
               "channel without a fact", "direction", "unknown fact id", "date"]


class Violation(BaseModel):
    claim: str
    kind: Kind
    detail: str


class Grounding(BaseModel):
    claims: int
    grounded: int
    violations: list[Violation]

    @property
    def ok(self) -> bool:
        return not self.violations

    def describe(self) -> str:
        return (f"{self.grounded} of {self.claims} claims grounded"
                + (f"; {len(self.violations)} violation(s): "
                   + "; ".join(f"{v.kind}: {v.detail}" for v in self.violations[:5])
                   if self.violations else ""))


@dataclass(frozen=True)
class Token:
    text: str
    value: float         # as written, times its multiplier; sign included
    decimals: int        # digits written after the decimal separator
    multiplier: float
    suffix: str          # "%", "pp", "x", "money" or ""


def check(claims: list[tuple[str, list[str]]], facts: Facts,
          vocabulary: dict[str, str] | None = None) -> Grounding:
    """Check ``(text, fact_ids)`` claims against ``facts``; ``vocabulary`` maps channel words
    (any tenant's) to channel names, so a channel this tenant lacks is caught."""
    words = channel_vocabulary(facts, vocabulary)
    violations: list[Violation] = []
    grounded = 0
    for text, ids in claims:
        found = _claim_violations(text, ids, facts, words)
        violations += found
        grounded += not found
    return Grounding(claims=len(claims), grounded=grounded, violations=violations)


def channel_vocabulary(facts: Facts, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Lower-case words and phrases that name a channel, longest first."""
    known = {**{k: k for k in CHANNEL_WORDS}, **{v.lower(): k for k, v in CHANNEL_WORDS.items()},
             **{c.replace("_", " "): c for c in facts.channels}, **(extra or {})}
    return dict(sorted(known.items(), key=lambda kv: -len(kv[0])))


def numbers(text: str, language: str = "en") -> list[Token]:
    """The numbers of ``text`` with their units, read in ``language``'s format; stock phrases
    and ISO dates left out."""
    text = DATE.sub(" ", STOCK.sub(" ", text))
    comma_decimal = language.split("-")[0] in COMMA_DECIMAL
    out = []
    for m in NUMBER.finditer(text):
        raw = m.group("number")
        value, decimals = _parse(raw, comma_decimal)
        suffix = (m.group("suffix") or "").lower().rstrip(".")
        multiplier = MULTIPLIER.get(suffix, 1.0)
        if "point" in suffix or suffix == "pp":
            kind = "pp"
        elif suffix == "%" or suffix.startswith("per"):
            kind = "%"
        elif suffix in ("x", "×"):
            kind = "x"
        elif m.group("currency") or multiplier != 1.0:
            kind = "money"
        else:
            kind = ""
        sign = -1.0 if m.group("sign") in ("-", "−") else 1.0
        out.append(Token(m.group(0).strip(), sign * value * multiplier, decimals, multiplier,
                         kind))
    return out


def _parse(raw: str, comma_decimal: bool) -> tuple[float, int]:
    decimal, group = (",", ".") if comma_decimal else (".", ",")
    cleaned = re.sub(r"[\u00a0\u202f ]", "", raw)
    if decimal in cleaned:
        whole, _, fraction = cleaned.rpartition(decimal)
        return float(whole.replace(group, "") + "." + fraction), len(fraction)
    if group in cleaned and re.fullmatch(rf"\d{{1,3}}(?:\{group}\d{{3}})+", cleaned):
        return float(cleaned.replace(group, "")), 0
    if group in cleaned:  # "1.5" in German text: read as written, with its decimals
        whole, _, fraction = cleaned.rpartition(group)
        return float(whole + "." + fraction), len(fraction)
    return float(cleaned), 0


def supports(token: Token, fact: Fact) -> bool:
    """The fact, rounded as the text rounds it, is the number written (units agreeing)."""
    if fact.unit == "text":
        return token.text.replace(" ", "") in str(fact.value).replace(" ", "")
    if not _units_agree(token.suffix, fact.unit):
        return False
    return _close(token, fact)


def _close(token: Token, fact: Fact) -> bool:
    digits = min(token.decimals, fact.decimals) if token.multiplier == 1 else token.decimals
    tolerance = 0.5 * 10 ** -digits * token.multiplier + 1e-9 * max(1.0, abs(fact.shown))
    written = abs(token.value) if fact.direction else token.value
    shown = abs(fact.shown) if fact.direction else fact.shown
    return abs(written - shown) <= tolerance


def _units_agree(suffix: str, unit: str) -> bool:
    return {"%": unit == "percent", "pp": unit == "points", "x": unit == "ratio",
            "money": unit in ("money", "count"),
            "": unit in ("ratio", "money", "score", "count")}[suffix]


def _claim_violations(text: str, ids: list[str], facts: Facts, words: dict[str, str]
                      ) -> list[Violation]:
    cited = [f for f in (facts.get(i) for i in ids) if f is not None]
    out = [Violation(claim=text, kind="unknown fact id", detail=f"cites '{i}', not a fact")
           for i in ids if facts.get(i) is None]
    for token in numbers(text, facts.language):
        if any(supports(token, f) for f in cited):
            continue
        if any(_units_agree(token.suffix, f.unit) is False and
               _close(token, f) for f in cited if f.unit in ("percent", "points")):
            out.append(Violation(claim=text, kind="percent vs points", detail=(
                f"'{token.text}': the cited fact is in "
                f"{'percentage points' if token.suffix == '%' else 'percent'}")))
        elif any(supports(token, f) for f in facts.facts):
            owner = next(f.id for f in facts.facts if supports(token, f))
            out.append(Violation(claim=text, kind="uncited fact", detail=(
                f"'{token.text}' is fact {owner}, which the claim does not cite")))
        else:
            out.append(Violation(claim=text, kind="invented number", detail=(
                f"'{token.text}' matches no fact")))
    dates = {str(f.value) for f in cited if f.unit == "text"}
    out += [Violation(claim=text, kind="date", detail=f"'{d}' is not a cited date")
            for d in DATE.findall(text) if not any(d in v for v in dates)]
    own = text  # words quoted from a cited text fact (a reason, a date) are the fact's, not claims
    for fact in cited:
        if fact.unit == "text":
            own = own.replace(str(fact.value), " ")
    out += _channel_violations(own, cited, facts, words)
    out += _direction_violations(own, cited)
    return out


def _channel_violations(text: str, cited: list[Fact], facts: Facts, words: dict[str, str]
                        ) -> list[Violation]:
    lowered, out, named = text.lower(), [], set()
    for phrase, channel in words.items():
        pattern = rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"
        if re.search(pattern, lowered):
            named.add(channel)
            lowered = re.sub(pattern, " ", lowered)
    for channel in sorted(named):
        if channel not in facts.channels:
            out.append(Violation(claim=text, kind="unknown channel", detail=(
                f"'{channel}' is not one of this tenant's channels ({', '.join(facts.channels)})")))
        elif not any(f.channel == channel for f in cited):
            out.append(Violation(claim=text, kind="channel without a fact", detail=(
                f"names {channel} but cites none of its facts")))
    return out


def _direction_violations(text: str, cited: list[Fact]) -> list[Violation]:
    said = {w.lower() for w in WORD.findall(text)}
    directions = {f.direction for f in cited if f.direction}
    out = []
    for word_set, direction in ((UP, "up"), (DOWN, "down"), (FLAT, "flat")):
        for word in sorted(said & word_set):
            if direction not in directions:
                out.append(Violation(claim=text, kind="direction", detail=(
                    f"'{word}' but the cited facts go "
                    f"{'/'.join(sorted(directions)) or 'nowhere (no change fact cited)'}")))
    for word, bound in (("doubled", 0.9), ("halved", -0.4)):
        if word in said and not any(f.direction and (f.shown / 100 >= bound if bound > 0 else
                                                      f.shown / 100 <= bound) for f in cited):
            out.append(Violation(claim=text, kind="direction", detail=(
                f"'{word}' but no cited change is that large")))
    return out

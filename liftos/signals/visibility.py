"""Lift Surfacing: how visible the brand is in AI assistants' answers, measured weekly.

A tenant's prompt panel names the brand, its competitors and the category questions customers
ask ("which running shoes for flat feet?"). Each week every prompt is asked of the configured
model through the OpenAI SDK; the answers are landed verbatim (``raw/visibility/``) before
anything is measured. Per brand (the tenant's and each competitor): the **mention rate** (share
of answers naming it), the **average rank of its first mention** among the brands an answer
names, and its **share of voice** (its mentions over all brands' mentions). Names match whole
words, case-insensitively. With no model configured nothing is asked and nothing is recorded:
an answer is never made up.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, Field, field_validator

from liftos.errors import LiftOSError
from liftos.home import DataHome
from liftos.ingest.landing import RawLanding
from liftos.ingest.retry import RetryPolicy
from liftos.ingest.tables import upsert

SOURCE = "visibility"


class PromptPanel(BaseModel):
    """A tenant's ``surfacing`` section: who to look for and what to ask."""

    brand: str = Field(min_length=1, max_length=100, description="the tenant's brand")
    competitors: list[str] = Field(default_factory=list, max_length=50)
    prompts: list[str] = Field(min_length=1, max_length=500,
                               description="category questions, asked as a customer would")

    @field_validator("brand")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the panel needs the brand's name")
        return value.strip()

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, value: list[str]) -> list[str]:
        for k, text in enumerate(value, 1):
            if not text.strip() or len(text) > 2000:
                raise ValueError(f"prompt {k} is empty or over 2,000 characters")
        return value

    @property
    def brands(self) -> list[str]:
        return [self.brand, *[c for c in self.competitors if c.strip()]]


def panel_of(tenant: Any) -> PromptPanel:
    """The tenant's prompt panel; a clear error when its file has none."""
    if tenant.surfacing is None:
        raise LiftOSError(f"tenant '{tenant.name}' has no 'surfacing' section (brand, "
                          "competitors, prompts) in its file")
    return tenant.surfacing


def monday(day: dt.date | None = None) -> dt.date:
    """The Monday of ``day``'s week (default: today's): the week a visibility run measures."""
    day = day or dt.date.today()
    return day - dt.timedelta(days=day.weekday())


@dataclass(frozen=True)
class Answer:
    prompt: str
    text: str
    model: str


@dataclass(frozen=True)
class Visibility:
    brand: str
    week: dt.date
    answers: int
    mention_rate: dict[str, float]
    first_rank: dict[str, float | None]
    share_of_voice: dict[str, float]
    model: str

    def describe(self) -> str:
        brand = self.brand
        rank = self.first_rank[brand]
        return (f"week of {self.week}: {brand} named in {self.mention_rate[brand]:.0%} of "
                f"{self.answers} answers ({self.model}), "
                f"{'never first-named' if rank is None else f'first-mention rank {rank:.1f}'}, "
                f"share of voice {self.share_of_voice[brand]:.0%}")

    def rows(self) -> list[dict[str, Any]]:
        return [{"week": self.week, "brand": b, "answers": self.answers,
                 "mention_rate": self.mention_rate[b], "first_rank": self.first_rank[b],
                 "share_of_voice": self.share_of_voice[b], "model": self.model}
                for b in self.mention_rate]


def ask(panel: PromptPanel, settings: Any, tenant: str, week: dt.date,
        home: DataHome | None = None, policy: RetryPolicy | None = None) -> list[Answer]:
    """Every prompt of the panel asked once (``settings``: the brief's ``LLMSettings``), each
    answer landed raw as it arrives; an error names the prompt and keeps what was landed."""
    import openai

    from liftos.brief.llm import classify_error, describe_error

    if settings.api_key is None:
        raise LiftOSError("no model is configured (OPENAI_API_KEY or the OpenAI block): "
                          "nothing was asked")
    client = settings.client()
    landing = RawLanding(tenant, SOURCE, home)
    policy = policy or settings.retry_policy()
    answers = []
    for k, prompt in enumerate(panel.prompts, 1):
        try:
            completion = policy.run(lambda prompt=prompt: client.chat.completions.create(
                model=settings.model, messages=[{"role": "user", "content": prompt}],
                temperature=0.0), classify_error, "openai", "chat.completions")
        except openai.APIError as exc:
            raise LiftOSError(f"visibility prompt {k} of {len(panel.prompts)} ({prompt[:60]!r}): "
                              f"{describe_error(exc)}; {k - 1} answer(s) landed") from None
        text = completion.choices[0].message.content or ""
        model = completion.model or settings.model
        landing.land(json.dumps({"week": str(week), "prompt": prompt, "answer": text,
                                 "model": model, "at": time.time()}).encode(),
                     {"week": str(week), "prompt": k})
        answers.append(Answer(prompt, text, model))
    return answers


def measure(answers: list[Answer], panel: PromptPanel, week: dt.date) -> Visibility:
    """Mention rate, first-mention rank and share of voice of every brand in the panel."""
    brands = panel.brands
    patterns = {b: re.compile(rf"(?<!\w){re.escape(b)}(?!\w)", re.IGNORECASE) for b in brands}
    mentioned = dict.fromkeys(brands, 0)
    counts = dict.fromkeys(brands, 0)
    ranks: dict[str, list[int]] = {b: [] for b in brands}
    for answer in answers:
        first = {}
        for brand, pattern in patterns.items():
            hits = [m.start() for m in pattern.finditer(answer.text)]
            counts[brand] += len(hits)
            if hits:
                mentioned[brand] += 1
                first[brand] = hits[0]
        for rank, brand in enumerate(sorted(first, key=first.get), 1):
            ranks[brand].append(rank)
    total = sum(counts.values())
    n = len(answers)
    return Visibility(
        brand=panel.brand, week=week, answers=n, model=answers[0].model if answers else "",
        mention_rate={b: mentioned[b] / n if n else 0.0 for b in brands},
        first_rank={b: sum(r) / len(r) if r else None for b, r in ranks.items()},
        share_of_voice={b: counts[b] / total if total else 0.0 for b in brands})


def table_path(home: DataHome, tenant: str) -> Path:
    return home.folder(tenant, "signals") / "visibility.parquet"


def record(found: Visibility, tenant: str, home: DataHome | None = None) -> Path:
    """Upsert the week's rows (one per brand): measuring a week again replaces it."""
    path = table_path(home or DataHome(), tenant)
    upsert(path, pl.DataFrame(found.rows(), schema_overrides={"first_rank": pl.Float64}),
           ["week", "brand"])
    return path


def load_series(tenant: str, home: DataHome | None = None) -> pl.DataFrame:
    path = table_path(home or DataHome(), tenant)
    return pl.read_parquet(path).sort("week", "brand") if path.exists() else pl.DataFrame()


@dataclass(frozen=True)
class VisibilityShift:
    week: dt.date
    brand: str
    rate: float
    baseline: float
    z: float
    answers: int

    def describe(self) -> str:
        way = "fell" if self.rate < self.baseline else "rose"
        return (f"{self.brand}'s mention rate {way} to {self.rate:.0%} in the week of "
                f"{self.week} from {self.baseline:.0%} ({abs(self.z):.1f} standard errors, "
                f"{self.answers} answers)")


def detect_shift(series: pl.DataFrame, brand: str, trailing: int = 8, min_weeks: int = 4,
                 threshold: float = 3.0) -> VisibilityShift | None:
    """The newest week's mention rate against the mean of up to ``trailing`` weeks before it,
    judged by the binomial standard error of the newest week's answers."""
    rows = series.filter(pl.col("brand") == brand).sort("week") if not series.is_empty() else (
        series)
    if rows.is_empty() or rows.height < min_weeks + 1:
        return None
    latest, history = rows.row(-1, named=True), rows[-trailing - 1:-1]
    base = float((history["mention_rate"] * history["answers"]).sum() / history["answers"].sum())
    stderr = math.sqrt(max(base * (1 - base), 1e-6) / latest["answers"])
    z = (latest["mention_rate"] - base) / stderr
    if abs(z) <= threshold:
        return None
    return VisibilityShift(week=latest["week"], brand=brand, rate=latest["mention_rate"],
                           baseline=base, z=z, answers=latest["answers"])

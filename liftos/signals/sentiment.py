"""Lift Sentiment: customer texts in, a scored table and a weekly sentiment index out.

Texts come as CSV or Parquet files with ``date`` and ``text`` and optional ``source``,
``channel``, ``campaign``, ``language`` (ISO 639-1; default ``en``) and ``id`` (the source's own
id of the text), or as Klaviyo product reviews. Each file is landed
verbatim first (``raw/sentiment/``, like every source), then checked: an empty text, a text over
100 kB, an unreadable or out-of-range date or an unknown language code stops the file with a
message naming the file, column, line and rule; nothing of it is stored, the raw copy stays.

The offline scorer is VADER (English lexicon, compound polarity -1..1). A text in another
language is kept and marked ``unscored`` (VADER would score it wrong, not badly). With a model
configured, ``score_with_model`` scores every language through the OpenAI SDK's structured
outputs (score, label, language, aspect). Every row names its scorer, and an index series never
mixes scorers. Scored rows are upserted on a hash of (source, id), else of (date, source,
channel, campaign, text): ingesting a file twice stores it once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, Field

from liftos.csvfile import check_file, read_csv
from liftos.errors import InputError, LiftOSError
from liftos.home import DataHome
from liftos.ingest.landing import RawLanding
from liftos.ingest.tables import upsert

SOURCE = "sentiment"
MAX_TEXT_BYTES = 100_000
EARLIEST = dt.date(2000, 1, 1)
OPTIONAL = ("source", "channel", "campaign", "language")
VADER = "vader-3.3.2"
UNSCORED = "unscored"
NEUTRAL_BAND = 0.05  # VADER's own convention: |compound| below this is neutral
# ISO 639-1: the codes a language column may hold.
_ISO_639_1 = """
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da
de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz
ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln
lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi
pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti
tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"""
LANGUAGES = frozenset(_ISO_639_1.split())


@dataclass(frozen=True)
class SentimentCounts:
    texts: int
    scored: int
    unscored: dict[str, int]   # language -> texts left unscored
    inserted: int
    updated: int
    scorer: str = VADER

    def describe(self) -> str:
        left = ", ".join(f"{n} in '{lang}'" for lang, n in sorted(self.unscored.items()))
        return (f"{self.texts} texts: {self.scored} scored ({self.scorer}), "
                f"{sum(self.unscored.values())} unscored{f' ({left}: no offline scorer)' if left else ''}; "
                f"{self.inserted} new, {self.updated} updated")


def ingest_texts(path: str | Path, tenant: str, home: DataHome | None = None,
                 today: dt.date | None = None, model: Any = None) -> SentimentCounts:
    """Land, check, score and store one file of customer texts (``model``: the brief's
    ``LLMSettings`` to score with the model instead of VADER)."""
    home, path = home or DataHome(), Path(path)
    check_file(path)
    payload = path.read_bytes()
    RawLanding(tenant, SOURCE, home).land(payload, {"file": str(path)}, suffix=path.suffix)
    return store(parse_texts(payload, path.suffix, str(path), today or dt.date.today()), tenant,
                 home, model)


def ingest_reviews(credentials: Any, tenant: str, first: dt.date, last: dt.date,
                   home: DataHome | None = None, today: dt.date | None = None,
                   model: Any = None) -> SentimentCounts:
    """Klaviyo product reviews created ``first .. last`` (landed raw by the Klaviyo reader),
    checked, scored and stored like a file of texts."""
    from liftos.ingest import klaviyo

    home = home or DataHome()
    raw = klaviyo.reviews(credentials, tenant, first, last, home)
    raw = raw.filter(pl.col("text").str.strip_chars() != "")  # a star rating alone: no text
    where = f"klaviyo reviews {first}..{last}"
    texts = check_texts(raw, [k + 1 for k in range(raw.height)], where,
                        today or dt.date.today())
    return store(texts, tenant, home, model)


def store(texts: pl.DataFrame, tenant: str, home: DataHome, model: Any = None
          ) -> SentimentCounts:
    """Score checked texts (VADER, or ``model``) and upsert them on their id."""
    if texts.is_empty():
        return SentimentCounts(0, 0, {}, 0, 0)
    frame = score_with_model(texts, model) if model is not None else score(texts)
    inserted, updated = upsert(table_path(home, tenant), frame, ["id"])
    unscored = frame.filter(pl.col("scorer") == UNSCORED).group_by("language").len()
    return SentimentCounts(texts=frame.height, scored=frame.height - sum(unscored["len"]),
                           unscored=dict(zip(unscored["language"], unscored["len"], strict=True)),
                           inserted=inserted, updated=updated, scorer=frame["scorer"][0])


def table_path(home: DataHome, tenant: str) -> Path:
    return home.folder(tenant, "signals") / "sentiment.parquet"


def load_texts(tenant: str, home: DataHome | None = None) -> pl.DataFrame:
    path = table_path(home or DataHome(), tenant)
    return pl.read_parquet(path) if path.exists() else pl.DataFrame()


def parse_texts(payload: bytes, suffix: str, name: str, today: dt.date) -> pl.DataFrame:
    """The file's rows, checked, with an ``id`` per text (every rule names file, column, line)."""
    if suffix.lower() == ".parquet":
        try:
            raw = pl.read_parquet(io.BytesIO(payload))
        except pl.exceptions.PolarsError as exc:
            raise InputError("parquet", f"cannot read the file as Parquet: "
                             f"{str(exc).splitlines()[0]}", name) from None
        lines = [row + 1 for row in range(raw.height)]
    else:
        raw, lines = read_csv(payload, name)
    return check_texts(raw, lines, name, today)


def check_texts(raw: pl.DataFrame, lines: list[int], name: str, today: dt.date
                ) -> pl.DataFrame:
    """Every text rule on ``raw`` (rows at ``lines`` of ``name``), then an id per text."""
    missing = [c for c in ("date", "text") if c not in raw.columns]
    if missing:
        raise InputError("column_exists", f"missing column(s) {', '.join(map(repr, missing))}; "
                         f"a texts file needs 'date' and 'text' (optional: {', '.join(OPTIONAL)})",
                         name)
    frame = raw.select(
        pl.col("date").cast(pl.Utf8).str.to_date(strict=False).alias("date"),
        pl.col("text").cast(pl.Utf8),
        *(pl.col(c).cast(pl.Utf8).fill_null("") if c in raw.columns else pl.lit("").alias(c)
          for c in ("source", "channel", "campaign")),
        (pl.col("language").cast(pl.Utf8).str.strip_chars().str.to_lowercase().fill_null("en")
         if "language" in raw.columns else pl.lit("en")).alias("language"))
    _refuse(frame, raw["date"].is_not_null() & frame["date"].is_null(), name, "date", lines,
            "date_parses", lambda r: f"cannot read {raw['date'][r]!r} as a date (YYYY-MM-DD)")
    _refuse(frame, frame["date"].is_null(), name, "date", lines, "date_present",
            lambda r: "the date is empty")
    _refuse(frame, (frame["date"] < EARLIEST) | (frame["date"] > today + dt.timedelta(days=1)),
            name, "date", lines, "date_in_range",
            lambda r: f"{frame['date'][r]} is outside {EARLIEST}..{today} (a typo?)")
    _refuse(frame, frame["text"].is_null() | (frame["text"].str.strip_chars() == ""), name,
            "text", lines, "text_not_empty", lambda r: "the text is empty")
    _refuse(frame, frame["text"].str.len_bytes() > MAX_TEXT_BYTES, name, "text", lines,
            "text_size", lambda r: (f"the text is {len(frame['text'][r].encode()):,} bytes; "
                                    f"at most {MAX_TEXT_BYTES:,}"))
    _refuse(frame, ~frame["language"].is_in(list(LANGUAGES)), name, "language", lines,
            "language_code", lambda r: (f"{frame['language'][r]!r} is not an ISO 639-1 language "
                                        "code (two letters, e.g. en, de, fr)"))
    keys = (frame.select("source", pl.Series("key", raw["id"].cast(pl.Utf8)))
            if "id" in raw.columns else
            frame.select("date", "source", "channel", "campaign", "text"))
    ids = [hashlib.sha256("\x1f".join(map(str, row)).encode()).hexdigest()[:24]
           for row in keys.iter_rows()]
    return frame.with_columns(pl.Series("id", ids))


class ScoredText(BaseModel):
    """The model's reading of one text (structured output)."""

    id: str
    score: float = Field(description="polarity from -1 (very negative) to 1 (very positive)")
    label: Literal["positive", "neutral", "negative"]
    language: str = Field(description="ISO 639-1 code of the text's language")
    aspect: str = Field(description="what the text is about, in two or three words")


class ScoredBatch(BaseModel):
    items: list[ScoredText]


MODEL_BATCH = 20
MODEL_PROMPT = ("You read customer texts (reviews, survey answers, social posts) in any "
                "language. For each, give its polarity score from -1 to 1, its label, its "
                "language (ISO 639-1) and the aspect it is about. Answer for every id given.")


def score_with_model(frame: pl.DataFrame, settings: Any) -> pl.DataFrame:
    """Every text scored by the configured model (``settings``: the brief's ``LLMSettings``),
    in batches of 20 through the OpenAI SDK's structured outputs; the scorer is
    ``openai:<model>``. A batch the model answers incompletely is an error naming it."""
    import openai

    from liftos.brief.llm import classify_error, describe_error

    client, policy = settings.client(), settings.retry_policy()
    found: dict[str, ScoredText] = {}
    model = settings.model
    for start in range(0, frame.height, MODEL_BATCH):
        batch = frame[start:start + MODEL_BATCH]
        texts = json.dumps([{"id": i, "text": t} for i, t in zip(batch["id"], batch["text"],
                                                                  strict=True)])
        try:
            answer = policy.run(lambda texts=texts: client.chat.completions.parse(
                model=settings.model, response_format=ScoredBatch, temperature=0.0,
                messages=[{"role": "system", "content": MODEL_PROMPT},
                          {"role": "user", "content": "TEXTS:\n" + texts}]),
                classify_error, "openai", "chat.completions")
        except (openai.APIError, ValueError) as exc:
            raise LiftOSError(f"sentiment model, texts {start + 1}-{start + batch.height}: "
                              f"{describe_error(exc)}; nothing of this file was stored") from None
        parsed = answer.choices[0].message.parsed
        missing = set(batch["id"]) - {item.id for item in (parsed.items if parsed else [])}
        if missing:
            raise LiftOSError(f"sentiment model, texts {start + 1}-{start + batch.height}: no "
                              f"score for {len(missing)} of them; nothing of this file was "
                              "stored")
        found.update({item.id: item for item in parsed.items})
        model = answer.model or model
    return frame.with_columns(
        pl.Series("score", [max(-1.0, min(1.0, found[i].score)) for i in frame["id"]],
                  dtype=pl.Float64),
        pl.Series("label", [found[i].label for i in frame["id"]]),
        pl.Series("aspect", [found[i].aspect for i in frame["id"]]),
        pl.lit(f"openai:{model}").alias("scorer"))


def score(frame: pl.DataFrame) -> pl.DataFrame:
    """``score`` (compound polarity), ``label`` and ``scorer``: VADER for English, none else."""
    analyzer = _analyzer()
    english = frame["language"] == "en"
    scores = [analyzer.polarity_scores(text)["compound"] if en else None
              for text, en in zip(frame["text"], english, strict=True)]
    scored = pl.Series("score", scores, dtype=pl.Float64)
    return frame.with_columns(
        scored,
        pl.when(scored.is_null()).then(None)
        .when(scored >= NEUTRAL_BAND).then(pl.lit("positive"))
        .when(scored <= -NEUTRAL_BAND).then(pl.lit("negative"))
        .otherwise(pl.lit("neutral")).alias("label"),
        pl.when(english).then(pl.lit(VADER)).otherwise(pl.lit(UNSCORED)).alias("scorer"))


def weekly_index(texts: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """Per week (Monday) and scorer [and ``by``]: texts, mean score and its standard error."""
    if texts.is_empty():
        return pl.DataFrame()
    keys = ["week", "scorer", *([by] if by else [])]
    return (texts.filter(pl.col("scorer") != UNSCORED)
            .with_columns(pl.col("date").dt.truncate("1w").alias("week"))
            .group_by(keys)
            .agg(pl.len().alias("texts"), pl.col("score").mean().alias("index"),
                 (pl.col("score").std() / pl.len().sqrt()).fill_null(0.0).alias("stderr"))
            .sort(keys))


@dataclass(frozen=True)
class Shift:
    week: dt.date
    index: float
    baseline: float
    size: float        # index - baseline
    noise: float       # the standard deviation a change this size is judged against
    texts: int
    drivers: tuple[str, ...]

    def describe(self) -> str:
        way = "fell" if self.size < 0 else "rose"
        return (f"sentiment {way} to {self.index:+.2f} in the week of {self.week} from "
                f"{self.baseline:+.2f} ({self.size:+.2f}, {abs(self.size) / self.noise:.1f} times "
                f"the noise; {self.texts} texts)")


def detect_shift(texts: pl.DataFrame, trailing: int = 8, min_texts: int = 30,
                 threshold: float = 3.0) -> Shift | None:
    """The newest week's index against the ``trailing`` weeks before it: a shift when the change
    exceeds ``threshold`` times the noise (the week's standard error and the spread of the
    trailing weekly means together) and the week holds at least ``min_texts`` texts."""
    index = weekly_index(texts)
    if index.is_empty():
        return None
    index = index.filter(pl.col("scorer") == index.sort("week")["scorer"][-1]).sort("week")
    if index.height < trailing + 1:  # one scorer's series only: scorers are never compared
        return None
    latest, history = index.row(-1, named=True), index[-trailing - 1:-1]
    baseline, spread = float(history["index"].mean()), float(history["index"].std() or 0.0)
    noise = math.sqrt(latest["stderr"] ** 2 + spread ** 2)
    size = latest["index"] - baseline
    if latest["texts"] < min_texts or noise == 0 or abs(size) <= threshold * noise:
        return None
    week = texts.filter((pl.col("date").dt.truncate("1w") == latest["week"])
                        & (pl.col("scorer") == latest["scorer"]))
    drivers = week.sort("score", descending=size > 0).head(5)["text"].to_list()
    return Shift(week=latest["week"], index=latest["index"], baseline=baseline, size=size,
                 noise=noise, texts=latest["texts"], drivers=tuple(drivers))


def _refuse(frame: pl.DataFrame, bad: pl.Series, name: str, column: str, lines: list[int],
            rule: str, message: Callable[[int], str]) -> None:
    if bad.fill_null(False).any():
        row = int(bad.fill_null(False).arg_max())
        count = int(bad.fill_null(False).sum())
        more = f" ({count - 1} more row(s) like it)" if count > 1 else ""
        raise InputError(rule, message(row) + more, name, column, lines[row])


@cache
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()

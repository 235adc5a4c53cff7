"""CSV/Parquet uploads into the canonical tables, the weekly model panel built from them, and
``rebuild`` (curated tables re-derived from raw landing).

Media files: ``date``, ``campaign_name`` and ``spend`` (currency units) or ``cost_micros``;
optional ``account_id``, ``campaign_id``, ``channel`` (else mapped by the template's channel
rules), ``currency``, ``impressions``, ``clicks``, ``conversions``, ``conversion_value``.
Outcome files: ``date``, ``value``, optional ``kpi`` (default: the template's KPI name).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel

from liftos.config import ChannelRule, Template
from liftos.errors import InputError
from liftos.home import DataHome, atomic_write
from liftos.ingest.landing import RawLanding
from liftos.ingest.tables import (
    MEDIA_KEY,
    OUTCOME_KEY,
    media_frame,
    outcome_frame,
    upsert,
)

Kind = Literal["media", "outcome"]
SOURCE = "files"


class IngestCounts(BaseModel):
    fetched: int = 0
    landed: int = 0
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0

    def add(self, other: "IngestCounts") -> "IngestCounts":
        return IngestCounts(**{k: getattr(self, k) + getattr(other, k) for k in self.model_fields})


def curated_path(home: DataHome, tenant: str, table: str) -> Path:
    return home.folder(tenant, "curated") / f"{table}.parquet"


def ingest_file(path: str | Path, tenant: str, template: Template, kind: Kind = "media",
                home: DataHome | None = None, currency: str = "USD") -> IngestCounts:
    """Land the file verbatim, parse it and upsert it into the tenant's canonical tables."""
    home, path = home or DataHome(), Path(path)
    if not path.exists():
        raise InputError("file_exists", "file not found", str(path))
    payload = path.read_bytes()
    RawLanding(tenant, SOURCE, home).land(payload, {"kind": kind, "file": str(path),
                                                    "currency": currency}, suffix=path.suffix)
    frame = parse_file(payload, path.suffix, str(path), tenant, template, kind, currency)
    return _store(frame, home, tenant, kind, landed=1)


def parse_file(payload: bytes, suffix: str, name: str, tenant: str, template: Template,
               kind: Kind, currency: str) -> pl.DataFrame:
    raw = (pl.read_parquet(io.BytesIO(payload)) if suffix.lower() == ".parquet"
           else pl.read_csv(io.BytesIO(payload), infer_schema_length=10_000))
    return (_media(raw, name, tenant, template, currency) if kind == "media"
            else _outcome(raw, name, tenant, template))


def rebuild(tenant: str, template: Template, home: DataHome | None = None) -> IngestCounts:
    """Re-derive the curated tables from every landed file (after a parser fix, say)."""
    home = home or DataHome()
    for table in ("media_daily", "outcome_daily"):
        curated_path(home, tenant, table).unlink(missing_ok=True)
    counts = IngestCounts()
    for entry, payload in RawLanding(tenant, SOURCE, home).payloads():
        request = entry["request"]
        suffix = Path(request["file"]).suffix
        frame = parse_file(payload, suffix, request["file"], tenant, template, request["kind"],
                           request.get("currency", "USD"))
        counts = counts.add(_store(frame, home, tenant, request["kind"], landed=0))
    return counts


def weekly_panel(tenant: str, template: Template, home: DataHome | None = None,
                 out: Path | None = None) -> Path:
    """The wide weekly table the model reads: one spend column per channel, the KPI."""
    home = home or DataHome()
    media = pl.read_parquet(curated_path(home, tenant, "media_daily"))
    outcome = pl.read_parquet(curated_path(home, tenant, "outcome_daily")).filter(
        pl.col("kpi") == template.kpi.name)
    week = pl.col("date").dt.truncate("1w")  # ISO weeks start on Monday
    spend = (media.with_columns(week.alias("week"), pl.col("spend").cast(pl.Float64))
             .group_by("week", "channel").agg(pl.col("spend").sum())
             .pivot(on="channel", index="week", values="spend").fill_null(0.0))
    kpi = (outcome.with_columns(week.alias("week")).group_by("week")
           .agg(pl.col("value").sum().alias(template.kpi.name)))
    panel = kpi.join(spend, on="week", how="left").fill_null(0.0).sort("week").rename(
        {"week": "date"})
    out = out or home.folder(tenant, "curated") / "panel.csv"
    atomic_write(out, panel.write_csv)
    return out


def map_channel(rules: list[ChannelRule], source: str, campaign_name: str) -> str | None:
    for rule in rules:
        if rule.source in ("*", source) and re.search(rule.match, campaign_name or "",
                                                       flags=re.IGNORECASE):
            return rule.channel
    return None


def _store(frame: pl.DataFrame, home: DataHome, tenant: str, kind: str,
           landed: int) -> IngestCounts:
    table, key = ("media_daily", MEDIA_KEY) if kind == "media" else ("outcome_daily", OUTCOME_KEY)
    inserted, updated = upsert(curated_path(home, tenant, table), frame, key)
    return IngestCounts(fetched=frame.height, landed=landed, inserted=inserted, updated=updated)


def _require(raw: pl.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise InputError("column_exists", f"missing column(s) {missing}; found {raw.columns}",
                         name, missing[0])


def _media(raw: pl.DataFrame, name: str, tenant: str, template: Template,
           currency: str) -> pl.DataFrame:
    _require(raw, name, ["date", "campaign_name"])
    if "spend" not in raw.columns and "cost_micros" not in raw.columns:
        raise InputError("column_exists", "needs 'spend' or 'cost_micros'", name, "spend")
    micros = (pl.col("cost_micros").cast(pl.Int64) if "cost_micros" in raw.columns else
              (pl.col("spend").cast(pl.Decimal(38, 6)) * 1_000_000).cast(pl.Int64))
    frame = raw.with_columns(
        pl.lit(tenant).alias("tenant"), pl.lit(SOURCE).alias("source"),
        _text(raw, "account_id", "file"), _text(raw, "campaign_id", None, "campaign_name"),
        _parsed_dates(raw, name), micros.alias("spend_micros"),
        _text(raw, "currency", currency),
        *(_number(raw, c, pl.Int64) for c in ("impressions", "clicks")),
        *(_number(raw, c, pl.Float64) for c in ("conversions", "conversion_value")))
    if "channel" not in raw.columns:
        mapper: Callable[[str], str | None] = lambda n: map_channel(
            template.channel_rules, SOURCE, n)
        frame = frame.with_columns(pl.col("campaign_name").map_elements(
            mapper, return_dtype=pl.Utf8).alias("channel"))
    unmapped = frame.filter(pl.col("channel").is_null())
    if unmapped.height:
        raise InputError("channel_mapped", f"campaign '{unmapped['campaign_name'][0]}' matches no "
                         "channel rule; add a 'channel' column or a rule under channel_rules",
                         name, "campaign_name")
    return media_frame(frame)


def _outcome(raw: pl.DataFrame, name: str, tenant: str, template: Template) -> pl.DataFrame:
    _require(raw, name, ["date", "value"])
    return outcome_frame(raw.with_columns(
        pl.lit(tenant).alias("tenant"), pl.lit(SOURCE).alias("source"), _parsed_dates(raw, name),
        _text(raw, "kpi", template.kpi.name), pl.col("value").cast(pl.Float64)))


def _parsed_dates(raw: pl.DataFrame, name: str) -> pl.Expr:
    parsed = raw["date"].cast(pl.Utf8).str.to_date(strict=False)
    bad = parsed.is_null() & raw["date"].is_not_null()
    if bad.any():
        row = int(bad.arg_max())
        raise InputError("date_parses", f"cannot read {raw['date'][row]!r} as a date (YYYY-MM-DD)",
                         name, "date", row + 2)
    return pl.lit(parsed).alias("date")


def _text(raw: pl.DataFrame, column: str, default: str | None, fallback: str | None = None
          ) -> pl.Expr:
    if column in raw.columns:
        return pl.col(column).cast(pl.Utf8)
    return (pl.col(fallback) if fallback else pl.lit(default)).cast(pl.Utf8).alias(column)


def _number(raw: pl.DataFrame, column: str, dtype) -> pl.Expr:
    return (pl.col(column).cast(dtype) if column in raw.columns
            else pl.lit(0).cast(dtype).alias(column))

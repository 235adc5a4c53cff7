"""CSV/Parquet uploads into the canonical tables, the campaign -> channel mapping every source
uses, and the weekly model panel built from the canonical tables.

Media files: ``date``, ``campaign_name`` and ``spend`` (currency units) or ``cost_micros``;
optional ``account_id``, ``campaign_id``, ``channel`` (else mapped by the template's channel
rules), ``currency``, ``impressions``, ``clicks``, ``conversions``, ``conversion_value``.
Outcome files: ``date``, ``value``, optional ``kpi`` (default: the template's KPI name).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any, Literal

import polars as pl

from liftos.config import ChannelRule, Template
from liftos.csvfile import check_file, read_csv
from liftos.errors import InputError
from liftos.home import DataHome, atomic_write
from liftos.ingest.curate import Curator, IngestCounts, curated_path
from liftos.ingest.landing import RawBatch, RawLanding
from liftos.ingest.tables import media_frame, outcome_frame

Kind = Literal["media", "outcome"]
SOURCE = "files"
TABLES = {"media": "media_daily", "outcome": "outcome_daily"}


def ingest_file(path: str | Path, tenant: str, template: Template, kind: Kind = "media",
                home: DataHome | None = None, currency: str = "USD",
                since: dt.date | None = None, until: dt.date | None = None,
                curator: Curator | None = None) -> IngestCounts:
    """Land the file verbatim, parse it, check it and upsert it into the tenant's canonical
    tables. Rows outside ``since .. until`` are quarantined (``dates_in_range``)."""
    home, path = home or DataHome(), Path(path)
    check_file(path)
    payload = path.read_bytes()
    request = {"kind": kind, "file": str(path), "currency": currency,
               "since": since and since.isoformat(), "until": until and until.isoformat()}
    landed = RawLanding(tenant, SOURCE, home).land(payload, request, suffix=path.suffix)
    curator = curator or Curator(tenant, home, f"files-{dt.date.today().isoformat()}")
    raw = RawBatch(SOURCE, request, (landed,))
    first, last = _window(request)
    try:
        frame = parse_batch(TABLES[kind], request, [payload], tenant, template)
    except InputError as exc:  # recorded, so that rebuild replays the upload as it was: refused
        curator.log_batch(raw, TABLES[kind], str(path), first, last,
                          dt.datetime.now(dt.UTC).isoformat(), str(exc))
        raise
    return curator.store(TABLES[kind], frame, str(path), first, last, raw=raw)


def parse_batch(table: str, request: dict[str, Any], pages: list[bytes], tenant: str,
                template: Template) -> pl.DataFrame:
    """One landed upload -> its rows (used by ingestion and by ``rebuild``)."""
    name = request["file"]
    return parse_file(pages[0], Path(name).suffix, name, tenant, template, request["kind"],
                      request.get("currency", "USD"))


def replay(request: dict[str, Any], payload: bytes, tenant: str, template: Template,
           curator: Curator) -> IngestCounts:
    """Parse one landed file and store its rows (``rebuild`` of data landed before batches
    were recorded)."""
    frame = parse_batch(TABLES[request["kind"]], request, [payload], tenant, template)
    return curator.store(TABLES[request["kind"]], frame, request["file"], *_window(request))


def _window(request: dict[str, Any]) -> tuple[dt.date | None, dt.date | None]:
    return tuple(dt.date.fromisoformat(request[k]) if request.get(k) else None
                 for k in ("since", "until"))


def parse_file(payload: bytes, suffix: str, name: str, tenant: str, template: Template,
               kind: Kind, currency: str) -> pl.DataFrame:
    if suffix.lower() == ".parquet":
        try:
            raw = pl.read_parquet(io.BytesIO(payload))
        except pl.exceptions.PolarsError as exc:
            raise InputError("parquet", "cannot read the file as Parquet: "
                             f"{str(exc).splitlines()[0]}", name) from None
        lines = [row + 1 for row in range(raw.height)]  # Parquet has no lines: row numbers
    else:
        raw, lines = read_csv(payload, name)
    return (_media(raw, name, tenant, template, currency, lines) if kind == "media"
            else _outcome(raw, name, tenant, template, lines))


def weekly_panel(tenant: str, template: Template, home: DataHome | None = None,
                 out: Path | None = None) -> Path:
    """The wide weekly table the model reads: one spend column per channel, the KPI. Weeks
    start on Monday; a week without all 7 days of outcome (the edges of the data) is left out,
    since its totals would read as a drop."""
    home = home or DataHome()
    media = pl.read_parquet(curated_path(home, tenant, "media_daily"))
    outcome = pl.read_parquet(curated_path(home, tenant, "outcome_daily")).filter(
        pl.col("kpi") == template.kpi.name)
    week = pl.col("date").dt.truncate("1w")
    spend = (media.with_columns(week.alias("week"), pl.col("spend").cast(pl.Float64))
             .group_by("week", "channel").agg(pl.col("spend").sum())
             .pivot(on="channel", index="week", values="spend").fill_null(0.0))
    kpi = (outcome.with_columns(week.alias("week")).group_by("week")
           .agg(pl.col("value").sum().cast(pl.Float64).alias(template.kpi.name),
                pl.col("date").n_unique().alias("_days"))
           .filter(pl.col("_days") == 7).drop("_days"))
    channels = sorted(c for c in spend.columns if c != "week")
    panel = (kpi.join(spend, on="week", how="left").fill_null(0.0).sort("week")
             .select(["week", template.kpi.name, *channels]).rename({"week": "date"}))
    out = out or home.folder(tenant, "curated") / "panel.csv"
    atomic_write(out, panel.write_csv)
    return out


def with_channels(frame: pl.DataFrame, rules: list[ChannelRule], source: str) -> pl.DataFrame:
    """Add ``channel`` from the campaign names (each distinct name matched once); campaigns no
    rule matches get a null channel, which the ``channel_mapped`` check quarantines."""
    names = frame["campaign_name"].unique().to_list()
    mapping = {name: map_channel(rules, source, name) for name in names}
    return frame.with_columns(pl.col("campaign_name").replace_strict(
        mapping, default=None, return_dtype=pl.Utf8).alias("channel"))


def map_channel(rules: list[ChannelRule], source: str, campaign_name: str) -> str | None:
    for rule in rules:
        if rule.source in ("*", source) and re.search(rule.match, campaign_name or "",
                                                       flags=re.IGNORECASE):
            return rule.channel
    return None


def _require(raw: pl.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise InputError("column_exists", f"missing column(s) {missing}; found {raw.columns}",
                         name, missing[0])


def _media(raw: pl.DataFrame, name: str, tenant: str, template: Template,
           currency: str, lines: list[int]) -> pl.DataFrame:
    _require(raw, name, ["date", "campaign_name"])
    if "spend" not in raw.columns and "cost_micros" not in raw.columns:
        raise InputError("column_exists", "needs 'spend' or 'cost_micros'", name, "spend")
    micros = (pl.col("cost_micros").cast(pl.Int64) if "cost_micros" in raw.columns else
              (pl.lit(_money(raw, "spend", name, lines)) * 1_000_000).cast(pl.Int64))
    frame = raw.with_columns(
        pl.lit(tenant).alias("tenant"), pl.lit(SOURCE).alias("source"),
        _text(raw, "account_id", "file"), _text(raw, "campaign_id", None, "campaign_name"),
        _parsed_dates(raw, name, lines), micros.alias("spend_micros"),
        _text(raw, "currency", currency),
        *(_number(raw, c, pl.Int64) for c in ("impressions", "clicks")),
        _number(raw, "conversions", pl.Float64),
        (pl.lit(_money(raw, "conversion_value", name, lines))
         if "conversion_value" in raw.columns else pl.lit("0").alias("conversion_value")))
    if "channel" not in raw.columns:
        frame = with_channels(frame, template.channel_rules, SOURCE)
    return media_frame(frame)


def _outcome(raw: pl.DataFrame, name: str, tenant: str, template: Template,
             lines: list[int]) -> pl.DataFrame:
    _require(raw, name, ["date", "value"])
    return outcome_frame(raw.with_columns(
        pl.lit(tenant).alias("tenant"), pl.lit(SOURCE).alias("source"),
        _parsed_dates(raw, name, lines), _text(raw, "kpi", template.kpi.name),
        pl.lit(_money(raw, "value", name, lines, "a number"))))


def _money(raw: pl.DataFrame, column: str, name: str, lines: list[int],
           what: str = "an amount") -> pl.Series:
    """An amount (money, a KPI value) from its text to an exact decimal (6 places), never
    through a float. CSV columns are read as text; a Parquet float column is taken at its
    shortest decimal form, the number its writer meant."""
    text = raw[column].cast(pl.Utf8).str.strip_chars()
    parsed = text.str.to_decimal(scale=6)
    bad = parsed.is_null() & text.is_not_null() & (text != "")
    if bad.any():
        row = int(bad.arg_max())
        raise InputError("money_parses" if what == "an amount" else "numeric",
                         f"cannot read {raw[column][row]!r} as {what} "
                         "(digits with an optional '.' and up to 6 decimals)", name, column,
                         lines[row])
    return parsed.alias(column)


def _parsed_dates(raw: pl.DataFrame, name: str, lines: list[int]) -> pl.Expr:
    parsed = raw["date"].cast(pl.Utf8).str.to_date(strict=False)
    bad = parsed.is_null() & raw["date"].is_not_null()
    if bad.any():
        row = int(bad.arg_max())
        raise InputError("date_parses", f"cannot read {raw['date'][row]!r} as a date (YYYY-MM-DD)",
                         name, "date", lines[row])
    return pl.lit(parsed).alias("date")


def _text(raw: pl.DataFrame, column: str, default: str | None, fallback: str | None = None
          ) -> pl.Expr:
    if column in raw.columns:
        return pl.col(column).cast(pl.Utf8)
    return (pl.col(fallback) if fallback else pl.lit(default)).cast(pl.Utf8).alias(column)


def _number(raw: pl.DataFrame, column: str, dtype) -> pl.Expr:
    return (pl.col(column).cast(dtype) if column in raw.columns
            else pl.lit(0).cast(dtype).alias(column))

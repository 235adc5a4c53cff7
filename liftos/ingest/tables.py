"""The canonical tables every source lands in, and their idempotent upsert.

``media_daily``: one row per (source, account, campaign, day in the account's time zone).
Money is kept as integer micros (``spend_micros``) until this layer, where ``spend`` becomes an
exact decimal; the currency code travels with it.

``outcome_daily``: one row per (source, day, KPI).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from liftos.home import atomic_write

SPEND = pl.Decimal(precision=18, scale=6)
AMOUNT = pl.Decimal(precision=24, scale=6)  # KPI values and conversion values, exact

MEDIA_DAILY = {
    "tenant": pl.Utf8, "source": pl.Utf8, "account_id": pl.Utf8, "campaign_id": pl.Utf8,
    "campaign_name": pl.Utf8, "channel": pl.Utf8, "date": pl.Date, "spend_micros": pl.Int64,
    "spend": SPEND, "currency": pl.Utf8, "impressions": pl.Int64, "clicks": pl.Int64,
    "conversions": pl.Float64, "conversion_value": AMOUNT,
}
MEDIA_KEY = ["source", "account_id", "campaign_id", "date"]

OUTCOME_DAILY = {"tenant": pl.Utf8, "source": pl.Utf8, "date": pl.Date, "kpi": pl.Utf8,
                 "value": AMOUNT}
OUTCOME_KEY = ["source", "date", "kpi"]


def media_frame(rows: pl.DataFrame) -> pl.DataFrame:
    """Columns in canonical order and types; ``spend`` derived exactly from ``spend_micros``."""
    frame = rows.with_columns(micros_to_decimal(pl.col("spend_micros")).alias("spend"),
                              exact(rows, "conversion_value"))
    return frame.select([pl.col(name).cast(dtype) for name, dtype in MEDIA_DAILY.items()])


def exact(frame: pl.DataFrame, column: str) -> pl.Expr:
    """An amount as an exact decimal: text and decimals as they are, a float at its shortest
    decimal form (the number its source meant), never float arithmetic on the way."""
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Decimal):
        return pl.col(column).cast(AMOUNT)
    return pl.col(column).cast(pl.Utf8).str.strip_chars().str.to_decimal(scale=6).cast(AMOUNT)


def micros_to_decimal(micros: pl.Expr) -> pl.Expr:
    """Integer micros -> exact decimal (no float on the way): "-12.345678" from -12345678."""
    m = micros.cast(pl.Int64)
    whole = (m.abs() // 1_000_000).cast(pl.Utf8)
    fraction = (m.abs() % 1_000_000).cast(pl.Utf8).str.zfill(6)
    sign = pl.when(m < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str([sign, whole, pl.lit("."), fraction]).cast(SPEND)


def outcome_frame(rows: pl.DataFrame) -> pl.DataFrame:
    rows = rows.with_columns(exact(rows, "value"))
    return rows.select([pl.col(name).cast(dtype) for name, dtype in OUTCOME_DAILY.items()])


def upsert(path: Path, new: pl.DataFrame, key: list[str],
           old: pl.DataFrame | None = None) -> tuple[int, int]:
    """Merge ``new`` into the Parquet table at ``path`` (``old``: its content, when the caller
    has read it already): rows with the same key are replaced (late-arriving conversions),
    others appended. Returns (inserted, updated)."""
    if old is None and path.exists():
        old = pl.read_parquet(path)
    if old is not None:
        updated = new.join(old.select(key), on=key, how="semi").height
        merged = pl.concat([old.join(new.select(key), on=key, how="anti"), new],
                           how="diagonal_relaxed")
    else:
        updated, merged = 0, new
    merged = merged.unique(subset=key, keep="last").sort(key)
    atomic_write(path, merged.write_parquet)
    return new.height - updated, updated

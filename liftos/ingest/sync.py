"""What the API connectors share: their settings, their result, and the loop that reads each
stream's window in chunks and moves its bookmark after every stored chunk."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from liftos.ingest.curate import Curator, IngestCounts
from liftos.ingest.jsonshape import Drift
from liftos.ingest.landing import RawBatch
from liftos.ingest.state import Bookmarks, chunks, window

Progress = Callable[[str], None]


class SyncSettings(BaseModel):
    """How much to re-read and how to cut a backfill; every source has these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    credentials: str | None = Field(None, description="saved credentials block name")
    since: dt.date | None = Field(None, description="first day to load on a first sync")
    lookback_days: int = Field(14, ge=1, description="days re-read before the bookmark")
    chunk_days: int = Field(30, ge=1, description="days per request (and per bookmark)")


@dataclass
class SyncResult:
    source: str
    counts: IngestCounts = field(default_factory=IngestCounts)
    windows: dict[str, tuple[str, str]] = field(default_factory=dict)
    drift: list[Drift] = field(default_factory=list)
    quality: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        return f"{self.source}: {self.counts.describe()}"


def yesterday(time_zone: str) -> dt.date:
    """The last complete day where the account lives (its reports are in its time zone)."""
    return dt.datetime.now(ZoneInfo(time_zone)).date() - dt.timedelta(days=1)


def sync_stream(stream: str, label: str, bookmarks: Bookmarks, settings: SyncSettings,
                since: dt.date | None, until: dt.date, result: SyncResult, curator: Curator,
                read_chunk: Callable[[dt.date, dt.date],
                                     Iterable[tuple[str, pl.DataFrame, RawBatch]]],
                progress: Progress | None = None) -> None:
    """Read ``stream`` chunk by chunk from its window; store each chunk, then bookmark it.

    ``read_chunk(first, last)`` lands the raw pages and yields ``(table, rows, raw)``, ``raw``
    naming the landed pages the rows came from."""
    span = window(bookmarks.get(stream), since or settings.since, until,
                  settings.lookback_days, label)
    if span is None:
        return
    result.windows[stream] = (span[0].isoformat(), span[1].isoformat())
    for first, last in chunks(*span, settings.chunk_days):
        started = time.perf_counter()
        for table, rows, raw in read_chunk(first, last):
            counts = curator.store(table, rows, f"{label} {first}..{last}", first, last, raw=raw)
            result.counts = result.counts.add(counts)
        bookmarks.advance(stream, first, last)
        if progress:
            progress(f"{label}: {first}..{last} stored in {time.perf_counter() - started:.1f} s "
                     f"({result.counts.fetched} rows so far)")

"""Per-stream incremental cursors (bookmarks) and the windows and chunks a sync reads.

A *stream* is what one cursor tracks: a Google Ads client account, a Klaviyo metric. Its
bookmark records the first and last day fully loaded. The next sync re-reads the last
``lookback_days`` before the bookmark (conversions and attributions arrive late) and everything
after it; a backfill reads in chunks and moves the bookmark after each chunk, so a killed run
resumes at the last finished chunk (less the lookback, re-read and upserted idempotently).

    tenants/<tenant>/state/<source>.json   {"streams": {"<stream>": {"first": ..., "through": ...}}}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from liftos.errors import LiftOSError
from liftos.home import DataHome, write_json


@dataclass(frozen=True)
class Bookmark:
    first: date
    through: date


class Bookmarks:
    def __init__(self, tenant: str, source: str, home: DataHome | None = None):
        self.path: Path = (home or DataHome()).folder(tenant, "state") / f"{source}.json"
        self._data = json.loads(self.path.read_text()) if self.path.exists() else {"streams": {}}

    def get(self, stream: str) -> Bookmark | None:
        entry = self._data["streams"].get(stream)
        return Bookmark(date.fromisoformat(entry["first"]),
                        date.fromisoformat(entry["through"])) if entry else None

    def advance(self, stream: str, first: date, through: date) -> Bookmark:
        """Record that ``first .. through`` is loaded (merged with what was), atomically."""
        old = self.get(stream)
        new = Bookmark(min(first, old.first), max(through, old.through)) if old else Bookmark(
            first, through)
        self._data["streams"][stream] = {"first": new.first.isoformat(),
                                         "through": new.through.isoformat()}
        write_json(self.path, self._data)
        return new

    def extra(self, key: str, default=None):
        return self._data.get(key, default)

    def set_extra(self, key: str, value) -> None:
        self._data[key] = value
        write_json(self.path, self._data)


def window(bookmark: Bookmark | None, since: date | None, until: date, lookback_days: int,
           stream: str) -> tuple[date, date] | None:
    """The days to read for one stream, or None when there is nothing new.

    Without a bookmark the sync starts at ``since``; with one it restarts ``lookback_days``
    before the bookmark, unless ``since`` asks for history before what was loaded."""
    if bookmark is None or (since is not None and since < bookmark.first):
        if since is None:
            raise LiftOSError(f"{stream}: nothing loaded yet: give the first day to load "
                              "(--since YYYY-MM-DD, or 'since' in the tenant's source settings)")
        start = since
    else:
        start = bookmark.through - timedelta(days=lookback_days - 1)
        if since is not None:
            start = max(start, since)
    return (start, until) if start <= until else None


def chunks(first: date, last: date, days: int) -> Iterator[tuple[date, date]]:
    """``first .. last`` in consecutive pieces of at most ``days`` days."""
    if days < 1:
        raise LiftOSError(f"chunk_days must be at least 1, got {days}")
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=days - 1))
        yield start, end
        start = end + timedelta(days=1)

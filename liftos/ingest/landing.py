"""Raw landing: every payload stored verbatim (gzip), append-only, before any parsing, with the
request that produced it and when. A parser bug can then be fixed and the curated tables rebuilt
from raw (``rebuild``); nothing a source sent is ever lost.

    raw/<source>/<YYYY-MM-DD>/<timestamp>-<sha256[:16]>.json.gz   payload (identical ones once)
    raw/<source>/manifest.jsonl      one line per landing request, duplicates included
    raw/batches.jsonl                one line per batch the curator stored or refused, in order:
                                     its source, request, pages, window, time and outcome

``rebuild`` replays ``batches.jsonl``: the same pages in the same batches and order as live
ingestion, so the rebuilt tables equal the live ones.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liftos.home import DataHome, atomic_write, json_default

log = logging.getLogger("liftos.ingest")


@dataclass(frozen=True)
class RawBatch:
    """The landed pages a batch of rows was parsed from, and the request that fetched them."""

    source: str
    request: dict[str, Any] = field(hash=False)
    pages: tuple[str, ...] = ()  # paths relative to raw/<source>/


class RawLanding:
    def __init__(self, tenant: str, source: str, home: DataHome | None = None):
        self.source = source
        self.folder = (home or DataHome()).folder(tenant, "raw") / source
        self.folder.mkdir(parents=True, exist_ok=True)
        self.manifest = self.folder / "manifest.jsonl"
        self._landed = {entry["sha256"]: entry["path"] for entry in self.entries()}

    def land(self, payload: bytes, request: dict[str, Any], suffix: str = ".json") -> str:
        """Store ``payload`` as received (identical payloads once) and record the request;
        returns the payload's path relative to this source's folder."""
        now = datetime.now(UTC)
        digest = hashlib.sha256(payload).hexdigest()
        relative = self._landed.get(digest)
        if relative is None:
            relative = str(Path(now.strftime("%Y-%m-%d")) / (
                f"{now.strftime('%H%M%S%f')}-{digest[:16]}{suffix}.gz"))
            atomic_write(self.folder / relative,
                         lambda tmp: tmp.write_bytes(gzip.compress(payload)))
            self._landed[digest] = relative
        append_line(self.manifest, {"path": relative, "sha256": digest, "bytes": len(payload),
                                    "landed_at": now.isoformat(), "request": request})
        return relative

    def read(self, relative: str) -> bytes:
        return gzip.decompress((self.folder / relative).read_bytes())

    def entries(self) -> list[dict[str, Any]]:
        return read_lines(self.manifest)

    def payloads(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        """Every landed request in landing order with its payload (for data landed before
        batches were recorded)."""
        for entry in self.entries():
            yield entry, self.read(entry["path"])


def batch_log(home: DataHome, tenant: str) -> Path:
    return home.folder(tenant, "raw") / "batches.jsonl"


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line durably. A torn last line (power loss, full disk) is moved aside
    to ``<name>.torn-<time>`` first, so it neither breaks readers nor glues onto this line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _set_aside_torn_tail(path)
    with open(path, "a") as out:
        out.write(json.dumps(record, sort_keys=True, default=json_default) + "\n")


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSON-lines log; a torn last line is skipped with a warning."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number == len(lines):  # no newline after it: an interrupted write
                log.warning("%s: line %d is incomplete (an interrupted write); skipped",
                            path, number)
                continue
            raise ValueError(f"{path}: line {number} is not valid JSON") from None
    return records


def _set_aside_torn_tail(path: Path) -> None:
    """Only the last byte is read on the usual path (appends stay O(1))."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as log_file:
        log_file.seek(-1, os.SEEK_END)
        if log_file.read(1) == b"\n":
            return
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    aside = path.with_name(f"{path.name}.torn-{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
    aside.write_bytes(data[keep:])
    with open(path, "r+b") as out:
        out.truncate(keep)
    log.warning("%s: an incomplete last line was moved to %s", path, aside.name)

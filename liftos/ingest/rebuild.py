"""``rebuild``: the curated tables re-derived from raw landing through the same parsers and
checks as live ingestion, without fetching anything again (e.g. after a parser fix).

Live ingestion records every batch it stored or refused (``raw/batches.jsonl``: the source,
request, landed pages, window, time and outcome). Rebuild replays exactly those batches in the
same order with the tenant's own quality rules and each batch's original time, so the rebuilt
curated and quarantine tables equal the live ones. A batch that failed a critical check then
fails again and is reported, as it was; a batch whose raw pages no longer parse is reported and
skipped. Everything is built in a staging folder and swapped in at the end: the live tables
stay as they were until the new ones are complete, and a killed rebuild leaves them untouched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from liftos.config import Template
from liftos.home import DataHome
from liftos.ingest import files, google_ads, klaviyo
from liftos.ingest.curate import Curator, IngestCounts
from liftos.ingest.landing import RawLanding, batch_log, read_lines
from liftos.ingest.quality import Checker, QualityFailed, QualityRules

Parser = Callable[[str, dict, list[bytes], str, Template], pl.DataFrame]
PARSERS: dict[str, Parser] = {google_ads.SOURCE: google_ads.parse_batch,
                              klaviyo.SOURCE: klaviyo.parse_batch,
                              files.SOURCE: files.parse_batch}
LEGACY_REPLAYERS = {google_ads.SOURCE: google_ads.replay, klaviyo.SOURCE: klaviyo.replay}
UNCHECKED_KEYS = {"klaviyo_campaigns": ["id"]}  # side tables without a quality suite


@dataclass
class RebuildResult:
    counts: IngestCounts = field(default_factory=IngestCounts)
    batches: int = 0
    refused: list[str] = field(default_factory=list)   # failed live too: replayed as they were
    broken: list[str] = field(default_factory=list)    # stored live, cannot be replayed now

    def describe(self) -> str:
        lines = [f"{self.batches} batch(es) replayed: {self.counts.describe()}"]
        lines += [f"refused again, as when landed: {item}" for item in self.refused]
        lines += [f"NOT replayed: {item}" for item in self.broken]
        return "\n".join(lines)


def rebuild(tenant: str, template: Template, home: DataHome | None = None,
            rules: QualityRules | None = None) -> RebuildResult:
    home = home or DataHome()
    staging = home.staging(tenant, "curated")
    curator = Curator(tenant, home, f"rebuild-{dt.datetime.now():%Y%m%dT%H%M%S}",
                      Checker(rules), folder=staging, record=False)
    result = RebuildResult()
    landings: dict[str, RawLanding] = {}
    recorded = read_lines(batch_log(home, tenant))
    for batch in recorded:
        landing = landings.setdefault(batch["source"], RawLanding(tenant, batch["source"], home))
        _replay(batch, landing, curator, tenant, template, result)
    _replay_unrecorded(tenant, template, home, {b["source"] for b in recorded}, curator, result)
    home.swap(tenant, "curated", staging)
    return result


def _replay(batch: dict, landing: RawLanding, curator: Curator, tenant: str,
            template: Template, result: RebuildResult) -> None:
    table, where = batch["table"], batch["where"]
    window = [dt.date.fromisoformat(batch[k]) if batch.get(k) else None
              for k in ("first", "last")]
    result.batches += 1
    try:
        pages = [landing.read(path) for path in batch["pages"]]
        frame = PARSERS[batch["source"]](table, batch["request"], pages, tenant, template)
        if table in UNCHECKED_KEYS:
            curator.store_as_is(table, frame, UNCHECKED_KEYS[table], where, at=batch["at"])
        else:
            result.counts = result.counts.add(
                curator.store(table, frame, where, *window, at=batch["at"]))
    except Exception as exc:  # noqa: BLE001 - one bad batch is reported, the rest rebuilt
        message = f"{where}: {_reason(exc)}"
        (result.refused if batch["status"] == "failed" else result.broken).append(message)


def _replay_unrecorded(tenant: str, template: Template, home: DataHome, recorded: set[str],
                       curator: Curator, result: RebuildResult) -> None:
    """Sources landed before batches were recorded: each landed page in landing order."""
    raw = home.folder(tenant, "raw")
    for source in sorted(p.name for p in raw.iterdir() if (p / "manifest.jsonl").exists()):
        if source in recorded:
            continue
        for entry, payload in RawLanding(tenant, source, home).payloads():
            request = entry["request"]
            result.batches += 1
            try:
                if source == files.SOURCE:
                    result.counts = result.counts.add(
                        files.replay(request, payload, tenant, template, curator))
                    continue
                replayer = LEGACY_REPLAYERS[source]
                window = [dt.date.fromisoformat(request[k]) if request.get(k) else None
                          for k in ("first", "last")]
                for table, rows in replayer(request, [payload], tenant, template):
                    result.counts = result.counts.add(
                        curator.store(table, rows, f"rebuild {entry['path']}", *window))
            except Exception as exc:  # noqa: BLE001 - reported, the rest rebuilt
                result.broken.append(f"{source} {entry['path']}: {_reason(exc)}")


def _reason(exc: Exception) -> str:
    if isinstance(exc, QualityFailed):
        return str(exc)
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

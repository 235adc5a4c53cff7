"""From parsed rows to the curated tables: quality checks, quarantine, upsert, run reports.

Every source ends here, so every source gets the same guarantees: a critical expectation
stops the batch (nothing of it is loaded) and fails naming the rule and example rows; rows
failing a quarantine expectation go to ``curated/quarantine_<table>.parquet`` with their
reason (upserted on the table key, so a re-run does not duplicate them); the rest is upserted.
The Great Expectations outcome of each batch is appended to ``quality/<run>.jsonl``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from pydantic import BaseModel

from liftos.home import DataHome, json_default
from liftos.ingest.landing import RawBatch, append_line, batch_log
from liftos.ingest.quality import Checker, QualityFailed, QualityReport
from liftos.ingest.tables import MEDIA_KEY, OUTCOME_KEY, upsert

KEYS = {"media_daily": MEDIA_KEY, "outcome_daily": OUTCOME_KEY}


class IngestCounts(BaseModel):
    fetched: int = 0
    landed: int = 0
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0

    def add(self, other: IngestCounts) -> IngestCounts:
        return IngestCounts(**{k: getattr(self, k) + getattr(other, k)
                               for k in type(self).model_fields})

    def describe(self) -> str:
        return (f"fetched {self.fetched}, landed {self.landed}, upserted "
                f"{self.inserted + self.updated} ({self.inserted} new, {self.updated} updated), "
                f"quarantined {self.quarantined}")


def curated_path(home: DataHome, tenant: str, table: str) -> Path:
    return home.folder(tenant, "curated") / f"{table}.parquet"


@dataclass
class Curator:
    """Checks and stores batches for one tenant during one sync (one GX context for all).

    Live ingestion records every batch it stores or refuses, with the raw pages it came from,
    in ``raw/batches.jsonl``; ``rebuild`` replays them through a curator writing to a
    temporary ``folder`` (``record=False``), with each batch's original time."""

    tenant: str
    home: DataHome
    run_label: str
    checker: Checker = field(default_factory=Checker)
    reports: list[dict] = field(default_factory=list)
    folder: Path | None = None
    record: bool = True

    def path(self, table: str) -> Path:
        return (self.folder or self.home.folder(self.tenant, "curated")) / f"{table}.parquet"

    def store(self, table: str, frame: pl.DataFrame, where: str, first: dt.date | None = None,
              last: dt.date | None = None, raw: RawBatch | None = None,
              at: str | None = None) -> IngestCounts:
        """Check ``frame`` (rows for ``table``), quarantine what fails, upsert the rest."""
        at = at or dt.datetime.now(dt.UTC).isoformat()
        path = self.path(table)
        history = pl.read_parquet(path) if path.exists() else None
        if table == "media_daily":
            report = self.checker.check_media(frame, history, first, last)
        else:
            report = self.checker.check_outcome(frame, first, last)
        self._record(report, where)
        if report.critical:
            error = QualityFailed(where, report.critical)
            self.log_batch(raw, table, where, first, last, at, str(error))
            raise error
        if report.quarantined.height:
            upsert(self.path(f"quarantine_{table}"), report.quarantined.with_columns(
                pl.lit(at).alias("quarantined_at"), pl.lit(where).alias("batch")),
                KEYS[table] + ["expectation"])
        inserted, updated = upsert(path, report.passed, KEYS[table], old=history)
        self.log_batch(raw, table, where, first, last, at)
        return IngestCounts(fetched=frame.height, landed=len(raw.pages) if raw else 0,
                            inserted=inserted, updated=updated,
                            quarantined=report.quarantined.height)

    def store_as_is(self, table: str, frame: pl.DataFrame, key: list[str], where: str,
                    raw: RawBatch | None = None, at: str | None = None) -> int:
        """Upsert a side table that has no quality suite (e.g. ``klaviyo_campaigns``), and
        record the batch like any other so that rebuild replays it."""
        if frame.height:
            upsert(self.path(table), frame, key)
        self.log_batch(raw, table, where, None, None, at or dt.datetime.now(dt.UTC).isoformat())
        return frame.height

    def log_batch(self, raw: RawBatch | None, table: str, where: str, first: dt.date | None,
                  last: dt.date | None, at: str, error: str | None = None) -> None:
        """One line in ``raw/batches.jsonl``: what rebuild replays, failures included."""
        if raw is None or not self.record:
            return
        append_line(batch_log(self.home, self.tenant), {
            "source": raw.source, "table": table, "where": where, "at": at,
            "first": first and first.isoformat(), "last": last and last.isoformat(),
            "pages": list(raw.pages), "request": raw.request,
            "status": "failed" if error else "stored", "error": error})

    def _record(self, report: QualityReport, where: str) -> None:
        entry = {"batch": where, "at": dt.datetime.now(dt.UTC).isoformat(),
                 **report.summary()}
        self.reports.append(entry)
        log = self.home.folder(self.tenant, "quality") / f"{self.run_label}.jsonl"
        with open(log, "a") as out:
            out.write(json.dumps(entry, default=json_default) + "\n")

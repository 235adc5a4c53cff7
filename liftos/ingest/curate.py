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
    """Checks and stores batches for one tenant during one sync (one GX context for all)."""

    tenant: str
    home: DataHome
    run_label: str
    checker: Checker = field(default_factory=Checker)
    reports: list[dict] = field(default_factory=list)

    def store(self, table: str, frame: pl.DataFrame, where: str, first: dt.date | None = None,
              last: dt.date | None = None, landed: int = 0) -> IngestCounts:
        """Check ``frame`` (rows for ``table``), quarantine what fails, upsert the rest."""
        path = curated_path(self.home, self.tenant, table)
        history = pl.read_parquet(path) if path.exists() else None
        if table == "media_daily":
            report = self.checker.check_media(frame, history, first, last)
        else:
            report = self.checker.check_outcome(frame, first, last)
        self._record(report, where)
        if report.critical:
            raise QualityFailed(where, report.critical)
        if report.quarantined.height:
            upsert(self.quarantine_path(table), report.quarantined.with_columns(
                pl.lit(dt.datetime.now(dt.UTC).isoformat()).alias("quarantined_at"),
                pl.lit(where).alias("batch")), KEYS[table] + ["expectation"])
        inserted, updated = upsert(path, report.passed, KEYS[table], old=history)
        return IngestCounts(fetched=frame.height, landed=landed, inserted=inserted,
                            updated=updated, quarantined=report.quarantined.height)

    def quarantine_path(self, table: str) -> Path:
        return self.home.folder(self.tenant, "curated") / f"quarantine_{table}.parquet"

    def _record(self, report: QualityReport, where: str) -> None:
        entry = {"batch": where, "at": dt.datetime.now(dt.UTC).isoformat(),
                 **report.summary()}
        self.reports.append(entry)
        log = self.home.folder(self.tenant, "quality") / f"{self.run_label}.jsonl"
        with open(log, "a") as out:
            out.write(json.dumps(entry, default=json_default) + "\n")

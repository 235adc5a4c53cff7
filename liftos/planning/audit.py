"""The decision audit: every proposal and decision of a tenant, append-only and hash-chained.

Each record holds the hash of the one before it and its own hash over (sequence, time, kind,
payload, previous hash); the newest hash is also kept in ``decisions.head``. So an edited byte,
a deleted record (the middle or the end), or two swapped records are found by :func:`verify`,
which names the first bad record. Appends hold an exclusive file lock from reading the head to
writing the line, so concurrent proposals for one tenant never fork the chain. History is never
edited: a rollback is a new record.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from liftos.errors import LiftOSError
from liftos.home import DataHome, json_default

Kind = Literal["proposal", "decision", "rollback", "outcome"]
GENESIS = "0" * 64


class DecisionRecord(BaseModel):
    seq: int
    at: str
    kind: Kind
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def describe(self) -> str:
        p = self.payload
        what = {"proposal": lambda: f"{p.get('objective')} plan, lift {p.get('lift_mean', 0):,.0f}",
                "decision": lambda: f"{p.get('verdict')} by {p.get('by')}: {p.get('comment', '')}",
                "rollback": lambda: f"reinstated decision #{p.get('reinstates')}",
                "outcome": lambda: f"realised {p.get('realised', 0):,.0f}"}[self.kind]()
        return f"#{self.seq} {self.at} {self.kind}: {what}"


class ChainBroken(LiftOSError):
    """The audit log was edited, truncated or reordered; names the first bad record."""


def _digest(seq: int, at: str, kind: str, payload: dict[str, Any], prev_hash: str) -> str:
    blob = json.dumps({"seq": seq, "at": at, "kind": kind, "payload": payload,
                       "prev_hash": prev_hash}, sort_keys=True, default=json_default)
    return hashlib.sha256(blob.encode()).hexdigest()


class DecisionLog:
    def __init__(self, tenant: str, home: DataHome | None = None):
        folder = (home or DataHome()).folder(tenant, "decisions")
        self.tenant = tenant
        self.path, self.head, self.lock = (folder / "decisions.jsonl", folder / "decisions.head",
                                           folder / ".lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, kind: Kind, payload: dict[str, Any]) -> DecisionRecord:
        """Add a record after a verified chain (a broken chain is never extended)."""
        payload = json.loads(json.dumps(payload, default=json_default))  # as it will be read
        with self._locked():
            records = self.verify()
            seq = records[-1].seq + 1 if records else 1
            prev = records[-1].hash if records else GENESIS
            at = datetime.now(UTC).isoformat()
            record = DecisionRecord(seq=seq, at=at, kind=kind, payload=payload, prev_hash=prev,
                                    hash=_digest(seq, at, kind, payload, prev))
            with open(self.path, "a") as out:
                out.write(record.model_dump_json() + "\n")
                out.flush()
                os.fsync(out.fileno())
            tmp = self.head.with_suffix(".tmp")
            tmp.write_text(record.hash)
            os.replace(tmp, self.head)
        return record

    def records(self) -> list[DecisionRecord]:
        return self.verify()

    def verify(self) -> list[DecisionRecord]:
        """Every record, checked; :class:`ChainBroken` names the first one that is not what
        was written (or the place where records are missing)."""
        if not self.path.exists():
            if self.head.exists():
                raise ChainBroken(f"{self.path}: missing, but {self.head.name} says records "
                                  "were written")
            return []
        records, prev = [], GENESIS
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            where = f"{self.path}, line {number}"
            try:
                record = DecisionRecord.model_validate_json(line)
            except ValueError:
                raise ChainBroken(f"{where}: not a decision record (edited?)") from None
            if record.seq != len(records) + 1:
                raise ChainBroken(f"{where}: record #{record.seq} where #{len(records) + 1} "
                                  "belongs (a record was deleted or moved)")
            if record.prev_hash != prev:
                raise ChainBroken(f"{where}: record #{record.seq} does not follow the record "
                                  "before it (deleted, moved or edited)")
            if _digest(record.seq, record.at, record.kind, record.payload,
                       record.prev_hash) != record.hash:
                raise ChainBroken(f"{where}: record #{record.seq} was edited after it was "
                                  "written")
            records.append(record)
            prev = record.hash
        head = self.head.read_text().strip() if self.head.exists() else GENESIS
        if head != prev:
            raise ChainBroken(f"{self.path}: the last record is #{len(records)} but the head "
                              "names another: records were removed from the end")
        return records

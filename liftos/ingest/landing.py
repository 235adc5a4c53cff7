"""Raw landing: every payload stored verbatim (gzip), append-only, before any parsing, with the
request that produced it and when. A parser bug can then be fixed and the curated tables rebuilt
from raw (``rebuild``); nothing a source sent is ever lost.

    raw/<source>/<YYYY-MM-DD>/<timestamp>-<sha256[:16]>.json.gz   payload
    raw/<source>/manifest.jsonl                                   one line per landed payload
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liftos.home import DataHome, atomic_write


class RawLanding:
    def __init__(self, tenant: str, source: str, home: DataHome | None = None):
        self.folder = (home or DataHome()).folder(tenant, "raw") / source
        self.folder.mkdir(parents=True, exist_ok=True)
        self.manifest = self.folder / "manifest.jsonl"
        self._landed = {entry["sha256"]: entry["path"] for entry in self.entries()}

    def land(self, payload: bytes, request: dict[str, Any], suffix: str = ".json") -> Path:
        """Store ``payload`` as received; identical payloads are stored once."""
        now = datetime.now(UTC)
        digest = hashlib.sha256(payload).hexdigest()
        if digest in self._landed:
            return self.folder / self._landed[digest]
        relative = Path(now.strftime("%Y-%m-%d")) / (
            f"{now.strftime('%H%M%S%f')}-{digest[:16]}{suffix}.gz")
        atomic_write(self.folder / relative, lambda tmp: tmp.write_bytes(gzip.compress(payload)))
        with open(self.manifest, "a") as log:
            log.write(json.dumps({"path": str(relative), "sha256": digest, "bytes": len(payload),
                                  "landed_at": now.isoformat(), "request": request},
                                 sort_keys=True, default=str) + "\n")
        self._landed[digest] = str(relative)
        return self.folder / relative

    def entries(self) -> list[dict[str, Any]]:
        if not self.manifest.exists():
            return []
        return [json.loads(line) for line in self.manifest.read_text().splitlines() if line]

    def payloads(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        """Every landed payload in landing order, with its manifest entry."""
        for entry in self.entries():
            yield entry, gzip.decompress((self.folder / entry["path"]).read_bytes())

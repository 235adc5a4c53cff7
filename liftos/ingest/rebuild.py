"""``rebuild``: the curated tables re-derived from everything ever landed, in landing order,
through the same parsers and checks as live ingestion. After a parser fix nothing needs to be
fetched again, and what a source once sent is never lost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import polars as pl

from liftos.config import Template
from liftos.home import DataHome
from liftos.ingest import files, google_ads, klaviyo
from liftos.ingest.curate import Curator, IngestCounts, curated_path
from liftos.ingest.landing import RawLanding

Replayer = Callable[[dict, bytes, str, Template], Iterator[tuple[str, pl.DataFrame]]]
REPLAYERS: dict[str, Replayer] = {
    google_ads.SOURCE: lambda request, payload, tenant, template: google_ads.replay(
        request, [payload], tenant, template),
    klaviyo.SOURCE: klaviyo.replay,
}


def rebuild(tenant: str, template: Template, home: DataHome | None = None) -> IngestCounts:
    home = home or DataHome()
    for table in ("media_daily", "outcome_daily", "quarantine_media_daily",
                  "quarantine_outcome_daily"):
        curated_path(home, tenant, table).unlink(missing_ok=True)
    curator = Curator(tenant, home, f"rebuild-{dt.datetime.now():%Y%m%dT%H%M%S}")
    counts = IngestCounts()
    raw = home.folder(tenant, "raw")
    for source in sorted(p.name for p in raw.iterdir() if (p / "manifest.jsonl").exists()):
        for entry, payload in RawLanding(tenant, source, home).payloads():
            request = entry["request"]
            if source == files.SOURCE:
                counts = counts.add(files.replay(request, payload, tenant, template, curator))
                continue
            window = [dt.date.fromisoformat(request[k]) if request.get(k) else None
                      for k in ("first", "last")]
            for table, rows in REPLAYERS[source](request, payload, tenant, template):
                counts = counts.add(curator.store(table, rows, f"rebuild {entry['path']}",
                                                  *window))
    return counts

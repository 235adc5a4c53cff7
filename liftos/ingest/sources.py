"""One entry point for an API source: what ``liftos ingest google-ads|klaviyo`` and the
``ingest-source`` Prefect task both call, so the two cannot drift."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from liftos.errors import ConfigError
from liftos.home import DataHome
from liftos.ingest import google_ads, klaviyo
from liftos.ingest.curate import Curator
from liftos.ingest.quality import Checker
from liftos.ingest.sync import Progress, SyncResult
from liftos.tenancy import Tenant

# source (the key in a tenant's ``sources``) -> (connector module, credentials kind)
CONNECTORS = {"google_ads": (google_ads, "google-ads"), "klaviyo": (klaviyo, "klaviyo")}
ENDPOINT_FIELD = {"google_ads": "endpoint", "klaviyo": "base_url"}


def source_settings(tenant: Tenant, source: str) -> Any:
    """The tenant's settings of ``source``; a clear error naming the file when it has none."""
    if source not in CONNECTORS:
        raise ConfigError(f"unknown source '{source}'; known: {sorted(CONNECTORS)}")
    settings = getattr(tenant.sources, source)
    if settings is None:
        raise ConfigError(f"tenant {tenant.name}: no 'sources.{source}' in "
                          f"{tenant.config_source}")
    return settings


def curator(tenant: Tenant, home: DataHome, label: str) -> Curator:
    """Stores a sync's batches with the tenant's own quality rules."""
    return Curator(tenant.name, home, label, Checker(tenant.sources.quality))


def ingest_source(tenant: Tenant, source: str, credentials: Any, store: Curator,
                  since: dt.date | None = None, until: dt.date | None = None,
                  throttle: Callable[[], None] | None = None,
                  progress: Progress | None = None) -> SyncResult:
    """Sync ``source`` into the tenant's canonical tables: incremental from the bookmarks, or
    from ``since``. Quality findings accumulate in ``store.reports`` even when it raises."""
    settings = source_settings(tenant, source)
    module, _ = CONNECTORS[source]
    return module.sync(credentials, tenant.name, tenant.template, settings, since=since,
                       until=until, home=store.home, curator=store, throttle=throttle,
                       progress=progress)

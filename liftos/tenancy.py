"""Tenants: who LiftOS models, with which template, from which data, in which time zone.

A tenant file (``tenants/<name>.yaml``, or any path) extends the template/overrides file that
``liftos fit --tenant-config`` reads with where the data lives and the tenant's time zone::

    tenant: acme
    template: ecommerce
    timezone: America/New_York
    data: {path: data/acme.csv, date_column: date, target: revenue}
    overrides: {channels: {tv: {adstock: {max_lag: 10}}}}
    language: de    # the weekly brief's language (default en)
    experiments: experiments.csv   # lift tests: calibration terms in every refresh

Relative data paths are resolved against the tenant file's folder. Channels and controls default
to the template's.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError

from liftos.config import (
    Template,
    _format_errors,
    _read_yaml,
    load_template,
    load_tenant_template,
    named_yaml,
)
from liftos.data import ColumnSpec
from liftos.errors import ConfigError
from liftos.home import DataHome
from liftos.ingest.google_ads import GoogleAdsSettings
from liftos.ingest.klaviyo import KlaviyoSettings
from liftos.ingest.quality import QualityRules
from liftos.settings import settings
from liftos.signals.visibility import PromptPanel

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def valid_tenant_name(name: object) -> bool:
    """Lowercase letters, digits, '-' or '_', at most 63: the whole string (a trailing newline
    would otherwise name a look-alike folder)."""
    return isinstance(name, str) and TENANT_NAME.fullmatch(name) is not None
DATA_SUFFIXES = (".csv", ".parquet")


class DataSourceConfig(BaseModel):
    """A wide weekly (or daily) table: one row per week (per geo), one spend column per channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    date_column: str = "date"
    target: str | None = None
    channels: tuple[str, ...] | None = None
    controls: tuple[str, ...] | None = None
    geo_column: str | None = None


class SourcesConfig(BaseModel):
    """Where the tenant's spend and outcomes come from when LiftOS ingests them itself::

        sources:
          google_ads: {customer_id: 111-222-3334, credentials: acme-google-ads, since: 2024-01-01}
          klaviyo: {credentials: acme-klaviyo, timezone: America/New_York}
          quality: {spike_factor: 25}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    google_ads: GoogleAdsSettings | None = None
    klaviyo: KlaviyoSettings | None = None
    quality: QualityRules = QualityRules()

    def configured(self) -> list[str]:
        return [name for name in ("google_ads", "klaviyo") if getattr(self, name) is not None]


class PlanningConfig(BaseModel):
    """Budget planning for the tenant::

        planning: {propose_after_promotion: true, objective: cvar}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    propose_after_promotion: bool = False
    objective: Literal["expected", "cvar"] = "expected"


class Tenant(BaseModel):
    """A resolved tenant: its validated template (overrides applied) and its data source."""

    model_config = ConfigDict(frozen=True)

    name: str
    template: Template
    timezone: str
    data_path: Path
    columns: ColumnSpec
    config_source: str
    sources: SourcesConfig = SourcesConfig()
    planning: PlanningConfig = PlanningConfig()
    language: str = "en"   # the weekly brief's language (numbers read and written in its format)
    surfacing: PromptPanel | None = None  # Lift Surfacing: the brand, competitors and prompts
    signals: tuple[str, ...] = ()  # sentiment / visibility as controls of the model
    experiments: Path | None = None  # lift tests (channel, window, lift, se) that calibrate fits

    @property
    def model_controls(self) -> tuple[str, ...]:
        """The data file's controls, then the signals the tenant names."""
        return (*self.columns.controls, *self.signals)

    def lift_tests(self) -> list:
        """The tenant's experiments, read and checked now (the file may have grown since the
        tenant was loaded); see :mod:`liftos.validation.lift` for the format."""
        from liftos.validation.lift import read_lift_tests

        return [] if self.experiments is None else read_lift_tests(self.experiments,
                                                                   self.columns.channels)

    def describe(self) -> str:
        return (f"tenant {self.name}: template {self.template.name}, "
                f"{len(self.columns.channels)} channels, data {self.data_path}, config "
                f"{self.config_hash()} ({self.config_source})")

    def with_data(self, data: str | Path) -> Tenant:
        """The same tenant reading ``data`` (a file, or a folder holding one), e.g. the weekly
        panel its ingestion just built: the configuration is not read again."""
        path = _data_path(Path(data), Path(self.config_source), from_cli=True)
        return self.model_copy(update={"data_path": path})

    def config_hash(self) -> str:
        """Changes whenever anything that shapes the model changes (template, columns)."""
        blob = json.dumps({"template": self.template.model_dump(mode="json"),
                           "columns": self.columns.__dict__,
                           **({"signals": list(self.signals)} if self.signals else {})},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def tenants_dir() -> Path:
    return settings().tenants


def available_tenants() -> list[str]:
    return sorted(p.stem for p in tenants_dir().glob("*.yaml"))


def load_tenant(name_or_path: str | Path, template: str | None = None,
                       data: str | Path | None = None) -> Tenant:
    """Resolve a tenant by name (``demo``) or path; ``template``/``data`` override the file's."""
    path = _tenant_path(name_or_path)
    raw = _read_yaml(path)
    name = raw.get("tenant", path.stem)
    if not valid_tenant_name(name):
        raise ConfigError(f"{path}: key 'tenant': expected lowercase letters, digits, '-' or '_' "
                          f"(at most 63), got {name!r}")
    resolved = load_tenant_template(path)
    if template is not None:
        resolved = load_template(template, raw.get("overrides") or {}, overrides_source=str(path))
    source = _data_source(raw.get("data"), path)
    sources = _sources(raw.get("sources"), path)
    if data is None and source.path is None:
        if not sources.configured():
            raise ConfigError(f"{path}: key 'data.path': missing; say where the tenant's data "
                              "lives, or configure 'sources' for LiftOS to ingest it")
        data_path = DataHome().tenant(name) / "curated" / "panel.csv"
    else:
        data_path = _data_path(Path(data) if data is not None else Path(source.path), path,
                               from_cli=data is not None)
    columns = ColumnSpec(
        date_column=source.date_column,
        target=source.target or resolved.kpi.name,
        channels=tuple(source.channels or resolved.channels),
        controls=tuple(source.controls if source.controls is not None else resolved.controls),
        geo_column=source.geo_column)
    if not columns.channels:
        raise ConfigError(f"{path}: no channels: list them under 'data.channels' or in the template")
    tenant = Tenant(
        name=name, template=resolved, timezone=_timezone(raw.get("timezone", "UTC"), path),
        data_path=data_path, columns=columns, config_source=str(path), sources=sources,
        planning=_planning(raw.get("planning"), path),
        language=_language(raw.get("language", "en"), path),
        surfacing=None if raw.get("surfacing") is None else _section(
            PromptPanel, raw["surfacing"], path, "surfacing", "prompt panel"),
        signals=_signals(raw.get("signals"), path, columns),
        experiments=_experiments(raw.get("experiments"), path))
    tenant.lift_tests()  # a bad experiments file fails here, before any run starts
    return tenant


def _tenant_path(name_or_path: str | Path) -> Path:
    return named_yaml(name_or_path, tenants_dir(), "tenant", available_tenants)


def _data_source(raw: object, path: Path) -> DataSourceConfig:
    if raw is None:
        raise ConfigError(f"{path}: key 'data': missing; say where the tenant's data lives, "
                          "e.g. data: {path: data.csv, date_column: date, target: revenue}")
    return _section(DataSourceConfig, raw, path, "data", "data source")


def _language(raw: object, path: Path) -> str:
    if not isinstance(raw, str) or not re.fullmatch(r"[a-z]{2}(-[A-Z]{2})?", raw):
        raise ConfigError(f"{path}: key 'language': expected a language code such as en, de or "
                          f"es-MX, got {raw!r}")
    return raw


def _signals(raw: object, path: Path, columns: ColumnSpec) -> tuple[str, ...]:
    from liftos.signals import SIGNALS

    if raw is None:
        return ()
    if not isinstance(raw, list) or any(s not in SIGNALS for s in raw) or len(set(raw)) < len(raw):
        raise ConfigError(f"{path}: key 'signals': expected a list of distinct names from "
                          f"{list(SIGNALS)}, got {raw!r}")
    clash = [s for s in raw if s in (*columns.controls, *columns.channels, columns.target)]
    if clash:
        raise ConfigError(f"{path}: key 'signals': {clash} already name data columns")
    return tuple(raw)


def _experiments(raw: object, path: Path) -> Path | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{path}: key 'experiments': expected the path of a lift-test file "
                          f"(.csv or .yaml), got {raw!r}")
    found = Path(raw) if Path(raw).is_absolute() else path.parent / raw
    if not found.is_file():
        raise ConfigError(f"{path}: key 'experiments': file not found: {found}")
    return found.resolve()


def _planning(raw: object, path: Path) -> PlanningConfig:
    return _section(PlanningConfig, raw or {}, path, "planning", "planning settings")


def _sources(raw: object, path: Path) -> SourcesConfig:
    return _section(SourcesConfig, raw or {}, path, "sources", "sources")


def _section(model: type[BaseModel], raw: object, path: Path, key: str, what: str) -> Any:
    """One section of a tenant file, validated; errors name the file and the full key path."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = _format_errors(exc).replace("key '", f"key '{key}.")
        raise ConfigError(f"{path}: invalid {what}:\n{errors}") from None


def _data_path(given: Path, tenant_file: Path, from_cli: bool) -> Path:
    """A file, or a folder holding ``data.csv``/``data.parquet`` (what ``liftos simulate`` writes)."""
    path = given if (given.is_absolute() or from_cli) else tenant_file.parent / given
    if path.is_dir():
        candidates = [path / f"data{suffix}" for suffix in DATA_SUFFIXES]
        found = [c for c in candidates if c.exists()] or sorted(
            p for p in path.iterdir() if p.suffix.lower() in DATA_SUFFIXES)
        if len(found) != 1 and not (found and found[0].stem == "data"):
            raise ConfigError(f"{path}: expected one data file (data.csv or data.parquet) in the "
                              f"folder, found {[p.name for p in found] or 'none'}")
        path = found[0]
    if not path.exists():
        raise ConfigError(f"{path}: data file not found (tenant file {tenant_file})")
    return path.resolve()


def _timezone(value: object, path: Path) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: key 'timezone': expected an IANA time zone such as "
                          f"'Europe/London', got {value!r}") from None
    return str(value)

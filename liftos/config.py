"""Industry templates and tenant configuration, validated on load.

A template (``templates/<name>.yaml``) preconfigures channels, carry-over windows, priors, the KPI
and budget bounds for an industry. A tenant file names a template and overrides it field by
field::

    template: ecommerce
    overrides:
      channels:
        tv: {adstock: {max_lag: 10}}

Every problem is reported with the file, the dotted key path and what was expected.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from liftos.errors import ConfigError
from liftos.features.transforms import (
    Adstock,
    GeometricAdstock,
    LogisticSaturation,
    Prior,
    Saturation,
)
from liftos.settings import settings

TENANT_KEYS = {"tenant", "template", "overrides", "timezone", "data", "sources", "planning",
               "language", "surfacing", "signals", "experiments"}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KPI(_Strict):
    """What the business optimises. ``revenue`` KPIs give ROAS; ``count`` KPIs give cost per KPI."""

    name: str = "revenue"
    unit: str = "USD"
    kind: Literal["revenue", "count"] = "revenue"


class Seasonality(_Strict):
    yearly_fourier_order: int = Field(2, ge=0, le=10)


class Level(_Strict):
    """A baseline level that moves: piecewise linear through ``knots`` evenly spaced knots over
    the fitted weeks, each step's prior Normal(0, ``step_sd``) on the scaled KPI (a random walk
    at the knots). A level break or a drifting baseline is then not blamed on media that moved
    at the same time. ``knots`` is fixed, not per week, so one more week of data keeps the
    compiled model. 0: the level is the intercept and the linear trend only."""

    knots: int = Field(0, ge=0, le=52)
    step_sd: float = Field(0.05, gt=0)


POSITIVE_PRIORS = frozenset({"LogNormal", "Gamma", "HalfNormal"})


class ChannelConfig(_Strict):
    """How one channel is modelled and what is plausible for it."""

    description: str = ""
    adstock: Adstock = Field(default_factory=GeometricAdstock)
    saturation: Saturation = Field(default_factory=LogisticSaturation)
    # Maximum weekly effect in units of the KPI's maximum (the model works on scaled data).
    effect_prior: Prior = Field(default_factory=lambda: Prior(dist="HalfNormal", sigma=2.0))
    # When set, replaces effect_prior: a prior on the channel's ROAS over the fit's weeks as a
    # multiple of the reference ROAS every channel would have if media drove the template's
    # media_share of the KPI in proportion to spend (unit-free, so it fits count KPIs too).
    roas_prior: Prior | None = None
    roas_bounds: tuple[float, float] = (0.0, 100.0)
    budget_bounds: tuple[float, float] = (0.5, 1.5)

    @field_validator("roas_prior")
    @classmethod
    def _positive(cls, prior: Prior | None) -> Prior | None:
        if prior is not None and prior.dist not in POSITIVE_PRIORS:
            raise ValueError(f"a ROAS prior must be positive: one of {sorted(POSITIVE_PRIORS)}, "
                             f"got {prior.dist}")
        return prior

    @field_validator("roas_bounds", "budget_bounds")
    @classmethod
    def _ordered(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= bounds[0] <= bounds[1]:
            raise ValueError(f"bounds must satisfy 0 <= low <= high, got {list(bounds)}")
        return bounds


class Event(_Strict):
    """A dated event (promotion, holiday, outage) modelled as a weekly dummy."""

    name: str
    dates: list[str]


class ChannelRule(_Strict):
    """Maps a source's campaigns to a modelling channel: the first rule whose ``source`` matches
    and whose ``match`` (a regular expression, case-insensitive) is found in the campaign name."""

    source: str = "*"
    match: str = ""
    channel: str

    @field_validator("match")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        import re

        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return pattern


DEFAULT_CHANNEL_RULES = [
    ChannelRule(source="klaviyo", channel="email"),
    ChannelRule(source="google_ads", match=r"youtube|video|ctv", channel="tv"),
    ChannelRule(source="google_ads", match=r"display|gdn|discovery|demand gen", channel="display"),
    ChannelRule(source="google_ads", channel="search"),
    ChannelRule(match=r"youtube|video|\btv\b|ctv|television", channel="tv"),
    ChannelRule(match=r"display|gdn|programmatic|banner", channel="display"),
    ChannelRule(match=r"social|meta|facebook|instagram|tiktok|snap", channel="social"),
    ChannelRule(match=r"email|klaviyo|sms|newsletter", channel="email"),
    ChannelRule(match=r"search|sem\b|brand|generic|shopping|pmax", channel="search"),
]


class RecoveryThresholds(_Strict):
    """The champion gate's limits on the recovery check (known truths on the tenant's spend)."""

    min_coverage: float = Field(0.75, ge=0, le=1)
    max_median_error: float = Field(0.25, gt=0)
    # A channel typically this far off on truths of the model's own family is not recoverable.
    max_channel_error: float = Field(0.4, gt=0)


class Template(_Strict):
    name: str
    description: str = ""
    kpi: KPI = Field(default_factory=KPI)
    week_start: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]
    seasonality: Seasonality = Field(default_factory=Seasonality)
    trend: bool = True
    level: Level = Field(default_factory=Level)
    channel_defaults: ChannelConfig = Field(default_factory=ChannelConfig)
    # The share of the KPI media drives in a typical business: centres roas_prior.
    media_share: float = Field(0.3, gt=0, lt=1)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    controls: list[str] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    channel_rules: list[ChannelRule] = Field(default_factory=lambda: list(DEFAULT_CHANNEL_RULES))
    recovery: RecoveryThresholds = Field(default_factory=RecoveryThresholds)

    @model_validator(mode="before")
    @classmethod
    def _inherit_channel_defaults(cls, data: Any) -> Any:
        """Each named channel starts from ``channel_defaults`` and changes only the keys it
        sets, as the YAML reads: a channel that named only its carry-over used to get the
        library's priors, saturation and bounds instead of its template's. A channel that
        names an ``effect_prior`` and no ``roas_prior`` keeps the effect prior it chose."""
        if not isinstance(data, dict):
            return data
        defaults, channels = data.get("channel_defaults"), data.get("channels")
        if not isinstance(defaults, dict) or not isinstance(channels, dict):
            return data
        merged = {}
        for name, own in channels.items():
            base = dict(defaults)
            if isinstance(own, dict) and "effect_prior" in own and "roas_prior" not in own:
                base.pop("roas_prior", None)
            merged[name] = deep_merge(base, own) if isinstance(own, dict) else own
        return {**data, "channels": merged}

    def channel(self, name: str) -> ChannelConfig:
        """The configuration of ``name``: its own entry, else the template's channel defaults."""
        return self.channels.get(name, self.channel_defaults)


def templates_dir() -> Path:
    return settings().templates


def available_templates() -> list[str]:
    return sorted(p.stem for p in templates_dir().glob("*.yaml"))


def load_template(name_or_path: str | Path, overrides: dict[str, Any] | None = None,
                  overrides_source: str = "overrides") -> Template:
    """Load a template by name (``ecommerce``) or path, optionally deep-merging overrides."""
    path = _template_path(name_or_path)
    raw = _read_yaml(path)
    merged = deep_merge(raw, overrides or {})
    source = str(path) if not overrides else f"{path} + {overrides_source}"
    return _validate(merged, source)


def load_tenant_template(path: str | Path) -> Template:
    """Load a tenant file: ``template: NAME`` plus optional ``overrides:``."""
    path = Path(path)
    raw = _read_yaml(path)
    unknown = set(raw) - TENANT_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; "
                          f"expected some of {sorted(TENANT_KEYS)}")
    if not isinstance(raw.get("template"), str):
        raise ConfigError(f"{path}: key 'template': expected a template name (string), "
                          f"got {raw.get('template')!r}")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path}: key 'overrides': expected a mapping, got {overrides!r}")
    return load_template(raw["template"], overrides, overrides_source=str(path))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Field-by-field merge. A mapping whose ``type`` (transformation) or ``dist`` (prior)
    changes is replaced, not merged, so a geometric adstock overridden to Weibull does not
    inherit geometric priors, and a HalfNormal prior changed to Gamma keeps no ``sigma``."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        current = result.get(key)
        if isinstance(current, dict) and isinstance(value, dict) and all(
                tag not in value or value.get(tag) == current.get(tag)
                for tag in ("type", "dist")):
            result[key] = deep_merge(current, value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _template_path(name_or_path: str | Path) -> Path:
    return named_yaml(name_or_path, templates_dir(), "template", available_templates)


def named_yaml(name_or_path: str | Path, folder: Path, kind: str,
               available: Callable[[], list[str]]) -> Path:
    """A YAML file given by path, or by name inside ``folder``; a clear error when missing."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if not candidate.exists():
            raise ConfigError(f"{candidate}: {kind} file not found")
        return candidate
    path = folder / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown {kind} '{name_or_path}' (no {path}); available: "
                          f"{', '.join(available()) or '(none found)'}")
    return path


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster, same rules
_parsed: dict[tuple[str, int, int], dict[str, Any]] = {}


def _read_yaml(path: Path) -> dict[str, Any]:
    """The file's mapping, parsed once per version of the file (path, mtime, size): the
    monitor reads every tenant's files each hour. Callers get their own copy."""
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _parsed:
            _parsed[key] = _parse_yaml(path)
            if len(_parsed) > 1024:
                _parsed.pop(next(iter(_parsed)))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    return copy.deepcopy(_parsed[key])


def _parse_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _validate(data: dict[str, Any], source: str) -> Template:
    try:
        return Template.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid configuration:\n" + _format_errors(exc)) from None


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        parts = [str(part) for part in err["loc"] if not _is_union_tag(part)]
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        line = f"  key '{'.'.join(parts)}': {message} (got {err.get('input')!r})"
        inherited = (f"  key '{'.'.join(['channel_defaults', *parts[2:]])}': {message} "
                     f"(got {err.get('input')!r})")
        if not (parts[:1] == ["channels"] and inherited in lines):  # said once, at its source
            lines.append(line)
    return "\n".join(lines)


def _is_union_tag(part: Any) -> bool:
    return part in ("geometric", "weibull", "logistic", "hill")

"""The library's stages as plain functions: what the CLI and the Prefect tasks both call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from liftos.config import Template, load_template, load_tenant
from liftos.data import ColumnSpec, Panel, load_panel
from liftos.model.spec import FitOptions, ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitRequest:
    data: Path
    date_column: str
    target: str
    channels: tuple[str, ...]
    controls: tuple[str, ...] = ()
    geo_column: str | None = None
    template: str = "generic"
    tenant_config: Path | None = None
    options: FitOptions = FitOptions()


def resolve_template(request: FitRequest) -> Template:
    if request.tenant_config is not None:
        return load_tenant(request.tenant_config)
    return load_template(request.template)


def load_request(request: FitRequest) -> tuple[Panel, ModelSpec]:
    """Validate the template and the data; raise ConfigError/InputError with precise messages."""
    template = resolve_template(request)
    columns = ColumnSpec(request.date_column, request.target, request.channels, request.controls,
                         request.geo_column)
    panel = load_panel(request.data, columns, week_start=template.week_start)
    return panel, ModelSpec(template, request.channels, request.controls, request.target)


def fit_and_save(request: FitRequest, out_dir: str | Path, report: bool = True):
    """Load, fit, save artifacts and (optionally) the report; returns the FitResult."""
    from liftos.model.mmm import fit
    from liftos.report import write_report

    panel, spec = load_request(request)
    result = fit(panel, spec, request.options, source=str(request.data))
    result.save(out_dir)
    if report:
        write_report(result, out_dir)
    return result

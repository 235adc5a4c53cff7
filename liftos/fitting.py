"""One fit of one table, start to finish (what `liftos fit` runs): resolve the template, check
the columns, load, fit, save. The refresh stages over tenants are `liftos.refresh`."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from liftos.config import Template, load_template, load_tenant_template
from liftos.data import ColumnSpec, Panel, load_panel
from liftos.errors import ConfigError, LiftOSError
from liftos.model.options import FitOptions
from liftos.model.spec import ModelSpec

log = logging.getLogger(__name__)
STALE_AFTER_REFIT = ("validation.json", "plots/trust_card.png")


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
    lift_tests: Path | None = None
    options: FitOptions = FitOptions()


def resolve_template(request: FitRequest) -> Template:
    if request.tenant_config is not None:
        return load_tenant_template(request.tenant_config)
    return load_template(request.template)


def check_columns(request: FitRequest) -> None:
    """Each column plays one role: a channel listed twice, or the date, target or geo column
    given as a channel or control, would fit a model of something else."""
    roles = {request.date_column: "the date column", request.target: "the target"}
    if request.geo_column:
        roles[request.geo_column] = "the geo column"
    seen: dict[str, str] = {}
    for role, names in (("channel", request.channels), ("control", request.controls)):
        for name in names:
            if name in roles:
                raise ConfigError(f"{name!r} is {roles[name]}; it cannot also be a {role}")
            if name in seen:
                again = "twice" if seen[name] == role else f"as a {seen[name]} and a {role}"
                raise ConfigError(f"column {name!r} is listed {again}")
            seen[name] = role


def prepare_out(out_dir: str | Path) -> Path:
    """Check ``--out`` before the fit (not after minutes of sampling) and clear what an earlier
    fit left there that would describe another model (its validation)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LiftOSError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise LiftOSError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    for stale in STALE_AFTER_REFIT:
        (out / stale).unlink(missing_ok=True)
    return out


def load_request(request: FitRequest) -> tuple[Panel, ModelSpec]:
    """Validate the template and the data; raise ConfigError/InputError with precise messages."""
    check_columns(request)
    template = resolve_template(request)
    columns = ColumnSpec(request.date_column, request.target, request.channels, request.controls,
                         request.geo_column)
    panel = load_panel(request.data, columns, week_start=template.week_start)
    spec = ModelSpec(template, request.channels, request.controls, request.target)
    return panel, dataclasses.replace(spec, calibrations=lift_calibrations(request, panel))


def lift_calibrations(request: FitRequest, panel: Panel) -> tuple:
    """The request's lift tests within the data's weeks, as calibration terms; the others
    become notes of the panel (they show in the report)."""
    from liftos.validation.lift import read_lift_tests, split_within

    if request.lift_tests is None:
        return ()
    tests, outside = split_within(read_lift_tests(request.lift_tests, request.channels),
                                  panel.dates)
    panel.notes.extend(f"lift test {t.label()} is outside the data's weeks: not used"
                       for t in outside)
    if tests:
        panel.notes.append(f"{len(tests)} lift test(s) from {request.lift_tests} calibrate the fit")
    return tuple(t.calibration() for t in tests)


def fit_and_save(request: FitRequest, out_dir: str | Path, report: bool = True):
    """Load, fit, save artifacts and (optionally) the report; returns the FitResult."""
    from liftos.model.mmm import fit
    from liftos.report import write_report

    panel, spec = load_request(request)
    out_dir = prepare_out(out_dir)
    result = fit(panel, spec, request.options, source=str(request.data))
    result.save(out_dir)
    if report:
        write_report(result, out_dir)
    return result

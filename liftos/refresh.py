"""The refresh pipeline's stages as plain functions over small records.

Each stage reads the files its input record points to and returns a record pointing to the
files it wrote (under the data home), with the content hashes that identify them. Records are
small and hashable, so an orchestrator can pass them between machines and use them as cache
keys: a stage whose input record did not change has nothing new to compute.

    land_input -> validate_input -> build_features -> fit_model -> summarize_run
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from liftos import code_version
from liftos.data import Panel, file_sha256, load_panel
from liftos.errors import InputError, LiftOSError
from liftos.home import DataHome, atomic_write, write_json
from liftos.model.options import ModelOptions
from liftos.model.spec import ModelSpec, build_design
from liftos.tenancy import Tenant


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


class TenantRef(Record):
    """Which tenant, resolved how: what every stage needs to find its inputs again."""

    tenant: str
    config_source: str
    config_hash: str
    template: str
    data_path: str
    home: str


class LandedInput(Record):
    tenant: TenantRef
    source_path: str
    raw_path: str
    sha256: str
    size_bytes: int


class ValidatedPanel(Record):
    tenant: TenantRef
    panel_path: str
    source_path: str
    source_sha256: str
    weeks: int
    first_week: str
    last_week: str
    geos: tuple[str, ...]
    channels: tuple[str, ...]
    notes: tuple[str, ...] = ()


class Features(Record):
    """The spec and design of one panel. ``spec_sha256`` covers the whole spec (calibration
    targets and sds included) and ``code_version`` the library's source: with the panel's
    hashes they are everything that changes the posterior, so a cached fit keyed on this record
    is never served for a different model."""

    panel: ValidatedPanel
    spec_path: str
    features_path: str
    signature: str
    n_parameters: int
    spec_sha256: str
    code_version: str


class FittedModel(Record):
    features: Features
    options: ModelOptions
    fit_dir: str
    compile_s: float
    sampling_s: float
    compile_cache_hit: bool
    diagnostics: dict[str, Any]


class RoasShift(Record):
    channel: str
    previous_mean: float
    previous_low: float
    previous_high: float
    roas_mean: float


class RunSummary(Record):
    tenant: str
    fit_dir: str
    report_path: str
    roas: dict[str, dict[str, float]]
    diagnostics: dict[str, Any]
    shifted: tuple[RoasShift, ...] = ()
    previous_fit_dir: str | None = None
    previous_roas: dict[str, float] = {}
    first_week: str = ""
    last_week: str = ""
    template: str = ""
    data_sha256: str
    config_hash: str
    signature: str
    trust_score: float | None = None
    promoted: bool = False
    decision: tuple[str, ...] = ()


def tenant_ref(tenant: Tenant, home: DataHome) -> TenantRef:
    return TenantRef(tenant=tenant.name, config_source=tenant.config_source,
                     config_hash=tenant.config_hash(), template=tenant.template.name,
                     data_path=str(tenant.data_path), home=str(home.root))


def resolve(ref: TenantRef) -> Tenant:
    """The full tenant configuration behind a reference (re-read, and checked unchanged)."""
    from liftos.tenancy import load_tenant_config

    tenant = load_tenant_config(ref.config_source, template=ref.template, data=ref.data_path)
    if tenant.config_hash() != ref.config_hash:
        raise LiftOSError(f"tenant '{ref.tenant}': {ref.config_source} changed during the run; "
                          "start a new run")
    return tenant


# ----------------------------------------------------------------------------------- stages
def land_input(ref: TenantRef) -> LandedInput:
    """Copy the tenant's data file, byte for byte, into the append-only raw landing area."""
    source = Path(ref.data_path)
    digest = file_sha256(source)
    raw = DataHome(ref.home).folder(ref.tenant, "raw") / f"{digest}{source.suffix.lower()}"
    if not raw.exists():
        atomic_write(raw, lambda tmp: shutil.copyfile(source, tmp))
    return LandedInput(tenant=ref, source_path=str(source), raw_path=str(raw), sha256=digest,
                       size_bytes=raw.stat().st_size)


def validate_input(landed: LandedInput, until: str | None = None) -> ValidatedPanel:
    """Apply every input rule to the landed copy; errors name the original file. ``until``
    keeps the weeks starting on or before that date (to replay history)."""
    tenant = resolve(landed.tenant)
    try:
        panel = load_panel(landed.raw_path, tenant.columns, week_start=tenant.template.week_start)
    except InputError as exc:
        raise dataclasses.replace(exc, file=landed.source_path) from None
    panel.source = landed.source_path
    if until is not None:
        panel = panel.window(until=until)
    key = f"{landed.sha256[:16]}-{landed.tenant.config_hash}-{until or 'all'}"
    path = DataHome(landed.tenant.home).folder(landed.tenant.tenant, "panels") / f"{key}.parquet"
    atomic_write(path, panel.save)
    return ValidatedPanel(
        tenant=landed.tenant, panel_path=str(path), source_path=landed.source_path,
        source_sha256=landed.sha256, weeks=panel.n_weeks, first_week=str(panel.dates[0]),
        last_week=str(panel.dates[-1]), geos=tuple(panel.geos), channels=tuple(panel.channels),
        notes=tuple(panel.notes))


def build_features(validated: ValidatedPanel, memory_priors: float | None = None) -> Features:
    """The model specification and its design matrix, written for audit and for the fit.

    With ``memory_priors`` (a widening factor), what the tenant's model in service implies for
    each channel's contribution over these weeks enters the spec as calibration terms."""
    tenant = resolve(validated.tenant)
    panel, spec = _panel_and_spec(validated, tenant)
    if memory_priors is not None:
        spec = dataclasses.replace(spec, calibrations=_champion_calibrations(
            validated.tenant, panel, memory_priors))
    design = build_design(panel, spec, source=validated.source_path)
    signature = spec.signature(design.n_geos, panel.n_weeks, "model")
    spec_sha256 = spec.sha256()
    folder = DataHome(validated.tenant.home).folder(validated.tenant.tenant, "features")
    out = folder / f"{validated.digest()}-{spec_sha256[:12]}"
    write_json(out / "spec.json", spec.to_dict())
    matrix = design.baseline_matrix()
    frame = pl.DataFrame({name: matrix[:, i] for i, name in enumerate(design.baseline_names)})
    atomic_write(out / "features.parquet", frame.write_parquet)
    return Features(panel=validated, spec_path=str(out / "spec.json"),
                    features_path=str(out / "features.parquet"), signature=signature,
                    n_parameters=spec.n_parameters(design.n_geos), spec_sha256=spec_sha256,
                    code_version=code_version())


def fit_model(features: Features, options: ModelOptions, progress=None) -> FittedModel:
    """Fit and save the posterior under a folder named by the inputs and options."""
    from liftos.model.mmm import fit

    validated = features.panel
    spec = ModelSpec.from_dict(json.loads(Path(features.spec_path).read_text()))
    if spec.sha256() != features.spec_sha256:
        raise LiftOSError(f"{features.spec_path} changed after the features were built; "
                          "re-run with refresh=True")
    panel = _load_panel(validated, spec)
    result = fit(panel, spec, options.fit_options(), source=validated.source_path,
                 progress=progress)
    key = hashlib.sha256(f"{features.digest()}{options.digest()}".encode()).hexdigest()[:20]
    out = DataHome(validated.tenant.home).folder(validated.tenant.tenant, "fits") / key
    result.save(out)
    return FittedModel(features=features, options=options, fit_dir=str(out),
                       compile_s=result.timing["compile_s"],
                       sampling_s=result.timing["sampling_s"],
                       compile_cache_hit=result.timing["compile_cache_hit"],
                       diagnostics=result.summary()["diagnostics"])


def summarize_run(fitted: FittedModel, run_id: str | None = None, promote: bool = True,
                  trust_threshold: float | None = None) -> RunSummary:
    """Write the report, compare ROAS with the champion, log the run, and promote it when
    asked and the champion/challenger gate lets it (see :func:`gate`)."""
    from liftos.model.results import FitResult
    from liftos.report import write_report
    from liftos.validation.runner import load_validation

    fit_dir = Path(fitted.fit_dir)
    if not (fit_dir / "summary.json").exists():
        raise LiftOSError(f"fit folder {fit_dir} is missing its summary.json (deleted after the "
                          "fit was cached?); re-run with refresh=True")
    ref = fitted.features.panel.tenant
    home = DataHome(ref.home)
    summary = json.loads((fit_dir / "summary.json").read_text())
    report = fit_dir / "report.md"
    if not report.exists():
        write_report(FitResult.load(fit_dir), fit_dir)
    previous = home.current(ref.tenant)
    shifted = roas_shifts(_previous_roas(previous), summary["channels"])
    validation = load_validation(fit_dir)
    promote, reasons = gate(validation, previous, promote, trust_threshold)
    roas = {name: {key: ch[key] for key in ("roas_mean", "roas_hdi_low", "roas_hdi_high",
                                            "share_mean", "contribution_total_mean")}
            for name, ch in summary["channels"].items()}
    run = RunSummary(
        tenant=ref.tenant, fit_dir=str(fit_dir), report_path=str(report), roas=roas,
        diagnostics=summary["diagnostics"], shifted=tuple(shifted),
        previous_fit_dir=previous["fit_dir"] if previous else None,
        previous_roas={c: r["roas_mean"] for c, r in _previous_roas(previous).items()},
        first_week=fitted.features.panel.first_week, last_week=fitted.features.panel.last_week,
        template=ref.template,
        data_sha256=fitted.features.panel.source_sha256, config_hash=ref.config_hash,
        signature=fitted.features.signature, promoted=promote, decision=reasons,
        trust_score=validation["trust"]["score"] if validation else None)
    record = {"run_id": run_id, "fit_dir": str(fit_dir), "roas": roas,
              "trust_score": run.trust_score,
              "data_path": fitted.features.panel.source_path,
              "data_sha256": run.data_sha256, "config_hash": ref.config_hash,
              "last_week": fitted.features.panel.last_week,
              "at": datetime.now(UTC).isoformat()}
    home.append_run(ref.tenant, {**record, "promoted": promote, "decision": list(reasons)})
    if promote:
        home.set_current(ref.tenant, record)
    return run


NOT_VALIDATED = ("not validated: only a model that passed the validation gate can become "
                 "champion; the fit is recorded")


def gate(validation: dict | None, champion: dict[str, Any] | None, promote: bool,
         trust_threshold: float | None) -> tuple[bool, tuple[str, ...]]:
    """Whether a fit replaces the champion, and why. The only way to promote: asked to, and
    validated with a passing champion/challenger decision (trust, divergences, holdout)."""
    from liftos.validation.runner import load_validation
    from liftos.validation.trust import TRUST_THRESHOLD, champion_decision

    if not promote:
        return False, ()
    if validation is None:
        return False, (NOT_VALIDATED,)
    incumbent = load_validation(champion["fit_dir"]) if champion else None
    decision = champion_decision(validation, incumbent, threshold=(
        TRUST_THRESHOLD if trust_threshold is None else trust_threshold))
    return decision.promote, tuple(decision.reasons)


class ValidationRecord(Record):
    fit_dir: str
    trust_score: float
    passed: int
    checks: int


def validate_model(fitted: FittedModel, options=None, submit=None) -> ValidationRecord:
    """Run the validation suite on the fit (``validation.json`` beside it)."""
    from liftos.validation.runner import ValidationOptions, validate

    validation = validate(fitted.fit_dir, options or ValidationOptions(), submit=submit)
    return ValidationRecord(fit_dir=fitted.fit_dir, trust_score=validation.trust.score,
                            passed=sum(c.passed for c in validation.checks),
                            checks=len(validation.checks))


def roas_shifts(previous: dict[str, dict[str, float]], current: dict[str, dict[str, Any]]
                ) -> list[RoasShift]:
    """Channels whose new ROAS mean lies outside the previous run's 94% interval."""
    shifts = []
    for channel, now in current.items():
        before = previous.get(channel)
        if before and not before["roas_hdi_low"] <= now["roas_mean"] <= before["roas_hdi_high"]:
            shifts.append(RoasShift(channel=channel, previous_mean=before["roas_mean"],
                                    previous_low=before["roas_hdi_low"],
                                    previous_high=before["roas_hdi_high"],
                                    roas_mean=now["roas_mean"]))
    return shifts


# ---------------------------------------------------------------------------------- helpers
def _previous_roas(current: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    return current.get("roas", {}) if current else {}


def _champion_calibrations(ref: TenantRef, panel: Panel, widen: float) -> tuple:
    from liftos.model.results import FitResult
    from liftos.priors import calibrations_from_posterior

    current = DataHome(ref.home).current(ref.tenant)
    if current is None:
        return ()
    champion = FitResult.load(current["fit_dir"])
    if list(champion.panel.channels) != list(panel.channels):
        return ()
    return calibrations_from_posterior(champion, panel, widen,
                                       source=f"model in service {current['fit_dir']}")


def _panel_and_spec(validated: ValidatedPanel, tenant: Tenant) -> tuple[Panel, ModelSpec]:
    spec = ModelSpec(tenant.template, tenant.columns.channels, tenant.columns.controls,
                     tenant.columns.target)
    return _load_panel(validated, spec), spec


def _load_panel(validated: ValidatedPanel, spec: ModelSpec) -> Panel:
    panel = Panel.load(Path(validated.panel_path), spec.target, spec.channels, spec.controls,
                       validated.source_path, validated.source_sha256)
    panel.notes = list(validated.notes)
    return panel


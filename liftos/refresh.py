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
from liftos.signals import signals_digest, with_signals
from liftos.tenancy import Tenant


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


class TenantRef(Record):
    """Which tenant, resolved how: the configuration read once at the start of a run (every
    stage uses this copy, so a run cannot mix two versions of a tenant file) and the data home."""

    tenant: str
    config_source: str
    config_hash: str
    template: str
    data_path: str
    home: str
    config: Tenant
    home_id: str = ""  # DataHome.identity(): a re-made home is another home to the caches


class LandedInput(Record):
    tenant: TenantRef
    source_path: str
    raw_path: str
    sha256: str
    size_bytes: int
    signals_sha256: str = ""  # the signal tables the model uses: new texts, new panel

    def describe(self) -> str:
        return (f"landed {self.source_path} ({self.size_bytes:,} bytes, sha256 "
                f"{self.sha256[:12]})")


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

    def describe(self) -> str:
        notes = f"; {len(self.notes)} note(s): {'; '.join(self.notes)}" if self.notes else ""
        return (f"validated {self.weeks} weeks ({self.first_week}..{self.last_week}), "
                f"{len(self.geos)} geo(s), channels {', '.join(self.channels)}{notes}")


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
    lift_tests: tuple[str, ...] = ()          # experiments calibrating this fit
    lift_tests_waiting: tuple[str, ...] = ()  # experiments outside these weeks

    def describe(self) -> str:
        tests = f"; {len(self.lift_tests)} lift test(s) as calibration" if self.lift_tests else ""
        if self.lift_tests_waiting:
            tests += (f"; {len(self.lift_tests_waiting)} outside these weeks, not used: "
                      + ", ".join(self.lift_tests_waiting))
        return (f"features of {self.panel.weeks} weeks: {self.n_parameters} parameters, model "
                f"signature {self.signature[:12]}, spec {self.spec_sha256[:12]}{tests}")


class FittedModel(Record):
    features: Features
    options: ModelOptions
    fit_dir: str
    compile_s: float
    sampling_s: float
    compile_cache_hit: bool
    diagnostics: dict[str, Any]

    def describe(self) -> str:
        d = self.diagnostics
        cache = "compiled model reused" if self.compile_cache_hit else "compiled"
        return (f"fitted {self.options.chains} x {self.options.draws} draws: {cache} in "
                f"{self.compile_s:.1f} s, sampled in {self.sampling_s:.1f} s; r-hat max "
                f"{d['rhat_max']:.3f}, bulk ESS min {d['ess_bulk_min']:.0f}, divergences "
                f"{d['divergences']}")


class RoasShift(Record):
    channel: str
    champion_mean: float
    champion_low: float
    champion_high: float
    roas_mean: float


class RunSummary(Record):
    tenant: str
    fit_dir: str
    report_path: str
    roas: dict[str, dict[str, float]]
    diagnostics: dict[str, Any]
    shifted: tuple[RoasShift, ...] = ()
    champion_fit_dir: str | None = None
    champion_roas: dict[str, float] = {}
    first_week: str = ""
    last_week: str = ""
    template: str = ""
    data_sha256: str
    config_hash: str
    signature: str
    trust_score: float | None = None
    promoted: bool = False
    decision: tuple[str, ...] = ()
    not_recoverable: dict[str, str] = {}   # channel -> why its ROAS is not published

    def describe(self) -> str:
        trust = "not validated" if self.trust_score is None else f"trust {self.trust_score:.1f}"
        verdict = "promoted to champion" if self.promoted else (
            "not promoted: " + "; ".join(self.decision) if self.decision else "not promoted")
        shifted = f"; ROAS shifted: {', '.join(s.channel for s in self.shifted)}" if (
            self.shifted) else ""
        return f"{trust}; {verdict}{shifted}"


def tenant_ref(tenant: Tenant, home: DataHome) -> TenantRef:
    return TenantRef(tenant=tenant.name, config_source=tenant.config_source,
                     config_hash=tenant.config_hash(), template=tenant.template.name,
                     data_path=str(tenant.data_path), home=str(home.root), config=tenant,
                     home_id=home.identity())


# ----------------------------------------------------------------------------------- stages
def land_input(ref: TenantRef) -> LandedInput:
    """Copy the tenant's data file, byte for byte, into the append-only raw landing area."""
    source = Path(ref.data_path)
    digest = file_sha256(source)
    raw = DataHome(ref.home).folder(ref.tenant, "raw") / f"{digest}{source.suffix.lower()}"
    if not raw.exists():
        atomic_write(raw, lambda tmp: shutil.copyfile(source, tmp))
    return LandedInput(tenant=ref, source_path=str(source), raw_path=str(raw), sha256=digest,
                       size_bytes=raw.stat().st_size,
                       signals_sha256=signals_digest(ref.config, DataHome(ref.home)))


def validate_input(landed: LandedInput, until: str | None = None) -> ValidatedPanel:
    """Apply every input rule to the landed copy; errors name the original file. ``until``
    keeps the weeks starting on or before that date (to replay history)."""
    tenant = landed.tenant.config
    try:
        panel = load_panel(landed.raw_path, tenant.columns, week_start=tenant.template.week_start)
    except InputError as exc:
        raise dataclasses.replace(exc, file=landed.source_path) from None
    panel = with_signals(panel, tenant, DataHome(landed.tenant.home))
    panel.source = landed.source_path
    if until is not None:
        panel = panel.window(until=until)
    key = (f"{landed.sha256[:16]}-{landed.tenant.config_hash}-{until or 'all'}"
           + (f"-{landed.signals_sha256[:12]}" if landed.signals_sha256 else ""))
    path = DataHome(landed.tenant.home).folder(landed.tenant.tenant, "panels") / f"{key}.parquet"
    atomic_write(path, panel.save)
    return ValidatedPanel(
        tenant=landed.tenant, panel_path=str(path), source_path=landed.source_path,
        source_sha256=landed.sha256, weeks=panel.n_weeks, first_week=str(panel.dates[0]),
        last_week=str(panel.dates[-1]), geos=tuple(panel.geos), channels=tuple(panel.channels),
        notes=tuple(panel.notes))


def build_features(validated: ValidatedPanel, memory_priors: float | None = None) -> Features:
    """The model specification and its design matrix, written for audit and for the fit.

    The tenant's lift tests whose window lies within these weeks enter the spec as calibration
    terms. With ``memory_priors`` (a widening factor), so does what the tenant's champion
    implies for each channel's contribution over these weeks."""
    from liftos.validation.lift import split_within

    tenant = validated.tenant.config
    panel, spec = _panel_and_spec(validated, tenant)
    tests, waiting = split_within(tenant.lift_tests(), panel.dates)
    calibrations = tuple(t.calibration() for t in tests)
    if memory_priors is not None:
        calibrations += _champion_calibrations(validated.tenant, panel, memory_priors)
    spec = dataclasses.replace(spec, calibrations=calibrations)
    design = build_design(panel, spec, source=validated.source_path)
    signature = spec.signature(design.n_geos, "model")
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
                    code_version=code_version(),
                    lift_tests=tuple(t.label() for t in tests),
                    lift_tests_waiting=tuple(t.label() for t in waiting))


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
                 progress=progress, owner=validated.tenant.tenant)
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
    """Read the fit's numbers (writing its report if missing), compare ROAS with the champion,
    gate (see :func:`gate`), then record the run and promote it when the gate lets it."""
    from liftos.validation.runner import load_validation

    fit_dir = Path(fitted.fit_dir)
    summary = fit_summary(fit_dir)
    home = DataHome(fitted.features.panel.tenant.home)
    champion = home.champion(fitted.features.panel.tenant.tenant)
    validation = load_validation(fit_dir)
    promoted, reasons = gate(validation, champion, promote, trust_threshold)
    run = run_summary(fitted, summary, champion, validation, promoted, reasons)
    record_run(home, run, fitted, run_id)
    return run


def fit_summary(fit_dir: Path) -> dict[str, Any]:
    """The fit's ``summary.json``; its report is written now if it is missing."""
    from liftos.model.results import FitResult
    from liftos.report import write_report

    if not (fit_dir / "summary.json").exists():
        raise LiftOSError(f"fit folder {fit_dir} is missing its summary.json (deleted after the "
                          "fit was cached?); re-run with refresh=True")
    report, validation = fit_dir / "report.md", fit_dir / "validation.json"
    if not report.exists() or (validation.exists()
                               and validation.stat().st_mtime > report.stat().st_mtime):
        write_report(FitResult.load(fit_dir), fit_dir)  # now with what validation found
    return json.loads((fit_dir / "summary.json").read_text())


def run_summary(fitted: FittedModel, summary: dict[str, Any], champion: dict[str, Any] | None,
                validation: dict[str, Any] | None, promoted: bool, reasons: tuple[str, ...]
                ) -> RunSummary:
    """What the run found, against the champion it was compared with."""
    from liftos.validation.runner import not_recoverable

    panel, ref = fitted.features.panel, fitted.features.panel.tenant
    roas = {name: {key: ch[key] for key in ("roas_mean", "roas_hdi_low", "roas_hdi_high",
                                            "share_mean", "contribution_total_mean")}
            for name, ch in summary["channels"].items()}
    return RunSummary(
        tenant=ref.tenant, fit_dir=fitted.fit_dir,
        report_path=str(Path(fitted.fit_dir) / "report.md"), roas=roas,
        diagnostics=summary["diagnostics"],
        shifted=tuple(roas_shifts(_champion_roas(champion), summary["channels"])),
        champion_fit_dir=champion["fit_dir"] if champion else None,
        champion_roas={c: r["roas_mean"] for c, r in _champion_roas(champion).items()},
        first_week=panel.first_week, last_week=panel.last_week, template=ref.template,
        data_sha256=panel.source_sha256, config_hash=ref.config_hash,
        signature=fitted.features.signature, promoted=promoted, decision=reasons,
        trust_score=validation["trust"]["score"] if validation else None,
        not_recoverable=not_recoverable(fitted.fit_dir))


def record_run(home: DataHome, run: RunSummary, fitted: FittedModel, run_id: str | None) -> None:
    """Append the run to ``runs.jsonl``; a promoted run becomes the champion."""
    record = {"run_id": run_id, "fit_dir": run.fit_dir, "roas": run.roas,
              "trust_score": run.trust_score, "data_path": fitted.features.panel.source_path,
              "data_sha256": run.data_sha256, "config_hash": run.config_hash,
              "last_week": run.last_week, "at": datetime.now(UTC).isoformat()}
    home.append_run(run.tenant, {**record, "promoted": run.promoted,
                                 "decision": list(run.decision)})
    if run.promoted:
        home.set_champion(run.tenant, record)


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
    not_recoverable: tuple[str, ...] = ()

    def describe(self) -> str:
        lost = (f"; not recoverable on this spend: {', '.join(self.not_recoverable)}"
                if self.not_recoverable else "")
        return (f"trust score {self.trust_score:.1f}: {self.passed} of {self.checks} checks "
                f"passed{lost}")


def validate_model(fitted: FittedModel, options=None, submit=None) -> ValidationRecord:
    """Run the validation suite on the fit (``validation.json`` beside it)."""
    from liftos.validation.runner import ValidationOptions, validate

    ref = fitted.features.panel.tenant
    validation = validate(fitted.fit_dir, options or ValidationOptions(), submit=submit,
                          recovery_cache=DataHome(ref.home).tenant(ref.tenant) / "recovery")
    lost = validation.recovery.unrecoverable if validation.recovery else []
    return ValidationRecord(fit_dir=fitted.fit_dir, trust_score=validation.trust.score,
                            passed=sum(c.passed for c in validation.checks),
                            checks=len(validation.checks),
                            not_recoverable=tuple(c.channel for c in lost))


def roas_shifts(champion: dict[str, dict[str, float]], current: dict[str, dict[str, Any]]
                ) -> list[RoasShift]:
    """Channels whose new ROAS mean lies outside the champion's 94% interval."""
    shifts = []
    for channel, now in current.items():
        before = champion.get(channel)
        if before and not before["roas_hdi_low"] <= now["roas_mean"] <= before["roas_hdi_high"]:
            shifts.append(RoasShift(channel=channel, champion_mean=before["roas_mean"],
                                    champion_low=before["roas_hdi_low"],
                                    champion_high=before["roas_hdi_high"],
                                    roas_mean=now["roas_mean"]))
    return shifts


# ---------------------------------------------------------------------------------- helpers
def _champion_roas(champion: dict[str, Any] | None) -> dict[str, dict[str, float]]:
    return champion.get("roas", {}) if champion else {}


def _champion_calibrations(ref: TenantRef, panel: Panel, widen: float) -> tuple:
    from liftos.model.results import FitResult
    from liftos.priors import calibrations_from_posterior

    pointer = DataHome(ref.home).champion(ref.tenant)
    if pointer is None:
        return ()
    from liftos.validation.runner import not_recoverable

    champion = FitResult.load(pointer["fit_dir"])
    if list(champion.panel.channels) != list(panel.channels):
        return ()
    unknown = not_recoverable(pointer["fit_dir"])  # a biased posterior must not become a prior
    return tuple(c for c in calibrations_from_posterior(
        champion, panel, widen, source=f"champion {pointer['fit_dir']}")
        if c.channel not in unknown)


def _panel_and_spec(validated: ValidatedPanel, tenant: Tenant) -> tuple[Panel, ModelSpec]:
    spec = ModelSpec(tenant.template, tenant.columns.channels, tenant.model_controls,
                     tenant.columns.target)
    return _load_panel(validated, spec), spec


def evaluate_plans(validated: ValidatedPanel) -> list:
    """Hold the tenant's approved budget plans to account on this run's panel (see
    ``liftos.planning.evaluate``); the new outcome records."""
    from liftos.planning.evaluate import evaluate_plans as evaluate

    tenant = validated.tenant.config
    spec = ModelSpec(tenant.template, tenant.columns.channels, tenant.model_controls,
                     tenant.columns.target)
    return evaluate(tenant.name, _load_panel(validated, spec), DataHome(validated.tenant.home))


def _load_panel(validated: ValidatedPanel, spec: ModelSpec) -> Panel:
    panel = Panel.load(Path(validated.panel_path), spec.target, spec.channels, spec.controls,
                       validated.source_path, validated.source_sha256)
    panel.notes = list(validated.notes)
    return panel


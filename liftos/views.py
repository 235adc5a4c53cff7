"""Read-only views of one tenant, as plain JSON-ready dicts: what the API serves and the hub shows.

Every view reads the files the refresh, monitor and planner wrote; none refits or writes.
Server paths are not shown: a fit is named by its folder's key. A channel the recovery check
found not recoverable gets no number here either (as in the report): its estimate is null, with
the reason. Views of a fit are cached per fit folder (a fit folder never changes once written),
so a year of weekly runs reads in milliseconds.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from liftos.home import DataHome
from liftos.ingest.jsonshape import DRIFT_LOG
from liftos.planning.audit import ChainBroken, DecisionLog
from liftos.tenancy import available_tenants
from liftos.validation.checks import unconverged
from liftos.validation.runner import load_validation, not_recoverable
from liftos.validation.trust import TRUST_THRESHOLD

PRIVATE = ("fit_dir", "data_path")  # server paths: never shown
PLOTS = ("roas", "response_curves", "fit_vs_actual", "contributions", "trust_card")
ESTIMATES = ("roas_mean", "roas_hdi_low", "roas_hdi_high", "contribution_total_mean",
             "contribution_total_hdi_low", "contribution_total_hdi_high", "share_mean",
             "share_hdi_low", "share_hdi_high", "cost_per_kpi_mean")


class TenantViews:
    """The views of every tenant in one LiftOS home."""

    def __init__(self, home: DataHome | None = None):
        self.home = home or DataHome()

    def known(self, tenant: str) -> bool:
        """Configured or with data in the home (a name alone, checked by the caller, is not)."""
        return tenant in available_tenants() or self.home.tenant(tenant).is_dir()

    def overview(self, tenant: str) -> dict[str, Any]:
        champion = self.home.champion(tenant)
        runs = self.runs(tenant, limit=None)
        monitor = self.anomalies(tenant, limit=1)
        return {"tenant": tenant,
                "champion": self._champion(champion),
                "last_run": runs[0] if runs else None,
                "runs": len(runs),
                "latest_check": monitor[0] if monitor else None,
                "pending_plans": [p["seq"] for p in self.plans(tenant)["plans"]
                                  if p["status"] == "pending"]}

    def model(self, tenant: str) -> dict[str, Any] | None:
        """The champion's estimates per channel, diagnostics and fit, or None before one."""
        champion = self.home.champion(tenant)
        if champion is None:
            return None
        summary, held = _summary(champion["fit_dir"]), not_recoverable(champion["fit_dir"])
        unsettled = unconverged(summary["channels"])
        channels = {}
        for name, entry in summary["channels"].items():
            shown = {k: v for k, v in entry.items() if k not in ("adstock", "saturation")}
            if name in held:
                shown.update({k: None for k in ESTIMATES if k in shown})
            channels[name] = {**shown, "not_recoverable": held.get(name),
                              "not_converged": unsettled.get(name)}
        return {"tenant": tenant, "fit": Path(champion["fit_dir"]).name,
                "trust_score": champion.get("trust_score"), "kpi": summary["kpi"],
                "channels": channels, "controls": summary.get("controls", {}),
                "diagnostics": summary["diagnostics"],
                "fit_quality": summary["fit"], "data": _data(summary)}

    def contributions(self, tenant: str) -> dict[str, Any] | None:
        """Weekly actual, fitted (94% band), baseline and each channel's contribution."""
        fit_dir = self._champion_dir(tenant)
        return None if fit_dir is None else _without_held(_series(fit_dir), fit_dir, "channels")

    def curves(self, tenant: str) -> dict[str, Any] | None:
        """Weekly response to a constant weekly spend per channel, with the current spend."""
        fit_dir = self._champion_dir(tenant)
        return None if fit_dir is None else _without_held(_curves(fit_dir), fit_dir, "curves")

    def trust(self, tenant: str) -> dict[str, Any] | None:
        """The champion's trust card: score, components, every check (failed ones first)."""
        fit_dir = self._champion_dir(tenant)
        validation = load_validation(fit_dir) if fit_dir else None
        if validation is None:
            return None
        checks = sorted(validation["checks"], key=lambda c: (c["passed"], c["group"]))
        score = validation["trust"]["score"]
        return {"tenant": tenant, "fit": Path(fit_dir).name, "score": score,
                "threshold": TRUST_THRESHOLD, "passes": score >= TRUST_THRESHOLD,
                "components": validation["trust"]["components"],
                "weights": validation["trust"]["weights"], "checks": checks,
                "recovery": validation.get("recovery"),
                "champions": [r for r in self.runs(tenant, limit=None) if r["promoted"]]}

    def runs(self, tenant: str, limit: int | None = 52) -> list[dict[str, Any]]:
        """The newest refreshes first (all of them with ``limit=None``)."""
        path = self.home.tenant(tenant) / "runs.jsonl"
        return list(_runs(str(path), _stamp(path))[:limit])

    def anomalies(self, tenant: str, limit: int = 13) -> list[dict[str, Any]]:
        """The newest monitor checks first."""
        folder = self.home.tenant(tenant) / "monitor"
        return list(_checks(str(folder), _stamp(folder))[:limit])

    def quality(self, tenant: str, limit: int = 50) -> dict[str, Any]:
        """Data-quality outcomes of the newest ingested batches, rows in quarantine, and the
        schema drift the sources showed (newest first)."""
        import polars as pl

        folder = self.home.tenant(tenant)
        batches: list[dict[str, Any]] = []
        for log in sorted((folder / "quality").glob("*.jsonl")):
            if log.name != DRIFT_LOG:
                batches += [json.loads(line) for line in log.read_text().splitlines() if line]
        drift_log = folder / "quality" / DRIFT_LOG
        drift = [json.loads(line) for line in drift_log.read_text().splitlines()
                 if line] if drift_log.exists() else []
        quarantine = {}
        for path in sorted((folder / "curated").glob("quarantine_*.parquet")):
            frame = pl.read_parquet(path)
            reasons = (frame.group_by("expectation").len().sort("len", descending=True)
                       .to_dicts() if "expectation" in frame.columns else [])
            quarantine[path.stem.removeprefix("quarantine_")] = {
                "rows": frame.height, "by_rule": {r["expectation"]: r["len"] for r in reasons}}
        batches.sort(key=lambda b: b.get("at", ""), reverse=True)
        return {"tenant": tenant, "batches": batches[:limit], "quarantine": quarantine,
                "drift": drift[::-1][:limit]}

    def plans(self, tenant: str) -> dict[str, Any]:
        """Proposals with their status (pending, approved, rejected, expired), decisions,
        rollbacks and outcomes, from the hash-chained decision audit (verified whenever the
        log or its head changed)."""
        folder = self.home.tenant(tenant) / "decisions"
        if not folder.is_dir():
            return {"tenant": tenant, "verified": True, "plans": [], "records": []}
        return _plans(str(self.home.root), tenant, _stamp(folder / "decisions.jsonl"),
                      _stamp(folder / "decisions.head"))

    def _plans(self, tenant: str) -> dict[str, Any]:
        try:
            records, verified, problem = DecisionLog(tenant, self.home).verify(), True, None
        except ChainBroken as broken:
            records, verified, problem = DecisionLog(tenant, self.home).records(), False, str(
                broken)
        answered = {r.payload.get("proposal_seq"): r for r in records if r.kind == "decision"}
        plans = []
        for r in records:
            if r.kind != "proposal":
                continue
            decision = answered.get(r.seq)
            p = r.payload
            plans.append({
                "seq": r.seq, "at": r.at, "objective": p.get("objective"),
                "status": decision.payload["verdict"] if decision else "pending",
                "flow_run_id": p.get("flow_run_id") or None,
                "horizon_weeks": p.get("horizon_weeks"), "first_week": p.get("first_week"),
                "budget_weekly": p.get("budget_weekly"), "trust_score": p.get("trust_score"),
                "lift_mean": p.get("lift_mean"), "lift_hdi_low": p.get("lift_low"),
                "lift_hdi_high": p.get("lift_high"),
                "probability_beats_current": p.get("probability_beats_current"),
                "channels": p.get("channels", []), "not_recoverable": p.get("not_recoverable", {}),
                "decided_by": decision.payload.get("by") if decision else None,
                "comment": decision.payload.get("comment") if decision else None})
        return {"tenant": tenant, "verified": verified, "problem": problem,
                "plans": list(reversed(plans)),
                "records": [{"seq": r.seq, "at": r.at, "kind": r.kind,
                             "describe": r.describe(), "hash": r.hash} for r in records]}

    def plot(self, tenant: str, name: str) -> Path | None:
        """A PNG of the champion (one of :data:`PLOTS`), or None."""
        fit_dir = self._champion_dir(tenant)
        if fit_dir is None or name not in PLOTS:
            return None
        path = Path(fit_dir) / "plots" / f"{name}.png"
        return path if path.is_file() else None

    def _champion_dir(self, tenant: str) -> str | None:
        champion = self.home.champion(tenant)
        return champion["fit_dir"] if champion else None

    @staticmethod
    def _champion(champion: dict[str, Any] | None) -> dict[str, Any] | None:
        if champion is None:
            return None
        trust = champion.get("trust_score")
        return {"fit": Path(champion["fit_dir"]).name, "trust_score": trust,
                "passes": trust is not None and trust >= TRUST_THRESHOLD,
                "last_week": champion.get("last_week"), "since": champion.get("at"),
                "run_id": champion.get("run_id")}


def _stamp(path: Path) -> tuple[int, int] | None:
    """When and how big: a changed file (or folder) is read again, an unchanged one is not."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_mtime_ns, found.st_size


@lru_cache(maxsize=256)
def _runs(path: str, stamp: tuple[int, int] | None) -> tuple[dict[str, Any], ...]:
    if stamp is None:
        return ()
    lines = Path(path).read_text().splitlines()
    return tuple(_run(json.loads(line)) for line in reversed(lines) if line.strip())


@lru_cache(maxsize=256)
def _checks(folder: str, stamp: tuple[int, int] | None) -> tuple[dict[str, Any], ...]:
    if stamp is None:
        return ()
    checks = [json.loads(f.read_text()) for f in sorted(Path(folder).glob("*.json"),
                                                          reverse=True)]
    return tuple({k: v for k, v in c.items() if k not in PRIVATE}
                 for c in checks)


@lru_cache(maxsize=256)
def _plans(root: str, tenant: str, log: tuple[int, int] | None,
           head: tuple[int, int] | None) -> dict[str, Any]:
    return TenantViews(DataHome(root))._plans(tenant)


def _run(record: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": record.get("run_id"), "at": record.get("at"),
            "fit": Path(record["fit_dir"]).name, "last_week": record.get("last_week"),
            "trust_score": record.get("trust_score"), "promoted": record.get("promoted", False),
            "decision": record.get("decision", [])}


def _data(summary: dict[str, Any]) -> dict[str, Any]:
    data = summary["run"]["data"]
    return {k: data[k] for k in ("weeks", "geos", "start", "end")}


def _without_held(view: dict[str, Any], fit_dir: str, key: str) -> dict[str, Any]:
    held = not_recoverable(fit_dir)
    return {**view, key: {c: v for c, v in view[key].items() if c not in held},
            "not_recoverable": held}


def _summary(fit_dir: str) -> dict[str, Any]:
    return _cached(fit_dir, "summary.json", _stamp(Path(fit_dir) / "summary.json"))


def _series(fit_dir: str) -> dict[str, Any]:
    return _cached(fit_dir, "series.json", _stamp(Path(fit_dir) / "series.json"))


def _curves(fit_dir: str) -> dict[str, Any]:
    return _cached(fit_dir, "curves.json", _stamp(Path(fit_dir) / "curves.json"))


@lru_cache(maxsize=256)
def _cached(fit_dir: str, name: str, stamp: tuple[int, int] | None) -> dict[str, Any]:
    """A fit's JSON view; a fit written before the series and curves were saved has them
    computed from its posterior (once, then cached)."""
    if stamp or name == "summary.json":
        return json.loads((Path(fit_dir) / name).read_text())
    from liftos.model.results import FitResult
    from liftos.report import curves_json, series_json

    fit = FitResult.load(fit_dir)
    return series_json(fit) if name == "series.json" else curves_json(fit)

"""The API's response schemas: what each read route returns, field by field, in the OpenAPI
spec (and checked on every answer, so the spec cannot drift from :mod:`liftos.views`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, create_model

from liftos import monitor
from liftos.views import PRIVATE

Estimate = float | None


class RunItem(BaseModel):
    """One refresh: when, which fit, its trust score, whether it became the champion."""

    run_id: str | None
    at: str | None
    fit: str = Field(description="the fit's key (its folder name)")
    last_week: str | None
    trust_score: float | None
    promoted: bool
    decision: list[str] = Field(description="why it was not promoted, if it was not")
    url: str | None = Field(None, description="the run in the Prefect UI")


class Champion(BaseModel):
    fit: str
    trust_score: float | None
    passes: bool = Field(description="trust score at or above the threshold")
    last_week: str | None
    since: str | None
    run_id: str | None
    url: str | None = None


MonitorCheck = create_model(
    "MonitorCheck", __doc__="An always-on check of one week against the champion's 94% "
                            "predictive interval.",
    **{name: (field.annotation, field) for name, field in
       monitor.MonitorCheck.model_fields.items() if name not in PRIVATE})


class Overview(BaseModel):
    tenant: str
    champion: Champion | None
    last_run: RunItem | None
    runs: int
    latest_check: MonitorCheck | None
    pending_plans: list[int] = Field(description="sequence numbers of plans awaiting a decision")


class TenantItem(BaseModel):
    name: str
    champion: Champion | None
    last_run: RunItem | None


class ChannelEstimate(BaseModel):
    """A channel's estimates with 94% intervals; all null when it is not recoverable."""

    roas_mean: Estimate
    roas_hdi_low: Estimate
    roas_hdi_high: Estimate
    contribution_total_mean: Estimate
    contribution_total_hdi_low: Estimate
    contribution_total_hdi_high: Estimate
    share_mean: Estimate
    share_hdi_low: Estimate
    share_hdi_high: Estimate
    cost_per_kpi_mean: Estimate = None
    spend_total: float
    roas_bounds: list[float]
    roas_plausible: bool
    not_recoverable: str | None = Field(description="why no number is published, if so")
    not_converged: str | None = Field(
        None, description="the ROAS draws' r-hat and bulk ESS when past the review's thresholds")


class DataWindow(BaseModel):
    weeks: int
    geos: list[str]
    start: str
    end: str


class ModelView(BaseModel):
    tenant: str
    fit: str
    trust_score: float | None
    kpi: dict[str, Any]
    channels: dict[str, ChannelEstimate]
    controls: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="each control's (and signal's) weekly KPI change per "
                                          "unit, with its 94% interval")
    diagnostics: dict[str, Any]
    fit_quality: dict[str, float]
    data: DataWindow


class Series(BaseModel):
    """Weekly series in KPI units, summed over geos."""

    dates: list[str]
    actual: list[float]
    fitted_mean: list[float]
    fitted_low: list[float]
    fitted_high: list[float]
    baseline_mean: list[float]
    channels: dict[str, list[float]] = Field(description="each channel's mean contribution")
    not_recoverable: dict[str, str]


class Curve(BaseModel):
    spend: list[float]
    response_mean: list[float]
    response_hdi_low: list[float]
    response_hdi_high: list[float]
    current_weekly_spend: float


class Curves(BaseModel):
    curves: dict[str, Curve]
    not_recoverable: dict[str, str]


class Check(BaseModel):
    name: str
    group: str
    value: Any
    threshold: str
    passed: bool
    score: float
    detail: str


class TrustCard(BaseModel):
    tenant: str
    fit: str
    score: float
    threshold: float
    passes: bool
    components: dict[str, float]
    weights: dict[str, float]
    checks: list[Check] = Field(description="failed checks first")
    recovery: dict[str, Any] | None
    champions: list[RunItem]


class Quarantine(BaseModel):
    rows: int
    by_rule: dict[str, int]


class Drift(BaseModel):
    at: str
    source: str
    change: str = Field(description="what moved, appeared or went missing")
    load_stopped: bool = Field(description="a field LiftOS needs was gone: nothing was loaded")


class Quality(BaseModel):
    tenant: str
    batches: list[dict[str, Any]]
    quarantine: dict[str, Quarantine]
    drift: list[Drift]


class PlanItem(BaseModel):
    seq: int
    at: str
    objective: str | None
    status: str = Field(description="pending, approved, rejected or expired")
    flow_run_id: str | None
    horizon_weeks: int | None
    first_week: str | None
    budget_weekly: float | None
    trust_score: float | None
    lift_mean: float | None
    lift_hdi_low: float | None
    lift_hdi_high: float | None
    probability_beats_current: float | None
    channels: list[dict[str, Any]]
    not_recoverable: dict[str, str]
    decided_by: str | None
    comment: str | None


class AuditRecord(BaseModel):
    seq: int
    at: str
    kind: str
    describe: str
    hash: str


class Plans(BaseModel):
    tenant: str
    verified: bool = Field(description="the hash chain checks out")
    problem: str | None = None
    plans: list[PlanItem]
    records: list[AuditRecord]


class MemoryHit(BaseModel):
    rank: int
    score: float
    tenant: str
    kind: str
    text: str
    channel: str
    run_id: str
    run_url: str
    date_start: str | None
    date_end: str | None
    created_at: str
    facts: dict[str, Any]
    key: str


class Precedent(BaseModel):
    score: float
    past: dict[str, Any]
    followed_by: dict[str, Any] | None

"""What a run shows in the Prefect UI: artifacts (ROAS table, report, sampling progress) and
events (``liftos.model.fitted``, ``liftos.roas.shifted``, ``liftos.anomaly.detected``).

From the UI alone one can trace a number to the data (path and sha256), the configuration
(tenant file, template, config hash) and the model (fit folder, graph signature, options).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.events import emit_event

from liftos import refresh
from liftos.report import data_uri

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL_S = 1.0

_DEFERRED: contextvars.ContextVar[tuple[ThreadPoolExecutor, list[Future]] | None] = (
    contextvars.ContextVar("liftos_deferred_artifacts", default=None))


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside, artifacts are written by a background thread, so a stage returns once its own
    work is done (rendering a report and its API calls cost tens of ms). Leaving waits for every
    write, so a run never ends with its artifacts unwritten. A failed write is logged, not
    raised: an artifact is a view of records already on disk."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="liftos-artifacts")
    pending: list[Future] = []
    token = _DEFERRED.set((pool, pending))
    try:
        yield
    finally:
        _DEFERRED.reset(token)
        pool.shutdown(wait=True)
        for future in pending:
            if future.exception() is not None:
                log.warning("an artifact was not written: %s", future.exception())


def publish(write: Callable[..., None], *args: Any) -> None:
    """``write(*args)`` now, or in the background inside :func:`deferred` (with this thread's
    Prefect run context, so the artifact belongs to the same task run)."""
    target = _DEFERRED.get()
    if target is None:
        write(*args)
        return
    pool, pending = target
    pending.append(pool.submit(contextvars.copy_context().run, write, *args))


def artifact_key(*parts: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def run_url(flow_run_id: str | None) -> str:
    """The flow run's page in the Prefect UI (empty when no UI URL is known)."""
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base and flow_run_id else ""


def tenant_resource(tenant: str) -> dict[str, str]:
    return {"prefect.resource.id": f"liftos.tenant.{tenant}",
            "prefect.resource.name": tenant, "liftos.tenant": tenant}


class SamplingProgress:
    """A progress artifact that follows the sampler (updated at most once a second)."""

    def __init__(self, tenant: str):
        self.artifact_id = create_progress_artifact(
            progress=0.0, key=artifact_key("fit-progress", tenant),
            description=f"Sampling the {tenant} model (percent of draws done)")
        self._last = 0.0

    def update(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < PROGRESS_MIN_INTERVAL_S:
            return
        self._last = now
        update_progress_artifact(self.artifact_id, progress=round(100.0 * fraction, 1))


def publish_run(summary: refresh.RunSummary, fitted: refresh.FittedModel,
                run_id: str | None) -> None:
    """The ROAS table and report artifacts (see :func:`publish`), then the run's events."""
    publish(_run_artifacts, summary, fitted, run_id)
    tenant = summary.tenant
    emit_event(event="liftos.model.fitted", resource=tenant_resource(tenant),
               payload={"fit_dir": summary.fit_dir, "flow_run_id": run_id,
                        "data_sha256": summary.data_sha256, "config_hash": summary.config_hash,
                        "signature": summary.signature, "diagnostics": summary.diagnostics,
                        "roas": {c: r["roas_mean"] for c, r in summary.roas.items()}})
    for shift in summary.shifted:
        emit_event(event="liftos.roas.shifted", resource=tenant_resource(tenant),
                   related=[{"prefect.resource.id": f"liftos.channel.{shift.channel}",
                             "prefect.resource.role": "channel"}],
                   payload={**shift.model_dump(), "flow_run_id": run_id,
                            "champion_fit_dir": summary.champion_fit_dir})


def _run_artifacts(summary: refresh.RunSummary, fitted: refresh.FittedModel,
                   run_id: str | None) -> None:
    tenant = summary.tenant
    create_table_artifact(key=artifact_key("roas", tenant), table=roas_table(summary),
                          description=f"ROAS per channel with 94% HDI, {tenant}")
    create_markdown_artifact(key=artifact_key("report", tenant),
                             markdown=run_markdown(summary, fitted, run_id),
                             description=f"MMM refresh report, {tenant}")


def roas_table(summary: refresh.RunSummary) -> list[dict[str, Any]]:
    shifted = {s.channel for s in summary.shifted}
    return [{"channel": channel, "roas_mean": round(r["roas_mean"], 4),
             "roas_hdi_low": round(r["roas_hdi_low"], 4),
             "roas_hdi_high": round(r["roas_hdi_high"], 4),
             "share_of_media": round(r["share_mean"], 4),
             "shifted_vs_champion": channel in shifted}
            for channel, r in summary.roas.items()]


def run_markdown(summary: refresh.RunSummary, fitted: refresh.FittedModel,
                 run_id: str | None) -> str:
    panel = fitted.features.panel
    ref = panel.tenant
    d = summary.diagnostics
    plots = sorted((Path(summary.fit_dir) / "plots").glob("*.png"))
    lines = [
        f"# {summary.tenant}: MMM refresh",
        "",
        "| channel | ROAS | 94% HDI | share of media | shifted |",
        "|---|---:|---|---:|---|",
        *(f"| {row['channel']} | {row['roas_mean']:.3g} | [{row['roas_hdi_low']:.3g}, "
          f"{row['roas_hdi_high']:.3g}] | {row['share_of_media']:.1%} | "
          f"{'yes' if row['shifted_vs_champion'] else ''} |" for row in roas_table(summary)),
        "",
        (f"**Sampler**: r-hat max {d['rhat_max']:.3f}, bulk ESS min {d['ess_bulk_min']:.0f}, "
        f"divergences {d['divergences']}; compile {fitted.compile_s:.1f} s "
        f"({'reused' if fitted.compile_cache_hit else 'new'}), sampling {fitted.sampling_s:.1f} s."),
        "",
        "## Provenance",
        (f"- **data**: `{panel.source_path}` (sha256 `{panel.source_sha256}`), "
        f"{panel.weeks} weeks {panel.first_week} to {panel.last_week}, geos {list(panel.geos)}"),
        (f"- **config**: tenant file `{ref.config_source}`, template `{ref.template}`, "
        f"config hash `{ref.config_hash}`"),
        (f"- **model**: graph signature `{summary.signature}`, options "
        f"`{fitted.options.model_dump()}`, artifacts in `{summary.fit_dir}`"),
        f"- **flow run**: `{run_id}`; champion `{summary.champion_fit_dir or 'none'}`",
        (f"- **trust**: {summary.trust_score if summary.trust_score is not None else 'not validated'}"
        f"; {'promoted to the champion' if summary.promoted else 'not promoted'}"
        f"{': ' + '; '.join(summary.decision) if summary.decision else ''}"),
        f"- **report**: `{summary.report_path}`",
    ]
    lines += [f"- data note: {note}" for note in panel.notes]
    lines += [f"\n![{p.stem.replace('_', ' ')}]({data_uri(p)})" for p in plots]
    return "\n".join(lines) + "\n"


def publish_trust_card(tenant: str, fit_dir: str) -> None:
    from liftos.errors import LiftOSError
    from liftos.planning.audit import DecisionLog
    from liftos.planning.evaluate import forecast_coverage
    from liftos.validation.card import trust_card_markdown, write_trust_card_png
    from liftos.validation.runner import load_validation

    validation = load_validation(fit_dir)
    png = write_trust_card_png(validation, Path(fit_dir) / "plots" / "trust_card.png")
    try:
        coverage = forecast_coverage(DecisionLog(tenant).verify())
    except LiftOSError as exc:  # a broken audit is said on the card, not hidden
        coverage = str(exc)
    create_markdown_artifact(key=artifact_key("trust-card", tenant),
                             markdown=trust_card_markdown(validation, png, coverage),
                             description=f"Trust card of the {tenant} model")


def publish_brief(tenant: str, result: Any) -> None:
    """The brief as a markdown artifact, and its LLM operations (every model call: model,
    prompt version, latency, tokens, cost estimate, grounding) as a table."""
    note = (f"\n\n_Written by the model ({result.prompt_version}); {result.grounding.describe()}._"
            if result.source == "model" else
            f"\n\n_Written by templates: {result.reason}; {result.grounding.describe()}._")
    create_markdown_artifact(key=artifact_key("brief", tenant), markdown=result.markdown + note,
                             description=f"Weekly brief of {tenant}")
    rows = [c.model_dump() for c in result.calls] or [{
        "model": "templates", "prompt_version": result.prompt_version, "attempt": 0,
        "latency_s": 0.0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0,
        "outcome": result.reason, "grounding": result.grounding.describe()}]
    create_table_artifact(key=artifact_key("brief-calls", tenant), table=rows,
                          description=f"LLM operations of {tenant}'s brief")


def emit_plan_missed(tenant: str, outcome: dict[str, Any]) -> None:
    """``liftos.plan.missed``: what was observed over a plan's weeks fell outside the interval
    its model predicted for the spend that really happened."""
    emit_event(event="liftos.plan.missed", resource=tenant_resource(tenant), payload=outcome)


def emit_rejected(summary: refresh.RunSummary, run_id: str | None) -> None:
    emit_event(event="liftos.model.rejected", resource=tenant_resource(summary.tenant),
               payload={"fit_dir": summary.fit_dir, "flow_run_id": run_id,
                        "trust_score": summary.trust_score, "reasons": list(summary.decision),
                        "champion_fit_dir": summary.champion_fit_dir})


def emit_promoted(summary: refresh.RunSummary, run_id: str | None, planning: Any) -> None:
    """``liftos.model.promoted``; the resource says whether the tenant wants a budget plan
    proposed now (``liftos.propose-plan``), which the automation matches on."""
    resource = {**tenant_resource(summary.tenant),
                "liftos.propose-plan": str(planning.propose_after_promotion).lower(),
                "liftos.plan-objective": planning.objective}
    emit_event(event="liftos.model.promoted", resource=resource,
               payload={"fit_dir": summary.fit_dir, "flow_run_id": run_id,
                        "trust_score": summary.trust_score,
                        "champion_fit_dir": summary.champion_fit_dir})


def log_line(message: str) -> None:
    """What a stage did, or progress of long work, in the run's logs (the Prefect UI); outside
    a run (a stage's function called directly) in the ``liftos.stages`` log."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().info(message)
    except MissingContextError:
        logging.getLogger("liftos.stages").info(message)


def emit_schema_drift(tenant: str, source: str, description: str, broken: bool) -> None:
    """``liftos.schema.drift``: a source's responses changed shape (``broken``: a field we need
    is gone and the load stopped)."""
    emit_event(event="liftos.schema.drift", resource=tenant_resource(tenant),
               related=[{"prefect.resource.id": f"liftos.source.{source}",
                         "prefect.resource.role": "source"}],
               payload={"source": source, "drift": description, "load_stopped": broken})


def publish_ingest(tenant: str, source: str, result: Any, quality: list[dict],
                   error: str | None = None) -> None:
    """A markdown artifact per sync: counts, windows, data-quality findings, drift, error."""
    lines = [f"# Ingestion: {source} for {tenant}", ""]
    if result is not None:
        c = result.counts
        lines += [(f"fetched **{c.fetched}** rows, landed {c.landed} raw pages, upserted "
                  f"{c.inserted + c.updated} ({c.inserted} new, {c.updated} updated), "
                  f"quarantined **{c.quarantined}** in {result.seconds:.1f} s"), "",
                  "| stream | first day | last day |", "|---|---|---|"]
        lines += [f"| {s} | {a} | {b} |" for s, (a, b) in result.windows.items()]
        if result.drift:
            lines += ["", "## Schema drift (load continued)"]
            lines += [f"- {d.describe()}" for d in result.drift]
    if error:
        lines += ["", "## Failed", "", error]
    findings = [(q["batch"], f) for q in quality for f in q["findings"]]
    checked = sum(q["checked"] for q in quality)
    lines += ["", (f"## Data quality: {len(quality)} batch(es), {checked} rows, "
              f"{sum(q['seconds'] for q in quality):.2f} s in Great Expectations")]
    lines += [f"- {batch}: **{f['expectation']}** [{f['severity']}] {f['failed']} row(s): "
              f"{f['description']}" for batch, f in findings[:50]] or ["- every expectation met"]
    create_markdown_artifact(markdown="\n".join(lines),
                             key=artifact_key("ingest", source, tenant),
                             description=f"{source} ingestion for {tenant}")


def publish_plan(tenant: str, proposed: Any) -> None:
    """The proposed plan as a table artifact a person reads before deciding."""
    plan = proposed.plan
    create_table_artifact(
        key=artifact_key("plan", tenant),
        table=[{"channel": c.channel, "current_weekly": round(c.current_weekly, 2),
                "recommended_weekly": round(c.recommended_weekly, 2),
                "marginal_roas_now": round(c.marginal_roas_current, 4),
                "marginal_roas_plan": round(c.marginal_roas_recommended, 4),
                "contribution_change": round(c.contribution_change_mean, 2),
                "contribution_change_94": f"[{c.contribution_change_low:,.0f}, "
                                          f"{c.contribution_change_high:,.0f}]",
                "limit": c.limit} for c in plan.channels],
        description=(f"{plan.describe()} (champion {proposed.champion_fit_dir}, trust "
                     f"{proposed.trust_score:.1f}; proposal #{proposed.proposal.seq})"))
    charts = sorted(Path(proposed.folder).glob("*.png"))
    create_markdown_artifact(
        key=artifact_key("plan-charts", tenant), description=f"Plan charts of {tenant}",
        markdown="\n\n".join([f"# {plan.describe()}"] + [
            f"![{p.stem.replace('_', ' ')}]({data_uri(p)})" for p in charts]))


def remember_shift(tenant: str, signal: str, said: str, week: Any, chain: str,
                   facts: dict[str, Any]) -> None:
    """A signal's shift as the first memory of its chain (the impact and any plan follow it
    under the same chain id, the shift's flow run)."""
    from liftos.memory.store import Memory
    from liftos_app.blocks.chroma import memory_store

    memory_store().remember([Memory(
        tenant=tenant, kind="anomaly", text=said, run_id=chain, run_url=run_url(chain),
        key=f"{signal}-shift:{chain}", date_end=week,
        facts={"chain": chain, "signal": signal, **facts})])


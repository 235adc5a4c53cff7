"""What LiftOS remembers from a run, a monitor check or a decision, as plain sentences with facts.

The text is what search embeds, so it names the channel, the metric and the direction in the
words a marketer would use ("paid social ROAS fell 30%"); the numbers also go into ``facts``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from liftos.memory.store import Memory
from liftos.refresh import RunSummary

CHANNEL_WORDS = {"search": "paid search", "social": "paid social", "display": "display",
                 "email": "email", "tv": "TV"}


def channel_words(channel: str) -> str:
    return CHANNEL_WORDS.get(channel, channel.replace("_", " "))


def run_memories(summary: RunSummary, run_id: str = "", run_url: str = "") -> list[Memory]:
    """One insight per channel and one situation (the whole picture) for a refresh."""
    start, end = _day(summary.first_week), _day(summary.last_week)
    memories = []
    for channel, roas in summary.roas.items():
        before = summary.champion_roas.get(channel)
        change = _change(before, roas["roas_mean"])
        estimate = (f"ROAS {roas['roas_mean']:.3g} (94% interval {roas['roas_hdi_low']:.3g} "
                    f"to {roas['roas_hdi_high']:.3g}), {change}")
        if channel in summary.not_recoverable:
            estimate = (f"ROAS not recoverable on this spend ({summary.not_recoverable[channel]};"
                        f" the fit said {roas['roas_mean']:.3g})")
        text = (f"{channel_words(channel)} {estimate}; "
                f"{roas['share_mean']:.0%} of media contribution; weeks {summary.first_week} to "
                f"{summary.last_week}; template {summary.template}")
        memories.append(Memory(
            tenant=summary.tenant, kind="insight", channel=channel, run_id=run_id,
            run_url=run_url, date_start=start, date_end=end, text=text,
            facts={"roas_mean": roas["roas_mean"], "roas_hdi_low": roas["roas_hdi_low"],
                   "roas_hdi_high": roas["roas_hdi_high"], "share": roas["share_mean"],
                   "champion_roas": before, "fit_dir": summary.fit_dir,
                   "recoverable": channel not in summary.not_recoverable}))
    if summary.trust_score is not None:
        verdict = ("promoted to the champion" if summary.promoted
                   else "kept out of service: " + "; ".join(summary.decision))
        memories.append(Memory(
            tenant=summary.tenant, kind="validation", run_id=run_id, run_url=run_url,
            date_start=start, date_end=end,
            text=f"Model trust score {summary.trust_score:.0f} out of 100, {verdict}; weeks "
                 f"{summary.first_week} to {summary.last_week}",
            facts={"trust_score": summary.trust_score, "promoted": summary.promoted,
                   "reasons": list(summary.decision), "fit_dir": summary.fit_dir}))
    ranked = sorted(summary.roas.items(), key=lambda item: -item[1]["roas_mean"])
    shifted = [s.channel for s in summary.shifted]
    text = ("Channel efficiency, best to worst: "
            + ", ".join(f"{channel_words(c)} {r['roas_mean']:.3g}" for c, r in ranked)
            + (f". ROAS shifted outside the champion's interval for "
               f"{', '.join(channel_words(c) for c in shifted)}" if shifted else
               ". No channel moved outside the champion's interval")
            + f"; weeks {summary.first_week} to {summary.last_week}")
    memories.append(Memory(
        tenant=summary.tenant, kind="situation", run_id=run_id, run_url=run_url,
        date_start=start, date_end=end, text=text,
        facts={"roas": {c: r["roas_mean"] for c, r in summary.roas.items()},
               "shifted": shifted, "fit_dir": summary.fit_dir}))
    return memories


def anomaly_memories(check, run_id: str = "", run_url: str = "") -> list[Memory]:
    """One memory per anomaly of a monitor check (see ``liftos.monitor``)."""
    week = _day(check.week)
    memories = []
    for anomaly in check.anomalies:
        if anomaly.startswith("spend_shift:"):
            channel = anomaly.split(":", 1)[1]
            move = next(m for m in check.moves if m.channel == channel)
            text = (f"{channel_words(channel)} spend moved {move.change:+.0%} against its "
                    f"trailing mean in week {check.week}; model-implied KPI impact "
                    f"{move.kpi_impact_mean:+,.0f}")
            facts = move.model_dump()
        else:
            channel = ""
            text = (f"KPI {check.kpi_actual:,.0f} in week {check.week} was "
                    f"{'above' if 'above' in anomaly else 'below'} the model's 94% predictive "
                    f"interval [{check.kpi_low:,.0f}, {check.kpi_high:,.0f}]")
            facts = {"kpi_actual": check.kpi_actual, "kpi_low": check.kpi_low,
                     "kpi_high": check.kpi_high}
        memories.append(Memory(tenant=check.tenant, kind="anomaly", channel=channel,
                               run_id=run_id, run_url=run_url, date_start=week, date_end=week,
                               key=anomaly, text=text, facts=facts))
    return memories


def _change(before: float | None, now: float) -> str:
    if before is None or before == 0:
        return "first estimate"
    ratio = now / before - 1
    if abs(ratio) < 0.05:
        return f"steady vs the champion ({before:.3g})"
    return f"{'up' if ratio > 0 else 'down'} {abs(ratio):.0%} vs the champion ({before:.3g})"


def _day(value: str) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


def decision_memory(tenant: str, proposal: Any, decision: Any) -> Memory:
    """What was decided about a budget plan, so later situations can recall what followed."""
    p, d = proposal.payload, decision.payload
    moves = ", ".join(f"{channel_words(c['channel'])} {c['current_weekly']:,.0f} to "
                      f"{d['weekly'].get(c['channel'], c['recommended_weekly']):,.0f}"
                      for c in p.get("channels", []))
    who = f" by {d['by']}" if d.get("by") else ""
    return Memory(tenant=tenant, kind="decision", run_id=d.get("flow_run_id", ""),
                  key=f"decision-{decision.seq}",
                  text=(f"Budget plan ({p.get('objective')}, expected lift "
                        f"{p.get('lift_mean', 0):,.0f}) {d['verdict']}{who}: {moves}. "
                        f"{d.get('comment', '')}").strip(),
                  facts={"proposal_seq": proposal.seq, "decision_seq": decision.seq,
                         "verdict": d["verdict"], "weekly": d["weekly"],
                         **({"chain": p["chain"]} if p.get("chain") else {})})

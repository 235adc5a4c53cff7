"""The brief of a refresh (or a plan): facts from the run, written, checked, saved beside the fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liftos.brief.facts import build_facts
from liftos.brief.llm import PROMPT_VERSION, BriefResult, LLMSettings, result_record, write_brief
from liftos.home import atomic_write, write_json


def brief_for_run(summary: Any, language: str = "en", settings: LLMSettings | None = None,
                  plan: dict[str, Any] | None = None, prompt_version: str = PROMPT_VERSION,
                  similar: list[tuple[str, str]] = ()) -> BriefResult:
    """Write ``brief.md`` and ``brief.json`` (source, grounding, every model call) in the run's
    fit folder; ``summary`` is the run's :class:`~liftos.refresh.RunSummary`, ``similar`` the
    memory's past situations like it (``(date, text)``)."""
    run = {"tenant": summary.tenant, "promoted": summary.promoted,
           "decision": list(summary.decision), "champion_roas": summary.champion_roas,
           "champion_share": champion_shares(summary.champion_fit_dir)}
    facts = build_facts(summary.fit_dir, summary.tenant, run, plan=plan, language=language,
                        similar=similar)
    result = write_brief(facts, settings, prompt_version)
    save(result, Path(summary.fit_dir))
    return result


def brief_for_plan(tenant: str, fit_dir: str, folder: Path, language: str = "en",
                   settings: LLMSettings | None = None,
                   prompt_version: str = PROMPT_VERSION) -> BriefResult:
    """The brief of a proposed budget plan (``folder/plan.json``) on the champion it came from,
    saved beside the plan."""
    plan = json.loads((Path(folder) / "plan.json").read_text())
    facts = build_facts(fit_dir, tenant, plan=plan, language=language)
    result = write_brief(facts, settings, prompt_version)
    save(result, Path(folder))
    return result


def champion_shares(fit_dir: str | None) -> dict[str, float]:
    """Each channel's share of media contribution in the model in service before."""
    path = Path(fit_dir) / "summary.json" if fit_dir else None
    if path is None or not path.exists():
        return {}
    channels = json.loads(path.read_text())["channels"]
    return {name: ch["share_mean"] for name, ch in channels.items()}


def save(result: BriefResult, folder: Path) -> Path:
    path = folder / "brief.md"
    atomic_write(path, lambda tmp: Path(tmp).write_text(result.markdown))
    write_json(folder / "brief.json", result_record(result))
    return path

"""``liftos brief FIT_DIR`` (the weekly brief of a fit) and ``liftos brief eval`` (the evaluation
set, per writer and prompt version)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from liftos.errors import LiftOSError


def register(commands: argparse._SubParsersAction) -> None:
    brief = commands.add_parser(
        "brief", help="the plain-language brief of a fit, every number checked; 'eval' runs "
                      "the evaluation set",
        description="liftos brief FIT_DIR [--plan DIR] [--out FILE]  |  liftos brief eval "
                    "[--prompt-version V ...]. With OPENAI_API_KEY (or LIFTOS_OPENAI_BLOCK) a "
                    "model writes it, held to the facts; without, templates do.")
    brief.add_argument("fit_dir", help="a fit folder (liftos fit --out, or a tenant's fits/<key>)"
                                       ", or 'eval'")
    brief.add_argument("--plan", type=Path, default=None, help="a plan folder (plan.json)")
    brief.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    brief.add_argument("--language", default=None,
                       help="language code (default: the tenant's, else en)")
    brief.add_argument("--prompt-version", action="append", default=None,
                       help="prompt file version (default v1); repeat with 'eval' to compare")
    brief.set_defaults(handler=brief_command)


def brief_command(args: argparse.Namespace) -> int:
    if args.fit_dir == "eval":
        return eval_command(args)
    from liftos.brief.facts import build_facts
    from liftos.brief.llm import PROMPT_VERSION, write_brief
    from liftos.brief.run import champion_shares, save
    from liftos_app.blocks.openai import llm_settings

    fit_dir = Path(args.fit_dir)
    if not (fit_dir / "summary.json").exists():
        raise LiftOSError(f"{fit_dir}: not a fit folder (no summary.json)")
    plan = _read_plan(args.plan)
    run = _run_record(fit_dir)
    if run is not None:
        champion = (run.get("champion") or {}).get("fit_dir")
        run["champion_share"] = champion_shares(champion)
    facts = build_facts(fit_dir, (run or {}).get("tenant", ""), run, plan=plan,
                        language=args.language or _tenant_language(run) or "en")
    result = write_brief(facts, llm_settings(), (args.prompt_version or [PROMPT_VERSION])[0])
    save(result, fit_dir)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(result.markdown)
    print(result.markdown)
    print(result.describe())
    return 0


def eval_command(args: argparse.Namespace) -> int:
    from liftos.brief import evalset
    from liftos.brief.llm import PROMPT_VERSION, generate
    from liftos.brief.writer import deterministic_brief
    from liftos_app.blocks.openai import llm_settings

    rows = [("templates", "-", evalset.run(deterministic_brief))]
    settings = llm_settings()
    if settings.api_key is None:
        print("no OpenAI key configured (OPENAI_API_KEY or LIFTOS_OPENAI_BLOCK): templates only")
    for version in (args.prompt_version or [PROMPT_VERSION]) if settings.api_key else []:
        rows.append((settings.model, version, evalset.run(
            lambda facts, v=version: generate(facts, settings, v)[0])))
    print(f"{'writer':<24}{'prompt':<8}{'passed':>8}{'grounded':>10}{'mean s':>8}")
    for writer, version, results in rows:
        n = len(results)
        print(f"{writer:<24}{version:<8}{sum(r.passed for r in results):>5}/{n:<2}"
              f"{sum(r.grounded for r in results):>7}/{n:<2}"
              f"{sum(r.seconds for r in results) / n:>8.2f}")
        for r in results:
            if not r.passed:
                print(f"  {r.case}: {'; '.join(r.failures)[:160]}")
    return 0


def _read_plan(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    path = folder / "plan.json" if folder.is_dir() else folder
    if not path.exists():
        raise LiftOSError(f"{folder}: no plan.json")
    return json.loads(path.read_text())


def _run_record(fit_dir: Path) -> dict | None:
    """The refresh that made ``fit_dir`` (a tenant's ``runs.jsonl``), with the champion it was
    compared with, when the fit lives in a data home."""
    runs = fit_dir.parent.parent / "runs.jsonl"
    if not runs.exists():
        return None
    records = [json.loads(line) for line in runs.read_text().splitlines() if line.strip()]
    mine = [r for r in records if Path(r.get("fit_dir", "")).resolve() == fit_dir.resolve()]
    if not mine:
        return None
    run = dict(mine[-1])
    earlier = [r for r in records[:records.index(mine[-1])] if r.get("promoted")]
    run["tenant"] = fit_dir.parent.parent.name
    if earlier:
        run["champion"] = earlier[-1]
        run["champion_roas"] = {c: v["roas_mean"] for c, v in earlier[-1]["roas"].items()}
    return run


def _tenant_language(run: dict | None) -> str | None:
    if not run:
        return None
    from liftos.tenancy import load_tenant

    try:
        return load_tenant(run["tenant"]).language
    except LiftOSError:
        return None

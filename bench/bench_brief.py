"""The brief: facts building and grounding check time per brief (target: both under 50 ms), and
the evaluation set's pass rate for the deterministic writer vs a model (the local fake, through
the real OpenAI SDK).

    .venv/bin/python bench/bench_brief.py

A fit of simulated ecommerce data (5 channels x 104 weeks, 2 chains x 200 draws) is saved once;
then, warm, 50 repeats of each: build the facts from its folder; write the deterministic brief
and check it; check the fake model's brief (one claim per fact: the most claims a brief has).
Medians are printed. Writes bench/results/brief.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPEATS = 50


def _fit_folder() -> Path:
    from liftos.config import load_template
    from liftos.data import ColumnSpec, load_panel
    from liftos.model import mmm
    from liftos.model.options import FitOptions
    from liftos.model.spec import ModelSpec
    from liftos.simulate import simulate

    template = load_template("ecommerce")
    channels = ("search", "social", "display", "email", "tv")
    folder = Path(tempfile.mkdtemp())
    data, _ = simulate(template, weeks=104, seed=3, channels=list(channels)).write(folder)
    panel = load_panel(data, ColumnSpec("date", "revenue", channels, tuple(template.controls)))
    spec = ModelSpec(template, channels, tuple(template.controls), "revenue")
    fit = mmm.fit(panel, spec, FitOptions(draws=200, tune=200, chains=2, progress=False))
    return fit.save(folder / "fit")


def _median_ms(work) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> int:
    from pydantic import SecretStr

    from liftos.brief import evalset
    from liftos.brief.facts import build_facts
    from liftos.brief.grounding import check
    from liftos.brief.llm import LLMSettings, generate
    from liftos.brief.writer import BriefText, deterministic_brief
    from liftos.fakes.openai import FakeOpenAI, write

    folder = _fit_folder()
    run = {"tenant": "bench", "promoted": True, "decision": [],
           "champion_roas": {"search": 1.0, "tv": 1.0}}
    facts = build_facts(folder, "bench", run)
    model_brief = BriefText.model_validate(write(json.loads(facts.for_prompt())))

    def claims(brief):
        return [(c.text, c.fact_ids) for c in brief.claims()]

    rows = {
        "build facts from the fit folder": _median_ms(lambda: build_facts(folder, "bench", run)),
        "deterministic brief: write + check": _median_ms(
            lambda: check(claims(deterministic_brief(facts)), facts)),
        f"check a model brief ({len(model_brief.claims())} claims)": _median_ms(
            lambda: check(claims(model_brief), facts)),
    }
    print(f"\nBrief timings, median of {REPEATS} warm repeats ({len(facts.facts)} facts; target "
          "< 50 ms each)")
    for name, ms in rows.items():
        print(f"{name:<44}{ms:>8.1f} ms")

    fake = FakeOpenAI(api_key="sk-bench").start()
    settings = LLMSettings(api_key=SecretStr("sk-bench"), base_url=fake.base_url)
    try:
        results = {"templates": evalset.run(deterministic_brief),
                   "fake model (v1)": evalset.run(lambda f: generate(f, settings)[0])}
    finally:
        fake.stop()
    print(f"\nEvaluation set ({len(evalset.CASES)} cases)")
    print(f"{'writer':<20}{'passed':>8}{'grounded':>10}")
    for name, found in results.items():
        print(f"{name:<20}{sum(r.passed for r in found):>5}/{len(found):<3}"
              f"{sum(r.grounded for r in found):>6}/{len(found)}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "brief.json").write_text(json.dumps({
        "timings_ms": rows, "eval": {k: [r.model_dump() for r in v] for k, v in results.items()}},
        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

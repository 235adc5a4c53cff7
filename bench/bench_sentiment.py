"""Lift Sentiment and Lift Surfacing: offline scoring throughput and the weekly index on
100,000 texts; one week of AI-answer visibility for 50 prompts against the local fake model.

    .venv/bin/python bench/bench_sentiment.py [--texts 100000]

Texts are drawn from a fixed vocabulary (seed 0) over two years, 8% in German (left unscored);
one file is ingested end to end (land, parse, check, score with VADER, upsert), then the weekly
index (overall and per channel) and shift detection run on the stored table, warm, median of 5.
Visibility: 50 prompts asked through the OpenAI SDK of the fake server on 127.0.0.1 (answers
landed raw), then measured and recorded; median of 5 weeks. Writes bench/results/sentiment.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
_VOCABULARY = ("love great terrible slow fast broken excellent refund late perfect awful cheap "
         "quality delivery support price value happy disappointed works again never always "
         "box size colour fit recommend")
WORDS = _VOCABULARY.split()


def texts(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    days = rng.integers(0, 730, n)
    lengths = rng.integers(5, 40, n)
    words = rng.choice(WORDS, size=int(lengths.sum()))
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return pl.DataFrame({
        "date": [str(dt.date(2024, 12, 2) + dt.timedelta(days=int(d))) for d in days],
        "text": [" ".join(words[a:b]) for a, b in itertools.pairwise(bounds)],
        "channel": rng.choice(["search", "social", "email", ""], n),
        "language": np.where(rng.random(n) < 0.08, "de", "en")})


def visibility_week(home) -> float:
    from pydantic import SecretStr

    from liftos.brief.llm import LLMSettings
    from liftos.fakes.openai import FakeOpenAI
    from liftos.signals.visibility import PromptPanel, ask, measure, record

    panel = PromptPanel(brand="Northwind", competitors=["Contoso", "Fabrikam"],
                        prompts=[f"Where should I buy office item {k}?" for k in range(50)])
    fake = FakeOpenAI(api_key="sk-bench", assistant=lambda q: "Try Contoso, then Northwind.")
    fake.start()
    settings = LLMSettings(api_key=SecretStr("sk-bench"), base_url=fake.base_url)
    weeks = iter(dt.date(2026, 1, 5) + dt.timedelta(weeks=k) for k in range(5))
    try:
        return median_s(lambda: record(measure(ask(panel, settings, "bench", w := next(weeks),
                                                   home), panel, w), "bench", home))
    finally:
        fake.stop()


def median_s(work, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=100_000)
    args = parser.parse_args()
    from liftos.home import DataHome
    from liftos.signals.sentiment import detect_shift, ingest_texts, load_texts, weekly_index

    work = Path(tempfile.mkdtemp(prefix="liftos-bench-sentiment-"))
    path = work / "texts.csv"
    texts(args.texts).write_csv(path)
    home = DataHome(work / "home")
    started = time.perf_counter()
    counts = ingest_texts(path, "bench", home, today=dt.date(2026, 12, 31))
    ingest = time.perf_counter() - started
    stored = load_texts("bench", home)
    rows = {
        f"ingest {args.texts:,} texts (land, check, score, upsert)": (ingest, counts.texts / ingest),
        "weekly index": (median_s(lambda: weekly_index(stored)), None),
        "weekly index per channel": (median_s(lambda: weekly_index(stored, by="channel")), None),
        "shift detection (newest week)": (median_s(lambda: detect_shift(stored)), None),
    }
    rows["visibility: 50 prompts asked, landed, measured"] = (visibility_week(home), None)
    print(f"\nLift Sentiment on {args.texts:,} texts ({counts.scored:,} scored, "
          f"{sum(counts.unscored.values()):,} unscored in German)")
    print(f"{'step':<52}{'seconds':>9}{'texts/s':>10}")
    for name, (seconds, rate) in rows.items():
        print(f"{name:<52}{seconds:>9.3f}{'' if rate is None else f'{rate:,.0f}':>10}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sentiment.json").write_text(json.dumps(
        {name: {"seconds": s, "texts_per_s": r} for name, (s, r) in rows.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wall time of the validation suite relative to one fit (target <= 3x).

    .venv/bin/python bench/bench_validation.py

Simulated ecommerce data (104 weeks, 3 channels). The fit uses the product's defaults (4 chains
x 1000 tune x 1000 draws), the validation refits theirs (``ValidationOptions``: 2 x 500/500).
Each way of running the suite -- sequential, or with the refits submitted in parallel to an
in-process Dask cluster -- runs in its own process with its own empty compile caches, so both
start equally cold: the fit (compiling its model), then the suite (review checks, holdout and
placebo refits: two new shapes, two compiles); then both again on a second data set of the
same shapes (compiled models reused, as in a weekly refresh). Prints a table and writes
bench/results/validation.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from _fresh import in_fresh_process

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CASES = (("first refresh (cold compile)", 2), ("next refresh (same shapes)", 5))


def measure(mode: str) -> list[dict]:
    """Both cases in this process, the suite run ``mode`` ("sequential" or "dask")."""
    from distributed import Client, LocalCluster

    from liftos.config import load_template
    from liftos.data import ColumnSpec, load_panel
    from liftos.model import mmm
    from liftos.model.options import FitOptions
    from liftos.model.spec import ModelSpec
    from liftos.simulate import simulate
    from liftos.validation.runner import ValidationOptions, validate

    template = load_template("ecommerce")
    channels = ("search", "social", "tv")
    spec = ModelSpec(template, channels, tuple(template.controls), "revenue")
    rows = []
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        submit = (lambda fn, *a: client.submit(fn, *a, pure=False)) if mode == "dask" else None
        for label, seed in CASES:
            sim = simulate(template, weeks=104, seed=seed, channels=list(channels))
            folder = Path(tempfile.mkdtemp())
            data, _ = sim.write(folder)
            panel = load_panel(data, ColumnSpec("date", "revenue", channels,
                                                tuple(template.controls)))
            started = time.perf_counter()
            result = mmm.fit(panel, spec, FitOptions(progress=False))
            fit_s = time.perf_counter() - started
            result.save(folder / "fit")
            started = time.perf_counter()
            validation = validate(folder / "fit", ValidationOptions(seed=seed), submit=submit)
            rows.append({"case": label, "mode": mode, "fit_s": fit_s,
                         "suite_s": time.perf_counter() - started,
                         "trust": validation.trust.score})
    return rows


def main() -> int:
    if "--mode" in sys.argv:
        print(json.dumps(measure(sys.argv[sys.argv.index("--mode") + 1])))
        return 0
    rows = [row for mode in ("sequential", "dask")
            for row in in_fresh_process(__file__, ["--mode", mode], mode)]
    print("\nValidation suite vs one fit (each mode in its own process from empty compile "
          "caches; target suite <= 3x one fit)")
    print(f"{'case':<32}{'suite run':<12}{'fit s':>8}{'suite s':>9}{'ratio':>7}{'trust':>7}")
    for r in rows:
        print(f"{r['case']:<32}{r['mode']:<12}{r['fit_s']:>8.1f}{r['suite_s']:>9.1f}"
              f"{r['suite_s'] / r['fit_s']:>6.1f}x{r['trust']:>7.1f}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "validation.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

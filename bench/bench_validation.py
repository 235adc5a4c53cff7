"""Wall time of the validation suite relative to one fit (target <= 3x).

    .venv/bin/python bench/bench_validation.py

Simulated ecommerce data (104 weeks, 3 channels). The fit uses the product's defaults (4 chains
x 1000 tune x 1000 draws), the validation refits theirs (``ValidationOptions``: 2 x 500/500). In one process: the fit (compiling its model), then the suite (review checks, holdout
refit, placebo refit: two new shapes, so two compiles) run sequentially and with the refits
submitted in parallel to an in-process Dask cluster; then both again on a second data set of the
same shapes (compiled models reused, as in a weekly refresh). The Dask column runs after the
sequential one, so its models are already compiled. Prints a table and writes
bench/results/validation.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from distributed import Client, LocalCluster

    from liftos.config import load_template
    from liftos.data import ColumnSpec, load_panel
    from liftos.model import mmm
    from liftos.model.spec import FitOptions, ModelSpec
    from liftos.simulate import simulate
    from liftos.validation.runner import ValidationOptions, validate

    template = load_template("ecommerce")
    channels = ("search", "social", "tv")
    spec = ModelSpec(template, channels, tuple(template.controls), "revenue")
    options = FitOptions(progress=False)
    rows = []
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        for label, seed in (("first refresh (cold compile)", 2), ("next refresh (same shapes)", 5)):
            sim = simulate(template, weeks=104, seed=seed, channels=list(channels))
            folder = Path(tempfile.mkdtemp())
            data, _ = sim.write(folder)
            panel = load_panel(data, ColumnSpec("date", "revenue", channels, tuple(template.controls)))
            started = time.perf_counter()
            result = mmm.fit(panel, spec, options)
            fit_s = time.perf_counter() - started
            result.save(folder / "fit")
            suite = ValidationOptions(seed=seed)
            started = time.perf_counter()
            validate(folder / "fit", suite)
            sequential_s = time.perf_counter() - started
            started = time.perf_counter()
            validation = validate(folder / "fit", suite,
                                  submit=lambda fn, *a: client.submit(fn, *a, pure=False))
            parallel_s = time.perf_counter() - started
            rows.append({"case": label, "fit_s": fit_s, "sequential_s": sequential_s,
                         "dask_s": parallel_s, "trust": validation.trust.score})
    print("\nValidation suite vs one fit (same process; target suite <= 3x one fit)")
    print(f"{'case':<32}{'fit s':>8}{'suite s':>9}{'ratio':>7}{'on Dask s':>11}{'ratio':>7}{'trust':>7}")
    for r in rows:
        print(f"{r['case']:<32}{r['fit_s']:>8.1f}{r['sequential_s']:>9.1f}"
              f"{r['sequential_s'] / r['fit_s']:>6.1f}x{r['dask_s']:>11.1f}"
              f"{r['dask_s'] / r['fit_s']:>6.1f}x{r['trust']:>7.1f}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "validation.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

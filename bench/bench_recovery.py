"""The recovery check: its cost against one fit, and its own coverage where the model is right.

    .venv/bin/python bench/bench_recovery.py [--coverage-replicas 50]

Simulated ecommerce data, 5 channels x 156 weeks (LiftOS's simulator: the model's own family).

1. Time. One fit with the product's defaults (4 chains x 1000 tune x 1000 draws) from an empty
   compile cache; the recovery suite (20 replicas, ``RecoveryOptions`` defaults: 2 chains x
   300/300, both families) cold, in a fresh process that never compiled the model; and the
   suite right after the fit in the same process (as in a refresh: the replicas share the
   fit's shapes, so its compiled model serves them). Target: suite with reuse <= 3x one fit.
2. Coverage. Replicas drawn only from the model's own family (correct by construction): the
   share of true ROAS inside the 94% interval should be within 6 points of 94%.

Each measurement runs in its own process with its own empty compile caches. Prints a table and
writes bench/results/recovery.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from _fresh import in_fresh_process

REPO = Path(__file__).resolve().parents[1]
CHANNELS = ("search", "social", "display", "email", "tv")


def _setup():
    from liftos.config import load_template
    from liftos.data import ColumnSpec, load_panel
    from liftos.model.spec import ModelSpec
    from liftos.simulate import simulate

    template = load_template("ecommerce")
    folder = Path(tempfile.mkdtemp())
    data, _ = simulate(template, weeks=156, seed=1, channels=list(CHANNELS)).write(folder)
    panel = load_panel(data, ColumnSpec("date", "revenue", CHANNELS, tuple(template.controls)))
    return panel, ModelSpec(template, CHANNELS, tuple(template.controls), "revenue")


def measure(what: str, replicas: int) -> dict:
    from liftos.model import mmm
    from liftos.model.options import FitOptions
    from liftos.validation.recovery import RecoveryOptions, recovery

    panel, spec = _setup()
    started = time.perf_counter()
    fit = mmm.fit(panel, spec, FitOptions(progress=False))
    fit_s = time.perf_counter() - started
    if what == "cold":  # a fresh process: forget the fit's compiled model
        mmm.clear_compiled_models()
    options = RecoveryOptions(replicas=replicas) if what != "coverage" else RecoveryOptions(
        replicas=replicas, families=("model",))
    started = time.perf_counter()
    found = recovery(fit, options)
    return {"what": what, "fit_s": fit_s, "suite_s": time.perf_counter() - started,
            "replicas": found.replicas, "coverage": found.coverage,
            "median_error": found.median_error, "families": found.families,
            "not_recoverable": [c.channel for c in found.unrecoverable]}


def main() -> int:
    if "--measure" in sys.argv:
        at = sys.argv.index("--measure")
        print(json.dumps(measure(sys.argv[at + 1], int(sys.argv[at + 2]))))
        return 0
    coverage_replicas = (int(sys.argv[sys.argv.index("--coverage-replicas") + 1])
                         if "--coverage-replicas" in sys.argv else 50)
    rows = [in_fresh_process(__file__, ["--measure", what, "20"], what)
            for what in ("cold", "reuse")]
    print("\nRecovery suite (20 replicas, 5 channels x 156 weeks) vs one fit (4 x 1000/1000), "
          "each in its own process; target: with reuse <= 3x one fit")
    print(f"{'suite':<36}{'fit s':>8}{'suite s':>9}{'ratio':>7}{'inside':>8}{'error':>7}")
    for r in rows:
        label = ("cold (compiles its own model)" if r["what"] == "cold"
                 else "after the fit (compiled model reused)")
        print(f"{label:<36}{r['fit_s']:>8.1f}{r['suite_s']:>9.1f}{r['suite_s'] / r['fit_s']:>6.1f}x"
              f"{r['coverage']:>8.0%}{r['median_error']:>7.0%}")
    covered = in_fresh_process(__file__, ["--measure", "coverage", str(coverage_replicas)],
                               "coverage")
    rows.append(covered)
    n = covered["replicas"] * len(CHANNELS)
    print(f"\nCoverage where the model is right by construction: {covered['coverage']:.1%} of "
          f"{n} true ROAS inside the 94% interval ({covered['replicas']} replicas; target "
          f"88-100%), median ROAS error {covered['median_error']:.1%}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "recovery.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

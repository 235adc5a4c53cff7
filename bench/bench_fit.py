"""Fit benchmark: LiftOS vs pymc-marketing 0.19.2 + nutpie on mmm_example.csv, same run.

Each engine runs in its own process. "cold" means empty compile caches (a fresh pytensor
base compiledir, which holds its numba cache of compiled ops, and numba cache dir); "warm disk" means a new process reusing the caches the cold run
left, as a user's second command would. Prints a table and writes bench/results/fit.json.

    make bench        # or: .venv/bin/python bench/bench_fit.py [--draws 1000 --tune 1000 --chains 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _fresh import compile_cache_env

from liftos_app.cli.options import add_model_options

HERE = Path(__file__).resolve().parent
TRUE_ROAS = {"x1": 4968.0, "x2": 2275.0}


def run(script: str, data: Path, args: argparse.Namespace, cache: Path) -> dict:
    env = compile_cache_env(cache)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE / script), str(data), str(args.draws),
                           str(args.tune), str(args.chains), str(args.seed)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed:\n{proc.stderr[-3000:]}")
    line = next(row for row in proc.stdout.splitlines() if row.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["process_s"] = time.perf_counter() - t0
    return result


def roas_error(roas: dict[str, float], truth_scale: float = 1.0) -> float:
    """Worst relative ROAS error over the channels (the 2nd LiftOS data set scales y by 3%)."""
    return max(abs(roas[c] - t * truth_scale) / (t * truth_scale) for c, t in TRUE_ROAS.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    shared = HERE.parent.parent / "shared" / "data" / "mmm_example.csv"
    bundled = HERE.parent / "tests" / "data" / "mmm_example.csv"
    parser.add_argument("--data", type=Path, default=shared if shared.exists() else bundled)
    add_model_options(parser)  # the sampler flags of `liftos fit`
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine, script in (("pymc-marketing 0.19.2 + nutpie", "_fit_pymc_marketing.py"),
                               ("LiftOS", "_fit_liftos.py")):
            cache = Path(tmp) / engine.split()[0]
            for scenario in ("cold", "warm disk"):
                print(f"running {engine} ({scenario}) ...", file=sys.stderr, flush=True)
                result = run(script, args.data, args, cache)
                for i, fit in enumerate(result["runs"]):
                    label = scenario if i == 0 else f"{scenario}, 2nd fit same process"
                    rows.append({"engine": engine, "scenario": label, **fit,
                                 "process_s": result["process_s"] if i == 0 else None,
                                 "roas_error": roas_error(fit["roas"], fit.get("truth_scale", 1.0))})

    header = (f"{'engine':<32}{'scenario':<30}{'wall s':>8}{'compile':>9}{'sample':>8}"
              f"{'r-hat':>7}{'ESS':>6}{'div':>5}{'ROAS err':>10}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['engine']:<32}{r['scenario']:<30}{r['wall_s']:>8.1f}{r['compile_s']:>9.1f}"
              f"{r['sampling_s']:>8.1f}{r['rhat_max']:>7.3f}{r['ess_bulk_min']:>6.0f}"
              f"{r['divergences']:>5d}{r['roas_error']:>9.1%}")

    def pick(engine, scenario):
        return next(r for r in rows if r["engine"].startswith(engine) and r["scenario"] == scenario)

    ratios = {
        "cold fit: pymc-marketing wall / LiftOS wall":
            pick("pymc", "cold")["wall_s"] / pick("LiftOS", "cold")["wall_s"],
        "warm-disk fit: pymc-marketing wall / LiftOS wall":
            pick("pymc", "warm disk")["wall_s"] / pick("LiftOS", "warm disk")["wall_s"],
        "LiftOS first fit / second same-shaped fit (cold process)":
            pick("LiftOS", "cold")["wall_s"] / pick("LiftOS", "cold, 2nd fit same process")["wall_s"],
    }
    print()
    for name, value in ratios.items():
        print(f"{name:<60}{value:>6.1f}x")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "fit.json").write_text(json.dumps({"args": vars(args) | {"data": str(args.data)},
                                              "rows": rows, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()

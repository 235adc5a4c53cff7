"""Budget planner: time per plan and the true uplift of each plan, on simulated data, side by
side with pymc-marketing 0.19.2's BudgetOptimizer on the same data, budget and bounds.

For each scenario (template, seed: 104 weeks, up to 5 channels) LiftOS fits (the sampler flags
of `liftos fit`) and plans with 13 weeks x 1,000 draws: ``expected`` and ``cvar``; pymc-marketing
fits the same data (geometric adstock at the template's longest window, logistic saturation,
nutpie, same draws) in its own process and runs ``optimize_budget`` for 13 weeks. Both are judged
on the simulator's truth (which neither sees) against the truth's own optimum under the same
constraints (+-30% per channel, the current weekly budget). LiftOS planner times are warm (one
untimed plan first), best of 3; pymc-marketing's is its single optimize call after its fit.

    .venv/bin/python bench/bench_planner.py [--seeds 3] [--no-baseline]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from liftos.config import load_template
from liftos.data import ColumnSpec, load_panel
from liftos.model import mmm
from liftos.model.options import FitOptions
from liftos.model.spec import ModelSpec
from liftos.planning.planner import plan_budget
from liftos.planning.response import ResponseModel
from liftos.simulate import simulate
from liftos_app.cli.options import add_model_options, model_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--templates", default="ecommerce,education")
    parser.add_argument("--no-baseline", action="store_true", help="skip pymc-marketing")
    add_model_options(parser, defaults={"draws": 500, "tune": 500, "chains": 2})
    args = parser.parse_args()
    options = model_options(args, FitOptions, progress=False)
    print(f"{'scenario':<14}{'plan':<10}{'seconds':>9}{'true uplift':>14}{'true optimum':>14}"
          f"{'share':>8}{'lift sd':>12}")
    shares = []
    for name in args.templates.split(","):
        template = load_template(name)
        channels = list(template.channels)[:5]
        for seed in range(1, args.seeds + 1):
            simulation = simulate(template, weeks=104, seed=seed, channels=channels)
            folder = tempfile.mkdtemp(prefix="liftos-bench-plan-")
            data, _ = simulation.write(Path(folder))
            kpi = template.kpi.name
            panel = load_panel(data, ColumnSpec("date", kpi, tuple(channels),
                                                tuple(template.controls)))
            spec = ModelSpec(template, tuple(channels), tuple(template.controls), kpi)
            fit = mmm.fit(panel, spec, options.model_copy(update={"seed": seed}))
            truth = ResponseModel.from_truth(template, simulation.truth, simulation.spend)
            model = ResponseModel.from_fit(fit, max_draws=1000)
            best = plan_budget(truth).lift_mean
            if not args.no_baseline:
                rows = _baseline(data, template, channels, truth, options, seed)
                if rows:
                    weekly, seconds = rows
                    allocation = np.array([[weekly[c] for c in truth.channels]])
                    uplift = float(truth.lift_terms(allocation, 13)[0].sum())
                    print(f"{name[:9] + '-' + str(seed):<14}{'pymc-mkt':<10}{seconds:>9.3f}"
                          f"{uplift:>14,.0f}{best:>14,.0f}{uplift / best:>8.0%}{'':>12}")
            for objective in ("expected", "cvar"):
                plan_budget(model, objective=objective)  # warm
                seconds = []
                for _ in range(3):
                    started = time.perf_counter()
                    plan = plan_budget(model, objective=objective)
                    seconds.append(time.perf_counter() - started)
                allocation = np.array([[plan.geo_allocation[g][c] for c in truth.channels]
                                       for g in truth.geos])
                uplift = float(truth.lift_terms(allocation, plan.horizon_weeks)[0].sum())
                share = uplift / best if best > 0 else float("nan")
                if objective == "expected":
                    shares.append(share)
                print(f"{name[:9] + '-' + str(seed):<14}{objective:<10}{min(seconds):>9.3f}"
                      f"{uplift:>14,.0f}{best:>14,.0f}{share:>8.0%}"
                      f"{np.std(plan.lift_draws):>12,.0f}")
    print(f"expected plans: median share of the true optimum {np.median(shares):.0%}, "
          f"{sum(s >= 0.6 for s in shares)}/{len(shares)} at 60% or more")


def _baseline(data: Path, template, channels: list[str], truth: ResponseModel, options,
              seed: int) -> tuple[dict[str, float], float] | None:
    """pymc-marketing's plan for the same data, budget and bounds (its own process)."""
    import json
    import subprocess
    import sys

    current = truth.current.sum(axis=0)
    spec = {"data": str(data), "channels": channels, "controls": list(template.controls),
            "target": template.kpi.name, "seed": seed, "chains": options.chains,
            "draws": options.draws, "tune": options.tune, "horizon": 13,
            "l_max": max(template.channel(c).adstock.max_lag for c in channels),
            "budget": float(current.sum()),
            "bounds": {c: [0.7 * float(v), 1.3 * float(v)] for c, v in zip(channels, current,
                                                                              strict=True)}}
    path = data.parent / "baseline.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, str(Path(__file__).with_name(
        "_plan_pymc_marketing.py")), str(path)], capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        print(f"pymc-marketing failed: {done.stderr[-800:]}")
        return None
    result = json.loads(line[7:])
    return result["allocation"], result["seconds"]


if __name__ == "__main__":
    main()

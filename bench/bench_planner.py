"""Budget planner: time per plan and the true uplift of each plan, on simulated data.

For each scenario (template, seed: 104 weeks, up to 5 channels) one fit (the sampler flags of
`liftos fit`), then plans with 13 weeks x 1,000 draws: ``expected`` and ``cvar`` from the
posterior, and the optimum the simulator's own truth gives under the same constraints (+-30%
per channel, the current budget). Uplift is judged on the truth, which the planner never sees.
Planner times are warm (one untimed plan first), best of 3. Prints one table.

    .venv/bin/python bench/bench_planner.py [--seeds 3]
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
            with tempfile.TemporaryDirectory() as folder:
                data, _ = simulation.write(Path(folder))
                kpi = template.kpi.name
                panel = load_panel(data, ColumnSpec("date", kpi, tuple(channels),
                                                    tuple(template.controls)))
            spec = ModelSpec(template, tuple(channels), tuple(template.controls), kpi)
            fit = mmm.fit(panel, spec, options.model_copy(update={"seed": seed}))
            truth = ResponseModel.from_truth(template, simulation.truth, simulation.spend)
            model = ResponseModel.from_fit(fit, max_draws=1000)
            best = plan_budget(truth).lift_mean
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


if __name__ == "__main__":
    main()

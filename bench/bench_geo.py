"""Geo scale (issue 15, target 2): one geo fit of LiftOS's simulator and what it took.

    .venv/bin/python bench/bench_geo.py [--geos 20] [--channels 8] [--weeks 156] [--seed 1]
        [--prior template|roas] [--draws 1000] [--tune 1000] [--chains 4]

Simulates ``--geos`` geos x ``--channels`` channels (the ecommerce template's five, then
channels on its defaults), fits them with the ecommerce template and prints one table: wall,
compile and sampling time, peak memory of this process, mean tree depth, divergences, worst
r-hat, lowest bulk ESS and the variable holding it, and the ROAS recovery against the
simulator's truth, in total and per geo (median and worst relative error, share of true ROAS
inside the 94% HDI). ``--prior roas`` puts the template's channels on the generic template's
ROAS prior instead of its effect prior, so the two are compared on the same data. Targets:
r-hat <= 1.01, bulk ESS >= 400, no divergences, <= 120 s wall on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXTRA_CHANNELS = ("affiliate", "podcast", "radio", "ooh", "video")
ROAS_PRIOR = {"dist": "LogNormal", "mu": 0.0, "sigma": 0.9}  # templates/generic.yaml's


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--geos", type=int, default=20)
    parser.add_argument("--channels", type=int, default=8, choices=range(1, 11))
    parser.add_argument("--weeks", type=int, default=156)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prior", choices=("template", "roas"), default="template")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    args = parser.parse_args()
    row = measure(args)
    print_table(args, row)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "geo.json").write_text(json.dumps({"args": vars(args), **row}, indent=2))
    return 0


def measure(args: argparse.Namespace) -> dict:
    from liftos.config import load_template
    from liftos.data import ColumnSpec, load_panel
    from liftos.model import mmm
    from liftos.model.options import FitOptions
    from liftos.model.spec import ModelSpec
    from liftos.simulate import simulate

    template = load_template("ecommerce")
    channels = (list(template.channels) + list(EXTRA_CHANNELS))[:args.channels]
    simulation = simulate(template, weeks=args.weeks, seed=args.seed, geos=args.geos,
                          channels=channels)
    data, _ = simulation.write(Path(tempfile.mkdtemp(prefix="liftos-bench-geo-")))
    if args.prior == "roas":
        template = load_template("ecommerce", {"channel_defaults": {"roas_prior": ROAS_PRIOR}})
    kpi, controls = template.kpi.name, tuple(template.controls)
    panel = load_panel(data, ColumnSpec("date", kpi, tuple(channels), controls,
                                        "geo" if args.geos > 1 else None))
    spec = ModelSpec(template, tuple(channels), controls, kpi)
    options = FitOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                         progress=False)
    started = time.perf_counter()
    fit = mmm.fit(panel, spec, options)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "compile_s": fit.timing["compile_s"],
            "sampling_s": fit.timing["sampling_s"], "peak_rss_mb": _peak_rss_mb(),
            **_diagnostics(fit), **_recovery(fit, simulation)}


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def _diagnostics(fit) -> dict:
    import arviz as az

    posterior, stats = fit.idata.posterior, fit.idata.sample_stats
    ess = az.ess(posterior, method="bulk")
    rhat = az.rhat(posterior)
    lowest = min(posterior.data_vars, key=lambda v: float(ess[v].min()))
    return {"tree_depth": float(stats["depth"].mean()),
            "divergences": int(stats["diverging"].sum()),
            "rhat_max": max(float(rhat[v].max()) for v in posterior.data_vars),
            "ess_bulk_min": float(ess[lowest].min()), "ess_lowest_variable": lowest}


def _recovery(fit, simulation) -> dict:
    """Relative ROAS error and HDI coverage, national and per geo, against the truth."""
    from liftos.model.results import hdi

    spend = simulation.spend.sum(axis=1)                                  # (G, C)
    true_geo = simulation.contributions.sum(axis=1) / spend
    true_total = simulation.contributions.sum(axis=(0, 1)) / spend.sum(axis=0)
    geo_draws, total_draws = [], []
    for chunk in np.array_split(np.arange(fit.n_draws), max(1, fit.n_draws // 250)):
        contribution = fit.contributions(chunk).sum(axis=2)              # (s, G, C)
        geo_draws.append(contribution / spend)
        total_draws.append(contribution.sum(axis=1) / spend.sum(axis=0))
    out = {}
    for label, draws, truth in (("total", np.concatenate(total_draws), true_total),
                                ("geo", np.concatenate(geo_draws), true_geo)):
        low, high = hdi(draws)
        error = np.abs(draws.mean(axis=0) - truth) / truth
        out[f"{label}_roas_error_median"] = float(np.median(error))
        out[f"{label}_roas_error_max"] = float(error.max())
        out[f"{label}_roas_covered"] = float(((low <= truth) & (truth <= high)).mean())
    return out


def print_table(args: argparse.Namespace, row: dict) -> None:
    print(f"{args.geos} geos x {args.channels} channels x {args.weeks} weeks, seed {args.seed}, "
          f"{args.prior} prior, {args.chains} x {args.tune}/{args.draws}")
    lines = [
        ("wall / compile / sampling (target wall <= 120 s)",
         f"{row['wall_s']:.1f} s / {row['compile_s']:.1f} s / {row['sampling_s']:.1f} s"),
        ("peak memory (this process)", f"{row['peak_rss_mb']:.0f} MB"),
        ("mean tree depth; divergences (target 0)",
         f"{row['tree_depth']:.2f}; {row['divergences']}"),
        ("worst r-hat (target <= 1.01)", f"{row['rhat_max']:.3f}"),
        ("lowest bulk ESS (target >= 400)",
         f"{row['ess_bulk_min']:.0f} ({row['ess_lowest_variable']})"),
    ]
    for label in ("total", "geo"):
        where = "channel" if label == "total" else "geo and channel"
        value = (f"{row[f'{label}_roas_error_median']:.1%} / "
                 f"{row[f'{label}_roas_error_max']:.1%}; {row[f'{label}_roas_covered']:.0%}")
        lines.append((f"ROAS per {where}: median / worst error; truth inside the 94% HDI", value))
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    raise SystemExit(main())

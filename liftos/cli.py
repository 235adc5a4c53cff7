"""The ``liftos`` command line. Heavy libraries are imported only by the commands that need them."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from liftos.errors import LiftOSError

SAMPLE_DATA = Path(__file__).parent / "sample_data"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except LiftOSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liftos", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="fit a marketing-mix model to a wide weekly table")
    fit.add_argument("data", type=Path, help="CSV or Parquet: one row per week (per geo)")
    fit.add_argument("--date-column", required=True)
    fit.add_argument("--target", required=True, help="the KPI column (revenue, orders, ...)")
    fit.add_argument("--channels", required=True, help="comma-separated spend columns")
    fit.add_argument("--controls", default="", help="comma-separated control columns")
    fit.add_argument("--geo-column", default=None, help="geo column for a hierarchical model")
    fit.add_argument("--template", default="generic", help="industry template name or path")
    fit.add_argument("--tenant-config", type=Path, default=None,
                     help="tenant YAML (template + overrides); takes precedence over --template")
    fit.add_argument("--draws", type=int, default=1000)
    fit.add_argument("--tune", type=int, default=1000)
    fit.add_argument("--chains", type=int, default=4)
    fit.add_argument("--seed", type=int, default=1)
    fit.add_argument("--sampler", choices=["nutpie", "pymc"], default="nutpie")
    fit.add_argument("--no-progress", action="store_true", help="hide the sampling progress bar")
    fit.add_argument("--no-report", action="store_true", help="skip the markdown/PNG report")
    fit.add_argument("--out", type=Path, required=True, help="output folder for the run")
    fit.set_defaults(handler=_fit)

    sim = commands.add_parser("simulate", help="simulate data with a known truth")
    sim.add_argument("--template", default="ecommerce")
    sim.add_argument("--weeks", type=int, default=156)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--geos", type=int, default=1)
    sim.add_argument("--channels", default="", help="subset of the template's channels")
    sim.add_argument("--out", type=Path, required=True)
    sim.set_defaults(handler=_simulate)

    templates = commands.add_parser("templates", help="list industry templates")
    templates.set_defaults(handler=_templates)

    demo = commands.add_parser("demo", help="fit the bundled sample data (the main job for now)")
    demo.add_argument("--out", type=Path, default=Path(".liftos/demo/run"))
    demo.add_argument("--draws", type=int, default=1000)
    demo.add_argument("--tune", type=int, default=1000)
    demo.set_defaults(handler=_demo)
    return parser


def _fit(args: argparse.Namespace) -> int:
    from liftos.data import parse_list
    from liftos.model.spec import FitOptions
    from liftos.pipeline import FitRequest, fit_and_save

    for name in ("draws", "tune", "chains"):
        if getattr(args, name) < 1:
            raise LiftOSError(f"--{name} must be at least 1, got {getattr(args, name)}")
    request = FitRequest(
        data=args.data, date_column=args.date_column, target=args.target,
        channels=parse_list(args.channels), controls=parse_list(args.controls),
        geo_column=args.geo_column, template=args.template, tenant_config=args.tenant_config,
        options=FitOptions(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                           sampler=args.sampler, progress=not args.no_progress))
    if not request.channels:
        raise LiftOSError("--channels needs at least one spend column")
    print(f"fitting {len(request.channels)} channel(s) from {args.data} ...", file=sys.stderr)
    result = fit_and_save(request, args.out, report=not args.no_report)
    _print_summary(result.summary(), args.out)
    return 0


def _print_summary(summary: dict, out: Path) -> None:
    print(f"{'channel':<14}{'ROAS':>12}{'94% HDI':>26}{'share':>9}")
    for name, ch in summary["channels"].items():
        interval = f"[{ch['roas_hdi_low']:.3g}, {ch['roas_hdi_high']:.3g}]"
        print(f"{name:<14}{ch['roas_mean']:>12.4g}{interval:>26}{ch['share_mean']:>9.1%}")
    d, t = summary["diagnostics"], summary["timing"]
    print(f"r-hat max {d['rhat_max']:.3f}, bulk ESS min {d['ess_bulk_min']:.0f}, "
          f"divergences {d['divergences']}; compile {t['compile_s']:.1f}s, "
          f"sampling {t['sampling_s']:.1f}s, total {t['total_s']:.1f}s")
    print(f"summary: {out / 'summary.json'}")
    if (out / "report.md").exists():
        print(f"report:  {out / 'report.md'}")


def _simulate(args: argparse.Namespace) -> int:
    from liftos.config import load_template
    from liftos.data import parse_list
    from liftos.simulate import simulate

    template = load_template(args.template)
    channels = list(parse_list(args.channels)) or None
    unknown = sorted(set(channels or []) - set(template.channels))
    if unknown:
        raise LiftOSError(f"template '{template.name}' has no channel(s) {unknown}; "
                          f"it has {list(template.channels)}")
    simulation = simulate(template, args.weeks, args.seed, args.geos, channels)
    data, truth = simulation.write(args.out)
    print(json.dumps({"data": str(data), "truth": str(truth),
                      "roas": {k: round(v["roas"], 4)
                               for k, v in simulation.truth["channels"].items()}}, indent=2))
    return 0


def _templates(args: argparse.Namespace) -> int:
    from liftos.config import available_templates, load_template

    for name in available_templates():
        template = load_template(name)
        print(f"{name:<12} KPI {template.kpi.name:<12} channels: {', '.join(template.channels)}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    demo_args = [
        "fit", str(SAMPLE_DATA / "ecommerce_demo.csv"), "--date-column", "date",
        "--target", "revenue", "--channels", "search,social,display,email,tv",
        "--controls", "price_index,promo", "--template", "ecommerce",
        "--draws", str(args.draws), "--tune", str(args.tune), "--out", str(args.out)]
    return main(demo_args)


if __name__ == "__main__":
    sys.exit(main())

"""Model commands: ``fit``, ``validate``, ``simulate``, ``templates`` (library calls, no Prefect)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from liftos.errors import LiftOSError
from liftos.model.options import FitOptions
from liftos_app.cli.options import add_model_options, model_options


def register(commands: argparse._SubParsersAction) -> None:
    fit = commands.add_parser("fit", help="fit a marketing-mix model to a wide weekly table")
    fit.add_argument("data", type=Path, help="CSV or Parquet: one row per week (per geo)")
    fit.add_argument("--date-column", required=True, help="the week (or day) column")
    fit.add_argument("--target", required=True, help="the KPI column (revenue, orders, ...)")
    fit.add_argument("--channels", required=True, help="comma-separated spend columns")
    fit.add_argument("--controls", default="", help="comma-separated control columns")
    fit.add_argument("--geo-column", default=None, help="geo column for a hierarchical model")
    fit.add_argument("--template", default="generic",
                     help="industry template name or path (default: %(default)s)")
    fit.add_argument("--tenant-config", type=Path, default=None,
                     help="tenant YAML (template + overrides); takes precedence over --template")
    fit.add_argument("--lift-tests", type=Path, default=None,
                     help="lift tests (CSV or YAML: channel, start, end, lift, se, name) that "
                          "calibrate the fit; those outside the data's weeks are noted, not used")
    add_model_options(fit)
    fit.add_argument("--no-progress", action="store_true", help="hide the sampling progress bar")
    fit.add_argument("--no-report", action="store_true", help="skip the markdown/PNG report")
    fit.add_argument("--out", type=Path, required=True, help="output folder for the run")
    fit.set_defaults(handler=fit_command)

    val = commands.add_parser("validate", help="validate a fit: checks, refits, trust score")
    val.add_argument("run_dir", type=Path, help="a fit folder (liftos fit --out, or fits/<key>)")
    val.add_argument("--holdout-weeks", type=int, default=8,
                     help="weeks held out for the forecast check (default: %(default)s)")
    val.add_argument("--no-placebo", action="store_true", help="skip the placebo-channel refit")
    val.add_argument("--no-refutations", action="store_true",
                     help="skip time-shuffle, shifted windows, simulated twin, confounding")
    val.add_argument("--recovery-replicas", type=int, default=20,
                     help="refits on known truths drawn on this spend (0: skip; default: "
                          "%(default)s)")
    val.add_argument("--lift-tests", type=Path, default=None,
                     help="lift tests (CSV or YAML: channel, start, end, lift, se, name): compares the "
                          "fit's 94%% interval of each channel's contribution over the test "
                          "window with the measured lift; it does not calibrate the fit")
    val.add_argument("--folds", type=int, default=0,
                     help="rolling-origin backtest folds (horizon = --holdout-weeks)")
    val.add_argument("--draws", type=int, default=500,
                     help="draws (and tuning steps) of each validation refit (default: "
                          "%(default)s)")
    val.set_defaults(handler=validate_command)

    sim = commands.add_parser("simulate", help="simulate data with a known truth")
    sim.add_argument("--template", default="ecommerce",
                     help="template whose channels and priors drive the simulation "
                          "(default: %(default)s)")
    sim.add_argument("--weeks", type=int, default=156, help="weeks of data (default: %(default)s)")
    sim.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    sim.add_argument("--geos", type=int, default=1,
                     help="geos (more than 1 writes a long table with a geo column)")
    sim.add_argument("--channels", default="", help="subset of the template's channels")
    sim.add_argument("--out", type=Path, required=True,
                     help="folder for data.csv and truth.json")
    sim.set_defaults(handler=simulate_command)

    commands.add_parser("templates", help="list industry templates").set_defaults(
        handler=templates_command)


def fit_command(args: argparse.Namespace) -> int:
    from liftos.data import parse_list
    from liftos.fitting import FitRequest, fit_and_save

    request = FitRequest(
        data=args.data, date_column=args.date_column, target=args.target,
        channels=parse_list(args.channels), controls=parse_list(args.controls),
        geo_column=args.geo_column, template=args.template, tenant_config=args.tenant_config,
        lift_tests=args.lift_tests,
        options=model_options(args, FitOptions, progress=not args.no_progress))
    if not request.channels:
        raise LiftOSError("--channels needs at least one spend column")
    print(f"fitting {len(request.channels)} channel(s) from {args.data} ...", file=sys.stderr)
    result = fit_and_save(request, args.out, report=not args.no_report)
    for note in result.panel.notes:
        print(f"note: {note}", file=sys.stderr)
    print_summary(result.summary(), args.out)
    return 0


def print_summary(summary: dict, out: Path) -> None:
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


def validate_command(args: argparse.Namespace) -> int:
    from liftos.validation.lift import read_lift_tests
    from liftos.validation.recovery import RecoveryOptions
    from liftos.validation.runner import ValidationOptions, validate

    if not (args.run_dir / "posterior.nc").exists():
        raise LiftOSError(f"{args.run_dir}: not a fit folder (no posterior.nc)")
    tests = [] if args.lift_tests is None else read_lift_tests(args.lift_tests)
    options = ValidationOptions(holdout_weeks=args.holdout_weeks, placebo=not args.no_placebo,
                                refutations=not args.no_refutations,
                                backtest_folds=args.folds, draws=args.draws, tune=args.draws,
                                recovery=RecoveryOptions(replicas=args.recovery_replicas))
    result = validate(args.run_dir, options, tests)
    for check in result.checks:
        value = "" if check.value is None else f"{check.value:.4g}"
        print(f"{'ok ' if check.passed else 'NO '} {check.group:<13}{check.name:<52}{value:>10}"
              f"  ({check.threshold}) {check.detail}")
    print(f"trust score {result.trust.score:.1f} / 100: "
          + ", ".join(f"{g} {v:.0f}" for g, v in result.trust.components.items()))
    if tests:
        print(f"lift tests: {len(tests)} compared with the fit's intervals (the fit itself is "
              "not calibrated by them)")
    print(f"validation: {args.run_dir / 'validation.json'}")
    return 0


def simulate_command(args: argparse.Namespace) -> int:
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


def templates_command(args: argparse.Namespace) -> int:
    from liftos.config import available_templates, load_template

    for name in available_templates():
        template = load_template(name)
        print(f"{name:<12} KPI {template.kpi.name:<12} channels: {', '.join(template.channels)}")
    return 0

"""The ``liftos`` command line. Heavy libraries are imported only by the commands that need them."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from liftos.errors import LiftOSError, redact


def main(argv: list[str] | None = None) -> int:
    # The embedded Prefect server sends no telemetry unless asked (it also contends for SQLite).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # the run's own logs (tracebacks included) are in the Prefect UI
        logging.getLogger().handlers[0].addFilter(_quiet)
    try:
        return args.handler(args)
    except LiftOSError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2


def _quiet(record: logging.LogRecord) -> bool:
    """Without -v: LiftOS's own warnings, and other libraries' only when critical (Prefect and
    Dask chatter, and the failed run's traceback, which the one-line error replaces)."""
    return record.name.startswith("liftos") or record.levelno >= logging.CRITICAL


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

    run = commands.add_parser("run", help="run the mmm-refresh Prefect flow for a tenant")
    _tenant_arguments(run)
    run.add_argument("--template", default=None, help="template overriding the tenant file's")
    _sampler_arguments(run)
    run.add_argument("--dask-address", default=None, help="an existing Dask scheduler")
    run.add_argument("--refresh", action="store_true", help="recompute cached stages")
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="the main job: mmm-refresh on the bundled demo tenant")
    _sampler_arguments(demo)
    demo.set_defaults(handler=_demo, tenant="demo", template=None, data=None,
                      dask_address=None, refresh=False)

    mon = commands.add_parser("monitor", help="check the newest week against the model in service")
    mon.add_argument("--tenant", action="append", default=None,
                     help="tenant name (repeatable; default: every tenant with a model)")
    mon.add_argument("--data", default=None, help="data file or folder overriding the tenant's")
    mon.set_defaults(handler=_monitor)

    ingest = commands.add_parser("ingest", help="load spend and outcomes into canonical tables")
    sources = ingest.add_subparsers(dest="source", required=True)
    files = sources.add_parser("files", help="CSV/Parquet uploads (media or outcome)")
    files.add_argument("paths", type=Path, nargs="+")
    files.add_argument("--tenant", required=True)
    files.add_argument("--kind", choices=["media", "outcome"], default="media")
    files.add_argument("--currency", default="USD")
    _window_arguments(files, required=False)
    files.set_defaults(handler=_ingest_files)
    for name, module, flag, helptext in (
            ("google-ads", "google_ads", "--endpoint", "API host:port (e.g. a local fake)"),
            ("klaviyo", "klaviyo", "--base-url", "API base URL (e.g. a local fake)")):
        api = sources.add_parser(name, help=f"{name} through its SDK, incremental")
        api.add_argument("--tenant", required=True)
        _window_arguments(api, required=False)
        api.add_argument(flag, default=None, help=helptext)
        api.add_argument("--credentials", default=None,
                         help="saved credentials block name (default: the tenant's, else the "
                              "environment)")
        api.set_defaults(handler=_ingest_api, module=module, kind=name)
    blocks = commands.add_parser("blocks", help="Prefect blocks: credentials, Chroma server")
    block_commands = blocks.add_subparsers(dest="block_command", required=True)
    block_commands.add_parser("register", help="register LiftOS block types with Prefect"
                              ).set_defaults(handler=_blocks_register)
    save = block_commands.add_parser("save", help="save credentials from the environment")
    save.add_argument("kind", choices=["google-ads", "klaviyo"])
    save.add_argument("--name", required=True)
    save.add_argument("--overwrite", action="store_true")
    save.set_defaults(handler=_blocks_save)
    rebuild = commands.add_parser("rebuild", help="rebuild curated tables from raw landing")
    rebuild.add_argument("--tenant", required=True)
    rebuild.set_defaults(handler=_rebuild)

    val = commands.add_parser("validate", help="validate a fit: checks, refits, trust score")
    val.add_argument("run_dir", type=Path, help="a fit folder (liftos fit --out, or fits/<key>)")
    val.add_argument("--holdout-weeks", type=int, default=8)
    val.add_argument("--no-placebo", action="store_true")
    val.add_argument("--no-refutations", action="store_true",
                     help="skip time-shuffle, shifted windows, simulated twin, confounding")
    val.add_argument("--lift-tests", type=Path, default=None,
                     help="YAML list of {channel, start, end, lift, se, name}: compares the "
                          "fit's 94%% interval of each channel's contribution over the test "
                          "window with the measured lift; it does not calibrate the fit")
    val.add_argument("--folds", type=int, default=0,
                     help="rolling-origin backtest folds (horizon = --holdout-weeks)")
    val.add_argument("--draws", type=int, default=500, help="draws of each validation refit")
    val.set_defaults(handler=_validate)

    memory = commands.add_parser("memory", help="search, export, import or prune what LiftOS remembers")
    memory_commands = memory.add_subparsers(dest="memory_command", required=True)
    search = memory_commands.add_parser("search", help="memories ranked by meaning")
    search.add_argument("query")
    search.add_argument("--tenant", required=True)
    search.add_argument("--channel", default=None)
    search.add_argument("--kind", default=None, help="insight, anomaly, validation, decision, situation")
    search.add_argument("--since", default=None, help="only memories about weeks from YYYY-MM-DD")
    search.add_argument("-k", type=_count(1, 1000), default=5, help="how many results (1-1000)")
    search.set_defaults(handler=_memory_search)
    similar = memory_commands.add_parser(
        "similar", help="past situations most like the latest run, and what followed them")
    similar.add_argument("--tenant", required=True)
    similar.add_argument("-k", type=_count(1, 1000), default=3,
                         help="how many past situations (1-1000)")
    similar.set_defaults(handler=_memory_similar)
    export = memory_commands.add_parser("export", help="write a tenant's memories as JSONL")
    export.add_argument("--tenant", required=True)
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(handler=_memory_export)
    restore = memory_commands.add_parser(
        "import", help="restore a tenant's memories from its JSONL export (nothing is written "
                       "unless every record belongs to that tenant and is whole)")
    restore.add_argument("file", type=Path, help="a file written by 'liftos memory export'")
    restore.add_argument("--tenant", required=True, help="the tenant to restore into")
    restore.set_defaults(handler=_memory_import)
    prune = memory_commands.add_parser("prune", help="retention: forget old memories")
    prune.add_argument("--tenant", required=True)
    prune.add_argument("--older-than-days", type=_count(0), required=True,
                       help="forget memories created more than this many days ago (>= 0)")
    prune.set_defaults(handler=_memory_prune)

    deploy = commands.add_parser("deploy", help="create the work pool, deployments and automations")
    deploy.set_defaults(handler=_deploy)

    serve = commands.add_parser("serve", help="serve the deployments with their schedules (dev)")
    serve.set_defaults(handler=_serve)
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


def _tenant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, help="tenant name (tenants/NAME.yaml) or file")
    parser.add_argument("--data", default=None, help="data file or folder overriding the tenant's")


def _sampler_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sampler", choices=["nutpie", "pymc"], default="nutpie")


def _count(low: int, high: int | None = None):
    """An argparse type: a whole number in ``low..high``, refused with a one-line message."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {value}")
        return value
    return parse


def _run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from flows.embedded import embedded_api
    from flows.refresh import mmm_refresh
    from liftos.refresh import ModelOptions

    try:
        options = ModelOptions(draws=args.draws, tune=args.tune, chains=args.chains,
                               seed=args.seed, sampler=args.sampler)
    except ValidationError as exc:
        raise LiftOSError(f"invalid sampler options: {exc.errors()[0]['loc'][0]} "
                          f"{exc.errors()[0]['msg']}") from None
    print(f"running mmm-refresh for tenant '{args.tenant}' (fit, then validation refits) ...",
          file=sys.stderr)
    with embedded_api():
        state = mmm_refresh(tenant=args.tenant, template=args.template, data=args.data,
                            options=options, dask_address=args.dask_address,
                            refresh=args.refresh, return_state=True)
    if not state.is_completed():
        print(f"error: run {state.name}: {state.message}", file=sys.stderr)
        return 1
    summary = state.result()
    fit_dir = Path(summary.fit_dir)
    _print_summary(json.loads((fit_dir / "summary.json").read_text()), fit_dir)
    if summary.trust_score is not None:
        verdict = ("now the model in service" if summary.promoted
                   else "not promoted: " + "; ".join(summary.decision))
        print(f"trust score {summary.trust_score:.1f} / 100 ({fit_dir / 'validation.json'}): "
              f"{verdict}")
    for shift in summary.shifted:
        print(f"ROAS shifted: {shift.channel} {shift.roas_mean:.3g} outside the previous "
              f"[{shift.previous_low:.3g}, {shift.previous_high:.3g}]")
    return 0


def _demo(args: argparse.Namespace) -> int:
    code = _run(args)
    if code == 0:
        print("\nSee the run (artifacts: ROAS table, report, sampling progress; events) in the "
              "Prefect UI:\n  .venv/bin/prefect server start   # then open http://127.0.0.1:4200")
    return code


def _monitor(args: argparse.Namespace) -> int:
    from flows.embedded import embedded_api
    from flows.monitor import monitor

    with embedded_api():
        checks = monitor(tenants=args.tenant, data=args.data)
    for check in checks:
        verdict = ", ".join(check.anomalies) or "no anomaly"
        print(f"{check.tenant} week {check.week}: KPI {check.kpi_actual:,.0f}, expected "
              f"{check.kpi_expected:,.0f} [{check.kpi_low:,.0f}, {check.kpi_high:,.0f}] "
              f"({'in' if check.in_sample else 'out of'} sample): {verdict}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from flows.deploy import create_automations, deploy_all, deployments, ensure_work_pool

    pool = ensure_work_pool()
    print(f"work pool: {pool}")
    from tasks.ingest import ensure_limits

    print("concurrency limits created: " + (", ".join(ensure_limits()) or "none missing"))
    deploy_all()
    print("deployments: " + ", ".join(d["name"] for d in deployments()))
    print("automations: " + ", ".join(create_automations()))
    print(f"start a worker: .venv/bin/prefect worker start --pool {pool}")
    return 0


def _window_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    from datetime import date

    parser.add_argument("--since", type=date.fromisoformat, required=required,
                        help="first day (YYYY-MM-DD); default: resume from the bookmarks")
    parser.add_argument("--until", type=date.fromisoformat, default=None,
                        help="last day (YYYY-MM-DD); default: yesterday in the account's zone")


def _ingest_files(args: argparse.Namespace) -> int:
    from liftos.home import DataHome
    from liftos.ingest.curate import Curator, IngestCounts
    from liftos.ingest.files import ingest_file
    from liftos.ingest.quality import Checker
    from liftos.tenants import load_tenant_config

    tenant = load_tenant_config(args.tenant)
    home = DataHome()
    curator = Curator(tenant.name, home, _run_label("files"), Checker(tenant.sources.quality))
    total = IngestCounts()
    for path in args.paths:
        counts = ingest_file(path, tenant.name, tenant.template, args.kind, home,
                             currency=args.currency, since=args.since, until=args.until,
                             curator=curator)
        total = total.add(counts)
        _print_counts(str(path), counts)
    _print_counts("total", total)
    _print_findings(curator.reports)
    _print_panel(tenant, home)
    return 0


def _ingest_api(args: argparse.Namespace) -> int:
    import importlib

    from blocks.credentials import load_credentials
    from liftos.home import DataHome
    from liftos.ingest.curate import Curator
    from liftos.ingest.quality import Checker
    from liftos.tenants import load_tenant_config

    tenant = load_tenant_config(args.tenant)
    settings = getattr(tenant.sources, args.module)
    if settings is None:
        raise LiftOSError(f"tenant {tenant.name}: no 'sources.{args.module}' in "
                          f"{tenant.config_source}")
    endpoint = {"endpoint": getattr(args, "endpoint", None),
                "base_url": getattr(args, "base_url", None)}
    credentials = load_credentials(args.kind, args.credentials or settings.credentials,
                                   {k: v for k, v in endpoint.items() if v})
    home = DataHome()
    curator = Curator(tenant.name, home, _run_label(args.module), Checker(tenant.sources.quality))
    module = importlib.import_module(f"liftos.ingest.{args.module}")
    result = module.sync(credentials, tenant.name, tenant.template, settings, since=args.since,
                         until=args.until, home=home, curator=curator,
                         progress=lambda line: print(line, flush=True))
    print(result.line() + f" in {result.seconds:.1f} s")
    for drift in result.drift:
        print(f"schema drift (load continued): {drift.describe()}")
    _print_findings(curator.reports)
    _print_panel(tenant, home)
    return 0


def _print_findings(reports: list[dict]) -> None:
    for report in reports:
        for finding in report["findings"]:
            print(f"  {report['batch']}: {finding['expectation']} [{finding['severity']}] "
                  f"{finding['failed']} row(s): {finding['description']}")


def _print_panel(tenant, home) -> None:
    from liftos.ingest.curate import curated_path
    from liftos.ingest.files import weekly_panel

    if all(curated_path(home, tenant.name, t).exists() for t in ("media_daily", "outcome_daily")):
        print(f"weekly panel: {weekly_panel(tenant.name, tenant.template, home)}")


def _run_label(source: str) -> str:
    from datetime import datetime

    return f"{source}-{datetime.now():%Y%m%dT%H%M%S}"


def _blocks_register(args: argparse.Namespace) -> int:
    from blocks.credentials import register

    print("registered block types: " + ", ".join(register()))
    return 0


def _blocks_save(args: argparse.Namespace) -> int:
    from blocks.credentials import from_env

    block = from_env(args.kind)
    block.save(args.name, overwrite=args.overwrite)
    print(f"saved {block._block_type_name} block '{args.name}' (secret fields encrypted)")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from liftos.ingest.rebuild import rebuild
    from liftos.tenants import load_tenant_config

    tenant = load_tenant_config(args.tenant)
    result = rebuild(tenant.name, tenant.template, rules=tenant.sources.quality)
    print(f"rebuilt from raw: {result.describe()}")
    return 1 if result.broken else 0


def _print_counts(label: str, counts) -> None:
    print(f"{label}: {counts.describe()}")


def _validate(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    from liftos.validation.lift import LiftTest
    from liftos.validation.runner import ValidationOptions, validate

    if not (args.run_dir / "posterior.nc").exists():
        raise LiftOSError(f"{args.run_dir}: not a fit folder (no posterior.nc)")
    tests = []
    if args.lift_tests is not None:
        try:
            tests = [LiftTest(**row) for row in yaml.safe_load(args.lift_tests.read_text())]
        except (OSError, TypeError, ValidationError, yaml.YAMLError) as exc:
            raise LiftOSError(f"{args.lift_tests}: invalid lift tests: {exc}") from None
    options = ValidationOptions(holdout_weeks=args.holdout_weeks, placebo=not args.no_placebo,
                                refutations=not args.no_refutations,
                                backtest_folds=args.folds, draws=args.draws, tune=args.draws)
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


def _memory_search(args: argparse.Namespace) -> int:
    from datetime import date

    from liftos.memory.store import MemoryStore

    try:
        since = date.fromisoformat(args.since) if args.since else None
    except ValueError:
        raise LiftOSError(f"--since must be a date YYYY-MM-DD, got {args.since!r}") from None
    hits = MemoryStore().search(args.tenant, args.query, k=args.k, channel=args.channel,
                                kind=args.kind, since=since)
    if not hits:
        print(f"no memories for tenant '{args.tenant}' match")
    for hit in hits:
        m = hit.memory
        print(f"{hit.rank}. [{hit.score:.2f}] {m.kind}{' / ' + m.channel if m.channel else ''}, "
              f"weeks to {m.date_end or '?'}: {m.text}")
        if m.run_url or m.run_id:
            print(f"   run: {m.run_url or m.run_id}")
    return 0


def _memory_similar(args: argparse.Namespace) -> int:
    from liftos.memory.situations import latest_situation, similar_situations
    from liftos.memory.store import MemoryStore

    store = MemoryStore()
    current = latest_situation(store, args.tenant)
    print(f"now (weeks to {current.date_end}): {current.text}")
    precedents = similar_situations(store, args.tenant, current, k=args.k)
    if not precedents:
        print("no earlier situation remembered yet")
    for p in precedents:
        past, after = p.past.memory, p.followed_by
        print(f"{p.past.rank}. [{p.past.score:.2f}] weeks to {past.date_end}: {past.text}")
        print(f"   then: {after.text if after else '(nothing remembered after it yet)'}")
    return 0


def _memory_export(args: argparse.Namespace) -> int:
    from liftos.memory.store import MemoryStore

    print(f"exported {MemoryStore().export(args.tenant, args.out)} memories to {args.out}")
    return 0


def _memory_import(args: argparse.Namespace) -> int:
    from liftos.memory.store import MemoryStore

    if not args.file.exists():
        raise LiftOSError(f"{args.file}: file not found")
    count = MemoryStore().import_(args.file, args.tenant)
    print(f"imported {count} memories of '{args.tenant}' from {args.file}")
    return 0


def _memory_prune(args: argparse.Namespace) -> int:
    from liftos.memory.store import MemoryStore

    removed = MemoryStore().prune(args.tenant, args.older_than_days)
    print(f"forgot {removed} memories older than {args.older_than_days} days")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from flows.deploy import serve_all

    serve_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ingestion commands: ``ingest files|google-ads|klaviyo`` and ``rebuild``."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from liftos_app.cli.options import add_tenant, add_window


def register(commands: argparse._SubParsersAction) -> None:
    ingest = commands.add_parser("ingest", help="load spend and outcomes into canonical tables")
    sources = ingest.add_subparsers(dest="source", required=True)
    files = sources.add_parser("files", help="CSV/Parquet uploads (media or outcome)")
    files.add_argument("paths", type=Path, nargs="+", help="CSV or Parquet files")
    add_tenant(files)
    files.add_argument("--kind", choices=["media", "outcome"], default="media",
                       help="spend by campaign and day, or the KPI by day (default: %(default)s)")
    files.add_argument("--currency", default="USD",
                       help="currency of spend columns without one (default: %(default)s)")
    add_window(files)
    files.set_defaults(handler=ingest_files_command)
    for name, source, flag, helptext in (
            ("google-ads", "google_ads", "--endpoint", "API host:port (e.g. a local fake)"),
            ("klaviyo", "klaviyo", "--base-url", "API base URL (e.g. a local fake)")):
        api = sources.add_parser(name, help=f"{name} through its SDK, incremental")
        add_tenant(api)
        add_window(api)
        api.add_argument(flag, default=None, help=helptext)
        api.add_argument("--credentials", default=None,
                         help="saved credentials block name (default: the tenant's, else the "
                              "environment)")
        api.set_defaults(handler=ingest_api_command, source_key=source, kind=name)

    rebuild = commands.add_parser("rebuild", help="rebuild curated tables from raw landing")
    add_tenant(rebuild)
    rebuild.set_defaults(handler=rebuild_command)


def ingest_files_command(args: argparse.Namespace) -> int:
    from liftos.home import DataHome
    from liftos.ingest.curate import IngestCounts
    from liftos.ingest.files import ingest_file
    from liftos.ingest.sources import curator
    from liftos.tenancy import load_tenant

    tenant = load_tenant(args.tenant)
    home = DataHome()
    store = curator(tenant, home, run_label("files"))
    total = IngestCounts()
    for path in args.paths:
        counts = ingest_file(path, tenant.name, tenant.template, args.kind, home,
                             currency=args.currency, since=args.since, until=args.until,
                             curator=store)
        total = total.add(counts)
        print(f"{path}: {counts.describe()}")
    print(f"total: {total.describe()}")
    print_outcome(store.reports, tenant, home)
    return 0


def ingest_api_command(args: argparse.Namespace) -> int:
    from liftos.home import DataHome
    from liftos.ingest.sources import ENDPOINT_FIELD, curator, ingest_source, source_settings
    from liftos.tenancy import load_tenant
    from liftos_app.blocks.credentials import load_credentials

    tenant = load_tenant(args.tenant)
    settings = source_settings(tenant, args.source_key)
    field = ENDPOINT_FIELD[args.source_key]
    override = getattr(args, field, None)
    credentials = load_credentials(args.kind, args.credentials or settings.credentials,
                                   {field: override} if override else {})
    home = DataHome()
    store = curator(tenant, home, run_label(args.source_key))
    result = ingest_source(tenant, args.source_key, credentials, store, since=args.since,
                           until=args.until, progress=lambda line: print(line, flush=True))
    print(result.line() + f" in {result.seconds:.1f} s")
    for drift in result.drift:
        print(f"schema drift (load continued): {drift.describe()}")
    print_outcome(store.reports, tenant, home)
    return 0


def rebuild_command(args: argparse.Namespace) -> int:
    from liftos.ingest.rebuild import rebuild
    from liftos.tenancy import load_tenant

    tenant = load_tenant(args.tenant)
    result = rebuild(tenant.name, tenant.template, rules=tenant.sources.quality)
    print(f"rebuilt from raw: {result.describe()}")
    return 1 if result.broken else 0


def print_outcome(reports: list[dict], tenant, home) -> None:
    """The quality findings of the batches stored, then the weekly panel they now give."""
    print_findings(reports)
    print_panel(tenant, home)


def print_findings(reports: list[dict]) -> None:
    for report in reports:
        for finding in report["findings"]:
            print(f"  {report['batch']}: {finding['expectation']} [{finding['severity']}] "
                  f"{finding['failed']} row(s): {finding['description']}")


def print_panel(tenant, home) -> None:
    from liftos.ingest.curate import curated_path
    from liftos.ingest.files import weekly_panel

    if all(curated_path(home, tenant.name, t).exists() for t in ("media_daily", "outcome_daily")):
        print(f"weekly panel: {weekly_panel(tenant.name, tenant.template, home)}")


def run_label(source: str) -> str:
    return f"{source}-{datetime.now():%Y%m%dT%H%M%S}"

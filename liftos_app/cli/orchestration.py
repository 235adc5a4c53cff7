"""Orchestration commands: ``run``, ``demo``, ``monitor``, ``deploy``, ``serve``, ``blocks``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from liftos.validation.recovery import RecoveryOptions
from liftos_app.cli.model import print_summary
from liftos_app.cli.options import add_model_options, add_tenant, model_options


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the mmm-refresh Prefect flow for a tenant")
    add_tenant(run, data=True)
    run.add_argument("--template", default=None, help="template overriding the tenant file's")
    add_model_options(run)
    run.add_argument("--dask-address", default=None,
                     help="an existing Dask scheduler (default: the configured one, else a "
                          "local cluster)")
    run.add_argument("--refresh", action="store_true",
                     help="recompute stages whose inputs did not change (default: reuse them)")
    add_recovery_option(run)
    run.set_defaults(handler=run_command)

    server = commands.add_parser(
        "server", help="the production Prefect server on PostgreSQL: create its database, "
                       "start it")
    server.add_argument("action", choices=["database", "start"],
                        help="database: create it if missing; start: that, then run the server")
    server.add_argument("--url", default=None,
                        help="postgresql+asyncpg://USER[:PASSWORD]@HOST:PORT/DATABASE (default: "
                             "$PREFECT_SERVER_DATABASE_CONNECTION_URL, else a liftos_prefect "
                             "database on 127.0.0.1:5432)")
    server.add_argument("--host", default="127.0.0.1", help="address to serve on")
    server.add_argument("--port", type=int, default=4200, help="port (default: %(default)s)")
    server.set_defaults(handler=server_command)

    demo = commands.add_parser("demo", help="the main job: mmm-refresh on the bundled demo tenant")
    add_model_options(demo)
    add_recovery_option(demo)
    demo.set_defaults(handler=demo_command, tenant="demo", template=None, data=None,
                      dask_address=None, refresh=False)

    mon = commands.add_parser("monitor", help="check the newest week against the champion")
    mon.add_argument("--tenant", action="append", default=None,
                     help="tenant name (repeatable; default: every tenant with a champion)")
    mon.add_argument("--data", default=None, help="data file or folder overriding the tenant's")
    mon.set_defaults(handler=monitor_command)

    commands.add_parser("deploy", help="create the work pool, limits, deployments and "
                                       "automations (needs PREFECT_API_URL)").set_defaults(
        handler=deploy_command)
    commands.add_parser("serve", help="serve the deployments with their schedules from this "
                                      "process (development)").set_defaults(handler=serve_command)

    blocks = commands.add_parser("blocks", help="Prefect blocks: credentials, Chroma server")
    sub = blocks.add_subparsers(dest="block_command", required=True)
    sub.add_parser("register", help="register LiftOS block types with Prefect").set_defaults(
        handler=blocks_register_command)
    save = sub.add_parser("save", help="save credentials from the environment "
                                       "(GOOGLE_ADS_* or KLAVIYO_API_KEY)")
    save.add_argument("kind", choices=["google-ads", "klaviyo", "openai"], help="which API")
    save.add_argument("--name", required=True, help="the block's name")
    save.add_argument("--overwrite", action="store_true", help="replace a block of that name")
    save.set_defaults(handler=blocks_save_command)


def add_recovery_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recovery-replicas", type=int, default=RecoveryOptions().replicas,
                        help="known truths refitted on this spend by the recovery check "
                             "(default: %(default)s; 0 skips it, and its part of the trust score)")


def run_command(args: argparse.Namespace) -> int:
    resolvable(args.tenant, args.template, args.data)
    from liftos.validation.runner import ValidationOptions
    from liftos_app.flows.embedded import embedded_api
    from liftos_app.flows.refresh import mmm_refresh

    options = model_options(args)
    validation = ValidationOptions(recovery=RecoveryOptions(replicas=args.recovery_replicas))
    print(f"running mmm-refresh for tenant '{args.tenant}' (fit, then validation refits) ...",
          file=sys.stderr)
    with embedded_api():
        state = mmm_refresh(tenant=args.tenant, template=args.template, data=args.data,
                            options=options, validation=validation,
                            dask_address=args.dask_address,
                            refresh=args.refresh, return_state=True)
    if not state.is_completed():
        print(f"error: run {state.name}: {state.message}", file=sys.stderr)
        return 1
    summary = state.result()
    fit_dir = Path(summary.fit_dir)
    print_summary(json.loads((fit_dir / "summary.json").read_text()), fit_dir)
    if summary.trust_score is not None:
        verdict = ("now the champion" if summary.promoted
                   else "not promoted: " + "; ".join(summary.decision))
        print(f"trust score {summary.trust_score:.1f} / 100 ({fit_dir / 'validation.json'}): "
              f"{verdict}")
        print_recovery(json.loads((fit_dir / "validation.json").read_text()).get("recovery"))
    for shift in summary.shifted:
        print(f"ROAS shifted: {shift.channel} {shift.roas_mean:.3g} outside the champion's "
              f"[{shift.champion_low:.3g}, {shift.champion_high:.3g}]")
    if (fit_dir / "brief.md").exists():
        print(f"\nThe brief ({fit_dir / 'brief.md'}):\n\n{(fit_dir / 'brief.md').read_text()}")
    return 0


def resolvable(tenant: str, template: str | None = None, data: str | None = None) -> None:
    """Resolve the tenant before a run starts: an unknown tenant or a broken tenant file is
    one line at once, not after the local Prefect API has started (seconds; tens on a new
    PREFECT_HOME). The run resolves it again, from the same files."""
    from liftos.tenancy import load_tenant

    load_tenant(tenant, template=template, data=data)


def print_recovery(recovery: dict | None) -> None:
    """What the recovery check found: a channel this spend cannot recover is said so, with
    why, next to the number the fit gave it."""
    if not recovery:
        return
    reported = ("no channel recoverable" if recovery["reported_coverage"] is None else
                f"{recovery['reported_coverage']:.0%} inside the 94% interval, median ROAS "
                f"error {recovery['reported_median_error']:.0%}")
    print(f"recovery on {recovery['replicas']} known truths on this spend: {reported}")
    for channel in recovery["channels"]:
        if not channel["recoverable"]:
            print(f"  {channel['channel']}: not recoverable on this spend: {channel['reason']}")


def server_command(args: argparse.Namespace) -> int:
    import os

    from liftos_app.flows.server import DEFAULT_URL, URL_ENV, ensure_database, server_command, shown

    url = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    created = ensure_database(url)
    print(f"database {shown(url)}: {'created' if created else 'exists'}", flush=True)
    if args.action == "database":
        print(f"start the server with {URL_ENV}={shown(url)} (the password as you set it), or "
              "`liftos server start`; it applies its migrations when it starts")
        return 0
    command, env = server_command(url, args.host, args.port)
    print(f"starting the Prefect server on http://{args.host}:{args.port}/api", flush=True)
    os.execve(command[0], command, env)
    return 0  # not reached: the server replaces this process


def demo_command(args: argparse.Namespace) -> int:
    code = run_command(args)
    if code == 0:
        print("\nSee the run (artifacts: ROAS table, report, sampling progress; events) in the "
              "Prefect UI:\n  prefect server start   # then open http://127.0.0.1:4200")
    return code


def monitor_command(args: argparse.Namespace) -> int:
    for tenant in args.tenant or []:
        resolvable(tenant, data=args.data)
    from liftos_app.flows.embedded import embedded_api
    from liftos_app.flows.monitor import monitor

    with embedded_api():
        checks = monitor(tenants=args.tenant, data=args.data)
    for check in checks:
        verdict = ", ".join(check.anomalies) or "no anomaly"
        print(f"{check.tenant} week {check.week}: KPI {check.kpi_actual:,.0f}, expected "
              f"{check.kpi_expected:,.0f} [{check.kpi_low:,.0f}, {check.kpi_high:,.0f}] "
              f"({'in' if check.in_sample else 'out of'} sample): {verdict}")
    return 0


def deploy_command(args: argparse.Namespace) -> int:
    from liftos_app.flows.deploy import (
        create_automations,
        deploy_all,
        deployments,
        ensure_work_pool,
    )
    from liftos_app.flows.server import check_api
    from liftos_app.tasks.ingest import ensure_limits

    check_api()
    pool = ensure_work_pool()
    print(f"work pool: {pool}")
    print("concurrency limits created: " + (", ".join(ensure_limits()) or "none missing"))
    deploy_all()
    print("deployments: " + ", ".join(d["name"] for d in deployments()))
    print("automations: " + ", ".join(create_automations()))
    print(f"start a worker: prefect worker start --pool {pool}")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    from liftos_app.flows.deploy import serve_all

    serve_all()
    return 0


def blocks_register_command(args: argparse.Namespace) -> int:
    from liftos_app.blocks.credentials import register

    print("registered block types: " + ", ".join(register()))
    return 0


def blocks_save_command(args: argparse.Namespace) -> int:
    from liftos_app.blocks import openai
    from liftos_app.blocks.credentials import from_env

    block = openai.from_env() if args.kind == "openai" else from_env(args.kind)
    block.save(args.name, overwrite=args.overwrite)
    print(f"saved {block._block_type_name} block '{args.name}' (secret fields encrypted)")
    return 0

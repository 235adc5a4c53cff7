"""The ``liftos`` command line, one module per command group. Heavy libraries (PyMC, Prefect,
Chroma) are imported only by the commands that need them."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from liftos.errors import LiftOSError, redact
from liftos_app.cli import (
    brief,
    cluster,
    hub,
    ingest,
    memory,
    model,
    orchestration,
    planning,
    signals,
)

GROUPS = (model, ingest, memory, planning, orchestration, cluster, brief, hub, signals)
DESCRIPTION = ("LiftOS: causal marketing intelligence. Fit and validate Bayesian marketing-mix "
               "models, ingest ad platforms, run the Prefect refresh, remember what was learned.")


def main(argv: list[str] | None = None) -> int:
    # The embedded Prefect server sends no telemetry unless asked (it also contends for SQLite).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # the run's own logs (tracebacks included) are in the Prefect UI
        logging.getLogger().handlers[0].addFilter(quiet)
    try:
        return args.handler(args)
    except LiftOSError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2


def quiet(record: logging.LogRecord) -> bool:
    """Without -v: LiftOS's own warnings, and other libraries' only when critical (Prefect and
    Dask chatter, and the failed run's traceback, which the one-line error replaces)."""
    return record.name.startswith("liftos") or record.levelno >= logging.CRITICAL


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="liftos", description=DESCRIPTION)
    root.add_argument("-v", "--verbose", action="store_true",
                      help="log progress details (Prefect, Dask and library messages)")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    return root

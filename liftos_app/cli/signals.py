"""``liftos sentiment ingest|index``: customer texts in, the weekly sentiment index out."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    sentiment = commands.add_parser(
        "sentiment", help="customer sentiment: ingest texts (CSV/Parquet), show the weekly index",
        description="liftos sentiment ingest FILE [FILE ...] --tenant T  |  liftos sentiment "
                    "index --tenant T [--by channel|campaign|source] [--weeks 12]")
    actions = sentiment.add_subparsers(dest="action", required=True, metavar="ACTION")
    ingest = actions.add_parser("ingest", help="land, check, score (VADER, English) and store")
    ingest.add_argument("files", nargs="+", help="CSV or Parquet: date, text [, source, "
                                                 "channel, campaign, language]")
    ingest.add_argument("--tenant", required=True, help="tenant name")
    ingest.set_defaults(handler=ingest_command)
    index = actions.add_parser("index", help="the weekly index with texts and standard error")
    index.add_argument("--tenant", required=True, help="tenant name")
    index.add_argument("--by", choices=["channel", "campaign", "source"], default=None,
                       help="one series per channel, campaign or source")
    index.add_argument("--weeks", type=int, default=12, help="newest weeks to show (default 12)")
    index.set_defaults(handler=index_command)


def ingest_command(args: argparse.Namespace) -> int:
    from liftos.signals.sentiment import detect_shift, ingest_texts, load_texts
    from liftos.tenancy import valid_tenant_name

    if not valid_tenant_name(args.tenant):
        from liftos.errors import LiftOSError

        raise LiftOSError(f"{args.tenant!r} is not a tenant name (lowercase letters, digits, "
                          "'-' or '_')")
    for path in args.files:
        print(f"{path}: {ingest_texts(path, args.tenant).describe()}")
    shift = detect_shift(load_texts(args.tenant))
    print(shift.describe() if shift else "no sentiment shift in the newest week")
    return 0


def index_command(args: argparse.Namespace) -> int:
    from liftos.signals.sentiment import load_texts, weekly_index

    index = weekly_index(load_texts(args.tenant), by=args.by)
    if index.is_empty():
        print(f"tenant '{args.tenant}' has no scored texts; run `liftos sentiment ingest`")
        return 0
    for row in index.tail(args.weeks if not args.by else args.weeks * 20).iter_rows(named=True):
        group = f" {row[args.by] or '(none)':<12}" if args.by else ""
        print(f"{row['week']}{group} index {row['index']:+.3f} ± {row['stderr']:.3f} "
              f"({row['texts']} texts, {row['scorer']})")
    return 0

"""``liftos sentiment ingest|index`` (customer texts in, the weekly index out) and ``liftos
visibility`` (the AI-answer prompt panel asked and measured)."""

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
    ingest.add_argument("--scorer", choices=["vader", "model"], default="vader",
                        help="vader (offline, English; default) or model (the OpenAI block or "
                             "OPENAI_API_KEY: every language, with the aspect)")
    ingest.set_defaults(handler=ingest_command)
    reviews = actions.add_parser("klaviyo", help="Klaviyo product reviews as texts (land, "
                                                 "check, score, store)")
    reviews.add_argument("--tenant", required=True, help="tenant name")
    reviews.add_argument("--since", required=True, help="first day (YYYY-MM-DD)")
    reviews.add_argument("--until", default=None, help="last day (default: yesterday)")
    reviews.add_argument("--base-url", default=None, help="API base URL (e.g. a local fake)")
    reviews.add_argument("--credentials", default=None,
                         help="a saved KlaviyoCredentials block (default: KLAVIYO_API_KEY)")
    reviews.add_argument("--scorer", choices=["vader", "model"], default="vader",
                         help="vader (offline, English; default) or model")
    reviews.set_defaults(handler=reviews_command)
    index = actions.add_parser("index", help="the weekly index with texts and standard error")
    index.add_argument("--tenant", required=True, help="tenant name")
    index.add_argument("--by", choices=["channel", "campaign", "source"], default=None,
                       help="one series per channel, campaign or source")
    index.add_argument("--weeks", type=int, default=12, help="newest weeks to show (default 12)")
    index.set_defaults(handler=index_command)
    visibility = commands.add_parser(
        "visibility", help="ask the tenant's AI-answer prompt panel and measure the brand's "
                           "visibility (needs OPENAI_API_KEY or LIFTOS_OPENAI_BLOCK)",
        description="liftos visibility --tenant T [--week YYYY-MM-DD]: every prompt of the "
                    "tenant's 'surfacing' panel asked once; mention rate, first-mention rank "
                    "and share of voice of the brand and each competitor.")
    visibility.add_argument("--tenant", required=True, help="tenant name")
    visibility.add_argument("--week", default=None, help="the week's Monday (default: this week)")
    visibility.set_defaults(handler=visibility_command)


def ingest_command(args: argparse.Namespace) -> int:
    from liftos.signals.sentiment import detect_shift, ingest_texts, load_texts
    from liftos.tenancy import valid_tenant_name

    if not valid_tenant_name(args.tenant):
        from liftos.errors import LiftOSError

        raise LiftOSError(f"{args.tenant!r} is not a tenant name (lowercase letters, digits, "
                          "'-' or '_')")
    model = _model() if args.scorer == "model" else None
    for path in args.files:
        print(f"{path}: {ingest_texts(path, args.tenant, model=model).describe()}")
    shift = detect_shift(load_texts(args.tenant))
    print(shift.describe() if shift else "no sentiment shift in the newest week")
    return 0


def reviews_command(args: argparse.Namespace) -> int:
    import datetime as dt

    from liftos.errors import LiftOSError
    from liftos.signals.sentiment import detect_shift, ingest_reviews, load_texts
    from liftos_app.blocks.credentials import load_credentials

    try:
        first = dt.date.fromisoformat(args.since)
        last = (dt.date.fromisoformat(args.until) if args.until
                else dt.date.today() - dt.timedelta(days=1))
    except ValueError:
        raise LiftOSError("--since/--until: expected YYYY-MM-DD") from None
    model = _model() if args.scorer == "model" else None
    credentials = load_credentials("klaviyo", args.credentials, {"base_url": args.base_url})
    counts = ingest_reviews(credentials, args.tenant, first, last, model=model)
    print(f"klaviyo reviews {first}..{last}: {counts.describe()}")
    shift = detect_shift(load_texts(args.tenant))
    print(shift.describe() if shift else "no sentiment shift in the newest week")
    return 0


def _model():
    from liftos.errors import LiftOSError
    from liftos_app.blocks.openai import llm_settings

    settings = llm_settings()
    if settings.api_key is None:
        raise LiftOSError("--scorer model needs a model: set OPENAI_API_KEY or "
                          "LIFTOS_OPENAI_BLOCK (nothing was ingested)")
    return settings


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


def visibility_command(args: argparse.Namespace) -> int:
    import datetime as dt

    from liftos.errors import LiftOSError
    from liftos.signals import visibility
    from liftos.tenancy import load_tenant
    from liftos_app.blocks.openai import llm_settings

    panel = visibility.panel_of(load_tenant(args.tenant))
    settings = llm_settings()
    if settings.api_key is None:
        print("no model configured (OPENAI_API_KEY or LIFTOS_OPENAI_BLOCK): nothing asked")
        return 0
    try:
        week = dt.date.fromisoformat(args.week) if args.week else visibility.monday()
    except ValueError:
        raise LiftOSError(f"--week {args.week!r}: expected YYYY-MM-DD") from None
    found = visibility.measure(visibility.ask(panel, settings, args.tenant, week), panel, week)
    visibility.record(found, args.tenant)
    print(found.describe())
    for brand in panel.competitors:
        rank = found.first_rank[brand]
        print(f"  {brand}: named in {found.mention_rate[brand]:.0%}, "
              f"{'never first' if rank is None else f'rank {rank:.1f}'}, "
              f"share of voice {found.share_of_voice[brand]:.0%}")
    shift = visibility.detect_shift(visibility.load_series(args.tenant), panel.brand)
    print(shift.describe() if shift else "no visibility shift this week")
    return 0

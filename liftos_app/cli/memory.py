"""Memory commands: ``memory search|similar|export|import|prune``."""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path

from liftos.errors import LiftOSError
from liftos_app.cli.options import count


def register(commands: argparse._SubParsersAction) -> None:
    memory = commands.add_parser("memory",
                                 help="search, export, import or prune what LiftOS remembers")
    sub = memory.add_subparsers(dest="memory_command", required=True)
    search = sub.add_parser("search", help="memories ranked by meaning")
    search.add_argument("query", help="a question or phrase, matched by meaning")
    _tenant(search)
    search.add_argument("--channel", default=None, help="only memories about this channel")
    search.add_argument("--kind", default=None,
                        help="only this kind: insight, anomaly, validation, decision, situation")
    search.add_argument("--since", default=None, help="only memories about weeks from YYYY-MM-DD")
    search.add_argument("-k", type=count(1, 1000), default=5, help="how many results (1-1000)")
    search.set_defaults(handler=search_command)

    similar = sub.add_parser(
        "similar", help="past situations most like the latest run, and what followed them")
    _tenant(similar)
    similar.add_argument("-k", type=count(1, 1000), default=3,
                         help="how many past situations (1-1000)")
    similar.set_defaults(handler=similar_command)

    export = sub.add_parser("export", help="write a tenant's memories as JSONL")
    _tenant(export)
    export.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    export.set_defaults(handler=export_command)

    restore = sub.add_parser(
        "import", help="restore a tenant's memories from its JSONL export (nothing is written "
                       "unless every record belongs to that tenant and is whole)")
    restore.add_argument("file", type=Path, help="a file written by 'liftos memory export'")
    restore.add_argument("--tenant", required=True, help="the tenant to restore into")
    restore.set_defaults(handler=import_command)

    prune = sub.add_parser("prune", help="retention: forget old memories")
    _tenant(prune)
    prune.add_argument("--older-than-days", type=count(0), required=True,
                       help="forget memories created more than this many days ago (>= 0)")
    prune.set_defaults(handler=prune_command)


def _tenant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, help="whose memories (tenant name)")


def _store():
    """The deployment's store; Prefect (seconds to import) only when a block is named."""
    if not os.environ.get("LIFTOS_CHROMA_BLOCK"):
        from liftos.memory.store import MemoryStore

        return MemoryStore()
    from liftos_app.blocks.chroma import memory_store

    return memory_store()


def search_command(args: argparse.Namespace) -> int:
    try:
        since = date.fromisoformat(args.since) if args.since else None
    except ValueError:
        raise LiftOSError(f"--since must be a date YYYY-MM-DD, got {args.since!r}") from None
    hits = _store().search(args.tenant, args.query, k=args.k, channel=args.channel,
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


def similar_command(args: argparse.Namespace) -> int:
    from liftos.memory.situations import latest_situation, similar_situations

    store = _store()
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


def export_command(args: argparse.Namespace) -> int:
    print(f"exported {_store().export(args.tenant, args.out)} memories to {args.out}")
    return 0


def import_command(args: argparse.Namespace) -> int:
    if not args.file.exists():
        raise LiftOSError(f"{args.file}: file not found")
    count_ = _store().import_(args.file, args.tenant)
    print(f"imported {count_} memories of '{args.tenant}' from {args.file}")
    return 0


def prune_command(args: argparse.Namespace) -> int:
    removed = _store().prune(args.tenant, args.older_than_days)
    print(f"forgot {removed} memories older than {args.older_than_days} days")
    return 0

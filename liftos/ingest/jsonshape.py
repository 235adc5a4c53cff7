"""JSON responses as flat columns, their shape as a schema, and drift between two shapes.

Flattening keeps every nested field under a stable dotted name (``attributes.send_options.
use_smart_sending``); lists are kept whole as JSON text, so a column never changes meaning with
the number of items. The *shape* of a response is the set of its field paths with their JSON
types (``attributes.name:string``; list items under ``[]``); comparing a response's shape with
the stored snapshot tells which fields were added, removed or moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, dict)):
            flat[name] = json.dumps(value, sort_keys=True)
        else:
            flat[name] = value
    return flat


def shape(obj: Any, prefix: str = "", free: frozenset[str] = frozenset()) -> set[str]:
    """``path:type`` for every field; the items of a list share the path ``<list>[]``; the
    keys of a free-form map (a field named in ``free``, e.g. ``measurements``) share ``*``."""
    if isinstance(obj, dict):
        paths = {f"{prefix}:object"} if prefix else set()
        is_free = prefix.rsplit(".", 1)[-1] in free
        for key, value in obj.items():
            name = "*" if is_free else key
            paths |= shape(value, f"{prefix}.{name}" if prefix else name, free)
        return paths
    if isinstance(obj, list):
        paths = {f"{prefix}:array"}
        for item in obj:
            paths |= shape(item, f"{prefix}[]", free)
        return paths
    return {f"{prefix}:{_json_type(obj)}"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):  # Decimal: numbers read exactly
        return "number"
    return "string"


@dataclass(frozen=True)
class Drift:
    """How a response's shape differs from the snapshot. Nulls are not drift (optional fields
    are null on some records)."""

    endpoint: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    moved: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.moved)

    def describe(self) -> str:
        parts = [f"moved {old} -> {new}" for old, new in self.moved.items()]
        parts += [f"added {p}" for p in self.added] + [f"removed {p}" for p in self.removed]
        return f"{self.endpoint}: " + "; ".join(parts)


DRIFT_LOG = "drift.jsonl"  # every drift a sync saw, in the tenant's quality/ folder


def drift(endpoint: str, snapshot: set[str], observed: set[str]) -> Drift:
    """Paths added and removed (types ignored for nulls); a removed path whose leaf name
    reappears elsewhere among the added ones counts as moved."""
    old, new = _typed_paths(snapshot), _typed_paths(observed)
    only_null = {p.rsplit(":", 1)[0] for p in observed if p.endswith(":null")} - new
    removed = sorted(p for p in old if p not in new and p not in only_null)
    added = sorted(p for p in new if p not in old)
    moved = {}
    for path in removed:
        leaf = path.rsplit(".", 1)[-1]
        target = next((a for a in added if a.rsplit(".", 1)[-1] == leaf and a not in
                       moved.values()), None)
        if target:
            moved[path] = target
    added = [p for p in added if p not in moved.values() and not _under_any(p, moved.values())]
    removed = [p for p in removed if p not in moved and not _under_any(p, moved)]
    added = [p for p in added if not _under_any(p, set(added) - {p})]
    removed = [p for p in removed if not _under_any(p, set(removed) - {p})]
    return Drift(endpoint, tuple(added), tuple(removed), moved)


def _typed_paths(paths: set[str]) -> set[str]:
    """Paths without their type, nulls dropped (a null says nothing about a field's type)."""
    return {p.rsplit(":", 1)[0] for p in paths if not p.endswith(":null")}


def _under_any(path: str, parents) -> bool:
    return any(path.startswith((parent + ".", parent + "[]"))
               for parent in parents)

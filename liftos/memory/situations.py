"""Similar situations: which past runs looked like this one, and what happened next.

A run's situation memory summarises its whole picture (channels ranked by ROAS, which shifted).
The most similar past situations of the same tenant are found by meaning; for each, the next
situation in time is what followed it.
"""

from __future__ import annotations

from pydantic import BaseModel

from liftos.errors import LiftOSError
from liftos.memory.store import Hit, Memory, MemoryStore


class Precedent(BaseModel):
    past: Hit
    followed_by: Memory | None


def latest_situation(store: MemoryStore, tenant: str) -> Memory:
    situations = _in_time_order(store.all(tenant, kind="situation"))
    if not situations:
        raise LiftOSError(f"tenant '{tenant}' has no remembered runs yet")
    return situations[-1]


def similar_situations(store: MemoryStore, tenant: str, current: Memory, k: int = 3
                       ) -> list[Precedent]:
    """The ``k`` past situations most similar to ``current`` (itself excluded), each with the
    situation that followed it."""
    history = _in_time_order(store.all(tenant, kind="situation"))
    hits = [h for h in store.search(tenant, current.text, k=k + 1, kind="situation")
            if h.memory.id != current.id][:k]
    precedents = []
    for hit in hits:
        later = [m for m in history if _when(m) > _when(hit.memory) and m.id != current.id]
        precedents.append(Precedent(past=hit, followed_by=later[0] if later else None))
    return precedents


def _in_time_order(memories: list[Memory]) -> list[Memory]:
    return sorted(memories, key=_when)


def _when(memory: Memory) -> tuple:
    return (memory.date_end.toordinal() if memory.date_end else 0, memory.created_at)

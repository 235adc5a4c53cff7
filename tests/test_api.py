"""The LiftOS API: tokens stored hashed, per-tenant isolation on every route (404, never a
leak), hostile input refused cleanly, rate limits, and acts that go through the Prefect API."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support import api_tenants

from liftos.access import ActLog, RateLimiter, TokenStore
from liftos.home import DataHome

HOSTILE = ["..", "%2e%2e", "..%2F..%2Fetc", "acme%2F..%2Fbeta", "a" * 5000, "ünïcode",
           "acme%00", "ACME", "acme ", "%F0%9F%92%A5", "beta%3F", "-acme"]


@pytest.fixture
def api_home(champion_home, synthetic_fit):
    """Tenants 'acme' and 'beta', each with a champion, two runs, and three tokens."""
    return champion_home, api_tenants(champion_home, synthetic_fit)


def _client(home: DataHome, limiter: RateLimiter | None = None) -> TestClient:
    from liftos_app.hub.api import create_app

    unlimited = RateLimiter(per_minute=10**6, burst=10**6)  # the limit has its own test
    return TestClient(create_app(home, limiter or unlimited), raise_server_exceptions=False)


def _as(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _tenant_routes(client: TestClient) -> list[str]:
    """Every GET route with a tenant in its path, from the OpenAPI spec (new routes included)."""
    spec = client.get("/openapi.json").json()
    return [p for p, ops in spec["paths"].items() if "{tenant}" in p and "get" in ops]


def _fill(path: str, tenant: str) -> str:
    return path.replace("{tenant}", tenant).replace("{name}", "roas") + (
        "?q=search" if path.endswith("/memory") else "")


def test_tokens_are_stored_hashed_shown_once_and_revocable(api_home, capsys):
    from liftos_app.cli import main

    home, secrets = api_home
    stored = (home.root / "access" / "tokens.json").read_text()
    assert not any(secret[17:] in stored for secret in secrets.values())
    assert main(["api", "token", "create", "--name", "carol", "--tenant", "acme"]) == 0
    plain = capsys.readouterr().out.split("store it now): ")[1].strip()
    assert plain not in (home.root / "access" / "tokens.json").read_text()
    client = _client(home)
    assert client.get("/v1/me", headers=_as(plain)).json()["scopes"] == ["read"]
    carol = next(t for t in TokenStore(home).list() if t.name == "carol")
    assert main(["api", "token", "list"]) == 0
    listing = capsys.readouterr().out
    assert carol.id in listing and plain not in listing and "live" in listing
    assert main(["api", "token", "revoke", carol.id]) == 0
    refused = client.get("/v1/me", headers=_as(plain))
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert main(["api", "token", "revoke", "nosuchid"]) == 2
    assert "no token with id 'nosuchid'" in capsys.readouterr().err
    forged = plain[:-1] + ("A" if plain[-1] != "A" else "B")
    assert client.get("/v1/me", headers=_as(forged)).status_code == 401
    assert client.get("/v1/tenants").status_code == 401


def test_a_token_sees_only_its_tenants_under_every_route(api_home):
    home, secrets = api_home
    client = _client(home)
    routes = _tenant_routes(client)
    assert {"/v1/tenants/{tenant}/model", "/v1/tenants/{tenant}/trust",
            "/v1/tenants/{tenant}/memory", "/v1/tenants/{tenant}/plots/{name}"} <= set(routes)
    for route in routes:
        own = client.get(_fill(route, "acme"), headers=_as(secrets["alice"]))
        assert own.status_code == 200, (route, own.text)
        other = client.get(_fill(route, "beta"), headers=_as(secrets["alice"]))
        missing = client.get(_fill(route, "nosuch"), headers=_as(secrets["alice"]))
        assert other.status_code == missing.status_code == 404, route
        assert other.json() == missing.json() == {"error": "not_found",
                                                  "message": "no such tenant"}, route
    listed = client.get("/v1/tenants", headers=_as(secrets["bob"])).json()
    assert [t["name"] for t in listed] == ["beta"]
    for route in routes:  # bob's own pages never name acme
        body = client.get(_fill(route, "beta"), headers=_as(secrets["bob"])).content
        assert b"acme" not in body, route


def test_hostile_path_and_query_values_are_refused_cleanly(api_home):
    home, secrets = api_home
    client = _client(home)
    headers = _as(secrets["alice"])
    for route in _tenant_routes(client):
        for value in HOSTILE:
            response = client.get(_fill(route, value), headers=headers)
            assert response.status_code in (404, 422), (route, value, response.status_code)
            assert set(response.json()) == {"error", "message"}, (route, value)
    odd = client.get("/v1/tenants/acme/memory?q=%00%FF%2F..", headers=headers)
    assert odd.status_code == 200 and odd.json() == []  # a strange query is just a query
    for query in ("q=" + "x" * 10000, "q=", "q=x&k=0", "q=x&k=100000000000000000000",
                  "q=x&k=1.5", "q=x&k=%F0%9F%92%A5"):
        response = client.get(f"/v1/tenants/acme/memory?{query}", headers=headers)
        assert response.status_code == 422 and response.json()["error"] == "invalid", query
        assert len(response.text) < 500, query
    for limit in ("-1", "0", "521", "abc"):
        assert client.get(f"/v1/tenants/acme/runs?limit={limit}", headers=headers
                          ).status_code == 422
    assert client.get("/v1/tenants/acme/plots/..%2F..%2Fsummary.json", headers=headers
                      ).status_code == 404
    assert client.get("/v1/tenants/acme/plots/../summary.json", headers=headers
                      ).status_code == 404


def test_the_rate_limit_says_when_to_retry(api_home):
    home, secrets = api_home
    client = _client(home, RateLimiter(per_minute=6, burst=3))
    answers = [client.get("/v1/me", headers=_as(secrets["alice"])) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) == 10
    assert client.get("/v1/me", headers=_as(secrets["bob"])).status_code == 200  # per token


def test_model_numbers_are_the_champions_and_an_unrecoverable_channel_has_none(api_home):
    home, secrets = api_home
    client = _client(home)
    headers = _as(secrets["alice"])
    fit_dir = Path(home.champion("acme")["fit_dir"])
    summary = json.loads((fit_dir / "summary.json").read_text())
    model = client.get("/v1/tenants/acme/model", headers=headers).json()
    assert model["channels"]["search"]["roas_mean"] == summary["channels"]["search"]["roas_mean"]
    assert model["channels"]["search"]["not_recoverable"] is None
    assert model["channels"]["tv"]["roas_mean"] is None
    assert model["channels"]["tv"]["not_recoverable"] == "error 55% on known truths"
    # The synthetic champion holds 2 x 100 draws: search's ROAS ESS is below the review's 400.
    ess = summary["channels"]["search"]["roas_ess_bulk"]
    assert ess < 400
    assert model["channels"]["search"]["not_converged"].endswith(f"bulk ESS {ess:.0f}")
    assert str(fit_dir) not in json.dumps(model)  # no server paths
    curves = client.get("/v1/tenants/acme/curves", headers=headers).json()
    assert "tv" not in curves["curves"] and "search" in curves["curves"]
    series = client.get("/v1/tenants/acme/contributions", headers=headers).json()
    assert len(series["dates"]) == len(series["actual"]) == summary["run"]["data"]["weeks"]
    assert "tv" not in series["channels"]
    trust = client.get("/v1/tenants/acme/trust", headers=headers).json()
    assert trust["score"] == 82.5 and not trust["checks"][0]["passed"]  # failed first
    assert [c["run_id"][-1] for c in trust["champions"]] == ["1"]
    checks = client.get("/v1/tenants/acme/anomalies", headers=headers).json()
    assert checks[0]["outside_interval"] and "fit_dir" not in checks[0]
    assert client.get("/v1/tenants/acme", headers=headers).json()["latest_check"] == checks[0]
    runs = client.get("/v1/tenants/acme/runs", headers=headers).json()
    assert [r["promoted"] for r in runs] == [True, False]  # newest first
    png = client.get("/v1/tenants/acme/plots/roas.png", headers=headers)
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert client.get("/v1/tenants/beta/model", headers=_as(secrets["bob"])
                      ).json()["channels"]["tv"]["roas_mean"] is not None


def test_the_openapi_spec_documents_every_route_and_its_errors(api_home):
    home, _ = api_home
    spec = _client(home).get("/openapi.json").json()
    assert {"Problem", "PlanAnswer", "Me", "Started", "Overview", "ModelView", "ChannelEstimate",
            "Series", "Curves", "TrustCard", "RunItem", "MonitorCheck", "Quality", "Plans",
            "MemoryHit", "Precedent"} <= set(spec["components"]["schemas"])
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path == "/v1/health":
                continue
            assert {"401", "404", "429"} <= set(operation["responses"]), (method, path)
            assert operation.get("summary"), (method, path)


def test_trigger_needs_its_scope_starts_a_run_through_prefect_and_is_audited(api_home,
                                                                          prefect_api):
    from prefect.client.orchestration import get_client

    from liftos_app.flows.refresh import mmm_refresh

    home, secrets = api_home
    client = _client(home)
    forbidden = client.post("/v1/tenants/acme/refresh", headers=_as(secrets["alice"]))
    assert forbidden.status_code == 403 and "no 'trigger' scope" in forbidden.json()["message"]
    assert client.post("/v1/tenants/beta/refresh", headers=_as(secrets["ops"])
                       ).status_code == 404
    undeployed = client.post("/v1/tenants/acme/refresh", headers=_as(secrets["ops"]))
    assert undeployed.status_code == 503 and "run `liftos deploy`" in undeployed.json()["message"]
    mmm_refresh.to_deployment(name="weekly-refresh").apply()
    started = client.post("/v1/tenants/acme/refresh", headers=_as(secrets["ops"]))
    assert started.status_code == 202, started.text
    run_id = started.json()["flow_run_id"]
    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(run_id)
    assert run.parameters["tenant"] == "acme" and "tenant:acme" in run.tags
    acts = ActLog(home).entries("acme")
    assert [(a["token_name"], a["action"], a["outcome"]) for a in acts] == [
        ("ops", "refresh", ("refused: deployment mmm-refresh/weekly-refresh is not on the Prefect "
                           "API; run `liftos deploy`")), ("ops", "refresh", "done")]
    assert acts[-1]["flow_run_id"] == run_id


def test_an_approval_through_the_api_resumes_the_paused_plan_flow(api_home, prefect_api):
    from liftos_app.flows.plan import budget_plan

    home, secrets = api_home
    client = _client(home)
    holder: dict = {}
    thread = threading.Thread(target=lambda: holder.setdefault("state", budget_plan(
        tenant="acme", poll_s=1, return_state=True)), daemon=True)
    thread.start()
    headers = _as(secrets["ops"])
    deadline = time.monotonic() + 60
    while not (pending := client.get("/v1/tenants/acme", headers=headers).json()[
            "pending_plans"]):
        assert time.monotonic() < deadline, "no plan was proposed"
        time.sleep(0.3)
    seq = pending[0]
    assert client.post(f"/v1/tenants/acme/plans/{seq}/decision", headers=_as(secrets["alice"]),
                       json={"decision": "approve"}).status_code == 403
    while True:  # the proposal is recorded before the flow pauses
        answer = client.post(f"/v1/tenants/acme/plans/{seq}/decision", headers=headers,
                             json={"decision": "approve", "comment": "go"})
        if answer.status_code != 409 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert answer.status_code == 202, answer.text
    thread.join(60)
    assert holder["state"].is_completed(), holder["state"].message
    decision = holder["state"].result()
    assert decision.payload["verdict"] == "approved" and decision.payload["by"] == "ops"
    plans = client.get("/v1/tenants/acme/plans", headers=headers).json()
    assert plans["verified"] and plans["plans"][0]["status"] == "approved"
    again = client.post(f"/v1/tenants/acme/plans/{seq}/decision", headers=headers,
                        json={"decision": "reject"})
    assert again.status_code == 409 and "approved" in again.json()["message"]
    acts = ActLog(home).entries("acme")
    assert (acts[-1]["token_name"], acts[-1]["action"], acts[-1]["outcome"], acts[-1]["plan"]
            ) == ("ops", "plan-approve", "done", seq)
    assert {a["token_name"] for a in acts} == {"ops"}


def test_a_property_based_fuzzer_finds_no_server_error_and_no_undocumented_answer(api_home):
    """Schemathesis generates valid and invalid requests for every operation from the API's own
    OpenAPI spec; every answer must be documented (status, content type, body schema) and none
    may be a 500. The token reads 'acme' only, so the acts stop at their scope check (403)
    before reaching Prefect."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation.modes import GenerationMode

    from liftos_app.hub.api import create_app

    home, secrets = api_home
    app = create_app(home, RateLimiter(per_minute=10**6, burst=10**6))
    # The first memory search spawns the embedding process (torch and the weights load): on a
    # busy machine longer than a request's 10 s, which is not what this test probes.
    warm = TestClient(app).get("/v1/tenants/acme/memory", params={"q": "warm up"},
                               headers=_as(secrets["alice"]))
    assert warm.status_code == 200, warm.text
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        own = {"tenant": "acme"} if "{tenant}" in operation.path else None
        for mode, fixed in ((GenerationMode.POSITIVE, None), (GenerationMode.POSITIVE, own),
                            (GenerationMode.NEGATIVE, None)):
            @settings(max_examples=15, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
            def probe(case) -> None:
                case.call_and_validate(headers=_as(secrets["alice"]))

            try:
                probe()
            except Unsatisfiable:  # no invalid request exists (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE and not operation.path_parameters


def test_the_served_api_answers_concurrent_memory_searches(api_home, tmp_path):
    """`liftos api serve` as its own process: 24 searches at once all succeed (one embedded
    Chroma client for the server's life; one per request raced and failed under load)."""
    import os
    import sys
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from support import free_port, local_server

    from liftos.memory.store import Memory, MemoryStore

    home, secrets = api_home
    MemoryStore(home.root / "memory").remember([Memory(
        tenant="acme", kind="insight", text="search kept paying back through the sale")])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with local_server([sys.executable, "-m", "liftos_app.cli", "api", "serve", "--port",
                       str(port)], f"{url}/v1/health", tmp_path / "api.log",
                      {**os.environ, "LIFTOS_HOME": str(home.root)}):
        def search(k: int) -> int:
            return httpx.get(f"{url}/v1/tenants/acme/memory", params={"q": f"search {k}"},
                             headers=_as(secrets["alice"]), timeout=60).status_code

        with ThreadPoolExecutor(24) as pool:
            codes = list(pool.map(search, range(24)))
    assert codes == [200] * 24, (codes, (tmp_path / "api.log").read_text()[-2000:])

"""The LiftOS API: every client (the hub, scripts, other tools) reads and acts through here.

One access-control point: a bearer token (see :mod:`liftos.access`) names the tenants and
scopes its holder has. A tenant outside the token is answered 404 exactly like a tenant that
does not exist, under every route, so nothing leaks whether it exists. Acts (trigger a refresh,
answer a plan) go through the Prefect API, never by running a flow in this process, and each
lands in the act log. Reads are served from :class:`liftos.views.TenantViews`.
"""

from __future__ import annotations

import math
import os
import threading
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import httpx
import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

import liftos
from liftos.access import ActLog, RateLimiter, Scope, Token, TokenStore
from liftos.errors import LiftOSError, redact
from liftos.home import DataHome
from liftos.tenancy import valid_tenant_name
from liftos.views import PLOTS, TenantViews
from liftos_app.hub import models as m

REFRESH_DEPLOYMENT = "mmm-refresh/weekly-refresh"
PLAN_DEPLOYMENT = "budget-plan/budget-plan"
Tenant = Annotated[str, Path(max_length=63, description="tenant name")]


class Problem(BaseModel):
    """Every error: a stable code and a sentence for a person."""

    error: str
    message: str


class Me(BaseModel):
    token_id: str
    name: str
    tenants: list[str]
    scopes: list[Scope]


class Started(BaseModel):
    """A flow run started on the Prefect API."""

    flow_run_id: str
    name: str
    state: str
    url: str | None


class PlanAnswer(BaseModel):
    """A person's answer to a pending budget plan (the approver is the token's holder)."""

    decision: Literal["approve", "reject"]
    comment: str = Field("", max_length=2000)
    amounts: dict[Annotated[str, Field(max_length=63)], Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict, max_length=50,
        description="approve with these weekly amounts instead (channel -> amount)")


class Sent(BaseModel):
    flow_run_id: str
    decision: str
    message: str


ERRORS = {401: {"model": Problem, "description": "missing, malformed, unknown or revoked token"},
          404: {"model": Problem, "description": "no such tenant or object for this token"},
          422: {"model": Problem, "description": "a parameter breaks its rule"},
          429: {"model": Problem, "description": "rate limit; see the Retry-After header"}}

BAD_BODY = {"model": Problem, "description": "the body is not JSON"}


class Refused(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict | None = None):
        self.status, self.error, self.message, self.headers = status, error, message, headers


def caller(request: Request) -> Token:
    """The token behind the request, within its rate limit."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    state = request.app.state
    token = state.tokens.authenticate(presented.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise Refused(401, "unauthorized", "send a valid token: Authorization: Bearer lft_…",
                      {"WWW-Authenticate": "Bearer"})
    wait = state.limiter.take(token.id)
    if wait:
        raise Refused(429, "rate_limited", f"too many requests; retry in {math.ceil(wait)} s",
                      {"Retry-After": str(math.ceil(wait))})
    return token


Caller = Annotated[Token, Depends(caller)]


def create_app(home: DataHome | None = None, limiter: RateLimiter | None = None) -> FastAPI:
    """The API over one LiftOS home (default: ``LIFTOS_HOME``).

    BLAS runs one thread per call here: requests run on many threads at once, and a memory
    search's embedding on a multi-threaded BLAS oversubscribes the cores (measured: twice the
    time for 200 concurrent searches)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    home = home or DataHome()
    views, tokens, acts = TenantViews(home), TokenStore(home), ActLog(home)
    limiter = limiter or RateLimiter(float(os.environ.get("LIFTOS_API_RATE_PER_MINUTE", "600")),
                                     int(os.environ.get("LIFTOS_API_BURST", "60")))
    app = FastAPI(title="LiftOS API", version=liftos.__version__, responses=ERRORS,
                  description=__doc__, lifespan=_lifespan)
    app.state.tokens, app.state.limiter = tokens, limiter
    opening = threading.Lock()

    def embed(text: str) -> list[float]:
        """The query's embedding, computed in a worker process (it runs on another core beside
        the server's one Python thread at a time) with the queries that arrive meanwhile."""
        with opening:
            if getattr(app.state, "embedder", None) is None:
                from concurrent.futures import ProcessPoolExecutor
                from multiprocessing import get_context

                from liftos.memory.embeddings import Batcher

                pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"))
                app.state.embedder = pool
                app.state.batcher = Batcher(lambda texts: pool.submit(_embed, texts).result())
        return app.state.batcher(text)

    def memories():
        """One memory store for the app's life (an embedded Chroma client opened twice at
        once fails), opened on the first search."""
        from liftos_app.blocks.chroma import memory_store

        with opening:
            if getattr(app.state, "memory", None) is None:
                app.state.memory = memory_store()
        return app.state.memory

    def visible(tenant: str, token: Token, scope: Scope = "read") -> str:
        if not valid_tenant_name(tenant) or tenant not in token.tenants or not views.known(
                tenant):
            raise Refused(404, "not_found", "no such tenant")
        if scope not in token.scopes:
            raise Refused(403, "forbidden", f"this token has no '{scope}' scope")
        return tenant

    def found(value: Any, what: str) -> Any:
        if value is None:
            raise Refused(404, "not_found", f"no {what} yet")
        return value

    @app.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"error": exc.error, "message": exc.message}, exc.status,
                            headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error")
        return JSONResponse({"error": error, "message": str(exc.detail)}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": "invalid", "message": f"{where}: {first.get('msg', '')}"
                             [:300]}, 422)

    @app.get("/v1/health", responses={}, summary="liveness (no token)")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": liftos.__version__}

    @app.get("/v1/me", summary="the calling token: name, tenants, scopes")
    def me(token: Caller) -> Me:
        return Me(token_id=token.id, name=token.name, tenants=list(token.tenants),
                  scopes=list(token.scopes))

    @app.get("/v1/tenants", summary="tenants this token may see")
    def tenants(token: Caller) -> list[m.TenantItem]:
        items = []
        for name in token.tenants:
            if views.known(name):
                view = views.overview(name)
                items.append(m.TenantItem(name=name, champion=view["champion"],
                                        last_run=view["last_run"]))
        return items

    @app.get("/v1/tenants/{tenant}", summary="overview: champion, trust, last run, checks, "
             "pending plans")
    def overview(tenant: Tenant, token: Caller) -> m.Overview:
        return _json(_linked(views.overview(visible(tenant, token))))

    @app.get("/v1/tenants/{tenant}/model", summary="the champion's ROAS, contribution and share "
             "per channel with 94% intervals")
    def model(tenant: Tenant, token: Caller) -> m.ModelView:
        return _json(found(views.model(visible(tenant, token)), "model in service"))

    @app.get("/v1/tenants/{tenant}/contributions", summary="weekly actual, fitted, baseline "
             "and each channel's contribution")
    def contributions(tenant: Tenant, token: Caller) -> m.Series:
        return _json(found(views.contributions(visible(tenant, token)), "model in service"))

    @app.get("/v1/tenants/{tenant}/curves", summary="response curves with current spend")
    def curves(tenant: Tenant, token: Caller) -> m.Curves:
        return _json(found(views.curves(visible(tenant, token)), "model in service"))

    @app.get("/v1/tenants/{tenant}/trust", summary="the trust card and champion history")
    def trust(tenant: Tenant, token: Caller) -> m.TrustCard:
        return _json(found(views.trust(visible(tenant, token)), "validated model in service"))

    @app.get("/v1/tenants/{tenant}/runs", summary="refreshes, newest first, with Prefect links")
    def runs(tenant: Tenant, token: Caller,
             limit: Annotated[int, Query(ge=1, le=520)] = 52) -> list[m.RunItem]:
        return _json([_linked(r) for r in views.runs(visible(tenant, token), limit)])

    @app.get("/v1/tenants/{tenant}/anomalies", summary="always-on monitor checks, newest first")
    def anomalies(tenant: Tenant, token: Caller,
                  limit: Annotated[int, Query(ge=1, le=520)] = 13) -> list[m.MonitorCheck]:
        return _json(views.anomalies(visible(tenant, token), limit))

    @app.get("/v1/tenants/{tenant}/quality", summary="data-quality outcomes and quarantine")
    def quality(tenant: Tenant, token: Caller,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> m.Quality:
        return _json(views.quality(visible(tenant, token), limit))

    @app.get("/v1/tenants/{tenant}/plans", summary="budget plans with status, and the "
             "verified decision audit")
    def plans(tenant: Tenant, token: Caller) -> m.Plans:
        return _json(views.plans(visible(tenant, token)))

    @app.get("/v1/tenants/{tenant}/memory", summary="search what was learned, by meaning")
    def memory(tenant: Tenant, token: Caller,
               q: Annotated[str, Query(min_length=1, max_length=500)],
               k: Annotated[int, Query(ge=1, le=20)] = 5) -> list[m.MemoryHit]:
        tenant = visible(tenant, token)
        hits = memories().search(tenant, q, k=k, query_embedding=embed(q))
        return [{"rank": h.rank, "score": h.score, **h.memory.model_dump(mode="json")}
                for h in hits]

    @app.get("/v1/tenants/{tenant}/similar", summary="past situations most like the latest "
             "run, and what followed each")
    def similar(tenant: Tenant, token: Caller,
                k: Annotated[int, Query(ge=1, le=10)] = 3) -> list[m.Precedent]:
        from liftos.memory.situations import latest_situation, similar_situations

        store = memories()
        try:
            current = latest_situation(store, visible(tenant, token))
        except LiftOSError:
            return []
        return [{"score": p.past.score, "past": p.past.memory.model_dump(mode="json"),
                 "followed_by": p.followed_by.model_dump(mode="json") if p.followed_by else None}
                for p in similar_situations(store, tenant, current, k=k)]

    @app.get("/v1/tenants/{tenant}/plots/{name}", response_class=FileResponse,
             responses={200: {"content": {"image/png": {}}}},
             summary=f"a plot of the model in service: {', '.join(PLOTS)}")
    def plot(tenant: Tenant, name: Annotated[str, Path(max_length=40)], token: Caller):
        path = views.plot(visible(tenant, token), name.removesuffix(".png"))
        return FileResponse(found(path, f"plot {name!r}"[:60]), media_type="image/png")

    @app.post("/v1/tenants/{tenant}/refresh", status_code=202,
              responses={400: BAD_BODY, 403: {"model": Problem}, 503: {"model": Problem}},
              summary="start a refresh through the Prefect API (scope: trigger)")
    def refresh(tenant: Tenant, token: Caller) -> Started:
        visible(tenant, token, "trigger")
        started = _act(acts, token, "refresh", tenant, lambda: _start(tenant))
        return started

    @app.post("/v1/tenants/{tenant}/plans/{seq}/decision", status_code=202,
              responses={400: BAD_BODY, 403: {"model": Problem}, 409: {"model": Problem},
                         503: {"model": Problem}},
              summary="approve or reject a pending plan: resumes its paused flow "
                      "(scope: approve)")
    def decide(tenant: Tenant, seq: Annotated[int, Path(ge=0, le=10**9)], answer: PlanAnswer,
               token: Caller) -> Sent:
        visible(tenant, token, "approve")
        plan = next((p for p in views.plans(tenant)["plans"] if p["seq"] == seq), None)
        found(plan, f"plan #{seq}")
        if plan["status"] != "pending" or not plan["flow_run_id"]:
            raise Refused(409, "not_pending", f"plan #{seq} is {plan['status']}"
                          + ("" if plan["flow_run_id"] else " and has no waiting flow run"))
        run_input = {"decision": answer.decision, "approver": token.name,
                     "comment": answer.comment, "amounts": answer.amounts}
        _act(acts, token, f"plan-{answer.decision}", tenant,
             lambda: _resume(plan["flow_run_id"], run_input), {"plan": seq})
        return Sent(flow_run_id=plan["flow_run_id"], decision=answer.decision,
                    message="the paused flow checks the answer and records the decision")

    return app


@asynccontextmanager
async def _lifespan(app: FastAPI):
    """At most ``LIFTOS_API_THREADS`` (12) requests run at once; the rest wait their turn in
    order. Forty threads (Starlette's default) take turns on one interpreter lock and each
    request's every hop waits behind all of them (bench_api: memory search p95 320 ms at 40
    threads, 170-190 ms at 12-16)."""
    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = int(
        os.environ.get("LIFTOS_API_THREADS", "12"))
    yield
    embedder = getattr(app.state, "embedder", None)
    if embedder is not None:
        embedder.shutdown(cancel_futures=True)


def _embed(texts: list[str]) -> list[list[float]]:
    """Query vectors on one thread (this process runs beside the server's)."""
    import torch

    from liftos.memory.embeddings import query_encoder

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(1)
    return query_encoder().encode(texts).tolist()


def _act(acts: ActLog, token: Token, action: str, tenant: str, do, detail: dict | None = None):
    """Do an act and log it, whichever way it ends."""
    try:
        result = do()
    except Refused as exc:
        acts.record(token, action, tenant, f"refused: {exc.message}", detail)
        raise
    acts.record(token, action, tenant, "done", {**(detail or {}), **(
        {"flow_run_id": result.flow_run_id} if isinstance(result, Started) else {})})
    return result


def _start(tenant: str) -> Started:
    """A refresh run of the tenant from the deployed refresh flow (returns at once)."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        run = run_deployment(REFRESH_DEPLOYMENT, parameters={"tenant": tenant}, timeout=0,
                             tags=[f"tenant:{tenant}", "api"])
    except ObjectNotFound:
        raise Refused(503, "not_deployed", f"deployment {REFRESH_DEPLOYMENT} is not on the "
                      "Prefect API; run `liftos deploy`") from None
    except httpx.HTTPError as exc:  # the Prefect API is down or refused: say so, no traceback
        raise Refused(503, "prefect_unavailable", redact(f"the Prefect API refused: {exc}")[:300]
                      ) from None
    return Started(flow_run_id=str(run.id), name=run.name, state=run.state_name or "",
                   url=_run_url(str(run.id)))


def _resume(flow_run_id: str, run_input: dict[str, Any]) -> None:
    from uuid import UUID

    from prefect.exceptions import NotPausedError, ObjectNotFound
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(flow_run_id), run_input=run_input)
    except (ObjectNotFound, NotPausedError):
        raise Refused(409, "not_pending", "the plan's flow run is not waiting for an answer"
                      ) from None
    except (RuntimeError, LiftOSError) as exc:
        raise Refused(409, "refused", redact(str(exc))[:300]) from None
    except httpx.HTTPError as exc:
        raise Refused(503, "prefect_unavailable", redact(f"the Prefect API refused: {exc}")[:300]
                      ) from None


def _json(view: Any) -> Response:
    """A view as JSON, as it is: views hold JSON types only, their schema is the route's
    response model (in the OpenAPI spec, and checked against every answer by the fuzzer in the
    tests), so answers skip a second validation on the way out (10% of the time under load)."""
    return Response(orjson.dumps(view), media_type="application/json")


def _run_url(run_id: str | None) -> str | None:
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if ui and run_id else None


def _linked(view: dict[str, Any]) -> dict[str, Any]:
    """A run record (or an overview holding some) with its Prefect UI link."""
    if "run_id" in view:
        return {**view, "url": _run_url(view["run_id"])}
    return {k: _linked(v) if isinstance(v, dict) and "run_id" in v else v
            for k, v in view.items()}

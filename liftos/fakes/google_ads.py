"""A local Google Ads API: ``GoogleAdsService/SearchStream`` (API v26) over gRPC with TLS, and
the OAuth token endpoint the client refreshes its access token from.

It answers the two GAQL queries LiftOS sends (``customer_client`` under a manager account, and
daily ``campaign`` metrics) from an :class:`AdsWorld`, streaming ``batch_rows`` rows per response
message like the real service, and checks the developer token and bearer token on every call.

Faults for tests, consumed one per SearchStream call: ``"unavailable"``, ``"internal"``,
``"none"`` (a normal call), ``"quota:<seconds>"`` (RESOURCE_EXHAUSTED with a RetryInfo delay), ``"ads-internal"``
(a GoogleAdsFailure with an internal error), ``"break-after:<n>"`` (the stream fails with
UNAVAILABLE after ``n`` messages).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from concurrent import futures
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import grpc

from liftos.fakes.tls import self_signed
from liftos.fakes.world import AdsWorld

API_VERSION = "v26"
METHOD = f"/google.ads.googleads.{API_VERSION}.services.GoogleAdsService/SearchStream"
FAILURE_KEY = f"google.ads.googleads.{API_VERSION}.errors.googleadsfailure-bin"
DATES = re.compile(r"segments\.date BETWEEN '(\d{4}-\d{2}-\d{2})' AND '(\d{4}-\d{2}-\d{2})'")


def _types():
    from google.ads.googleads.v26.errors.types import errors
    from google.ads.googleads.v26.services.types import google_ads_service as service

    return (service.SearchGoogleAdsStreamRequest.pb(), service.SearchGoogleAdsStreamResponse.pb(),
            errors.GoogleAdsFailure.pb())


class FakeGoogleAds:
    """Start with :meth:`start`; ``endpoint`` is what ``GoogleAdsCredentials.endpoint`` takes
    and ``token_uri`` what its ``token_uri`` takes."""

    def __init__(self, world: AdsWorld | None = None, cert_dir: Path | None = None,
                 developer_token: str = "fake-developer-token", client_id: str = "fake-client",
                 client_secret: str = "fake-client-secret", refresh_token: str = "fake-refresh",
                 batch_rows: int = 10_000):
        self.world = world or AdsWorld()
        self.cert_dir = cert_dir or Path.home() / ".liftos-fakes"
        self.developer_token, self.client_id = developer_token, client_id
        self.client_secret, self.refresh_token = client_secret, refresh_token
        self.batch_rows = batch_rows
        self.faults: list[str] = []
        self.token_faults: list[str] = []  # "503" or "503:<Retry-After seconds>", one a call
        self.token_calls = 0
        self.calls: list[dict] = []
        self.on_message: Callable[[int], None] | None = None  # called after each streamed message
        self._messages = 0
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._grpc: grpc.Server | None = None
        self._oauth: ThreadingHTTPServer | None = None
        self.port = self.oauth_port = 0

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, port: int = 0, oauth_port: int = 0) -> FakeGoogleAds:
        cert, key = self_signed(self.cert_dir)
        self.ca_cert = cert
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        request_type, response_type, _ = _types()
        handler = grpc.unary_stream_rpc_method_handler(
            self._search_stream, request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString)
        server.add_generic_rpc_handlers([_Router({METHOD: handler})])
        credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
        self.port = server.add_secure_port(f"127.0.0.1:{port}", credentials)
        server.start()
        self._grpc = server
        self._oauth = ThreadingHTTPServer(("127.0.0.1", oauth_port), self._oauth_handler())
        self.oauth_port = self._oauth.server_address[1]
        threading.Thread(target=self._oauth.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._grpc:
            self._grpc.stop(grace=None)
        if self._oauth:
            self._oauth.shutdown()
            self._oauth.server_close()

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.oauth_port}/token"

    # -- OAuth ------------------------------------------------------------------------------
    def _oauth_handler(self):
        fake = self

        class Token(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                fake.token_calls += 1
                fault = fake.token_faults.pop(0) if fake.token_faults else None
                if fault == "echo":  # an endpoint that quotes the request in its error
                    payload = json.dumps({"error": "invalid_grant", "error_description":
                                          f"bad request: {form}"}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if fault:
                    status, _, wait = fault.partition(":")
                    self.send_response(int(status))
                    if wait:
                        self.send_header("Retry-After", wait)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                ok = (form.get("grant_type") == "refresh_token"
                      and form.get("refresh_token") == fake.refresh_token
                      and form.get("client_id") == fake.client_id
                      and form.get("client_secret") == fake.client_secret)
                if ok:
                    token = "ya29.fake-" + secrets.token_hex(8)
                    fake._tokens.add(token)
                    body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
                else:
                    body = {"error": "invalid_grant", "error_description": "Bad Request"}
                payload = json.dumps(body).encode()
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Token

    # -- SearchStream -----------------------------------------------------------------------
    def _search_stream(self, request, context: grpc.ServicerContext):
        metadata = dict(context.invocation_metadata())
        with self._lock:
            self.calls.append({"customer_id": request.customer_id, "query": request.query,
                               "login_customer_id": metadata.get("login-customer-id")})
            fault = self.faults.pop(0) if self.faults else None
        if metadata.get("developer-token") != self.developer_token:
            self._ads_failure(context, grpc.StatusCode.PERMISSION_DENIED,
                              {"authorization_error": 18}, "The developer token is not valid.")
        if metadata.get("authorization", "").removeprefix("Bearer ") not in self._tokens:
            self._ads_failure(context, grpc.StatusCode.UNAUTHENTICATED,
                              {"authentication_error": 2}, "Authentication failed.")
        broken_after = self._inject(fault, context)
        for sent, message in enumerate(self._answer(request, context)):
            if broken_after is not None and sent >= broken_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable")
            yield message
            with self._lock:
                self._messages += 1
                count = self._messages
            if self.on_message:
                self.on_message(count)

    def _inject(self, fault: str | None, context) -> int | None:
        if fault is None or fault == "none":
            return None
        kind, _, arg = fault.partition(":")
        if kind == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "The service is currently unavailable")
        if kind == "internal":
            context.abort(grpc.StatusCode.INTERNAL, "Internal error encountered")
        if kind == "quota":
            self._quota(context, float(arg or 1))
        if kind == "ads-internal":
            self._ads_failure(context, grpc.StatusCode.INTERNAL, {"internal_error": 2},
                              "An internal error has occurred.")
        if kind == "break-after":
            return int(arg)
        raise ValueError(f"unknown fault {fault!r}")

    def _answer(self, request, context):
        query = request.query
        if "FROM customer_client" in query:
            yield from self._batches(self._client_rows(request.customer_id, context))
            return
        account = self._account(request.customer_id)
        if account is None:
            self._ads_failure(context, grpc.StatusCode.INVALID_ARGUMENT, {"query_error": 50},
                              "Metrics cannot be requested for a manager account.")
        match = DATES.search(query)
        if not match:
            self._ads_failure(context, grpc.StatusCode.INVALID_ARGUMENT, {"query_error": 47},
                              "A date range is required (segments.date BETWEEN ...).")
        first, last = (date.fromisoformat(g) for g in match.groups())
        yield from self._batches(self._campaign_rows(account, first, last))

    def _account(self, customer_id: str):
        return next((a for a in self.world.accounts if a.customer_id == customer_id), None)

    def _client_rows(self, customer_id: str, context):
        if customer_id != self.world.manager_id:
            self._ads_failure(context, grpc.StatusCode.PERMISSION_DENIED,
                              {"authorization_error": 2},
                              "User doesn't have permission to access customer.")
        entries = [(self.world.manager_id, True, 0, "USD", "America/New_York", "Manager")] + [
            (a.customer_id, False, 1, a.currency, a.time_zone, a.descriptive_name)
            for a in self.world.accounts]
        for cid, manager, level, currency, zone, name in entries:
            def fill(row, cid=cid, manager=manager, level=level, currency=currency, zone=zone,
                     name=name):
                client = row.customer_client
                client.client_customer = f"customers/{cid}"
                client.id, client.manager, client.level = int(cid), manager, level
                client.currency_code, client.time_zone, client.descriptive_name = (
                    currency, zone, name)
                client.status = 2  # ENABLED
            yield fill

    def _campaign_rows(self, account, first: date, last: date):
        world = self.world
        metrics = world.metrics(account.customer_id)
        campaigns = world.campaigns(account.customer_id)
        for k in world.day_range(first, last):
            day = world.date(k).isoformat()
            for c, (campaign_id, name) in enumerate(campaigns):
                def fill(row, c=c, k=k, campaign_id=campaign_id, name=name, day=day):
                    row.customer.id = int(account.customer_id)
                    row.customer.currency_code = account.currency
                    row.customer.time_zone = account.time_zone
                    row.campaign.id, row.campaign.name = campaign_id, name
                    row.segments.date = day
                    m = row.metrics
                    m.cost_micros = int(metrics["cost_micros"][c, k])
                    m.impressions = int(metrics["impressions"][c, k])
                    m.clicks = int(metrics["clicks"][c, k])
                    m.conversions = float(metrics["conversions"][c, k])
                    m.conversions_value = float(metrics["conversions_value"][c, k])
                yield fill

    def _batches(self, fills):
        _, response_type, _ = _types()
        message = response_type()
        for fill in fills:
            fill(message.results.add())
            if len(message.results) >= self.batch_rows:
                yield message
                message = response_type()
        if len(message.results):
            yield message

    # -- errors -----------------------------------------------------------------------------
    def _ads_failure(self, context, code: grpc.StatusCode, error_code: dict, message: str):
        _, _, failure_type = _types()
        failure = failure_type()
        error = failure.errors.add()
        for field, value in error_code.items():
            setattr(error.error_code, field, value)
        error.message = message
        failure.request_id = "fake-" + secrets.token_hex(6)
        context.set_trailing_metadata([(FAILURE_KEY, failure.SerializeToString()),
                                       ("request-id", failure.request_id)])
        context.abort(code, message)

    def _quota(self, context, seconds: float):
        from google.protobuf import any_pb2, duration_pb2
        from google.rpc import code_pb2, error_details_pb2, status_pb2
        from grpc_status import rpc_status

        retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(seconds), nanos=int((seconds % 1) * 1e9)))
        detail = any_pb2.Any()
        detail.Pack(retry)
        status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, details=[detail],
                                   message="Resource has been exhausted (e.g. check quota).")
        context.abort_with_status(rpc_status.to_status(status))


class _Router(grpc.GenericRpcHandler):
    def __init__(self, handlers: dict):
        self.handlers = handlers

    def service(self, handler_call_details):
        return self.handlers.get(handler_call_details.method)

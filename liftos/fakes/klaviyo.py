"""A local Klaviyo API (JSON:API over HTTP, revision 2026-10-15) for the ``klaviyo-api`` SDK:
``GET /api/metrics/``, ``GET /api/campaigns/``, ``GET /api/reviews/`` (cursor pagination through
``links.next``) and
``POST /api/metric-aggregates/`` (daily ``sum_value``/``count``), from a :class:`KlaviyoWorld`.

Faults for tests, consumed one per request: ``"429:<seconds>"`` (Retry-After), ``"503"``,
``"500"``. ``schema`` switches the response shape: ``"baseline"``; ``"drifted"`` (campaign
``send_time`` moved under ``send_strategy`` and a field added: still loadable); ``"broken"``
(aggregate ``dates`` renamed ``date_buckets``: not derivable).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote, urlparse

from liftos.fakes.http import HTTPFake, send_json
from liftos.fakes.world import KLAVIYO_METRICS, KlaviyoWorld

REVISION = "2026-10-15"
BOUND = "datetime,"


class FakeKlaviyo(HTTPFake):
    def __init__(self, world: KlaviyoWorld | None = None, api_key: str = "pk_fake_key",
                 page_size: int = 3):
        self.world = world or KlaviyoWorld()
        self.api_key, self.page_size = api_key, page_size
        self.faults: list[str] = []
        self.loop_cursor = False  # pagination whose links.next points back to an earlier page
        self.hostile_aggregate = None  # a function that mangles each aggregate's attributes
        self.stall_s = 0.0  # seconds to wait before answering (a stalled server)
        self.on_request = None  # called with the request count before each answer
        self.schema = "baseline"
        self.requests: list[dict] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self, request: BaseHTTPRequestHandler, body: dict | None) -> None:
        url = urlparse(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests.append({"method": request.command, "path": url.path, "query": query})
            fault = self.faults.pop(0) if self.faults else None
            count = len(self.requests)
        if self.on_request:
            self.on_request(count)
        if self.stall_s:
            time.sleep(self.stall_s)
        if request.headers.get("Authorization") != f"Klaviyo-API-Key {self.api_key}":
            return _send(request, 401, _errors(401, "not_authenticated",
                                               "Incorrect authentication credentials."))
        if request.headers.get("revision") != REVISION:
            return _send(request, 400, _errors(400, "invalid", "Unsupported revision."))
        if fault == "echo":  # an API that quotes the request headers in its error
            return _send(request, 400, _errors(400, "invalid", "bad request with headers "
                                               + json.dumps(dict(request.headers))))
        if fault:
            status, _, wait = fault.partition(":")
            headers = {"Retry-After": wait} if status == "429" else {}
            return _send(request, int(status), _errors(int(status), "throttled" if status == "429"
                                                       else "error", "Request failed."), headers)
        routes = {("GET", "/api/metrics/"): self._metrics,
                  ("GET", "/api/campaigns/"): self._campaigns,
                  ("GET", "/api/reviews/"): self._reviews,
                  ("POST", "/api/metric-aggregates/"): self._aggregates}
        route = routes.get((request.command, url.path.rstrip("/") + "/"))
        if route is None:
            return _send(request, 404, _errors(404, "not_found", f"{url.path} not found"))
        status, document = route(query, body)
        _send(request, status, document)

    # -- endpoints --------------------------------------------------------------------------
    def _metrics(self, query: dict, body: dict | None):
        records = [{"type": "metric", "id": mid, "attributes": {
            "name": name, "created": "2023-01-05T10:00:00+00:00",
            "updated": "2023-01-05T10:00:00+00:00",
            "integration": {"object": "integration", "id": f"int-{source.lower()}",
                            "name": source, "category": "eCommerce"}},
            "links": {"self": f"{self.base_url}/api/metrics/{mid}/"}}
            for mid, name, source in KLAVIYO_METRICS]
        return 200, self._page("/api/metrics/", records, query)

    def _campaigns(self, query: dict, body: dict | None):
        if "messages.channel" not in query.get("filter", ""):
            return 400, _errors(400, "invalid", "A channel filter is required "
                                "(filter=equals(messages.channel,'email')).")
        records = self.world.campaign_records()
        if self.schema in ("drifted", "broken"):
            for record in records:
                attrs = record["attributes"]
                attrs["send_strategy"]["send_time"] = attrs.pop("send_time")
                attrs["ab_test"] = False
        return 200, self._page("/api/campaigns/", records, query)

    def _reviews(self, query: dict, body: dict | None):
        bounds = dict(re.findall(r"(greater-or-equal|less-or-equal)\(created,([^)]+)\)",
                                 query.get("filter", "")))
        if set(bounds) != {"greater-or-equal", "less-or-equal"}:
            return 400, _errors(400, "invalid", "filter on created (greater-or-equal and "
                                "less-or-equal) is required by this fake")
        first, last = (dt.datetime.fromisoformat(bounds[k])
                       for k in ("greater-or-equal", "less-or-equal"))
        records = [r for r in self.world.review_records()
                   if first <= dt.datetime.fromisoformat(r["attributes"]["created"]) <= last]
        return 200, self._page("/api/reviews/", records, query)

    def _page(self, path: str, records: list[dict], query: dict) -> dict:
        start = int(query.get("page[cursor]", "0") or 0)
        page = records[start:start + self.page_size]
        links = {"self": f"{self.base_url}{path}", "prev": None, "next": None}
        if start + self.page_size < len(records):
            cursor = quote(str(start + self.page_size if not self.loop_cursor or start == 0
                               else self.page_size))  # loop_cursor: page 2 links to itself
            extra = "&filter=" + quote(query["filter"]) if "filter" in query else ""
            links["next"] = f"{self.base_url}{path}?page%5Bcursor%5D={cursor}{extra}"
        return {"data": page, "links": links}

    def _aggregates(self, query: dict, body: dict | None):
        attrs = (body or {}).get("data", {}).get("attributes", {})
        metric_id = attrs.get("metric_id")
        if metric_id not in {m[0] for m in KLAVIYO_METRICS}:
            return 404, _errors(404, "not_found", f"metric {metric_id!r} not found")
        if attrs.get("interval") != "day":
            return 400, _errors(400, "invalid", "this fake serves interval=day only")
        first, last = _bounds(attrs.get("filter") or [])
        ads = self.world.ads
        days = ads.day_range(first, last - dt.timedelta(days=1))
        daily = self.world.daily(metric_id)
        measurements = {m: [round(float(daily[m][k]), 2) for k in days]
                        for m in attrs.get("measurements", [])}
        dates = [f"{ads.date(k).isoformat()}T00:00:00+00:00" for k in days]
        attributes = {"dates": dates, "data": [{"dimensions": [], "measurements": measurements}]}
        if self.schema == "broken":
            attributes["date_buckets"] = attributes.pop("dates")
        if self.hostile_aggregate:
            self.hostile_aggregate(attributes)
        return 200, {"data": {"type": "metric-aggregate", "id": f"agg-{metric_id}",
                              "attributes": attributes,
                              "links": {"self": f"{self.base_url}/api/metric-aggregates/"}},
                     "links": {"self": f"{self.base_url}/api/metric-aggregates/"}}


def _bounds(filters: list[str]) -> tuple[dt.date, dt.date]:
    """``greater-or-equal(datetime,2024-01-01T00:00:00)`` and ``less-than(...)`` -> dates."""
    first = last = None
    for item in filters:
        stamp = item.split(BOUND, 1)[1].rstrip(")")[:10]
        if item.startswith("greater-or-equal"):
            first = dt.date.fromisoformat(stamp)
        elif item.startswith("less-than"):
            last = dt.date.fromisoformat(stamp)
    if first is None or last is None:
        raise ValueError(f"datetime bounds missing from filter {filters}")
    return first, last


def _errors(status: int, code: str, detail: str) -> dict:
    return {"errors": [{"id": "fake", "status": status, "code": code, "title": detail,
                        "detail": detail, "source": {"pointer": "/data/"}}]}


def _send(request: BaseHTTPRequestHandler, status: int, document: dict,
          headers: dict | None = None) -> None:
    # "<num:1.23:num>" sends the number 1.23 as written: digits a float cannot hold
    payload = json.dumps(document).replace('"<num:', "").replace(':num>"', "").encode()
    send_json(request, status, payload, "application/vnd.api+json", headers)

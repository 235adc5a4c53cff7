"""Klaviyo: daily metric aggregates (orders revenue, email opens and clicks) into
``outcome_daily`` and email campaigns into ``klaviyo_campaigns``, through the ``klaviyo-api``
SDK (revision 2026-10-15).

* Requests go through the SDK's ``*_without_preload_content`` methods: the SDK builds the
  request (host, auth, revision, filters, body model) and we get the body bytes as sent, which
  are landed verbatim before anything reads them.
* Bodies are read as plain dicts and checked against our own field list (``REQUIRED``), not the
  SDK's strict models, which break on any drift. Each response's shape is compared with the
  stored snapshot; drift (a field added, removed or moved) is reported, and the load goes on
  while every required field can still be found (a moved field is found by its name).
* Cursor pagination: the cursor is parsed from ``links.next`` here (the SDK mangles it).
* Retries: 429 honours Retry-After up to the policy's ceiling, 5xx and connection errors back
  off; the SDK's own retries and urllib3's are off (``KlaviyoCredentials.client``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlparse

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from liftos.config import Template
from liftos.home import DataHome
from liftos.ingest.curate import Curator
from liftos.ingest.jsonshape import DRIFT_LOG, Drift, drift, flatten, shape
from liftos.ingest.landing import RawBatch, RawLanding, append_line
from liftos.ingest.retry import Retry, RetryPolicy, SourceError, retry_after
from liftos.ingest.state import Bookmarks
from liftos.ingest.sync import Progress, SyncResult, SyncSettings, sync_stream, yesterday
from liftos.ingest.tables import outcome_frame

SOURCE = "klaviyo"
CAMPAIGN_FILTER = "equals(messages.channel,'email')"
BASELINE_SCHEMA = Path(__file__).with_name("klaviyo_schema.json")
FREE_MAPS = frozenset({"measurements"})  # keys depend on the request, not the schema
REQUIRED = {  # endpoint -> fields every record must yield
    "metrics": ("id", "attributes.name"),
    "campaigns": ("id", "attributes.name", "attributes.status", "attributes.send_time"),
    "metric-aggregates": ("attributes.dates", "attributes.data"),
    "reviews": ("id", "attributes.created", "attributes.content"),
}


class KlaviyoKPI(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    measurement: Literal["sum_value", "count", "unique"] = "sum_value"


DEFAULT_KPIS = {"revenue": KlaviyoKPI(metric="Placed Order"),
                "email_opens": KlaviyoKPI(metric="Opened Email", measurement="count"),
                "email_clicks": KlaviyoKPI(metric="Clicked Email", measurement="count")}


class KlaviyoSettings(SyncSettings):
    """``sources.klaviyo`` in a tenant file: which metrics become which KPIs."""

    timezone: str = "UTC"
    kpis: dict[str, KlaviyoKPI] = DEFAULT_KPIS
    campaigns: bool = True
    connect_timeout_s: float = Field(10.0, gt=0, description="seconds to connect")
    read_timeout_s: float = Field(60.0, gt=0, description="seconds to wait for a response")


class SchemaError(SourceError):
    """A field we need cannot be found in a response any more."""


def sync(credentials: Any, tenant: str, template: Template, settings: KlaviyoSettings,
         since: dt.date | None = None, until: dt.date | None = None,
         home: DataHome | None = None, policy: RetryPolicy | None = None,
         throttle: Callable[[], None] | None = None, progress: Progress | None = None,
         curator: Curator | None = None) -> SyncResult:
    """Load the configured KPIs (one bookmark each) and the email campaigns."""
    started = time.perf_counter()
    home = home or DataHome()
    bookmarks = Bookmarks(tenant, SOURCE, home)
    reader = _Reader(credentials.client(), RawLanding(tenant, SOURCE, home),
                     policy or RetryPolicy(), throttle,
                     _Schemas(bookmarks, home.folder(tenant, "quality") / DRIFT_LOG),
                     (settings.connect_timeout_s, settings.read_timeout_s))
    curator = curator or Curator(tenant, home, f"{SOURCE}-{dt.date.today().isoformat()}")
    result = SyncResult(SOURCE)
    metric_ids = reader.metric_ids()
    last_day = until or yesterday(settings.timezone)
    for kpi, spec in settings.kpis.items():
        if spec.metric not in metric_ids:
            raise SourceError(SOURCE, "metrics", f"no metric named {spec.metric!r} (KPI {kpi}); "
                              f"the account has {sorted(metric_ids)}")

        def read_chunk(first: dt.date, last: dt.date, kpi: str = kpi, spec: KlaviyoKPI = spec):
            request = {"kind": "metric-aggregates", "kpi": kpi, "metric": spec.metric,
                       "measurement": spec.measurement, "first": first.isoformat(),
                       "last": last.isoformat(), "timezone": settings.timezone}
            document, raw = reader.aggregate(metric_ids[spec.metric], request)
            yield "outcome_daily", parse_aggregate(document, request, tenant), raw

        sync_stream(f"kpi:{kpi}", f"klaviyo {kpi} ({spec.metric})", bookmarks, settings, since,
                    last_day, result, curator, read_chunk, progress)
    if settings.campaigns:
        records, raw = reader.campaigns()
        curator.store_as_is("klaviyo_campaigns", campaign_frame(records), ["id"],
                            "klaviyo campaigns", raw)
    result.drift = reader.schemas.save()
    result.quality, result.seconds = curator.reports, time.perf_counter() - started
    return result


class _Schemas:
    """The stored shape of each endpoint's records; drift against it, reported once per sync."""

    def __init__(self, bookmarks: Bookmarks, log: Path):
        self.bookmarks, self.log = bookmarks, log
        baseline = json.loads(BASELINE_SCHEMA.read_text())
        self.snapshot = {k: set(v) for k, v in bookmarks.extra("schema", baseline).items()}
        self.observed: dict[str, set[str]] = {}

    def check(self, endpoint: str, records: list[dict], where: str) -> dict[str, str]:
        """Record the shape; return the moved-field map, or fail if a required field is gone."""
        seen = set().union(*(shape(r, free=FREE_MAPS) for r in records)) if records else set()
        self.observed.setdefault(endpoint, set()).update(seen)
        found = drift(endpoint, self.snapshot.get(endpoint, set()), seen) if records else None
        moved = dict(found.moved) if found else {}
        for record in records:
            for path in REQUIRED[endpoint]:
                if _locate(record, path, moved) is _MISSING:
                    detail = f"; schema drift: {found.describe()}" if found else ""
                    self._record(found.describe() if found else f"{endpoint}: '{path}' missing",
                                 stopped=True)
                    raise SchemaError(SOURCE, where, (
                        f"field '{path}' is missing from record {record.get('id', '?')} and "
                        f"cannot be derived{detail}. The page is kept in raw landing; adapt the "
                        "field map and run 'liftos rebuild'"))
        return moved

    def save(self) -> list[Drift]:
        """Drift of this sync against the snapshot; the snapshot then becomes what was seen."""
        found = [d for endpoint, seen in self.observed.items()
                 if (d := drift(endpoint, self.snapshot.get(endpoint, set()), seen))]
        if self.observed:
            merged = {**{k: sorted(v) for k, v in self.snapshot.items()},
                      **{k: sorted(v) for k, v in self.observed.items()}}
            self.bookmarks.set_extra("schema", merged)
        for change in found:
            self._record(change.describe(), stopped=False)
        return found

    def _record(self, change: str, stopped: bool) -> None:
        """Every drift seen, in the tenant's ``quality/drift.jsonl`` (the hub's Data page)."""
        append_line(self.log, {"at": dt.datetime.now(dt.UTC).isoformat(), "source": SOURCE,
                               "change": change, "load_stopped": stopped})


class _HttpStatus(Exception):
    def __init__(self, status: int, body: bytes, retry_after: str | None):
        super().__init__(f"HTTP {status}")
        self.status, self.body, self.retry_after = status, body, retry_after

    def detail(self) -> str:
        try:
            errors = json.loads(self.body).get("errors", [])
            return "; ".join(f"{e.get('code')}: {e.get('detail')}" for e in errors) or "no detail"
        except (ValueError, AttributeError):
            return self.body[:200].decode(errors="replace")


class _Reader:
    def __init__(self, api: Any, landing: RawLanding, policy: RetryPolicy,
                 throttle: Callable[[], None] | None, schemas: _Schemas,
                 timeout: tuple[float, float] = (10.0, 60.0)):
        self.timeout = timeout  # (connect, read) seconds: a stalled server cannot hold a sync
        address = urlparse(api.configuration.host)
        if address.scheme not in ("http", "https") or not address.hostname:
            raise SourceError(SOURCE, "configuration", f"base URL {api.configuration.host!r} "
                              "is not an http(s)://host[:port] address")
        self.host = address.netloc
        self.metrics_api, self.campaigns_api = api.Metrics, api.Campaigns
        self.reviews_api = api.Reviews
        self.landing, self.policy, self.schemas = landing, policy, schemas
        self.throttle = throttle or (lambda: None)

    def metric_ids(self) -> dict[str, str]:
        records, _ = self._paged("metrics",
                                 self.metrics_api.get_metrics_without_preload_content)
        return {_locate(r, "attributes.name", {}): r["id"] for r in records}

    def campaigns(self) -> tuple[list[dict], RawBatch]:
        return self._paged("campaigns", self.campaigns_api.get_campaigns_without_preload_content,
                           filter=CAMPAIGN_FILTER)

    def reviews(self, first: dt.date, last: dt.date) -> tuple[list[dict], RawBatch]:
        window = (f"and(greater-or-equal(created,{first.isoformat()}T00:00:00Z),"
                  f"less-or-equal(created,{last.isoformat()}T23:59:59Z))")
        return self._paged("reviews", self.reviews_api.get_reviews_without_preload_content,
                           filter=window)

    def aggregate(self, metric_id: str, request: dict) -> tuple[dict, RawBatch]:
        from openapi_client.models import MetricAggregateQuery

        first, last = (dt.date.fromisoformat(request[k]) for k in ("first", "last"))
        body = MetricAggregateQuery.model_validate({"data": {
            "type": "metric-aggregate", "attributes": {
                "metric_id": metric_id, "measurements": [request["measurement"]],
                "interval": "day", "timezone": request["timezone"], "filter": [
                    f"greater-or-equal(datetime,{first.isoformat()}T00:00:00)",
                    f"less-than(datetime,{(last + dt.timedelta(days=1)).isoformat()}T00:00:00)"]}}})
        where = f"metric-aggregates {request['kpi']} {first}..{last}"
        document, path = self._call(where, request, lambda: self.metrics_api
                                    .query_metric_aggregates_without_preload_content(
                                        body, _request_timeout=self.timeout))
        data = document.get("data")
        if not isinstance(data, dict):
            raise SchemaError(SOURCE, where, f"'data' is not a record: {_preview(data)}")
        request["moved"] = self.schemas.check("metric-aggregates", [data], where)
        return document, RawBatch(SOURCE, request, (path,))

    def _paged(self, endpoint: str, method: Callable[..., Any], **params: Any
               ) -> tuple[list[dict], RawBatch]:
        records, cursor, page, paths, seen = [], None, 0, [], set()
        while True:
            page += 1
            where = f"{endpoint} page {page}"
            request = {"kind": endpoint, "page": page, "cursor": cursor, **params}
            document, path = self._call(
                where, request, lambda cursor=cursor: method(
                    page_cursor=cursor, _request_timeout=self.timeout, **params))
            paths.append(path)
            data = document.get("data")
            if not isinstance(data, list):
                raise SchemaError(SOURCE, where, "'data' is not a list of records")
            self.schemas.check(endpoint, data, where)
            records += data
            cursor = next_cursor(document)
            if cursor in seen:
                raise SourceError(SOURCE, where, f"links.next points back to an earlier page "
                                  f"(cursor {cursor[:40]!r}): the pagination loops; stopped")
            seen.add(cursor)
            if cursor is None:
                return records, RawBatch(SOURCE, {"kind": endpoint, **params}, tuple(paths))

    def _call(self, where: str, request: dict, send: Callable[[], Any]) -> tuple[dict, str]:
        def attempt() -> bytes:
            self.throttle()
            response = send()
            body = response.data
            if not 200 <= response.status < 300:
                raise _HttpStatus(response.status, body, response.headers.get("Retry-After"))
            return body

        try:
            body = self.policy.run(attempt, lambda exc: classify(exc, self.host), SOURCE, where)
        except _HttpStatus as exc:
            raise SourceError(SOURCE, where, f"HTTP {exc.status}: {exc.detail()}") from None
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - final: name it without request details
            raise SourceError(SOURCE, where, f"{type(exc).__name__}: {exc}") from None
        path = self.landing.land(body, request)
        try:
            document = read_json(body)
        except ValueError:
            raise SourceError(SOURCE, where, "the response is not JSON (kept in raw landing)"
                              ) from None
        if not isinstance(document, dict):
            raise SchemaError(SOURCE, where, "the response is not a JSON:API document (kept in "
                              "raw landing)")
        return document, path


def classify(exc: Exception, host: str = "the Klaviyo API") -> Retry | None:
    import urllib3

    if isinstance(exc, _HttpStatus):
        if exc.status == 429:
            return Retry("HTTP 429 rate limited", after=retry_after(exc.retry_after))
        if exc.status >= 500:
            return Retry(f"HTTP {exc.status}")
        return None
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return classify(exc.reason, host) if isinstance(exc.reason, Exception) else None
    if isinstance(exc, (urllib3.exceptions.SSLError, urllib3.exceptions.LocationValueError,
                        urllib3.exceptions.ProxySchemeUnknown)):
        return None  # a bad certificate or URL does not fix itself: final
    if isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
        return Retry(f"connection to {host} failed ({type(exc).__name__})")
    return None


def next_cursor(document: dict) -> str | None:
    """The ``page[cursor]`` value of ``links.next``, or None on the last page."""
    link = (document.get("links") or {}).get("next")
    if not link:
        return None
    values = parse_qs(urlparse(link).query).get("page[cursor]")
    if not values:
        raise SourceError(SOURCE, "pagination", f"links.next has no page[cursor]: {link}")
    return values[0]


def parse_aggregate(document: dict, request: dict, tenant: str) -> pl.DataFrame:
    """A metric-aggregate document -> one ``outcome_daily`` row per day, after checking its
    shape: a list of ISO dates and, for the requested measurement, one number (or null) per
    date. Anything else is refused with the window it came from, never stored as zeros."""
    where = (f"metric-aggregates {request.get('kpi')} {request.get('first')}.."
             f"{request.get('last')}")
    moved = request.get("moved") or {}
    attributes = document.get("data") if isinstance(document, dict) else None
    dates = _locate(attributes, "attributes.dates", moved) if attributes else _MISSING
    series = _locate(attributes, "attributes.data", moved) if attributes else _MISSING
    if not isinstance(dates, list) or not all(isinstance(d, str) for d in dates):
        raise SchemaError(SOURCE, where, f"'attributes.dates' is not a list of dates: "
                          f"{_preview(dates)}")
    if dates and (not isinstance(series, list) or not series):
        raise SchemaError(SOURCE, where, f"{len(dates)} date(s) but no values ('attributes.data'"
                          f" is {_preview(series)}); nothing stored, earlier values kept")
    values = ((series[0].get("measurements") or {}).get(request["measurement"])
              if dates and isinstance(series[0], dict) else [])
    if not isinstance(values, list) or len(values) != len(dates):
        raise SchemaError(SOURCE, where, f"{len(dates)} date(s) but {_preview(values)} as "
                          f"'{request['measurement']}' values")
    bad = [v for v in values if v is not None and (
        isinstance(v, bool) or not isinstance(v, int | float | Decimal))]
    if bad:
        raise SchemaError(SOURCE, where, f"values must be numbers; got {_preview(bad[0])}")
    try:
        days = [dt.date.fromisoformat(d[:10]) for d in dates]
    except ValueError:
        raise SchemaError(SOURCE, where, "a date is not ISO 8601: " + _preview(
            next(d for d in dates if not _iso(d[:10])))) from None
    return outcome_frame(pl.DataFrame({
        "tenant": tenant, "source": SOURCE, "date": days, "kpi": request["kpi"],
        "value": [str(v) if v is not None else None for v in values]},
        schema_overrides={"value": pl.Utf8, "date": pl.Date}))


def _iso(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
        return True
    except ValueError:
        return False


def _preview(value: Any) -> str:
    text = json.dumps(value, default=lambda v: float(v) if isinstance(v, Decimal) else str(v)
                      ) if value is not _MISSING else "missing"
    return text if len(text) <= 80 else text[:77] + "..."


def read_json(body: bytes) -> Any:
    """A response body with its numbers exact: ``24070.49`` stays Decimal('24070.49')."""
    return json.loads(body, parse_float=Decimal)


def reviews(credentials: Any, tenant: str, first: dt.date, last: dt.date,
            home: DataHome | None = None, policy: RetryPolicy | None = None,
            timeout: tuple[float, float] = (10.0, 60.0)) -> pl.DataFrame:
    """Product reviews created ``first .. last`` (Klaviyo Reviews API), landed raw page by page,
    as texts for Lift Sentiment: date, text (title and content), source ``klaviyo``, campaign
    (the product), rating. Klaviyo gives no language: ``en`` is assumed (score with the model
    where reviews come in other languages)."""
    home = home or DataHome()
    bookmarks = Bookmarks(tenant, SOURCE, home)
    reader = _Reader(credentials.client(), RawLanding(tenant, SOURCE, home),
                     policy or RetryPolicy(), None,
                     _Schemas(bookmarks, home.folder(tenant, "quality") / DRIFT_LOG), timeout)
    records, _ = reader.reviews(first, last)
    reader.schemas.save()
    rows = []
    for record in records:
        attributes = record.get("attributes") or {}
        title = (attributes.get("title") or "").strip()
        content = (attributes.get("content") or "").strip()
        product = attributes.get("product") or {}
        rows.append({"id": str(record["id"]), "date": str(attributes["created"])[:10],
                     "text": f"{title}. {content}" if title and content else title or content,
                     "source": "klaviyo", "channel": "", "campaign": product.get("name") or "",
                     "language": "en", "rating": attributes.get("rating")})
    return pl.DataFrame(rows, schema={"id": pl.Utf8, "date": pl.Utf8, "text": pl.Utf8,
                                      "source": pl.Utf8,
                                      "channel": pl.Utf8, "campaign": pl.Utf8,
                                      "language": pl.Utf8, "rating": pl.Int64})


def campaign_frame(records: list[dict]) -> pl.DataFrame:
    """Campaigns as flat columns (``attributes.send_options.use_smart_sending``) keyed by id;
    ``send_time`` is resolved even when the field moved."""
    rows = [{**flatten(r), "send_time": _locate(r, "attributes.send_time", {})} for r in records]
    return pl.DataFrame(rows, infer_schema_length=None)


def parse_batch(table: str, request: dict, pages: list[bytes], tenant: str,
                template: Template) -> pl.DataFrame:
    """A recorded batch's pages -> its rows again (``rebuild``)."""
    documents = [read_json(page) for page in pages]
    if table == "klaviyo_campaigns":
        return campaign_frame([r for d in documents for r in d.get("data") or []])
    return parse_aggregate(documents[0], request, tenant)


def replay(request: dict, pages: list[bytes], tenant: str, template: Template
           ) -> Iterator[tuple[str, pl.DataFrame]]:
    """Rows of landed pages (``rebuild`` of data landed before batches were recorded)."""
    if request.get("kind") == "metric-aggregates":
        for page in pages:
            yield "outcome_daily", parse_aggregate(read_json(page), request, tenant)


_MISSING = object()


def _locate(record: dict, path: str, moved: dict[str, str]) -> Any:
    """The value at ``path``; else at where drift says it moved; else the only field with the
    same name anywhere in the record; else ``_MISSING``."""
    for candidate in (path, moved.get(path)):
        value = _at(record, candidate) if candidate else _MISSING
        if value is not _MISSING:
            return value
    leaf = path.rsplit(".", 1)[-1]
    matches = [v for p, v in _leaves(record) if p.rsplit(".", 1)[-1] == leaf]
    return matches[0] if len(matches) == 1 else _MISSING


def _at(record: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(record, dict) or key not in record:
            return _MISSING
        record = record[key]
    return record


def _leaves(record: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(record, dict):
        for key, value in record.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path, value
            yield from _leaves(value, path)

"""Google Ads: daily campaign metrics through the ``google-ads`` SDK (API v26, GAQL over
``GoogleAdsService.SearchStream``).

* The configured customer is expanded through ``customer_client``: a manager account yields its
  client accounts, a client account itself. Each account has its own bookmark, time zone and
  currency; "yesterday" is computed in the account's time zone.
* Each streamed response message is landed verbatim (protobuf wire bytes) before parsing;
  ``rebuild`` parses the same bytes again.
* Errors: ``GoogleAdsException`` (internal and quota errors retried, others final with the
  error code, message and request id), ``ResourceExhausted`` (retried after its RetryInfo
  delay), UNAVAILABLE/INTERNAL/DEADLINE_EXCEEDED (retried with backoff), all under one
  :class:`RetryPolicy`. A stream that breaks mid-way is re-read whole; identical pages are
  landed once and upserts are idempotent.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from liftos.config import Template
from liftos.home import DataHome
from liftos.ingest.curate import Curator
from liftos.ingest.files import with_channels
from liftos.ingest.landing import RawBatch, RawLanding
from liftos.ingest.retry import Retry, RetryPolicy, SourceError, retry_after
from liftos.ingest.state import Bookmarks
from liftos.ingest.sync import Progress, SyncResult, SyncSettings, sync_stream, yesterday
from liftos.ingest.tables import media_frame

SOURCE = "google_ads"
API_VERSION = "v26"
CLIENTS_QUERY = (
    "SELECT customer_client.client_customer, customer_client.id, customer_client.manager, "
    "customer_client.level, customer_client.status, customer_client.currency_code, "
    "customer_client.time_zone, customer_client.descriptive_name FROM customer_client")
CAMPAIGN_QUERY = (
    "SELECT customer.id, customer.currency_code, customer.time_zone, campaign.id, "
    "campaign.name, segments.date, metrics.cost_micros, metrics.impressions, metrics.clicks, "
    "metrics.conversions, metrics.conversions_value FROM campaign "
    "WHERE segments.date BETWEEN '{first}' AND '{last}'")
ENABLED = 2  # CustomerStatusEnum.ENABLED
RETRYABLE_ADS_ERRORS = {"internal_error", "quota_error"}


class GoogleAdsSettings(SyncSettings):
    """``sources.google_ads`` in a tenant file."""

    customer_id: str


@dataclass(frozen=True)
class Account:
    customer_id: str
    currency: str
    time_zone: str
    name: str


def sync(credentials: Any, tenant: str, template: Template, settings: GoogleAdsSettings,
         since: dt.date | None = None, until: dt.date | None = None,
         home: DataHome | None = None, policy: RetryPolicy | None = None,
         throttle: Callable[[], None] | None = None, progress: Progress | None = None,
         curator: Curator | None = None) -> SyncResult:
    """Load every client account's daily campaign metrics into ``media_daily``.

    ``credentials`` is a :class:`blocks.credentials.GoogleAdsCredentials` (anything with
    ``client(login_customer_id)``); ``throttle`` is called before every request (the Prefect
    task passes a global rate limit)."""
    started = time.perf_counter()
    home = home or DataHome()
    root = settings.customer_id.replace("-", "")
    client = credentials.client(login_customer_id=getattr(credentials, "login_customer_id", None)
                                or root)
    policy = policy or RetryPolicy()
    _authorize(client.credentials, policy)
    reader = _Reader(client.get_service("GoogleAdsService", version=API_VERSION),
                     RawLanding(tenant, SOURCE, home), policy, throttle)
    curator = curator or Curator(tenant, home, f"{SOURCE}-{dt.date.today().isoformat()}")
    bookmarks = Bookmarks(tenant, SOURCE, home)
    result = SyncResult(SOURCE)
    accounts = reader.accounts(root)
    bookmarks.set_extra("accounts", [a.__dict__ for a in accounts])
    for account in accounts:
        def read_chunk(first: dt.date, last: dt.date, account: Account = account):
            payloads, raw = reader.campaign_days(account, first, last)
            yield "media_daily", parse_campaign_pages(payloads, tenant, template), raw

        sync_stream(account.customer_id, f"google_ads account {account.customer_id}",
                    bookmarks, settings, since, until or yesterday(account.time_zone), result,
                    curator, read_chunk, progress)
    result.quality, result.seconds = curator.reports, time.perf_counter() - started
    return result


def _authorize(credentials: Any, policy: RetryPolicy) -> None:
    """Get the access token first: a revoked refresh token then fails as itself, not as the
    UNAVAILABLE status gRPC reports for a failing auth plugin."""
    try:
        policy.run(lambda: credentials.refresh(_one_attempt_transport()), classify, SOURCE,
                   "OAuth token refresh")
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - final: say what it was
        raise SourceError(SOURCE, "OAuth token refresh", describe(exc)) from None


class TokenEndpointBusy(Exception):
    """The OAuth token endpoint answered with a status worth retrying (5xx, 429)."""

    def __init__(self, status: int, retry_after: str | None):
        super().__init__(f"OAuth token endpoint HTTP {status}")
        self.status, self.retry_after = status, retry_after


def _one_attempt_transport():
    """google-auth's token refresh retries retryable statuses by itself (3 attempts with its own
    backoff, no Retry-After ceiling). Raising on those statuses from the transport ends its loop
    after one attempt, so :class:`RetryPolicy` is the only retry layer."""
    from google.auth import transport
    from google.auth.transport.requests import Request

    class OneAttempt(Request):
        def __call__(self, *args: Any, **kwargs: Any):
            response = super().__call__(*args, **kwargs)
            if response.status in transport.DEFAULT_RETRYABLE_STATUS_CODES:
                raise TokenEndpointBusy(response.status, response.headers.get("Retry-After"))
            return response

    return OneAttempt()


class _Reader:
    """Requests with landing and the retry policy; knows nothing of tables."""

    def __init__(self, service: Any, landing: RawLanding, policy: RetryPolicy,
                 throttle: Callable[[], None] | None):
        self.service, self.landing, self.policy = service, landing, policy
        self.throttle = throttle or (lambda: None)

    def accounts(self, root: str) -> list[Account]:
        pages, _ = self._stream(root, CLIENTS_QUERY, {"kind": "customer_client"})
        accounts = []
        for page in pages:
            for row in _response_type().FromString(page).results:
                client = row.customer_client
                if not client.manager and client.status == ENABLED:
                    accounts.append(Account(str(client.id), client.currency_code,
                                            client.time_zone, client.descriptive_name))
        if not accounts:
            raise SourceError(SOURCE, f"customer {root}",
                              "no enabled client account under this customer")
        return sorted(accounts, key=lambda a: a.customer_id)

    def campaign_days(self, account: Account, first: dt.date, last: dt.date
                      ) -> tuple[list[bytes], RawBatch]:
        query = CAMPAIGN_QUERY.format(first=first.isoformat(), last=last.isoformat())
        return self._stream(account.customer_id, query, {
            "kind": "campaign_days", "first": first.isoformat(), "last": last.isoformat()})

    def _stream(self, customer_id: str, query: str, request: dict[str, Any]
                ) -> tuple[list[bytes], RawBatch]:
        """The messages of one successful stream, and the landed pages that hold them (pages
        of a broken attempt stay in raw but are not part of the batch)."""
        request = {**request, "customer_id": customer_id, "api_version": API_VERSION,
                   "query": query}
        label = f"SearchStream customer {customer_id} ({request['kind']}" + (
            f" {request['first']}..{request['last']})" if "first" in request else ")")

        def attempt() -> tuple[list[bytes], RawBatch]:
            self.throttle()
            pages, paths = [], []
            for message in self.service.search_stream(customer_id=customer_id, query=query):
                payload = _wire_bytes(message)
                paths.append(self.landing.land(payload, request, suffix=".pb"))
                pages.append(payload)
            return pages, RawBatch(SOURCE, request, tuple(paths))

        try:
            return self.policy.run(attempt, classify, SOURCE, label)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - every other failure is final: say what it was
            raise SourceError(SOURCE, label, describe(exc)) from None


def parse_campaign_pages(pages: list[bytes], tenant: str, template: Template) -> pl.DataFrame:
    """Streamed ``SearchGoogleAdsStreamResponse`` messages -> canonical ``media_daily`` rows."""
    columns: dict[str, list] = {k: [] for k in (
        "account_id", "currency", "campaign_id", "campaign_name", "date", "spend_micros",
        "impressions", "clicks", "conversions", "conversion_value")}
    response_type = _response_type()
    for page in pages:
        for row in response_type.FromString(page).results:
            metrics = row.metrics
            columns["account_id"].append(str(row.customer.id))
            columns["currency"].append(row.customer.currency_code)
            columns["campaign_id"].append(str(row.campaign.id))
            columns["campaign_name"].append(row.campaign.name)
            columns["date"].append(row.segments.date)
            columns["spend_micros"].append(metrics.cost_micros)
            columns["impressions"].append(metrics.impressions)
            columns["clicks"].append(metrics.clicks)
            columns["conversions"].append(metrics.conversions)
            columns["conversion_value"].append(metrics.conversions_value)
    frame = pl.DataFrame(columns, schema_overrides={"spend_micros": pl.Int64}).with_columns(
        pl.col("date").str.to_date(), pl.lit(tenant).alias("tenant"),
        pl.lit(SOURCE).alias("source"))
    return media_frame(with_channels(frame, template.channel_rules, SOURCE))


def parse_batch(table: str, request: dict[str, Any], pages: list[bytes], tenant: str,
                template: Template) -> pl.DataFrame:
    """A recorded batch's pages -> its rows again (``rebuild``)."""
    return parse_campaign_pages(pages, tenant, template)


def replay(request: dict[str, Any], pages: list[bytes], tenant: str,
           template: Template) -> Iterator[tuple[str, pl.DataFrame]]:
    """Landed pages -> rows (``rebuild`` of data landed before batches were recorded)."""
    if request.get("kind") == "campaign_days":
        yield "media_daily", parse_campaign_pages(pages, tenant, template)


def classify(exc: Exception) -> Retry | None:
    """Which failures are worth another attempt, and after how long."""
    import grpc
    from google.ads.googleads.errors import GoogleAdsException
    from google.api_core import exceptions as core
    from google.auth import exceptions as auth

    if isinstance(exc, GoogleAdsException):
        codes = _error_codes(exc)
        if RETRYABLE_ADS_ERRORS & {code.split(".")[0] for code in codes}:
            return Retry(describe(exc), after=_quota_delay(exc))
        return None
    if isinstance(exc, core.ResourceExhausted):
        return Retry("quota exhausted (RESOURCE_EXHAUSTED)", after=_retry_info(exc.details))
    if _untrusted_certificate(exc):
        return None  # gRPC reports it as UNAVAILABLE, but it will not fix itself
    if isinstance(exc, (core.ServiceUnavailable, core.InternalServerError,
                        core.DeadlineExceeded, core.Aborted)):
        return Retry(f"{type(exc).__name__}: {exc.message}")
    if isinstance(exc, grpc.RpcError) and exc.code() in (
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
            grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return Retry(f"{exc.code().name}: {exc.details()}", after=_rpc_retry_delay(exc))
    if isinstance(exc, TokenEndpointBusy):
        return Retry(str(exc), after=retry_after(exc.retry_after))
    if isinstance(exc, auth.TransportError) and not _permanent_transport_error(exc):
        return Retry("OAuth token endpoint unreachable")
    return None


def _untrusted_certificate(exc: Exception) -> bool:
    text = str(getattr(exc, "message", "") or exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "Ssl handshake failed" in text


def _permanent_transport_error(exc: Exception) -> bool:
    """A bad URL or an untrusted certificate will not fix itself: final, not retried."""
    import requests

    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, (requests.exceptions.SSLError, requests.exceptions.InvalidURL,
                              requests.exceptions.MissingSchema,
                              requests.exceptions.InvalidSchema))


def describe(exc: Exception) -> str:
    """A failure in words: error codes, messages and request id; never request metadata."""
    from google.ads.googleads.errors import GoogleAdsException
    from google.auth import exceptions as auth

    if isinstance(exc, GoogleAdsException):
        errors = "; ".join(f"{code}: {error.message}" for code, error in
                           zip(_error_codes(exc), exc.failure.errors))
        return f"GoogleAdsException {errors} (request id {exc.request_id})"
    if isinstance(exc, auth.RefreshError):
        return f"OAuth token refresh failed: {exc.args[0] if exc.args else exc}"
    if _untrusted_certificate(exc):
        return (f"the server's TLS certificate is not trusted ({type(exc).__name__}: "
                f"{getattr(exc, 'message', exc)}); check the endpoint, or the trusted roots "
                "(GRPC_DEFAULT_SSL_ROOTS_FILE_PATH)")
    return f"{type(exc).__name__}: {exc}"


def _error_codes(exc: Any) -> list[str]:
    """``quota_error.RESOURCE_EXHAUSTED``-style names of a GoogleAdsException's errors."""
    codes = []
    for error in exc.failure.errors:
        code = error.error_code
        pb = type(code).pb(code) if hasattr(type(code), "pb") else code
        kind = pb.WhichOneof("error_code") or "unknown"
        codes.append(f"{kind}.{_enum_name(pb, kind)}" if kind != "unknown" else kind)
    return codes


def _enum_name(pb: Any, field: str) -> str:
    value = getattr(pb, field)
    enum = pb.DESCRIPTOR.fields_by_name[field].enum_type
    return enum.values_by_number[value].name if enum and value in enum.values_by_number else ""


def _quota_delay(exc: Any) -> float | None:
    for error in exc.failure.errors:
        delay = error.details.quota_error_details.retry_delay
        if delay.seconds or delay.nanos:
            return delay.seconds + delay.nanos / 1e9
    return None


def _retry_info(details: list | None) -> float | None:
    from google.rpc import error_details_pb2

    for detail in details or []:
        if isinstance(detail, error_details_pb2.RetryInfo):
            return detail.retry_delay.seconds + detail.retry_delay.nanos / 1e9
    return None


def _rpc_retry_delay(exc: Any) -> float | None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(exc)
    except Exception:  # noqa: BLE001 - malformed status details: fall back to backoff
        return None
    for detail in status.details if status else []:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def _wire_bytes(message: Any) -> bytes:
    pb = type(message).pb(message) if hasattr(type(message), "pb") else message
    return pb.SerializeToString()


def _response_type():
    from google.ads.googleads.v26.services.types import google_ads_service

    return google_ads_service.SearchGoogleAdsStreamResponse.pb()

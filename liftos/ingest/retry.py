"""One retry policy for every source: bounded exponential backoff with jitter, server-requested
delays (Retry-After, gRPC RetryInfo) honoured up to a ceiling.

The SDKs' own retry layers are switched off where they exist (klaviyo-api's backoff and the
urllib3 retries under it), so a request is retried in exactly one place and a failing source
costs at most ``max_attempts`` requests, not attempts multiplied across stacked layers.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from liftos.errors import LiftOSError, redact

log = logging.getLogger("liftos.ingest")
T = TypeVar("T")


class SourceError(LiftOSError):
    """A source request failed for good: names the source, the request and why (never a secret)."""

    def __init__(self, source: str, request: str, reason: str):
        reason = redact(reason)
        super().__init__(f"{source}: {request}: {reason}")
        self.source, self.request, self.reason = source, request, reason


@dataclass(frozen=True)
class Retry:
    """The verdict on a failed attempt: retry, after ``after`` seconds if the server said so."""

    reason: str
    after: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    ceiling: float = 120.0  # the longest server-requested wait we honour; beyond it we fail
    jitter: float = 0.2
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` (attempt counts from 1)."""
        delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay * (1 + self.jitter * (2 * random.random() - 1))

    def run(self, call: Callable[[], T], classify: Callable[[Exception], Retry | None],
            source: str, request: str) -> T:
        """``call()`` until it succeeds, ``classify`` says the error is final, or attempts run out.

        ``classify`` returns None for errors not worth retrying (bad credentials, a bad query);
        those are re-raised as they are, for the caller to turn into a precise message."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return call()
            except Exception as exc:
                verdict = classify(exc)
                if verdict is None:
                    raise
                if verdict.after is not None and verdict.after > self.ceiling:
                    raise SourceError(source, request, (
                        f"{verdict.reason}; the server asks to wait {verdict.after:g} s, above "
                        f"the {self.ceiling:g} s ceiling: try again later")) from None
                if attempt == self.max_attempts:
                    raise SourceError(source, request, (
                        f"{verdict.reason}; gave up after {attempt} attempts")) from None
                delay = verdict.after if verdict.after is not None else self.backoff(attempt)
                log.warning("%s: %s: %s; retry %d/%d in %.2f s", source, request,
                            redact(verdict.reason),
                            attempt, self.max_attempts - 1, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")


def retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110).
    None when absent or unreadable (the policy then backs off by itself)."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())

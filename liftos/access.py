"""Who may see and do what: API tokens bound to tenants and scopes, a rate limit, an audit.

A token is ``lft_<id>_<secret>``: the id is public (it names the token in lists, logs and the
audit); the secret is 32 random bytes and only its SHA-256 is stored, in
``<home>/access/tokens.json`` (the secret has full entropy, so a slow hash adds nothing; a
constant-time comparison stops timing probes). The plain token is shown once, at creation.

Scopes: ``read`` (everything a tenant has), ``trigger`` (start a refresh), ``approve``
(answer a pending budget plan). Every act is appended to ``<home>/access/audit.jsonl``.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from liftos.errors import LiftOSError
from liftos.home import DataHome, write_json
from liftos.tenancy import valid_tenant_name

Scope = Literal["read", "trigger", "approve"]
SCOPES: tuple[Scope, ...] = ("read", "trigger", "approve")
TOKEN = re.compile(r"lft_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class AccessError(LiftOSError):
    """A token command that cannot be done (unknown token, bad tenant or scope)."""


class Token(BaseModel):
    """A stored token: everything but the secret, which is kept only as its hash."""

    id: str
    name: str
    tenants: tuple[str, ...]
    scopes: tuple[Scope, ...]
    secret_sha256: str
    created_at: str
    revoked_at: str | None = None

    def may(self, tenant: str, scope: Scope = "read") -> bool:
        return self.revoked_at is None and tenant in self.tenants and scope in self.scopes

    def public(self) -> dict[str, Any]:
        return self.model_dump(exclude={"secret_sha256"})


class TokenStore:
    """Tokens of one LiftOS home; reads are cached until the file changes (another process
    may create or revoke a token while the API runs)."""

    def __init__(self, home: DataHome | None = None):
        self.folder = (home or DataHome()).root / "access"
        self.path = self.folder / "tokens.json"
        self._cache: tuple[float, dict[str, Token]] | None = None

    def create(self, name: str, tenants: list[str], scopes: list[str]) -> tuple[Token, str]:
        """A new token; returns it and its plain text, which is never stored."""
        if not name.strip():
            raise AccessError("a token needs a name (who or what uses it)")
        bad = [t for t in tenants if not valid_tenant_name(t)]
        if bad or not tenants:
            raise AccessError(f"tenants {bad or '(none)'}: give one or more tenant names "
                              "(lowercase letters, digits, '-' or '_')")
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise AccessError(f"scopes {unknown or '(none)'}: choose from {', '.join(SCOPES)}")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        token = Token(id=token_id, name=name.strip(), tenants=tuple(dict.fromkeys(tenants)),
                      scopes=tuple(s for s in SCOPES if s in scopes),
                      secret_sha256=_digest(secret), created_at=_now())
        with self._locked() as tokens:
            tokens[token.id] = token
        return token, f"lft_{token_id}_{secret}"

    def revoke(self, token_id: str) -> Token:
        with self._locked() as tokens:
            if token_id not in tokens:
                raise AccessError(f"no token with id {token_id!r} (see `liftos api token list`)")
            token = tokens[token_id]
            if token.revoked_at is None:
                token = tokens[token_id] = token.model_copy(update={"revoked_at": _now()})
        return token

    def list(self) -> list[Token]:
        return sorted(self._read().values(), key=lambda t: t.created_at)

    def authenticate(self, presented: str | None) -> Token | None:
        """The live token whose secret this is, else None (malformed, unknown, revoked)."""
        match = TOKEN.fullmatch(presented or "")
        if not match:
            return None
        token = self._read().get(match.group(1))
        if token is None or token.revoked_at is not None:
            return None
        return token if hmac.compare_digest(token.secret_sha256, _digest(match.group(2))) else None

    def _read(self) -> dict[str, Token]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._cache is None or self._cache[0] != stamp:
            raw = json.loads(self.path.read_text())
            self._cache = (stamp, {k: Token(**v) for k, v in raw.items()})
        return self._cache[1]

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Token]]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".tokens.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._cache = None
            tokens = dict(self._read())
            yield tokens
            write_json(self.path, {k: v.model_dump() for k, v in tokens.items()})


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_minute``.
    :meth:`take` returns 0 when the request may go, else the seconds until it may."""

    def __init__(self, per_minute: float = 600, burst: int = 60):
        self.rate, self.burst = per_minute / 60.0, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            level, then = self._buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - then) * self.rate)
            if level < 1.0:
                self._buckets[key] = (level, now)
                return (1.0 - level) / self.rate
            self._buckets[key] = (level - 1.0, now)
            return 0.0


class ActLog:
    """Every act through the API (who, what, on which tenant, when, how it ended), append-only."""

    def __init__(self, home: DataHome | None = None):
        self.path = (home or DataHome()).root / "access" / "audit.jsonl"

    def record(self, token: Token, action: str, tenant: str, outcome: str,
               detail: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = {"at": _now(), "token_id": token.id, "token_name": token.name,
                 "action": action, "tenant": tenant, "outcome": outcome, **(detail or {})}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            log.write(json.dumps(entry) + "\n")
        return entry

    def entries(self, tenant: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [r for r in rows if tenant is None or r["tenant"] == tenant]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

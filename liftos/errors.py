"""Errors a user can act on: each names where the problem is and which rule it broke."""

from __future__ import annotations

from dataclasses import dataclass


class LiftOSError(Exception):
    """Base class for errors that the CLI reports as a one-line message, without a traceback."""


@dataclass
class InputError(LiftOSError):
    """Bad input data: names the file, column, row (file line) and the rule that failed."""

    rule: str
    message: str
    file: str | None = None
    column: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = [part for part in (
            self.file,
            f"column '{self.column}'" if self.column else None,
            f"line {self.line}" if self.line is not None else None,
        ) if part]
        prefix = ", ".join(where)
        return f"{prefix}: {self.message} [rule: {self.rule}]" if prefix else (
            f"{self.message} [rule: {self.rule}]")


class ConfigError(LiftOSError):
    """An invalid template or tenant configuration (file, key path and expected type)."""


_SECRETS: set[str] = set()
REDACTED = "***"


def register_secret(value: str | None) -> None:
    """Remember a configured credential so that :func:`redact` removes it from any text, even
    text a server echoed back (an OAuth error quoting the request body, a 401 quoting the
    Authorization header)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` without any registered secret (longest first, so no fragment survives)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text

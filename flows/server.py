"""The production Prefect server: PostgreSQL behind it, in a database of its own that we create.

SQLite (the embedded default) answers "database is locked" (HTTP 503) once a server, workers
and flows write at once; Prefect's own guidance is PostgreSQL beyond a single user. The server
applies its migrations when it starts (``PREFECT_SERVER_DATABASE_MIGRATE_ON_START``, on by
default), so creating the database is the one step it does not do itself.
"""

from __future__ import annotations

import asyncio
import os
import sys

from liftos.errors import ConfigError, register_secret

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/liftos_prefect"
URL_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"


def shown(url: str) -> str:
    """The URL as it may be printed: any password replaced by ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def ensure_database(url: str, timeout: float = 10.0) -> bool:
    """Create the database ``url`` names if it does not exist; True when it was created.
    Errors name the URL without its password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ConfigError(f"{shown(url)}: not a PostgreSQL URL (expected "
                          "postgresql+asyncpg://USER[:PASSWORD]@HOST:PORT/DATABASE)")
    if not parsed.database:
        raise ConfigError(f"{shown(url)}: no database name after the last '/'")
    register_secret(parsed.password)
    try:
        return asyncio.run(_ensure(parsed, timeout))
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"PostgreSQL at {shown(url)} is unreachable "
                          f"({type(exc).__name__}: {_reason(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - asyncpg's errors: say which, never the password
        raise ConfigError(f"PostgreSQL at {shown(url)} refused: {type(exc).__name__}: "
                          f"{_reason(exc)}") from None


async def _ensure(parsed, timeout: float) -> bool:
    import asyncpg

    connection = await asyncpg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username,
        password=parsed.password, database="postgres", timeout=timeout)
    try:
        exists = await connection.fetchval("select 1 from pg_database where datname = $1",
                                           parsed.database)
        if exists:
            return False
        await connection.execute(f'create database "{parsed.database}"')
        return True
    finally:
        await connection.close()


def drop_database(url: str) -> None:
    """Drop the database (tests clean up after themselves); its open sessions are ended."""
    from sqlalchemy.engine import make_url

    asyncio.run(_drop(make_url(url)))


async def _drop(parsed) -> None:
    import asyncpg

    connection = await asyncpg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                                       user=parsed.username, password=parsed.password,
                                       database="postgres")
    try:
        await connection.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                                 "where datname = $1 and pid <> pg_backend_pid()",
                                 parsed.database)
        await connection.execute(f'drop database if exists "{parsed.database}"')
    finally:
        await connection.close()


def server_command(url: str, host: str = "127.0.0.1", port: int = 4200
                   ) -> tuple[list[str], dict[str, str]]:
    """``prefect server start`` on ``url``: the command and its environment."""
    env = {**os.environ, URL_ENV: url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port",
            str(port)], env


def check_api() -> str:
    """The configured Prefect API, answering; else a clear error (the URL without any
    password) instead of a client traceback."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ConfigError("PREFECT_API_URL is not set: start a server (`liftos server start`) "
                          "and export PREFECT_API_URL=http://HOST:4200/api")
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise ConfigError(f"the Prefect API at {_without_password(url)} does not answer "
                          f"({type(exc).__name__}); is the server running?") from None
    return url


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _reason(exc: Exception) -> str:
    from liftos.errors import redact

    return redact(str(exc) or exc.__class__.__doc__ or "")[:200]

"""Where LiftOS's memory lives when it is not the embedded store: a Chroma server."""

from __future__ import annotations

import os
from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from liftos.errors import LiftOSError, register_secret
from liftos.memory.store import MemoryStore

BLOCK_ENV = "LIFTOS_CHROMA_BLOCK"


class ChromaServer(Block):
    """A Chroma server for the memory store (``liftos memory`` and the ``remember-run`` stage).

    Select it with ``LIFTOS_CHROMA_BLOCK=<block name>``; the token stays a secret field."""

    _block_type_name = "LiftOS Chroma Server"
    _block_type_slug = "liftos-chroma-server"
    _description = "A Chroma server holding LiftOS memories (one collection per tenant)."

    host: str = Field(default="127.0.0.1", description="Chroma server host")
    port: int = Field(default=8000, description="Chroma server port")
    ssl: bool = Field(default=False, description="Use HTTPS")
    token: SecretStr | None = Field(default=None, description="Bearer token, if the server needs one")

    def client(self) -> Any:
        import chromadb
        from chromadb.config import Settings

        headers = ({"Authorization": f"Bearer {self.token.get_secret_value()}"}
                   if self.token else None)
        if self.token:
            register_secret(self.token.get_secret_value())
        try:
            return chromadb.HttpClient(host=self.host, port=self.port, ssl=self.ssl,
                                       headers=headers,
                                       settings=Settings(anonymized_telemetry=False))
        except ValueError:  # chromadb says nothing (an empty ValueError): ask the server why
            raise LiftOSError(self._refusal(headers)) from None

    def _refusal(self, headers: dict | None) -> str:
        import httpx

        url = f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}/api/v2/heartbeat"
        try:
            status = httpx.get(url, headers=headers, timeout=10).status_code
        except httpx.HTTPError as exc:
            return f"Chroma server {self.host}:{self.port} unreachable ({type(exc).__name__})"
        if status in (401, 403):
            return (f"Chroma server {self.host}:{self.port} refused the memory store (HTTP "
                    f"{status}): the token in the ChromaServer block is not accepted")
        return f"Chroma server {self.host}:{self.port} answered HTTP {status}"


def memory_store() -> MemoryStore:
    """The memory store of this deployment: on the Chroma server of the block named by
    ``LIFTOS_CHROMA_BLOCK`` when set, else the library's default (``LIFTOS_CHROMA_HOST``, or
    embedded under ``LIFTOS_HOME``)."""
    name = os.environ.get(BLOCK_ENV)
    return MemoryStore(client=ChromaServer.load(name).client()) if name else MemoryStore()

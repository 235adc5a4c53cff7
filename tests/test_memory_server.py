"""The memory store against a real Chroma server (``chroma run`` on 127.0.0.1), selected through
the ``ChromaServer`` Prefect Block, as production would."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import free_port, local_server

from blocks.chroma import ChromaServer
from liftos.memory.store import Memory, MemoryStore


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    command = [chroma, "run", "--path", str(folder / "data"), "--host", "127.0.0.1",
               "--port", str(port)]
    with local_server(command, f"http://127.0.0.1:{port}/api/v2/heartbeat",
                      folder / "server.log", env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
                      timeout=60):
        yield port


def test_memory_on_a_chroma_server_through_the_block(prefect_api, chroma_server, monkeypatch):
    ChromaServer(host="127.0.0.1", port=chroma_server, token="s3cret-token").save(
        "liftos-memory", overwrite=True)
    monkeypatch.setenv("LIFTOS_CHROMA_BLOCK", "liftos-memory")
    store = MemoryStore()
    assert type(store.client).__name__ != "PersistentClient"
    memories = [Memory(tenant="acme", kind="insight", channel="tv", run_id="r1",
                       text="TV carry-over lasts about eight weeks"),
                Memory(tenant="beta", kind="insight", channel="tv", run_id="r1",
                       text="TV carry-over lasts about eight weeks at beta")]
    assert store.remember(memories) == 2
    assert store.remember(memories) == 2
    hits = MemoryStore().search("acme", "how long does television advertising last", k=5)
    assert [h.memory.tenant for h in hits] == ["acme"]
    assert "s3cret" not in repr(ChromaServer.load("liftos-memory"))

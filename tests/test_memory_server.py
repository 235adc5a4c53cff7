"""The memory store against a real Chroma server (``chroma run`` on 127.0.0.1), selected through
the ``ChromaServer`` Prefect Block, as production would."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from blocks.chroma import ChromaServer
from liftos.memory.store import Memory, MemoryStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = _free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = open(folder / "server.log", "w")
    server = subprocess.Popen([chroma, "run", "--path", str(folder / "data"), "--host",
                               "127.0.0.1", "--port", str(port)], stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ,
                                                             "ANONYMIZED_TELEMETRY": "False"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "server.log").read_text()[-2000:])
            time.sleep(0.3)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


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

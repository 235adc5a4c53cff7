"""The memory store against a real Chroma server (``chroma run`` on 127.0.0.1), selected through
the ``ChromaServer`` Prefect Block, as production would."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from support import free_port, local_server

from liftos.errors import LiftOSError
from liftos.memory.store import Memory
from liftos_app.blocks.chroma import ChromaServer, memory_store


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
    store = memory_store()
    assert type(store.client).__name__ != "PersistentClient"
    memories = [Memory(tenant="acme", kind="insight", channel="tv", run_id="r1",
                       text="TV carry-over lasts about eight weeks"),
                Memory(tenant="beta", kind="insight", channel="tv", run_id="r1",
                       text="TV carry-over lasts about eight weeks at beta")]
    assert store.remember(memories) == 2
    assert store.remember(memories) == 2
    hits = memory_store().search("acme", "how long does television advertising last", k=5)
    assert [h.memory.tenant for h in hits] == ["acme"]


@pytest.fixture(scope="module")
def guarded_chroma(chroma_server):
    """Chroma 1.x's server has no authentication of its own (its documentation puts a proxy
    such as Envoy in front): a token-checking proxy on 127.0.0.1 stands in for it here, so the
    Block's token really decides whether a request gets through."""
    import http.client
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    token, seen = "tok-3f9a1c77e2", []

    class Proxy(BaseHTTPRequestHandler):
        def _forward(self):
            seen.append(self.headers.get("Authorization", ""))
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            if self.headers.get("Authorization") != f"Bearer {token}":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            upstream = http.client.HTTPConnection("127.0.0.1", chroma_server, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            reply = upstream.getresponse()
            payload = reply.read()
            self.send_response(reply.status)
            for name, value in reply.getheaders():
                if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], token, seen
    server.shutdown()


def test_the_blocks_token_is_what_lets_memory_through(prefect_api, guarded_chroma, monkeypatch,
                                                      capfd, tmp_path):
    port, token, seen = guarded_chroma
    ChromaServer(host="127.0.0.1", port=port, token="wrong-token-000").save(
        "liftos-memory-wrong", overwrite=True)
    monkeypatch.setenv("LIFTOS_CHROMA_BLOCK", "liftos-memory-wrong")
    with pytest.raises(LiftOSError, match=r"refused the memory store \(HTTP 401\): the token "
                                          r"in the ChromaServer block is not accepted"):
        memory_store().remember([Memory(tenant="acme", kind="insight", text="refused")])
    assert seen and all(header == "Bearer wrong-token-000" for header in seen)
    seen.clear()
    ChromaServer(host="127.0.0.1", port=port, token=token).save("liftos-memory-right",
                                                                overwrite=True)
    monkeypatch.setenv("LIFTOS_CHROMA_BLOCK", "liftos-memory-right")
    store = memory_store()
    assert store.remember([Memory(tenant="gamma", kind="insight", run_id="r9",
                                  text="email drives repeat orders")]) == 1
    assert store.search("gamma", "repeat purchases", k=1)[0].memory.run_id == "r9"
    assert seen and all(header == f"Bearer {token}" for header in seen)
    exported = tmp_path / "gamma.jsonl"
    store.export("gamma", exported)
    captured = capfd.readouterr()
    assert token not in exported.read_text() + captured.out + captured.err
    assert token not in str(store.all("gamma"))

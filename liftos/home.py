"""The data home: where every tenant's raw inputs, panels, fits, run log and monitor checks live.

``LIFTOS_HOME`` (default ``./.liftos``)::

    tenants/<tenant>/
      raw/<sha256>.csv         inputs exactly as received (content-addressed, never rewritten)
      panels/<key>.parquet     validated weekly panels
      features/<key>/          model spec and design matrix of a validated panel
      fits/<key>/              posterior, summary, report of one fit (key: inputs + options)
      runs.jsonl               one line per completed refresh, append-only
      champion.json            the champion: the model in use (current.json before; still read)
      monitor/<week>.json      always-on checks

Every write is atomic: a temporary file in the same folder, then a rename.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from liftos.settings import settings


def liftos_home() -> Path:
    return settings().home


class DataHome:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).resolve() if root is not None else liftos_home()

    def tenant(self, tenant: str) -> Path:
        return self.root / "tenants" / tenant

    def identity(self) -> str:
        """A random id written when the home is first used. Cached stage results carry it in
        their inputs, so a home deleted and made again at the same path never serves a cached
        fit whose folder went with the old home."""
        path = self.root / ".home-id"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as tmp:
                tmp.write(uuid.uuid4().hex)
            try:
                os.link(tmp.name, path)  # atomic: of two first users, one id wins
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp.name)
        return path.read_text().strip()

    def folder(self, tenant: str, kind: str) -> Path:
        path = self.tenant(tenant) / kind
        previous = self.tenant(tenant) / f".{kind}.previous"
        if not path.exists() and previous.exists():  # a swap was interrupted: undo it
            os.rename(previous, path)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def staging(self, tenant: str, kind: str) -> Path:
        """An empty folder to build a new ``kind`` folder in (see :meth:`swap`); leftovers of
        a build that was killed are removed."""
        for stale in self.tenant(tenant).glob(f".{kind}.staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        path = self.tenant(tenant) / f".{kind}.staging-{os.getpid()}-{time.time_ns()}"
        path.mkdir(parents=True)
        return path

    def swap(self, tenant: str, kind: str, staging: Path) -> None:
        """Replace the ``kind`` folder by a complete ``staging`` folder: two renames, and
        :meth:`folder` restores the old one if a crash falls between them."""
        target = self.folder(tenant, kind)
        previous = self.tenant(tenant) / f".{kind}.previous"
        shutil.rmtree(previous, ignore_errors=True)
        os.rename(target, previous)
        os.rename(staging, target)
        shutil.rmtree(previous, ignore_errors=True)

    def champion(self, tenant: str) -> dict[str, Any] | None:
        """The pointer to the tenant's champion, or None before the first promotion (a home
        written before the rename holds it as ``current.json``)."""
        for name in ("champion.json", "current.json"):
            path = self.tenant(tenant) / name
            if path.exists():
                return json.loads(path.read_text())
        return None

    def set_champion(self, tenant: str, record: dict[str, Any]) -> None:
        self.tenant(tenant).mkdir(parents=True, exist_ok=True)
        write_json(self.tenant(tenant) / "champion.json", record)

    def append_run(self, tenant: str, record: dict[str, Any]) -> None:
        self.tenant(tenant).mkdir(parents=True, exist_ok=True)
        with open(self.tenant(tenant) / "runs.jsonl", "a") as log:
            log.write(json.dumps(record, default=json_default) + "\n")

    def runs(self, tenant: str) -> list[dict[str, Any]]:
        path = self.tenant(tenant) / "runs.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, default=json_default)))


def json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)

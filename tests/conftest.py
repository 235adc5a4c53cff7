"""Shared fixtures. Model fits are session-scoped: compiling a model costs seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LIFTOS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED_DATA / "mmm_example.csv"
    assert path.exists(), f"reference data missing: {path} (set LIFTOS_SHARED_DATA)"
    return SHARED_DATA


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path

"""Shared fixtures. Model fits are session-scoped: compiling a model costs seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED_DATA = REPO / "tests" / "data"


def _reference_data_dir() -> Path:
    """``LIFTOS_SHARED_DATA``, else ``../shared/data`` beside the checkout, else the bundled copy."""
    if "LIFTOS_SHARED_DATA" in os.environ:
        return Path(os.environ["LIFTOS_SHARED_DATA"])
    shared = REPO.parent / "shared" / "data"
    return shared if (shared / "mmm_example.csv").exists() else BUNDLED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    folder = _reference_data_dir()
    assert (folder / "mmm_example.csv").exists(), f"reference data missing in {folder}"
    return folder


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path

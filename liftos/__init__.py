"""LiftOS: causal marketing intelligence.

The library is importable and testable without a Prefect server; ``tasks/`` and ``flows/`` wrap it.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def code_version(package: Path = Path(__file__).parent) -> str:
    """A hash of the library's own source (every ``.py`` under ``package``).

    Cached results (fits, validations) carry it in their keys, so a change to the model, the
    features or the checks invalidates them; the version number alone would not."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]

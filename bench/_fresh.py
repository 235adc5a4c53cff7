"""Run one measurement of a bench script in its own process, from empty compile caches (so each
side of a comparison starts equally cold); the script prints its result as JSON on its last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def compile_cache_env(cache: Path) -> dict[str, str]:
    """The environment that keeps every compile cache of a process under ``cache``. PyTensor
    keeps its numba cache of compiled ops in ``base_compiledir``/numba, not in ``compiledir``:
    setting only ``compiledir`` left every run sharing ~/.pytensor/numba, so a "cold" run
    reused the ops earlier runs compiled."""
    return dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={cache}",
                NUMBA_CACHE_DIR=str(cache / "numba-own"))


def in_fresh_process(script: str, args: list[str], label: str) -> Any:
    cache = Path(tempfile.mkdtemp(prefix=f"liftos-bench-{label}-"))
    env = compile_cache_env(cache)
    done = subprocess.run([sys.executable, script, *args], env=env, cwd=REPO,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{label} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])

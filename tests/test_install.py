"""A plain (non-editable) install finds its templates, tenants, demo data and deployment files
inside the installed packages, not in the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel of this checkout installed into a bare folder (dependencies from this venv)."""
    folder = tmp_path_factory.mktemp("installed")
    source, wheels = folder / "source", folder / "wheels"
    # A copy: building in the checkout would leave a build/ folder a later build reuses.
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", ".liftos", "__pycache__", ".pytest_cache"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr[-2000:]
    target = folder / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q",
                           "--target", str(target), *map(str, wheels.glob("liftos-*.whl"))],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def _run(installed: Path, cwd: Path, code: str, env: dict | None = None, timeout: int = 60):
    environment = {**os.environ, "PYTHONPATH": str(installed), **(env or {})}
    for name in ("LIFTOS_TENANTS_DIR", "LIFTOS_TEMPLATES_DIR", "LIFTOS_DEPLOYMENTS_DIR"):
        environment.pop(name, None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_an_installed_package_resolves_every_folder_inside_itself(installed, tmp_path):
    code = ("import liftos, liftos_app.flows.refresh as r; from liftos.settings import settings;"
            "s = settings(); print(liftos.__file__, r.__file__, s.templates, s.tenants,"
            " s.deployments, s.prefect_yaml.is_file(), (s.tenants / 'data').is_dir())")
    done = _run(installed, tmp_path, code)
    assert done.returncode == 0, done.stderr[-3000:]
    *paths, prefect_yaml, data = done.stdout.split()
    assert all(Path(p).resolve().is_relative_to(installed.resolve()) for p in paths), paths
    assert (prefect_yaml, data) == ("True", "True")


def test_an_installed_package_holds_every_module_and_data_file_of_the_library(installed):
    """Every .py of liftos/ and of the application folders ships (a subpackage missing from
    pyproject's list installs nothing and fails only where it is imported)."""
    roots = {"liftos": REPO / "liftos", "liftos_app": REPO / "liftos_app",
             "liftos_app/flows": REPO / "flows", "liftos_app/tasks": REPO / "tasks",
             "liftos_app/blocks": REPO / "blocks", "liftos_app/hub": REPO / "hub"}
    missing = [f"{name}/{path.relative_to(root)}" for name, root in roots.items()
               for path in root.rglob("*") if path.suffix in {".py", ".md", ".yaml", ".json"}
               and "__pycache__" not in path.parts and path.name != "README.md"
               and not (installed / name / path.relative_to(root)).exists()]
    assert not missing, missing


@pytest.mark.slow
def test_liftos_demo_runs_from_an_installed_package(installed, tmp_path):
    """``liftos demo`` away from the checkout: bundled tenant, template, data and cluster spec."""
    code = ("import sys; from liftos_app.cli import main; sys.exit(main(['demo', '--draws', "
            "'200', '--tune', '200', '--chains', '2', '--recovery-replicas', '0']))")
    env = {"PREFECT_HOME": str(tmp_path / "prefect"), "LIFTOS_HOME": str(tmp_path / "home")}
    done = _run(installed, tmp_path, code, env, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "search" in done.stdout and "trust score" in done.stdout
    assert "The brief (" in done.stdout and "of media-driven revenue" in done.stdout
    assert list((tmp_path / "home" / "tenants" / "demo" / "fits").iterdir())

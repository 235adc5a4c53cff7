"""The library boundary: ``liftos`` knows no Prefect and no application code, and the
application is imported through its one namespace. Every import statement counts, including
those inside functions, and ``importlib.import_module`` with a literal name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import REPO

LIBRARY = REPO / "liftos"
APPLICATION = [REPO / name for name in ("liftos_app", "flows", "tasks", "blocks")]
# What the library must never import: the orchestrator and our own application layer.
FORBIDDEN_IN_LIBRARY = {"prefect", "prefect_dask", "liftos_app", "flows", "tasks", "blocks"}
# Top-level names the repository's folders would have without the namespace.
BARE_APPLICATION = {"flows", "tasks", "blocks"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``, wherever it appears."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in {"importlib.import_module", "import_module",
                                             "__import__"}):
            found.append((node.lineno, node.args[0].value))
    return found


def breaches(files: list[Path], forbidden: set[str]) -> list[str]:
    return [f"{path.relative_to(REPO)}:{line} imports {module}"
            for path in files for line, module in imported_modules(path)
            if module.split(".")[0] in forbidden]


def python_files(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py")
                  if "__pycache__" not in p.parts)


def test_the_library_imports_no_orchestration_and_no_application_code():
    files = python_files(LIBRARY)
    assert len(files) > 40
    assert breaches(files, FORBIDDEN_IN_LIBRARY) == []


def test_the_application_is_imported_through_its_namespace():
    files = python_files(*APPLICATION, REPO / "tests", REPO / "bench")
    assert breaches(files, BARE_APPLICATION) == []


def test_no_module_climbs_out_of_its_package_to_find_files():
    """Folders come from ``liftos.settings``, so a non-editable install finds them too."""
    climbing = [f"{p.relative_to(REPO)}" for p in python_files(LIBRARY, *APPLICATION)
                if ".parents[" in p.read_text()]
    assert climbing == []


@pytest.mark.parametrize("source, expected", [
    ("import prefect", ["m.py:1 imports prefect"]),
    ("def f():\n    from prefect.blocks.core import Block", ["m.py:2 imports prefect.blocks.core"]),
    ("import importlib\nimportlib.import_module('liftos_app.flows.refresh')",
     ["m.py:2 imports liftos_app.flows.refresh"]),
    ("from liftos.data import Panel\nimport prefectlike", []),
])
def test_the_walk_sees_function_level_and_dynamic_imports(tmp_path, monkeypatch, source,
                                                          expected):
    import test_boundary

    monkeypatch.setattr(test_boundary, "REPO", tmp_path)
    (tmp_path / "m.py").write_text(source)
    assert breaches([tmp_path / "m.py"], FORBIDDEN_IN_LIBRARY) == expected

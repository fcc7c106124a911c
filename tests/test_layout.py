"""The package's shape, checked: modules keep to their own subject (no module reaches
into another's private names) and stay small enough to read (docs: design.md's layout):
no module over 500 lines, no function over 80. (ruff's C901, PLR0915 and PLR0913, set in
pyproject.toml, keep each function's branches, statements and arguments few.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "advisor"
MAX_LINES = 500
MAX_FUNCTION_LINES = 80
MODULES = sorted(PACKAGE.rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_another_modules_private_names(path):
    """``from advisor.x import _name`` couples a module to another's insides; a name
    two modules need is public in one of them. A private module (``_kernel``) may be
    imported by its own package only."""
    package = ".".join(("advisor", *path.relative_to(PACKAGE).parent.parts))
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("advisor"):
            for alias in node.names:
                if _private(alias.name) and not (node.module == package
                                                 and (PACKAGE.parent / package.replace(
                                                      ".", "/") / f"{alias.name}.py").exists()):
                    pytest.fail(f"{path.relative_to(PACKAGE)}:{node.lineno} imports "
                                f"{alias.name} from {node.module}")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_under_500_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, (
        f"{path.relative_to(PACKAGE)} has {lines} lines (limit {MAX_LINES}): split it by "
        "subject")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_functions_stay_under_80_lines(path):
    long = [f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(PACKAGE)}: split {long}"


def test_reading_files_does_not_load_the_model():
    """``import advisor`` resolves the public names on first use: a program that only
    reads files or a store (a reader in a notebook, bench/ingest.py) does not wait for
    numba, scipy and matplotlib (about 1.3 s of 2 cores) to load."""
    import subprocess
    import sys

    code = ("import sys, advisor, advisor.sources.files, advisor.store; "
            "print(sorted(m for m in ('numba', 'scipy', 'matplotlib', 'advisor.api') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves():
    import advisor

    # __all__ is a literal for type checkers and linters: it names what the table loads
    assert set(advisor.__all__) == {*advisor._EXPORTS, *advisor._RENAMED, "__version__"}
    for name in advisor.__all__:
        assert getattr(advisor, name) is not None, name
    assert advisor.summarize_history.__module__ == "advisor.history"
    assert advisor.store.HistoryStore.__name__ == "HistoryStore"  # a submodule, on use
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        advisor.nothing  # noqa: B018

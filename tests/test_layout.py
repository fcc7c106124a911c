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

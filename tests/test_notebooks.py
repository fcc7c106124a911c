"""The tutorial notebooks in notebooks/: each runs headless from a clean kernel on the sample
fleet and shows what it is there to show; the committed files carry no outputs.

The kernel is this interpreter (the project's venv), through a kernelspec written into a
temporary folder: a ``python3`` kernelspec installed elsewhere on the machine is never used.
Each notebook is one test, so a failure names it; nbclient's error names the cell.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = ("01-explore-history.ipynb", "02-what-if.ipynb", "03-fleet-staggering.ipynb")
CELL_TIMEOUT_S = 240  # a cell on the sample takes ~20 s at most (loading it); CI may be slower
KERNEL = "python3"


@pytest.fixture(scope="session")
def kernel_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one kernelspec, ``python3``, that runs this interpreter."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher",
                 "-f", "{connection_file}"],
        "display_name": "longhorn-backup-advisor (test venv)", "language": "python"}))
    return root


def execute(path: Path, kernel_dirs: Path, workdir: Path) -> nbformat.NotebookNode:
    """``path`` run top to bottom in a fresh kernel (cwd ``workdir``, no IPython profile of
    the user's, no MPLBACKEND: the notebooks choose the inline backend); raises on the
    first cell that fails."""
    nb = nbformat.read(path, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dirs)], ensure_native_kernel=False)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    assert km.kernel_spec is not None and km.kernel_spec.argv[0] == sys.executable
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["IPYTHONDIR"] = str(workdir / ".ipython")
    client = NotebookClient(nb, km=km, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute(env=env)
    return nb


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def text_of(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook printed or displayed as text (streams, text/plain)."""
    out = []
    for o in _outputs(nb):
        if o.output_type == "stream":
            out.append(o.text)
        elif "data" in o:
            out.append(str(o.data.get("text/plain", "")))
    return "\n".join(out)


def images(nb: nbformat.NotebookNode) -> int:
    """How many PNG images the notebook displayed."""
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def number(pattern: str, text: str) -> list[int]:
    """The integers captured by the first match of ``pattern`` in ``text``."""
    m = re.search(pattern, text)
    assert m, f"no output matching {pattern!r}"
    return [int(g) for g in m.groups()]


def check_explore(nb: nbformat.NotebookNode) -> None:
    text = text_of(nb)
    [n_censored, _] = number(r"(\d+) of (\d+) backups are censored", text)
    assert n_censored > 0
    [n_conflicts] = number(r"(\d+) backups hit a lock conflict", text)
    assert n_conflicts > 0
    [n_slow] = number(r"(\d+) volume\(s\) whose p99 backup outlasts", text)
    assert n_slow >= 1 and "pvc-db-05" in text  # the sample's slowest database volume
    assert images(nb) >= 3  # durations, conflicts per volume, timeline


def check_what_if(nb: nbformat.NotebookNode) -> None:
    text = text_of(nb)
    changed, volumes = number(r"(\d+) of (\d+) volumes: risk changed", text)
    assert 0 < changed <= volumes
    assert ("kubectl -n longhorn-system patch recurringjobs.longhorn.io hourly --type merge "
            """-p '{"spec":{"cron":"30 * * * *"}}'""") in text
    assert """-p '{"spec":{"retain":12}}'""" in text
    assert images(nb) >= 3  # what-if bars, risk before/after, the job's curve


def check_staggering(nb: nbformat.NotebookNode) -> None:
    text = text_of(nb)
    now, staggered = number(r"peak backups at once: (\d+) now, (\d+) with", text)
    assert staggered < now
    assert "kind: RecurringJob" in text and "delete recurringjobs.longhorn.io daily" in text
    assert images(nb) >= 3  # observed heatmap, the day before/after, heatmaps before/after


CHECKS: dict[str, Callable[[nbformat.NotebookNode], None]] = {
    "01-explore-history.ipynb": check_explore,
    "02-what-if.ipynb": check_what_if,
    "03-fleet-staggering.ipynb": check_staggering,
}


def test_the_notebooks_are_there() -> None:
    """(An empty notebooks/ would otherwise run no notebook test at all.)"""
    assert set(EXPECTED) <= {p.name for p in NOTEBOOKS}


def advisor_imports(source: str) -> list[str]:
    """The ``advisor`` modules a code cell imports (IPython magics and shell escapes, which
    are not Python, are blanked first), e.g. ``["advisor", "advisor.report.charts"]``."""
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                       for line in source.splitlines())
    found = []
    for node in ast.walk(ast.parse(python)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "advisor"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "advisor":
            found += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__" \
                and node.args and isinstance(node.args[0], ast.Constant) \
                and str(node.args[0].value).split(".")[0] == "advisor":
            found.append(str(node.args[0].value))
    return found


def test_the_import_check_sees_every_form():
    assert advisor_imports("%matplotlib inline\nimport advisor\nimport pandas as pd") == [
        "advisor"]
    assert advisor_imports("from advisor.report import charts") == ["advisor.report.charts"]
    assert advisor_imports("import advisor.model.simulate as s") == ["advisor.model.simulate"]
    assert advisor_imports("from advisor import api") == ["advisor.api"]
    assert advisor_imports("def f():\n    from advisor.model import recommend") == [
        "advisor.model.recommend"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_imports_nothing_but_advisor(path: Path) -> None:
    """A notebook uses the public API, ``import advisor``, and nothing below it (issue 18):
    what it needs, the API gives it, so the CLI, the report and the notebooks agree."""
    nb = nbformat.read(path, as_version=4)
    inside = {i: names for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for names in [[n for n in advisor_imports(c.source) if n != "advisor"]] if names}
    assert not inside, f"{path.name}: cells import advisor's internals: {inside}"
    assert any("advisor" in advisor_imports(c.source) for c in nb.cells
               if c.cell_type == "code"), f"{path.name} never imports advisor"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_on_the_sample(path: Path, kernel_dirs: Path, tmp_path: Path) -> None:
    nb = execute(path, kernel_dirs, tmp_path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "a cell did not run"
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, errors
    # Warnings in a tutorial's output read as faults to its reader.
    stderr = [o.text for o in _outputs(nb) if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, "".join(stderr)
    assert images(nb) >= 1, "no chart was displayed"
    CHECKS.get(path.name, lambda nb: None)(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_stripped(path: Path) -> None:
    """No outputs, no execution counts, no run metadata: the notebooks are committed as
    sources. In Jupyter: Edit > Clear Outputs of All Cells, then save."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.outputs or c.execution_count is not None or "execution" in c.metadata)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts"
    # What every notebook promises its reader: it says what it answers first, and one cell
    # near the top points it at their own history store.
    assert nb.cells[0].cell_type == "markdown"
    config = [c for c in nb.cells[:4] if c.cell_type == "code" and "STORE = None" in c.source]
    assert config, f"{path.name}: no `STORE = None` cell near the top"

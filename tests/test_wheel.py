"""The wheel is what users install: built from this checkout (sdist, then the wheel from
the sdist, as ``python -m build`` does), checked by twine, installed (not editable) into a
fresh venv, and run from a folder that is not the source tree.

This catches files the package reads at run time but the wheel leaves out (the report's
template and JSON Schema, anything read with ``importlib.resources``), an sdist that
cannot build its own wheel, and metadata PyPI would refuse."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import missing_dependency

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow(seconds=180)


def _run(*cmd: str | Path, cwd: Path, timeout: float = 600,
         env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    for module in ("build", "twine"):
        if importlib.util.find_spec(module) is None:
            missing_dependency(f"{module} is not installed (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("dist")
    # a copy of the tracked files only: a build in the checkout would see .venv, caches
    # and untracked files a clean clone does not have
    src = out / "src"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    _run(sys.executable, "-m", "build", "--outdir", out, src, cwd=out)
    return out


def test_the_sdist_and_wheel_build_and_pass_twine_check(dist):
    sdists, wheels = list(dist.glob("*.tar.gz")), list(dist.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1
    r = _run(sys.executable, "-m", "twine", "check", "--strict", *sdists, *wheels, cwd=dist)
    assert r.stdout.count("PASSED") == 2
    names = zipfile.ZipFile(wheels[0]).namelist()
    # the package data the code reads at run time
    for data in ("advisor/py.typed", "advisor/report/templates/report.html.j2",
                 "advisor/report/report.schema.json"):
        assert data in names, data
    meta = zipfile.ZipFile(wheels[0]).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    # an SPDX expression and the licence file itself (PEP 639), not the deprecated table
    assert "License-Expression: Apache-2.0" in meta
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    with tarfile.open(sdists[0]) as tar:
        assert any(m.name.endswith("/LICENSE") for m in tar.getmembers())


def test_the_installed_wheel_runs_from_a_venv_that_never_saw_the_source(dist, tmp_path):
    [wheel] = dist.glob("*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bin_ = venv / "bin"
    # (--no-compile: byte-compiling every dependency took half the install; the
    # modules a run imports are compiled as they load)
    _run(bin_ / "pip", "install", "-q", "--no-compile", wheel, cwd=tmp_path)
    # nothing of the checkout on the path: not its folder, not PYTHONPATH
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    where = _run(bin_ / "python", "-c", "import advisor; print(advisor.__file__)",
                 cwd=tmp_path, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where

    help_ = _run(bin_ / "advisor", "--help", cwd=tmp_path, env=env).stdout
    for command in ("collect", "cron", "recommend", "check", "report"):
        assert command in help_

    cron = json.loads(_run(bin_ / "advisor", "cron", "0 3 * * *", "-o", "json",
                           "--from", "2026-12-07T00:00:00Z", cwd=tmp_path, env=env).stdout)
    assert cron["valid"] is True and cron["error"] is None
    assert cron["next"][:2] == ["2026-12-07T03:00:00Z", "2026-12-08T03:00:00Z"]

    out = tmp_path / "out"
    _run(bin_ / "advisor", "report", "--sample", "--format", "json", "--out", out,
         "--quiet", cwd=tmp_path, env=env, timeout=900)
    [report] = out.glob("*.json")
    doc = json.loads(report.read_text())
    # validated against the schema the installed wheel carries, read as the package
    # reads its data (importlib.resources)
    check = ("import json, sys, importlib.resources as r, jsonschema\n"
             "schema = json.loads((r.files('advisor') / 'report' / "
             "'report.schema.json').read_text())\n"
             "jsonschema.validate(json.load(open(sys.argv[1])), schema)\n")
    _run(bin_ / "pip", "install", "-q", "--no-compile", "jsonschema", cwd=tmp_path)
    _run(bin_ / "python", "-c", check, report, cwd=tmp_path, env=env)
    # the sample (collected on Monday 2026-11-23) reports its last complete week, with a
    # row for every volume the model scores: all but the DR standby
    from advisor.sample import sample_fleet

    scored = {v.name for v in sample_fleet().volumes if not v.standby}
    assert doc["meta"]["cluster"] == "sample" and doc["meta"]["week"] == "2026-W47"
    assert {v["volume"] for v in doc["volumes"]} == scored

"""Backup history from files users really have.

Reads, in any mix:

- ``kubectl get backups.longhorn.io,backupvolumes.longhorn.io,recurringjobs.longhorn.io,
  volumes.longhorn.io,settings.longhorn.io -n longhorn-system -o json`` (a ``List`` of
  mixed kinds), the same with ``-o yaml``, and raw API lists (``BackupList``) whose items
  carry no kind;
- multi-document YAML manifests as kept in GitOps repositories (comments, ``---``, no
  namespace, optional fields left out so the CRD defaults apply), and single objects;
- a CSV of backup history kept elsewhere (columns in :mod:`advisor.sources.csvfile`);
- a directory (every ``.json``, ``.yaml``, ``.yml`` and ``.csv`` below it) and ``-`` for
  standard input.

One broken document or item costs only itself: it is reported with the file, the object
and the field, and everything else is kept.
"""

from __future__ import annotations

import gc
import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import yaml

from advisor.sources import csvfile
from advisor.sources.base import LoadResult, Problem
from advisor.sources.crs import FrameBuilder, Origin

SUFFIXES = (".json", ".yaml", ".yml", ".csv")
MAX_FILE_BYTES = 8 * 1024**3
_DOC_SEPARATOR = re.compile(r"^(?:---|\.\.\.)(?:[ \t].*)?$")

try:  # libyaml's loader is about 10x faster than the pure-Python one
    _YamlLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pyyaml built without libyaml
    _YamlLoader = yaml.SafeLoader


class InputError(Exception):
    """Nothing usable could be read; the message says what and where."""


def load_files(paths: Sequence[str | Path], *, cluster: str = "default",
               collected_at: pd.Timestamp | None = None) -> LoadResult:
    """Read Longhorn objects and backup history from files into the schema's frames.

    ``paths`` are files, directories or ``-`` (standard input). ``cluster`` tags every
    record (a CSV ``cluster`` column overrides it per row). ``collected_at`` (UTC) is
    when the records were observed; by default each file's export time, the latest
    ``status.lastSyncedAt`` of its Backups (else now): a Backup still running in an
    export is known to have run until then, not until the file is read. Problems are in
    the result's ``problems``; this function raises only for a path that does not exist.
    """
    now = collected_at if collected_at is not None else pd.Timestamp.now(tz="UTC")
    builder = FrameBuilder(cluster, now.tz_convert("UTC"),
                           observed_at_export=collected_at is None)
    with no_cycle_collection():
        for path in _expand(paths, builder.result.problems):
            builder.result.files.append(path)
            _load_one(path, builder)
        return builder.finish()


FREEZE_AFTER_LOAD = False
"""Whether a load ends with ``gc.freeze()``. The ``advisor`` command sets it: the process
is its own. A library call (a notebook's) leaves the collector as it found it."""


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector while a load runs (and restore it after).

    A parsed export of 100,000 Backups is millions of dicts and lists; every full
    collection triggered by the frames' allocations walks all of them (a third of a
    load's time). Parsed JSON and YAML hold no reference cycles, so reference counting
    alone frees them. In the ``advisor`` command (:data:`FREEZE_AFTER_LOAD`), what the
    load still holds when it ends would be walked all at once by the first collection
    after it, so everything alive then is moved out of the collector's sight
    (``gc.freeze``: reference counting still frees it; only cycles alive at that instant
    are no longer collected). That changes the whole process, so a library call, in a
    notebook, does not do it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if FREEZE_AFTER_LOAD:
                gc.freeze()
            gc.enable()


def load_document(doc: object, *, source: str, cluster: str = "default",
                  collected_at: pd.Timestamp | None = None) -> LoadResult:
    """Read objects already parsed from JSON or YAML (a List, a list or one object), as
    :func:`load_files` reads a file (observed, by default, at its export time);
    ``source`` names where they came from."""
    now = collected_at if collected_at is not None else pd.Timestamp.now(tz="UTC")
    builder = FrameBuilder(cluster, now.tz_convert("UTC"),
                           observed_at_export=collected_at is None)
    builder.result.files.append(source)
    with no_cycle_collection():
        _add_document(doc, source, "document 1", source, builder)
        return builder.finish()


def _expand(paths: Sequence[str | Path], problems: list[Problem]) -> Iterator[str]:
    for p in paths:
        if str(p) == "-":
            yield "-"
            continue
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*")
                           if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not found:
                problems.append(Problem(str(path), "", "", "directory holds no .json, .yaml, "
                                        ".yml or .csv file"))
            yield from (str(f) for f in found)
        elif path.exists():
            yield str(path)
        else:
            raise InputError(f"{path}: no such file or directory")


def _read_text(path: str, builder: FrameBuilder) -> str | None:
    def problem(reason: str) -> None:
        builder.result.problems.append(Problem(path, "", "", reason))

    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            size = Path(path).stat().st_size
        except OSError as e:
            problem(f"cannot read: {e.strerror}")
            return None
        if size > MAX_FILE_BYTES:
            problem(f"file is {size / 1024**3:.1f} GiB, above the {MAX_FILE_BYTES // 1024**3} "
                    "GiB limit: split it (for example one kubectl get per kind)")
            return None
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            problem(f"cannot read: {e.strerror}")
            return None
    if b"\0" in data[:8192]:
        problem("not a text file (expected JSON, YAML or CSV)")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problem(f"not UTF-8 text (byte {e.start}): expected JSON, YAML or CSV")
        return None
    if not text.strip():
        problem("empty file")
        return None
    return text


def _load_one(path: str, builder: FrameBuilder) -> None:
    text = _read_text(path, builder)
    if text is None:
        return
    source = "stdin" if path == "-" else f"file:{path}"
    if path.lower().endswith(".csv"):
        csvfile.load_csv(text, path, builder)
        return
    head = text.lstrip()[:1]
    if head in "{[":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            # YAML is a superset of JSON's shape; only JSON's own message helps here.
            builder.result.problems.append(Problem(
                path, "", "", f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"))
            return
        _add_document(doc, path, "document 1", source, builder)
        return
    for number, (line, chunk) in enumerate(_yaml_documents(text), start=1):
        try:
            doc = yaml.load(chunk, Loader=_YamlLoader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {line + mark.line}" if mark is not None else ""
            reason = getattr(e, "problem", None) or str(e).splitlines()[0]
            builder.result.problems.append(Problem(
                path, f"document {number}", "", f"not valid YAML{at}: {reason}"))
            continue
        _add_document(doc, path, f"document {number}", source, builder)


def _yaml_documents(text: str) -> Iterator[tuple[int, str]]:
    """Split a multi-document stream so that one broken document loses only itself.

    Yields (0-based line where the document starts, its text).
    """
    if not text.startswith(("---", "...")) and "\n---" not in text and "\n..." not in text:
        yield 0, text
        return
    start, buf = 0, []
    for i, line in enumerate(text.splitlines(keepends=True)):
        if _DOC_SEPARATOR.match(line.rstrip("\r\n")):
            if "".join(buf).strip():
                yield start, "".join(buf)
            # "--- !tag" or "--- {a: 1}": the document starts on the separator's line
            rest = line[3:] if line.startswith("---") else ""
            buf, start = ([rest], i) if rest.strip() else ([], i + 1)
            continue
        buf.append(line)
    if "".join(buf).strip():
        yield start, "".join(buf)


def _add_document(doc: object, path: str, place: str, source: str,
                  builder: FrameBuilder) -> None:
    if doc is None:
        return  # an empty document between separators
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            builder.add(item, Origin(path, f"{place} item {i}"), source)
        return
    if not isinstance(doc, dict):
        builder.result.problems.append(Problem(
            path, place, "", f"is a {type(doc).__name__}, not a Kubernetes object or List"))
        return
    kind = doc.get("kind")
    items = doc.get("items")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        if not isinstance(items, list):
            builder.result.problems.append(Problem(
                path, place, "items", f"is a {type(items).__name__}, expected a list"))
            return
        # The API's typed lists (BackupList) leave kind and apiVersion out of each item.
        item_kind = kind[: -len("List")] or None
        api = doc.get("apiVersion")
        for i, item in enumerate(items):
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {"kind": item_kind, "apiVersion": api, **item}
            builder.add(item, Origin(path, f"{place} item {i}"), source)
        return
    builder.add(doc, Origin(path, place), source)

"""The history store itself (:class:`HistoryStore`): collections appended under the
writer lock, staged, fsynced and renamed into place; read back, migrated and deduplicated;
superseded; and the derived frames kept beside them. The layout is in :mod:`advisor.store`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from advisor import schema
from advisor.store.parts import (
    ARROW_TO_PANDAS,
    VERSION_KEY,
    check_identity,
    fingerprint,
    fsync,
    latest_rows,
    matching,
    read_part,
    write_json,
)
from advisor.store.results import (
    AppendResult,
    CollectionInfo,
    FrameCounts,
    StoreBusyError,
    StoreError,
    StoreVersionError,
)

STORE_FORMAT = "longhorn-backup-advisor-store"
"""The ``format`` field of ``store.json``."""

MIGRATIONS: dict[int, Callable[[str, pd.DataFrame], pd.DataFrame]] = {}
"""``MIGRATIONS[v](frame, df)`` upgrades a stored frame from schema version v to v + 1.
Only renames and retypes need one: :func:`advisor.schema.coerce` adds new columns as NA."""

_ID = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}$")
_ID_TIME = "%Y%m%dT%H%M%S.%fZ"


def default_store_path() -> Path:
    """``$ADVISOR_STORE``, else ``$XDG_DATA_HOME/longhorn-backup-advisor``, else
    ``~/.local/share/longhorn-backup-advisor``."""
    if env := os.environ.get("ADVISOR_STORE"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "")
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "longhorn-backup-advisor"


class HistoryStore:
    """The history store at ``path`` (None: :func:`default_store_path`). Opening refuses a
    directory that is not a store or is newer; a missing one is made by :meth:`append`."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        self._supersedes: dict[str, tuple[str, ...]] = {}  # (manifests never change)
        self._check()

    def __repr__(self) -> str:
        return f"HistoryStore({str(self.path)!r})"

    def append(self, frames: dict[str, pd.DataFrame], *, supersede: Sequence[str] = (),
               meta: dict | None = None) -> AppendResult:
        """Store the new rows of ``frames`` (name -> rows) as one collection. Frames are
        coerced to the schema; key and provenance columns must not be null (SchemaError).
        ``supersede``: collections (visible now) whose rows the new collection carries
        over and hides; ``meta``: JSON kept in its manifest (:attr:`CollectionInfo.meta`).
        Nothing is written when no row is new. Raises :class:`StoreBusyError` when
        another process is writing."""
        extra = json.loads(json.dumps(meta or {}))  # (JSON, and the caller's own copy)
        incoming = {}
        for name, df in frames.items():
            df = schema.coerce(name, df)
            check_identity(name, df)
            if len(df):
                incoming[name] = df
        if not incoming:
            return AppendResult(None)
        self._check()
        self.path.mkdir(parents=True, exist_ok=True)
        with self._writer_lock():
            meta = self._check()  # again: the last writer may have been a newer advisor
            self._clean_staging()
            self._drop_hidden()
            counts, new = {}, {}
            for name, df in incoming.items():
                counts[name], rows = self._new_rows(name, df)
                if len(rows):
                    new[name] = rows
            if not new:
                return AppendResult(None, counts)
            missing = sorted(set(supersede) - set(self._collection_ids()))
            if missing:
                raise StoreError(f"cannot supersede {', '.join(missing)}: not a visible "
                                 f"collection of {self.path}")
            if supersede:
                new = self._carried(supersede, new)
                for name in new:
                    counts.setdefault(name, FrameCounts())
            if meta is None or meta["schema_version"] < schema.SCHEMA_VERSION:
                self._write_store_json(meta)
            cid = self._write_collection(new, counts, tuple(supersede), extra)
            self._drop_hidden()
            return AppendResult(cid, counts)

    def read(self, frame: str, *, latest: bool = True,
             columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every stored row of ``frame`` in schema dtypes, oldest collection first. With
        ``latest`` one row per key: for backups the most advanced state (:data:`STATE_RANK`),
        else the last collected; ties go to the later ``collected_at``, then collection.
        ``columns``: only these (in schema order); the others are not read from disk, which
        is most of the time and memory a large store's read takes."""
        known = [c.name for c in schema.columns(frame)]  # (an unknown frame: ValueError)
        if columns is not None:
            unknown = sorted(set(columns) - set(known))
            if unknown:
                raise ValueError(f"{frame} has no column(s) {unknown}; its columns are "
                                 f"{', '.join(known)}")
            # what choosing the latest row needs, read too and dropped after
            need = set(columns) | ({*schema.KEYS[frame], "collected_at", "state"}
                                   & set(known) if latest else set())
            only = [c for c in known if c in need]
        df = self._read_all(frame, None if columns is None else only)
        df = (latest_rows(frame, df) if latest else df).reset_index(drop=True)
        pa.default_memory_pool().release_unused()  # (as after reading: choosing hashes)
        return df if columns is None else df[[c for c in known if c in columns]]

    def read_all(self, *, latest: bool = True) -> dict[str, pd.DataFrame]:
        """Every frame by name, as :meth:`read` returns it."""
        return {name: self.read(name, latest=latest) for name in schema.FRAMES}

    def collections(self) -> list[CollectionInfo]:
        """The committed collections, oldest first, read from their manifests."""
        self._check()
        out = []
        for cid in self._collection_ids():
            path = self.path / "collections" / cid / "manifest.json"
            try:
                m = json.loads(path.read_text())
                out.append(CollectionInfo(
                    cid, pd.Timestamp(m["written_at"]), int(m["schema_version"]),
                    {n: int(f["rows"]) for n, f in m["frames"].items()},
                    {n: list(f.get("sources", [])) for n, f in m["frames"].items()},
                    tuple(m.get("supersedes", ())), dict(m.get("meta", {}))))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise StoreError(f"cannot read the manifest {path}: {e}") from e
        return out

    def observations(self) -> dict[str, int]:
        """Rows stored per frame over all collections (before deduplication)."""
        total = dict.fromkeys(schema.FRAMES, 0)
        for c in self.collections():
            for name, n in c.rows.items():
                total[name] = total.get(name, 0) + n
        return total

    def derived(self, name: str, key: str) -> dict[str, pd.DataFrame] | None:
        """The frames :meth:`keep_derived` kept as ``name`` with ``key`` from the
        collections the store holds now, or None: none kept, kept from other collections
        or with another key, or unreadable (then the caller computes them again)."""
        path = self.path / "derived" / name / self._digest(name, key)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
            if manifest.get("key") != key:
                return None
            return {f: pq.read_table(path / f"{f}.parquet").to_pandas()
                    for f in manifest["frames"]}
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
            return None

    def keep_derived(self, name: str, key: str, frames: dict[str, pd.DataFrame],
                     collections: Sequence[str]) -> bool:
        """Keep ``frames``, computed from the collections ``collections`` (the
        :meth:`collection_ids` taken before reading them), as ``name`` with ``key``
        (what computed them: a version, options), replacing what was kept as ``name``
        before. Takes the writer lock; returns False and keeps nothing when another
        process holds it or when collections were added since."""
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            raise ValueError(f"derived name {name!r}: use lowercase letters, digits, - _")
        if self._check() is None:
            return False
        try:
            with self._writer_lock():
                if list(collections) != self._collection_ids():
                    return False
                digest = self._digest(name, key)
                base = self.path / "derived" / name
                if (base / digest).is_dir():
                    return True
                self._clean_staging()
                staging = self.path / ".staging" / f"derived-{name}-{digest}"
                staging.mkdir()
                for f, df in frames.items():
                    pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                                   staging / f"{f}.parquet")
                    fsync(staging / f"{f}.parquet")
                write_json(staging / "manifest.json", {
                    "name": name, "key": key, "frames": sorted(frames),
                    "collections": len(self._collection_ids()),
                    "written_at": datetime.now(UTC).isoformat()})
                fsync(staging)
                base.mkdir(parents=True, exist_ok=True)
                os.rename(staging, base / digest)
                fsync(base)
                for old in base.iterdir():  # (what earlier collections or keys made)
                    if old.name != digest:
                        shutil.rmtree(old, ignore_errors=True)
                return True
        except StoreBusyError:
            return False

    def collection_ids(self) -> list[str]:
        """The committed collections' ids, oldest first."""
        return self._collection_ids()

    def _digest(self, name: str, key: str) -> str:
        text = json.dumps([name, key, schema.SCHEMA_VERSION, self._collection_ids()])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _check(self) -> dict | None:
        """``store.json`` (None before the first append); refuses non-stores and newer ones."""
        if not self.path.exists():
            return None
        if not self.path.is_dir():
            raise StoreError(f"{self.path} is not a directory, so it cannot be a history store")
        meta_path = self.path / "store.json"
        try:
            text = meta_path.read_text()
        except FileNotFoundError:
            # A first writer that died before store.json was in place leaves only these.
            if {p.name for p in self.path.iterdir()} <= {".writer.lock", ".staging"}:
                return None
            raise StoreError(f"{self.path} exists but is not a history store (it has files "
                             "and no store.json); refusing to write into it. Choose an empty "
                             "or new directory (ADVISOR_STORE)") from None
        try:
            meta = json.loads(text)
            ok = meta.get("format") == STORE_FORMAT and isinstance(meta["schema_version"], int)
        except (ValueError, AttributeError, KeyError):
            ok = False
        if not ok:
            raise StoreError(f"{meta_path} is not a longhorn-backup-advisor store file")
        if meta["schema_version"] > schema.SCHEMA_VERSION:
            raise StoreVersionError(
                f"the history store {self.path} was written by a newer advisor (schema "
                f"{meta['schema_version']} > {schema.SCHEMA_VERSION}); upgrade "
                "longhorn-backup-advisor")
        return meta

    def _collection_ids(self, hidden: bool = False) -> list[str]:
        """The visible collections (``hidden``: the superseded ones instead), oldest
        first."""
        base = self.path / "collections"
        ids = sorted(n for n in os.listdir(base) if _ID.match(n)) if base.is_dir() else []
        gone: set[str] = set()
        for cid in ids:
            if cid not in self._supersedes:
                try:
                    m = json.loads((base / cid / "manifest.json").read_text())
                    self._supersedes[cid] = tuple(m.get("supersedes", ()))
                except (OSError, ValueError, AttributeError):
                    # (collections() reports an unreadable manifest; a read goes on)
                    self._supersedes[cid] = ()
            gone.update(self._supersedes[cid])
        return [c for c in ids if (c in gone) == hidden]

    def _drop_hidden(self) -> None:
        """Delete superseded collections (under the writer lock): no reader sees them."""
        for cid in self._collection_ids(hidden=True):
            shutil.rmtree(self.path / "collections" / cid, ignore_errors=True)
        if (self.path / "collections").is_dir():
            fsync(self.path / "collections")

    def _carried(self, ids: Sequence[str], new: dict[str, pd.DataFrame]
                 ) -> dict[str, pd.DataFrame]:
        """``new`` after the rows of the collections ``ids``, frame by frame, in order."""
        out = {}
        for name in {*new, *(f for c in ids for f in schema.FRAMES
                             if (self.path / "collections" / c / f"{f}.parquet").exists())}:
            parts = [self._read_all(name, ids=[c]) for c in ids]
            parts = [p for p in parts if len(p)] + ([new[name]] if name in new else [])
            out[name] = pd.concat(parts, ignore_index=True)
        return {name: out[name] for name in schema.FRAMES if name in out}

    def _read_all(self, frame: str, only: list[str] | None = None,
                  ids: Sequence[str] | None = None,
                  where: tuple[str, pa.Array] | None = None) -> pd.DataFrame:
        """Every part of ``frame`` in collection order (of the collections ``ids``, if
        given), migrated and coerced (to the columns ``only``, if given); ``where``:
        only the rows whose column holds one of the values (a part is then read whole
        only if its column holds one)."""
        self._check()
        base = self.path / "collections"
        parts: list[pd.DataFrame] = []
        run: list[pa.Table] = []  # consecutive current-version parts, converted at once

        def flush() -> None:
            if run:
                table = pa.concat_tables(run, promote_options="permissive")
                run.clear()  # (the table alone holds the parts: each column is freed
                # as soon as it is converted, not after the whole frame)
                df = table.to_pandas(types_mapper=ARROW_TO_PANDAS.get, self_destruct=True,
                                     split_blocks=True)
                del table
                parts.append(schema.coerce(frame, df, only))

        for cid in self._collection_ids() if ids is None else ids:
            path = base / cid / f"{frame}.parquet"
            if not os.path.exists(path):
                continue
            mask = matching(path, *where) if where is not None else None
            if mask is not None and not pc.any(mask).as_py():
                continue
            table, version = read_part(path, only)
            if mask is not None:
                table = table.filter(mask)
            if version == schema.SCHEMA_VERSION:
                run.append(table)
                continue
            flush()
            df = table.to_pandas(types_mapper=ARROW_TO_PANDAS.get)
            for v in range(version, schema.SCHEMA_VERSION):
                if v in MIGRATIONS:
                    df = MIGRATIONS[v](frame, df)
            parts.append(schema.coerce(frame, df, only))
        flush()
        # the parts' Arrow buffers are freed now, but Arrow's allocator keeps their pages
        # for reuse: hand them back, or a read of millions of Backups holds about twice
        # its frame's memory for the rest of the run
        pa.default_memory_pool().release_unused()
        if not parts:
            empty = schema.empty(frame)
            return empty if only is None else empty[only]
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def _new_rows(self, frame: str, df: pd.DataFrame) -> tuple[FrameCounts, pd.DataFrame]:
        """Counts for ``df`` against the store, and the rows of ``df`` worth writing."""
        # Only stored rows of the same objects can match: read those, found by the most
        # telling key column (a watch's minute of rows against millions of stored ones
        # reads one column of the store, not all of it)
        col = schema.KEYS[frame][-1]
        stored = self._read_all(frame, where=(col, pa.array(df[col].dropna().unique(),
                                                            type=pa.string())))
        fp, stored_fp = fingerprint(df), fingerprint(stored)
        # The fingerprint covers the key columns too, so equal fingerprints mean equal
        # (key, content); a 64-bit hash makes a false match negligible at store sizes.
        new = ~(fp.isin(stored_fp) | fp.duplicated()).to_numpy()
        keys = list(schema.KEYS[frame])
        known = pd.MultiIndex.from_frame(df[keys]).isin(pd.MultiIndex.from_frame(stored[keys]))
        added, updated = int((new & ~known).sum()), int((new & known).sum())
        return FrameCounts(added, updated, len(df) - added - updated), df[new]

    @contextmanager
    def _writer_lock(self) -> Iterator[None]:
        fd = os.open(self.path / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise StoreBusyError(
                    f"the history store {self.path} is being written by another advisor "
                    f"process (pid {pid}); try again when it finishes") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _clean_staging(self) -> None:
        # Only the lock holder writes here, so whatever is left belongs to a dead writer.
        shutil.rmtree(self.path / ".staging", ignore_errors=True)
        (self.path / ".staging").mkdir()

    def _write_store_json(self, old: dict | None) -> None:
        now = datetime.now(UTC).isoformat()
        meta = {"created_at": now, **(old or {}), "format": STORE_FORMAT,
                "schema_version": schema.SCHEMA_VERSION, "updated_at": now,
                "layout": "collections/<id>/<frame>.parquet"}
        tmp = self.path / ".staging" / "store.json"
        write_json(tmp, meta)
        os.replace(tmp, self.path / "store.json")
        fsync(self.path)

    def _write_collection(self, frames: dict[str, pd.DataFrame],
                          counts: dict[str, FrameCounts], supersedes: tuple[str, ...] = (),
                          meta: dict | None = None) -> str:
        now = datetime.now(UTC)
        ids = self._collection_ids()
        if ids:
            # A clock stepped back must not sort this collection before an earlier one:
            # the collection order breaks ties on read. (A hidden collection sorts before
            # the one that superseded it, so the last visible one is the last of all.)
            last = datetime.strptime(ids[-1].split("-")[0], _ID_TIME).replace(tzinfo=UTC)
            now = max(now, last + timedelta(microseconds=1))
        cid = f"{now.strftime(_ID_TIME)}-{secrets.token_hex(4)}"
        staging = self.path / ".staging" / cid
        staging.mkdir()
        manifest: dict = {"id": cid, "written_at": now.isoformat(),
                          "schema_version": schema.SCHEMA_VERSION, "frames": {}}
        if supersedes:
            manifest["supersedes"] = list(supersedes)
        if meta:
            manifest["meta"] = meta
        for name, df in frames.items():
            table = pa.Table.from_pandas(df, preserve_index=False)
            table = table.replace_schema_metadata({
                **(table.schema.metadata or {}), b"advisor.frame": name.encode(),
                VERSION_KEY: str(schema.SCHEMA_VERSION).encode()})
            path = staging / f"{name}.parquet"
            pq.write_table(table, path)
            fsync(path)
            c = counts[name]
            manifest["frames"][name] = {
                "file": path.name, "rows": len(df), "added": c.added, "updated": c.updated,
                "sources": sorted(str(s) for s in df["source"].dropna().unique())}
        write_json(staging / "manifest.json", manifest)
        fsync(staging)
        collections = self.path / "collections"
        if not collections.is_dir():
            collections.mkdir()
            fsync(self.path)
        os.rename(staging, collections / cid)
        fsync(collections)
        return cid

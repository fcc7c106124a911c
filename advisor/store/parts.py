"""The history store's files: reading a Parquet part (its schema version checked, only
the rows or columns asked for), choosing the latest row per key, telling stored rows
apart, and writing JSON and directories so that they last (fsync)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from advisor import schema
from advisor.store.results import StoreError, StoreVersionError

VERSION_KEY = b"advisor.schema_version"
"""Parquet key-value metadata key holding the schema version a file was written with."""

STATE_RANK = schema.BACKUP_STATE_RANK
"""How far a Backup has got (:data:`advisor.schema.BACKUP_STATE_RANK`): ``read("backups")``
keeps the most advanced state."""

ARROW_TO_PANDAS = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(),
                   pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
"""The pandas dtype of each Arrow type a part is read into (others: pandas' default)."""

_LARGE_PART_BYTES = 256 * 1024  # smaller parts read faster on one thread


def read_part(path: Path, only: list[str] | None = None) -> tuple[pa.Table, int]:
    """One Parquet part (of the columns ``only`` that it has, if given; all of them when
    it is of an older schema version, whose migration may need them) and its schema
    version; a damaged file is a StoreError."""
    try:
        # pre_buffer and threads cost more than they save on a store's many small parts,
        # and save half the time on a daily collection of thousands of volumes.
        large = os.path.getsize(path) >= _LARGE_PART_BYTES
        with pq.ParquetFile(path, pre_buffer=large) as pf:
            version = _part_version(path, pf.schema_arrow.metadata)
            names = pf.schema_arrow.names
            if only is not None and version == schema.SCHEMA_VERSION:
                names = [c for c in names if c in only]
            table = pf.read(columns=names, use_threads=large)
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"cannot read {path}: {e}. The file is damaged; move its "
                         "collection directory out of the store to read the rest") from e
    return table, version


def matching(path: Path, column: str, values: pa.Array) -> pa.ChunkedArray | None:
    """Which rows of a part hold one of ``values`` in ``column`` (None: it has no such
    column, so every row may match)."""
    try:
        with pq.ParquetFile(path) as pf:
            if column not in pf.schema_arrow.names:
                return None
            keys = pf.read(columns=[column]).column(0)
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"cannot read {path}: {e}. The file is damaged; move its "
                         "collection directory out of the store to read the rest") from e
    return pc.is_in(keys, value_set=values)  # (never null: a null key is not in values)


def _part_version(path: Path, metadata: dict | None) -> int:
    """A part's schema version from its key-value metadata; a newer one is refused."""
    # Files written by other tools carry no version: read them as the first layout.
    raw = (metadata or {}).get(VERSION_KEY, b"1")
    try:
        version = int(raw)
    except ValueError:
        raise StoreError(f"{path}: bad {VERSION_KEY.decode()} {raw!r}") from None
    if version > schema.SCHEMA_VERSION:
        raise StoreVersionError(f"{path} was written by a newer advisor (schema {version} > "
                                f"{schema.SCHEMA_VERSION}); upgrade longhorn-backup-advisor")
    return version


def latest_rows(frame: str, df: pd.DataFrame) -> pd.DataFrame:
    """One row per key of ``df`` (in stored order): the highest (rank, collected_at, position)."""
    if df.empty:
        return df
    # Only rows whose most telling key column (a Backup's name) repeats can be versions
    # of one object: the others stand as they are, and only those few are ranked (most
    # of millions of Backups were stored once)
    names, n_names = _codes(df[schema.KEYS[frame][-1]])
    repeated = np.bincount(names + 1, minlength=n_names + 1)[names + 1] > 1
    if not repeated.any():
        return df
    whole, df = df, df[repeated]
    rank = np.zeros(len(df), dtype=np.int64)
    if frame == "backups":
        # (a state the advisor does not know is left out first: it gets code -1, the
        # rank below New, without pandas' deprecated unknown-category path)
        known = df["state"].where(df["state"].isin(list(STATE_RANK)))
        codes = pd.Categorical(known, categories=list(STATE_RANK)).codes
        rank = np.append(np.fromiter(STATE_RANK.values(), dtype=np.int64), -1)[codes]
    # the key as one integer (exact: each column's codes, combined, renumbered), which
    # is far cheaper to sort and compare than millions of strings
    key = np.zeros(len(df), dtype=np.int64)
    for c in schema.KEYS[frame]:
        codes, n = _codes(df[c])
        key = pd.factorize(key * (n + 1) + (codes + 1))[0].astype(np.int64)
    t = df["collected_at"].to_numpy(dtype="datetime64[ns]").view(np.int64)  # NaT first
    order = np.lexsort((np.arange(len(df)), t, rank))
    last = ~pd.Series(key[order]).duplicated(keep="last").to_numpy()
    keep = ~repeated
    keep[np.flatnonzero(repeated)[order[last]]] = True
    return whole if keep.all() else whole[keep]


def _codes(s: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes of ``s``'s values (-1 for NA) and how many values there are; Arrow's
    hashing for Arrow-backed strings, twice as fast as pandas' on millions of names."""
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        encoded = pc.dictionary_encode(s.array.__arrow_array__())
        codes = np.concatenate([c.indices.fill_null(-1).to_numpy().astype(np.int64)
                                for c in encoded.chunks] or [np.zeros(0, np.int64)])
        return codes, len(encoded.chunk(0).dictionary) if encoded.num_chunks else 0
    codes, uniques = pd.factorize(s)
    return codes.astype(np.int64), len(uniques)


def fingerprint(df: pd.DataFrame) -> pd.Series:
    """A uint64 hash per row over every column but the provenance ones (same across runs)."""
    return pd.util.hash_pandas_object(df.drop(columns=list(schema.PROVENANCE_COLUMNS)),
                                      index=False)


def check_identity(frame: str, df: pd.DataFrame) -> None:
    """Refuse rows the store could not tell apart: null keys, source or collected_at."""
    problems = [schema.Problem(frame, None, c, f"{n} null value(s); the store needs it")
                for c in (*schema.KEYS[frame], *schema.PROVENANCE_COLUMNS)
                if (n := int(df[c].isna().sum()))]
    if problems:
        raise schema.SchemaError(problems)


def write_json(path: Path, data: dict) -> None:
    """``data`` as indented JSON with sorted keys at ``path``, fsynced before returning."""
    with open(path, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def fsync(path: Path) -> None:
    """fsync a file, or a directory: a new entry or a rename lasts only once it is fsynced."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

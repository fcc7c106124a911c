"""The local history store: every collection of frames, kept as append-only Parquet.

Layout (plain files, so DuckDB, Spark, Dask and pandas read them directly, e.g.
``SELECT * FROM read_parquet('<store>/collections/*/backups.parquet', union_by_name=true)``)::

    <store>/store.json                         {"format": "longhorn-backup-advisor-store",
                                                "schema_version": N, ...}
    <store>/collections/<id>/<frame>.parquet   one file per non-empty frame of a collection
    <store>/collections/<id>/manifest.json     per-frame rows and sources, written_at,
                                               schema_version, supersedes, meta
    <store>/derived/<name>/<digest>/           frames derived from all collections (a
                                               model's fits), kept for the next reader
    <store>/.staging/                          in-flight writes (ignored by readers)
    <store>/.writer.lock                       writer lock (fcntl.flock), holds the writer's pid

A collection ``<id>`` is ``<UTC time>-<8 hex>`` (``20250131T020000.123456Z-1f2e3d4c``):
sorting ids sorts collections by when they were written. Every Parquet file records its
schema version in its key-value metadata (``advisor.schema_version``); older files are
migrated on read (:data:`MIGRATIONS`, then :func:`advisor.schema.coerce`).

A collection is written whole into ``.staging/<id>/``, fsynced, then moved into
``collections/`` by one ``rename``: a writer killed at any instant leaves every earlier
collection intact and its own either wholly present or wholly absent. One writer at a time
holds the lock; readers take none, since the rename is atomic.

Derived frames (:meth:`HistoryStore.derived`, :meth:`HistoryStore.keep_derived`) are
not history: they are what a caller computed from every collection present, kept so that
the next run need not compute them again. ``<digest>`` hashes the caller's key and the
collection ids, so a new collection (or another advisor) makes them unused; they are
written like a collection (staged, fsynced, renamed) and may be deleted at any time.

A collection may *supersede* earlier ones (``append(..., supersede=[ids])``): it holds
their rows and its own, and readers no longer see the ones it names; they are deleted
after it is in place (a writer that dies first leaves them hidden, and the next writer
deletes them). ``advisor watch`` uses this to write every minute into one collection per
hour, rather than a store of thousands of one-minute collections.

Rows are stored once: a row whose key and content (every column but ``source`` and
``collected_at``) are already in the store is not written again. Reading with
``latest=True`` keeps one row per key (:data:`advisor.schema.KEYS`).

The store is :class:`HistoryStore` (:mod:`advisor.store.history_store`); its Parquet parts
and durable writes are :mod:`advisor.store.parts`; what its calls return and raise,
:mod:`advisor.store.results`.
"""

from advisor.store.history_store import (
    MIGRATIONS,
    STORE_FORMAT,
    HistoryStore,
    default_store_path,
)
from advisor.store.parts import STATE_RANK, VERSION_KEY
from advisor.store.results import (
    AppendResult,
    CollectionInfo,
    FrameCounts,
    StoreBusyError,
    StoreError,
    StoreVersionError,
)

__all__ = ["MIGRATIONS", "STATE_RANK", "STORE_FORMAT", "VERSION_KEY", "AppendResult",
           "CollectionInfo", "FrameCounts", "HistoryStore", "StoreBusyError", "StoreError",
           "StoreVersionError", "default_store_path"]

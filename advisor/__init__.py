"""longhorn-backup-advisor: how Longhorn backup schedules collide on the backupstore lock.

The public API, re-exported here, is what notebooks and the CLI use::

    import advisor
    result = advisor.load_files(["longhorn.json"], cluster="prod")   # frames + problems
    store = advisor.HistoryStore()                                  # default location
    store.append(result.frames)
    advisor.summarize_history(store.read_all())
"""

from pathlib import Path

from advisor import schema
from advisor.history import HistorySummary
from advisor.history import summarize as summarize_history
from advisor.schema import SCHEMA_VERSION
from advisor.sources.base import LoadResult, Problem
from advisor.sources.files import InputError, load_files
from advisor.store import (
    AppendResult,
    HistoryStore,
    StoreBusyError,
    StoreError,
    StoreVersionError,
    default_store_path,
)

__version__ = "0.1.0"


def sample_path() -> Path:
    """Path of the bundled sample fleet (a ``kubectl get ... -o json`` List)."""
    # imported here so that ``python -m advisor.sources.sample`` can regenerate the file
    from advisor.sources import sample

    return sample.sample_path()


def load_sample() -> LoadResult:
    """The bundled sample fleet, read through the file source, tagged cluster ``sample``."""
    return load_files([sample_path()], cluster="sample")


__all__ = [
    "SCHEMA_VERSION",
    "AppendResult",
    "HistoryStore",
    "HistorySummary",
    "InputError",
    "LoadResult",
    "Problem",
    "StoreBusyError",
    "StoreError",
    "StoreVersionError",
    "__version__",
    "default_store_path",
    "load_files",
    "load_sample",
    "sample_path",
    "schema",
    "summarize_history",
]

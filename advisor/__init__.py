"""longhorn-backup-advisor: how Longhorn backup schedules collide on the backupstore lock.

The public API, re-exported here, is what notebooks and the CLI use::

    import advisor
    result = advisor.load_files(["longhorn.json"], cluster="prod")   # frames + problems
    store = advisor.HistoryStore()                                  # default location
    store.append(result.frames)
    advisor.summarize_history(store.read_all())
"""

import pandas as pd

from advisor import schema
from advisor.history import HistorySummary
from advisor.history import summarize as summarize_history
from advisor.schema import SCHEMA_VERSION
from advisor.sources.base import LoadResult, Problem
from advisor.sources.files import InputError, load_document, load_files
from advisor.store import (
    AppendResult,
    HistoryStore,
    StoreBusyError,
    StoreError,
    StoreVersionError,
    default_store_path,
)

__version__ = "0.1.0"


def load_sample(seed: int | None = None) -> LoadResult:
    """The sample fleet (eight weeks of a 60-volume cluster made by the simulator with a
    fixed seed), read through the file source as a collected kubectl List would be, and
    tagged cluster ``sample``."""
    from advisor.sources import sample  # the simulator is only needed here

    doc = sample.build_sample_fleet(sample.SEED if seed is None else seed)
    return load_document(doc, source="sample", cluster="sample",
                         collected_at=pd.Timestamp(sample.COLLECTED_AT))


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
    "load_document",
    "load_files",
    "load_sample",
    "schema",
    "summarize_history",
]

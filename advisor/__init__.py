"""longhorn-backup-advisor: how Longhorn backup schedules collide on the backupstore lock.

The public API, re-exported here, is what notebooks and the CLI use::

    import advisor
    history = advisor.load_history(sample=True)        # or a store, or files
    risk = advisor.assess_risk(history)                # each volume's risk now
    advice = advisor.recommend(history)                # the smallest safe intervals
    change = advisor.what_if(history, {"hourly": {"cron": "30 * * * *"}})
    report = advisor.build_report(history)             # the weekly report

Each result has ``.table`` (a DataFrame), renders in Jupyter and ``.plot(ax=None)``s.
Lower level: ``load_files`` / ``HistoryStore`` (collect), ``summarize_history``.
"""

import pandas as pd

from advisor import schema
from advisor.api import (
    Advice,
    History,
    Risk,
    WhatIf,
    assess_risk,
    build_report,
    load_history,
    recommend,
    what_if,
)
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
    "Advice",
    "AppendResult",
    "History",
    "HistoryStore",
    "HistorySummary",
    "InputError",
    "LoadResult",
    "Problem",
    "Risk",
    "StoreBusyError",
    "StoreError",
    "StoreVersionError",
    "WhatIf",
    "__version__",
    "assess_risk",
    "build_report",
    "default_store_path",
    "load_document",
    "load_files",
    "load_history",
    "load_sample",
    "recommend",
    "schema",
    "summarize_history",
    "what_if",
]

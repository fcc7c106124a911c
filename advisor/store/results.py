"""What the history store's calls return (:class:`AppendResult`, :class:`CollectionInfo`)
and raise (:class:`StoreError` and its kinds)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


class StoreError(Exception):
    """The history store cannot be used as asked (not a store, damaged file, ...)."""


class StoreBusyError(StoreError):
    """Another process holds the store's writer lock."""


class StoreVersionError(StoreError):
    """The store was written by a newer advisor than this one."""


@dataclass(frozen=True)
class FrameCounts:
    """Rows of one frame in one append. ``added``: key new to the store; ``updated``: known
    key, new content; ``unchanged``: stored already (or repeated), not written again."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class AppendResult:
    """What :meth:`HistoryStore.append` did: counts per frame and the collection written
    (``collection_id`` is None when nothing was new, so nothing was written)."""

    collection_id: str | None
    counts: dict[str, FrameCounts] = field(default_factory=dict)

    @property
    def written(self) -> int:
        """Rows written, all frames together."""
        return sum(c.added + c.updated for c in self.counts.values())

    def __str__(self) -> str:
        head = (f"wrote collection {self.collection_id}" if self.collection_id
                else "nothing new, no collection written")
        body = "; ".join(f"{name}: {c.added} added, {c.updated} updated, "
                         f"{c.unchanged} unchanged" for name, c in self.counts.items())
        return f"{head} ({body})" if body else head


@dataclass(frozen=True)
class CollectionInfo:
    """One committed collection as its manifest describes it (``written_at`` in UTC)."""

    id: str
    written_at: pd.Timestamp
    schema_version: int
    rows: dict[str, int]
    sources: dict[str, list[str]]
    supersedes: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

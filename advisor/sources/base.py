"""What every source returns: the frames it read and every record it could not use.

A source never drops a record silently. A record it cannot identify (no name, no volume, a
kind it does not know) is *skipped* with the reason; a record with one bad field (an
unparseable time, a non-numeric size) is *kept* with that field empty and a *warning*.
Each problem names the file, the object (``kind/namespace/name``) and the field.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from advisor import schema

Severity = Literal["skipped", "warning"]


@dataclass(frozen=True)
class Problem:
    """One record (or field) a source could not use as it was.

    ``severity`` is ``"skipped"`` when the whole record was left out, ``"warning"`` when
    the record was kept with ``field`` left empty.
    """

    file: str
    object: str
    field: str
    reason: str
    severity: Severity = "skipped"

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.object) if p]
        where = ": ".join(parts)
        fld = f" field {self.field}:" if self.field else ""
        return f"{where}:{fld} {self.reason}"


@dataclass
class LoadResult:
    """The frames a source produced, what it read per kind, and its problems."""

    frames: dict[str, pd.DataFrame]
    read: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> list[Problem]:
        """Records left out, each with its reason."""
        return [p for p in self.problems if p.severity == "skipped"]

    @property
    def warnings(self) -> list[Problem]:
        """Records kept with a field left empty."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def usable_rows(self) -> int:
        """Rows in all frames together."""
        return sum(len(df) for df in self.frames.values())

    def merge(self, other: LoadResult) -> LoadResult:
        """Both results in one (frames concatenated, counts added)."""
        frames = {}
        for name in schema.FRAMES:
            parts = [r.frames[name] for r in (self, other) if len(r.frames.get(name, ()))]
            frames[name] = (pd.concat(parts, ignore_index=True) if parts
                            else schema.empty(name))
        return LoadResult(frames, self.read + other.read, self.problems + other.problems,
                          self.files + other.files)


def empty_result() -> LoadResult:
    """A result with every frame empty."""
    return LoadResult({name: schema.empty(name) for name in schema.FRAMES})


def retry_delay(attempt: int, retry_after: str | None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` of a request the server refused for
    now (429, 5xx) or did not answer: its ``Retry-After`` when given (at most 30 s), else
    0.5 s doubling up to 8 s. The live sources (Kubernetes, watch, Prometheus) share it."""
    try:
        if retry_after is not None:
            return min(float(retry_after), 30.0)
    except ValueError:
        pass
    return min(0.5 * 2 ** attempt, 8.0)

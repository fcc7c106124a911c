"""The state of :mod:`advisor.model.simulate`'s simulation: the lock files of each backup
volume, the Backups it creates, the jobs' runs, and backup targets whose bandwidth the
backups uploading at once share.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from advisor import longhorn
from advisor.model.fleet import JobSpec, VolumeSpec
from advisor.schedules import Forbid

__all__ = ["JobState", "Lock", "SimulatedBackup", "TargetShare", "VolumeState", "stable_hex"]


def stable_hex(text: str, n: int) -> str:
    """Stable hex digits for generated names (Python's str hash changes per process)."""
    return hashlib.md5(text.encode()).hexdigest()[:n]


@dataclass
class Lock:
    """A lock file in the backup volume: its type, and when it was written and released
    (seconds)."""

    kind: int
    acquired: float
    released: float = np.inf


@dataclass
class SimulatedBackup:
    """A Backup as the simulation creates it: its times (seconds), state, messages and
    worst lock conflict."""

    name: str
    volume: str
    job: str
    requested: float
    started: float = np.nan
    finished: float = np.nan
    state: str = ""
    error: str = ""
    info: str = ""
    msg_error: str = ""
    conflict: str = "none"
    failures: int = 0


@dataclass
class VolumeState:
    """A volume and its backup volume: the locks held, Backups Deleting and Pending, the
    Completed ones each job keeps, and a DR volume's restores."""

    spec: VolumeSpec
    locks: list[Lock] = field(default_factory=list)
    deleting: list[str] = field(default_factory=list)
    pending: list[tuple[SimulatedBackup, Callable[[float], None]]] = field(
        default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)  # job -> Completed, oldest first
    restored: str | None = None
    restoring: bool = False
    last_completed: str | None = None  # the newest Completed backup, for DR restores
    created: int = 0  # backups created, for their names

    def blocked(self, kind: int, before: float, at: float) -> bool:
        """Whether a lock of ``kind`` written at ``before`` fails its check at ``at``: an
        older lock (acquired before it) of a type it cannot be held with
        (:func:`advisor.longhorn.locks_compatible`) is still held then."""
        return any(lk.acquired < before and lk.released > at
                   and not longhorn.locks_compatible(lk.kind, kind) for lk in self.locks)

    def take(self, kind: int, t: float) -> Lock:
        """Write a lock file at ``t``; the caller sets its release time. Locks released
        by now are forgotten: they block nothing later."""
        self.locks = [lk for lk in self.locks if lk.released > t]
        lock = Lock(kind, t)
        self.locks.append(lock)
        return lock


class TargetShare:
    """Backups uploading at once to one backup target share its bandwidth: with n of them
    each progresses at ``min(1, capacity / n)`` of its own speed alone (processor
    sharing), so a storm of backups at one minute slows every one of them."""

    def __init__(self, capacity: float, at: Callable[[float, Callable[[float], None]], None]):
        self.capacity, self.at = capacity, at
        self.active: dict[int, list] = {}  # id -> [remaining solo seconds, token, done]
        self.last = 0.0
        self.tokens = itertools.count()

    def rate(self) -> float:
        """The speed of each backup uploading now, as a share of its speed alone."""
        return min(1.0, self.capacity / len(self.active)) if self.active else 1.0

    def _advance(self, now: float) -> None:
        r = self.rate()
        for item in self.active.values():
            item[0] -= (now - self.last) * r
        self.last = now

    def _reschedule(self, now: float) -> None:
        r = self.rate()
        for key, item in self.active.items():
            item[1] = token = next(self.tokens)
            self.at(now + max(item[0], 0.0) / r,
                    lambda t, k=key, tok=token: self._finish(k, tok, t))

    def start(self, key: int, now: float, solo_s: float, done: Callable[[float], None]
              ) -> None:
        """Backup ``key`` starts uploading at ``now``; alone it would take ``solo_s``
        seconds. ``done(t)`` is called when it ends."""
        self._advance(now)
        self.active[key] = [solo_s, -1, done]
        self._reschedule(now)

    def _finish(self, key: int, token: int, now: float) -> None:
        item = self.active.get(key)
        if item is None or item[1] != token:
            return  # a stale completion: the rate changed since it was scheduled
        self._advance(now)
        del self.active[key]
        self._reschedule(now)
        item[2](now)


@dataclass
class JobState:
    """A backup RecurringJob in the simulation: the volumes its runs process, its
    CronJob's Forbid state, and its runs so far."""

    spec: JobSpec
    members: list[str]
    forbid: Forbid = field(default_factory=Forbid)
    runs: list[dict] = field(default_factory=list)

"""What Longhorn does differently by version, as data (``longhorn-facts.md`` section 3).

Versions up to 1.7 and from 1.8 differ in what happens when a backup meets a deletion of
the same volume, and in how a failed deletion is retried. :func:`behaviour` picks the
rules for a version; the default is the newest behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FAILED_BACKUP_TTL_SETTING = "failed-backup-ttl"
"""The Longhorn setting (minutes) after which a failed Backup is deleted."""
POLL_INTERVAL_SETTING = "backupstore-poll-interval"
"""The Longhorn setting (seconds; 0: off) of the backup target's poll (<= 1.7)."""

LATEST = "1.10"


@dataclass(frozen=True)
class Behaviour:
    """The rules of one Longhorn version that the simulator and the model need.

    Times in seconds. ``backup_meets_deletion``: ``"fail"`` (the backup goes to Error at
    once and is never retried, <= 1.7) or ``"wait"`` (it waits in Pending while a Backup
    of the volume is Deleting, >= 1.8; a race in the gap still fails it). Deletion
    retries: the first after ``deletion_retry_min_s``, doubling up to
    ``deletion_retry_max_s``.
    """

    version: str
    backup_meets_deletion: Literal["fail", "wait"]
    deleting_state: bool
    deletion_retry_min_s: float
    deletion_retry_max_s: float
    deletion_retry_source: str
    poll_interval_setting: str
    default_poll_interval_s: float = 300.0
    failed_backup_ttl_s: float = 1440 * 60.0
    max_retain: int = 100
    lock_message_final_period: bool = True

    @property
    def name(self) -> str:
        """"<= 1.7" or ">= 1.8", as reports say it."""
        return ">= 1.8" if self.backup_meets_deletion == "wait" else "<= 1.7"


def _version(text: str) -> tuple[int, int]:
    parts = text.strip().lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ValueError(f"Longhorn version {text!r} is not like 1.8 or v1.7.2") from None


def behaviour(version: str = LATEST) -> Behaviour:
    """The rules of Longhorn ``version`` ("1.7", "v1.8.1", ...; default the newest)."""
    v = _version(version)
    if v < (1, 0):
        raise ValueError(f"Longhorn version {version!r}: only 1.x is modelled")
    final_period = v <= (1, 10)
    if v <= (1, 7):
        # The backup controller returned the error and its work queue requeued the Backup:
        # longhorn-manager EnhancedDefaultControllerRateLimiter, 5 ms doubling to 1000 s.
        return Behaviour(version, "fail", False, 0.005, 1000.0,
                         "work queue rate limiter (5 ms doubling to 1000 s)",
                         POLL_INTERVAL_SETTING, lock_message_final_period=final_period)
    # controller/backup_controller.go: DeletionMinInterval 1 min, DeletionMaxInterval 24 h
    return Behaviour(version, "wait", True, 60.0, 86400.0,
                     "backup controller deletion backoff (1 min doubling to 24 h)",
                     "backup target pollInterval", lock_message_final_period=final_period)

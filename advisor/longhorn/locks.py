"""Longhorn's rules, as the advisor models them.

Each section follows ``longhorn-facts.md`` and names the upstream source, so a rule can be
re-checked against Longhorn when it changes:

1. the backupstore lock: lock types, timings, compatibility (longhorn/backupstore ``lock.go``);
2. lock paths: the lock folder of a volume, and reading a lock path back to its volume
   (longhorn/backupstore ``lock.go``, ``volume.go``: ``getVolumePath``);
3. lock messages: what a message in a Backup's status or a volume's condition says about a
   lock conflict (longhorn/backupstore ``lock.go``, longhorn-manager
   ``controller/backup_controller.go``).

Everything here is pure and cheap: :func:`classify_message` runs once per message for up
to 100,000 backups per load, so the regexes are compiled once and a substring test skips
them for the (usual) message that mentions no lock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any, Literal

__all__ = [
    "LOCK_ACQUIRE_WAIT_S",
    "LOCK_CONFLICT_SEVERITY",
    "LOCK_EXPIRY_S",
    "LOCK_REFRESH_INTERVAL_S",
    "LockConflict",
    "LockMessage",
    "LockPath",
    "LockType",
    "classify_backup_status",
    "classify_message",
    "lock_failure_message",
    "lock_folder",
    "locks_compatible",
    "parse_lock_path",
    "volume_hash_prefix",
]

# --------------------------------------------------------------------------------------
# 1. The backupstore lock (longhorn/backupstore lock.go)
# --------------------------------------------------------------------------------------


class LockType(IntEnum):
    """Type of a backupstore lock, as stored in the lock file.

    ``RESTORE`` has the same value as ``BACKUP`` (so it is an alias of it): backups and
    restores share one lock type and never block each other.
    """

    BACKUP = 1
    RESTORE = 1
    DELETION = 2


LOCK_REFRESH_INTERVAL_S = 60.0
"""Seconds between refreshes of a held lock file (``LOCK_REFRESH_INTERVAL``)."""

LOCK_EXPIRY_S = 150.0
"""Seconds after its last refresh when a lock stops counting (``LOCK_DURATION``): a
crashed holder stops blocking others after about this long."""

LOCK_ACQUIRE_WAIT_S = 2.0
"""Seconds an acquirer waits between writing its lock file and reading the others
(``LOCK_CHECK_WAIT_TIME``); every backup, restore and deletion pays it once."""


def locks_compatible(a: LockType | int, b: LockType | int) -> bool:
    """Whether locks of types ``a`` and ``b`` can be held on one volume at the same time.

    Locks of the same type never block each other; a backup/restore lock (1) and a
    deletion lock (2) exclude each other (the older unexpired lock wins).
    """
    return int(a) == int(b)


# --------------------------------------------------------------------------------------
# 2. Lock paths (backupstore/volumes/<h[0:2]>/<h[2:4]>/<volume>/locks/lock-<hex>.lck)
# --------------------------------------------------------------------------------------

# Longhorn volume names are ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``; the character class also stops
# the match at quotes, backslashes and whitespace around a path inside a longer message.
_LOCK_PATH_RE = re.compile(
    r"backupstore/volumes/(?P<h1>[0-9a-fA-F]{2})/(?P<h2>[0-9a-fA-F]{2})/"
    r"(?P<volume>[A-Za-z0-9_.-]+)/locks/(?P<name>lock-[0-9A-Za-z]+\.lck)"
)


@lru_cache(maxsize=65536)
def volume_hash_prefix(volume: str) -> str:
    """The two hash folders of ``volume`` in the backupstore, such as ``"97/d4"``.

    They are the first four hex digits of sha512(volume name), as ``getVolumePath`` in
    longhorn/backupstore builds them. Cached: one load asks for the same volumes often.
    """
    digest = hashlib.sha512(volume.encode("utf-8")).hexdigest()
    return f"{digest[0:2]}/{digest[2:4]}"


def lock_folder(volume: str) -> str:
    """The folder holding ``volume``'s lock files, relative to the backup target URL."""
    return f"backupstore/volumes/{volume_hash_prefix(volume)}/{volume}/locks"


@dataclass(frozen=True)
class LockPath:
    """A lock file path read from a message.

    ``path`` is the part from ``backupstore/`` to ``.lck`` (without a target URL before
    it), ``hash_prefix`` its hash folders (``"97/d4"``), ``volume`` the volume folder and
    ``name`` the lock file name (``lock-<hex>.lck``).
    """

    path: str
    hash_prefix: str
    volume: str
    name: str

    def matches_volume(self, volume: str | None = None) -> bool:
        """Whether the hash folders are those of the path's own volume name and, when
        ``volume`` is given, that volume is the path's volume.

        A mismatch means the path was mangled or edited, so its volume cannot be trusted.
        """
        if volume is not None and volume != self.volume:
            return False
        return self.hash_prefix == volume_hash_prefix(self.volume)


def lock_failure_message(volume: str, operation: Literal["create", "delete"], *,
                         final_period: bool = True) -> str:
    """The backupstore's text when ``volume``'s lock cannot be acquired, as Longhorn
    writes it (``operation`` create covers restores too: one word, ``create/restore``).
    The lock file name is made up, stable per volume and operation. ``final_period``:
    Longhorn up to 1.10 ends the sentence with a period."""
    word = "create/restore" if operation == "create" else "delete"
    lock_id = hashlib.md5(f"{volume}{operation}".encode()).hexdigest()[:16]
    end = "." if final_period else ""
    return (f"failed to acquire lock {lock_folder(volume)}/lock-{lock_id}.lck when "
            f"performing backup {word}, please try again later{end}")


def parse_lock_path(path: str) -> LockPath | None:
    """Find a lock file path anywhere in ``path`` (a bare path, one prefixed by a backup
    target URL such as ``s3://bucket@region/`` or ``nfs://host:/export/``, a quoted one,
    or a whole message); None when there is none.
    """
    match = _LOCK_PATH_RE.search(path)
    if match is None:
        return None
    return LockPath(
        path=match.group(0),
        hash_prefix=f"{match['h1']}/{match['h2']}",
        volume=match["volume"],
        name=match["name"],
    )


# --------------------------------------------------------------------------------------
# 3. Lock messages (backupstore lock.go; longhorn-manager controller/backup_controller.go)
# --------------------------------------------------------------------------------------

LockConflict = Literal[
    "none", "delete_blocked", "create_blocked", "restore_blocked", "pending_behind_deletion"
]
"""A kind of lock conflict; the same strings as ``advisor.schema.LOCK_CONFLICTS``."""

LOCK_CONFLICT_SEVERITY: Mapping[str, int] = {
    "none": 0,
    # The backup is only delayed: it waits in Pending until the deletion is done.
    "pending_behind_deletion": 1,
    # Longhorn retries a failed deletion with backoff, so it is mostly informational.
    "delete_blocked": 2,
    # A failed backup is never retried (a lost recovery point); a failed DR restore
    # leaves the standby volume behind until the next poll.
    "restore_blocked": 3,
    "create_blocked": 3,
}
"""How bad each kind of conflict is, to pick one when a status holds several (higher is
worse)."""

# Longhorn's wording only varies in case at the start of a sentence ("Failed ...",
# "failed ..."), so only that letter is case-insensitive; it keeps the regexes consistent
# with the cheap lowercase substring test in classify_message.
_LOCK_FAILURE_RE = re.compile(
    # Engines since September 2024 (backupstore lock.go, Lock()):
    #   failed to acquire lock <path> when performing backup <create/restore|delete>,
    #   please try again later[.]   (the period was dropped after Longhorn 1.10)
    r"[Ff]ailed\s+to\s+acquire\s+lock\s+(?P<path>\S+)\s+when\s+performing\s+backup\s+"
    r"(?P<op>create/restore|delete)"
    # Older engines: failed lock <path> type <1|2> acquisition[, exceeded ...]
    r"|[Ff]ailed\s+lock\s+(?P<old_path>\S+)\s+type\s+(?P<type>[12])\s+acquisition"
)
# WaitForBackupDeletionIsCompleteMessage = "Wait for backup %v to be deleted"
_PENDING_RE = re.compile(r"[Ww]ait\s+for\s+backup\s+(?P<name>[^\s\"'\\]+)\s+to\s+be\s+deleted")
# A message copied out of JSON (or a JSON-escaped log line) keeps \n, \" and \/ escapes,
# possibly doubled; read them as the characters they stand for.
_ESCAPED_SPACE_RE = re.compile(r"\\+[nrt]")
_ESCAPED_CHAR_RE = re.compile(r"\\+([\"'/])")


@dataclass(frozen=True)
class LockMessage:
    """What one message (or one status) says about a lock conflict.

    ``kind`` is one of ``advisor.schema.LOCK_CONFLICTS``. ``lock_path`` is the lock file
    named in a lock failure (the ``backupstore/...lck`` part when it parses, else the raw
    token), ``lock_volume`` the volume read from that path. ``path_matches`` is None when
    there is no path; otherwise, when a volume was given, whether the path belongs to it,
    else whether the path is self-consistent (hash folders = sha512 of its volume name).
    ``waiting_for`` is the backup named in a pending message ("Wait for backup X to be
    deleted").
    """

    kind: LockConflict = "none"
    lock_path: str | None = None
    lock_volume: str | None = None
    path_matches: bool | None = None
    waiting_for: str | None = None

    @property
    def severity(self) -> int:
        """How bad this conflict is (see :data:`LOCK_CONFLICT_SEVERITY`)."""
        return LOCK_CONFLICT_SEVERITY[self.kind]


_NO_CONFLICT = LockMessage()
_WORST = max(LOCK_CONFLICT_SEVERITY.values())


def classify_message(
    text: str | None,
    *,
    where: Literal["backup", "volume"] = "backup",
    volume: str | None = None,
) -> LockMessage:
    """Classify one Longhorn message as a kind of lock conflict.

    ``where`` says where the message was found, because backup creation and restore share
    the operation word ``create/restore`` (and lock type 1): in a Backup's status it is a
    backup (``create_blocked``); in a DR volume's or engine's condition it is a restore
    (``restore_blocked``). A failed deletion is ``delete_blocked`` wherever it is found.
    ``volume``, when given, is the volume the message belongs to, checked against the
    lock path. When a text holds several messages, the most severe wins, so a lock failure
    beats a pending message; among equals, the first.
    """
    if where not in ("backup", "volume"):
        raise ValueError(f"where must be 'backup' or 'volume', not {where!r}")
    # Most messages name no lock: skip the regexes for them.
    if not text or ("lock" not in text and "deleted" not in text):
        return _NO_CONFLICT
    if "\\" in text:
        text = _ESCAPED_CHAR_RE.sub(r"\1", _ESCAPED_SPACE_RE.sub(" ", text))

    best: LockMessage | None = None
    if "lock" in text:
        for match in _LOCK_FAILURE_RE.finditer(text):
            found = _lock_failure(match, where, volume)
            if best is None or found.severity > best.severity:
                best = found
            if best.severity == _WORST:
                break
    if best is not None:
        return best

    match = _PENDING_RE.search(text)
    if match is not None:
        return LockMessage(kind="pending_behind_deletion", waiting_for=match["name"])
    return _NO_CONFLICT


def _lock_failure(match: re.Match[str], where: str, volume: str | None) -> LockMessage:
    """The LockMessage of one lock-failure match of :data:`_LOCK_FAILURE_RE`."""
    if match["path"] is not None:
        raw_path, deletion = match["path"], match["op"] == "delete"
    else:
        raw_path, deletion = match["old_path"], match["type"] == str(int(LockType.DELETION))
    if deletion:
        kind: LockConflict = "delete_blocked"
    else:
        kind = "create_blocked" if where == "backup" else "restore_blocked"
    lock = parse_lock_path(raw_path)
    if lock is None:
        return LockMessage(kind=kind, lock_path=raw_path, path_matches=False)
    return LockMessage(
        kind=kind,
        lock_path=lock.path,
        lock_volume=lock.volume,
        path_matches=lock.matches_volume(volume),
    )


def classify_backup_status(status: Mapping[str, Any]) -> LockMessage:
    """Classify a Backup CR's ``status`` by its lock messages.

    Reads ``status.error``, ``status.messages.error`` and ``status.messages.info``
    (``messages`` may be missing or null) as messages of a backup, checked against
    ``status.volumeName``, and returns the most severe (the first among equals).
    """
    messages = status.get("messages")
    if not isinstance(messages, Mapping):
        messages = {}
    volume = status.get("volumeName") or None
    best = _NO_CONFLICT
    for text in (status.get("error"), messages.get("error"), messages.get("info")):
        if not isinstance(text, str):
            continue
        found = classify_message(text, where="backup", volume=volume)
        if found.severity > best.severity:
            best = found
    return best

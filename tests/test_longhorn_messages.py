"""Longhorn's lock rules and lock messages (advisor.longhorn, longhorn-facts.md 1 and 3)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.longhorn.locks import (
    LOCK_ACQUIRE_WAIT_S,
    LOCK_CONFLICT_SEVERITY,
    LOCK_EXPIRY_S,
    LOCK_REFRESH_INTERVAL_S,
    LockConflict,
    LockMessage,
    LockType,
    classify_backup_status,
    classify_message,
    lock_failure_message,
    lock_folder,
    locks_compatible,
    parse_lock_path,
)
from advisor.schema import LOCK_CONFLICTS

KB_VOLUME = "pvc-3f3bd369-2ab6-43ea-aff5-c8455a1dca9a"
KB_PATH = f"backupstore/volumes/97/d4/{KB_VOLUME}/locks/lock-be9e2e87f33f40cb.lck"
KB_MESSAGE = (f"error: failed to acquire lock {KB_PATH} when performing backup delete, "
              "please try again later.")
OTHER_VOLUME = "pvc-00000000-0000-0000-0000-000000000000"


def lock_path(volume: str, name: str = "lock-0123456789abcdef.lck") -> str:
    return f"{lock_folder(volume)}/{name}"


def current(path: str, op: str, *, period: bool = True) -> str:
    """A lock failure as engines since September 2024 word it."""
    return (f"failed to acquire lock {path} when performing backup {op}, please try again "
            f"later{'.' if period else ''}")


def older(path: str, lock_type: int) -> str:
    """A lock failure as engines before September 2024 word it."""
    return f"failed lock {path} type {lock_type} acquisition"


# --- 1. the lock ------------------------------------------------------------------------

def test_lock_constants_follow_backupstore():
    assert LockType.BACKUP == LockType.RESTORE == 1
    assert LockType.DELETION == 2
    assert (LOCK_REFRESH_INTERVAL_S, LOCK_EXPIRY_S, LOCK_ACQUIRE_WAIT_S) == (60, 150, 2)


@pytest.mark.parametrize(("a", "b", "ok"), [
    (LockType.BACKUP, LockType.RESTORE, True),
    (LockType.BACKUP, LockType.BACKUP, True),
    (LockType.DELETION, LockType.DELETION, True),
    (LockType.BACKUP, LockType.DELETION, False),
    (LockType.DELETION, LockType.RESTORE, False),
])
def test_locks_compatible_same_type_never_blocks(a, b, ok):
    assert locks_compatible(a, b) is ok
    assert locks_compatible(b, a) is ok


def test_lock_conflict_kinds_match_schema():
    assert get_args(LockConflict) == LOCK_CONFLICTS
    assert set(LOCK_CONFLICT_SEVERITY) == set(LOCK_CONFLICTS)


# --- 2. lock paths ----------------------------------------------------------------------

def test_lock_folder_of_the_knowledge_base_volume():
    assert lock_folder(KB_VOLUME) == f"backupstore/volumes/97/d4/{KB_VOLUME}/locks"


@pytest.mark.parametrize("text", [
    KB_PATH,
    f"s3://backups@us-east-1/{KB_PATH}",
    f"s3://backups@us-east-1/cluster-a/{KB_PATH}",
    f"nfs://nas.local:/export/longhorn/{KB_PATH}",
    f'"{KB_PATH}"',
    f"'nfs://10.0.0.5:/srv/{KB_PATH}',",
    f"some error: {KB_PATH} when",
])
def test_parse_lock_path_finds_the_path_anywhere(text):
    lock = parse_lock_path(text)
    assert lock is not None
    assert lock.path == KB_PATH
    assert lock.hash_prefix == "97/d4"
    assert lock.volume == KB_VOLUME
    assert lock.name == "lock-be9e2e87f33f40cb.lck"
    assert lock.matches_volume()
    assert lock.matches_volume(KB_VOLUME)
    assert not lock.matches_volume(OTHER_VOLUME)


def test_parse_lock_path_without_a_path():
    assert parse_lock_path("") is None
    assert parse_lock_path("backupstore/volumes/97/d4/pvc-a/backups/backup_x.cfg") is None
    assert parse_lock_path("failed to acquire lock when performing backup delete") is None


def test_hash_folders_of_another_volume_do_not_match():
    lock = parse_lock_path(f"backupstore/volumes/97/d4/{OTHER_VOLUME}/locks/lock-1.lck")
    assert lock is not None
    assert not lock.matches_volume()
    assert not lock.matches_volume(OTHER_VOLUME)


# --- 3. messages ------------------------------------------------------------------------

def test_knowledge_base_message():
    msg = classify_message(KB_MESSAGE, volume=KB_VOLUME)
    assert msg == LockMessage(kind="delete_blocked", lock_path=KB_PATH,
                              lock_volume=KB_VOLUME, path_matches=True)
    assert classify_message(KB_MESSAGE, volume=OTHER_VOLUME).path_matches is False
    assert classify_message(KB_MESSAGE).path_matches is True  # self-consistent
    assert classify_message(KB_MESSAGE, where="volume").kind == "delete_blocked"


def _kb_wording(op: str, *, period: bool) -> str:
    """The knowledge-base message (KB_MESSAGE, Longhorn's own text) for operation word
    ``op``, with or without the final period, and any ``lock-<16 hex>.lck`` file name
    (longhorn-facts.md 1), as a regex."""
    kb = KB_MESSAGE.removeprefix("error: ").replace("backup delete,", f"backup {op},")
    if not period:
        kb = kb.removesuffix(".")
    return re.escape(kb).replace(re.escape("lock-be9e2e87f33f40cb.lck"), r"lock-[0-9a-f]{16}\.lck")


@pytest.mark.parametrize(("operation", "word"), [("delete", "delete"),
                                                 ("create", "create/restore")])
def test_lock_failure_message_is_longhorns_text(operation, word):
    """The made-up message is Longhorn's (the KB article's) word for word: the volume's lock
    folder, a 16-hex-digit lock file, ``create/restore`` for backups and restores (one word,
    longhorn-facts.md 1) or ``delete``, and a final period by default (engines up to 1.10.1)
    or none (from 1.10.2, backupstore 53b736c)."""
    assert re.fullmatch(_kb_wording(word, period=True),
                        lock_failure_message(KB_VOLUME, operation))
    assert re.fullmatch(_kb_wording(word, period=False),
                        lock_failure_message(KB_VOLUME, operation, final_period=False))


@pytest.mark.parametrize(("op", "where", "kind"), [
    ("create/restore", "backup", "create_blocked"),
    ("create/restore", "volume", "restore_blocked"),
    ("delete", "backup", "delete_blocked"),
    ("delete", "volume", "delete_blocked"),
])
@pytest.mark.parametrize("period", [True, False])
@pytest.mark.parametrize("prefix", ["", "s3://backups@us-east-1/", "nfs://nas:/export/lh/"])
def test_current_generation(op, where, kind, period, prefix):
    path = lock_path("pvc-a")
    msg = classify_message(current(prefix + path, op, period=period), where=where,
                           volume="pvc-a")
    assert (msg.kind, msg.lock_path, msg.lock_volume, msg.path_matches) == (
        kind, path, "pvc-a", True)
    assert msg.waiting_for is None


@pytest.mark.parametrize(("lock_type", "where", "kind"), [
    (1, "backup", "create_blocked"),
    (1, "volume", "restore_blocked"),
    (2, "backup", "delete_blocked"),
    (2, "volume", "delete_blocked"),
])
def test_older_generation(lock_type, where, kind):
    path = lock_path("pvc-b")
    text = f"proxyServer=10.42.0.7:8501: {older('s3://b@r/' + path, lock_type)}"
    msg = classify_message(text, where=where)
    assert (msg.kind, msg.lock_path, msg.lock_volume, msg.path_matches) == (
        kind, path, "pvc-b", True)


def test_older_generation_with_the_2020_wait_suffix():
    text = older(lock_path("pvc-b"), 2) + ", exceeded maximum wait time 30s"
    assert classify_message(text).kind == "delete_blocked"


def test_first_letter_may_be_capitalised():
    path = lock_path("pvc-c")
    assert classify_message("F" + current(path, "delete")[1:]).kind == "delete_blocked"
    assert classify_message("F" + older(path, 1)[1:]).kind == "create_blocked"


def test_wrapped_deletion_error_from_the_backup_controller():
    path = lock_path("v")
    text = ("Failed to delete the backup backup-abc in the backupstore, err error deleting "
            "backup s3://b@r/?backup=backup-abc&volume=v: failed to execute: /engine-binaries/"
            "longhornio-longhorn-engine-v1.9.1/longhorn [backup rm --volume v s3://b@r/?backup="
            "backup-abc&volume=v], output , stderr, time=\"2025-01-01T02:00:03Z\" level=error "
            f"msg=\"{current('s3://b@r/' + path, 'delete')}\"\n, error exit status 1")
    msg = classify_message(text, volume="v")
    assert (msg.kind, msg.lock_path, msg.lock_volume, msg.path_matches) == (
        "delete_blocked", path, "v", True)


def test_json_escaped_and_multi_line_text():
    path = lock_path("pvc-d")
    message = f'failed to acquire lock "{path}"\nwhen performing backup\ncreate/restore'
    for text in (message, json.dumps({"error": message}), json.dumps(json.dumps(message)),
                 json.dumps(message).replace("/", "\\/")):
        msg = classify_message(text, where="volume", volume="pvc-d")
        assert (msg.kind, msg.lock_path, msg.path_matches) == ("restore_blocked", path, True)


def test_path_whose_hash_folders_do_not_match_its_volume():
    text = current(f"backupstore/volumes/00/00/{KB_VOLUME}/locks/lock-abc.lck", "delete")
    msg = classify_message(text)
    assert (msg.kind, msg.lock_volume, msg.path_matches) == ("delete_blocked", KB_VOLUME, False)
    assert classify_message(text, volume=KB_VOLUME).path_matches is False


def test_unparsable_path_keeps_the_kind():
    msg = classify_message(current("/some/other/lock", "create/restore"))
    assert (msg.kind, msg.lock_path, msg.lock_volume, msg.path_matches) == (
        "create_blocked", "/some/other/lock", None, False)


def test_pending_behind_deletion():
    msg = classify_message("Wait for backup backup-7f3c2a to be deleted")
    assert msg == LockMessage(kind="pending_behind_deletion", waiting_for="backup-7f3c2a")
    assert classify_message("wait for backup b-1 to be deleted").waiting_for == "b-1"


def test_lock_failure_wins_over_pending():
    path = lock_path("pvc-e")
    text = f"Wait for backup backup-1 to be deleted; {current(path, 'create/restore')}"
    assert classify_message(text).kind == "create_blocked"
    # Among lock failures the worse one wins: a lost backup beats a retried deletion.
    text = f"{current(path, 'delete')}; {older(path, 1)}"
    assert classify_message(text).kind == "create_blocked"


@pytest.mark.parametrize("text", [
    None, "", "   ",
    "Failed to get the Snapshot snap-1",
    "backup target is unavailable: failed to list objects: AccessDenied",
    "proxyServer=10.42.0.7:8501 destination=10.42.0.9:10000: failed to backup: unlock failed",
    "failed to acquire lock",
    "Waiting for the snapshot snap-1 to be ready",
    "Wait for backup to be deleted",
    "the lock was deleted",
])
def test_unrelated_messages_are_none(text):
    assert classify_message(text) == LockMessage(kind="none")
    assert classify_message(text).path_matches is None


def test_where_must_be_backup_or_volume():
    with pytest.raises(ValueError, match="where"):
        classify_message(KB_MESSAGE, where="engine")  # type: ignore[arg-type]


# --- Backup status ----------------------------------------------------------------------

def test_backup_status_reads_error_and_messages():
    path = lock_path("pvc-f")
    failed = f"Failed to delete the backup x in the backupstore, err {current(path, 'delete')}"
    status = {"volumeName": "pvc-f", "state": "Error", "error": "",
              "messages": {"info": "Wait for backup backup-0 to be deleted", "error": failed}}
    msg = classify_backup_status(status)
    assert (msg.kind, msg.lock_volume, msg.path_matches) == ("delete_blocked", "pvc-f", True)

    status["volumeName"] = "pvc-g"
    assert classify_backup_status(status).path_matches is False

    status = {"volumeName": "pvc-f", "error": current(path, "create/restore"),
              "messages": {"error": KB_MESSAGE}}
    assert classify_backup_status(status).kind == "create_blocked"  # a backup, not a restore


def test_of_equally_severe_conflicts_the_first_wins():
    """Two deletions blocked on two different locks (equal severity): the status field read
    first (``error``, then ``messages.error``, then ``messages.info``) names the lock, and
    within one text the first message does."""
    first, second = lock_path("pvc-f", "lock-1111111111111111.lck"), lock_path("pvc-g")
    status = {"volumeName": "pvc-f", "error": current(first, "delete"),
              "messages": {"error": current(second, "delete"),
                           "info": current(second, "delete")}}
    msg = classify_backup_status(status)
    assert (msg.kind, msg.lock_path, msg.path_matches) == ("delete_blocked", first, True)
    status = {"volumeName": "pvc-f", "messages": {"error": current(second, "delete"),
                                                  "info": current(first, "delete")}}
    assert classify_backup_status(status).lock_path == second
    # the same in one text (deletions: not the worst kind, so the scan goes on)
    text = f"{current(second, 'delete')}; {current(first, 'delete')}"
    msg = classify_message(text, volume="pvc-f")
    assert (msg.kind, msg.lock_volume, msg.path_matches) == ("delete_blocked", "pvc-g", False)
    # a more severe later message still wins over an earlier, milder one
    text = f"{current(first, 'delete')}; {current(second, 'create/restore')}"
    assert classify_message(text).kind == "create_blocked"


@pytest.mark.parametrize("status", [
    {}, {"messages": None}, {"messages": {}, "error": None}, {"messages": {"info": None}},
    {"volumeName": "pvc-a", "state": "Completed", "messages": {"info": "done"}},
])
def test_backup_status_without_lock_messages(status):
    assert classify_backup_status(status).kind == "none"


def test_backup_status_pending_only():
    status = {"state": "Pending", "messages": {"info": "Wait for backup b-9 to be deleted"}}
    msg = classify_backup_status(status)
    assert (msg.kind, msg.waiting_for) == ("pending_behind_deletion", "b-9")


# --- Properties -------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(text):
    msg = classify_message(text)
    assert msg.kind in LOCK_CONFLICTS
    classify_message(text, where="volume", volume="pvc-a")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["failed to acquire lock ", "failed lock ", "Wait for backup ",
                        "lock", "backupstore/volumes/97/d4/", "\\n", "\\\"", " type 1 "]),
       st.integers(1_000, 50_000))
def test_long_adversarial_text_stays_fast(piece, repeat):
    text = piece * repeat
    start = time.perf_counter()
    classify_message(text)
    assert time.perf_counter() - start < 1.0


VOLUME_NAMES = st.from_regex(re.compile(r"[a-z0-9-]{1,63}"), fullmatch=True)
# Surrounding text stays apart from the message by a separator, as in real wrapped errors.
SURROUNDING = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(volume=VOLUME_NAMES,
       generation=st.sampled_from(["current", "current-no-period", "older"]),
       deletion=st.booleans(),
       where=st.sampled_from(["backup", "volume"]),
       url=st.sampled_from(["", "s3://bucket@us-east-1/", "nfs://nas:/export/",
                            "s3://b@r/cluster/"]),
       quote=st.sampled_from(["", '"', "'"]),
       lock_hex=st.from_regex(re.compile(r"[0-9a-f]{16}"), fullmatch=True),
       before=SURROUNDING, after=SURROUNDING,
       sep=st.sampled_from([" ", "\n", ": ", " err "]))
def test_volume_recovered_from_generated_messages(volume, generation, deletion, where, url,
                                                  quote, lock_hex, before, after, sep):
    path = lock_path(volume, f"lock-{lock_hex}.lck")
    token = f"{quote}{url}{path}{quote}"
    if generation == "older":
        message = older(token, 2 if deletion else 1)
    else:
        message = current(token, "delete" if deletion else "create/restore",
                          period=generation == "current")
    msg = classify_message(before + sep + message + sep + after, where=where, volume=volume)
    expected = "delete_blocked" if deletion else (
        "create_blocked" if where == "backup" else "restore_blocked")
    assert (msg.kind, msg.lock_volume, msg.lock_path, msg.path_matches) == (
        expected, volume, path, True)
    assert classify_message(message, volume=volume + "x").path_matches is False


@given(VOLUME_NAMES | st.text(min_size=1))
def test_lock_folder_hash_folders_are_two_hex_chars(volume):
    folder = lock_folder(volume)
    prefix = "backupstore/volumes/"
    assert folder.startswith(prefix) and folder.endswith(f"/{volume}/locks")
    h1, h2 = folder[len(prefix):].split("/")[:2]
    assert re.fullmatch(r"[0-9a-f]{2}", h1) and re.fullmatch(r"[0-9a-f]{2}", h2)
    assert h1 + h2 == hashlib.sha512(volume.encode("utf-8")).hexdigest()[:4]

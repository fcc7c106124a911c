"""Longhorn's rules, as the advisor models them, in one place.

- :mod:`advisor.longhorn.locks`: the backupstore lock (types, timings, compatibility),
  lock paths and lock messages;
- :mod:`advisor.longhorn.jobs`: which RecurringJobs run on which volume, which tasks
  touch the backupstore, which volumes a run skips;
- :mod:`advisor.longhorn.versions`: what differs between Longhorn <= 1.7 and >= 1.8;
- :mod:`advisor.longhorn.manifests`: the RecurringJob manifests and patches the advice
  prints.

A model never hard-codes a Longhorn constant: it asks here.
"""

from advisor.longhorn.jobs import (
    BACKUPSTORE_TASKS,
    DEFAULT_CONCURRENCY,
    DEFAULT_GROUP,
    GROUP_LABEL_PREFIX,
    JOB_LABEL_PREFIX,
    NAMESPACE,
    RETAIN_ZERO_TASKS,
    SYSTEM_BACKUP,
    TASKS,
    Membership,
    job_volumes,
    kept_by_retention,
    run_lanes,
    skip_reason,
    system_backup_covers,
    system_backup_policy,
    volume_jobs,
)
from advisor.longhorn.locks import (
    LOCK_ACQUIRE_WAIT_S,
    LOCK_CONFLICT_SEVERITY,
    LOCK_EXPIRY_S,
    LOCK_REFRESH_INTERVAL_S,
    LockConflict,
    LockMessage,
    LockPath,
    LockType,
    classify_backup_status,
    classify_message,
    lock_failure_message,
    lock_folder,
    locks_compatible,
    parse_lock_path,
    volume_hash_prefix,
)
from advisor.longhorn.versions import (
    FAILED_BACKUP_TTL_SETTING,
    LATEST,
    POLL_INTERVAL_SETTING,
    Behaviour,
    behaviour,
)

__all__ = [
    "BACKUPSTORE_TASKS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_GROUP",
    "FAILED_BACKUP_TTL_SETTING",
    "GROUP_LABEL_PREFIX",
    "JOB_LABEL_PREFIX",
    "LATEST",
    "LOCK_ACQUIRE_WAIT_S",
    "LOCK_CONFLICT_SEVERITY",
    "LOCK_EXPIRY_S",
    "LOCK_REFRESH_INTERVAL_S",
    "NAMESPACE",
    "POLL_INTERVAL_SETTING",
    "RETAIN_ZERO_TASKS",
    "SYSTEM_BACKUP",
    "TASKS",
    "Behaviour",
    "LockConflict",
    "LockMessage",
    "LockPath",
    "LockType",
    "Membership",
    "behaviour",
    "classify_backup_status",
    "classify_message",
    "job_volumes",
    "kept_by_retention",
    "lock_failure_message",
    "lock_folder",
    "locks_compatible",
    "parse_lock_path",
    "run_lanes",
    "skip_reason",
    "system_backup_covers",
    "system_backup_policy",
    "volume_hash_prefix",
    "volume_jobs",
]

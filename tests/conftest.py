"""Shared fixtures: Longhorn objects built field by field, and the CLI as a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from advisor.sources import synthetic as syn

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
KB_VOLUME = "pvc-3f3bd369-2ab6-43ea-aff5-c8455a1dca9a"
KB_MESSAGE = ("error: failed to acquire lock backupstore/volumes/97/d4/"
              "pvc-3f3bd369-2ab6-43ea-aff5-c8455a1dca9a/locks/lock-be9e2e87f33f40cb.lck "
              "when performing backup delete, please try again later.")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with slow tests first, longest first (``slow(seconds=N)``; 30 s when not
    said), the others after in their order: ``make test`` hands whole files to two
    workers in this order, and a long file handed out last keeps one core busy alone
    at the end (the wheel's three minutes did)."""
    weight: dict[Path, float] = {}
    for item in items:
        mark = item.get_closest_marker("slow")
        if mark is not None:
            weight[item.path] = max(weight.get(item.path, 0.0),
                                    float(mark.kwargs.get("seconds", 30)))
    items.sort(key=lambda i: -weight.get(i.path, 0.0))  # (stable: each file's own order)


def missing_dependency(msg: str) -> None:
    """A test dependency is missing: skip, or fail under ``CI=true`` (CI installs every
    dependency, so a missing one there is a broken set-up, never a skip)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + "; CI=true, so this is a failure, not a skip")
    pytest.skip(msg)


def completed(name: str, volume: str = "pvc-a", *, minutes: float = 10, job: str = "daily",
              offset_h: float = 0, **kw) -> dict:
    """A Completed Backup that ran ``minutes`` from T0 + ``offset_h`` hours."""
    start = T0 + timedelta(hours=offset_h, seconds=5)
    return syn.backup_cr(name, volume, state="Completed", created=start - timedelta(seconds=5),
                         started=start, finished=start + timedelta(minutes=minutes), job=job,
                         size_bytes=kw.pop("size_bytes", 5 * syn.GIB),
                         volume_size_bytes=kw.pop("volume_size_bytes", 20 * syn.GIB), **kw)


def in_progress(name: str, volume: str = "pvc-a", **kw) -> dict:
    """A Backup still running (no end): a censored record."""
    return syn.backup_cr(name, volume, state="InProgress", created=T0,
                         started=T0 + timedelta(seconds=3), job=kw.pop("job", "daily"),
                         volume_size_bytes=20 * syn.GIB, progress=40, **kw)


@pytest.fixture
def mixed_list() -> dict:
    """A ``kubectl get backups,backupvolumes,recurringjobs,volumes,settings -o json``."""
    items = [
        completed("backup-a1", "pvc-a", minutes=12),
        completed("backup-a2", "pvc-a", minutes=14, offset_h=24, job="hourly"),
        in_progress("backup-a3", "pvc-a"),
        syn.backup_cr("backup-b1", KB_VOLUME, state="Error", created=T0,
                      started=T0 + timedelta(seconds=2), job="daily", error=KB_MESSAGE),
        syn.volume_cr("pvc-a", size_bytes=20 * syn.GIB, actual_size_bytes=9 * syn.GIB,
                      created=T0 - timedelta(days=30), jobs=["hourly"], groups=["critical"]),
        syn.volume_cr(KB_VOLUME, size_bytes=10 * syn.GIB, actual_size_bytes=syn.GIB,
                      created=T0 - timedelta(days=30)),
        syn.recurring_job_cr("daily", "0 0 * * *", retain=7, groups=["default"]),
        syn.recurring_job_cr("hourly", "0 * * * *", retain=24, concurrency=2, groups=[]),
        syn.backup_volume_cr("pvc-a", size_bytes=30 * syn.GIB),
        syn.setting_cr("failed-backup-ttl", "1440"),
    ]
    return syn.kubectl_list(items)


@pytest.fixture
def write_json(tmp_path: Path):
    """Write an object as JSON into tmp_path and return the path."""
    def write(obj: object, name: str = "objects.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(obj, indent=1))
        return path
    return write


def run_cli(*args: str, env: dict | None = None, stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m advisor`` as a user would, capturing its output."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "advisor", *args], capture_output=True,
                          text=True, env=full_env, input=stdin, timeout=timeout)


class Hang(Exception):
    """A block ran past its :func:`time_limit`."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str = "the block") -> Iterator[None]:
    """Raise :class:`Hang` in the block after ``seconds`` instead of hanging forever
    (SIGALRM: main thread, Unix; hypothesis' deadline only looks once a call returns)."""
    def alarm(signum, frame):
        raise Hang(f"{what} did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

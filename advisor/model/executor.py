"""Where per-volume work runs: :func:`map_volumes` spreads a function over volumes on
this machine's cores (forked worker processes, else threads), in order.

Per-volume work is a pure function of one volume's plan, which is what lets it run
elsewhere unchanged; this is the one place that decides where.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["FORK_CHUNK", "cores", "map_each", "map_volumes"]


def cores() -> int:
    """The cores this process may use, at most two (the machine the work is sized for)."""
    return min(2, len(os.sched_getaffinity(0)))


T = TypeVar("T")
R = TypeVar("R")
_FORKED: list[tuple[Callable, Sequence]] = []
"""The map in progress (:func:`map_volumes`), as forked workers inherit it."""
FORK_CHUNK = 16
"""Volumes a forked worker scores per message."""


def _forked(span: tuple[int, int]) -> list:
    fn, items = _FORKED[-1]
    return [fn(items[i]) for i in range(*span)]


def _can_fork(n: int, at_least: int) -> bool:
    """Whether ``n`` items go to forked workers: two cores, at least ``at_least`` items,
    and fork."""
    return n >= at_least and cores() >= 2 and "fork" in multiprocessing.get_all_start_methods()


def _in_forks(fn: Callable[[T], R], items: Sequence[T], chunk: int) -> Iterator[list[R]]:
    """``fn`` over ``items`` on two forked worker processes, ``chunk`` items a task: each
    task's results, in order (the workers inherit ``fn`` and ``items``; results come
    back pickled)."""
    n = len(items)
    _FORKED.append((fn, items))
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=cores(), mp_context=ctx) as pool:
            yield from pool.map(_forked, [(lo, min(lo + chunk, n))
                                          for lo in range(0, n, chunk)])
    finally:
        _FORKED.pop()


def map_volumes(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``fn`` over ``items`` on up to two cores, in order. Scoring a volume holds the
    GIL for more than half its time (drawing durations, the figures), so threads gain
    little: with enough items, two forked worker processes score them (they inherit
    ``fn`` and ``items``, plans and run pools included, without copying them; results
    come back pickled). Otherwise, or where fork is not available, threads; with one
    core or one item, here."""
    n = len(items)
    if n < 2 or cores() < 2:
        return [fn(x) for x in items]
    if _can_fork(n, 4 * FORK_CHUNK):
        return [r for part in _in_forks(fn, items, FORK_CHUNK) for r in part]
    with ThreadPoolExecutor(max_workers=cores()) as pool:
        return list(pool.map(fn, items))


def map_each(fn: Callable[[T], R], items: Sequence[T],
             told: Callable[[int], None] | None = None) -> list[R]:
    """``fn`` over ``items``, in order, for work that is long per item and must not share
    a process's globals with itself (drawing charts: matplotlib is not thread-safe): one
    item per task on two forked worker processes when there are two cores, at least four
    items and fork; else here, one after the other. ``told(i)`` hears of item ``i`` as
    its result arrives (here: as it starts)."""
    out: list[R] = []
    if not _can_fork(len(items), 4):
        for i, x in enumerate(items):
            if told is not None:
                told(i)
            out.append(fn(x))
        return out
    for i, part in enumerate(_in_forks(fn, items, 1)):
        if told is not None:
            told(i)
        out += part
    return out

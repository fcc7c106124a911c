"""A fleet with advice applied: what the cluster would run once every printed change is
made (crons, concurrencies, splits), to score it again."""

from __future__ import annotations

from collections.abc import Iterable

from advisor.advice.search.outcome import Recommendation
from advisor.advice.search.split import moved_fleet
from advisor.model.fleet import Fleet

__all__ = ["applied"]


def applied(fleet: Fleet, recs: Iterable[Recommendation]) -> Fleet:
    """``fleet`` with every changed recommendation of ``recs`` applied: each job's
    recommended cron and concurrency, and each split's volumes moved to its new job."""
    out = fleet
    for r in recs:
        if not r.changed:
            continue
        spec = next(j for j in out.jobs if j.name == r.job)
        out = out.with_job(r.job, cron=r.recommended_cron,
                           concurrency=r.concurrency or spec.concurrency)
        if r.split is not None:
            out = moved_fleet(out, r.job, r.split.volumes, r.split.job)
    return out

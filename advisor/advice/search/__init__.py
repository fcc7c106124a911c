"""The search for advice: each job's smallest safe interval on the ladder
(:mod:`~advisor.advice.search.intervals`, scored by the fast path through
:mod:`~advisor.advice.search.scorer`), start offsets and splits
(:mod:`~advisor.advice.search.offsets`), in the vocabulary of
:mod:`~advisor.advice.search.outcome` and :mod:`~advisor.advice.search.ladder`.

Nothing here changes a cluster: every function returns the cron expression, the
RecurringJob YAML or the ``kubectl`` command that would apply the advice.
"""

from advisor.advice.search.intervals import IntervalAdvice, minimum_interval
from advisor.advice.search.jobs import recommend_intervals
from advisor.advice.search.ladder import LADDER, ladder_cron
from advisor.advice.search.offsets import OffsetAdvice, StaggerAdvice, offsets, stagger
from advisor.advice.search.outcome import Recommendation, Scorer, VolumeOutcome
from advisor.advice.search.scorer import FleetScorer, fleet_scorer

__all__ = ["LADDER", "FleetScorer", "IntervalAdvice", "OffsetAdvice", "Recommendation",
           "Scorer", "StaggerAdvice", "VolumeOutcome", "fleet_scorer", "ladder_cron",
           "minimum_interval", "offsets", "recommend_intervals", "stagger"]

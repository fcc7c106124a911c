"""advisor.model.observed: the history's lock conflicts against the predicted rate."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from advisor.model.fleet import Duration, Fleet, JobSpec, VolumeSpec
from advisor.model.observed import OBSERVED_KINDS, observed_vs_predicted
from advisor.model.risk import Draws, assess, plans_from_fleet
from advisor.model.simulate import simulate

START = pd.Timestamp("2026-01-05T00:00:00Z")
GIB = 2**30
VERSION = "1.8"


@pytest.fixture(scope="module")
def truth():
    """An hourly job whose slow volumes meet their retention deletions now and then, a
    quick one that never does, and six weeks of its history."""
    vols = [VolumeSpec(f"slow{i}", 500 * GIB, Duration(m, m * 1.5, "lognormal"),
                       Duration(240, 480, "lognormal"), groups=("a",))
            for i, m in enumerate((1800, 2100, 2400))]
    vols.append(VolumeSpec("quick", 10 * GIB, Duration(60, 90, "lognormal"),
                           Duration(30, 60, "lognormal"), groups=("b",)))
    fleet = Fleet(tuple(vols), (JobSpec("hourly", "0 * * * *", retain=5, groups=("a",)),
                                JobSpec("daily", "0 3 * * *", retain=3, groups=("b",))))
    history = simulate(fleet, START, START + pd.Timedelta(weeks=6), version=VERSION, seed=2)
    backups = history.frames["backups"].assign(cluster="c")
    risk = assess(plans_from_fleet(fleet), Draws(seed=2, precision=0.002),
                  start=START + pd.Timedelta(weeks=6), version=VERSION)
    return fleet, backups, risk


def test_the_true_model_fits_its_own_history(truth):
    _, backups, risk = truth
    seen = observed_vs_predicted(backups, risk).set_index("volume")
    conflicted = backups[backups["lock_conflict"].isin(OBSERVED_KINDS)]
    for v in ("slow0", "slow1", "slow2", "quick"):
        assert seen.loc[v, "observed_conflicts"] == (conflicted["volume"] == v).sum()
        assert seen.loc[v, "history_weeks"] == pytest.approx(6, abs=0.05)
        assert seen.loc[v, "fit"] == "fits", seen.loc[v]
    assert seen.loc["slow2", "observed_conflicts"] > 5  # the test has something to fit
    assert seen.loc["quick", "predicted_per_week"] == 0 == seen.loc["quick",
                                                                    "observed_conflicts"]
    lo, hi = seen.loc["slow2", ["predicted_lo", "predicted_hi"]]
    assert lo <= seen.loc["slow2", "observed_conflicts"] <= hi


def test_a_history_unlike_the_model_is_called_out(truth):
    _, backups, risk = truth
    b = backups.copy()
    # no conflict at all on the slowest volume; every backup of the quick one blocked
    b.loc[b["volume"] == "slow2", "lock_conflict"] = "none"
    b.loc[b["volume"] == "quick", "lock_conflict"] = "delete_blocked"
    seen = observed_vs_predicted(b, risk).set_index("volume")
    assert seen.loc["slow2", "fit"] == "fewer than predicted"
    assert seen.loc["quick", "fit"] == "more than predicted"
    assert seen.loc["slow0", "fit"] == "fits"


def test_a_volume_without_history(truth):
    _, backups, risk = truth
    seen = observed_vs_predicted(backups[backups["volume"] != "quick"], risk)
    row = seen.set_index("volume").loc["quick"]
    assert row["fit"] == "no history" and row["history_weeks"] == 0
    assert pd.isna(row["observed_per_week"])
    # a plan named with its cluster matches only that cluster's history
    named = dataclasses.replace(risk, volumes=tuple(
        dataclasses.replace(v, cluster="other") for v in risk.volumes))
    assert (observed_vs_predicted(backups, named)["fit"] == "no history").all()

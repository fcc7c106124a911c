"""``advisor history``: what the history store holds."""

from __future__ import annotations

import json

from advisor.cli.options import StoreOpt, TableOrJsonOpt, check_output, fail
from advisor.history import summarize
from advisor.store import HistoryStore, StoreError

__all__ = ["history"]


def history(store: StoreOpt = None, output: TableOrJsonOpt = "table") -> None:
    """Summarise the history store: clusters, volumes, jobs, backups, conflicts."""
    check_output(output, ("table", "json"))
    try:
        hs = HistoryStore(store)
        frames = {name: hs.read(name) for name in ("backups", "jobs", "volumes")}
        observations = hs.observations()
    except StoreError as e:
        raise fail(str(e), 1) from None
    summary = summarize(frames, observations)
    if output == "json":
        print(json.dumps({"store": str(hs.path), **summary.to_dict()}, indent=2))
    else:
        print(f"store: {hs.path}")
        print(summary)

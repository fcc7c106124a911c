"""``advisor simulate``: run a scenario file through the lock simulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from advisor.cli.options import TextOrJsonOpt, check_output, fail
from advisor.model.scenario import ScenarioError
from advisor.model.scenario_run import format_text, run_scenario, summarize
from advisor.sources.scenario import load_scenario

__all__ = ["simulate"]

ScenarioArg = Annotated[Path, typer.Argument(
    help="The scenario file (YAML): window, Longhorn version, volumes, RecurringJobs.",
    show_default=False)]


def simulate(scenario: ScenarioArg, output: TextOrJsonOpt = "text") -> None:
    """Simulate a scenario's backups, deletions and restores on the backupstore lock."""
    check_output(output, ("text", "json"))
    try:
        sc = load_scenario(scenario)
    except ScenarioError as e:
        for problem in e.problems:
            print(f"error: {scenario}: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None
    except OSError as e:
        raise fail(f"{scenario}: cannot read the scenario file ({e.strerror})", 2) from None
    summary = summarize(run_scenario(sc), sc)
    print(json.dumps(summary, indent=2) if output == "json" else format_text(summary))

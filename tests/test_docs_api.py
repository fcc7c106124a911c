"""docs/api.md's examples, run: the guide to the Python API says what it does."""

from __future__ import annotations

import doctest
from pathlib import Path

import pandas as pd

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_the_api_guide_runs_as_written():
    with pd.option_context("display.width", 120):
        result = doctest.testfile(str(DOC), module_relative=False, verbose=False,
                                  optionflags=doctest.NORMALIZE_WHITESPACE
                                  | doctest.ELLIPSIS)
    assert result.attempted >= 15 and result.failed == 0, result

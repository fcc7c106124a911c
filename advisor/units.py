"""The one wording of durations, probabilities, uncertainties and dates.

Everything the advisor shows a person (the report, the advice's reasons, the charts'
labels, the terminal) writes its numbers through these functions, so one figure reads
the same everywhere: 5,400 s is "1.5 h" in the table, the reason and the chart.

- A duration is written in the largest unit that keeps it readable: whole seconds under
  90 s ("45 s"), minutes to one decimal under 10 min ("2.5 min"), whole minutes under
  90 min ("75 min"), hours to one decimal under 48 h ("1.5 h", "24 h"), days to one
  decimal beyond ("2.3 d"); a trailing ".0" is dropped.
- A probability is a percentage to three significant digits ("83.2 %", "1.25 %",
  "0.5 %"); under 0.01 % it reads "under 0.01 %" (a Monte Carlo estimate says no more),
  and exactly 0 reads "0 %".
- An uncertainty is always **two standard errors** (about a 95 % interval for these
  estimates): "83.2 % ± 0.48" means 82.7 % to 83.7 %.
- A date is ISO 8601, UTC: "2026-11-23".

A missing value (None, NaN, infinite) reads "n/a".
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["UNCERTAINTY", "date", "duration", "finite", "number", "percent", "percent_pm",
           "size"]

UNCERTAINTY = "two standard errors (about a 95 % interval)"
"""How every ± in the advisor's output is meant."""


def finite(x: object) -> float | None:
    """``x`` as a finite float; None for anything else (None, NA, NaN, text)."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _one_decimal(x: float) -> str:
    """``x`` to one decimal, without a trailing ".0" ("1.5", "24")."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def duration(seconds: object) -> str:
    """``seconds`` as a person reads a duration (see the module's rule)."""
    v = finite(seconds)
    if v is None:
        return "n/a"
    sign, v = ("-" if v < 0 else ""), abs(v)
    if v >= 2 * 86400:
        return f"{sign}{_one_decimal(v / 86400)} d"
    if v >= 5400:
        return f"{sign}{_one_decimal(v / 3600)} h"
    if v >= 600:
        return f"{sign}{v / 60:.0f} min"
    if v >= 90:
        return f"{sign}{_one_decimal(v / 60)} min"
    return f"{sign}{v:.0f} s"


def _pct_digits(x: float) -> str:
    """A percentage figure (``x`` in percent) to three significant digits."""
    if x == 0:
        return "0"
    if abs(x) < 0.01:
        return "under 0.01"
    return f"{x:.3g}"


def percent(p: object) -> str:
    """The probability ``p`` (0 to 1) as a percentage (see the module's rule)."""
    v = finite(p)
    return "n/a" if v is None else f"{_pct_digits(100 * v)} %"


def percent_pm(p: object, se: object) -> str:
    """``p`` with its uncertainty, two standard errors ``se``: "83.2 % ± 0.48" (the ±
    in percentage points; "± n/a" when the standard error is unknown; a figure and an
    uncertainty both under 0.01 read "under 0.01 %")."""
    v, s = finite(p), finite(se)
    if v is None:
        return "n/a"
    if s is None:
        return f"{percent(v)} ± n/a"
    if 0 < 100 * v < 0.01 and 0 < 200 * s < 0.01:  # ("under 0.01 % ± under 0.01")
        return percent(v)
    return f"{percent(v)} ± {_pct_digits(200 * s)}"


def number(x: object) -> str:
    """A count or rate to three significant digits ("12.4", "0.05")."""
    v = finite(x)
    return "n/a" if v is None else f"{v:.3g}"


def size(n: object) -> str:
    """A size in bytes in binary units, to one decimal ("2.0 TiB", "351.0 GiB")."""
    v = finite(n)
    if v is None:
        return "n/a"
    for unit, k in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if v >= k:
            return f"{v / k:.1f} {unit}"
    return f"{v:.0f} B"


def date(t: object) -> str:
    """A time as its UTC date (``2026-11-23``); "" when there is none."""
    if t is None or (isinstance(t, float) and not math.isfinite(t)) or pd.isna(t):
        return ""
    ts = pd.Timestamp(t)
    return (ts.tz_convert("UTC") if ts.tzinfo else ts).strftime("%Y-%m-%d")

"""The report's charts, one function each, usable from notebooks as they are.

Every chart function imports matplotlib inside (importing this module costs nothing),
takes ``ax=None``, draws on it and returns it. Without ``ax`` it makes its own
:class:`matplotlib.figure.Figure`, not a pyplot figure: no backend is chosen, no global
figure list grows, and a report run in a CronJob needs no display (in a notebook, show
it with ``ax.figure`` or pass an ``ax`` from ``plt.subplots()``). Those figures are drawn
inside :func:`chart_style`; a caller's ``ax`` keeps the caller's style.

Names from clusters (volumes, jobs, targets) may hold ``$``, ``_`` or ``^``: every text
is drawn with ``parse_math=False`` so such a name is shown as written, never as mathtext.
Times are UTC; durations are shown in minutes, intervals in minutes or hours.

The charts live by subject: the week's operations (:mod:`advisor.report.chart_operations`),
backup durations (:mod:`advisor.report.chart_durations`), lock-conflict risk
(:mod:`advisor.report.chart_risk`); what they share, :mod:`advisor.report.chart_base`.
"""

from advisor.report.chart_base import CMAP, OKABE_ITO, chart_style, to_png
from advisor.report.chart_durations import duration_distribution, duration_trend
from advisor.report.chart_operations import (
    CONFLICT_MARKERS,
    MAX_TIMELINE_VOLUMES,
    OPERATION_COLORS,
    WEEKDAYS,
    concurrency_heatmap,
    timeline,
)
from advisor.report.chart_risk import conflict_vs_interval, risk_ranking

__all__ = ["CMAP", "CONFLICT_MARKERS", "MAX_TIMELINE_VOLUMES", "OKABE_ITO", "OPERATION_COLORS",
           "WEEKDAYS", "chart_style", "concurrency_heatmap", "conflict_vs_interval",
           "duration_distribution", "duration_trend", "risk_ranking", "timeline", "to_png"]

"""longhorn-backup-advisor: how Longhorn backup schedules collide on the backupstore lock.

The public API: verbs and the results they return::

    import advisor
    history = advisor.load_history(sample=True)        # or a store, or files
    risk = advisor.assess_risk(history)                # each volume's risk now
    advice = advisor.recommend(history)                # the smallest safe intervals
    change = advisor.what_if(history, {"hourly": {"cron": "30 * * * *"}})
    change.patches                                     # the kubectl patch, printed
    advisor.offsets(history)                           # start offsets between jobs
    split = advisor.stagger(history, "daily", parts=3) # one job in staggered parts
    report = advisor.build_report(history)             # the weekly report
    advisor.write_report(report, "reports/")           # HTML, Markdown, JSON, CSV
    verdict = advisor.check("proposed/", history)      # the GitOps gate

Every verb takes its figures from one analysis (:func:`advisor.advice.analyse`) under
one :class:`Settings` (risk target, ISO week, Longhorn version, cluster, seed), so a
notebook, the CLI and the report agree. Each result has ``.table`` (a DataFrame), a
one-line ``repr``, renders in Jupyter and ``.plot(ax=None)``s.

Lower levels have their own modules: :mod:`advisor.store` (the history store),
:mod:`advisor.sources` (readers of files, the Kubernetes API, Prometheus),
:mod:`advisor.sample` (the bundled sample fleet), :mod:`advisor.schema` (the frames).
"""

__version__ = "0.1.0"  # (first: the modules below read it)

from advisor.advice import Analysis, Settings
from advisor.advice.gate import GateResult
from advisor.api import (
    Advice,
    History,
    Offsets,
    Risk,
    Stagger,
    WhatIf,
    assess_risk,
    build_report,
    check,
    load_history,
    offsets,
    recommend,
    stagger,
    what_if,
)
from advisor.history import summarize as summarize_history
from advisor.report.build import Report
from advisor.report.render import write_report

__all__ = [
    "Advice",
    "Analysis",
    "GateResult",
    "History",
    "Offsets",
    "Report",
    "Risk",
    "Settings",
    "Stagger",
    "WhatIf",
    "__version__",
    "assess_risk",
    "build_report",
    "check",
    "load_history",
    "offsets",
    "recommend",
    "stagger",
    "summarize_history",
    "what_if",
    "write_report",
]

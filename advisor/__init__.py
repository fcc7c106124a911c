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

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Analysis": "advisor.advice", "Settings": "advisor.advice",
    "GateResult": "advisor.advice.gate",
    **dict.fromkeys(("Advice", "History", "Offsets", "Risk", "Stagger", "WhatIf",
                     "assess_risk", "build_report", "check", "load_history", "offsets",
                     "recommend", "stagger", "what_if"), "advisor.api"),
    "Report": "advisor.report.build", "write_report": "advisor.report.render",
}
"""Where each public name lives: it is imported on first use, so that a program that
reads files or a store (``advisor collect``, a reader in a notebook) does not load the
model, the report and their libraries (about 1.3 s on 2 cores) first."""
_RENAMED = {"summarize_history": ("advisor.history", "summarize")}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS or name in _RENAMED:
        module, attr = _RENAMED.get(name, (_EXPORTS.get(name), name))
        value = getattr(importlib.import_module(module), attr)
    elif importlib.util.find_spec(f"advisor.{name}") is not None:  # (a submodule)
        value = importlib.import_module(f"advisor.{name}")
    else:
        raise AttributeError(f"module 'advisor' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # (what type checkers and editors see: the same names, imported)
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

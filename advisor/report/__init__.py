"""The weekly report: one report structure (:mod:`advisor.report.build`), rendered to HTML,
Markdown, JSON and CSV (:mod:`advisor.report.render`), with charts usable from notebooks
(:mod:`advisor.report.charts`)."""

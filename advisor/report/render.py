"""The weekly report's flavours, from one :class:`~advisor.report.build.Report`.

- HTML: one self-contained file (charts inline as PNG data URIs, styles inline), from the
  Jinja template ``templates/report.html.j2`` with autoescaping: every string from a
  cluster is text, never markup.
- Markdown: the same sections, charts as PNG files in a folder beside it; table cells and
  text escaped (``|``, ``<``, ``*``, backticks...).
- JSON: ``Report.to_dict()``, every number the HTML shows, valid against
  ``report.schema.json`` (versioned by ``schema_version``).
- CSV: per-volume figures and per-job recommendations.

Files are named ``longhorn-backup-report-<week>`` so that one output folder holds the
weeks side by side; the previous week's JSON there is what "changed since" compares with.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from advisor import units
from advisor.model.executor import map_each
from advisor.report.build import JobReport, Report
from advisor.report.recovery import RECOVERY_CHANGE, SHOWN, change_text, headline

__all__ = ["FORMATS", "PREFIX", "load_previous", "render_charts", "to_csv", "to_html",
           "to_json", "to_markdown", "write_report"]

FORMATS = ("html", "md", "json", "csv")
PREFIX = "longhorn-backup-report-"
_TEMPLATES = Path(__file__).with_name("templates")


def load_previous(out: Path, week: str) -> dict | None:
    """The JSON of the latest report in ``out`` for a week before ``week`` (None if
    none, or unreadable: the comparison is then left out, never guessed)."""
    found = []
    for p in Path(out).glob(f"{PREFIX}*.json"):
        w = p.name[len(PREFIX):-len(".json")]
        if re.fullmatch(r"\d{4}-W\d{2}", w) and w < week:
            found.append((w, p))
    for _, p in sorted(found, reverse=True):
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            continue
    return None


def _slug(text: str) -> str:
    """A file-name-safe form of a cluster string (unique enough: a hash is added when
    characters were replaced)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]
    if slug != text:
        slug += "-" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return slug


def render_charts(report: Report, *, on_chart: Callable[[str], None] | None = None
                  ) -> dict[str, tuple[str, bytes]]:
    """Every chart of the report as ``{file stem: (title, PNG bytes)}``, in reading
    order: the fleet's risk ranking, the week's timeline, backups running at once per
    target, each job's risk against its interval, and each detailed volume's duration
    distribution and trend."""
    from advisor.report import charts as ch

    target = report.meta["target_risk"]
    todo: list[tuple[str, str, Callable[[], object]]] = [
        ("risk-ranking", "The fleet's risk ranking",
         lambda: ch.risk_ranking(report.volumes, top=20, target=target)),
        ("timeline", "The week's operations, riskiest volumes",
         lambda: ch.timeline(report.operations, volumes=report.detailed,
                             start=pd.Timestamp(report.meta["week_start"]),
                             end=pd.Timestamp(report.meta["week_end"]))),
    ]
    for t in sorted(set(report.operations["backup_target"])) or ["default"]:
        todo.append((f"running-at-once-{_slug(t)}", f"Backups running at once, target {t}",
                     lambda t=t: ch.concurrency_heatmap(report.operations, backup_target=t)))
    for j in report.jobs:
        if len(j.curve) >= 2 and j.current_interval_s:
            todo.append((f"interval-{_slug(j.job)}", f"RecurringJob {j.job}: risk and interval",
                         lambda j=j: ch.conflict_vs_interval(
                             j.curve, current_s=j.current_interval_s,
                             recommended_s=j.recommended_interval_s if j.changed else None,
                             target=target, title=f"RecurringJob {j.job}: its worst volume's "
                             "conflict per run against the interval")))
    vols = report.volumes.set_index("volume")
    fits = report.fits.set_index("volume")  # (one row per volume: the preferred fit)
    for v in report.detailed:
        d = report.durations[report.durations["volume"] == v]
        done, cens = d[~d["censored"]], d[d["censored"]]
        interval = vols.at[v, "interval_s"] if v in vols.index else np.nan
        interval = float(interval) if np.isfinite(interval) else None
        q = ({k: float(fits.at[v, f"{k}_s"]) for k in ("p50", "p95", "p99")}
             if v in fits.index else None)
        todo.append((f"durations-{_slug(v)}", f"Volume {v}: backup durations",
                     lambda done=done, cens=cens, q=q, interval=interval, v=v:
                     ch.duration_distribution(done["duration_s"], quantiles=q,
                                              interval_s=interval,
                                              censored_s=cens["duration_s"].dropna(),
                                              title=f"Volume {v}: backup durations")))
        todo.append((f"trend-{_slug(v)}", f"Volume {v}: duration trend",
                     lambda d=d, interval=interval, v=v: ch.duration_trend(
                         d["started_at"], d["duration_s"], d["censored"],
                         interval_s=interval, trend=report.trends.get(v),
                         now=pd.Timestamp(report.meta["week_end"]),
                         title=f"Volume {v}: duration trend")))
    def told(i: int) -> None:
        if on_chart is not None:
            on_chart(todo[i][1])

    with ch.chart_style():  # (forked workers inherit the style)
        pngs = map_each(lambda t: ch.to_png(t[2]()), todo, told=told)
    return {stem: (title, png) for (stem, title, _), png in zip(todo, pngs, strict=True)}


def to_json(report: Report) -> str:
    """The report as JSON (``report.schema.json``)."""
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"


def to_csv(report: Report) -> dict[str, str]:
    """``{"volumes": csv, "jobs": csv, "recovery": csv}``: the per-volume table, the
    per-job advice (every field but the curve; a split as its new job, cron and
    volumes; what it does to recovery points as ``recovery_`` columns) and each
    volume's recovery points."""
    def row(j: JobReport) -> dict:
        sp, rp = j.split or {}, j.recovery or {}
        return {**{k: v for k, v in j.to_dict().items()
                   if k not in ("curve", "split", "recovery")},
                "split_job": sp.get("job"), "split_cron": sp.get("cron"),
                "split_volumes": ", ".join(sp.get("volumes", ())) or None,
                **{f"recovery_{k}": rp.get(k) for k in RECOVERY_CHANGE}}

    jobs = pd.DataFrame([row(j) for j in report.jobs])
    return {"volumes": report.volumes.to_csv(index=False),
            "jobs": jobs.to_csv(index=False),
            "recovery": report.recovery.to_csv(index=False)}


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, pm=units.percent_pm, dur=_dur, num=_num, when=_when,
                       reaches=_reaches, recovery_change=change_text)
    return env


def to_html(report: Report, charts: dict[str, tuple[str, bytes]]) -> str:
    """One self-contained HTML page (charts inline)."""
    images = {stem: (title, "data:image/png;base64," + base64.b64encode(png).decode())
              for stem, (title, png) in charts.items()}
    return _env().get_template("report.html.j2").render(
        r=report, d=report.to_dict(), images=images, volumes=_records(report.volumes),
        headline=headline(report.summary), recovery=_records(report.recovery),
        shown=SHOWN)


def to_markdown(report: Report, chart_files: dict[str, tuple[str, str]]) -> str:
    """Markdown; ``chart_files``: ``{stem: (title, relative path of its PNG)}``."""
    d, s, m = report.to_dict(), report.summary, report.meta
    e = md_escape
    lines = [f"# Longhorn backup report {e(m['week'])}: cluster {e(m['cluster'])}", "",
             f"Week {m['week_start'][:10]} to {m['week_end'][:10]} (UTC); Longhorn "
             f"{e(m['longhorn_version'])} rules; target {_pct(m['target_risk'])} conflict "
             f"per run; advisor {e(m['advisor_version'])}.", "", "## Summary", ""]
    lo, hi = s["conflicts_predicted_range"]
    lines += [f"- **{e(f)}** {e(w)}" for f, w in headline(s)] + ["", e(s["fit"]["text"]), ""]
    lines += [
        f"- **{s['volumes_at_risk']} of {s['volumes']} volumes at risk**",
        f"- lock conflicts observed this week: **{s['conflicts_observed']}**; predicted "
        f"{s['conflicts_predicted']:.1f} (95 % range of a week's count {lo:.0f}–{hi:.0f})",
        f"- failed backups: {s['failed_backups']} of {s['backups_week']}",
        f"- skipped runs predicted: {s['skipped_runs_predicted']:.1f} a week",
        f"- over the target with the changes below applied: "
        f"{len(s['over_target_after'])} of {s['volumes']}"
        + (f" ({', '.join(e(v) for v in s['over_target_after'][:5])})"
           if s["over_target_after"] else ""), "",
        "### The three most important changes", ""]
    lines += [f"{i}. {e(c)}" for i, c in enumerate(s["top_changes"], 1)] or ["None."]
    lines += ["", "## Recovery points", "", f"The {SHOWN} volumes that lost the most (all "
              "are in the JSON and CSV): observed, and in brackets the central 95 % of the "
              "predicted weeks.", "", _md_recovery(report.recovery.head(SHOWN)), ""]
    lines += ["## RecurringJobs", ""]
    for j in report.jobs:
        lines += [f"### {e(j.job)}", "", _md_action(j), "", e(j.reason), ""]
        if j.changed and j.recovery:
            lines += [e(change_text(j.recovery)), ""]
        if j.changed:
            lines += ["```yaml", j.yaml or "", "```", "", "```sh", j.patch or "", "```", ""]
    lines += ["## Volumes by risk", "", f"P(conflict)/run: ± is {units.UNCERTAINTY}, in "
              "percentage points.", "", _md_table(report.volumes), ""]
    lines += ["## Changes since the previous report", "", *_md_changes(d["changes"]), ""]
    lines += ["## Charts", ""]
    for _stem, (title, path) in chart_files.items():
        lines += [f"![{e(title)}]({path})", ""]
    lines += ["## Data quality and assumptions", "", *_md_quality(d["data_quality"])]
    return "\n".join(lines) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def md_escape(text: object) -> str:
    """``text`` as literal Markdown text: every character Markdown or HTML would read
    as syntax is escaped, and line breaks become spaces (a table cell stays one)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\r", " ").replace("\n", " ")


def _code(text: str) -> str:
    """``text`` for a Markdown code span: a backtick would end the span, and a line
    break (a cron may hold one: its fields are split at any white space) would let the
    next line start a block (``* * *``: a bullet list)."""
    return str(text).replace("`", "'").replace("\r", " ").replace("\n", " ")


def _md_table(df: pd.DataFrame) -> str:
    cols = ["volume", "jobs", "p_conflict_per_run", "p_conflict_per_run_se",
            "p_conflict_per_week",
            "expected_conflicts_per_week", "skipped_runs_per_week", "observed_conflicts_week",
            "p95_s", "p99_s", "interval_s", "min_safe_interval_s", "margin_s",
            "p99_crosses_at"]
    head = ["volume", "jobs", "P(conflict)/run", "P(conflict)/week", "conflicts/week",
            "skipped/week", "observed", "p95", "p99", "interval", "min safe interval",
            "margin", "p99 reaches interval"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in df[cols].itertuples(index=False):
        rows.append("| " + " | ".join([
            md_escape(r.volume), md_escape(r.jobs),
            units.percent_pm(r.p_conflict_per_run, r.p_conflict_per_run_se),
            _pct(r.p_conflict_per_week), _num(r.expected_conflicts_per_week),
            _num(r.skipped_runs_per_week), str(r.observed_conflicts_week), _dur(r.p95_s),
            _dur(r.p99_s), _dur(r.interval_s), _dur(r.min_safe_interval_s), _dur(r.margin_s),
            _reaches(r.p99_crosses_at, r.margin_s)]) + " |")
    return "\n".join(rows)


def _md_recovery(t: pd.DataFrame) -> str:
    """The recovery table (:data:`~advisor.report.recovery.RECOVERY_COLUMNS`) as
    Markdown: one line per volume, observed figures with their predicted ranges."""
    def rng(v: dict, k: str, f: Callable[[object], str]) -> str:
        return f"{f(v[f'{k}_observed'])} [{f(v[f'{k}_lo'])}–{f(v[f'{k}_hi'])}]"

    rows = [{"volume": md_escape(v["volume"]), "intended every": _dur(v["intended_interval_s"]),
             "completed": rng(v, "points", _num), "lost": rng(v, "lost", _num),
             "gap p95": rng(v, "gap_p95", _dur), "longest gap": rng(v, "gap_max", _dur),
             "delayed": rng(v, "waited", _num), "wait p95": _dur(v["wait_p95_observed"]),
             "cleanups deferred": rng(v, "deferred", _num),
             "outside range": md_escape(v["outside"])} for v in _records(t)]
    if not rows:
        return "No volume."
    head = list(rows[0])
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r.values()) + " |" for r in rows)])


def _md_action(j: JobReport) -> str:
    """What to do with one job, in a line (as the HTML says it)."""
    cron = (f"change cron `{_code(j.current_cron)}` to `{_code(j.recommended_cron)}`"
            if j.recommended_cron != j.current_cron else f"keep `{_code(j.current_cron)}`")
    if j.split:
        return (f"Move {len(j.split['volumes'])} slow volume(s) to a new job "
                f"`{_code(j.split['job'])}` at `{_code(j.split['cron'])}`; the others "
                f"{cron}.")
    if j.concurrency:
        return f"Set concurrency {j.concurrency}, keep `{_code(j.current_cron)}`."
    return cron[0].upper() + cron[1:] + "."


def _md_changes(c: dict | None) -> list[str]:
    if not c:
        return ["No earlier report in the output folder: nothing to compare with."]
    e = md_escape
    out = [f"Compared with {e(c['previous_week'])}."]
    for key, what in (("newly_at_risk", "newly at risk"),
                      ("no_longer_at_risk", "no longer at risk"),
                      ("new_volumes", "new volumes"), ("gone_volumes", "volumes gone")):
        if c[key]:
            out.append(f"- {what}: " + ", ".join(e(v) for v in c[key]))
    for m in c["risk_moves"][:10]:
        out.append(f"- {e(m['volume'])}: conflict per run {_pct(m['before'])} → "
                   f"{_pct(m['after'])}")
    for j in c["cron_changes"]:
        out.append(f"- RecurringJob {e(j['job'])}: cron `{_code(j['before'])}` → "
                   f"`{_code(j['after'])}`")
    b, n = c["summary_before"], c["summary_now"]
    out.append(f"- volumes at risk {b['volumes_at_risk']} → {n['volumes_at_risk']}; "
               f"conflicts observed {b['conflicts_observed']} → {n['conflicts_observed']}")
    return out


def _md_quality(q: dict) -> list[str]:
    e = md_escape
    out = [f"- Backups in the history: {q['backups']} ({q['backups_censored']} censored: "
           "still running or failed, kept as \"at least this long\")",
           f"- History from {e(q['history_from'])} to {e(q['history_to'])}",
           f"- Volumes on the fleet prior (too little history of their own): "
           f"{', '.join(e(v) for v in q['volumes_on_fleet_prior']) or 'none'}",
           f"- Deletion durations: {e(q['deletion_durations'])}",
           f"- Longhorn rules assumed: {e(q['longhorn_version'])}",
           f"- Time zone of schedules: {e(q['schedule_time_zone'])}"]
    for a in q["assumptions"]:
        out.append(f"- Assumed: {e(a)}")
    for key, what in (("records_skipped", "Skipped"), ("records_with_warnings", "Warning"),
                      ("fit_problems", "Fit")):
        for p in q[key][:50]:
            out.append(f"- {what}: {e(p)}")
        if len(q[key]) > 50:
            out.append(f"- ... {len(q[key]) - 50} more ({what.lower()}; all in the JSON)")
    return out


def _records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict("records")


_pct, _num, _dur, _when = units.percent, units.number, units.duration, units.date


def _reaches(crosses: object, margin_s: object) -> str:
    """When the p99 trend reaches the interval: its date, or "already" when the p99 is
    past the interval now (a negative margin) without a growing trend to date it."""
    when = _when(crosses)
    margin = units.finite(margin_s)
    return when or ("already" if margin is not None and margin < 0 else "")


def write_report(report: Report, out: Path, formats: Sequence[str] = FORMATS, *,
                 charts: dict[str, tuple[str, bytes]] | None = None,
                 on_chart: Callable[[str], None] | None = None) -> list[Path]:
    """Write the report's ``formats`` into ``out`` (made if missing); the files written.
    Each file is written beside its final name and renamed, so a reader never sees half
    a report."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = f"{PREFIX}{report.meta['week']}"
    written: list[Path] = []
    if charts is None and ({"html", "md"} & set(formats)):
        charts = render_charts(report, on_chart=on_chart)
    if "md" in formats and charts is not None:
        folder = out / f"{base}-charts"
        folder.mkdir(exist_ok=True)
        files = {}
        for stem, (title, png) in charts.items():
            written.append(_write(folder / f"{stem}.png", png))
            files[stem] = (title, f"{folder.name}/{stem}.png")
        written.append(_write(out / f"{base}.md", to_markdown(report, files).encode()))
    if "html" in formats and charts is not None:
        written.append(_write(out / f"{base}.html", to_html(report, charts).encode()))
    if "json" in formats:
        written.append(_write(out / f"{base}.json", to_json(report).encode()))
    if "csv" in formats:
        for name, text in to_csv(report).items():
            written.append(_write(out / f"{base}-{name}.csv", text.encode()))
    return written


def _write(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


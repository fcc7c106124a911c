"""Hostile text through every section of the weekly report, collected through the CLI.

A small history (three volumes, then a fourth; two RecurringJobs; three weeks) is
written as a kubectl JSON export and a CSV of backup history, collected with
``advisor collect`` into a store, reported once (``--format json``), changed (a new
volume, a RecurringJob's cron changed, a week more of backups, records to skip and to
warn about), collected again and reported again (``--format html,md,json``). Every
string a cluster or its files can choose freely carries markup and Markdown syntax:

- the cluster (``--cluster``): ``<script>``, ``</title>``, ``<img onerror>``,
  ``](javascript:...)``, ``| pipes |``, ``*``, ``_``, backticks, ``~~``, ``&amp;``;
- the names of the files collected, a CSV column the store keeps verbatim (the backup
  target), values a record is skipped or warned about for (a state, a time, a duration)
  and a CSV backup name (with a line break): the data-quality lists echo them;
- Backup messages (``status.error``, ``status.messages``, the CSV ``message`` column):
  the advisor reads lock conflicts from them and shows none, so they must show nowhere;
- a RecurringJob's cron with a line break between its fields (``15 0\\n* * *``: Longhorn
  parses crons with robfig/cron, which splits the fields at any white space, as the
  advisor does): in a Markdown code span the break started a bullet list.

Kubernetes object names cannot hold markup: volume and RecurringJob names are
DNS-1123 subdomains (lower-case letters, digits, ``-`` and ``.``) and group names are
label-key names (``_`` too), so those carry only what Markdown reads as syntax there
(``pvc-db.1--b``, ``g._hot_.x``: emphasis if not escaped). The top changes and the
week-over-week changes are made of those names, crons and figures only: that their
text is escaped is checked in the HTML and Markdown source, since a browser shows an
unescaped ``->`` or ``'`` just as an escaped one.

The HTML is opened in headless Chromium (the harness of ``test_report_browser``): no
dialog, no error, no script, no element the report does not make, and each section's
text exactly the report's strings. The Markdown is parsed with ``markdown-it-py``
(CommonMark, GFM tables and strikethrough, raw HTML on, every link scheme allowed):
no raw HTML, link or emphasis from the input, every table row with the header's cell
count, and each section read back to the report's strings.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import markupsafe
import pytest

from advisor import longhorn
from advisor.report.recovery import change_text, headline
from advisor.sources import synthetic as syn
from tests import test_report_browser as harness
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

# the Chromium fixtures of the browser tests (one Chromium for this module)
chromium = harness.chromium
browser = harness.browser

CLUSTER = ("prod <script>alert(1)</script></title> <img src=x onerror=alert(2)> "
           "[c](javascript:alert(3)) | pipe | *star* _under_ `tick` ~~strike~~ &amp;")
FIRST_FILE = "kubectl weeks 45-46 <svg onload=alert(4)> _a_.json"
JSON_FILE = "kubectl <svg onload=alert(5)> [j](javascript:alert(6)) _u_ *s* | p | `t` &amp;.json"
CSV_FILE = ("history <img src=x onerror=alert(7)> [k](javascript:alert(8)) _u_ *s* | p | "
            "`t` &amp;.csv")
TARGET = "s3://bkp <img src=x onerror=alert(9)> _t_ | `c` &amp;"
BAD_STATE = "<img src=x onerror=alert(10)> *Done* [d](javascript:alert(11))"
BAD_TIME = "<svg onload=alert(12)> _when_"
BAD_DURATION = "<script>alert(13)</script> | 12 |"
BACKUP_NAME = "csv <b>b</b> [n](javascript:alert(14)) *x* | y |\n# heading"
ERROR_TAIL = " <script>alert(15)</script> [e](javascript:alert(16))"
MESSAGES = {"error": "<img src=x onerror=alert(17)> *e*", "info": "done <b>bold</b> _x_"}
CSV_MESSAGE = "<script>alert(18)</script> `m` *m* | m |"
CSV_BACKUP = "csv-{} <i>i</i> *x* _y_"
# Kubernetes names: what a DNS-1123 subdomain or a label-key name can hold
WEB, DB, LOGS, NEW = "pvc-web.0-a", "pvc-db.1--b", "pvc-logs.2", "pvc-new.3"
HOURLY, DAILY = "hourly-a", "daily.b"
GROUP = "g._hot_.x"
DAILY_CRON = "15 0\n* * *"  # (a YAML block scalar keeps such a break)
# the strings the report must show, verbatim, as text (whitespace collapsed)
SHOWN = (CLUSTER, JSON_FILE, CSV_FILE, TARGET, BAD_STATE, BAD_TIME, BAD_DURATION,
         BACKUP_NAME)
# markup of the input, never in the HTML source unescaped
RAW = ("<script", "<svg", "<img src=x", "<b>b", "<b>bold", "<i>", "<a ", "</title> ")

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday: ISO week 2026-W45
WEEK = "2026-W47"
HTML_TAGS = {"HTML", "HEAD", "META", "TITLE", "STYLE", "BODY", "H1", "H2", "H3", "P", "DIV",
             "B", "OL", "UL", "LI", "CODE", "PRE", "TABLE", "THEAD", "TBODY", "TR", "TH",
             "TD", "FIGURE", "IMG", "FIGCAPTION"}
"""Every element the report's template makes: any other one was injected."""
H2 = ["Summary", "Recovery points", "RecurringJobs", "Volumes by risk",
      "Changes since the previous report", "Charts", "Data quality and assumptions"]
MD_SPECIAL = set("\\`*_[]()#+-.!|<>~&{}")
"""What the Markdown must backslash-escape in text from the input (its module says:
every character Markdown or HTML would read as syntax)."""


def norm(text: str) -> str:
    """``text`` with its white space collapsed, as a browser shows it."""
    return " ".join(text.split())


# --- the history -----------------------------------------------------------------------

def runs(volume: str, job: str, every_h: int, minutes: float, start: datetime,
         end: datetime, rng: random.Random) -> list[dict]:
    """Backup CRs of ``volume`` by ``job``: one per fire time (every ``every_h`` hours
    from ``start``) unless the previous one still runs; about 3 % fail on the
    backupstore lock, with markup after Longhorn's message and in their messages."""
    out, busy, t = [], start, start
    while t < end:
        if t >= busy:
            began = t + timedelta(seconds=rng.randint(2, 40))
            name = f"backup-{volume}-{job}-{int(t.timestamp())}"
            if rng.random() < 0.03:
                out.append(syn.backup_cr(
                    name, volume, state="Error", created=t, started=began, job=job,
                    error=longhorn.lock_failure_message(volume, "create") + ERROR_TAIL,
                    messages=MESSAGES, volume_size_bytes=20 * syn.GIB))
            else:
                busy = began + timedelta(minutes=minutes * rng.lognormvariate(0, 0.15))
                out.append(syn.backup_cr(
                    name, volume, state="Completed", created=t, started=began,
                    finished=busy, job=job, size_bytes=syn.GIB,
                    volume_size_bytes=20 * syn.GIB))
        t += timedelta(hours=every_h)
    return out


def history(start: datetime, end: datetime, seed: int, *, daily_cron: str = "0 0 * * *",
            new_volume: bool = False) -> list[dict]:
    """The fleet's objects and its backups from ``start`` to ``end``: ``pvc-web.0-a``
    and ``pvc-db.1--b`` (its backups outlast the hour) run the hourly job (by label,
    by group) and the daily one, whose fire times meet; ``pvc-logs.2`` the daily one
    only; with ``new_volume``, ``pvc-new.3`` too, with two days of backups."""
    rng = random.Random(seed)
    born = T0 - timedelta(days=60)
    items = [*runs(WEB, HOURLY, 1, 9, start, end, rng),
             *runs(WEB, DAILY, 24, 12, start, end, rng),
             *runs(DB, HOURLY, 1, 58, start, end, rng),
             *runs(DB, DAILY, 24, 30, start, end, rng),
             *runs(LOGS, DAILY, 24, 20, start, end, rng),
             syn.volume_cr(WEB, size_bytes=20 * syn.GIB, actual_size_bytes=5 * syn.GIB,
                           created=born, jobs=[HOURLY, DAILY]),
             syn.volume_cr(DB, size_bytes=50 * syn.GIB, actual_size_bytes=30 * syn.GIB,
                           created=born, jobs=[DAILY], groups=[GROUP]),
             syn.volume_cr(LOGS, size_bytes=10 * syn.GIB, actual_size_bytes=2 * syn.GIB,
                           created=born, jobs=[DAILY]),
             syn.recurring_job_cr(HOURLY, "0 * * * *", retain=24, groups=[GROUP]),
             syn.recurring_job_cr(DAILY, daily_cron, retain=7, groups=["default", "a.b__c"])]
    if new_volume:
        items.append(syn.volume_cr(NEW, size_bytes=10 * syn.GIB, actual_size_bytes=syn.GIB,
                                   created=end - timedelta(days=3), jobs=[DAILY]))
        items += runs(NEW, DAILY, 24, 5, end - timedelta(days=2), end, rng)
    return items


def second_week_files(folder: Path) -> list[Path]:
    """The second collection: week 47 as kubectl JSON (the daily job's cron changed to
    one with a line break, a new volume, a Backup skipped for its state, one warned
    about for its start time) and as CSV (backups to a second target, one warned about
    for its duration, one skipped for its state), both under hostile file names."""
    start, end = T0 + timedelta(days=14), T0 + timedelta(days=21, minutes=30)
    items = history(start, end, 2, daily_cron=DAILY_CRON, new_volume=True)
    items.append(syn.backup_cr("backup-bad-state", WEB, state=BAD_STATE,
                               created=start + timedelta(hours=3)))
    bad = syn.backup_cr("backup-bad-time", WEB, state="Completed", job=HOURLY,
                        created=start + timedelta(hours=5),
                        started=start + timedelta(hours=5, seconds=4),
                        finished=start + timedelta(hours=5, minutes=9), size_bytes=syn.GIB,
                        volume_size_bytes=20 * syn.GIB)
    bad["status"]["snapshotCreatedAt"] = BAD_TIME
    items.append(bad)
    (folder / JSON_FILE).write_text(json.dumps(syn.kubectl_list(items)))
    rows = []
    for k in range(6):
        began = start + timedelta(days=1 + k, hours=7, minutes=20)
        rows.append({"volume": WEB, "backup": CSV_BACKUP.format(k), "state": "Completed",
                     "started_at": began.isoformat(),
                     "finished_at": (began + timedelta(minutes=8)).isoformat(),
                     "recurring_job": "", "backup_target": TARGET, "message": CSV_MESSAGE})
    began = (start + timedelta(days=2, hours=9, minutes=20)).isoformat()
    rows.append({"volume": WEB, "backup": BACKUP_NAME, "state": "Completed",
                 "started_at": began, "duration_s": BAD_DURATION, "backup_target": TARGET})
    rows.append({"volume": WEB, "backup": "csv-bad-state", "state": BAD_STATE,
                 "started_at": began, "backup_target": TARGET})
    with open(folder / CSV_FILE, "w", newline="") as f:
        w = csv.DictWriter(f, ["volume", "backup", "state", "started_at", "finished_at",
                               "duration_s", "recurring_job", "backup_target", "message"])
        w.writeheader()
        w.writerows(rows)
    return [folder / JSON_FILE, folder / CSV_FILE]


@dataclasses.dataclass(frozen=True)
class Reported:
    """The second report's files and JSON, and the charts beside its Markdown."""

    html: Path
    md: Path
    doc: dict
    charts: list[str]


def _ok(proc) -> None:
    assert proc.returncode == 0, f"{proc.args[3:5]}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Reported:
    """Collect, report (week 46, JSON), collect again, report (week 47): all through
    ``advisor`` as a user runs it."""
    d = tmp_path_factory.mktemp("hostile")
    store, out = str(d / "store"), str(d / "out")
    first = d / FIRST_FILE
    first.write_text(json.dumps(syn.kubectl_list(
        history(T0, T0 + timedelta(days=14, minutes=30), 1))))
    _ok(run_cli("collect", "-f", str(first), "--cluster", CLUSTER, "--store", store))
    _ok(run_cli("report", "--store", store, "--out", out, "--format", "json", "--quiet",
                timeout=300))
    files = second_week_files(d)
    _ok(run_cli("collect", *(a for f in files for a in ("-f", str(f))), "--cluster", CLUSTER,
                "--store", store))
    _ok(run_cli("report", "--store", store, "--out", out, "--format", "html,md,json",
                "--quiet", timeout=300))
    base = Path(out) / f"longhorn-backup-report-{WEEK}"
    charts = sorted(p.name for p in Path(f"{base}-charts").glob("*.png"))
    return Reported(Path(f"{base}.html"), Path(f"{base}.md"),
                    json.loads(Path(f"{base}.json").read_text()), charts)


def test_the_hostile_history_reaches_every_section(reported):
    """The inputs did what this module relies on: the report has top changes, advice
    with a changed cron, a what-changed section, skipped records and warnings naming
    the hostile files and values, a chart of the hostile target, and the hostile
    cluster; else the other tests would pass on nothing."""
    d = reported.doc
    assert d["meta"]["cluster"] == CLUSTER and d["meta"]["week"] == WEEK
    assert len(d["summary"]["top_changes"]) >= 2
    assert any(j["changed"] and GROUP in j["yaml"] for j in d["jobs"])
    assert {v["volume"] for v in d["volumes"]} == {WEB, DB, LOGS, NEW}
    c = d["changes"]
    assert c["previous_week"] == "2026-W46" and c["new_volumes"] == [NEW]
    assert c["cron_changes"] == [{"job": DAILY, "before": "0 0 * * *", "after": DAILY_CRON}]
    assert {j["job"]: j["current_cron"] for j in d["jobs"]}[DAILY] == DAILY_CRON
    q = d["data_quality"]
    skipped, warned = q["records_skipped"], q["records_with_warnings"]
    assert any(JSON_FILE in p and BAD_STATE in p for p in skipped)
    assert any(CSV_FILE in p and BAD_STATE in p for p in skipped)
    assert any(BAD_TIME in p for p in warned) and any(BAD_DURATION in p for p in warned)
    assert any(BACKUP_NAME in p for p in warned + q["fit_problems"])
    assert any(CLUSTER in p for p in q["fit_problems"])
    assert TARGET in {c["backup_target"] for c in d["running_at_once"]}
    assert any(name.startswith("running-at-once-s3_bkp") for name in reported.charts)


# --- HTML ------------------------------------------------------------------------------

SECTIONS_JS = """(() => {
  const sectionOf = el => {
    while (el.parentElement && el.parentElement !== document.body) el = el.parentElement;
    while (el && el.tagName !== 'H2') el = el.previousElementSibling;
    return el ? el.id : 'head';
  };
  const within = (id, sel) => [...document.querySelectorAll(sel)]
    .filter(e => sectionOf(e) === id);
  const text = (id, sel) => within(id, sel).map(e => e.innerText);
  return {
    title: document.title, h1: text('head', 'h1'),
    sections: [...document.querySelectorAll('h2')].map(h => h.id),
    top_changes: text('summary', 'ol > li'),
    jobs: text('jobs', 'h3'), reasons: text('jobs', 'p.muted'), pre: text('jobs', 'pre'),
    head_cells: within('volumes', 'thead th').length,
    rows: within('volumes', 'tbody > tr').map(r => [...r.cells].map(c => c.innerText)),
    changes_p: text('changes', 'p'), changes: text('changes', 'li'),
    figures: within('charts', 'figure').map(f => ({
      alt: [...f.querySelectorAll('img')].map(i => i.alt),
      caption: [...f.querySelectorAll('figcaption')].map(c => c.innerText)})),
    quality: text('quality', 'li'),
  };
})()"""

PAGE_JS = """(() => {
  const all = [...document.querySelectorAll('*')];
  return {
    tags: all.map(e => e.tagName),
    on_attributes: all.flatMap(e => [...e.attributes].map(a => a.name)
      .filter(n => n.startsWith('on')).map(n => e.tagName + ' ' + n)),
    sources: [...document.images].map(i => i.src.slice(0, 22)),
    bold: document.querySelectorAll('b').length,
    card_bold: document.querySelectorAll('.card > b').length,
    links: document.links.length,
    text: document.body.innerText,
  };
})()"""


def _open(browser, path: Path, script: str) -> tuple[dict, list[str], list[str]]:
    with browser.page() as page:
        page.open(path.as_uri())
        got = page.evaluate(script)
        return got, page.dialogs(), page.errors()


def test_the_html_runs_nothing_and_gains_no_element(reported, browser):
    """In Chromium the page opens no dialog, logs no error, holds no script and no
    element, attribute or link its template does not make (every image is a chart,
    inline), and shows every hostile string of the input as text."""
    got, dialogs, errors = _open(browser, reported.html, PAGE_JS)
    assert dialogs == [] and errors == []
    tags = Counter(got["tags"])
    assert set(tags) <= HTML_TAGS, set(tags) - HTML_TAGS
    assert tags["SCRIPT"] == tags["A"] == got["links"] == 0
    assert got["on_attributes"] == []
    assert tags["IMG"] == tags["FIGURE"] == len(reported.charts) > 0
    assert set(got["sources"]) == {"data:image/png;base64,"}
    # the summary cards' figures only: the recovery points' and the six of risk
    assert got["bold"] == got["card_bold"] == len(headline(reported.doc["summary"])) + 6
    text = norm(got["text"])
    for s in SHOWN:
        assert norm(s) in text, s


def test_each_html_section_shows_the_reports_strings_as_text(reported, browser):
    """Section by section (title and heading, summary and top changes, RecurringJobs,
    volumes, what changed, charts' alt texts and captions, data quality), the text
    Chromium shows is exactly the report's strings, markup and all."""
    got, dialogs, errors = _open(browser, reported.html, SECTIONS_JS)
    assert dialogs == [] and errors == []
    d = reported.doc
    assert got["sections"] == ["summary", "recovery", "jobs", "volumes", "changes", "charts",
                               "quality"]
    # title and heading: the cluster
    assert got["title"] == norm(f"Longhorn backup report {WEEK}: {CLUSTER}")
    assert [norm(h) for h in got["h1"]] == [norm(f"Longhorn backup report {WEEK}: cluster "
                                                 f"{CLUSTER}")]
    # summary: the top changes
    assert got["top_changes"] == [norm(c) for c in d["summary"]["top_changes"]]
    # RecurringJobs: names, reasons, the YAML (its groups) and patch of each change
    assert got["jobs"] == [j["job"] for j in d["jobs"]]
    assert got["reasons"] == [norm(j["reason"]) for j in d["jobs"]]
    assert [p.rstrip("\n") for p in got["pre"]] == [
        t.rstrip("\n") for j in d["jobs"] if j["changed"] for t in (j["yaml"], j["patch"])]
    # volumes: one row per volume, the header's cell count, names and jobs as text
    assert [r[:2] for r in got["rows"]] == [[v["volume"], v["jobs"]] for v in d["volumes"]]
    assert {len(r) for r in got["rows"]} == {got["head_cells"]} == {13}
    # what changed
    c = d["changes"]
    assert any(c["previous_week"] in p for p in got["changes_p"])
    assert f"New volumes: {', '.join(c['new_volumes'])}" in got["changes"]
    for m in c["risk_moves"][:10]:
        assert any(li.startswith(f"{m['volume']}: conflict per run ") for li in got["changes"])
    for j in c["cron_changes"]:
        assert norm(f"RecurringJob {j['job']}: cron {j['before']} → {j['after']}") in [
            norm(li) for li in got["changes"]]
    # charts: one image each, its alt text its caption; the hostile target's among them
    assert all(len(f["alt"]) == len(f["caption"]) == 1 for f in got["figures"])
    assert [f["alt"][0] for f in got["figures"]] == [f["caption"][0] for f in got["figures"]]
    alts = [f["alt"][0] for f in got["figures"]]
    assert f"Backups running at once, target {TARGET}" in alts
    assert {f"RecurringJob {j['job']}: risk and interval" for j in d["jobs"]} <= set(alts)
    assert {f"Volume {v}: backup durations" for v in d["detailed"]} <= set(alts)
    # data quality: every record skipped or warned about, fit problem and assumption
    q = d["data_quality"]
    expected = ([f"Assumed: {a}" for a in q["assumptions"]]
                + [f"Skipped: {p}" for p in q["records_skipped"]]
                + [f"Warning: {p}" for p in q["records_with_warnings"]]
                + [f"Fit: {p}" for p in q["fit_problems"]])
    assert [norm(li) for li in got["quality"][-len(expected):]] == [norm(e) for e in expected]
    assert norm(f"Volumes on the fleet prior (too little history of their own): {NEW}") in [
        norm(li) for li in got["quality"]]


def test_the_html_source_escapes_every_string_of_every_section(reported):
    """In the page's source every string from the cluster or its files is
    HTML-escaped where it is written (so ``'`` and ``>`` of a top change or a reason,
    harmless as they are, are escaped too: the next string may not be harmless), and
    none of the input's markup is there raw."""
    src, d = reported.html.read_text(), reported.doc
    e = markupsafe.escape
    for raw in RAW:
        assert raw not in src, raw
    assert src.count("</title>") == 1
    assert f"<title>Longhorn backup report {WEEK}: {e(CLUSTER)}</title>" in src
    assert f"<h1>Longhorn backup report {WEEK}: cluster {e(CLUSTER)}</h1>" in src
    for c in d["summary"]["top_changes"]:
        assert f"<li>{e(c)}</li>" in src, c
    for j in d["jobs"]:
        assert f"<h3>{e(j['job'])}</h3>" in src and f'<p class="muted">{e(j["reason"])}</p>' \
            in src, j["job"]
        if j["changed"]:
            assert f"<pre>{e(j['yaml'])}</pre>" in src and f"<pre>{e(j['patch'])}</pre>" in src
    for v in d["volumes"]:
        cells = (f'<td class="text name">{e(v["volume"])}</td>\n'
                 f'<td class="text">{e(v["jobs"])}</td>')
        assert cells in src, v["volume"]
    c = d["changes"]
    assert f"<li>New volumes: {', '.join(e(v) for v in c['new_volumes'])}</li>" in src
    for m in c["risk_moves"][:10]:
        assert f"<li>{e(m['volume'])}: conflict per run " in src
    for j in c["cron_changes"]:
        assert (f"<li>RecurringJob {e(j['job'])}: cron <code>{e(j['before'])}</code> → "
                f"<code>{e(j['after'])}</code></li>") in src
    title = e(f"Backups running at once, target {TARGET}")
    assert f'alt="{title}"><figcaption>{title}</figcaption>' in src
    q = d["data_quality"]
    for key, what in (("records_skipped", "Skipped"), ("records_with_warnings", "Warning"),
                      ("fit_problems", "Fit"), ("assumptions", "Assumed")):
        for p in q[key]:
            assert f"<li>{what}: {e(p)}</li>" in src, p


# --- Markdown --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Block:
    """One piece of the parsed Markdown: ``kind`` is the innermost element (h1, h2, h3,
    p, li, fence, tr, html); ``text`` what a reader sees (the cells of a table row in
    ``cells``); ``inline`` the inline tokens, ``section`` the h2 it is under."""

    section: str
    kind: str
    text: str
    cells: tuple[str, ...] = ()
    inline: tuple = ()
    ordered: bool = False


def _inline_text(children) -> str:
    parts = []
    for c in children or ():
        if c.type in ("text", "code_inline", "html_inline"):
            parts.append(c.content)
        elif c.type in ("softbreak", "hardbreak"):
            parts.append("\n")
    return "".join(parts)


def parse_markdown(text: str) -> list[Block]:
    """The Markdown as CommonMark with GFM tables and strikethrough, raw HTML on, and
    every link allowed (``javascript:`` too: link syntax from the input must show as a
    link here, not be dropped by a cautious renderer)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True
    section, stack, out, row = "", [], [], []
    for t in md.parse(text):
        if t.type == "tr_open":
            row = []
        elif t.type == "tr_close":
            out.append(Block(section, "tr", " | ".join(row), tuple(row)))
        if t.nesting == 1:
            stack.append(t.tag)
        elif t.nesting == -1:
            stack.pop()
        if t.type == "inline":
            kind = "li" if stack[-2:] == ["li", "p"] else stack[-1]
            shown = _inline_text(t.children)
            if kind == "h2":
                section = shown
            if kind in ("td", "th"):
                row.append(shown)
            else:
                out.append(Block(section, kind, shown, inline=tuple(t.children or ()),
                                 ordered="ol" in stack))
        elif t.type == "fence":
            out.append(Block(section, "fence", t.content))
        elif t.type == "html_block":
            out.append(Block(section, "html", t.content))
    return out


def _cells(line: str) -> list[str]:
    """The cells of a GFM table row: split at the pipes no backslash escapes."""
    cells, cur, i = [], "", 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            cur, i = cur + line[i:i + 2], i + 2
            continue
        if line[i] == "|":
            cells.append(cur)
            cur = ""
        else:
            cur += line[i]
        i += 1
    return [c.strip() for c in cells[1:]]  # (text before the first pipe: none)


def _unescaped(segment: str) -> list[str]:
    """The characters of ``segment`` Markdown could read as syntax and no backslash
    escapes."""
    out, i = [], 0
    while i < len(segment):
        if segment[i] == "\\":
            i += 2
            continue
        if segment[i] in MD_SPECIAL:
            out.append(segment[i])
        i += 1
    return out


def test_the_markdown_has_no_html_link_or_emphasis_from_the_input(reported):
    """Parsed, the Markdown holds no raw HTML (block or inline), no link, no emphasis
    or strikethrough; bold only for the summary's figures (its recovery points' and two
    of risk); its headings are the
    report's own (a line break in a name made none); its images are its charts."""
    text = reported.md.read_text()
    blocks = parse_markdown(text)
    inline = [c for b in blocks for c in b.inline]
    kinds = Counter(c.type for c in inline)
    assert [b.text for b in blocks if b.kind == "html"] == []
    assert kinds["html_inline"] == kinds["link_open"] == kinds["em_open"] == 0, kinds
    d = reported.doc
    assert kinds["s_open"] == 0, kinds
    assert kinds["strong_open"] == len(headline(d["summary"])) + 2, kinds
    assert [b.text for b in blocks if b.kind == "h1"] == [
        f"Longhorn backup report {WEEK}: cluster {CLUSTER}"]
    assert [b.text for b in blocks if b.kind == "h2"] == H2
    assert [b.text for b in blocks if b.kind == "h3"] == [
        "The three most important changes", *(j["job"] for j in d["jobs"])]
    images = [c.attrs["src"] for c in inline if c.type == "image"]
    assert sorted(images) == [f"{reported.md.stem}-charts/{n}" for n in reported.charts]
    # outside code, no "<" of the input is left unescaped (none is the report's own)
    prose = re.sub(r"^```.*?^```$", "", text, flags=re.S | re.M)
    prose = re.sub(r"(?<!\\)`[^`\n]*(?<!\\)`", "", prose)  # code spans: crons
    assert re.findall(r"(?<!\\)<", prose) == []


def test_each_markdown_section_reads_back_as_the_reports_strings(reported):
    """Section by section, the parsed Markdown shows exactly the report's strings
    (line breaks as spaces): heading (cluster), top changes, RecurringJobs (name,
    reason, YAML with its groups, patch), volume table (every row the header's 12
    cells, before and after parsing), what changed, charts' alt texts, data quality."""
    blocks = parse_markdown(reported.md.read_text())
    d = reported.doc
    by = {}
    for b in blocks:
        by.setdefault(b.section, []).append(b)
    top = [b.text for b in by["Summary"] if b.kind == "li" and b.ordered]
    assert top == d["summary"]["top_changes"]
    jobs = by["RecurringJobs"]
    assert [b.text for b in jobs if b.kind == "p" and not b.text.startswith(
        ("Change cron", "Keep", "Recovery points:"))] == [j["reason"] for j in d["jobs"]]
    assert [b.text for b in jobs if b.text.startswith("Recovery points:")] == [
        change_text(j["recovery"]) for j in d["jobs"] if j["changed"] and j["recovery"]]
    assert [b.text.rstrip("\n") for b in jobs if b.kind == "fence"] == [
        t.rstrip("\n") for j in d["jobs"] if j["changed"] for t in (j["yaml"], j["patch"])]
    rows = [b.cells for b in by["Volumes by risk"] if b.kind == "tr"]
    assert len(rows) == len(d["volumes"]) + 1 and {len(r) for r in rows} == {13}
    assert [list(r[:2]) for r in rows[1:]] == [[v["volume"], v["jobs"]] for v in d["volumes"]]
    md = reported.md.read_text()
    section = md[md.index("## Volumes by risk"):md.index("## Changes since")]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    assert len(lines) == len(d["volumes"]) + 2 and {len(_cells(ln)) for ln in lines} == {13}
    rows = [b.cells for b in by["Recovery points"] if b.kind == "tr"]
    shown = [v["volume"] for v in d["recovery_points"][:25]]
    assert [r[0] for r in rows] == ["volume", *shown] and {len(r) for r in rows} == {10}
    changed = [b.text for b in by["Changes since the previous report"]]
    c = d["changes"]
    assert f"Compared with {c['previous_week']}." in changed
    assert f"new volumes: {', '.join(c['new_volumes'])}" in changed
    for m in c["risk_moves"][:10]:
        assert any(t.startswith(f"{m['volume']}: conflict per run ") for t in changed)
    for j in c["cron_changes"]:
        assert norm(f"RecurringJob {j['job']}: cron {j['before']} → {j['after']}") in [
            norm(t) for t in changed]
    alts = [_inline_text(c.children) for b in by["Charts"] for c in b.inline
            if c.type == "image"]
    captions = [html.unescape(t) for t in re.findall(
        r"<figcaption>(.*?)</figcaption>", reported.html.read_text())]
    assert alts == captions and f"Backups running at once, target {TARGET}" in alts
    q = d["data_quality"]
    expected = ([f"Assumed: {a}" for a in q["assumptions"]]
                + [f"Skipped: {p}" for p in q["records_skipped"]]
                + [f"Warning: {p}" for p in q["records_with_warnings"]]
                + [f"Fit: {p}" for p in q["fit_problems"]])
    quality = [b.text for b in by["Data quality and assumptions"] if b.kind == "li"]
    assert quality[-len(expected):] == [e.replace("\n", " ") for e in expected]


def test_the_markdown_source_escapes_every_string_of_every_section(reported):
    """In the Markdown source every character Markdown could read as syntax, in every
    string from the cluster or its files, is backslash-escaped: the cluster in the
    heading, the top changes, job names and reasons, the table's names, what changed,
    the charts' alt texts and the data-quality items (harmless ones too: a ``*`` of a
    cron in a top change reads as text today only because spaces surround it)."""
    text = reported.md.read_text()
    lines = text.split("\n")
    d = reported.doc
    segments: dict[str, list[str]] = {}

    def add(section: str, pattern: str, group: int = 1) -> None:
        found = [m.group(group) for ln in lines if (m := re.fullmatch(pattern, ln))]
        assert found, (section, pattern)
        segments.setdefault(section, []).extend(found)

    add("heading", r"# Longhorn backup report \S+: cluster (.*)")
    add("top changes", r"\d+\. (.*)")
    add("jobs", r"### (?!The three)(.*)")
    # each job's reason: the paragraph after its "Change cron" or "Keep" line
    reasons = [lines[i + 2] for i, ln in enumerate(lines)
               if ln.startswith(("Change cron `", "Keep `"))]
    assert len(reasons) == len(d["jobs"]) and all(reasons)
    segments["jobs"] += reasons
    for ln in lines:
        if ln.startswith("| ") and not ln.startswith("| volume"):
            segments.setdefault("volumes", []).extend(_cells(ln)[:2])
    add("changes", r"Compared with (.*)\.")
    add("changes", r"- new volumes: (.*)")
    add("changes", r"- (.*): conflict per run .*")
    add("changes", r"- RecurringJob (.*): cron `.*")
    add("charts", r"!\[(.*)\]\([^()]*\)")
    for what in ("Skipped", "Warning", "Fit", "Assumed"):
        add("data quality", rf"- {what}: (.*)")
    assert len(segments["top changes"]) == len(d["summary"]["top_changes"])
    for section, found in segments.items():
        bad = {s: _unescaped(s) for s in found if _unescaped(s)}
        assert bad == {}, section

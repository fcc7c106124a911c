"""The HTML report in a real browser: Debian's headless Chromium, driven over the Chrome
DevTools Protocol (CDP).

The sample fleet's report is built once for the module (20 to 30 s) and written as
``advisor report`` writes it (``build_report``, then ``write_report``); each test then
opens it in a new tab of one Chromium started for the module (a fresh
``--user-data-dir``, and the flags this machine's closed network needs) and reads what a
person would see: the page's errors, every chart decoded, the title and heading, the
summary cards and the volume table, a full-page screenshot (kept as
``tests/artifacts/report-screenshot.png``), and cluster strings shown as text, never run
as markup. A first test shows, on a page made to fail, that the harness does see
console errors, uncaught exceptions, failed loads and dialogs, so the empty lists the
other tests expect mean something.

Chromium is driven by a small CDP client over one websocket (``websocket-client``, which
the Kubernetes client already brings), not Playwright or Selenium: nothing to download,
no driver whose version must match the browser's, and only stable protocol domains
(Target, Page, Runtime, Log). Without /usr/bin/chromium (``make deps-test`` installs it)
the tests are skipped, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import dataclasses
import itertools
import json
import math
import os
import signal
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from advisor.model.durations import fit_durations
from advisor.report.build import Report, build_report
from advisor.report.render import PREFIX, render_charts, to_html, write_report
from advisor.sample import load_sample
from tests.conftest import missing_dependency

pytestmark = pytest.mark.slow(seconds=55)  # (run first: see conftest)

CHROMIUM = Path("/usr/bin/chromium")
# --no-sandbox: the tests run as root, where Chromium refuses to start with its sandbox.
# The background-networking, component-update and sync flags keep it from calling
# Google's hosts, which this machine's closed network refuses (many at a time).
# --disable-dev-shm-usage: a container's small /dev/shm crashes it on a large page.
# A fixed window, no scrollbars: the layout, and so the screenshot, is the same each run.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
         "--window-size=1280,900", "--remote-debugging-port=0")
ARTIFACTS = Path(__file__).parent / "artifacts"
START_S = 30.0  # Chromium writes DevToolsActivePort within a second or two
CALL_S = 30.0  # one protocol call (a screenshot of the whole report takes a few seconds)
HOSTILE_VOLUME = "<script>alert(1)</script>"
HOSTILE_REASON = " <b>label</b>"
# A chart title that would close the img's alt attribute and add an image whose load
# fails (a logged error, and an alert) if it were not escaped there.
HOSTILE_TITLE = 'Volume "><img src=x onerror=alert(2)>: backup durations'

_ids = itertools.count(1)


class BrowserError(Exception):
    """Chromium did not start, or a protocol call failed or did not answer in time."""


class Page:
    """One tab, through a flattened CDP session on the browser's websocket. Every event
    of the tab is kept in :attr:`events`; a JavaScript dialog (``alert``) is recorded
    and dismissed at once, since an open one blocks the page."""

    def __init__(self, ws: websocket.WebSocket, session_id: str) -> None:
        self._ws, self.session_id = ws, session_id
        self.events: list[dict] = []

    def call(self, method: str, **params: Any) -> dict:
        """Send one command to the tab; its result."""
        return _call(self._ws, method, params, page=self)

    def wait_for(self, method: str, timeout_s: float = CALL_S) -> dict:
        """The first event ``method`` of the tab, waiting for it if it has not come."""
        deadline = time.monotonic() + timeout_s
        while True:
            for e in self.events:
                if e["method"] == method:
                    return e
            _receive(self._ws, self, deadline, what=f"the event {method}")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (a promise is awaited)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression[:80]!r} threw: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (its images are loaded by then)."""
        r = self.call("Page.navigate", url=url)
        if r.get("errorText"):
            raise BrowserError(f"cannot open {url}: {r['errorText']}")
        self.wait_for("Page.loadEventFired")

    def errors(self) -> list[str]:
        """What the page reported as errors: console.error (or a failed console.assert),
        uncaught exceptions, and the browser's log entries of level error (a resource
        that failed to load, for one)."""
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("uncaught: " + str(d.get("exception", {}).get("description")
                                              or d.get("text")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def dialogs(self) -> list[str]:
        """The messages of the JavaScript dialogs the page opened."""
        return [e["params"].get("message", "") for e in self.events
                if e["method"] == "Page.javascriptDialogOpening"]

    def screenshot(self) -> bytes:
        """The whole page (not only the window) as PNG, at one pixel per CSS pixel."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": math.ceil(size["width"]),
                               "height": math.ceil(size["height"]), "scale": 1})
        return base64.b64decode(shot["data"])


def _send(ws: websocket.WebSocket, method: str, params: dict, page: Page | None) -> int:
    msg: dict[str, Any] = {"id": next(_ids), "method": method, "params": params}
    if page is not None:
        msg["sessionId"] = page.session_id
    ws.send(json.dumps(msg))
    return msg["id"]


def _receive(ws: websocket.WebSocket, page: Page | None, deadline: float, what: str
             ) -> dict | None:
    """Read one message: an answer is returned; an event of ``page`` (one tab is open at
    a time) is kept on it, and None returned."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise BrowserError(f"no answer from Chromium for {what} in time")
    ws.settimeout(left)
    try:
        msg = json.loads(ws.recv())
    except websocket.WebSocketTimeoutException:
        raise BrowserError(f"no answer from Chromium for {what} in time") from None
    if "id" in msg:
        return msg
    if page is not None and msg.get("sessionId") == page.session_id:
        page.events.append(msg)
        if msg["method"] == "Page.javascriptDialogOpening":
            _send(ws, "Page.handleJavaScriptDialog", {"accept": False}, page)
    return None


def _call(ws: websocket.WebSocket, method: str, params: dict, *, page: Page | None = None
          ) -> dict:
    sent = _send(ws, method, params, page)
    deadline = time.monotonic() + CALL_S
    while True:
        msg = _receive(ws, page, deadline, what=method)
        if msg is None or msg["id"] != sent:
            continue  # an event, or the answer to a dialog's dismissal
        if "error" in msg:
            raise BrowserError(f"{method}: {msg['error']}")
        return msg["result"]


class Browser:
    """A headless Chromium's browser-level websocket, to open tabs on."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self._ws = ws

    @contextlib.contextmanager
    def page(self) -> Iterator[Page]:
        """A new tab with its Page, Runtime and Log events on, closed afterwards."""
        target = _call(self._ws, "Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = _call(self._ws, "Target.attachToTarget",
                    {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self._ws, sid)
        try:
            for domain in ("Page", "Runtime", "Log"):
                page.call(f"{domain}.enable")
            yield page
        finally:
            # (a browser that stopped answering is killed with the module's fixture)
            with contextlib.suppress(BrowserError, websocket.WebSocketException):
                _call(self._ws, "Target.closeTarget", {"targetId": target})


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies, however it dies
    (prctl PR_SET_PDEATHSIG; kept across the launcher script's exec), so no browser
    outlives a killed pytest."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _stop(proc: subprocess.Popen) -> None:
    """End Chromium and every process it started (its own process group)."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def chromium() -> Path:
    """/usr/bin/chromium, or a skip (a failure under CI=true)."""
    if not os.access(CHROMIUM, os.X_OK):
        missing_dependency(f"{CHROMIUM} missing (`make deps-test` installs Debian's "
                           "chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the module, on a fresh profile; killed afterwards,
    whatever happened."""
    work = tmp_path_factory.mktemp("chromium")
    profile, log = work / "profile", work / "chromium.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([str(chromium), *FLAGS, f"--user-data-dir={profile}",
                                 "about:blank"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True, preexec_fn=_die_with_parent)
    try:
        # with --remote-debugging-port=0 Chromium picks a free port and writes it, and
        # the browser websocket's path, into the profile: no port to collide on
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_S
        lines: list[str] = []
        while len(lines) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BrowserError(f"Chromium did not start (exit {proc.poll()}):\n"
                                   + log.read_text(errors="replace")[-3000:])
            time.sleep(0.05)
            with contextlib.suppress(OSError):
                lines = port_file.read_text().split()
        # suppress_origin: Chromium refuses a DevTools websocket that sends an Origin
        # it was not told to allow (--remote-allow-origins)
        ws = websocket.create_connection(f"ws://127.0.0.1:{lines[0]}{lines[1]}",
                                         timeout=CALL_S, suppress_origin=True)
        try:
            yield Browser(ws)
        finally:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.close()
    finally:
        _stop(proc)


@dataclasses.dataclass(frozen=True)
class Built:
    """The sample fleet's report, its charts (``{stem: (title, PNG)}``) and its page."""

    report: Report
    charts: dict[str, tuple[str, bytes]]
    html: Path


@pytest.fixture(scope="module")
def built(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sample report, written as `advisor report --sample --format html` writes it
    (built after the Chromium check, so that a skip costs nothing)."""
    frames = load_sample().frames
    fits = fit_durations(frames["backups"], frames["volumes"], frames["backup_volumes"],
                         jobs=frames["jobs"])
    report = build_report(frames, fits)
    charts = render_charts(report)
    out = tmp_path_factory.mktemp("report")
    write_report(report, out, ["html"], charts=charts)
    return Built(report, charts, out / f"{PREFIX}{report.meta['week']}.html")


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its IHDR chunk (ValueError if not a PNG)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def test_the_harness_sees_errors_dialogs_and_scripts(browser, tmp_path):
    # the other tests expect none of these: here each is made to happen once
    page_path = tmp_path / "broken.html"
    page_path.write_text(
        "<!DOCTYPE html><title>broken</title><img src='missing.png'>"
        "<script>console.error('boom'); alert('hello');</script>"
        "<script>throw new Error('uncaught one')</script>")
    with browser.page() as page:
        page.open(page_path.as_uri())
        errors = page.errors()
        assert any("boom" in e for e in errors), errors
        assert any("uncaught one" in e for e in errors), errors
        assert any("missing.png" in e for e in errors), errors
        assert page.dialogs() == ["hello"]
        assert page.evaluate("document.scripts.length") == 2


def test_the_report_loads_cleanly_and_every_chart_is_decoded(built, browser):
    with browser.page() as page:
        page.open(built.html.as_uri())
        assert page.errors() == []
        assert page.dialogs() == []
        images = page.evaluate("""[...document.images].map(i => ({
            alt: i.alt, complete: i.complete, width: i.naturalWidth,
            in_figure: i.closest('figure') !== null}))""")
        figures = page.evaluate("""[...document.querySelectorAll('figure')].map(f => ({
            id: f.id, images: f.querySelectorAll('img').length}))""")
    assert [i for i in images if not (i["complete"] and i["width"] > 0)] == []
    # one figure per chart, each with its image; every chart the report drew is there
    assert [f for f in figures if f["images"] == 0] == []
    assert len(figures) >= len(built.charts)
    titles = Counter(title for title, _ in built.charts.values())
    assert {"The fleet's risk ranking", "The week's operations, riskiest volumes"} <= set(
        titles)
    assert titles - Counter(i["alt"] for i in images if i["in_figure"]) == Counter()


def test_the_title_heading_summary_cards_and_volume_table(built, browser):
    meta, s = built.report.meta, built.report.summary
    with browser.page() as page:
        page.open(built.html.as_uri())
        title = page.evaluate("document.title")
        h1 = page.evaluate("document.querySelector('h1').innerText")
        cards = page.evaluate("""[...document.querySelectorAll('.card')].map(c => ({
            text: c.innerText, shown: c.getBoundingClientRect().width > 0}))""")
        table = page.evaluate("""(() => {
            let el = document.getElementById('volumes');
            while (el && el.tagName !== 'TABLE') el = el.nextElementSibling;
            return el && {head: [...el.tHead.rows[0].cells].map(c => c.innerText),
                          first: [...el.tBodies[0].rows].map(r => r.cells[0].innerText)};
            })()""")
    for text in (title, h1):
        assert meta["week"] in text and meta["cluster"] in text, text
    assert len(cards) >= 4 and all(c["shown"] for c in cards)
    at_risk = next(c["text"] for c in cards if "volumes at risk" in c["text"])
    assert str(s["volumes_at_risk"]) in at_risk and str(s["volumes"]) in at_risk
    assert any(str(s["conflicts_observed"]) in c["text"] for c in cards)
    assert table is not None, "no table after the 'Volumes by risk' heading"
    assert table["head"][0] == "volume"
    assert table["first"] == list(built.report.volumes["volume"])  # riskiest first


def test_a_full_page_screenshot(built, browser, tmp_path):
    with browser.page() as page:
        page.open(built.html.as_uri())
        height_css = page.evaluate("document.documentElement.scrollHeight")
        png = page.screenshot()
    for path in (tmp_path / "report-screenshot.png", ARTIFACTS / "report-screenshot.png"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(png)
    width, height = _png_size(png)
    # the whole page, well beyond the 900-pixel window: every chart is in it
    assert 1000 <= width <= 1400 and height >= 0.95 * height_css > 900 * 3, (width, height)
    assert 100_000 < len(png) < 80_000_000


def test_cluster_strings_are_shown_as_text_never_run(built, browser, tmp_path):
    r = built.report
    first = r.volumes["volume"].iloc[0]
    hostile = dataclasses.replace(
        r, volumes=r.volumes.assign(volume=r.volumes["volume"].replace(
            {first: HOSTILE_VOLUME})),
        jobs=[dataclasses.replace(j, reason=j.reason + HOSTILE_REASON) for j in r.jobs],
        detailed=[HOSTILE_VOLUME if v == first else v for v in r.detailed])
    charts = dict(built.charts)
    stem = next(iter(charts))
    charts[stem] = (HOSTILE_TITLE, charts[stem][1])
    page_path = tmp_path / "hostile.html"
    page_path.write_text(to_html(hostile, charts))
    with browser.page() as page:
        page.open(page_path.as_uri())
        text = page.evaluate("document.body.innerText")
        scripts = page.evaluate("document.querySelectorAll('script').length")
        alts = page.evaluate("[...document.images].map(i => i.alt)")
        first_cell = page.evaluate("""(() => {
            let el = document.getElementById('volumes');
            while (el && el.tagName !== 'TABLE') el = el.nextElementSibling;
            return el.tBodies[0].rows[0].cells[0].innerText; })()""")
        assert page.dialogs() == []
        assert page.errors() == []
    assert HOSTILE_VOLUME in text and HOSTILE_REASON.strip() in text
    assert first_cell == HOSTILE_VOLUME
    assert scripts == 0  # the report has no script of its own, and gained none
    assert HOSTILE_TITLE in alts and len(alts) == len(charts)  # no image was added


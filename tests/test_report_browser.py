"""The HTML reports in a real headless browser: Debian's chromium, driven over the DevTools
protocol through a pipe (``--remote-debugging-pipe``: no port, no driver download).

Every chart must render (an SVG or a canvas per chart), no JavaScript error or warning may be
logged, and the page's own file: URL must be its only request (data: URLs aside): no require.js,
no MathJax. A full-page screenshot
of each report is saved under ``test-artifacts/`` (gitignored).

A notebook template exported by a plain ``jupyter nbconvert --to html --execute`` (no perfstats
pipeline) must draw every chart too, with the network off (``nbconvert-*.png``); with the two
options docs/reports.md gives, it makes no request but the file.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import DATA, ROOT
from report_cases import CHARTS, TEMPLATES

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--remote-debugging-pipe"]
TIMEOUT_S = 60.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason="Debian's chromium is not installed (apt-get install chromium "
                              "chromium-driver; .ci/run does it), so the browser test cannot run"),
]

# Every chart placeholder holds an SVG drawn by vega-embed (or a canvas), or the page is not ready.
RENDERED = """JSON.stringify(Array.from(document.querySelectorAll("div.perfstats-chart"))
    .map(el => el.querySelectorAll("svg.marks, canvas.marks").length))"""


class Chromium:
    """A headless chromium spoken to over the DevTools protocol on fds 3 (in) and 4 (out)."""

    def __init__(self, profile: Path) -> None:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def pipes_on_3_and_4() -> None:  # runs in the child, before exec
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=pipes_on_3_and_4, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb")
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while chunk := self._in.read1(1 << 16):
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                self._messages.put(json.loads(message))

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its answer; events meanwhile go to ``events``."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        self._out.write(json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self._messages.get(timeout=max(0.01, deadline - time.monotonic()))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def _open(browser: Chromium, page: Path) -> tuple[str, list[int]]:
    """Open ``page`` in a fresh tab, wait until every chart is drawn; (session, marks per chart)."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"]
    for domain in ("Network", "Runtime", "Log", "Page"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": 900,
                                                        "deviceScaleFactor": 1, "mobile": False},
                 session=session)
    browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    deadline = time.monotonic() + TIMEOUT_S
    drawn: list[int] = []
    while time.monotonic() < deadline:
        answer = browser.send("Runtime.evaluate", {"expression": RENDERED, "returnByValue": True},
                              session=session)
        drawn = json.loads(answer["result"].get("value") or "[]")
        if drawn and all(drawn):
            break
        time.sleep(0.2)
    return session, drawn


def _screenshot(browser: Chromium, session: str, path: Path) -> None:
    size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
    shot = browser.send("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    }, session=session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def _of(session: str, events: list[dict[str, Any]], *methods: str) -> list[dict[str, Any]]:
    return [e["params"] for e in events if e.get("sessionId") == session
            and e.get("method") in methods]


@pytest.mark.parametrize("name", TEMPLATES)
def test_report_renders_offline_in_chromium(name: str, html_reports: dict,
                                            browser: Chromium) -> None:
    result, page = html_reports[name]
    assert result.exit_code == 0, result.output
    session, drawn = _open(browser, page)
    shot = ARTIFACTS / f"report-{name}.png"
    _screenshot(browser, session, shot)
    assert len(drawn) == CHARTS[name], f"charts on the page: {drawn}"
    assert all(n >= 1 for n in drawn), f"a chart did not render (SVG/canvas per chart: {drawn})"
    assert shot.stat().st_size > 10_000

    events = browser.events
    requests = [p["request"]["url"] for p in _of(session, events, "Network.requestWillBeSent")]
    # No request but the page itself (inline data: URLs aside): no require.js, no MathJax.
    assert [u for u in requests if not u.startswith("data:")] == [page.resolve().as_uri()], \
        requests
    text = page.read_text(encoding="utf-8")
    assert not any(word in text for word in ("require.min.js", "MathJax.js", "mathjax@",
                                             "cdnjs.cloudflare", "cdn.jsdelivr")), name
    exceptions = [p["exceptionDetails"] for p in _of(session, events, "Runtime.exceptionThrown")]
    assert not exceptions
    console = [p for p in _of(session, events, "Runtime.consoleAPICalled")
               if p["type"] in ("error", "warning", "assert")]
    assert not console, [[a.get("value") for a in p["args"]] for p in console]
    logged = [p["entry"] for p in _of(session, events, "Log.entryAdded")
              if p["entry"]["level"] in ("error", "warning")]
    assert not logged, logged


NOTEBOOK_PARAMETERS = {
    "run_summary": {"run": DATA / "k6" / "candidate"},
    "compare": {"baseline": DATA / "k6" / "baseline", "run": DATA / "k6" / "candidate"},
}
# nbconvert's own lab template asks for require.js and MathJax from a CDN on every page it
# writes (not a chart's doing); with the network off they fail and the page still works.
NBCONVERT_TEMPLATE_URLS = ("https://cdnjs.cloudflare.com/ajax/libs/require.js/",
                           "https://cdnjs.cloudflare.com/ajax/libs/mathjax/")
DRAWN_IMAGES = """JSON.stringify(Array.from(document.querySelectorAll(
    ".jp-OutputArea-output img[src^='data:image/svg+xml']")).map(img => img.naturalWidth))"""


def _plain_export(name: str, workdir: Path, *options: str) -> Path:
    """The bundled template with its parameters set in place, executed and exported by a plain
    ``jupyter nbconvert --to html --execute [OPTIONS]`` (the default kernel, no perfstats
    pipeline)."""
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = "db = None\nconfig = None\nslo = None\n" + "".join(
                f"{key} = {str(value)!r}\n" for key, value in NOTEBOOK_PARAMETERS[name].items())
    source = workdir / f"{name}.ipynb"
    nbformat.write(nb, source)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute",
                    *options, str(source)], check=True, capture_output=True, env=env, cwd=workdir)
    return source.with_suffix(".html")


def _open_offline(browser: Chromium, page: Path, shot: Path) -> tuple[str, list[int]]:
    """Open ``page`` with the network off; (session, width of each chart image drawn)."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"]
    for domain in ("Network", "Runtime", "Log", "Page"):
        browser.send(f"{domain}.enable", session=session)
    browser.send("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        session=session)
    browser.send("Emulation.setDeviceMetricsOverride", {"width": 1200, "height": 900,
                                                        "deviceScaleFactor": 1, "mobile": False},
                 session=session)
    browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    deadline = time.monotonic() + TIMEOUT_S
    drawn: list[int] = []
    while time.monotonic() < deadline and not (drawn and all(drawn)):
        time.sleep(0.3)
        answer = browser.send("Runtime.evaluate", {"expression": DRAWN_IMAGES,
                                                   "returnByValue": True}, session=session)
        drawn = json.loads(answer["result"].get("value") or "[]")
    _screenshot(browser, session, shot)
    return session, drawn


@pytest.mark.parametrize("name", sorted(NOTEBOOK_PARAMETERS))
def test_plain_nbconvert_export_draws_every_chart_offline(name: str, tmp_path: Path,
                                                          browser: Chromium) -> None:
    page = _plain_export(name, tmp_path)
    session, drawn = _open_offline(browser, page, ARTIFACTS / f"nbconvert-{name}.png")
    text = page.read_text(encoding="utf-8")
    assert "Error loading script" not in text and "cdn.jsdelivr.net" not in text
    charts = text.count('src="data:image/svg+xml')
    assert len(drawn) == CHARTS[name] == charts, f"charts drawn: {drawn}"
    assert all(width > 100 for width in drawn), drawn
    events = browser.events
    requests = [p["request"]["url"] for p in _of(session, events, "Network.requestWillBeSent")]
    others = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert all(u.startswith(NBCONVERT_TEMPLATE_URLS) for u in others), others
    assert not _of(session, events, "Runtime.exceptionThrown")
    logged = [p["entry"] for p in _of(session, events, "Log.entryAdded")
              if p["entry"]["level"] == "error"
              and not str(p["entry"].get("url", "")).startswith(NBCONVERT_TEMPLATE_URLS)]
    assert not logged, logged


OFFLINE_OPTIONS = ("--HTMLExporter.require_js_url=", "--HTMLExporter.mathjax_url=")
"""What docs/reports.md tells a user exporting a notebook with plain nbconvert: no require.js
and no MathJax (the charts need neither), so the page asks nothing of the network."""


def test_plain_nbconvert_export_with_the_documented_options_makes_no_request(
        tmp_path: Path, browser: Chromium) -> None:
    page = _plain_export("compare", tmp_path, *OFFLINE_OPTIONS)
    session, drawn = _open_offline(browser, page, ARTIFACTS / "nbconvert-offline-compare.png")
    assert len(drawn) == CHARTS["compare"] and all(width > 100 for width in drawn), drawn
    text = page.read_text(encoding="utf-8")
    assert not any(url in text for url in NBCONVERT_TEMPLATE_URLS)
    events = browser.events
    requests = [p["request"]["url"] for p in _of(session, events, "Network.requestWillBeSent")]
    assert [u for u in requests if not u.startswith("data:")] == [page.resolve().as_uri()], \
        requests
    assert not _of(session, events, "Runtime.exceptionThrown")
    logged = [p["entry"] for p in _of(session, events, "Log.entryAdded")
              if p["entry"]["level"] in ("error", "warning")]
    assert not logged, logged

"""report.html in headless Chromium, driven over the DevTools protocol: loads clean, plots render, filters work.

Skipped when Chromium (Debian package `chromium`) or websocket-client is absent, unless
GENVAL_REQUIRE_BROWSER=1 (CI sets it), in which case their absence fails the test.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_report import full_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    try:
        import websocket  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        if os.environ.get("GENVAL_REQUIRE_BROWSER") == "1":
            pytest.fail("GENVAL_REQUIRE_BROWSER=1 but chromium or websocket-client is missing")
        pytest.skip("chromium or websocket-client not installed")
    return found


class Page:
    """One Chromium tab over CDP: send commands, collect console errors and network requests."""

    def __init__(self, ws):
        self.ws, self.ids, self.events = ws, itertools.count(1), []

    def call(self, method: str, **params):
        ident = next(self.ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def console_errors(self) -> list:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown" or (m == "Runtime.consoleAPICalled" and p.get("type") == "error") or \
                    (m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error"):
                out.append(e)
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    binary = _browser()
    import websocket

    tmp = tmp_path_factory.mktemp("browser")
    run = full_run(tmp)
    profile = tmp / "profile"
    proc = subprocess.Popen([binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                             f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1280,1600",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + 30
        while not (port_file.exists() and port_file.read_text().strip()) and time.time() < deadline:
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        target = next(t for t in targets if t["type"] == "page")
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        tab = Page(ws)
        for domain in ("Runtime", "Log", "Page", "Network"):
            tab.call(f"{domain}.enable")
        tab.call("Page.navigate", url=Path(run.path("report.html")).as_uri())
        tab.wait_for("Page.loadEventFired")
        tab.run = run
        yield tab
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_loads_without_console_errors_or_network(page):
    assert page.js("document.getElementById('verdict').textContent") == "NOT READY"
    assert page.console_errors() == []
    assert [u for u in page.requests() if not u.startswith(("file:", "data:", "about:"))] == []


def test_plots_render_with_size(page):
    sizes = page.js("Array.from(document.querySelectorAll('svg.plot')).map(s => {const r = s.getBoundingClientRect();"
                    " return [s.dataset.plot, r.width, r.height, s.querySelectorAll('rect,circle,polyline,line').length]})")
    assert {s[0] for s in sizes} == {"slices", "reliability", "latency", "sweep", "confusion"}
    for name, width, height, marks in sizes:
        assert width > 100 and height > 60 and marks > 3, name


def test_filters_change_the_rows(page):
    rows = "document.querySelectorAll('#example-table tbody tr').length"
    assert page.js(rows) == 60
    page.js("var s = document.getElementById('filter-slice'); s.value = 'region=b';"
            " s.dispatchEvent(new Event('change'))")
    assert page.js(rows) == 30
    page.js("var f = document.getElementById('filter-failure'); f.value = 'student_only_wrong';"
            " f.dispatchEvent(new Event('change'))")
    assert page.js(rows) == 9
    assert page.js("document.getElementById('row-count').textContent") == "9 of 60 examples"
    page.js("document.getElementById('filter-slice').value = 'region=a';"
            " document.getElementById('filter-slice').dispatchEvent(new Event('change'))")
    assert page.js(rows) == 0


def test_slice_table_sorts(page):
    values = "Array.from(document.querySelectorAll('table.sortable')[0].tBodies[0].rows).map(r => r.cells[0].textContent)"
    page.js("document.querySelectorAll('table.sortable')[0].tHead.rows[0].cells[0].click()")
    ascending = page.js(values)
    page.js("document.querySelectorAll('table.sortable')[0].tHead.rows[0].cells[0].click()")
    assert page.js(values) == list(reversed(ascending)) and ascending == sorted(ascending)


def test_screenshot(page, tmp_path):
    shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
    path = tmp_path / "report.png"
    path.write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000

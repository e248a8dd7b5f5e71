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

SIZES = ("Array.from(document.querySelectorAll('svg.plot')).map(s => {const r = s.getBoundingClientRect();"
         " return [s.dataset.plot, r.width, r.height, s.querySelectorAll('path,use,rect,text').length]})")
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


class Browser:
    """One headless Chromium over CDP; `open(path)` gives a fresh tab on a file."""

    def __init__(self, binary: str, profile: Path):
        self.proc = subprocess.Popen([binary, "--headless", "--no-sandbox", "--disable-gpu",
                                      "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                      "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
                                      "--remote-debugging-port=0", "--window-size=1280,1600", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + 30
        while not (port_file.exists() and port_file.read_text().strip()) and time.time() < deadline:
            time.sleep(0.1)
        self.port = port_file.read_text().split()[0]
        self.sockets = []

    def open(self, path: Path) -> Page:
        import websocket

        new = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        target = json.loads(urllib.request.urlopen(new, timeout=10).read()) \
            if self.sockets else next(t for t in json.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/json/list", timeout=10).read()) if t["type"] == "page")
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.sockets.append(ws)
        tab = Page(ws)
        for domain in ("Runtime", "Log", "Page", "Network"):
            tab.call(f"{domain}.enable")
        tab.call("Page.navigate", url=Path(path).as_uri())
        tab.wait_for("Page.loadEventFired")
        return tab

    def close(self):
        for ws in self.sockets:
            ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def screenshot(tab: Page, folder: Path, name: str) -> Path:
    """Saves the whole page as a PNG (Page.captureScreenshot beyond the viewport); gives its path.

    GENVAL_SCREENSHOTS=DIR keeps them in DIR to look at; else they go to the test's temporary folder.
    """
    height = tab.js("Math.ceil(document.documentElement.scrollHeight)")
    shot = tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": min(height, 12000), "scale": 1})
    out = Path(os.environ.get("GENVAL_SCREENSHOTS") or folder) / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))
    return out


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    run = full_run(tmp_path_factory.mktemp("hand"))
    tab = browser.open(run.path("report.html"))
    tab.run = run
    return tab


def test_loads_without_console_errors_or_network(page):
    assert page.js("document.getElementById('verdict').textContent") == "NOT READY"
    assert page.console_errors() == []
    assert [u for u in page.requests() if not u.startswith(("file:", "data:", "about:"))] == []


def test_plots_render_with_size(page):
    sizes = page.js(SIZES)
    assert {s[0] for s in sizes} == {"slices", "reliability", "latency", "temperature", "confusion"}
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
    path = screenshot(page, tmp_path, "hand")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


@pytest.fixture(scope="module")
def demo(browser):
    from tests.report_runs import demo_run

    return browser.open(demo_run() / "report.html")


@pytest.fixture(scope="module")
def summaries(browser, tmp_path_factory):
    from tests.report_runs import summarization_run

    return browser.open(summarization_run(tmp_path_factory.mktemp("summaries")) / "report.html")


def _texts(tab: Page, selector: str) -> list[str]:
    return tab.js(f"Array.from(document.querySelectorAll({json.dumps(selector)})).map(e => e.textContent.trim())")


@pytest.mark.slow  # reads the whole demo run (tests/report_runs.demo_run)
def test_demo_leads_with_the_decision_and_why(demo, tmp_path):
    assert demo.console_errors() == []
    assert demo.js("document.getElementById('verdict').textContent") == "NOT READY"
    # the decision, then why: the failing rule, linked to its examples in the viewer and below
    assert demo.js("document.getElementById('verdict').getBoundingClientRect().top") < \
        demo.js("document.getElementById('why').getBoundingClientRect().top") < \
        demo.js("document.getElementById('judges').getBoundingClientRect().top")
    rules = _texts(demo, "#failing-rules li")
    assert len(rules) == 1 and rules[0].startswith("accuracy_retention >= 0.9 on critical=true: 0.7407 < min 0.9")
    link = demo.js("document.querySelector('#failing-rules a.view').href")
    assert link == "http://127.0.0.1:8765/?slice=critical%3Dtrue&flag=student_only_error"
    assert "genval view runs/demo --filter" in rules[0] and "running only once started" in rules[0]
    # the weakest slices include the 29-example fraud slice, named with its n and the caution it deserves
    weakest = _texts(demo, "#weakest-slices li")
    assert weakest[0].startswith("category=fraud: accuracy_retention 0.517") and "n=29" in weakest[0]
    assert "confirm with more examples" in weakest[0]
    assert "the same examples as rare_class=legal" in weakest[1]
    trust = demo.js("document.getElementById('judge-trust').textContent")
    assert "κ 0.77 (95 % CI 0.651 – 0.869, n=145)" in trust and "validated" in trust
    # the static drill-down: "show them below" narrows the examples to the rule's slice and failure kind
    demo.js("document.querySelector('#failing-rules a.drill').click()")
    assert demo.js("document.getElementById('filter-slice').value") == "critical=true"
    assert demo.js("document.getElementById('filter-failure').value") == "student_only_wrong"
    import pandas as pd

    folder = demo_run_path()
    scores = pd.read_parquet(folder / "scores.parquet")
    correct = scores[scores["metric"] == "label_correct"].pivot(index="id", columns="pair", values="value")
    examples = pd.read_parquet(folder / "examples.parquet").set_index("id")
    critical = examples["slice_critical"].astype(str).str.lower() == "true"
    expected = int(((correct["teacher~reference"] == 1) & (correct["student~reference"] == 0) & critical).sum())
    assert demo.js("document.getElementById('row-count').textContent") == f"{expected} of 400 examples"
    path = screenshot(demo, tmp_path, "demo")
    assert path.stat().st_size > 50_000


def demo_run_path():
    from tests.report_runs import demo_run

    return demo_run()


def test_two_students_and_two_judges_each_get_decision_ops_and_judge_columns(summaries, tmp_path):
    assert summaries.console_errors() == []
    summary = json.loads((Path(summaries.js("location.pathname")).parent / "summary.json").read_text())
    # the leaderboard: one row per candidate, each with a decision, its task number, judge rates and ops
    rows = summaries.js("Array.from(document.querySelectorAll('table.candidates tbody tr'))"
                        ".map(r => Array.from(r.cells).map(c => c.textContent))")
    assert [r[0] for r in rows] == ["student", "student_v2"]
    assert rows[0][1].startswith("NOT READY: the release gate fails")
    # student_v2 passes rougeL >= 0.9 on its own numbers (it drops fewer words) and the judge rule
    v2 = summary["metrics"]["student_v2~teacher"]["rougeL"]["value"]
    assert v2 >= 0.9 and rows[1][1].startswith("READY")
    decided = summary["candidates"]["student_v2"]["decision"]   # the aggregate stage's, shown as it is
    assert rows[1][1] == "READY: " + "; ".join(decided["reasons"]) and decided["verdict"] == "READY"
    heads = _texts(summaries, "table.candidates thead th")
    assert "judge equivalence" in " ".join(heads) and "judge summary_quality" in " ".join(heads)
    eq_v2 = summary["judge"]["judges"]["equivalence"]["student_v2~teacher"]["equivalence_rate"]["value"]
    assert rows[1][heads.index(next(h for h in heads if h.startswith("judge equivalence")))].startswith(
        f"{eq_v2:.4g}")
    assert rows[1][-2] == f"{summary['ops']['roles']['student_v2']['latency_p50_s'] * 1000:.0f} ms"
    assert rows[1][-1].endswith("USD")
    # ops: a column pair per candidate, with units and direction words
    ops = _texts(summaries, "table.ops thead th")
    assert ops == ["figure", "teacher", "student", "student: change", "student_v2", "student_v2: change"]
    latency = summaries.js("Array.from(document.querySelector('table.ops tbody tr').cells).map(c => c.textContent)")
    assert latency[0] == "latency p50" and latency[3].endswith("faster") and latency[1].endswith("s")
    # both judges, ranked by κ, with scale, interval, n and trust; the ordinal one's scale shown as such
    judges = summaries.js("Array.from(document.querySelectorAll('table.judges tbody tr'))"
                          ".map(r => Array.from(r.cells).map(c => c.textContent))")
    calibration = json.loads((Path(summaries.js("location.pathname")).parent / "calibration.json").read_text())
    assert [r[1] for r in judges] == calibration["ranking"]
    quality = next(r for r in judges if r[1] == "summary_quality")
    assert quality[2] == "ordinal 1–5, pass ≥ 4" and quality[6] == "validated"
    equivalence = next(r for r in judges if r[1] == "equivalence")
    assert equivalence[6] == ("validated" if calibration["judges"]["equivalence"]["validated"] else "NOT validated")
    # the metrics pivot: one row per metric, retention = student / teacher task quality
    row = summaries.js("Array.from(document.querySelectorAll('table.pivot tbody tr'))"
                       ".map(r => Array.from(r.cells).map(c => c.textContent)).find(r => r[0].startsWith('rougeL'))")
    s, t = (summary["metrics"][p]["rougeL"]["value"] for p in ("student~reference", "teacher~reference"))
    assert row[4].startswith(f"{s / t:.4g}")
    # the trade-off plot has one point per candidate; no KL (text task), so fidelity on x
    assert {p[0] for p in summaries.js(SIZES)} == {"slices", "latency", "tradeoff", "confusion"}
    path = screenshot(summaries, tmp_path, "summaries")
    assert path.stat().st_size > 50_000


@pytest.mark.slow  # reads the whole demo run (tests/report_runs.demo_run)
def test_demo_plots_metrics_and_ops_read(demo):
    summary = json.loads((demo_run_path() / "summary.json").read_text())
    assert {p[0] for p in demo.js(SIZES)} == {"slices", "reliability", "temperature", "latency", "confusion"}
    # slices: sorted by value, weakest at the top, labelled with n; the gate's bound and the overall value drawn
    labels = demo.js("Array.from(document.querySelectorAll('svg[data-plot=slices] text'))"
                     ".map(t => t.textContent).filter(t => t.includes('(n='))")
    tops = demo.js("Array.from(document.querySelectorAll('svg[data-plot=slices] text'))"
                   ".filter(t => t.textContent.includes('(n=')).map(t => t.getBoundingClientRect().top)")
    ordered = [label for _, label in sorted(zip(tops, labels))]
    assert ordered[0] == "category=fraud (n=29)" and ordered[-1] == "category=billing (n=100)"
    words = " ".join(demo.js("Array.from(document.querySelectorAll('svg[data-plot=slices] text'))"
                             ".map(t => t.textContent)"))
    assert "gate 0.9" in words and f"overall {summary['headline']['value']:.3g}" in words
    # reliability: every non-empty bin's count written by it, ECEs in the legend
    texts = demo.js("Array.from(document.querySelectorAll('svg[data-plot=reliability] text')).map(t => t.textContent)")
    counts = {str(b["n"]) for role in ("teacher", "student") for b in summary["classification"]["reliability"][role]
              if b["n"]}
    assert counts <= set(texts) and "teacher (ECE 0.042)" in texts and "student (ECE 0.080)" in texts
    # the temperature plot is NLL/ECE against T, not a flat accuracy line; ticks do not overprint
    texts = demo.js("Array.from(document.querySelectorAll('svg[data-plot=temperature] text')).map(t => t.textContent)")
    assert "NLL (left)" in texts and "ECE (right)" in texts and "accuracy" not in " ".join(texts)
    boxes = demo.js("Array.from(document.querySelectorAll('svg[data-plot=temperature] text'))"
                    ".filter(t => /^[0-9.]+$/.test(t.textContent)).map(t => {const r = t.getBoundingClientRect();"
                    " return [r.left, r.right, r.top, r.bottom]})")
    for a, b in itertools.combinations(boxes, 2):
        assert a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2], (a, b)
    # metrics pivot: grouped rows, each metric once
    groups = _texts(demo, "table.pivot tr.group th")
    assert groups == ["lexical", "semantic", "format", "fields", "classification"]   # fields score content
    fields = demo.js("Array.from(document.querySelectorAll('table.pivot tr')).map(r => r.textContent)")
    start = next(k for k, row in enumerate(fields) if row.strip() == "fields")
    assert any(row.startswith("fields_f1") for row in fields[start + 1:start + 40])
    # ops in units with direction words
    ops = {r[0]: r for r in demo.js("Array.from(document.querySelectorAll('table.ops tbody tr'))"
                                    ".map(r => Array.from(r.cells).map(c => c.textContent))")}
    assert ops["latency p50"][1:] == ["1.27 s", "366 ms", "71.1 % faster"]
    assert ops["cost per 1,000 calls"][3] == "91.7 % cheaper" and ops["cost per 1,000 calls"][1].endswith(" USD")
    assert ops["throughput"][2].endswith("requests/s") and ops["throughput"][3].endswith("% more")


def test_the_examples_show_whole_lines_every_score_and_open_a_long_text(browser, page, tmp_path):
    # Cells once cut text mid-line (a 12em box of 0.85em text) and hid scores past the box behind a scroll.
    from genval.report import drilldown, html
    from genval.runfolder import read_summary

    summary = read_summary(page.run.path("summary.json"))
    rows = drilldown.rows(page.run, summary, 0)
    rows[0]["input"] = " ".join(f"word{i}" for i in range(600))  # far past eight lines
    rows[0]["scores"] = {f"metric_{k:02d}": round(k / 30, 3) for k in range(30)}
    path = tmp_path / "report.html"
    path.write_text(html.render(summary, rows, {"run_label": "runs/hand"}), encoding="utf-8")
    tab = browser.open(path)
    boxes = tab.js("Array.from(document.querySelectorAll('#example-table .cell.clamp')).map(c => "
                   "[c.clientHeight, parseFloat(getComputedStyle(c).lineHeight)])")
    assert boxes and all(abs(h / lh - round(h / lh)) < 0.05 for h, lh in boxes), boxes  # whole lines only
    scores = tab.js("Array.from(document.querySelectorAll('#example-table td.scores')).map(c => "
                    "[c.scrollHeight <= c.clientHeight + 1, c.textContent])")
    assert all(shown for shown, _ in scores) and all(f"metric_{k:02d}" in scores[0][1] for k in range(30))
    first = "document.querySelector('#example-table tbody tr td.text .cell')"
    assert tab.js(f"{first}.scrollHeight > {first}.clientHeight + 1")  # clamped …
    tab.js("document.querySelector('#example-table tbody tr td.text button.more').click()")
    assert tab.js(f"{first}.scrollHeight <= {first}.clientHeight + 1")  # … and opened whole
    assert "word599" in tab.js(f"{first}.innerText") and tab.console_errors() == []


def test_the_candidates_section_appears_only_with_more_than_the_student(page, summaries):
    # docs/report.md: "when the config has models beyond student", between the headline numbers and the judges
    assert page.js("document.getElementById('candidates')") is None
    order = _texts(summaries, "h2")
    assert order.index("Headline numbers") + 1 == order.index("Candidates against the teacher") == \
        order.index("Judges") - 1

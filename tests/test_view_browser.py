"""genval view in headless Chromium over the DevTools protocol: browse, filter, open an example, rate with the keyboard.

The real server (uvicorn) runs on a free 127.0.0.1 port; the page is driven as a person would
(form changes, clicks, key presses), and what it shows is checked against the run's tables,
the labels file it writes, and the calibration `genval calibrate RUN` recomputes from it.
Skipped without Chromium unless GENVAL_REQUIRE_BROWSER=1 (as tests/test_report_browser.py).
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlparse

import pandas as pd
import pytest

from genval.cli import main
from tests.test_report_browser import Page, page  # noqa: F401 — `page` is the Chromium tab fixture, reused
from tests.conftest import ROOT
from tests.test_view import app_for, demo_run, serving


def goto(tab: Page, url: str) -> None:
    tab.events.clear()
    tab.call("Page.navigate", url=url)
    tab.wait_for("Page.loadEventFired")


def until(tab: Page, expression: str, timeout: float = 15.0):
    """Waits until a JS expression is truthy on the page (the page fetches its data after load); gives its value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = tab.js(expression)
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(expression)


def press(tab: Page, key: str) -> None:
    for kind in ("keyDown", "keyUp"):
        tab.call("Input.dispatchKeyEvent", type=kind, key=key, text=key if kind == "keyDown" else "",
                 code=f"Key{key.upper()}" if key.isalpha() else f"Digit{key}")


@pytest.fixture(scope="module")
def setup(page, tmp_path_factory):
    """The report tests' Chromium tab (tests/test_report_browser.py's `page`), and a demo run to serve."""
    return page, demo_run(tmp_path_factory.mktemp("viewbrowser"))


def test_browse_filter_and_open_an_example(setup):
    tab, run = setup
    examples = pd.read_parquet(run / "examples.parquet")
    outputs = pd.read_parquet(run / "outputs.parquet")
    with serving(app_for(run)) as base:
        goto(tab, f"{base}/?slice=critical%3Dtrue")
        rows = "document.querySelectorAll('#examples tbody tr').length"
        critical = int((examples["slice_critical"] == "true").sum())
        assert until(tab, f"document.getElementById('count').textContent.endsWith('of {critical} examples')")
        assert tab.js(rows) == 50
        tab.js("var s = document.querySelector('[name=flag]'); s.value = 'format_failure';"
               " s.dispatchEvent(new Event('change', {bubbles: true}))")
        until(tab, "document.getElementById('count').textContent.indexOf('of " + str(critical) + " ') < 0")
        shown = tab.js("Array.from(document.querySelectorAll('#examples tbody tr td:first-child'))"
                       ".map(t => t.textContent)")
        assert urlparse(tab.js("location.href")).query == "slice=critical%3Dtrue&flag=format_failure"
        assert shown and set(examples.set_index("id").loc[shown, "slice_critical"]) == {"true"}
        # open the first: teacher and student side by side, JSON pretty-printed, differing fields marked
        tab.js("document.querySelector('#examples tbody tr').click()")
        until(tab, "!document.getElementById('detail').hidden")
        mine = outputs[outputs["id"] == shown[0]].set_index("role")["text"]
        student = tab.js("document.querySelector('.side[data-role=student]').textContent")
        assert tab.js("document.querySelectorAll('.side').length") == 3  # reference, teacher, student
        marked = tab.js("Array.from(document.querySelectorAll('.side[data-role=student] .field-diff, "
                        ".side[data-role=student] span.diff')).map(s => s.textContent)")
        assert marked, "a format failure differs from the teacher somewhere"
        try:
            teacher, got = json.loads(mine["teacher"]), json.loads(mine["student"])
            differing = {k for k in got if got.get(k) != teacher.get(k)}
            assert all(any(json.dumps(got[k]) in m for m in marked) for k in differing)
            assert '\n  "' in tab.js("document.querySelector('.side[data-role=student] pre').textContent")
        except ValueError:  # the student's output is not JSON: words differing from the teacher's are marked
            assert all(m in mine["student"] for m in marked) and student.startswith("student")
        assert tab.js("document.querySelector('#detail pre.raw').textContent")  # the judge's raw answer
        assert tab.console_errors() == []
        assert all(u.startswith(base) for u in tab.requests())  # nothing fetched from elsewhere


def test_rate_ten_with_the_keyboard_reload_resume_and_calibrate(setup, tmp_path):
    tab, run = setup
    before = json.loads((run / "calibration.json").read_text())["judges"]["extraction_equivalence"]["n"]
    with serving(app_for(run, rate=True, annotator="kim", n=20, fresh=True)) as base:
        goto(tab, f"{base}/rate?annotator=kim")
        until(tab, "document.getElementById('progress').textContent === '0 / 20 rated'")
        assert tab.js("document.getElementById('session').textContent") == "new session of 20 items (--fresh)"
        assert "equivalent" in tab.js("document.getElementById('guideline').textContent")
        page_text = tab.js("document.body.innerText")
        assert "teacher" not in tab.js("document.querySelector('.rate-grid').innerText").lower()  # blind
        assert "not_equivalent" in page_text
        seen = []
        for k in range(10):
            item = tab.js("document.getElementById('a').textContent.slice(0, 40)")
            seen.append(item)
            press(tab, "1" if k % 3 else "2")
            until(tab, f"document.getElementById('progress').textContent === '{k + 1} / 20 rated'")
        press(tab, "u")  # undo the tenth
        until(tab, "document.getElementById('progress').textContent === '9 / 20 rated'")
        press(tab, "2")
        until(tab, "document.getElementById('progress').textContent === '10 / 20 rated'")
        shown = tab.js("document.getElementById('a').textContent")
        goto(tab, f"{base}/rate?annotator=kim")  # reload: the same next item, progress kept
        until(tab, "document.getElementById('progress').textContent === '10 / 20 rated'")
        assert tab.js("document.getElementById('a').textContent") == shown
        assert tab.console_errors() == []
    with serving(app_for(run, rate=True, annotator="kim", n=20)) as base:  # the server restarted: the same session
        goto(tab, f"{base}/rate?annotator=kim")
        until(tab, "document.getElementById('progress').textContent === '10 / 20 rated'")
        assert tab.js("document.getElementById('a').textContent") == shown
        assert tab.js("document.getElementById('session').textContent").startswith("resumed the session started")
        counts = tab.js("Array.from(document.querySelectorAll('#annotators tr')).slice(1)"
                        ".map(r => Array.from(r.cells).map(c => c.textContent))")
        human = pd.read_json(ROOT / "human_labels" / "demo.jsonl", lines=True)
        expected = human[human["pair"] == "student~teacher"].groupby("annotator")["id"].nunique()
        assert {a: int(c) for a, c in counts} == {**expected.to_dict(), "kim": 10}
        assert tab.console_errors() == []
    lines = [json.loads(line) for line in (run / "labels" / "kim.jsonl").read_text().splitlines()]
    assert len(lines) == 10 and len({r["id"] for r in lines}) == 10
    expected = ["not_equivalent" if k % 3 == 0 else "equivalent" for k in range(10)]
    expected[9] = "not_equivalent"  # undone and rated again with key 2
    assert [r["verdict"] for r in lines] == expected
    assert {r["order"] for r in lines} <= {"ab", "ba"} and all(r["guideline"].startswith("sha256:") for r in lines)
    assert main(["calibrate", str(run), "--quiet"]) == 0
    judged = pd.read_parquet(run / "judgments.parquet").set_index("id")["parsed"]
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["judges"]["extraction_equivalence"]["n"] == before + sum(bool(judged[r["id"]]) for r in lines)
    assert "kim.jsonl" in calibration["human_labels"]


def test_the_word_diff_marks_moved_words_as_moved(setup):
    # "214" and "percent" stand elsewhere in the other text: once marked as differences, now as moved.
    tab, run = setup
    with serving(app_for(run)) as base:
        goto(tab, f"{base}/")
        until(tab, "typeof wordDiff === 'function'")
        marks = tab.js("(() => { const d = document.createElement('div');"
                       " d.innerHTML = wordDiff('the rate rose 214 percent in May', 'up 214 percent the rate rose in June');"
                       " return Array.from(d.querySelectorAll('span')).map(s => [s.className, s.textContent]); })()")
    assert marks == [["moved", "214"], ["moved", "percent"], ["diff", "May"]]

"""The offline monitor demo, exactly as the README runs it (`genval monitor configs/monitor/demo.yaml`), and its
monitor.html in headless Chromium over the DevTools protocol (tests/test_report_browser.py's tab, reused).

The browser tests skip without Chromium unless GENVAL_REQUIRE_BROWSER=1 (as tests/test_report_browser.py).
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from contextlib import redirect_stdout
from datetime import timedelta

import pandas as pd
import pytest

from genval.cli import main
from tests.conftest import ROOT
from tests.test_report_browser import page  # noqa: F401 — the Chromium tab fixture, reused

CONFIG = ROOT / "configs" / "monitor" / "demo.yaml"
DATA = ROOT / "data" / "monitor_demo"


def _script():
    spec = importlib.util.spec_from_file_location("make_monitor_demo", ROOT / "scripts" / "make_monitor_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Runs the demo command once: gives its exit code, what it printed and its run folder."""
    out = tmp_path_factory.mktemp("monitordemo") / "runs"
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = main(["monitor", str(CONFIG), "--out", str(out), "--quiet"])
    return code, printed.getvalue(), out / "monitor-demo"


def _iso(week: int) -> str:
    make = _script()
    return f"{make.START + timedelta(weeks=week):%Y-%m-%dT%H:%M:%SZ}"


def test_the_demo_exits_1_and_alerts_only_the_planted_slice_from_the_planted_week_on(demo):
    code, printed, folder = demo
    make = _script()
    planted = {_iso(week) for week in range(make.DROP_WEEK, make.WEEKS)}
    assert code == 1
    saved = json.loads((folder / "monitor.json").read_text())
    assert {(a["window_start"], a["slice"]) for a in saved["alerts"]} == {(w, "segment=enterprise") for w in planted}
    assert saved["latest_window"] == _iso(make.WEEKS - 1) and saved["windows"] == make.WEEKS
    lines = printed.splitlines()
    assert f"alerts in {len(planted)} of {make.WEEKS} window(s):" in lines
    for week in sorted(planted):
        assert any(line.startswith(f"  window {week[:10]}") and "2 alert(s)" in line for line in lines)
    assert lines[-2].startswith("ALERT: latest window") and lines[-1] == f"report: {folder / 'monitor.html'}"


def test_the_demo_shows_the_traffic_the_frozen_eval_set_does_not_cover(demo):
    _, _, folder = demo
    evalset = [json.loads(x) for x in (DATA / "eval_set.jsonl").read_text().splitlines()]
    covered = {r["slices"]["channel"] for r in evalset}
    assert "voice" not in covered
    windows = pd.read_parquet(folder / "windows.parquet").set_index(["window_start", "slice", "number"])
    for path in sorted((DATA / "traffic").glob("*.jsonl")):
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        outside = sum(r["channel"] not in covered for r in rows) / len(rows)
        row = windows.loc[(f"{path.stem}T00:00:00Z", "all", "uncovered_share")]
        assert row["value"] == pytest.approx(outside) and 0 < outside < 0.06 and row["n"] == len(rows)


def test_the_demo_data_are_what_the_seeded_script_makes(tmp_path):
    _script().main(["--out", str(tmp_path)])
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert made == sorted(p.relative_to(DATA) for p in DATA.rglob("*") if p.is_file())
    for name in made:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
    assert sum((DATA / name).stat().st_size for name in made) < 2_000_000


@pytest.fixture(scope="module")
def tab(page, demo):  # noqa: F811 — `page` is the imported fixture
    _, _, folder = demo
    page.events.clear()
    page.call("Page.navigate", url=(folder / "monitor.html").as_uri())
    page.wait_for("Page.loadEventFired")
    return page, folder


def test_monitor_html_loads_clean_and_self_contained(tab):
    page, _ = tab
    assert page.js("document.querySelector('.verdict').textContent").endswith("2 ALERT(S)")
    assert page.console_errors() == []
    assert [u for u in page.requests() if not u.startswith(("data:", "about:"))] == [
        u for u in page.requests() if u.endswith("monitor.html")]  # the page itself, nothing else


def test_one_trend_plot_per_number_and_slice_with_alert_windows_marked(tab):
    page, folder = tab
    windows = pd.read_parquet(folder / "windows.parquet")
    drawn = windows[windows["value"].notna()]
    expected = set(zip(drawn["number"], drawn["slice"]))
    plots = page.js("Array.from(document.querySelectorAll('figure.trend')).map(f => {"
                    " const r = f.querySelector('svg').getBoundingClientRect();"
                    " return [f.dataset.number, f.dataset.slice, r.width, r.height,"
                    " f.querySelectorAll('circle').length,"
                    " Array.from(f.querySelectorAll('rect.alert-window')).map(a => a.dataset.window),"
                    " f.querySelectorAll('circle.alert').length]})")
    assert len(plots) == len(expected) and {(p[0], p[1]) for p in plots} == expected
    alerts = json.loads((folder / "monitor.json").read_text())["alerts"]
    marked = {}
    for alert in alerts:
        marked.setdefault((alert["number"], alert["slice"]), set()).add(alert["window_start"])
    for number, slice_name, width, height, points, shaded, red in plots:
        assert width > 300 and height > 120, (number, slice_name)
        assert points == len(drawn[(drawn["number"] == number) & (drawn["slice"] == slice_name)])
        assert set(shaded) == marked.get((number, slice_name), set()) and red == len(shaded), (number, slice_name)
    assert len(marked[("agreement_rate", "segment=enterprise")]) == 3


def test_no_label_is_cut_and_no_two_date_labels_overlap(tab):
    page, _ = tab
    # For every plot: texts that stick out of their svg, and pairs of x-axis labels whose boxes overlap.
    bad = page.js("""Array.from(document.querySelectorAll('figure.trend svg')).flatMap(svg => {
        const box = svg.getBoundingClientRect(), out = [];
        const texts = Array.from(svg.querySelectorAll('text')).map(t => [t.textContent, t.getBoundingClientRect()]);
        for (const [s, r] of texts) if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5
                                        || r.bottom > box.bottom + 0.5) out.push('cut: ' + s);
        const dates = texts.filter(([s]) => /^\\d\\d-\\d\\d$/.test(s)).map(([, r]) => r);
        for (let i = 1; i < dates.length; i++) if (dates[i].left < dates[i - 1].right + 2) out.push('overlap');
        return out;
    })""")
    assert bad == []


def test_screenshot(tab, tmp_path):
    page, _ = tab
    shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "monitor.png").write_bytes(shot)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000

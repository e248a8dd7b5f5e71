"""`genval loadtest` against a local server whose latency grows with the requests in flight."""

from __future__ import annotations

import json

import pytest

from genval.cli import main
from genval.errors import GenvalError
from genval.models.loadtest import best_level, loadtest, parse_levels, read_prompts
from tests.openai_server import ChatServer


def test_levels_latency_and_the_best_throughput_within_budget():
    # The server sleeps 0.05 s × requests in flight: at concurrency c the latency is about 0.05·c
    # and throughput about c / (0.05·c) = 20/s, so P95 rises with c and the budget decides.
    with ChatServer(load_s=0.05) as server:
        result = loadtest(server.url, "tiny", ["load test"], [1, 2, 4], requests=8, max_tokens=8, budget_s=0.15)
        assert server.max_in_flight == 4
        assert {r["body"]["max_tokens"] for r in server.seen} == {8}
    levels = {lv["concurrency"]: lv for lv in result["levels"]}
    assert set(levels) == {1, 2, 4} and all(lv["errors"] == 0 for lv in levels.values())
    assert 0.05 <= levels[1]["latency_p95_s"] < 0.15  # one in flight: the server sleeps 0.05 s
    assert levels[4]["latency_p95_s"] > 0.15  # four in flight: ≈ 0.2 s, over the budget
    assert levels[1]["latency_p95_s"] < levels[4]["latency_p95_s"]
    within = [lv for lv in levels.values() if lv["latency_p95_s"] <= 0.15]
    assert result["best"] == max(within, key=lambda lv: lv["requests_per_s"])
    assert result["best"]["concurrency"] in (1, 2)
    for lv in levels.values():
        assert lv["requests_per_s"] == pytest.approx(8 / lv["wall_s"])
        # 8 latencies: the median's 95 % interval is [x_(1), x_(8)] (P(B ≤ 0) = 1/256 ≤ 0.025); P95 has no upper end.
        assert lv["latency_p50_ci_s"][0] <= lv["latency_p50_s"] <= lv["latency_p50_ci_s"][1]
        assert lv["latency_p95_ci_s"][1] is None
    assert len(server.seen) == 1 + 3 * 8 and result["warm_up"]  # one warm-up, then 8 per level


def test_best_level_skips_levels_with_errors_or_over_budget():
    levels = [{"concurrency": 1, "errors": 0, "requests_per_s": 5.0, "latency_p95_s": 0.1},
              {"concurrency": 2, "errors": 1, "requests_per_s": 9.0, "latency_p95_s": 0.1},
              {"concurrency": 4, "errors": 0, "requests_per_s": 8.0, "latency_p95_s": 0.3}]
    assert best_level(levels, 0.2)["concurrency"] == 1
    assert best_level(levels, None)["concurrency"] == 4
    assert best_level(levels, 0.05) is None


def test_command_prints_the_table_and_writes_json(tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "load a"}\nload b\n', encoding="utf-8")
    out = tmp_path / "lt.json"
    with ChatServer(load_s=0.01) as server:
        code = main(["loadtest", "--base-url", server.url, "--model", "m", "--concurrency", "2,1", "--requests", "4",
                     "--prompts", str(prompts), "--latency-budget-s", "5", "--json", str(out), "--quiet"])
        sent = sorted(r["body"]["messages"][-1]["content"] for r in server.seen)
    assert code == 0
    assert sent == ["load a"] * 5 + ["load b"] * 4  # one "load a" is the warm-up before the first level
    text = capsys.readouterr().out
    assert "| concurrency | P50 s [95 % CI] | P95 s [95 % CI] |" in text and "Best with P95 ≤ 5 s" in text
    # 4 latencies per level: too few for a 95 % interval of the median (P(B ≤ 0) = 1/16 > 0.025),
    # and P95 gets a lower bound only (the 3rd of 4, as P(B ≤ 2) = 0.014 for B ~ Binomial(4, 0.95)).
    assert text.count("[–, –]") == 2 and text.count(", –] |") == 4
    data = json.loads(out.read_text())
    assert [lv["concurrency"] for lv in data["levels"]] == [1, 2]
    # A budget no level can meet: exit 1, so a script notices.
    with ChatServer(load_s=0.05) as server:
        assert main(["loadtest", "--base-url", server.url, "--model", "m", "--concurrency", "1", "--requests", "2",
                     "--prompt", "load x", "--latency-budget-s", "0.001", "--quiet"]) == 1


def test_user_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(GenvalError, match="whole numbers"):
        parse_levels("1,two")
    with pytest.raises(GenvalError, match="1 or more"):
        parse_levels("0,2")
    with pytest.raises(GenvalError, match="no such prompts file"):
        read_prompts(tmp_path / "missing.txt")
    assert main(["loadtest", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--concurrency", "x"]) == 2


def test_an_unreachable_endpoint_exits_1_and_names_the_error(capsys):
    import socket

    with socket.socket() as sock:  # a free port on 127.0.0.1 that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = main(["loadtest", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m", "--requests", "2",
                 "--concurrency", "1", "--timeout-s", "5", "--quiet"])
    assert code == 1
    assert "No level ran without errors. First error: connection failed" in capsys.readouterr().out

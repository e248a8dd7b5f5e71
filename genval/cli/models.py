"""This area's `genval` subcommands: `loadtest`; `genval.cli` calls `add_commands` with its subparsers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from genval.errors import GenvalError


def _cmd_loadtest(args) -> int:
    from genval.models.loadtest import loadtest, markdown, parse_levels, read_prompts

    if args.prompt is not None and args.prompts is not None:
        raise GenvalError("loadtest: give --prompt or --prompts FILE, not both")
    prompts = read_prompts(args.prompts) if args.prompts else [args.prompt or "Write one sentence about the sea."]
    if args.requests < 1:
        raise GenvalError(f"--requests {args.requests}: give 1 or more requests per level")
    levels = parse_levels(args.concurrency)

    def say(level):
        if not args.quiet:
            print(f"concurrency {level['concurrency']}: P95 {level['latency_p95_s'] or 0:.3f} s, "
                  f"{level['requests_per_s'] or 0:.2f} requests/s, {level['errors']} errors", file=sys.stderr)

    result = loadtest(args.base_url, args.model, prompts, levels, args.requests, args.max_tokens,
                      args.latency_budget_s, args.api_key_env, args.timeout_s, on_level=say)
    print(markdown(result), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    # No usable level (every one erred, or none meets the budget) is an answer a script should see.
    return 1 if result["best"] is None else 0


def add_commands(subparsers) -> None:
    """Adds `genval loadtest`."""
    from genval.cli.args import count, seconds

    p = subparsers.add_parser("loadtest", help="P50/P95 latency and throughput of an OpenAI-compatible endpoint "
                                               "as concurrency rises")
    p.add_argument("--base-url", required=True, help="the server's /v1 URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", required=True, help="the model name the server knows")
    p.add_argument("--concurrency", default="1,2,4,8,16", help="levels, comma-separated (default: 1,2,4,8,16)")
    p.add_argument("--requests", type=count, default=32, help="requests per level (default: 32)")
    p.add_argument("--latency-budget-s", type=float, default=None,
                   help="P95 budget in seconds; the answer is the best throughput within it (exit 1 if none)")
    p.add_argument("--prompt", default=None, help="one prompt, sent every time")
    p.add_argument("--prompts", default=None, help="a file of prompts: one per line, or JSONL with 'prompt'")
    p.add_argument("--max-tokens", type=count, default=128, help="max_tokens per request (default: 128)")
    p.add_argument("--api-key-env", default=None, help="environment variable that holds the API key")
    p.add_argument("--timeout-s", type=seconds, default=60.0, help="per-request timeout (default: 60)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no per-level lines on stderr")
    p.set_defaults(func=_cmd_loadtest)

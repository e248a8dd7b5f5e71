"""This area's `genval` subcommand: `monitor`; `genval.cli` calls `add_commands` with its subparsers."""

from __future__ import annotations

from pathlib import Path


def _cmd_monitor(args) -> int:
    from genval.monitor.config import load_monitor_config
    from genval.monitor.stage import monitor
    from genval.progress import Progress

    config = load_monitor_config(args.config)
    result = monitor(config, Path(args.out), Progress(quiet=args.quiet))
    step = result["this_invocation"]
    print(f"read {step['files_read']} new file(s), {step['rows_new']} new rows; {step['windows_added']} window(s) "
          f"added; {step['model_calls']} model calls ({step['cached_answers']} answered by the cache)")
    for note in step.get("notes", []):
        print(f"note: {note}")
    for start, count in step["late_rows"].items():
        print(f"note: {count} rows for window {start}, already recorded, were not added")
    by_window: dict[str, list] = {}
    for alert in result["alerts"]:
        by_window.setdefault(alert["window_start"], []).append(alert)
    if by_window:
        print(f"alerts in {len(by_window)} of {result['windows']} window(s):")
    for start, alerts in by_window.items():
        print(f"  window {start[:10]}{' (latest)' if start == result['latest_window'] else ''}: {len(alerts)} alert(s)")
        for alert in alerts:
            print(f"    - {alert['slice']}: {alert['rule']} — {alert['reason']}")
    if result["latest_window"] is None:
        print("no window recorded yet")
    elif result["latest_alerts"]:
        print(f"ALERT: latest window {result['latest_window']} raised {len(result['latest_alerts'])} alert(s)")
    else:
        print(f"OK: latest window {result['latest_window']} raised no alert")
    print(f"report: {Path(args.out) / config.name / 'monitor.html'}")
    return result["exit_code"]


def add_commands(subparsers) -> None:
    """Adds `genval monitor`."""
    p = subparsers.add_parser("monitor", help="production traffic over windows: a labelled sample, numbers per "
                                              "slice, drift and alerts (exit 1 when the latest window alerts)")
    p.add_argument("config", help="the monitor config (YAML)")
    p.add_argument("--out", default="runs", help="folder that holds run folders (default: runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_monitor)

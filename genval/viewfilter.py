"""The filter that narrows a run's examples in `genval view`, written once for the viewer and the report's links.

A filter is a URL query string, so the same text is the page's address, the argument of
`genval view RUN --filter "…"` and what report.html links to:

    slice=critical=true&pair=student~teacher&metric=rouge_l&max=0.3&sort=rouge_l&order=asc

Keys (each at most once; an unknown key is refused):
  slice      a slice as the summary names it, FIELD=VALUE
  pair       a pair A~B, or one role (for per-output numbers such as json_valid)
  metric     a per-example score's name; with min / max, its inclusive range
  judge      a judge's name; with verdict, one of its verdicts
  diagnosis  a diagnosis kind from summary.json (the examples it is about)
  flag       failed | student_only_error | format_failure
  q          free text, matched in input, reference and outputs
  sort       a score's name to sort by; order asc (worst first for a higher-is-better score) or desc
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode

from genval.errors import GenvalError

KEYS = ("slice", "pair", "metric", "min", "max", "judge", "verdict", "diagnosis", "flag", "q", "sort", "order")
FLAGS = ("failed", "student_only_error", "format_failure")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def filter_string(**terms) -> str:
    """Writes a filter from its terms, in KEYS order; None and empty terms are left out."""
    unknown = sorted(set(terms) - set(KEYS))
    if unknown:
        raise GenvalError(f"filter: unknown key {unknown[0]!r}; keys are {', '.join(KEYS)}")
    return urlencode([(key, str(terms[key])) for key in KEYS if terms.get(key) not in (None, "")])


def parse_filter(text: str) -> dict[str, str]:
    """Reads a filter into {key: value}; a leading '?' is allowed. Refuses unknown or repeated keys, a bad number or flag."""
    terms: dict[str, str] = {}
    for key, value in parse_qsl(text.lstrip("?"), keep_blank_values=False):
        if key not in KEYS:
            raise GenvalError(f"filter: unknown key {key!r} in {text!r}; keys are {', '.join(KEYS)}")
        if key in terms:
            raise GenvalError(f"filter: {key!r} given twice in {text!r}")
        terms[key] = value
    for key in ("min", "max"):
        if key in terms:
            try:
                float(terms[key])
            except ValueError:
                raise GenvalError(f"filter: {key}={terms[key]!r} is not a number") from None
    if "flag" in terms and terms["flag"] not in FLAGS:
        raise GenvalError(f"filter: flag={terms['flag']!r} is not one of {', '.join(FLAGS)}")
    if "order" in terms and terms["order"] not in ("asc", "desc"):
        raise GenvalError(f"filter: order={terms['order']!r} must be asc or desc")
    return terms


def view_url(filter_text: str = "", host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """Gives the viewer's address showing the filtered examples."""
    return f"http://{host}:{port}/" + (f"?{filter_text}" if filter_text else "")


def view_command(run_path: str, filter_text: str = "") -> str:
    """Gives the command that serves the run and opens it filtered (for a report's reader to paste)."""
    return f"genval view {quote(str(run_path), safe='/._-~')}" + (f' --filter "{filter_text}"' if filter_text else "")

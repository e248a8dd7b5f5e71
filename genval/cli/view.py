"""`genval view`: serve a run folder as a local web app to browse its examples or rate its outputs."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlencode

from genval.errors import GenvalError


def _check_port(host: str, port: int) -> None:
    """Raises in one line when the address cannot be bound (taken, or not this machine's), before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise GenvalError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); "
                              "give another --port (or stop what uses it)") from None


def build(args):
    """Gives (app, url path) for the arguments: the index opened (built when stale), the filter and rating checked."""
    from genval.config import parse_config
    from genval.progress import Progress
    from genval.runfolder import open_run
    from genval.view.app import create_app
    from genval.view.browse import Browser
    from genval.view.index import open_index
    from genval.viewfilter import parse_filter

    run = open_run(args.run)
    summary = None
    if run.has("summary.json"):
        from genval.pipeline import current_summary

        summary = current_summary(run, Progress(quiet=args.quiet))
    terms = parse_filter(args.filter or "")
    browser = Browser(open_index(run, Progress(quiet=args.quiet)), summary)
    browser.where(terms)  # a slice, metric or judge the run lacks is said now, not on the page
    rating, path = None, "/" + (f"?{args.filter.lstrip('?')}" if args.filter else "")
    if args.rate:
        if not args.annotator:
            raise GenvalError("--rate needs --annotator NAME (whose ratings these are: RUN/labels/NAME.jsonl)")
        from genval.view.rating import RateSession, check_annotator

        if "config" not in run.manifest:
            raise GenvalError(f"{run.root}/manifest.json: no config recorded; run `genval run CONFIG` first")
        config = parse_config(run.manifest["config"], run.root, source=f"{run.root}/manifest.json")
        rating = RateSession(run, config, browser, args.pair, args.n, fresh=args.fresh,
                             annotator=check_annotator(args.annotator), judge=args.judge)
        path = "/rate?" + urlencode({"annotator": args.annotator})
    elif args.annotator or args.fresh:
        raise GenvalError("--annotator and --fresh go with --rate (e.g. genval view RUN --rate --annotator ann)")
    return create_app(browser, rating), path, rating


def _cmd_view(args) -> int:
    import uvicorn

    app, path, rating = build(args)
    _check_port(args.host, args.port)
    url = f"http://{args.host}:{args.port}{path}"
    if rating is not None:
        print(f"rating {rating.pair} on judge {rating.scope.name}'s scale: {rating.describe(args.annotator)}; "
              f"each rating goes to {rating.path(args.annotator)}")
    print(url)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning"))
    if not args.no_browser:
        import webbrowser

        def _open():
            while not server.started and not server.should_exit:
                threading.Event().wait(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=_open, daemon=True).start()
    server.run()
    return 0


def add_commands(subparsers) -> None:
    """Adds `view`."""
    from genval.cli.args import count
    from genval.viewfilter import DEFAULT_HOST, DEFAULT_PORT

    p = subparsers.add_parser("view", help="browse a run's examples, or rate its outputs blind, in the browser")
    p.add_argument("run", help="a run folder")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT})")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser; print the address")
    p.add_argument("--filter", help='open the examples narrowed by a filter, e.g. "slice=critical%%3Dtrue&sort=chrf" '
                                    "(docs/view.md)")
    p.add_argument("--rate", action="store_true", help="rate a sample of pairs blind instead of browsing")
    p.add_argument("--annotator", help="with --rate: who rates (ratings go to RUN/labels/NAME.jsonl)")
    p.add_argument("--pair", default="student~teacher", help="with --rate: the pair to rate (default student~teacher)")
    p.add_argument("--n", type=count, default=200, help="with --rate: items in the sample (default 200)")
    p.add_argument("--fresh", action="store_true",
                   help="with --rate: start a new session, leaving out items anyone rated (default: resume this "
                        "annotator's last session, or draw from the items they have not rated)")
    p.add_argument("--judge", help="with --rate: the judge whose scale to rate on (default: the first of the pair)")
    p.add_argument("--quiet", action="store_true", help="no progress messages while the index is built")
    p.set_defaults(func=_cmd_view)

"""The Starlette app: the page's static files and the JSON API it (and any script) uses.

    GET  /api/run                       name, n, roles, pairs, scores, judges, slices, diagnoses
    GET  /api/examples?offset=&limit=&<filter keys>   {"total": N, "offset": k, "items": [...]}
    GET  /api/examples/{id}             one example in full
    GET  /api/rate/next?annotator=      the next item to rate (blind), progress, scale, guideline, agreement
    POST /api/labels                    one rating as JSON: 201 with the line written, 400 with a one-line reason
    POST /api/labels/undo               {"annotator": NAME}: removes that annotator's last rating

Endpoints are `async` on purpose: they run one at a time on the event loop, so the one
SQLite connection and the labels files are never used by two requests at once.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from genval.errors import GenvalError
from genval.view.browse import Browser
from genval.viewfilter import filter_string, parse_filter

STATIC = Path(__file__).parent / "static"
PAGING = ("offset", "limit")


def _bad(exc: Exception) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(exc).split("\n"))}, status_code=400)


def _number(request: Request, key: str, default: int) -> int:
    text = request.query_params.get(key)
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise GenvalError(f"{key}={text!r} is not a whole number") from None


def create_app(browser: Browser, rating=None) -> Starlette:
    """Gives the app over one run's index (`browser`) and, when rating, its RateSession."""

    async def page(request: Request):
        return FileResponse(STATIC / "index.html")

    async def rate_page(request: Request):
        if rating is None:
            return JSONResponse({"error": "this server was started without --rate; run `genval view RUN --rate "
                                          "--annotator NAME`"}, status_code=404)
        return FileResponse(STATIC / "rate.html")

    async def run_info(request: Request):
        info = browser.run_info()
        info["rating"] = None if rating is None else {"pair": rating.pair, "judge": rating.scope.name,
                                                      "n": len(rating.sample)}
        return JSONResponse(info)

    async def examples(request: Request):
        try:
            terms = parse_filter(filter_string(**{k: v for k, v in request.query_params.items() if k not in PAGING}))
            return JSONResponse(browser.page(terms, _number(request, "offset", 0), _number(request, "limit", 50)))
        except GenvalError as exc:
            return _bad(exc)

    async def example(request: Request):
        position = browser.position(request.path_params["ident"])
        if position is None:
            return JSONResponse({"error": f"no example with id {request.path_params['ident']!r}"}, status_code=404)
        return JSONResponse(browser.items([position])[0])

    def _rating_or_404():
        if rating is None:
            return JSONResponse({"error": "rating is off: start the server with `genval view RUN --rate`"},
                                status_code=404)
        return None

    async def rate_next(request: Request):
        off = _rating_or_404()
        if off:
            return off
        try:
            return JSONResponse(rating.state(request.query_params.get("annotator")))
        except GenvalError as exc:
            return _bad(exc)

    async def _body(request: Request):
        # A page on another site may POST to this port from the user's browser; its Origin gives it away.
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise GenvalError(f"POST: refused from another site ({origin}); ratings come from this app's pages")
        try:
            return json.loads(await request.body())
        except ValueError:
            raise GenvalError("POST: the body is not JSON (send one JSON object)") from None

    async def labels(request: Request):
        off = _rating_or_404()
        if off:
            return off
        try:
            return JSONResponse(rating.add(await _body(request)), status_code=201)
        except GenvalError as exc:
            return _bad(exc)

    async def undo(request: Request):
        off = _rating_or_404()
        if off:
            return off
        try:
            body = await _body(request)
            removed = rating.undo(body.get("annotator") if isinstance(body, dict) else None)
            return JSONResponse({"removed": removed})
        except GenvalError as exc:
            return _bad(exc)

    async def no_icon(request: Request):
        return Response(status_code=204)  # no icon, and no 404 in the browser's console for the one it asks for

    return Starlette(routes=[
        Route("/", page), Route("/rate", rate_page), Route("/favicon.ico", no_icon),
        Route("/api/run", run_info), Route("/api/examples", examples), Route("/api/examples/{ident:path}", example),
        Route("/api/rate/next", rate_next), Route("/api/labels", labels, methods=["POST"]),
        Route("/api/labels/undo", undo, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])

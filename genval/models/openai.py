"""The `openai` backend: any OpenAI-compatible chat-completions server (vLLM's own, a hosted API).

Requests go out over httpx, asynchronously, at most `concurrency` at once. A timeout, a
connection failure, a 5xx, a 429 or a malformed body is retried with exponential back-off
and full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015); a 429's
`Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) is honoured instead. A request
that still fails becomes a completion with `error` set; the other requests go on.

`timeout_s` bounds each attempt as a whole — connecting, sending, and reading the body to
its last byte — so a server that trickles its answer cannot hold a request past it; an
attempt cut off is counted and retried like any other timeout.

The API key is read from the environment variable the config names and sent only in the
Authorization header: it is never part of the fingerprint, and since a server may quote it
back (a 401 body that echoes the request's headers), every string from the server is passed
through genval.redact before it is kept, and an error body is cut to ERROR_BODY characters.
`latency_s` is the time of the attempt that answered (what the server took), not the
back-off before it.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import queue
import random
import threading
import time
from typing import Iterator

import httpx

from genval.errors import GenvalError
from genval.models.base import Backend, Completion, Request
from genval.models.labels import from_top_logprobs
from genval.redact import redact, watch

MAX_BACKOFF_S = 30.0
ERROR_BODY = 200  # characters of an error response kept in the outputs table: enough to read, not a dump
_DONE = object()


class Malformed(Exception):
    """The server answered 200 with a body that is not a chat completion."""


def retry_after(response: httpx.Response, cap: float) -> float | None:
    """Gives the wait a `Retry-After` header asks for, in seconds (capped), or None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), cap)


def backoff(base: float, attempt: int) -> float:
    """Gives a full-jitter back-off: uniform in [0, base·2^attempt], capped at MAX_BACKOFF_S."""
    return random.uniform(0, min(MAX_BACKOFF_S, base * 2 ** attempt))


def clean_text(text: str) -> str:
    """Gives a server's text as genval keeps it: secrets redacted, a lone surrogate (unwritable as UTF-8) as U+FFFD."""
    return redact(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))


def error_body(response: httpx.Response) -> str:
    """Gives an error response's body as one short, redacted line."""
    text = " ".join(clean_text(response.text).split())  # redacted before it is cut: a cut key would not match
    return text[:ERROR_BODY] + ("…" if len(text) > ERROR_BODY else "")


def _count(value) -> int | None:
    """Gives a token count the server reported, or None when it is not a whole number ≥ 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_completion(data, request: Request) -> Completion:
    """Gives the completion a chat-completions body holds; raises Malformed when it holds none."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise Malformed("the server's answer has no choices[0].message.content") from None
    if not isinstance(text, str):
        raise Malformed("choices[0].message.content is not a string")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    top = None
    try:
        entries = ((choice.get("logprobs") or {}).get("content")) or []
        if entries:
            top = [{clean_text(t["token"]): float(t["logprob"]) for t in (e.get("top_logprobs") or [e])}
                   for e in entries]
    except (AttributeError, KeyError, TypeError, ValueError):
        raise Malformed("choices[0].logprobs.content has entries without token/logprob") from None
    return Completion(
        id=request.id, text=clean_text(text) if request.generate else "",
        prompt_tokens=_count(usage.get("prompt_tokens")), completion_tokens=_count(usage.get("completion_tokens")),
        top_logprobs=top, label_probs=from_top_logprobs(top[0], request.labels) if top and request.labels else None,
    )


def closed(schema) -> bool:
    """Says whether a JSON Schema fits OpenAI's strict mode: every object closed, every property required."""
    if isinstance(schema, list):
        return all(closed(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False or set(schema.get("required") or []) != set(props):
            return False
    return all(closed(v) for k, v in schema.items() if k not in ("enum", "const", "required"))


class OpenAIBackend(Backend):
    """Chat completions from an OpenAI-compatible server, with concurrency, timeouts and retries."""

    name = "openai"

    def __init__(self, config):
        self.config = config

    def fingerprint(self) -> str:
        c = self.config
        return f"openai:{c.base_url.rstrip('/')}:{c.model}:logprobs={c.logprobs}:{c.top_logprobs}"

    def info(self) -> dict:
        return {"device": f"remote ({self.config.base_url})"}

    def batch_settings(self) -> dict:
        return {"concurrency": self.config.concurrency}

    def warm_up(self, request: Request) -> bool:
        """Sends nothing: a remote server is serving already. A warm-up would be a paid request answered
        twice (once more after every resume), and on a rate-limited server it would spend the 429."""
        return False

    # --- one request ------------------------------------------------------------------------
    def _headers(self) -> dict:
        env = self.config.api_key_env
        if not env:
            return {}
        key = os.environ.get(env)
        if not key:
            raise GenvalError(f"model '{self.config.model}': the environment variable {env} named by 'api_key_env' "
                              "is not set (export it, or remove 'api_key_env' for a server without a key)")
        watch([env])
        return {"Authorization": f"Bearer {key}"}

    def body(self, request: Request) -> dict:
        """Gives the JSON body of one chat-completions request."""
        p = request.params
        messages = ([{"role": "system", "content": request.system}] if request.system else [])
        messages.append({"role": "user", "content": request.prompt})
        body = {"model": self.config.model, "messages": messages,
                "max_tokens": p.max_tokens if request.generate else 1,
                "temperature": p.temperature, "top_p": p.top_p, "seed": p.seed}
        if p.stop:
            body["stop"] = list(p.stop)
        k = p.logprobs if p.logprobs is not None else (self.config.top_logprobs if self.config.logprobs or request.labels else None)
        if k is not None:
            body["logprobs"] = True
            body["top_logprobs"] = k
        if request.schema is not None and self.config.json_schema:
            # strict only where the schema allows it: OpenAI refuses strict mode for an open object
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "output", "schema": request.schema, "strict": closed(request.schema)}}
        return body

    async def _one(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, headers: dict,
                   request: Request) -> Completion:
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        body = self.body(request)
        attempt = 0
        async with gate:
            while True:
                started = time.perf_counter()
                wait = None
                try:  # the whole attempt, body included: httpx's own timeouts bound each read, not the sum
                    response = await asyncio.wait_for(client.post(url, json=body, headers=headers),
                                                      self.config.timeout_s)
                except (asyncio.TimeoutError, httpx.TimeoutException):
                    error = f"timed out after {self.config.timeout_s:g} s"
                except httpx.TransportError as exc:
                    error = f"connection failed ({type(exc).__name__})"
                else:
                    if response.status_code == 200:
                        try:
                            completion = parse_completion(response.json(), request)
                        except (ValueError, RecursionError):
                            error = "the server's answer is not JSON"
                        except Malformed as exc:
                            error = str(exc)
                        else:
                            completion.latency_s = time.perf_counter() - started
                            return completion
                    elif response.status_code == 429:
                        error = "HTTP 429 (rate limited)"
                        wait = retry_after(response, self.config.max_retry_wait_s)
                    elif response.status_code >= 500:
                        error = f"HTTP {response.status_code} (server error)"
                    else:  # 4xx: the request itself is wrong; retrying gives the same answer
                        return Completion(id=request.id, error=f"HTTP {response.status_code}: {error_body(response)}")
                if attempt >= self.config.max_retries:
                    return Completion(id=request.id, error=f"{error}; gave up after {attempt + 1} attempts")
                await asyncio.sleep(wait if wait is not None else backoff(self.config.backoff_s, attempt))
                attempt += 1

    # --- many requests ----------------------------------------------------------------------
    async def _run(self, requests: list[Request], out: queue.Queue, stop: threading.Event, headers: dict) -> None:
        gate = asyncio.Semaphore(self.config.concurrency)
        limits = httpx.Limits(max_connections=self.config.concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.config.timeout_s), limits=limits) as client:
            tasks = [asyncio.create_task(self._one(client, gate, headers, r)) for r in requests]
            try:
                for finished in asyncio.as_completed(tasks):
                    out.put(await finished)
                    if stop.is_set():
                        break
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def generate(self, requests: list[Request]) -> Iterator[Completion]:
        """Yields completions as the server answers, from an event loop on a worker thread.

        The thread lets the caller write each answer to the cache while the others are in flight.
        """
        headers = self._headers()
        out: queue.Queue = queue.Queue()
        stop = threading.Event()

        def work():
            try:
                asyncio.run(self._run(requests, out, stop, headers))
            except BaseException as exc:  # handed to the caller's thread, which raises it
                out.put(exc)
            finally:
                out.put(_DONE)

        thread = threading.Thread(target=work, name="genval-openai", daemon=True)
        thread.start()
        try:
            while (item := out.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=self.config.timeout_s + 5)

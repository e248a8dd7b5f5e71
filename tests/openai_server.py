"""A real HTTP server on 127.0.0.1 that speaks OpenAI chat completions, with scripted misbehaviour.

The user message picks the behaviour by its first word:
  ok …        200 with "echo: <message>"
  rate …      429 with Retry-After: 1 the first time, then ok
  flaky …     500 twice, then ok
  slow …      sleeps `slow_s` before answering (longer than the client's timeout)
  garbage …   200 with a body that is not JSON, always
  hollow …    200 with JSON that has no choices, always
  bad …       400, always
  label …     200 with first-token top_logprobs (for label probabilities)
  load …      sleeps `load_s × requests in flight` (latency grows with concurrency), then ok
  cold …      the first such request sleeps `slow_s` (a server warming up); later ones answer at once
  script …    200 with what `script(body)` gives: (content, positions), where positions lists, per
              generated token, (token, logprob) pairs with the sent token first; they become
              `logprobs.content` (top_logprobs cut to the request's k) when the request asks for logprobs
Hostile answers, for the bad-input suite:
  unauthorized …  401 whose body quotes the request's headers, Authorization included
  trickle …   200 whose body comes one byte every `trickle_s` (each read is quick, the whole is slow)
  deep …      200 with JSON nested 100,000 levels deep
  surrogate … 200 whose content holds a lone surrogate escape (\ud800)
  oddusage …  200 with token counts that are a string, a boolean and a negative number
  huge …      400 with a 100 kB body
  listlogprobs …  200 whose `logprobs` is a list, not an object
The server records each request's arrival time, body and headers, and each scripted answer in
`sent` (body, content, positions). Only 127.0.0.1 is bound, on a free port the OS picks.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL_TOP = [{"token": " pos", "logprob": -0.2}, {"token": "neg", "logprob": -2.0}, {"token": "The", "logprob": -3.0},
             {"token": " Neutral", "logprob": -4.0}]


class ChatServer:
    """Starts the server in a thread; `url` is its /v1 base URL. Use as a context manager."""

    def __init__(self, slow_s: float = 2.0, load_s: float = 0.02, script=None, trickle_s: float = 0.25):
        self.slow_s, self.load_s, self.script, self.trickle_s = slow_s, load_s, script, trickle_s
        self.sent: list[dict] = []
        self.warm = False  # whether a "cold" request has been answered yet
        self.lock = threading.Lock()
        self.seen: list[dict] = []
        self.counts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def arrivals(self, message: str) -> list[float]:
        return [r["t"] for r in self.seen if r["body"]["messages"][-1]["content"] == message]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers=()):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                message = body["messages"][-1]["content"]
                with server.lock:
                    server.seen.append({"t": time.monotonic(), "body": body, "headers": dict(self.headers)})
                    n = server.counts[message] = server.counts.get(message, 0) + 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    flight = server.in_flight
                try:
                    self._answer(body, message, n, flight)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _answer(self, body, message, n, flight):
                kind = message.split()[0]
                if kind == "rate" and n == 1:
                    return self._send(429, b'{"error": "slow down"}', [("Retry-After", "1")])
                if kind == "flaky" and n <= 2:
                    return self._send(500, b'{"error": "boom"}')
                if kind == "garbage":
                    return self._send(200, b"<html>not json")
                if kind == "hollow":
                    return self._send(200, b'{"id": "x", "object": "chat.completion"}')
                if kind == "bad":
                    return self._send(400, b'{"error": "unknown parameter"}')
                if kind == "unauthorized":
                    auth = self.headers.get("Authorization", "")
                    return self._send(401, json.dumps({"error": {"message": f"Incorrect API key provided: {auth}"},
                                                       "request_headers": dict(self.headers)}).encode())
                if kind == "deep":
                    return self._send(200, b"[" * 100_000 + b"]" * 100_000)
                if kind == "huge":
                    return self._send(400, b'{"error": "' + b"x" * 100_000 + b'"}')
                if kind == "trickle":
                    return self._trickle(self._completion(body, message, kind))
                if kind == "slow":
                    time.sleep(server.slow_s)
                if kind == "load":
                    time.sleep(server.load_s * flight)
                if kind == "cold":
                    with server.lock:
                        first, server.warm = not server.warm, True
                    if first:
                        time.sleep(server.slow_s)
                self._send(200, self._completion(body, message, kind))

            def _trickle(self, data: bytes):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(server.trickle_s)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up: what a timeout should do
                    pass

            def _completion(self, body, message, kind) -> bytes:
                text = f"echo: {message}"
                if kind == "surrogate":
                    text = "half a character: \ud800 here"
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                if kind == "script":
                    text, positions = server.script(body)
                    with server.lock:
                        server.sent.append({"body": body, "content": text, "positions": positions})
                    choice["message"]["content"] = text
                    if body.get("logprobs"):
                        k = body.get("top_logprobs", 0)
                        choice["logprobs"] = {"content": [
                            {"token": pos[0][0], "logprob": pos[0][1],
                             "top_logprobs": [{"token": t, "logprob": lp} for t, lp in pos[:k]]} for pos in positions]}
                elif body.get("logprobs"):
                    first = LABEL_TOP if kind == "label" else [{"token": "echo", "logprob": -0.1}]
                    k = body.get("top_logprobs", 0)
                    choice["logprobs"] = {"content": [
                        {"token": first[0]["token"], "logprob": first[0]["logprob"], "top_logprobs": first[:k]},
                        {"token": ":", "logprob": -0.5, "top_logprobs": [{"token": ":", "logprob": -0.5}][:k]},
                    ]}
                if kind == "listlogprobs":
                    choice["logprobs"] = [{"token": "x", "logprob": -1.0}]
                data = {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"], "choices": [choice],
                        "usage": {"prompt_tokens": len(message.split()), "completion_tokens": len(text.split()),
                                  "total_tokens": len(message.split()) + len(text.split())}}
                if kind == "oddusage":
                    data["usage"] = {"prompt_tokens": "12", "completion_tokens": True, "total_tokens": -3}
                return json.dumps(data).encode()

        return Handler

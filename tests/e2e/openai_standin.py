"""A stand-in for an OpenAI-compatible provider, for the chatbot's end-to-end tests.

It speaks the documented wire format of the chat-completions API
(https://platform.openai.com/docs/api-reference/chat/create):
- `POST /v1/chat/completions` (OpenAI, `Authorization: Bearer <key>`) and
  `POST /openai/deployments/<deployment>/chat/completions?api-version=…` (Azure, `api-key: <key>`),
  a JSON body with `messages` (and `model` for OpenAI);
- answers `{"id", "object": "chat.completion", "created", "model", "choices": [{"index": 0,
  "message": {"role": "assistant", "content"}, "finish_reason": "stop"}], "usage": {…}}`;
- `GET /v1/models` (the health check) lists the one model;
- `POST /v1/images/generations` (Azure: `/openai/deployments/<d>/images/generations?…`), a JSON
  body with `prompt` (and `model` for OpenAI), answers `{"created", "data": [{"b64_json"}]}` with
  a small PNG, or `[{"url"}]` pointing at the stand-in itself when `images_as_url` is set
  (https://platform.openai.com/docs/api-reference/images/create);
- errors as `{"error": {"message", "type", "code"}}`: 401 for a wrong key, and whatever a test
  queues (`fail_next`), e.g. 429 with `Retry-After`.
It records every request it was sent (path, headers, body), and runs in a thread of its own, so
tests on any event loop can use it. The answer to a question is `ANSWER_PREFIX + question`.
"""
from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ANSWER_PREFIX = "Stand-in answer to: "


def _png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, red."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = _png()


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    status: int

    @property
    def messages(self) -> list[dict]:
        return (self.body or {}).get("messages", []) if isinstance(self.body, dict) else []

    @property
    def prompt(self) -> str:
        return (self.body or {}).get("prompt", "") if isinstance(self.body, dict) else ""

    def contents(self) -> list[str]:
        return [m.get("content", "") for m in self.messages]

    def question(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        return users[-1]["content"] if users else ""


@dataclass
class StandIn:
    port: int
    key: str
    model: str = "e2e-model"
    images_as_url: bool = False
    requests: list[Recorded] = field(default_factory=list)
    _failures: list[tuple[int, dict, dict]] = field(default_factory=list)
    _think: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    # -- control (from the tests' thread)
    def fail_next(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        """The next request is answered with this error (in the documented error form)."""
        body = {"error": {"message": message, "type": "requests" if status == 429 else "server_error", "code": code}}
        with self._lock:
            self._failures.append((status, body, headers or {}))

    def think_next(self, seconds: float) -> None:
        """The next answer comes only after `seconds` (a model that takes its time)."""
        with self._lock:
            self._think.append(seconds)

    def asked(self, needle: str) -> list[Recorded]:
        """Requests whose last user message contains `needle`."""
        with self._lock:
            return [r for r in self.requests if needle in r.question()]

    def all_requests(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    # -- the server
    async def _completions(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        azure = request.path.startswith("/openai/")
        given = headers.get("api-key") if azure else headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            failure = self._failures.pop(0) if self._failures and given == self.key else None
        if given != self.key:
            status, out, extra = 401, {"error": {"message": "Incorrect API key provided", "type":
                                                 "invalid_request_error", "code": "invalid_api_key"}}, {}
        elif not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
                or (not azure and not body.get("model")):
            status, out, extra = 400, {"error": {"message": "messages and model are required", "type":
                                                 "invalid_request_error", "code": None}}, {}
        elif failure is not None:
            status, out, extra = failure
        else:
            with self._lock:
                think = self._think.pop(0) if self._think else 0.0
            if think:
                await asyncio.sleep(think)
            users = [m for m in body["messages"] if m.get("role") == "user"]
            question = users[-1]["content"] if users else ""
            content = ANSWER_PREFIX + question
            prompt_tokens = sum(len(m.get("content", "")) // 4 + 4 for m in body["messages"])
            completion_tokens = len(content) // 4 + 1
            status, extra = 200, {}
            out = {
                "id": f"chatcmpl-e2e{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            }
        with self._lock:
            self.requests.append(Recorded(request.path_qs, headers, body, status))
        return web.json_response(out, status=status, headers=extra)

    async def _images(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        azure = request.path.startswith("/openai/")
        given = headers.get("api-key") if azure else headers.get("authorization", "").removeprefix("Bearer ")
        if given != self.key:
            status, out = 401, {"error": {"message": "Incorrect API key provided", "type":
                                          "invalid_request_error", "code": "invalid_api_key"}}
        elif not isinstance(body, dict) or not body.get("prompt") or (not azure and not body.get("model")):
            status, out = 400, {"error": {"message": "prompt and model are required", "type":
                                          "invalid_request_error", "code": None}}
        else:
            status = 200
            datum = ({"url": f"http://127.0.0.1:{self.port}/files/image.png"} if self.images_as_url
                     else {"b64_json": base64.b64encode(PNG).decode()})
            out = {"created": int(time.time()), "data": [dict(datum, revised_prompt=body["prompt"])]}
        with self._lock:
            self.requests.append(Recorded(request.path_qs, headers, body, status))
        return web.json_response(out, status=status)

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    def images(self, needle: str) -> list[Recorded]:
        """Image requests whose prompt contains `needle`."""
        with self._lock:
            return [r for r in self.requests if needle in r.prompt]

    async def _models(self, request: web.Request) -> web.Response:
        """`GET /v1/models`: the bridge's health check (the key is checked the same way)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        azure = request.path.startswith("/openai/")
        given = headers.get("api-key") if azure else headers.get("authorization", "").removeprefix("Bearer ")
        if given != self.key:
            return web.json_response({"error": {"message": "Incorrect API key provided", "type":
                                                "invalid_request_error", "code": "invalid_api_key"}}, status=401)
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model",
                                                              "created": 0, "owned_by": "e2e"}]})

    def start(self) -> "StandIn":
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._completions)
            app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._completions)
            app.router.add_post("/v1/images/generations", self._images)
            app.router.add_post("/openai/deployments/{deployment}/images/generations", self._images)
            app.router.add_get("/files/image.png", self._file)
            app.router.add_get("/v1/models", self._models)
            app.router.add_get("/openai/models", self._models)
            self._runner = web.AppRunner(app, access_log=None)
            try:
                loop.run_until_complete(self._runner.setup())
                loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="openai-standin", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise RuntimeError(f"the provider stand-in cannot listen on 127.0.0.1:{self.port}: {errors[0]}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

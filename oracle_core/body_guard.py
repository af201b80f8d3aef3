"""The one place request bodies come in: bounded in size and in time, and JSON bounded in
depth before anything parses it.

Why the depth: `py_ecc` (imported through `eth_account`) raises Python's recursion limit to
100,000, so the C JSON parser no longer stops at `RecursionError` and a body of 100,000
`[` overflows the thread's stack, killing the process. Bodies are checked here, in front of
FastAPI's own parsing and of every `json.loads` of ours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 4 * 1024**2
MAX_JSON_DEPTH = 64
BODY_DEADLINE_S = 30.0
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class BodyRefused(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in `body` (strings skipped), counted
    without parsing it."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def check_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> None:
    if json_depth(body) > max_depth:
        raise BodyRefused(400, f"JSON nested deeper than {max_depth} levels")


def loads(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` that refuses bodies nested past `max_depth` instead of crashing."""
    check_json(body, max_depth)
    return json.loads(body)


class BodyGuard:
    """ASGI middleware: a body larger than `max_bytes` is refused with 413 as soon as it is
    known to be (from Content-Length, or while it arrives), one that takes longer than
    `deadline_s` to arrive with 408, and JSON nested past `max_depth` with 400; a client
    that hangs up mid-body is noted at INFO, not as an error."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        max_depth: int = MAX_JSON_DEPTH,
        deadline_s: float = BODY_DEADLINE_S,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.deadline_s = deadline_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except BodyRefused as exc:
            await _answer(send, exc.status, exc.message)
            return
        except _Disconnected:
            log.info("%s %s: the client left before sending its body", scope["method"],
                     scope.get("path"))  # fmt: skip
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # e.g. http.disconnect while the app answers
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise BodyRefused(413, f"request body over {self.max_bytes} bytes")
        chunks, size = [], 0
        deadline = time.monotonic() + self.deadline_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BodyRefused(408, f"request body not received within {self.deadline_s:g} s")
            try:
                message = await asyncio.wait_for(receive(), timeout=left)
            except TimeoutError:
                raise BodyRefused(
                    408, f"request body not received within {self.deadline_s:g} s"
                ) from None
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyRefused(413, f"request body over {self.max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if body[:1] in (b"[", b"{") or "json" in headers.get("content-type", ""):
            check_json(body, self.max_depth)
        return body


class _Disconnected(Exception):
    pass


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"message": message, "detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})

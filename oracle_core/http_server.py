"""uvicorn's HTTP protocols with a deadline for request headers, which uvicorn lacks: a
client that opens a connection (or finishes a response) and then trickles header bytes
holds a connection and its memory for as long as it likes (slowloris). Here the headers
of each request must be complete within HEADER_TIMEOUT_S of the connection opening or of
the previous response ending, or the connection is closed. Bodies have their own
deadline (`body_guard`).

    uvicorn exchange_oracle.app:create_app --factory --http oracle_core.http_server:HttpTools
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = float(os.environ.get("HEADER_TIMEOUT_S", "10"))


class _HeaderDeadline:
    """Mixed into a uvicorn protocol (which supplies `loop`, `transport` and `cycle`)."""

    header_timeout_s = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self._in_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self._in_request():  # a pipelined request may have started already
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _in_request(self) -> bool:
        """Headers in: a request is being answered."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()


class H11(_HeaderDeadline, H11Protocol):
    """uvicorn's pure-Python protocol, with the header deadline."""


class HttpTools(_HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol (its default when httptools is installed), with the
    header deadline."""

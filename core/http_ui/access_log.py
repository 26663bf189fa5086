"""ASGI middleware that publishes each finished request as an HTTPRequest event."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.events import HTTPRequest
from core.events.bus import EventBus


class AccessLog:
    """Counts the bytes a request moves and reports it once it has ended, whatever the end."""

    def __init__(self, app: ASGIApp, bus: EventBus) -> None:
        self.app = app
        self.bus = bus

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app dies before it answers
        moved = 0

        async def counting_receive() -> Message:
            nonlocal moved
            message = await receive()
            if message["type"] == "http.request":
                moved += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, moved
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                moved += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            self.bus.publish(
                HTTPRequest(
                    method=str(scope.get("method", "")),
                    path=str(scope.get("path", "")),
                    status=status,
                    bytes=moved,
                    ms=(time.perf_counter() - started) * 1000,
                )
            )

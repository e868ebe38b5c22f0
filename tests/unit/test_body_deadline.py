"""The body deadline (entrypoints/http/body_deadline.py) on its own, with a fake ASGI app and
client: what it cuts off, and what it must leave alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from healthcare.entrypoints.http.body_deadline import BodyDeadline, BodyReadTimeout

BOUND = 0.2
POST: Any = {"type": "http", "method": "POST", "path": "/api/patients/"}


def client(*chunks: tuple[float, bytes]) -> Any:
    """A receive callable: each chunk after its pause; the last one ends the body."""
    queue = list(chunks)

    async def receive() -> dict[str, Any]:
        pause, body = queue.pop(0)
        await asyncio.sleep(pause)
        return {"type": "http.request", "body": body, "more_body": bool(queue)}

    return receive


async def ignore(_message: Any) -> None:
    return None


async def read_body_then(work_seconds: float, seen: list[bytes]) -> Any:
    async def app(_scope: Any, receive: Any, _send: Any) -> None:
        more = True
        while more:
            message = await receive()
            seen.append(message["body"])
            more = message["more_body"]
        await asyncio.sleep(work_seconds)  # the handler's work, after the body arrived
        seen.append(b"done")

    return app


async def test_a_body_that_arrives_in_time_in_pieces_is_read_whole() -> None:
    seen: list[bytes] = []
    deadline = BodyDeadline(await read_body_then(0, seen), BOUND)
    await deadline(POST, client((0.05, b"{"), (0.05, b"}")), ignore)
    assert seen == [b"{", b"}", b"done"]


async def test_a_body_that_stops_arriving_is_cut_off_near_the_bound() -> None:
    seen: list[bytes] = []
    deadline = BodyDeadline(await read_body_then(0, seen), BOUND)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BodyReadTimeout):
        await deadline(POST, client((0, b"{"), (5, b"}")), ignore)
    assert BOUND <= loop.time() - started < BOUND * 2
    assert seen == [b"{"]


async def test_the_work_after_the_body_is_never_cut_off() -> None:
    # The handler runs well past the body's deadline once its body is in: no cancellation
    # may reach it (a cancel meant for the read would land in its database work).
    seen: list[bytes] = []
    deadline = BodyDeadline(await read_body_then(BOUND * 3, seen), BOUND)
    await deadline(POST, client((BOUND * 0.5, b"{}")), ignore)
    assert seen == [b"{}", b"done"]


async def test_requests_without_a_body_are_passed_through_untouched() -> None:
    received: list[Any] = []

    async def app(_scope: Any, receive: Any, _send: Any) -> None:
        received.append(receive)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    get: Any = {**POST, "method": "GET"}
    await BodyDeadline(app, BOUND)(get, receive, ignore)
    assert received == [receive]

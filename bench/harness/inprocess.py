"""One scenario's requests, made to the ASGI app in this process: no server, no network.

Run by instructions.py under callgrind, with the tree to measure first on PYTHONPATH (so it
imports nothing of the harness, only ``healthcare``): ``inprocess.py SCENARIO REQUESTS``. It
sets up a user, 25 patients, 100 doctors and 3 mappings through the API, makes 50 requests
to warm up, then turns callgrind's instrumentation on (``callgrind_control -i on``) around
REQUESTS more, so only they are counted. Each request must succeed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

# The eight every tree has served since the first benchmark (login, bound by bcrypt, left
# out): the defaults of bench-against and bench-instructions too (regression.py imports them
# from here, since this file runs alone and can import nothing of the harness).
SCENARIOS = (
    "get_patient",
    "list_patients",
    "patient_mappings",
    "list_doctors",
    "create_patient",
    "update_patient",
    "create_mapping",
    "refresh",
)
PATIENTS, DOCTORS, MAPPED = 25, 100, 3
WARM_UP = 50
Message = dict[str, Any]
Response = tuple[int, bytes]


class Client:
    """ASGI calls, one after the other, as a server would make them."""

    def __init__(self, app: Callable[..., Coroutine[Any, Any, None]]) -> None:
        self.app = app

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        token: str | None = None,
        query: bytes = b"",
    ) -> Response:
        headers = [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*")]
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        raw = b""
        if body is not None:
            raw = json.dumps(body).encode()
            headers += [(b"content-type", b"application/json")]
            headers += [(b"content-length", str(len(raw)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False
        status, chunks = 0, []

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.Event().wait()  # no disconnect while the response is written
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def _lifespan(
    app: Callable[..., Coroutine[Any, Any, None]],
) -> tuple[asyncio.Task[None], asyncio.Queue[Message], asyncio.Event]:
    """The app started as a server starts it; put a shutdown in the queue to stop it."""
    queue: asyncio.Queue[Message] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"].endswith("failed"):
            raise SystemExit(f"lifespan: {message}")
        (started if message["type"] == "lifespan.startup.complete" else stopped).set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, queue.get, send))
    queue.put_nowait({"type": "lifespan.startup"})
    await started.wait()
    return task, queue, stopped


def _ok(response: Response, *expected: int) -> dict[str, Any]:
    status, body = response
    if status not in expected:
        raise SystemExit(f"{status}: {body[:300]!r}")
    return json.loads(body) if body else {}


async def _scenario(client: Client, scenario: str) -> Callable[[], Awaitable[Response]]:
    """Set up what ``scenario`` needs; return one request of it (each call a new one)."""
    user = f"calls_{os.getpid()}_{time.time_ns()}"
    password = "calls-password-1x"
    account = {"username": user, "email": f"{user}@example.org", "password": password}
    _ok(await client.call("POST", "/api/auth/register/", account), 201)
    login = {"username": user, "password": password}
    tokens = _ok(await client.call("POST", "/api/auth/login/", login), 200)
    access, refresh = str(tokens["access"]), str(tokens["refresh"])
    patients, doctors = [], []
    for i in range(PATIENTS):
        record = {"name": f"Patient {i}", "age": 30 + i, "gender": "female"}
        patients.append(_ok(await client.call("POST", "/api/patients/", record, access), 201)["id"])
    for i in range(DOCTORS):
        record = {"name": f"Doctor {i}", "specialization": "General"}
        doctors.append(_ok(await client.call("POST", "/api/doctors/", record, access), 201)["id"])
    for doctor in doctors[:MAPPED]:
        pair = {"patient": patients[0], "doctor": doctor}
        _ok(await client.call("POST", "/api/mappings/", pair, access), 201)
    pairs = itertools.count()  # each assignment a new pair: past the first patient's
    requests: dict[str, Callable[[], Awaitable[Response]]] = {
        "get_patient": lambda: client.call("GET", f"/api/patients/{patients[1]}/", token=access),
        "list_patients": lambda: client.call(
            "GET", "/api/patients/", token=access, query=b"limit=20"
        ),
        "patient_mappings": lambda: client.call(
            "GET", f"/api/mappings/{patients[0]}/", token=access
        ),
        "list_doctors": lambda: client.call("GET", "/api/doctors/", token=access),
        "create_patient": lambda: client.call(
            "POST", "/api/patients/", {"name": "New One", "age": 40, "gender": "male"}, access
        ),
        "update_patient": lambda: client.call(
            "PUT",
            f"/api/patients/{patients[2]}/",
            {"name": "Upd One", "age": 41, "gender": "Male"},
            access,
        ),
    }

    async def assign() -> Response:
        k = next(pairs)
        pair = {"patient": patients[k % PATIENTS], "doctor": doctors[MAPPED + k // PATIENTS]}
        return await client.call("POST", "/api/mappings/", pair, access)

    async def refreshed() -> Response:
        nonlocal refresh  # with rotation on, each refresh spends the token for the next
        response = await client.call("POST", "/api/auth/token/refresh/", {"refresh": refresh})
        refresh = str(json.loads(response[1]).get("refresh", refresh))
        return response

    requests["create_mapping"], requests["refresh"] = assign, refreshed
    return requests[scenario]


def _instrument(on: bool) -> None:
    if os.environ.get("CALLGRIND"):
        command = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
        subprocess.run(command, check=True, capture_output=True)


async def main(scenario: str, count: int) -> None:
    # Imported here, so that the harness can read SCENARIOS without loading the app.
    from healthcare.entrypoints.http.asgi import create_asgi_app

    app = create_asgi_app()
    lifespan, queue, stopped = await _lifespan(app)
    client = Client(app)
    request = await _scenario(client, scenario)
    for _ in range(WARM_UP):
        _ok(await request(), 200, 201)
    statuses = []
    _instrument(on=True)
    for _ in range(count):
        statuses.append((await request())[0])  # (checked after: only the app is counted)
    _instrument(on=False)
    if failed := [status for status in statuses if status not in {200, 201}]:
        raise SystemExit(f"{len(failed)} of {count} requests failed: {sorted(set(failed))}")
    queue.put_nowait({"type": "lifespan.shutdown"})
    await stopped.wait()
    await lifespan


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in SCENARIOS:
        raise SystemExit(f"usage: inprocess.py {{{','.join(SCENARIOS)}}} REQUESTS")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))

"""Every wait on the database has a bound: a statement that runs too long, or waits too long
for a lock, fails at its bound as Unavailable (a 503), and its connection stays usable."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from sqlalchemy import make_url, text

from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.domain.errors import Unavailable
from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.settings import Settings
from tests.conftest import libpq_url

SECRET = "time-bounds-secret-key-that-is-long-enough"
# Far above the bounds under test: without them, the test fails here instead of hanging.
GUARD_SECONDS = 3.0


async def backend_pid(database: Database) -> int:
    transaction = database.transaction()
    try:
        return int((await transaction.read(text("SELECT pg_backend_pid()"))).scalar_one())
    finally:
        await transaction.close()


@pytest.mark.postgres
async def test_a_statement_past_the_statement_timeout_is_unavailable(postgres_url: str) -> None:
    database = Database(postgres_url, pool_size=1, statement_timeout_ms=200, lock_timeout_ms=100)
    try:
        pid = await backend_pid(database)
        transaction = database.transaction()
        started = time.monotonic()
        try:
            async with asyncio.timeout(GUARD_SECONDS):
                with pytest.raises(Unavailable, match="statement_timeout") as raised:
                    await transaction.read(text("SELECT pg_sleep(2)"))
        finally:
            await transaction.close()
        assert time.monotonic() - started < 1.0
        assert raised.value.retry_after == 1
        # The pool's only connection came back, and is the same one: nothing was replaced.
        assert await backend_pid(database) == pid
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_a_lock_wait_past_the_lock_timeout_is_unavailable(postgres_url: str) -> None:
    database = Database(postgres_url, pool_size=1, statement_timeout_ms=5000, lock_timeout_ms=150)
    holder = await psycopg.AsyncConnection.connect(libpq_url(postgres_url), autocommit=True)
    try:
        pid = await backend_pid(database)
        await holder.execute("SELECT pg_advisory_lock(918273)")
        transaction = database.transaction()
        started = time.monotonic()
        try:
            async with asyncio.timeout(GUARD_SECONDS):
                with pytest.raises(Unavailable, match="lock_timeout"):
                    await transaction.write(text("SELECT pg_advisory_xact_lock(918273)"))
        finally:
            await transaction.close()
        # Ended by lock_timeout (150 ms), well before statement_timeout (5 s).
        assert time.monotonic() - started < 1.0
        await holder.execute("SELECT pg_advisory_unlock(918273)")
        # Rolled back and returned healthy: the same connection takes the lock now.
        transaction = database.transaction()
        try:
            await transaction.write(text("SELECT pg_advisory_xact_lock(918273)"))
            await transaction.commit()
        finally:
            await transaction.close()
        assert await backend_pid(database) == pid
    finally:
        await holder.close()
        await database.dispose()


@pytest.mark.postgres
async def test_the_sessions_run_with_the_configured_bounds(postgres_url: str) -> None:
    settings = Settings(
        database_url=postgres_url,
        secret_key=SECRET,
        db_statement_timeout_ms=4321,
        db_lock_timeout_ms=1234,
    )
    database = build_container(settings).database()
    transaction = database.transaction()
    try:
        row = (
            await transaction.read(
                text("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
            )
        ).one()
        assert tuple(row) == ("4321ms", "1234ms")
    finally:
        await transaction.close()
        await database.dispose()


async def test_sqlite_waits_for_its_lock_no_longer_than_the_lock_timeout(sqlite_url: str) -> None:
    # SQLite has no statement timeout; its only wait is for the write lock (busy_timeout).
    settings = Settings(database_url=sqlite_url, secret_key=SECRET, db_lock_timeout_ms=1234)
    database = build_container(settings).database()
    try:
        async with database.engine.connect() as connection:
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
        assert busy == 1234
    finally:
        await database.dispose()


class RestartableProxy:
    """A TCP relay to PostgreSQL that can go away and come back, as a restarted server does
    (dropping every session, refusing connections meanwhile), without touching the real
    server that other databases share."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.postgres
async def test_the_pool_is_back_within_a_second_of_its_database(postgres_url: str) -> None:
    real = make_url(postgres_url)
    proxy = RestartableProxy(real.port or 5432)
    await proxy.start()
    database = Database(
        real.set(host="127.0.0.1", port=proxy.port).render_as_string(False),
        pool_size=2,
        pool_timeout_seconds=1,
    )

    async def served() -> bool:
        try:
            await backend_pid(database)
        except Unavailable:
            return False
        return True

    try:
        assert await served()
        await proxy.stop()  # the database goes away, with every session
        down_until = time.monotonic() + 1.5
        while time.monotonic() < down_until:  # requests keep coming, and fail
            await served()
            await asyncio.sleep(0.05)
        await proxy.start()  # and comes back on the same port
        back = time.monotonic()
        while not await served():
            assert time.monotonic() - back < 1.0, "still unavailable a second after"
            await asyncio.sleep(0.02)
    finally:
        await database.dispose()
        await proxy.stop()

"""The in-memory adapter: transactions by snapshot, one writer at a time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from healthcare.adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from healthcare.application.paging import PageRequest
from healthcare.domain.entities import NewUser, RefreshSession
from healthcare.domain.errors import Conflict, NotFound
from tests.unit.factories import Core, DoctorDataFactory, PatientDataFactory, registration


def new_user(username: str = "alice", email: str = "alice@example.com") -> NewUser:
    return NewUser(username, email, "hashed:whatever")


async def committed_usernames(store: MemoryStore) -> list[str]:
    async with MemoryUnitOfWork(store) as uow:
        found = [await uow.users.get(uid) for uid in store.tables.users]
    return [u.username for u in found if u is not None]


class TestTransactions:
    async def test_a_unit_copies_only_the_tables_it_writes_to(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            user = await uow.users.add(new_user())
            await uow.commit()
        before = dict(vars(store.tables))

        async with MemoryUnitOfWork(store) as uow:
            assert await uow.users.get(user.id) == user
            await uow.patients.list(user.id, PageRequest())
            await uow.commit()
        assert all(vars(store.tables)[name] is table for name, table in before.items())

        async with MemoryUnitOfWork(store) as uow:
            await uow.patients.add(user.id, PatientDataFactory.build())
            assert store.tables.patients == {}  # the unit's copy, not the store's table
            await uow.commit()
        changed = {name for name, table in vars(store.tables).items() if table is not before[name]}
        assert changed == {"patients"}
        assert len(store.tables.patients) == 1

    async def test_a_rolled_back_write_leaves_the_stores_table_untouched(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            user = await uow.users.add(new_user())
            await uow.commit()
        users = store.tables.users

        async with MemoryUnitOfWork(store) as uow:
            await uow.users.set_active(user.id, False)
            await uow.rollback()
            assert (await uow.users.get(user.id)) == user
        assert store.tables.users is users and users[user.id] == user

    async def test_commit_keeps_changes(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            user = await uow.users.add(new_user())
            await uow.commit()

        async with MemoryUnitOfWork(store) as uow:
            assert await uow.users.get(user.id) == user
            assert await uow.users.find_by_login("ALICE") == user

    async def test_leaving_without_commit_discards_changes(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            user = await uow.users.add(new_user())
            assert await uow.users.get(user.id) == user  # visible inside the transaction

        async with MemoryUnitOfWork(store) as uow:
            assert await uow.users.get(user.id) is None
        assert await committed_usernames(store) == []

    async def test_rollback_discards_only_what_came_after_commit(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            kept = await uow.patients.add(1, PatientDataFactory.build())
            await uow.commit()
            dropped = await uow.patients.add(1, PatientDataFactory.build())
            await uow.rollback()
            assert await uow.patients.get(1, dropped.id) is None
            assert await uow.patients.get(1, kept.id) == kept

        async with MemoryUnitOfWork(store) as uow:
            page = await uow.patients.list(1, PageRequest())
        assert list(page.items) == [kept]

    async def test_an_exception_discards_changes_and_frees_the_store(self) -> None:
        store = MemoryStore()

        async def failing_work() -> None:
            async with MemoryUnitOfWork(store) as uow:
                await uow.doctors.add(1, DoctorDataFactory.build())
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await failing_work()

        async with asyncio.timeout(1):  # would hang if the lock were still held
            async with MemoryUnitOfWork(store) as uow:
                assert (await uow.doctors.list(PageRequest())).total == 0

    async def test_the_same_unit_of_work_can_be_entered_again(self) -> None:
        store = MemoryStore()
        uow = MemoryUnitOfWork(store)
        async with uow:
            await uow.users.add(new_user("first", "first@example.com"))
            await uow.commit()
        async with uow:
            await uow.users.add(new_user("second", "second@example.com"))
        async with uow:
            await uow.users.add(new_user("third", "third@example.com"))
            await uow.commit()

        assert await committed_usernames(store) == ["first", "third"]


class TestConcurrency:
    async def test_same_username_from_two_units_of_work(self) -> None:
        store = MemoryStore()

        async def add(username: str, email: str) -> str:
            async with MemoryUnitOfWork(store) as uow:
                await asyncio.sleep(0)  # give the other task every chance to interleave
                user = await uow.users.add(new_user(username, email))
                await asyncio.sleep(0)
                await uow.commit()
            return user.username

        results = await asyncio.gather(
            add("alice", "one@example.com"),
            add("ALICE", "two@example.com"),
            return_exceptions=True,
        )

        assert results[0] == "alice"
        assert isinstance(results[1], Conflict)
        assert results[1].field == "username"
        assert await committed_usernames(store) == ["alice"]

    async def test_racing_registrations(self) -> None:
        core = Core()
        values = registration()

        results = await asyncio.gather(
            core.container.register_user()(**values),
            core.container.register_user()(**(values | {"username": values["username"].upper()})),
            return_exceptions=True,
        )

        assert sorted(type(r).__name__ for r in results) == ["Conflict", "User"]
        assert len(core.users()) == 1


class TestRepositories:
    async def test_user_conflict_names_the_field(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            await uow.users.add(new_user("alice", "alice@example.com"))
            with pytest.raises(Conflict) as by_email:
                await uow.users.add(new_user("alicia", "ALICE@example.com"))
            with pytest.raises(Conflict) as by_name:
                await uow.users.add(new_user("Alice", "other@example.com"))

        assert (by_email.value.field, by_name.value.field) == ("email", "username")

    async def test_find_by_login_folds_case_and_compatibility_forms(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            user = await uow.users.add(new_user("\u00c9lodie", "elodie@example.com"))
            assert await uow.users.find_by_login("\u00e9LODIE") == user
            assert await uow.users.find_by_login("e\u0301lodie") == user  # decomposed é
            assert await uow.users.find_by_login("ELODIE@EXAMPLE.COM") == user
            assert await uow.users.find_by_login("elodie") is None

    async def test_ids_are_unique_across_tables(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            patient = await uow.patients.add(1, PatientDataFactory.build())
            doctor = await uow.doctors.add(1, DoctorDataFactory.build())
            mapping = await uow.mappings.add(1, patient.id, doctor.id)

        assert len({patient.id, doctor.id, mapping.id}) == 3

    async def test_rotate_only_from_the_current_token(self) -> None:
        store = MemoryStore()
        now = datetime.now(UTC)
        async with MemoryUnitOfWork(store) as uow:
            user = await uow.users.add(NewUser("rotor", "rotor@example.org", "hash"))
            other = await uow.users.add(NewUser("other", "other@example.org", "hash"))
            await uow.refresh_sessions.add(RefreshSession("s1", user.id, "jti-1", now))
            rotate = uow.refresh_sessions.rotate
            assert await rotate("s1", other.id, "jti-1", "jti-2") is None
            assert await rotate("s1", user.id, "jti-1", "jti-2") == user
            assert await rotate("s1", user.id, "jti-1", "jti-3") is None
            assert await rotate("nope", user.id, "jti-2", "jti-3") is None
            await uow.users.set_active(user.id, False)
            assert await rotate("s1", user.id, "jti-2", "jti-3") is None
            await uow.users.set_active(user.id, True)
            await uow.refresh_sessions.revoke("s1", now)
            assert await rotate("s1", user.id, "jti-2", "jti-3") is None
            session = await uow.refresh_sessions.get("s1")

        assert session is not None
        assert (session.current_jti, session.revoked_at) == ("jti-2", now)

    async def test_mapping_to_a_vanished_patient_is_not_found(self) -> None:
        store = MemoryStore()
        async with MemoryUnitOfWork(store) as uow:
            doctor = await uow.doctors.add(1, DoctorDataFactory.build())
            with pytest.raises(NotFound):
                await uow.mappings.add(1, 424242, doctor.id)

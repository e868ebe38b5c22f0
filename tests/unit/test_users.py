"""Account management by an administrator, against the in-memory adapter and a fake hasher."""

from __future__ import annotations

import pytest

from healthcare.application.paging import PageRequest
from healthcare.domain.audit import AuditAction as A
from healthcare.domain.audit import AuditOutcome, ResourceType
from healthcare.domain.entities import Principal, User
from healthcare.domain.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
)
from healthcare.domain.listing import user_filter
from tests.unit.factories import Core, registration
from tests.unit.fakes import HASH_PREFIX


async def superuser(core: Core) -> User:
    user, _ = await core.sign_up(is_staff=True, is_superuser=True)
    return user


async def staff(core: Core) -> User:
    user, _ = await core.sign_up(is_staff=True)
    return user


def last_event(core: Core) -> tuple[A, AuditOutcome, int | None, ResourceType | None, int | None]:
    event = core.audit_events()[-1]
    return (event.action, event.outcome, event.user_id, event.resource_type, event.resource_id)


class TestListUsers:
    async def test_search_filters_paging_and_total(self, core: Core) -> None:
        root = await superuser(core)
        ada, _ = await core.sign_up(username="Ada_Lovelace", email="ada@analytical.org")
        grace, _ = await core.sign_up(username="grace", email="grace@ADA-navy.mil")
        await core.container.set_user_active()(root.principal(), grace.id, active=False)
        list_users = core.container.list_users()

        found = await list_users(root.principal(), PageRequest(), user_filter(search="ADA"))
        assert [u.id for u in found.items] == [ada.id, grace.id]
        assert found.total == 2
        active = await list_users(
            root.principal(), PageRequest(), user_filter(search="ada", is_active=True)
        )
        assert [u.id for u in active.items] == [ada.id]
        admins = await list_users(root.principal(), PageRequest(), user_filter(is_staff=True))
        assert [u.id for u in admins.items] == [root.id]
        first = await list_users(root.principal(), PageRequest(limit=2))
        assert (len(first.items), first.total) == (2, 3)
        rest = await list_users(root.principal(), PageRequest(limit=2, offset=2))
        assert [u.id for u in rest.items] == [grace.id]
        assert last_event(core) == (
            A.USER_LIST,
            AuditOutcome.SUCCESS,
            root.id,
            ResourceType.USER,
            None,
        )

    async def test_plain_users_are_refused(self, core: Core) -> None:
        user, _ = await core.sign_up()
        with pytest.raises(Forbidden):
            await core.container.list_users()(user.principal(), PageRequest())
        assert last_event(core)[:3] == (A.USER_LIST, AuditOutcome.DENIED, user.id)

    async def test_a_search_too_long_is_refused(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            user_filter(search="x" * 300)
        assert caught.value.errors[0].field == "search"


class TestGetUser:
    async def test_by_id_and_by_login(self, core: Core) -> None:
        root = await superuser(core)
        ada, _ = await core.sign_up(username="ada", email="ada@example.org")
        get = core.container.get_user()

        assert await get(root.principal(), ada.id) == ada
        assert await get.login(root.principal(), "ADA@example.org") == ada
        assert last_event(core) == (
            A.USER_READ,
            AuditOutcome.SUCCESS,
            root.id,
            ResourceType.USER,
            ada.id,
        )
        with pytest.raises(NotFound):
            await get(root.principal(), 10**9)
        with pytest.raises(NotFound):
            await get.login(root.principal(), "nobody")
        with pytest.raises(Forbidden):
            await get(ada.principal(), root.id)


class TestCreateUser:
    async def test_hashed_audited_with_the_admin_as_actor(self, core: Core) -> None:
        root = await superuser(core)
        user = await core.container.create_user()(
            root.principal(), "newbie", "newbie@example.org", "a fine passphrase"
        )
        assert user.password_hash == HASH_PREFIX + "a fine passphrase"
        assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)
        assert last_event(core) == (
            A.USER_CREATE,
            AuditOutcome.SUCCESS,
            root.id,
            ResourceType.USER,
            user.id,
        )
        # The new account signs in with that password.
        await core.container.login_user()("newbie", "a fine passphrase")

    async def test_password_rules_and_conflicts(self, core: Core) -> None:
        root = await superuser(core)
        create = core.container.create_user()
        with pytest.raises(InvalidInput) as caught:
            await create(root.principal(), "x", "not-an-email", "12345678")
        assert {e.field for e in caught.value.errors} == {"username", "email", "password"}
        with pytest.raises(Conflict) as taken:
            await create(root.principal(), root.username.upper(), "z@example.org", "long enough pw")
        assert taken.value.field == "username"
        with pytest.raises(Conflict) as email:
            await create(root.principal(), "fresh", root.email.upper(), "long enough pw")
        assert email.value.field == "email"
        assert last_event(core)[:2] == (A.USER_CREATE, AuditOutcome.CONFLICT)
        assert core.hasher.hashed.count("long enough pw") == 1  # no hash for a taken username

    async def test_only_superusers_create_administrators(self, core: Core) -> None:
        clerk = await staff(core)
        create = core.container.create_user()
        with pytest.raises(Forbidden):
            await create(
                clerk.principal(), "boss", "boss@example.org", "long enough pw", is_staff=True
            )
        plain = await create(clerk.principal(), "plain", "plain@example.org", "long enough pw")
        assert not plain.is_admin
        root = await superuser(core)
        made = await create(
            root.principal(), "boss", "boss@example.org", "long enough pw", is_superuser=True
        )
        assert made.is_superuser

    async def test_plain_users_may_not(self, core: Core) -> None:
        user, _ = await core.sign_up()
        with pytest.raises(Forbidden):
            await core.container.create_user()(user.principal(), **registration())


class TestSetUserStaff:
    async def test_grant_and_withdraw(self, core: Core) -> None:
        root = await superuser(core)
        user, _ = await core.sign_up()
        set_staff = core.container.set_user_staff()

        assert (await set_staff(root.principal(), user.id, True)).is_staff
        assert core.store.tables.users[user.id].is_staff
        assert last_event(core) == (
            A.USER_SET_STAFF,
            AuditOutcome.SUCCESS,
            root.id,
            ResourceType.USER,
            user.id,
        )
        assert not (await set_staff(root.principal(), user.id, False)).is_staff
        with pytest.raises(NotFound):
            await set_staff(root.principal(), 10**9, True)
        with pytest.raises(InvalidInput):
            await set_staff(root.principal(), root.id, False)

    async def test_staff_may_not_change_other_administrators(self, core: Core) -> None:
        clerk = await staff(core)
        other = await staff(core)
        root = await superuser(core)
        plain, _ = await core.sign_up()
        principal = clerk.principal()

        for target in (other, root):
            with pytest.raises(Forbidden):
                await core.container.set_user_staff()(principal, target.id, False)
            with pytest.raises(Forbidden):
                await core.container.set_user_active()(principal, target.id, active=False)
            with pytest.raises(Forbidden):
                await core.container.set_user_password()(principal, target.id, "hijacked pass")
            with pytest.raises(Forbidden):
                await core.container.set_user_email()(principal, target.id, "x@example.org")
        assert core.store.tables.users[other.id] == other
        assert core.store.tables.users[root.id] == root
        assert last_event(core)[:3] == (A.USER_SET_EMAIL, AuditOutcome.DENIED, clerk.id)
        # A plain account, and their own, they may.
        assert (await core.container.set_user_staff()(principal, plain.id, True)).is_staff
        await core.container.set_user_email()(principal, clerk.id, "clerk@example.org")
        # A superuser may change any administrator's.
        assert not (
            await core.container.set_user_staff()(root.principal(), other.id, False)
        ).is_staff

    async def test_plain_users_may_not(self, core: Core) -> None:
        user, _ = await core.sign_up()
        other, _ = await core.sign_up()
        with pytest.raises(Forbidden):
            await core.container.set_user_staff()(user.principal(), other.id, True)
        assert not core.store.tables.users[other.id].is_staff


class TestSetUserEmail:
    async def test_change_validate_and_conflict(self, core: Core) -> None:
        root = await superuser(core)
        user, _ = await core.sign_up()
        set_email = core.container.set_user_email()

        changed = await set_email(root.principal(), user.id, "New@Example.org")
        assert changed.email == "New@Example.org"
        assert last_event(core) == (
            A.USER_SET_EMAIL,
            AuditOutcome.SUCCESS,
            root.id,
            ResourceType.USER,
            user.id,
        )
        await set_email(root.principal(), user.id, "new@example.ORG")  # its own, in another case
        with pytest.raises(InvalidInput):
            await set_email(root.principal(), user.id, "nope")
        with pytest.raises(Conflict):
            await set_email(root.principal(), user.id, root.email.upper())
        with pytest.raises(NotFound):
            await set_email(root.principal(), 10**9, "a@example.org")


class TestSetUserPassword:
    async def test_sets_revokes_and_audits(self, core: Core) -> None:
        root = await superuser(core)
        user, password = await core.sign_up()
        pair = await core.container.login_user()(user.username, password)

        await core.container.set_user_password()(root.principal(), user.id, "brand new secret")

        assert core.store.tables.users[user.id].password_hash == HASH_PREFIX + "brand new secret"
        with pytest.raises(AuthenticationFailed):
            await core.container.refresh_tokens()(pair.refresh)
        events = [e for e in core.audit_events() if e.action is A.USER_SET_PASSWORD]
        assert [(e.outcome, e.user_id, e.resource_id) for e in events] == [
            (AuditOutcome.SUCCESS, root.id, user.id)
        ]
        await core.container.login_user()(user.username, "brand new secret")

    async def test_password_rules(self, core: Core) -> None:
        root = await superuser(core)
        user, _ = await core.sign_up(username="someone")
        set_password = core.container.set_user_password()
        for bad in ("short", "123456789", "SOMEONE", "x" * 73):
            with pytest.raises(InvalidInput) as caught:
                await set_password(root.principal(), user.id, bad)
            assert caught.value.errors[0].field == "password"
        assert core.store.tables.users[user.id] == user
        with pytest.raises(NotFound):
            await set_password(root.principal(), 10**9, "long enough pw")

    async def test_plain_users_may_not(self, core: Core) -> None:
        user, _ = await core.sign_up()
        other, _ = await core.sign_up()
        with pytest.raises(Forbidden):
            await core.container.set_user_password()(user.principal(), other.id, "long enough pw")
        admin_token_only = Principal(user.id, is_admin=True)  # not a superuser in the store
        root = await superuser(core)
        with pytest.raises(Forbidden):
            await core.container.set_user_password()(admin_token_only, root.id, "long enough pw")

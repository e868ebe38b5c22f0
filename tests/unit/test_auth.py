"""Use cases of accounts and sign-in, against the in-memory adapter and a fake hasher."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from healthcare.application.auth import (
    BAD_CREDENTIALS,
    BAD_REFRESH_TOKEN,
    Refreshed,
    TokenPair,
)
from healthcare.domain.entities import Principal
from healthcare.domain.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
)
from tests.unit.factories import Core, registration
from tests.unit.fakes import HASH_PREFIX


class TestRegisterUser:
    async def test_stores_a_new_active_user(self, core: Core) -> None:
        user = await core.container.register_user()("alice", "alice@example.com", "wonderland-42")

        assert (user.username, user.email) == ("alice", "alice@example.com")
        assert user.id > 0
        assert user.is_active
        assert not user.is_admin
        assert user.date_joined == user.updated_at
        assert core.users() == [user]

    async def test_password_is_stored_hashed(self, core: Core) -> None:
        user = await core.container.register_user()("alice", "alice@example.com", "wonderland-42")

        assert core.hasher.hashed == ["wonderland-42"]
        assert user.password_hash == HASH_PREFIX + "wonderland-42"
        assert user.password_hash != "wonderland-42"

    async def test_staff_flags(self, core: Core) -> None:
        staff = await core.container.register_user()(**registration(), is_staff=True)
        superuser = await core.container.register_user()(**registration(), is_superuser=True)

        assert (staff.is_staff, staff.is_superuser, staff.is_admin) == (True, False, True)
        assert (superuser.is_staff, superuser.is_superuser, superuser.is_admin) == (
            False,
            True,
            True,
        )
        assert staff.principal() == Principal(staff.id, is_admin=True)

    @pytest.mark.parametrize("taken", ["ALICE", "Alice", "alice"])
    async def test_username_taken_in_any_letter_case(self, core: Core, taken: str) -> None:
        first = await core.container.register_user()("alice", "alice@example.com", "wonderland-42")

        with pytest.raises(Conflict) as caught:
            await core.container.register_user()(taken, "other@example.com", "wonderland-43")

        assert caught.value.field == "username"
        assert core.users() == [first]

    async def test_username_taken_non_ascii_case_fold(self, core: Core) -> None:
        await core.container.register_user()("stra\u00dfe", "a@example.com", "wonderland-42")

        with pytest.raises(Conflict) as caught:
            await core.container.register_user()("STRASSE", "b@example.com", "wonderland-43")

        assert caught.value.field == "username"
        assert len(core.users()) == 1

    @pytest.mark.parametrize("taken", ["Alice@Example.com", "ALICE@EXAMPLE.COM"])
    async def test_email_taken_in_any_letter_case(self, core: Core, taken: str) -> None:
        await core.container.register_user()("alice", "alice@example.com", "wonderland-42")

        with pytest.raises(Conflict) as caught:
            await core.container.register_user()("alicia", taken, "wonderland-43")

        assert caught.value.field == "email"
        assert [u.username for u in core.users()] == ["alice"]

    async def test_invalid_input_lists_each_field_and_stores_nothing(self, core: Core) -> None:
        with pytest.raises(InvalidInput) as caught:
            await core.container.register_user()("a", "not-an-email", "1234")

        assert [e.field for e in caught.value.errors] == [
            "username",
            "email",
            "password",
            "password",
        ]
        assert core.users() == []
        assert core.hasher.hashed == []  # refused before any slow hashing

    async def test_password_equal_to_username_refused(self, core: Core) -> None:
        with pytest.raises(InvalidInput) as caught:
            await core.container.register_user()("Wonderland", "a@example.com", "wONDERLAND")

        assert [e.message for e in caught.value.errors] == ["must not be the same as the username"]
        assert core.users() == []

    async def test_password_over_72_bytes_refused(self, core: Core) -> None:
        with pytest.raises(InvalidInput) as caught:
            await core.container.register_user()("alice", "a@example.com", "\u00e9" * 40)

        assert [e.message for e in caught.value.errors] == ["must be at most 72 bytes in UTF-8"]
        assert core.users() == []

    async def test_without_a_username_the_email_is_the_username(self, core: Core) -> None:
        user = await core.container.register_user()(None, "Alice@Example.com", "wonderland-42")

        assert (user.username, user.email) == ("Alice@Example.com", "Alice@Example.com")
        assert await core.container.login_user()("alice@example.com", "wonderland-42")

    async def test_an_email_taken_as_a_username_is_still_a_conflict(self, core: Core) -> None:
        await core.container.register_user()(
            "taken@example.com", "first@example.com", "wonderland-42"
        )

        with pytest.raises(Conflict) as caught:
            await core.container.register_user()(None, "taken@example.com", "wonderland-43")

        assert caught.value.field == "username"
        assert len(core.users()) == 1

    async def test_an_email_that_cannot_be_a_username_asks_for_one(self, core: Core) -> None:
        with pytest.raises(InvalidInput) as caught:
            await core.container.register_user()(None, "o'brien@example.com", "wonderland-42")

        assert [(e.field, e.message) for e in caught.value.errors] == [
            ("username", "is required: this email cannot serve as a username")
        ]
        assert core.users() == []

    async def test_without_a_username_the_password_may_not_be_the_email(self, core: Core) -> None:
        with pytest.raises(InvalidInput) as caught:
            await core.container.register_user()(None, "alice@example.com", "ALICE@example.com")

        assert [e.message for e in caught.value.errors] == ["must not be the same as the username"]


class TestLogin:
    async def test_by_username(self, core: Core) -> None:
        user, password = await core.sign_up()

        pair = await core.container.login_user()(user.username, password)

        assert isinstance(pair, TokenPair)
        assert core.tokens.read_access(pair.access) == Principal(user.id, is_admin=False)
        assert core.tokens.read_refresh(pair.refresh).user_id == user.id
        assert pair.expires_in == 15 * 60
        assert core.hasher.verified == [password]

    async def test_by_email_ignoring_case(self, core: Core) -> None:
        user, password = await core.sign_up(email="Alice@Example.com")

        pair = await core.container.login_user()("aLICE@example.COM", password)

        assert core.tokens.read_access(pair.access).user_id == user.id

    async def test_by_username_ignoring_case(self, core: Core) -> None:
        user, password = await core.sign_up(username="Alice")

        pair = await core.container.login_user()("ALICE", password)

        assert core.tokens.read_access(pair.access).user_id == user.id

    async def test_opens_a_refresh_session(self, core: Core) -> None:
        user, password = await core.sign_up()

        pair = await core.container.login_user()(user.username, password)

        claims = core.tokens.read_refresh(pair.refresh)
        session = core.session_of(pair.refresh)
        assert session.id == claims.session_id
        assert session.user_id == user.id
        assert session.current_jti == claims.jti
        assert session.created_at == core.clock.now()
        assert not session.is_revoked

    async def test_each_login_is_its_own_chain(self, core: Core) -> None:
        user, password = await core.sign_up()

        first = await core.container.login_user()(user.username, password)
        second = await core.container.login_user()(user.username, password)

        assert core.session_of(first.refresh).id != core.session_of(second.refresh).id
        assert len(core.store.tables.refresh_sessions) == 2

    async def test_admin_flag_travels_in_the_access_token(self, core: Core) -> None:
        user, password = await core.sign_up(is_staff=True)

        pair = await core.container.login_user()(user.username, password)

        assert core.tokens.read_access(pair.access) == Principal(user.id, is_admin=True)

    async def test_wrong_password_and_unknown_user_look_the_same(self, core: Core) -> None:
        user, password = await core.sign_up()

        with pytest.raises(AuthenticationFailed) as wrong_password:
            await core.container.login_user()(user.username, password + "!")
        with pytest.raises(AuthenticationFailed) as unknown_user:
            await core.container.login_user()("nobody-at-all", password)

        assert wrong_password.value.message == BAD_CREDENTIALS
        assert unknown_user.value.message == BAD_CREDENTIALS
        assert str(wrong_password.value) == str(unknown_user.value)
        assert core.store.tables.refresh_sessions == {}

    async def test_unknown_user_costs_a_hash_check(self, core: Core) -> None:
        with pytest.raises(AuthenticationFailed):
            await core.container.login_user()("nobody", "some password")

        assert core.hasher.wasted == ["some password"]
        assert core.hasher.verified == []

    async def test_password_over_72_bytes_is_refused_with_a_hash_check(self, core: Core) -> None:
        user, _ = await core.sign_up()
        too_long = "\u00e9" * 40  # 80 bytes

        with pytest.raises(AuthenticationFailed) as caught:
            await core.container.login_user()(user.username, too_long)

        assert caught.value.message == BAD_CREDENTIALS
        assert len(core.hasher.wasted) == 1
        assert core.hasher.verified == []  # never reaches the real check

    async def test_inactive_user_refused(self, core: Core) -> None:
        user, password = await core.sign_up()
        core.deactivate(user)

        with pytest.raises(AuthenticationFailed) as caught:
            await core.container.login_user()(user.username, password)

        assert caught.value.message == BAD_CREDENTIALS
        assert core.store.tables.refresh_sessions == {}

    async def test_user_whose_username_looks_like_an_email(self, core: Core) -> None:
        user, password = await core.sign_up(username="ann@example.org", email="ann@example.com")

        pair = await core.container.login_user()("ann@example.org", password)

        assert core.tokens.read_access(pair.access).user_id == user.id

    async def test_an_email_that_is_another_accounts_username_is_taken(self, core: Core) -> None:
        # Someone takes a username equal to another person's email address first: that
        # address can then not be registered (sign-in looks emails up first, so it would
        # take the name over), and the string keeps signing in to the first account.
        squatter, password = await core.sign_up(
            username="victim@example.com", email="squatter@example.com"
        )

        with pytest.raises(Conflict) as caught:
            await core.sign_up(username="victim", email="Victim@Example.com")

        assert caught.value.field == "email"
        pair = await core.container.login_user()("victim@example.com", password)
        assert core.tokens.read_access(pair.access).user_id == squatter.id

    @pytest.mark.parametrize("impostor", ["\u0430dmin", "adm\u0131n", "adm\u0130n", "ADMIN"])
    async def test_a_username_that_looks_like_another_is_taken(
        self, core: Core, impostor: str
    ) -> None:
        await core.sign_up(username="admin", email="admin@example.com")

        with pytest.raises(Conflict) as caught:
            await core.sign_up(username=impostor, email="other@example.com")

        assert caught.value.field == "username"

    async def test_a_username_equal_to_an_existing_email_is_taken(self, core: Core) -> None:
        await core.sign_up(username="owner", email="owner@example.com")

        with pytest.raises(Conflict) as caught:
            await core.sign_up(username="OWNER@example.com", email="other@example.com")

        assert caught.value.field == "username"

    async def test_password_check_does_not_hold_the_transaction(
        self, core: Core, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        user, password = await core.sign_up()
        checking, release = asyncio.Event(), asyncio.Event()
        fast_verify = core.hasher.verify

        async def slow_verify(plain: str, hashed: str, *, on_behalf_of: str | None = None) -> bool:
            checking.set()
            await release.wait()
            return await fast_verify(plain, hashed, on_behalf_of=on_behalf_of)

        monkeypatch.setattr(core.hasher, "verify", slow_verify)
        login = asyncio.create_task(core.container.login_user()(user.username, password))
        await checking.wait()
        try:
            me = await asyncio.wait_for(
                core.container.get_current_user()(user.principal()), timeout=0.2
            )
            assert me.id == user.id
        finally:
            release.set()
            await login


class TestRefreshTokens:
    async def logged_in(self, core: Core) -> tuple[Principal, TokenPair]:
        user, password = await core.sign_up()
        return user.principal(), await core.container.login_user()(user.username, password)

    async def test_without_rotation_the_token_is_kept_and_nothing_new_is_issued(
        self, core: Core
    ) -> None:
        principal, pair = await self.logged_in(core)
        session_before = core.session_of(pair.refresh)

        for _ in range(3):  # as a seed client does: the same refresh token every time
            refreshed = await core.container.refresh_tokens()(pair.refresh)
            assert refreshed.refresh is None
            assert core.tokens.read_access(refreshed.access) == principal
            assert refreshed.expires_in == 15 * 60

        assert core.session_of(pair.refresh) == session_before

    async def test_without_rotation_racing_refreshes_both_succeed(self, core: Core) -> None:
        _, pair = await self.logged_in(core)

        results = await asyncio.gather(
            core.container.refresh_tokens()(pair.refresh),
            core.container.refresh_tokens()(pair.refresh),
        )

        assert all(r.refresh is None for r in results)
        assert not core.session_of(pair.refresh).is_revoked

    async def test_without_rotation_a_password_change_or_deactivation_revokes(
        self, core: Core
    ) -> None:
        user, password = await core.sign_up()
        pair = await core.container.login_user()(user.username, password)
        await core.container.change_password()(user.principal(), password, "a whole new passphrase")
        with pytest.raises(AuthenticationFailed):
            await core.container.refresh_tokens()(pair.refresh)

        pair = await core.container.login_user()(user.username, "a whole new passphrase")
        core.deactivate(core.store.tables.users[user.id])
        with pytest.raises(AuthenticationFailed):
            await core.container.refresh_tokens()(pair.refresh)

    async def test_rotation_returns_a_new_pair(self, core: Core) -> None:
        principal, first = await self.logged_in(core)

        second = await core.rotating.refresh_tokens()(first.refresh)

        assert second.refresh is not None
        assert second.refresh != first.refresh
        assert core.tokens.read_access(second.access) == principal
        new_claims = core.tokens.read_refresh(second.refresh)
        old_claims = core.tokens.read_refresh(first.refresh)
        assert new_claims.session_id == old_claims.session_id
        assert new_claims.jti != old_claims.jti
        assert core.session_of(second.refresh).current_jti == new_claims.jti
        assert second.expires_in == 15 * 60

    async def test_chain_of_rotations(self, core: Core) -> None:
        principal, pair = await self.logged_in(core)

        token = pair.refresh
        for _ in range(3):
            refreshed = await core.rotating.refresh_tokens()(token)
            assert refreshed.refresh is not None
            token = refreshed.refresh

        assert core.tokens.read_access(refreshed.access) == principal

    async def test_reusing_a_spent_token_revokes_the_chain(self, core: Core) -> None:
        _, first = await self.logged_in(core)
        second = await core.rotating.refresh_tokens()(first.refresh)

        with pytest.raises(AuthenticationFailed) as reuse:
            await core.rotating.refresh_tokens()(first.refresh)
        assert reuse.value.message == BAD_REFRESH_TOKEN
        assert core.session_of(first.refresh).revoked_at == core.clock.now()

        assert second.refresh is not None
        with pytest.raises(AuthenticationFailed):
            await core.rotating.refresh_tokens()(
                second.refresh
            )  # the legitimate holder is cut off too

    async def test_reuse_does_not_touch_other_logins(self, core: Core) -> None:
        user, password = await core.sign_up()
        stolen = await core.container.login_user()(user.username, password)
        other_device = await core.container.login_user()(user.username, password)
        await core.rotating.refresh_tokens()(stolen.refresh)

        with pytest.raises(AuthenticationFailed):
            await core.rotating.refresh_tokens()(stolen.refresh)

        assert not core.session_of(other_device.refresh).is_revoked
        refreshed = await core.rotating.refresh_tokens()(other_device.refresh)
        assert core.tokens.read_access(refreshed.access).user_id == user.id

    async def test_two_racing_refreshes_one_wins_and_the_chain_dies(self, core: Core) -> None:
        _, pair = await self.logged_in(core)

        results = await asyncio.gather(
            core.rotating.refresh_tokens()(pair.refresh),
            core.rotating.refresh_tokens()(pair.refresh),
            return_exceptions=True,
        )

        winners = [r for r in results if isinstance(r, Refreshed)]
        losers = [r for r in results if isinstance(r, AuthenticationFailed)]
        assert (len(winners), len(losers)) == (1, 1)
        assert winners[0].refresh is not None
        with pytest.raises(AuthenticationFailed):
            await core.rotating.refresh_tokens()(winners[0].refresh)

    async def test_access_token_is_not_a_refresh_token(self, core: Core) -> None:
        _, pair = await self.logged_in(core)

        with pytest.raises(AuthenticationFailed) as caught:
            await core.container.refresh_tokens()(pair.access)

        assert caught.value.message == "Token is not a refresh token"

    async def test_garbage_refused(self, core: Core) -> None:
        with pytest.raises(AuthenticationFailed):
            await core.container.refresh_tokens()("not-a-token")

    async def test_revoked_session_refused(self, core: Core) -> None:
        principal, pair = await self.logged_in(core)
        await core.container.logout_user()(principal, pair.refresh)

        with pytest.raises(AuthenticationFailed) as caught:
            await core.container.refresh_tokens()(pair.refresh)

        assert caught.value.message == BAD_REFRESH_TOKEN

    async def test_unknown_session_refused(self, core: Core) -> None:
        user, _ = await core.sign_up()
        forged = core.tokens.issue_refresh(user.id, "no-such-session")

        with pytest.raises(AuthenticationFailed):
            await core.container.refresh_tokens()(forged.token)

    async def test_session_of_another_user_refused(self, core: Core) -> None:
        _, pair = await self.logged_in(core)
        intruder, _ = await core.sign_up()
        session_id = core.tokens.read_refresh(pair.refresh).session_id
        forged = core.tokens.issue_refresh(intruder.id, session_id)

        with pytest.raises(AuthenticationFailed):
            await core.container.refresh_tokens()(forged.token)

    async def test_inactive_user_refused(self, core: Core) -> None:
        user, password = await core.sign_up()
        pair = await core.container.login_user()(user.username, password)
        core.deactivate(user)

        with pytest.raises(AuthenticationFailed) as caught:
            await core.container.refresh_tokens()(pair.refresh)

        assert caught.value.message == BAD_REFRESH_TOKEN

    async def test_expired_refresh_token_refused(self, core: Core) -> None:
        user, password = await core.sign_up()
        core.clock.advance(-timedelta(days=8))
        pair = await core.container.login_user()(
            user.username, password
        )  # issued 8 days ago, lives 7

        with pytest.raises(AuthenticationFailed):
            await core.container.refresh_tokens()(pair.refresh)


class TestLogout:
    async def test_revokes_the_chain(self, core: Core) -> None:
        user, password = await core.sign_up()
        pair = await core.container.login_user()(user.username, password)

        await core.container.logout_user()(user.principal(), pair.refresh)

        assert core.session_of(pair.refresh).revoked_at == core.clock.now()
        with pytest.raises(AuthenticationFailed):
            await core.container.refresh_tokens()(pair.refresh)

    async def test_revokes_a_rotated_chain(self, core: Core) -> None:
        user, password = await core.sign_up()
        first = await core.container.login_user()(user.username, password)
        second = await core.rotating.refresh_tokens()(first.refresh)
        assert second.refresh is not None  # the chain's next token

        await core.container.logout_user()(
            user.principal(), first.refresh
        )  # any token of the chain will do

        with pytest.raises(AuthenticationFailed):
            await core.rotating.refresh_tokens()(second.refresh)

    async def test_twice_is_harmless(self, core: Core) -> None:
        user, password = await core.sign_up()
        pair = await core.container.login_user()(user.username, password)
        await core.container.logout_user()(user.principal(), pair.refresh)
        revoked_at = core.session_of(pair.refresh).revoked_at

        core.clock.advance(timedelta(seconds=-30))
        await core.container.logout_user()(user.principal(), pair.refresh)

        assert core.session_of(pair.refresh).revoked_at == revoked_at

    async def test_foreign_refresh_token_refused(self, core: Core) -> None:
        owner, password = await core.sign_up()
        pair = await core.container.login_user()(owner.username, password)
        other, _ = await core.sign_up()

        with pytest.raises(AuthenticationFailed) as caught:
            await core.container.logout_user()(other.principal(), pair.refresh)

        assert caught.value.message == BAD_REFRESH_TOKEN
        assert not core.session_of(pair.refresh).is_revoked
        assert core.tokens.read_access(
            (await core.container.refresh_tokens()(pair.refresh)).access
        ) == (owner.principal())

    async def test_token_naming_another_users_session_refused(self, core: Core) -> None:
        owner, password = await core.sign_up()
        pair = await core.container.login_user()(owner.username, password)
        intruder, _ = await core.sign_up()
        session_id = core.tokens.read_refresh(pair.refresh).session_id
        forged = core.tokens.issue_refresh(intruder.id, session_id)

        with pytest.raises(AuthenticationFailed):
            await core.container.logout_user()(intruder.principal(), forged.token)

        assert not core.session_of(pair.refresh).is_revoked

    async def test_access_token_refused(self, core: Core) -> None:
        user, password = await core.sign_up()
        pair = await core.container.login_user()(user.username, password)

        with pytest.raises(AuthenticationFailed):
            await core.container.logout_user()(user.principal(), pair.access)

        assert not core.session_of(pair.refresh).is_revoked

    async def test_unknown_session_refused(self, core: Core) -> None:
        user, _ = await core.sign_up()
        forged = core.tokens.issue_refresh(user.id, "no-such-session")

        with pytest.raises(AuthenticationFailed):
            await core.container.logout_user()(user.principal(), forged.token)


class TestGetCurrentUser:
    async def test_returns_the_callers_account(self, core: Core) -> None:
        user, _ = await core.sign_up(username="carol")
        await core.sign_up()

        me = await core.container.get_current_user()(user.principal())

        assert me == user
        assert me.username == "carol"

    async def test_unknown_user(self, core: Core) -> None:
        with pytest.raises(AuthenticationFailed):
            await core.container.get_current_user()(Principal(user_id=424242))

    async def test_inactive_user(self, core: Core) -> None:
        user, _ = await core.sign_up()
        core.deactivate(user)

        with pytest.raises(AuthenticationFailed):
            await core.container.get_current_user()(user.principal())


class TestAccountChanges:
    async def test_change_password_revokes_every_chain(self, core: Core) -> None:
        user, password = await core.sign_up()
        first = await core.container.login_user()(user.username, password)
        second = await core.container.login_user()(user.username, password)
        change = core.container.change_password()

        await change(user.principal(), password, "another fine passphrase")

        for pair in (first, second):
            with pytest.raises(AuthenticationFailed):
                await core.container.refresh_tokens()(pair.refresh)
        assert core.store.tables.users[user.id].password_hash != user.password_hash

    async def test_deactivation_needs_an_administrator(self, core: Core) -> None:
        user, _ = await core.sign_up()
        other, _ = await core.sign_up()
        set_active = core.container.set_user_active()

        with pytest.raises(Forbidden):
            await set_active(other.principal(), user.id, active=False)
        assert core.store.tables.users[user.id].is_active

        admin = Principal(user_id=other.id, is_admin=True)
        changed = await set_active(admin, user.id, active=False)
        assert changed.is_active is False
        with pytest.raises(NotFound):
            await set_active(admin, 10**9, active=False)

"""Use cases of accounts and sign-in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from healthcare.application.audit import Auditor
from healthcare.application.ports import (
    AccessTokenRevocations,
    Clock,
    LoginThrottle,
    PasswordHasher,
    RefreshClaims,
    TokenService,
    UnitOfWork,
    throttle_key,
)
from healthcare.application.users import refuse_unless_may_manage, replace_password
from healthcare.domain.audit import NOWHERE, AuditAction, AuditOutcome, Origin, ResourceType
from healthcare.domain.entities import NewUser, Principal, RefreshSession, User
from healthcare.domain.errors import (
    ACCOUNT_GONE,
    AuthenticationFailed,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from healthcare.domain.rules import (
    contains_nul,
    password_errors,
    password_too_long,
    validate_registration,
)

BAD_CREDENTIALS = "No active account found with the given credentials"
BAD_REFRESH_TOKEN = "Token is invalid or expired"  # noqa: S105 - a message, not a secret
USER = ResourceType.USER


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class Refreshed:
    """A refresh's result: ``refresh`` is the chain's next token when tokens rotate, and
    None when the client keeps the one it has."""

    access: str
    expires_in: int
    refresh: str | None = None


class RegisterUser:
    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher, auditor: Auditor) -> None:
        self._uow = uow
        self._hasher = hasher
        self._audit = auditor

    async def __call__(
        self,
        username: str | None,
        email: str,
        password: str,
        *,
        is_staff: bool = False,
        is_superuser: bool = False,
        origin: Origin = NOWHERE,
    ) -> User:
        """Without a username, the email is the username (as the seed's other DRF
        implementation does), held to the same rules."""
        async with self._audit.scope(AuditAction.REGISTER, origin, None, USER) as audit:
            from_email = username is None
            username = email if username is None else username
            validate_registration(username, email, password, username_from_email=from_email)
            party = f"client:{origin.client}" if origin.client else None
            password_hash = await self._hasher.hash(password, on_behalf_of=party)
            async with self._uow as uow:
                # The repository refuses a username or an email that is (or looks like)
                # another account's username or email, whichever came first.
                user = await uow.users.add(
                    NewUser(username, email, password_hash, is_staff, is_superuser)
                )
                await audit.stage(uow, created_id=user.id)
                await uow.commit()
        return user


class Login:
    """Check credentials and open a new refresh-token chain."""

    def __init__(
        self,
        uow: UnitOfWork,
        hasher: PasswordHasher,
        tokens: TokenService,
        clock: Clock,
        *,
        throttle: LoginThrottle,
        auditor: Auditor,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._throttle = throttle
        self._audit = auditor

    async def __call__(
        self,
        username_or_email: str,
        password: str,
        origin: Origin = NOWHERE,
        *,
        staff_only: bool = False,
    ) -> TokenPair:
        """``staff_only``: only staff and superusers may sign in (the admin); anyone else is
        refused as a wrong password is, and counted and audited as one."""
        client = origin.client or "unknown"
        async with self._audit.scope(AuditAction.LOGIN, origin, None, USER) as audit:
            user = None
            if not contains_nul(username_or_email):  # no account can have such a name
                async with self._uow as uow:
                    user = await uow.users.find_by_login(username_or_email)
            # The account attacked is recorded, never the name typed: it may be a password.
            audit.resource_id = user.id if user is not None else None
            counted_as = throttle_key(audit.resource_id, username_or_email)
            await self._throttle.admit(counted_as, client)
            # bcrypt runs outside any transaction: it must not hold a connection or a lock.
            if user is None or password_too_long(password):
                # Same cost and same answer as a wrong password.
                await self._hasher.waste_time(password[:72], on_behalf_of=counted_as)
                await self._throttle.failed(client)
                raise AuthenticationFailed(BAD_CREDENTIALS)
            checked = await self._hasher.verify(
                password, user.password_hash, on_behalf_of=counted_as
            )
            if not checked or not user.is_active or (staff_only and not user.is_admin):
                await self._throttle.failed(client)
                raise AuthenticationFailed(BAD_CREDENTIALS)
            await self._throttle.succeeded(counted_as)
            audit.user_id = user.id
            async with self._uow as uow:
                session_id = uuid.uuid4().hex
                refresh = self._tokens.issue_refresh(user.id, session_id)
                await uow.refresh_sessions.add(
                    RefreshSession(session_id, user.id, refresh.jti, self._clock.now())
                )
                await audit.stage(uow)
                await uow.commit()
        access = self._tokens.issue_access(user.principal())
        return TokenPair(access.token, refresh.token, access.expires_in)


class RefreshTokens:
    """A new access token for a live refresh token.

    By default the refresh token stays the chain's token until it expires or its chain is
    revoked (logout, a password change, deactivation), as simplejwt does. With ``rotate``,
    each refresh spends it for the chain's next one, and spending one twice revokes the whole
    chain (reuse detection).
    """

    def __init__(
        self,
        uow: UnitOfWork,
        tokens: TokenService,
        clock: Clock,
        auditor: Auditor,
        *,
        rotate: bool = False,
    ) -> None:
        self._uow = uow
        self._tokens = tokens
        self._clock = clock
        self._audit = auditor
        self._rotate = rotate

    async def __call__(self, refresh_token: str, origin: Origin = NOWHERE) -> Refreshed:
        async with self._audit.scope(AuditAction.REFRESH, origin, None, USER) as audit:
            claims = self._tokens.read_refresh(refresh_token)
            # The signature proves who the token was issued to.
            audit.user_id = audit.resource_id = claims.user_id
            following = (
                self._tokens.issue_refresh(claims.user_id, claims.session_id)
                if self._rotate
                else None
            )
            async with self._uow as uow:
                # The usual case in one statement, with its audit event: a live chain of an
                # active account, whose current token is this one. Without rotation the
                # chain "moves" to the token it has, which proves the same.
                audit.commit_with_next_write(uow)
                user = await uow.refresh_sessions.rotate(
                    claims.session_id,
                    claims.user_id,
                    claims.jti,
                    claims.jti if following is None else following.jti,
                )
                if user is None:
                    if await self._spent_again(uow, claims):
                        # A spent token came back (or lost a race with its twin): assume
                        # theft, and end the chain.
                        await uow.refresh_sessions.revoke(claims.session_id, self._clock.now())
                        await audit.stage(uow, AuditOutcome.FAILED, AuditAction.REFRESH_REUSE)
                        await uow.commit()
                    raise AuthenticationFailed(BAD_REFRESH_TOKEN)
                await uow.commit()
        access = self._tokens.issue_access(user.principal())
        return Refreshed(
            access.token, access.expires_in, None if following is None else following.token
        )

    @staticmethod
    async def _spent_again(uow: UnitOfWork, claims: RefreshClaims) -> bool:
        """Whether a token that did not rotate was one its live chain has moved past.

        Anything else (an unknown, revoked or foreign chain, or an account that is gone or
        inactive) is simply refused.
        """
        session = await uow.refresh_sessions.get(claims.session_id)
        if session is None or session.is_revoked or session.user_id != claims.user_id:
            return False
        user = await uow.users.get(claims.user_id)
        return user is not None and user.is_active and session.current_jti != claims.jti


class Logout:
    """Revoke the chain a refresh token belongs to. Only its owner may do so."""

    def __init__(
        self, uow: UnitOfWork, tokens: TokenService, clock: Clock, auditor: Auditor
    ) -> None:
        self._uow = uow
        self._tokens = tokens
        self._clock = clock
        self._audit = auditor

    async def __call__(self, principal: Principal, refresh_token: str) -> None:
        action = AuditAction.LOGOUT
        async with self._audit.of(principal, action, USER, principal.user_id) as audit:
            claims: RefreshClaims = self._tokens.read_refresh(refresh_token)
            if claims.user_id != principal.user_id:
                raise AuthenticationFailed(BAD_REFRESH_TOKEN)
            async with self._uow as uow:
                session = await uow.refresh_sessions.get(claims.session_id)
                if session is None or session.user_id != principal.user_id:
                    raise AuthenticationFailed(BAD_REFRESH_TOKEN)
                if not session.is_revoked:
                    await uow.refresh_sessions.revoke(session.id, self._clock.now())
                    await audit.stage(uow)
                    await uow.commit()


class GetCurrentUser:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, principal: Principal) -> User:
        async with self._uow as uow:
            user = await uow.users.get(principal.user_id)
        if user is None or not user.is_active:
            raise AuthenticationFailed(ACCOUNT_GONE)
        return user


class ChangePassword:
    """Change one's own password; every login's refresh chain is revoked with the old one.

    Checking the current password is a guessing oracle as good as sign-in, so it is held
    to the same brakes, on the same count (the account's, and the client's failures).
    """

    def __init__(
        self,
        uow: UnitOfWork,
        hasher: PasswordHasher,
        clock: Clock,
        auditor: Auditor,
        *,
        throttle: LoginThrottle,
        revocations: AccessTokenRevocations,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._audit = auditor
        self._throttle = throttle
        self._revocations = revocations

    async def __call__(self, principal: Principal, current: str, new: str) -> None:
        action = AuditAction.PASSWORD_CHANGE
        async with self._audit.of(principal, action, USER, principal.user_id) as audit:
            async with self._uow as uow:
                user = await uow.users.get(principal.user_id)
            if user is None or not user.is_active:
                raise AuthenticationFailed(ACCOUNT_GONE)
            client = principal.origin.client or "unknown"
            counted_as = throttle_key(user.id, user.username)
            await self._throttle.admit(counted_as, client)
            if password_too_long(current) or not await self._hasher.verify(
                current, user.password_hash, on_behalf_of=counted_as
            ):
                await self._throttle.failed(client)
                raise InvalidInput.single("current_password", "is not your current password")
            await self._throttle.succeeded(counted_as)
            if errors := password_errors(new, user.username):
                raise InvalidInput([FieldError("new_password", e.message) for e in errors])
            await replace_password(
                self._uow,
                self._hasher,
                self._clock,
                audit,
                self._revocations,
                user_id=user.id,
                password=new,
                on_behalf_of=counted_as,
            )


class SetUserActive:
    """An administrator deactivates (or reactivates) an account.

    A deactivated user cannot sign in or refresh; their refresh chains and their access
    tokens are revoked at once (on other workers within a second).
    """

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        auditor: Auditor,
        *,
        revocations: AccessTokenRevocations,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = auditor
        self._revocations = revocations

    async def __call__(self, principal: Principal, user_id: int, active: bool) -> User:
        action = AuditAction.USER_ACTIVATE if active else AuditAction.USER_DEACTIVATE
        async with self._audit.of(principal, action, USER, user_id) as audit:
            if not principal.is_admin:
                raise Forbidden("Only an administrator may change an account's status")
            if user_id == principal.user_id and not active:
                raise InvalidInput.single("user", "administrators cannot deactivate themselves")
            now = self._clock.now()
            async with self._uow as uow:
                target = await uow.users.get(user_id)
                if target is not None:
                    await refuse_unless_may_manage(uow.users, principal, target)
                user = await uow.users.set_active(user_id, active)
                if user is None:
                    raise NotFound("User", user_id)
                if not active:
                    await uow.refresh_sessions.revoke_all_for_user(user_id, now)
                await audit.stage(uow)
                await uow.commit()
            if not active:
                self._revocations.revoke_before(user_id, now)
        return user

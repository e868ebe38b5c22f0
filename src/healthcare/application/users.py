"""Use cases of account management by an administrator (the admin interface, the command line).

Every one is audited with the administrator as the actor and the account as the resource.
Only administrators (staff or superusers) may use them, and staff who are not superusers may
not change another administrator's account (``refuse_unless_may_manage``).
"""

from __future__ import annotations

from healthcare.application.audit import Auditor, AuditScope
from healthcare.application.paging import Page, PageRequest
from healthcare.application.ports import (
    AccessTokenRevocations,
    Clock,
    PasswordHasher,
    UnitOfWork,
    UserRepository,
)
from healthcare.domain.audit import AuditAction, ResourceType
from healthcare.domain.entities import NewUser, Principal, User
from healthcare.domain.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from healthcare.domain.listing import NO_USER_FILTER, UserFilter
from healthcare.domain.rules import email_errors, password_errors, validate_registration

USER = ResourceType.USER
NOT_AN_ADMINISTRATOR = "Only an administrator may manage accounts"
NOT_A_SUPERUSER = "Only a superuser may change another administrator's account"


def refuse_unless_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden(NOT_AN_ADMINISTRATOR)


async def refuse_unless_may_manage(
    users: UserRepository, principal: Principal, target: User
) -> None:
    """Administrators manage plain accounts and their own; only a superuser manages another
    administrator's. The actor's superuser flag is read from the store, not the token."""
    refuse_unless_admin(principal)
    if target.is_admin and target.id != principal.user_id:
        actor = await users.get(principal.user_id)
        if actor is None or not actor.is_active or not actor.is_superuser:
            raise Forbidden(NOT_A_SUPERUSER)


async def replace_password(
    uow: UnitOfWork,
    hasher: PasswordHasher,
    clock: Clock,
    audit: AuditScope,
    revocations: AccessTokenRevocations,
    *,
    user_id: int,
    password: str,
    on_behalf_of: str | None = None,
) -> None:
    """Store ``password``'s hash (computed outside any transaction) and revoke every refresh
    chain and access token of the account issued before, audited in the same transaction."""
    password_hash = await hasher.hash(password, on_behalf_of=on_behalf_of)
    now = clock.now()
    async with uow:
        if await uow.users.set_password_hash(user_id, password_hash) is None:
            raise NotFound("User", user_id)
        await uow.refresh_sessions.revoke_all_for_user(user_id, now)
        await audit.stage(uow)
        await uow.commit()
    revocations.revoke_before(user_id, now)


async def _managed(users: UserRepository, principal: Principal, user_id: int) -> User:
    """The account ``user_id``, once the principal may change it."""
    target = await users.get(user_id)
    if target is None:
        raise NotFound("User", user_id)
    await refuse_unless_may_manage(users, principal, target)
    return target


class ListUsers:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self, principal: Principal, page: PageRequest, where: UserFilter = NO_USER_FILTER
    ) -> Page[User]:
        async with self._audit.of(principal, AuditAction.USER_LIST, USER):
            refuse_unless_admin(principal)
            async with self._uow as uow:
                return await uow.users.list(page, where)


class GetUser:
    """One account, by id or (``login``) by username or email."""

    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, user_id: int) -> User:
        async with self._audit.of(principal, AuditAction.USER_READ, USER, user_id):
            refuse_unless_admin(principal)
            async with self._uow as uow:
                user = await uow.users.get(user_id)
            if user is None:
                raise NotFound("User", user_id)
            return user

    async def login(self, principal: Principal, username_or_email: str) -> User:
        async with self._audit.of(principal, AuditAction.USER_READ, USER) as audit:
            refuse_unless_admin(principal)
            async with self._uow as uow:
                user = await uow.users.find_by_login(username_or_email)
            if user is None:
                raise NotFound("User", repr(username_or_email))
            audit.resource_id = user.id
            return user


class CreateUser:
    """An administrator opens an account, held to registration's rules; only a superuser may
    open an administrator's account."""

    def __init__(self, uow: UnitOfWork, hasher: PasswordHasher, auditor: Auditor) -> None:
        self._uow = uow
        self._hasher = hasher
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        username: str,
        email: str,
        password: str,
        *,
        is_staff: bool = False,
        is_superuser: bool = False,
    ) -> User:
        async with self._audit.of(principal, AuditAction.USER_CREATE, USER) as audit:
            refuse_unless_admin(principal)
            validate_registration(username, email, password)
            async with self._uow as uow:
                if is_staff or is_superuser:
                    actor = await uow.users.get(principal.user_id)
                    if actor is None or not actor.is_active or not actor.is_superuser:
                        raise Forbidden("Only a superuser may create an administrator")
                # As at registration: no username may be someone else's email.
                if await uow.users.find_by_login(username) is not None:
                    raise Conflict("A user with that username already exists", "username")
            password_hash = await self._hasher.hash(password)  # outside any transaction
            async with self._uow as uow:
                # The repository claims the login names too (more than one write), so the
                # audit event is staged beside them rather than carried by one final write.
                user = await uow.users.add(
                    NewUser(username, email, password_hash, is_staff, is_superuser)
                )
                await audit.stage(uow, created_id=user.id)
                await uow.commit()
        return user


class SetUserStaff:
    """Grant or withdraw staff status. Administrators cannot withdraw their own."""

    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, user_id: int, staff: bool) -> User:
        action = AuditAction.USER_SET_STAFF
        async with self._audit.of(principal, action, USER, user_id) as audit:
            refuse_unless_admin(principal)
            if user_id == principal.user_id and not staff:
                raise InvalidInput.single("is_staff", "administrators cannot remove their own")
            async with self._uow as uow:
                await _managed(uow.users, principal, user_id)
                audit.commit_with_next_write(uow)
                user = await uow.users.set_staff(user_id, staff)
                if user is None:
                    raise NotFound("User", user_id)
                await uow.commit()
        return user


class SetUserEmail:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, user_id: int, email: str) -> User:
        action = AuditAction.USER_SET_EMAIL
        async with self._audit.of(principal, action, USER, user_id) as audit:
            refuse_unless_admin(principal)
            if errors := email_errors(email):
                raise InvalidInput(errors)
            async with self._uow as uow:
                await _managed(uow.users, principal, user_id)
                user = await uow.users.set_email(user_id, email)  # (a savepoint: staged)
                if user is None:
                    raise NotFound("User", user_id)
                await audit.stage(uow)
                await uow.commit()
        return user


class SetUserPassword:
    """An administrator sets an account's password, held to the password rules; as when the
    user changes it, every refresh chain of the account is revoked."""

    def __init__(
        self,
        uow: UnitOfWork,
        hasher: PasswordHasher,
        clock: Clock,
        auditor: Auditor,
        *,
        revocations: AccessTokenRevocations,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._audit = auditor
        self._revocations = revocations

    async def __call__(self, principal: Principal, user_id: int, password: str) -> None:
        action = AuditAction.USER_SET_PASSWORD
        async with self._audit.of(principal, action, USER, user_id) as audit:
            refuse_unless_admin(principal)
            async with self._uow as uow:
                target = await _managed(uow.users, principal, user_id)
            if errors := password_errors(password, target.username):
                raise InvalidInput([FieldError("password", e.message) for e in errors])
            await replace_password(
                self._uow,
                self._hasher,
                self._clock,
                audit,
                self._revocations,
                user_id=user_id,
                password=password,
            )

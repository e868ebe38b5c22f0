"""Who acts, for entrypoints that have no sign-in (the command line).

What an administrator then does to any owner's records goes through the owner-scoped use
cases (patients.py, mappings.py) with ``owner_id`` or ``every_owner``, as the admin
interface does: one use case per thing a user does, whichever entrypoint drives it.
"""

from __future__ import annotations

from healthcare.application.ports import UnitOfWork
from healthcare.domain.audit import Origin
from healthcare.domain.entities import Principal
from healthcare.domain.errors import Forbidden


class IdentifyAdministrator:
    """The principal of an active administrator named by username or email: who acts, for
    entrypoints that have no sign-in (the command line's ``--as``). Not audited itself;
    every use case it then calls is."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, username_or_email: str, origin: Origin) -> Principal:
        async with self._uow as uow:
            user = await uow.users.find_by_login(username_or_email)
        if user is None or not user.is_active or not user.is_admin:
            raise Forbidden(f"{username_or_email!r} is not an active administrator")
        return Principal(user.id, is_admin=True, origin=origin)

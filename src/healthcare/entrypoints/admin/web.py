"""What every admin page shares: the visit (session, CSRF, rendering) and its errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Request, Response
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency, Provide
from litestar.response import Redirect

from healthcare.application.auth import GetCurrentUser
from healthcare.application.ports import Clock, TokenService
from healthcare.domain.entities import Principal, User
from healthcare.domain.errors import AuthenticationFailed, DomainError, FieldError, InvalidInput
from healthcare.entrypoints.admin.session import COOKIE, PATH, AdminSession, SessionCodec
from healthcare.entrypoints.http.origin import request_origin

PAGE_SIZE = 25
HTML = "text/html; charset=utf-8"
_templates = Environment(
    loader=PackageLoader("healthcare.entrypoints.admin", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Pages of the admin are never framed (clickjacking) and never cached.
_PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "same-origin",
}


class NotSignedIn(Exception):
    """No live admin session: the visitor is sent to the sign-in page."""


class CsrfRefused(Exception):
    """A form came without this session's token."""


@dataclass
class Visit:
    """One request to the admin: its session (renewed on every answer), who is signed in."""

    request: Request[Any, Any, Any]
    codec: SessionCodec
    tokens: TokenService
    session: AdminSession
    now: datetime
    user: User | None = None
    _form: FormMultiDict | None = field(default=None, repr=False)

    @property
    def principal(self) -> Principal:
        if self.user is None:
            raise NotSignedIn
        return Principal(self.user.id, self.user.is_admin, request_origin(self.request))

    @property
    def csrf_token(self) -> str:
        return self.codec.csrf_token(self.session)

    async def form(self) -> FormMultiDict:
        """The posted form, once its CSRF token is checked."""
        if self._form is None:
            form = await self.request.form()
            if not self.codec.csrf_ok(self.session, form.get("csrf_token")):
                raise CsrfRefused
            self._form = form
        return self._form

    def answer(self, response: Response[Any]) -> Response[Any]:
        """``response`` with the session cookie renewed (its idle time starts again)."""
        response.set_cookie(
            COOKIE,
            self.codec.dump(self.session.seen(self.now)),
            path=PATH,
            httponly=True,
            samesite="lax",
            secure=self.request.url.scheme == "https",
        )
        response.headers.update(_PAGE_HEADERS)
        return response

    def page(self, template: str, *, status: int = 200, **context: Any) -> Response[Any]:
        html = _templates.get_template(template).render(
            visit=self, user=self.user, csrf_token=self.csrf_token, **context
        )
        return self.answer(Response(html, status_code=status, media_type=HTML))

    async def listing(
        self, template: str, load: Callable[[], Awaitable[Any]], **context: Any
    ) -> Response[Any]:
        """A list's page; bad filters are shown by their fields (400), as the API names them."""
        try:
            found = await load()
        except InvalidInput as invalid:
            errors = field_errors(invalid)
            return self.page(template, status=400, page=None, errors=errors, **context)
        return self.page(template, page=found, errors={}, **context)

    def redirect(self, url: str) -> Response[Any]:
        return self.answer(Redirect(url, status_code=303))

    def url(self, **changes: Any) -> str:
        """This page's URL with some query parameters changed (None removes one)."""
        params = {k: v for k, v in self.request.query_params.items() if k not in changes}
        params |= {k: v for k, v in changes.items() if v is not None and v != ""}
        query = urlencode(params)
        return f"{self.request.url.path}?{query}" if query else self.request.url.path


def visit_dependencies(
    codec: SessionCodec, tokens: TokenService, clock: Clock
) -> dict[str, Provide]:
    """``visit``: anyone's request, with a session (a new one if it had none or it lapsed);
    ``admin``: a visit whose session is signed in, checked against the account now."""

    def visit(request: Request[Any, Any, Any]) -> Visit:
        now = clock.now()
        session = codec.load(request.cookies.get(COOKIE), now) or AdminSession.anonymous(now)
        return Visit(request, codec, tokens, session, now)

    async def admin(
        visit: NamedDependency[Visit], get_current_user: NamedDependency[GetCurrentUser]
    ) -> Visit:
        session = visit.session
        if session.user_id is None:
            raise NotSignedIn
        try:
            user = await get_current_user(Principal(session.user_id))
        except AuthenticationFailed as gone:  # deleted or deactivated since
            raise NotSignedIn from gone
        if not user.is_admin or codec.stamp(user.password_hash) != session.stamp:
            raise NotSignedIn  # no longer staff, or the password changed
        visit.user = user
        return visit

    return {
        "visit": Provide(visit, sync_to_thread=False),
        "admin": Provide(admin),
    }


def field_errors(error: DomainError) -> dict[str, list[str]]:
    """A use case's refusal as messages per form field ("" for the form as a whole)."""
    if isinstance(error, InvalidInput):
        found: dict[str, list[str]] = {}
        for item in error.errors:
            found.setdefault(item.field, []).append(item.message)
        return found
    return {getattr(error, "field", None) or "": [error.message]}


def form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def optional_text(form: Mapping[str, Any], name: str) -> str | None:
    """An empty field of a form is an absent value, as in the API's forms."""
    return form_text(form, name).strip() or None


def whole_number(
    raw: str | None, name: str, errors: list[FieldError], *, required: bool = True
) -> int | None:
    if raw is None or not raw.strip():
        if required:
            errors.append(FieldError(name, "is required"))
        return None
    try:
        return int(raw.strip())
    except ValueError:
        errors.append(FieldError(name, "must be a whole number"))
        return None


def page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or "1"))
    except ValueError:
        return 1

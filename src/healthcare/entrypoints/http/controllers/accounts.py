"""Registration, sign-in and tokens, under both of the seed service's route sets."""

from __future__ import annotations

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from healthcare.application.auth import (
    GetCurrentUser,
    Login,
    Logout,
    RefreshTokens,
    RegisterUser,
)
from healthcare.domain.entities import Principal
from healthcare.domain.errors import InvalidInput
from healthcare.entrypoints.http.openapi import BEARER, problems
from healthcare.entrypoints.http.schemas import (
    LoginIn,
    RefreshIn,
    RegisterIn,
    TokenPairOut,
    UserOut,
)

TAGS = ["auth"]


@post(
    ["/api/auth/register", "/api/register"],
    summary="Create an account",
    tags=TAGS,
    responses=problems(400, 409),
)
async def register(
    data: JSONBody[RegisterIn], register_user: NamedDependency[RegisterUser]
) -> UserOut:
    user = await register_user(data.username, data.email, data.password)
    return UserOut.of(user)


@post(
    ["/api/auth/login", "/api/token"],
    status_code=HTTP_200_OK,
    summary="Sign in with the username (or email) and password",
    tags=TAGS,
    responses=problems(400, 401),
)
async def login(data: JSONBody[LoginIn], login_user: NamedDependency[Login]) -> TokenPairOut:
    identifier = data.username if data.username is not None else data.email
    if identifier is None:
        raise InvalidInput.single("username", "is required (the username or the email)")
    pair = await login_user(identifier, data.password)
    return TokenPairOut(pair.access, pair.refresh, pair.expires_in)


@post(
    ["/api/auth/token/refresh", "/api/token/refresh"],
    status_code=HTTP_200_OK,
    summary="Spend a refresh token for a new pair",
    tags=TAGS,
    responses=problems(400, 401),
)
async def refresh(
    data: JSONBody[RefreshIn], refresh_tokens: NamedDependency[RefreshTokens]
) -> TokenPairOut:
    pair = await refresh_tokens(data.refresh)
    return TokenPairOut(pair.access, pair.refresh, pair.expires_in)


@post(
    "/api/auth/logout",
    status_code=HTTP_204_NO_CONTENT,
    security=BEARER,
    summary="Revoke the refresh chain of a login",
    tags=TAGS,
    responses=problems(400, 401),
)
async def logout(
    data: JSONBody[RefreshIn],
    principal: NamedDependency[Principal],
    logout_user: NamedDependency[Logout],
) -> None:
    await logout_user(principal, data.refresh)


@get(
    "/api/auth/me",
    security=BEARER,
    summary="The signed-in user",
    tags=TAGS,
    responses=problems(401),
)
async def me(
    principal: NamedDependency[Principal], get_current_user: NamedDependency[GetCurrentUser]
) -> UserOut:
    return UserOut.of(await get_current_user(principal))


HANDLERS = [register, login, refresh, logout, me]

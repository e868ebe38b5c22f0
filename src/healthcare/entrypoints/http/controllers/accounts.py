"""Registration, sign-in and tokens, under both of the seed service's route sets."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from healthcare.application.auth import (
    ChangePassword,
    GetCurrentUser,
    Login,
    Logout,
    RefreshTokens,
    RegisterUser,
    SetUserActive,
)
from healthcare.domain.entities import Principal
from healthcare.domain.errors import InvalidInput
from healthcare.entrypoints.http.bodies import BodyOf
from healthcare.entrypoints.http.openapi import BEARER, problems
from healthcare.entrypoints.http.origin import request_origin
from healthcare.entrypoints.http.schemas import (
    MAX_ID,
    LoginIn,
    PasswordChangeIn,
    RefreshedOut,
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
    responses=problems(400, 409, 429),
)
async def register(
    request: Request[Any, Any, Any],
    data: BodyOf[RegisterIn],
    register_user: NamedDependency[RegisterUser],
) -> UserOut:
    origin = request_origin(request)
    user = await register_user(data.chosen_username, data.email, data.password, origin=origin)
    return UserOut.of(user)


@post(
    ["/api/auth/login", "/api/token"],
    status_code=HTTP_200_OK,
    summary="Sign in with the username (or email) and password",
    tags=TAGS,
    responses=problems(400, 401, 429),
)
async def login(
    request: Request[Any, Any, Any],
    data: BodyOf[LoginIn],
    login_user: NamedDependency[Login],
) -> TokenPairOut:
    identifier = data.identifier
    if identifier is None:
        raise InvalidInput.single("username", "is required (the username or the email)")
    pair = await login_user(identifier, data.password, request_origin(request))
    return TokenPairOut(pair.access, pair.refresh, pair.expires_in)


@post(
    ["/api/auth/token/refresh", "/api/token/refresh"],
    status_code=HTTP_200_OK,
    summary="A new access token for a refresh token (and its successor when tokens rotate)",
    tags=TAGS,
    responses=problems(400, 401, 429),
)
async def refresh(
    request: Request[Any, Any, Any],
    data: BodyOf[RefreshIn],
    refresh_tokens: NamedDependency[RefreshTokens],
) -> RefreshedOut:
    refreshed = await refresh_tokens(data.refresh, request_origin(request))
    return RefreshedOut(refreshed.access, refreshed.expires_in, "Bearer", refreshed.refresh)


@post(
    "/api/auth/logout",
    status_code=HTTP_204_NO_CONTENT,
    security=BEARER,
    summary="Revoke the refresh chain of a login",
    tags=TAGS,
    responses=problems(400, 401),
)
async def logout(
    data: BodyOf[RefreshIn],
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


@post(
    "/api/auth/password",
    status_code=HTTP_204_NO_CONTENT,
    security=BEARER,
    summary="Change your password (signs out every login)",
    tags=TAGS,
    responses=problems(400, 401, 429),
)
async def change_password(
    data: BodyOf[PasswordChangeIn],
    principal: NamedDependency[Principal],
    change_password: NamedDependency[ChangePassword],
) -> None:
    await change_password(principal, data.current_password, data.new_password)


UserId = Annotated[int, Parameter(gt=0, le=MAX_ID, description="The user's id")]


@post(
    "/api/users/{user_id:int}/deactivate",
    status_code=HTTP_200_OK,
    security=BEARER,
    summary="Deactivate an account (administrators only)",
    tags=["users"],
    responses=problems(400, 401, 403, 404),
)
async def deactivate_user(
    user_id: UserId,
    principal: NamedDependency[Principal],
    set_user_active: NamedDependency[SetUserActive],
) -> UserOut:
    return UserOut.of(await set_user_active(principal, user_id, active=False))


@post(
    "/api/users/{user_id:int}/activate",
    status_code=HTTP_200_OK,
    security=BEARER,
    summary="Reactivate an account (administrators only)",
    tags=["users"],
    responses=problems(400, 401, 403, 404),
)
async def activate_user(
    user_id: UserId,
    principal: NamedDependency[Principal],
    set_user_active: NamedDependency[SetUserActive],
) -> UserOut:
    return UserOut.of(await set_user_active(principal, user_id, active=True))


# Registration and refresh are limited per client address (see app.py).
THROTTLED_HANDLERS = [register, refresh]
HANDLERS = [login, logout, me, change_password, deactivate_user, activate_user]

"""The admin web interface at /admin/: sign-in, the session, CSRF, and every view's forms.

Each page is fetched as a browser would (cookies, form posts, no redirect followed), on both
databases. What the admin writes is checked through the API and the audit trail.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.admin.session import COOKIE
from healthcare.entrypoints.container import Container, build_container
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import (
    PASSWORD,
    Account,
    AdminBrowser,
    create_doctor,
    create_patient,
    serving,
    sign_up,
    unique,
)
from tests.unit.fakes import FixedClock

Client = AsyncTestClient[Litestar]
_ERRORS = re.compile(r'<ul class="errors"><li>(.*?)</li>')
BAD_CREDENTIALS = "No active account found with the given credentials"


@pytest.fixture
async def browser(client: Client) -> AsyncIterator[AdminBrowser]:
    client.cookies.clear()
    yield AdminBrowser(client)
    client.cookies.clear()


@pytest.fixture
async def signed_in(browser: AdminBrowser, admin: Account) -> AdminBrowser:
    response = await browser.sign_in(admin.username)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin/"
    return browser


async def make_staff(container: Container, *, superuser: bool = False) -> Account:
    username = unique("staff")
    user = await container.register_user()(
        username, f"{username}@example.org", PASSWORD, is_staff=True, is_superuser=superuser
    )
    return Account(user.id, username, f"{username}@example.org", PASSWORD, "", "")


async def events(client: Client, admin: Account, **filters: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/audit/", params=filters, headers=admin.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def field_messages(response: httpx.Response) -> list[str]:
    return _ERRORS.findall(response.text)


# Signing in ------------------------------------------------------------------------------


async def test_pages_need_a_session(browser: AdminBrowser) -> None:
    for path in ("/admin/", "/admin/patients", "/admin/users", "/admin/audit"):
        response = await browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/admin/login"


async def test_an_administrator_signs_in_and_out(
    browser: AdminBrowser, admin: Account, client: Client
) -> None:
    page = await browser.get("/admin/login")
    assert page.status_code == 200
    assert 'name="password"' in page.text
    signed = await browser.sign_in(admin.username)
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    home = await browser.get("/admin/")
    assert home.status_code == 200
    assert admin.username in home.text
    assert home.headers["x-frame-options"] == "DENY"
    trail = await events(client, admin, user=admin.id, action="auth.login", limit=1)
    assert trail[0]["outcome"] == "success"
    assert trail[0]["client"] == "testclient"

    out = await browser.post("/admin/logout", {})
    assert out.status_code == 303
    assert out.headers["location"] == "/admin/login"
    assert (await browser.get("/admin/")).status_code == 303  # the session is gone


async def test_the_cookie_is_secure_over_https(browser: AdminBrowser, admin: Account) -> None:
    page = await browser.client.get("https://testserver.local/admin/login")
    assert "Secure" in page.headers["set-cookie"]


@pytest.mark.parametrize("who", ["plain user", "wrong password", "deactivated", "unknown"])
async def test_sign_in_is_refused_with_one_message(
    browser: AdminBrowser, client: Client, container: Container, admin: Account, who: str
) -> None:
    staff = await make_staff(container)
    username, password = staff.username, PASSWORD
    if who == "plain user":
        username = (await sign_up(client)).username
    elif who == "wrong password":
        password = "not the password"
    elif who == "deactivated":
        off = await client.post(f"/api/users/{staff.id}/deactivate/", headers=admin.headers)
        assert off.status_code in (200, 204), off.text
    else:
        username = unique("nobody")
    refused = await browser.sign_in(username, password)
    assert refused.status_code == 401
    assert BAD_CREDENTIALS in refused.text
    assert (await browser.get("/admin/")).status_code == 303
    if who == "plain user":
        # Counted and audited as a failed sign-in, as a wrong password is.
        trail = await events(client, admin, action="auth.login", outcome="failed", limit=5)
        assert trail[0]["client"] == "testclient"


async def test_a_form_without_its_token_is_refused(
    signed_in: AdminBrowser, client: Client, admin: Account
) -> None:
    name = unique("csrf")
    form = {"owner": admin.username, "name": name, "age": "30", "gender": "Male"}
    missing = await signed_in.post("/admin/patients/new", form, csrf=False)
    assert missing.status_code == 403
    forged = await signed_in.post(
        "/admin/patients/new", {**form, "csrf_token": "x" * 64}, csrf=False
    )
    assert forged.status_code == 403
    listed = await client.get("/api/patients/", params={"search": name}, headers=admin.headers)
    assert listed.json() == []
    # Sign-in is a form too.
    signed_in.client.cookies.clear()
    refused = await signed_in.post("/admin/login", {"username": admin.username}, csrf=False)
    assert refused.status_code == 403


async def test_a_session_dies_when_its_account_changes(
    browser: AdminBrowser, client: Client, container: Container, admin: Account
) -> None:
    staff = await make_staff(container)
    assert (await browser.sign_in(staff.username)).status_code == 303
    assert (await browser.get("/admin/")).status_code == 200
    # Its password changed (by the user, through the API): the session ends.
    tokens = await client.post(
        "/api/token/", json={"username": staff.username, "password": PASSWORD}
    )
    changed = await client.post(
        "/api/auth/password/",
        json={"current_password": PASSWORD, "new_password": "another good one"},
        headers={"Authorization": f"Bearer {tokens.json()['access']}"},
    )
    assert changed.status_code in (200, 204), changed.text
    assert (await browser.get("/admin/")).status_code == 303
    # Signed in again, then deactivated by another administrator: it ends too.
    assert (await browser.sign_in(staff.username, "another good one")).status_code == 303
    assert (await browser.get("/admin/")).status_code == 200
    off = await client.post(f"/api/users/{staff.id}/deactivate/", headers=admin.headers)
    assert off.status_code in (200, 204), off.text
    assert (await browser.get("/admin/")).status_code == 303


@pytest.fixture
async def clocked(settings: Settings) -> AsyncIterator[tuple[Client, FixedClock, Container]]:
    """The app on the same database with a clock the test moves."""
    clock = FixedClock()
    container = build_container(dataclasses.replace(settings), clock=clock)
    async with serving(container) as test_client:
        yield test_client, clock, container


async def test_a_session_expires_after_its_idle_time(
    clocked: tuple[Client, FixedClock, Container],
) -> None:
    client, clock, container = clocked
    staff = await make_staff(container)
    browser = AdminBrowser(client)
    assert (await browser.sign_in(staff.username)).status_code == 303
    clock.advance(timedelta(minutes=29))
    assert (await browser.get("/admin/")).status_code == 200  # and renewed
    clock.advance(timedelta(minutes=29))
    assert (await browser.get("/admin/")).status_code == 200
    clock.advance(timedelta(minutes=30, seconds=1))
    expired = await browser.get("/admin/")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/admin/login"


# Patients --------------------------------------------------------------------------------


async def test_patients_of_every_owner_are_listed_searched_filtered_and_paged(
    signed_in: AdminBrowser, client: Client, alice: Account, bob: Account, admin: Account
) -> None:
    tag = uuid.uuid4().hex[:8]
    await create_patient(client, alice, name=f"Zed {tag}", age=50, gender="male")
    await create_patient(client, bob, name=f"Amy {tag}", age=20, gender="female")
    listed = await signed_in.get("/admin/patients", q=tag)
    assert listed.status_code == 200
    assert listed.text.index(f"Amy {tag}") < listed.text.index(f"Zed {tag}")  # by name
    assert alice.username in listed.text
    assert bob.username in listed.text
    assert "2 in all" in listed.text
    by_age = await signed_in.get("/admin/patients", q=tag, sort="-age")
    assert by_age.text.index(f"Zed {tag}") < by_age.text.index(f"Amy {tag}")
    women = await signed_in.get("/admin/patients", q=tag, gender="Female")
    assert f"Amy {tag}" in women.text
    assert f"Zed {tag}" not in women.text
    bobs = await signed_in.get("/admin/patients", q=tag, owner=bob.username)
    assert "1 in all" in bobs.text
    assert f"Zed {tag}" not in bobs.text
    await create_patient(client, alice, name=f"<script>alert({tag!r})</script>")
    escaped = await signed_in.get("/admin/patients", q=f"alert('{tag}')")
    assert f"&lt;script&gt;alert(&#39;{tag}&#39;)&lt;/script&gt;" in escaped.text
    assert "<script>" not in escaped.text
    unknown = await signed_in.get("/admin/patients", owner=unique("nobody"))
    assert unknown.status_code == 400
    assert "is not a known username or email" in unknown.text
    bad = await signed_in.get("/admin/patients", gender="robot")
    assert bad.status_code == 400
    assert "must be one of Male, Female, Other, Unknown" in bad.text
    for _ in range(26):
        await create_patient(client, alice, name=f"Many {tag}", age=1)
    first = await signed_in.get("/admin/patients", q=f"many {tag}")
    assert "Page 1 of 2 · 26 in all" in first.text
    second = await signed_in.get("/admin/patients", q=f"many {tag}", page=2)
    assert "Page 2 of 2" in second.text
    assert second.text.count(f"Many {tag}") == 1


async def test_a_patient_is_created_edited_and_deleted_through_forms(
    signed_in: AdminBrowser, client: Client, alice: Account, admin: Account
) -> None:
    name = unique("Grace")
    form = {"owner": alice.username, "name": name, "age": "85", "gender": "female"}
    created = await signed_in.post("/admin/patients/new", form)
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    owner_id, patient_id = (int(part) for part in location.split("?")[0].split("/")[-2:])
    assert owner_id == alice.id
    # The owner sees it through the API: the admin created it for her.
    seen = await client.get(f"/api/patients/{patient_id}/", headers=alice.headers)
    assert seen.json()["name"] == name
    assert seen.json()["gender"] == "Female"

    page = await signed_in.get(f"/admin/patients/{owner_id}/{patient_id}")
    assert page.status_code == 200
    assert name in page.text
    changed = {**form, "name": f"{name} Hopper", "age": "86", "notes": "Admiral"}
    updated = await signed_in.post(f"/admin/patients/{owner_id}/{patient_id}", changed)
    assert updated.status_code == 303, updated.text
    body = (await client.get(f"/api/patients/{patient_id}/", headers=alice.headers)).json()
    assert (body["name"], body["age"], body["notes"]) == (f"{name} Hopper", 86, "Admiral")

    trail = await events(client, admin, resource="patient", resource_id=patient_id)
    done = {(e["action"], e["outcome"]) for e in trail if e["user_id"] == admin.id}
    assert {
        ("patient.create", "success"),
        ("patient.read", "success"),
        ("patient.update", "success"),
    } <= done
    assert all(e["client"] == "testclient" for e in trail if e["user_id"] == admin.id)

    deleted = await signed_in.post(f"/admin/patients/{owner_id}/{patient_id}/delete", {})
    assert deleted.status_code == 303
    gone = await client.get(f"/api/patients/{patient_id}/", headers=alice.headers)
    assert gone.status_code == 404
    assert (await signed_in.get(f"/admin/patients/{owner_id}/{patient_id}")).status_code == 404
    trail = await events(client, admin, action="patient.delete", resource_id=patient_id)
    assert trail[0]["user_id"] == admin.id


async def test_a_patients_form_shows_the_apis_messages_by_their_fields(
    signed_in: AdminBrowser, client: Client, alice: Account
) -> None:
    form = {"owner": "", "name": " ", "age": "x", "gender": "robot", "email": "nope"}
    refused = await signed_in.post("/admin/patients/new", form)
    assert refused.status_code == 400
    assert field_messages(refused) == [
        "is required",  # owner
        "must not be blank",
        "must be a whole number",
        "must be one of Male, Female, Other, Unknown",
        "must be a valid email address",
    ]
    assert 'value="nope"' in refused.text  # what was typed is kept
    api = await client.post(
        "/api/patients/",
        json={"name": " ", "age": 200, "gender": "robot", "email": "nope"},
        headers=alice.headers,
    )
    admin_too = await signed_in.post(
        "/admin/patients/new", {**form, "owner": alice.username, "age": "200"}
    )
    # The same messages (shown in the form's order, by their fields).
    assert sorted(e["message"] for e in api.json()["errors"]) == sorted(field_messages(admin_too))
    patient = await create_patient(client, alice)
    edit = await signed_in.post(
        f"/admin/patients/{alice.id}/{patient['id']}", {"name": "", "age": "1", "gender": "Male"}
    )
    assert edit.status_code == 400
    assert field_messages(edit) == ["must not be blank"]


# A patient's doctors (mappings) ------------------------------------------------------------


async def test_doctors_are_assigned_from_a_list_and_removed(
    signed_in: AdminBrowser, client: Client, alice: Account, admin: Account
) -> None:
    patient = await create_patient(client, alice)
    doctor = await create_doctor(client, alice, name=unique("Dr"))
    path = f"/admin/patients/{alice.id}/{patient['id']}"
    page = await signed_in.get(path)
    assert f'<option value="{doctor["id"]}">{doctor["name"]}' in page.text
    assigned = await signed_in.post(f"{path}/doctors", {"doctor": str(doctor["id"])})
    assert assigned.status_code == 303
    mappings = await client.get(f"/api/mappings/{patient['id']}/", headers=alice.headers)
    assert [m["doctor"] for m in mappings.json()] == [doctor["id"]]
    shown = await signed_in.get(path)
    assert doctor["name"] in shown.text.split("<h2>Doctors</h2>")[1].split("Assign a doctor")[0]

    twice = await signed_in.post(f"{path}/doctors", {"doctor": str(doctor["id"])})
    assert twice.status_code == 400  # the API's 409, as a form error
    assert "already" in twice.text
    missing = await signed_in.post(f"{path}/doctors", {"doctor": "999999999"})
    assert missing.status_code == 400
    assert "Doctor 999999999 was not found" in missing.text

    mapping_id = mappings.json()[0]["id"]
    removed = await signed_in.post(f"{path}/doctors/{mapping_id}/delete", {})
    assert removed.status_code == 303
    after = await client.get(f"/api/mappings/{patient['id']}/", headers=alice.headers)
    assert after.json() == []
    trail = await events(client, admin, resource="mapping", resource_id=mapping_id)
    assert {e["action"] for e in trail if e["user_id"] == admin.id} >= {
        "mapping.create",
        "mapping.delete",
    }


async def test_the_mappings_page_assigns_and_removes_by_name(
    signed_in: AdminBrowser, client: Client, alice: Account
) -> None:
    patient = await create_patient(client, alice, name=unique("Pat"))
    doctor = await create_doctor(client, alice, name=unique("Dr"))
    chosen = f"{alice.id}:{patient['id']}"
    page = await signed_in.get("/admin/mappings")
    assert f'<option value="{chosen}">{patient["name"]}' in page.text
    assigned = await signed_in.post(
        "/admin/mappings", {"patient": chosen, "doctor": str(doctor["id"])}
    )
    assert assigned.status_code == 303, assigned.text
    listed = await signed_in.get("/admin/mappings", patient=chosen)
    table = listed.text.split("<table>")[1]
    assert patient["name"] in table
    assert doctor["name"] in table
    assert "1 in all" in listed.text
    twice = await signed_in.post(
        "/admin/mappings", {"patient": chosen, "doctor": str(doctor["id"])}
    )
    assert twice.status_code == 400
    assert "already" in twice.text
    nobody = await signed_in.post("/admin/mappings", {"patient": "", "doctor": ""})
    assert nobody.status_code == 400
    assert "patient: is required; doctor: is required" in nobody.text
    mapping_id = (
        await client.get(f"/api/mappings/{patient['id']}/", headers=alice.headers)
    ).json()[0]["id"]
    removed = await signed_in.post(
        f"/admin/patients/{alice.id}/{patient['id']}/doctors/{mapping_id}/delete",
        {"next": "mappings"},
    )
    assert removed.headers["location"] == f"/admin/mappings?patient={chosen}"
    assert (await client.get(f"/api/mappings/{patient['id']}/", headers=alice.headers)).json() == []


# Doctors ---------------------------------------------------------------------------------


async def test_doctors_are_listed_created_edited_and_deleted(
    signed_in: AdminBrowser, client: Client, alice: Account
) -> None:
    tag = uuid.uuid4().hex[:8]
    form = {"name": f"Dr Who {tag}", "specialization": f"Time {tag}", "email": ""}
    created = await signed_in.post("/admin/doctors/new", form)
    assert created.status_code == 303, created.text
    doctor_id = int(created.headers["location"].split("?")[0].rsplit("/", 1)[1])
    listed = await signed_in.get("/admin/doctors", q=f"time {tag}")
    assert f"Dr Who {tag}" in listed.text
    assert "1 in all" in listed.text
    exact = await signed_in.get("/admin/doctors", specialization=f"TIME {tag}")
    assert f"Dr Who {tag}" in exact.text

    bad = await signed_in.post(
        f"/admin/doctors/{doctor_id}", {"name": "", "specialization": "x", "email": "no"}
    )
    assert bad.status_code == 400
    assert field_messages(bad) == ["must not be blank", "must be a valid email address"]
    edited = await signed_in.post(
        f"/admin/doctors/{doctor_id}", {**form, "phone": "+44 20 7946 0000"}
    )
    assert edited.status_code == 303
    body = (await client.get(f"/api/doctors/{doctor_id}/", headers=alice.headers)).json()
    assert body["phone"] == "+44 20 7946 0000"

    deleted = await signed_in.post(f"/admin/doctors/{doctor_id}/delete", {})
    assert deleted.status_code == 303
    gone = await client.get(f"/api/doctors/{doctor_id}/", headers=alice.headers)
    assert gone.status_code == 404


# Users -----------------------------------------------------------------------------------


async def test_users_are_listed_created_edited_and_given_a_password(
    signed_in: AdminBrowser, client: Client, admin: Account
) -> None:
    username = unique("nurse")
    form = {"username": username, "email": f"{username}@example.org", "password": "short"}
    weak = await signed_in.post("/admin/users/new", form)
    assert weak.status_code == 400
    assert "must be at least 8 characters" in field_messages(weak)
    assert "short" not in weak.text.split("<main>")[1]  # a password is never shown back
    created = await signed_in.post("/admin/users/new", {**form, "password": PASSWORD})
    assert created.status_code == 303, created.text
    user_id = int(created.headers["location"].split("?")[0].rsplit("/", 1)[1])
    again = await signed_in.post("/admin/users/new", {**form, "password": PASSWORD})
    assert again.status_code == 400  # the API's 409, by its field
    assert "A user with that username already exists" in field_messages(again)

    listed = await signed_in.get("/admin/users", q=username.upper())
    assert username in listed.text
    assert "1 in all" in listed.text
    not_staff = await signed_in.get("/admin/users", q=username, staff="yes")
    assert "0 in all" in not_staff.text

    page = await signed_in.get(f"/admin/users/{user_id}")
    assert "$2" not in page.text  # never the hash
    changed = await signed_in.post(
        f"/admin/users/{user_id}", {"email": f"new.{username}@example.org", "is_staff": "on"}
    )
    assert changed.status_code == 303, changed.text
    account = await signed_in.get(f"/admin/users/{user_id}")
    assert f"new.{username}@example.org" in account.text
    inactive = await signed_in.get("/admin/users", q=username, active="no")
    assert "1 in all" in inactive.text  # is_active was left unticked

    password = await signed_in.post(f"/admin/users/{user_id}/password", {"password": "123"})
    assert password.status_code == 400
    assert "must be at least 8 characters" in field_messages(password)
    await signed_in.post(
        f"/admin/users/{user_id}",
        {"email": f"new.{username}@example.org", "is_staff": "on", "is_active": "on"},
    )
    ok = await signed_in.post(f"/admin/users/{user_id}/password", {"password": "fresh and new"})
    assert ok.status_code == 303
    login = await client.post(
        "/api/token/", json={"username": username, "password": "fresh and new"}
    )
    assert login.status_code == 200
    trail = await events(client, admin, resource="user", resource_id=user_id)
    assert {e["action"] for e in trail if e["user_id"] == admin.id} >= {
        "user.create",
        "user.set_email",
        "user.set_staff",
        "user.deactivate",
        "user.set_password",
    }


async def test_staff_may_not_change_another_administrator(
    browser: AdminBrowser, container: Container
) -> None:
    staff = await make_staff(container)
    other = await make_staff(container)
    assert (await browser.sign_in(staff.username)).status_code == 303
    await browser.get(f"/admin/users/{other.id}")
    refused = await browser.post(f"/admin/users/{other.id}", {"email": other.email})
    assert refused.status_code == 400
    assert "Only a superuser may change another administrator" in refused.text
    password = await browser.post(
        f"/admin/users/{other.id}/password", {"password": "hijacked password"}
    )
    assert password.status_code == 400
    assert "Only a superuser" in password.text


# Audit trail -----------------------------------------------------------------------------


async def test_the_audit_trail_is_filtered_and_read_only(
    signed_in: AdminBrowser, admin: Account
) -> None:
    page = await signed_in.get("/admin/audit", user=str(admin.id), action="auth.login")
    assert page.status_code == 200
    assert "auth.login" in page.text
    assert "events" in page.text
    bad = await signed_in.get("/admin/audit", since="yesterday", outcome="meh")
    assert bad.status_code == 400
    assert "must be a date and time" in bad.text
    assert "is not one of the choices" in bad.text
    later = await signed_in.get("/admin/audit", since="2030-01-02T00:00", until="2030-01-01T00:00")
    assert later.status_code == 400
    assert "must be later than since" in later.text
    assert (await signed_in.post("/admin/audit", {})).status_code == 405

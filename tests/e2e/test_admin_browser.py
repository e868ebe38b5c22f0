"""The admin in a real headless browser: Debian's chromium driven by Playwright, against the
service as `make run` starts it (granian, a migrated SQLite file, a superuser made by
`healthcare createsuperuser`).

Skipped when chromium or Playwright is missing, unless REQUIRE_BROWSER=1 (as .ci/run sets,
after installing both). Screenshots go to the test's temporary folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
ADMIN, OWNER, PASSWORD = "chief", "meredith", "correct horse battery"
PATIENTS = [
    ("Ada Lovelace", 36, "Female"),
    ("Alan Turing", 41, "Male"),
    ("Grace Hopper", 85, "Female"),
    ("Edsger Dijkstra", 72, "Male"),
    ("Barbara Liskov", 84, "Female"),
    ("Donald Knuth", 87, "Male"),
    ("Frances Allen", 88, "Female"),
    ("Tony Hoare", 90, "Male"),
]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError:
        return "the playwright package is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    data = tmp_path_factory.mktemp("browser-data")
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{data / 'admin.sqlite3'}",
        "SECRET_KEY": "browser-test-secret-key-long-enough-for-hs256",
        "BCRYPT_ROUNDS": "4",
        "DATA_DIR": str(data),
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    command = [str(Path(sys.executable).with_name("healthcare"))]  # the venv's command
    subprocess.run([*command, "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [
            *command,
            "createsuperuser",
            "--username",
            ADMIN,
            "--email",
            "chief@example.org",
            "--password",
            PASSWORD,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    log = (data / "server.log").open("w")
    process = subprocess.Popen([*command, "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail(f"the server did not start: {(data / 'server.log').read_text()}")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _owner_with_patients(base: str) -> dict[str, str]:
    """A user with patients, through the API; their Authorization header."""
    body = {"username": OWNER, "email": "meredith@example.org", "password": PASSWORD}
    assert httpx.post(f"{base}/api/auth/register/", json=body).status_code == 201
    tokens = httpx.post(f"{base}/api/token/", json={"username": OWNER, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {tokens.json()['access']}"}
    for name, age, gender in PATIENTS:
        patient = {"name": name, "age": age, "gender": gender, "email": None}
        email = name.lower().replace(" ", ".") + "@example.org"
        created = httpx.post(
            f"{base}/api/patients/", json={**patient, "email": email}, headers=headers
        )
        assert created.status_code == 201, created.text
    return headers


def test_an_administrator_manages_patients_in_a_browser(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415

    owner = _owner_with_patients(server)
    shots: list[Path] = []

    def shot(page: Any, name: str) -> None:
        path = tmp_path / f"{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(f"{server}/admin/")
        expect(page).to_have_url(f"{server}/admin/login")
        shot(page, "sign-in")
        page.fill("#f-username", ADMIN)
        page.fill("#f-password", PASSWORD)
        page.click("button:text('Sign in')")
        expect(page.locator("header .who")).to_contain_text(ADMIN)

        page.click("header nav >> text=Patients")
        expect(page.locator("h1")).to_contain_text(f"{len(PATIENTS)} in all")
        expect(page.locator("tbody tr")).to_have_count(len(PATIENTS))
        shot(page, "patients")

        page.fill("input[name=q]", "hopper")
        page.click("button:text('Filter')")
        expect(page.locator("h1")).to_contain_text("1 in all")
        expect(page.locator("tbody")).to_contain_text(OWNER)
        shot(page, "search")

        page.click("text=Grace Hopper")
        expect(page.locator("#f-age")).to_have_value("85")
        page.fill("#f-age", "86")
        page.fill("#f-notes", "Rear admiral; COBOL")
        page.click("button:text('Save')")
        expect(page.locator(".notice.ok")).to_have_text("Saved.")
        shot(page, "edited")

        # The change is the owner's record, as the API shows it.
        found = httpx.get(f"{server}/api/patients/", params={"search": "hopper"}, headers=owner)
        (patient,) = found.json()
        assert (patient["age"], patient["notes"]) == (86, "Rear admiral; COBOL")

        page.click("button:text('Sign out')")
        expect(page).to_have_url(f"{server}/admin/login")
        page.goto(f"{server}/admin/patients")
        expect(page).to_have_url(f"{server}/admin/login")  # the session is gone
        shot(page, "signed-out")
        browser.close()

    assert all(path.stat().st_size > 10_000 for path in shots)

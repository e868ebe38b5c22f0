"""The settings that bound the service's waits: defaults of a few seconds, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthcare.entrypoints.settings import SettingsError, load_settings

KEY = "k" * 32
BOUNDS = (
    "DB_STATEMENT_TIMEOUT_MS",
    "DB_LOCK_TIMEOUT_MS",
    "REDIS_TIMEOUT_MS",
    "BODY_READ_TIMEOUT_MS",
)


def test_every_wait_is_bounded_by_default(tmp_path: Path) -> None:
    settings = load_settings({"SECRET_KEY": KEY}, env_file=None, data_dir=tmp_path)
    assert settings.db_statement_timeout_ms == 5000
    # Lock waits end first, so that a blocked write says so.
    assert settings.db_lock_timeout_ms == 2000
    assert settings.redis_timeout_seconds == 0.5
    assert settings.body_read_timeout_seconds == 10.0


def test_the_bounds_are_read_from_the_environment(tmp_path: Path) -> None:
    values = dict(zip(BOUNDS, ("7000", "300", "250", "1500"), strict=True))
    settings = load_settings({"SECRET_KEY": KEY, **values}, env_file=None, data_dir=tmp_path)
    assert (settings.db_statement_timeout_ms, settings.db_lock_timeout_ms) == (7000, 300)
    assert (settings.redis_timeout_ms, settings.body_read_timeout_ms) == (250, 1500)


@pytest.mark.parametrize("name", BOUNDS)
@pytest.mark.parametrize("value", ["0", "-1", "soon", "99999999"])
def test_a_bound_that_is_no_bound_is_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"SECRET_KEY": KEY, name: value}, env_file=None, data_dir=tmp_path)

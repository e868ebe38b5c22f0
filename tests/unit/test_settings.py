"""Configuration from the environment and .env."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from healthcare.entrypoints.settings import SettingsError, load_database_url, load_settings

KEY = "k" * 32


def test_defaults_to_an_sqlite_file_under_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings({"SECRET_KEY": KEY}, env_file=None, data_dir=tmp_path)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/healthcare.sqlite3"
    assert settings.persistence == "sqlalchemy"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.access_token_lifetime == timedelta(minutes=15)
    assert settings.refresh_token_lifetime == timedelta(days=7)
    assert settings.bcrypt_rounds == 12


def test_database_url_wins_over_the_seed_variables(tmp_path: Path) -> None:
    env = {"SECRET_KEY": KEY, "DATABASE_URL": "postgresql://u@h/db", "DB_NAME": "other"}
    assert load_settings(env, env_file=None, data_dir=tmp_path).database_url == (
        "postgresql://u@h/db"
    )


def test_the_seed_services_variables_make_a_psycopg_url(tmp_path: Path) -> None:
    env = {
        "DB_NAME": "health",
        "DB_USER": "doc",
        "DB_PASSWORD": "p@ss:word",
        "DB_HOST": "db",
        "DB_PORT": "6543",
    }
    assert load_database_url(env, env_file=None) == (
        "postgresql+psycopg://doc:p%40ss%3Aword@db:6543/health"
    )


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"SECRET_KEY={KEY}\nPORT=9000\nWORKERS=3\nDATABASE_URL=memory://\n")
    settings = load_settings({"PORT": "9100"}, env_file=env_file, data_dir=tmp_path)
    assert (settings.port, settings.workers, settings.secret_key) == (9100, 3, KEY)
    assert settings.persistence == "memory"


def test_a_missing_key_is_generated_once_when_asked(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings({}, env_file=None, data_dir=tmp_path)
    first = load_settings({}, env_file=None, data_dir=tmp_path, create_secret=True)
    key_file = tmp_path / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(first.secret_key) >= 32
    again = load_settings({}, env_file=None, data_dir=tmp_path)
    assert again.secret_key == first.secret_key


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        load_settings({"SECRET_KEY": "k" * 31}, env_file=None, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("WORKERS", "0"),
        ("BCRYPT_ROUNDS", "3"),
        ("ACCESS_TOKEN_MINUTES", "-5"),
        ("AUDIT_FLUSH_MS", "0"),
        ("AUDIT_FLUSH_MS", "soon"),
        ("DB_POOL_TIMEOUT", "0"),
        ("DEFAULT_PAGE_SIZE", "0"),
        ("DEFAULT_PAGE_SIZE", "1001"),
        ("DEFAULT_PAGE_SIZE", "ten"),
        ("DEFAULT_PAGE_SIZE", "2.5"),
    ],
)
def test_bad_numbers_are_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({"SECRET_KEY": KEY, name: value}, env_file=None, data_dir=tmp_path)


def test_production_needs_an_explicit_key_and_hides_the_docs(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text(KEY)  # a generated key is not enough
    with pytest.raises(SettingsError, match="explicit SECRET_KEY"):
        load_settings({"ENVIRONMENT": "production"}, env_file=None, data_dir=tmp_path)
    production = load_settings(
        {"ENVIRONMENT": "Production", "SECRET_KEY": KEY}, env_file=None, data_dir=tmp_path
    )
    assert (production.environment, production.docs_enabled) == ("production", False)
    shown = load_settings(
        {"ENVIRONMENT": "production", "SECRET_KEY": KEY, "DOCS_ENABLED": "1"},
        env_file=None,
        data_dir=tmp_path,
    )
    assert shown.docs_enabled is True
    assert load_settings({"SECRET_KEY": KEY}, env_file=None, data_dir=tmp_path).docs_enabled


def test_cors_origins_and_bad_values(tmp_path: Path) -> None:
    settings = load_settings(
        {"SECRET_KEY": KEY, "CORS_ORIGINS": " https://a.example, ,https://b"},
        env_file=None,
        data_dir=tmp_path,
    )
    assert settings.cors_origins == ("https://a.example", "https://b")
    with pytest.raises(SettingsError, match="ENVIRONMENT"):
        load_settings(
            {"SECRET_KEY": KEY, "ENVIRONMENT": "staging"}, env_file=None, data_dir=tmp_path
        )
    with pytest.raises(SettingsError, match="DOCS_ENABLED"):
        load_settings(
            {"SECRET_KEY": KEY, "DOCS_ENABLED": "maybe"}, env_file=None, data_dir=tmp_path
        )


def test_trusted_proxies_and_the_audit_flush_interval(tmp_path: Path) -> None:
    default = load_settings({"SECRET_KEY": KEY}, env_file=None, data_dir=tmp_path)
    assert default.trusted_proxies == ()
    assert default.audit_flush_seconds == 0.25
    settings = load_settings(
        {
            "SECRET_KEY": KEY,
            "TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,fd00::/8",
            "AUDIT_FLUSH_MS": "1000",
        },
        env_file=None,
        data_dir=tmp_path,
    )
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.7", "fd00::/8")
    assert settings.audit_flush_seconds == 1.0
    with pytest.raises(SettingsError, match=r"TRUSTED_PROXIES.*'my-proxy'"):
        load_settings(
            {"SECRET_KEY": KEY, "TRUSTED_PROXIES": "10.0.0.1,my-proxy"},
            env_file=None,
            data_dir=tmp_path,
        )


def test_the_pool_timeout_defaults_to_five_seconds(tmp_path: Path) -> None:
    default = load_settings({"SECRET_KEY": KEY}, env_file=None, data_dir=tmp_path)
    assert default.db_pool_timeout == 5
    values = {"SECRET_KEY": KEY, "DB_POOL_TIMEOUT": "2"}
    assert load_settings(values, env_file=None, data_dir=tmp_path).db_pool_timeout == 2


def test_refresh_token_rotation_is_off_unless_asked_for(tmp_path: Path) -> None:
    def rotation(**values: str) -> bool:
        settings = load_settings({"SECRET_KEY": KEY, **values}, env_file=None, data_dir=tmp_path)
        return settings.refresh_token_rotation

    assert rotation() is False
    assert rotation(REFRESH_TOKEN_ROTATION="on") is True
    assert rotation(REFRESH_TOKEN_ROTATION="false") is False
    with pytest.raises(SettingsError, match="REFRESH_TOKEN_ROTATION"):
        rotation(REFRESH_TOKEN_ROTATION="sometimes")


def test_the_default_page_size_is_100_and_may_be_1_to_1000(tmp_path: Path) -> None:
    default = load_settings({"SECRET_KEY": KEY}, env_file=None, data_dir=tmp_path)
    assert default.default_page_size == 100
    for value in ("1", "250", "1000"):
        values = {"SECRET_KEY": KEY, "DEFAULT_PAGE_SIZE": value}
        assert load_settings(values, env_file=None, data_dir=tmp_path).default_page_size == int(
            value
        )
    with pytest.raises(SettingsError, match="DEFAULT_PAGE_SIZE must be between 1 and 1000"):
        load_settings(
            {"SECRET_KEY": KEY, "DEFAULT_PAGE_SIZE": "5000"}, env_file=None, data_dir=tmp_path
        )


def test_refused_sign_ins_wait_a_second_unless_set_otherwise(tmp_path: Path) -> None:
    def delay(**values: str) -> float:
        settings = load_settings({"SECRET_KEY": KEY, **values}, env_file=None, data_dir=tmp_path)
        return settings.login_refusal_delay_seconds

    assert delay() == 1.0
    assert delay(LOGIN_REFUSAL_DELAY_MS="0") == 0.0  # off
    assert delay(LOGIN_REFUSAL_DELAY_MS="250") == 0.25
    assert delay(LOGIN_REFUSAL_DELAY_MS="30000") == 30.0
    for bad in ("-1", "30001", "0.5", "soon"):
        with pytest.raises(SettingsError, match="LOGIN_REFUSAL_DELAY_MS"):
            delay(LOGIN_REFUSAL_DELAY_MS=bad)

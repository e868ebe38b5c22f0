"""The password-change storm's verdicts (bench/harness/password_storm.py): canned pairs of
sign-in windows and storm answers, no servers. Also: the defaults it starts a server with
are the Settings class's, and each pair's storm gets accounts and addresses never used."""

from __future__ import annotations

from typing import Any

import pytest

from harness.config import PW_STORM_ACCOUNTS, PW_STORM_P99_TARGET, PW_STORM_SIGNERS
from harness.pairs import pair_medians
from harness.password_storm import (
    Accounts,
    judge,
    pairs_possible,
    production_throttle,
    storm_figures,
    throttlings,
)
from healthcare.entrypoints.settings import load_settings

CAPACITY = 8.0  # hashes a second


def storm(*, s400: int = 10, s429: int = 900, s401: int = 0, other: int = 0) -> dict[str, Any]:
    """One storm window's wrk JSON (20 s)."""
    return {
        "requests": s400 + s429 + s401 + other,
        "duration_us": 20_000_000,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": s400 + s429, "timeout": 0},
        "statuses": {"2xx": 0, "400": s400, "401": s401, "429": s429, "other": other},
    }


def pair(
    idle_p99: float, storm_p99: float, login_errors: int = 0, **answers: int
) -> dict[str, Any]:
    return {
        "idle_logins": 40,
        "idle_p50_ms": idle_p99 / 2,
        "idle_p99_ms": idle_p99,
        "storm_logins": 40,
        "storm_p50_ms": storm_p99 / 2,
        "storm_p99_ms": storm_p99,
        "p50_ratio": round(storm_p99 / idle_p99, 2),
        "p99_ratio": round(storm_p99 / idle_p99, 2),
        "login_errors": login_errors,
        **storm_figures(storm(**answers)),
    }


def test_a_storm_that_costs_sign_ins_little_passes() -> None:
    verdict = judge(
        [pair(600, 900), pair(600, 1500), pair(600, 700)], judged=True, hash_capacity=CAPACITY
    )
    assert verdict["pass"] is True
    assert verdict["p99_ratio"] == 1.5  # the median pair's, not the mean or the worst


def test_the_median_pair_decides_not_one_bad_pair() -> None:
    pairs = [pair(600, 900), pair(600, 6000), pair(600, 1000)]
    assert judge(pairs, judged=True, hash_capacity=CAPACITY)["pass"] is True
    pairs[0] = pair(600, 1300)  # now two of three pairs are above 2x
    verdict = judge(pairs, judged=True, hash_capacity=CAPACITY)
    assert verdict["pass"] is False
    assert verdict["checks"]["p99_ratio"] is False


def test_the_target_is_inclusive_and_a_missing_idle_figure_fails() -> None:
    at_target = pair(500, 500 * PW_STORM_P99_TARGET)
    assert judge([at_target], judged=True, hash_capacity=CAPACITY)["pass"] is True
    no_idle = {**pair(500, 600), "p99_ratio": 0.0}
    assert judge([no_idle], judged=True, hash_capacity=CAPACITY)["checks"]["p99_ratio"] is False


@pytest.mark.parametrize(
    ("bad_pair", "failed"),
    [
        (pair(600, 700, login_errors=1), "zero_login_errors"),
        (pair(600, 700, s400=0, s429=0), "storm_ran"),
        (pair(600, 700, s401=3), "storm_answered_400_or_429"),
        (pair(600, 700, other=1), "storm_answered_400_or_429"),
    ],
)
def test_each_check_fails_alone(bad_pair: dict[str, Any], failed: str) -> None:
    verdict = judge([pair(600, 700), bad_pair, pair(600, 800)], judged=True, hash_capacity=8)
    assert [k for k, ok in verdict["checks"].items() if not ok] == [failed]
    assert verdict["pass"] is False


def test_a_variant_not_judged_is_reported_without_a_verdict() -> None:
    verdict = judge([pair(600, 9000)], judged=False, hash_capacity=CAPACITY)
    assert verdict["pass"] is None
    assert verdict["checks"]["p99_ratio"] is False


def test_storm_figures_count_a_hash_per_400_only() -> None:
    figures = storm_figures(storm(s400=40, s429=957, s401=2, other=1))
    assert figures["storm_hashes"] == 40
    assert figures["storm_hashes_per_s"] == 2.0
    assert figures["storm_rps"] == 50.0  # 1,000 answers in 20 s
    assert (figures["storm_429"], figures["storm_401"], figures["storm_other"]) == (957, 2, 1)
    assert storm_figures({})["storm_requests"] == 0


def test_whether_the_storm_reached_the_fair_share() -> None:
    small = judge([pair(600, 700, s400=10)], judged=True, hash_capacity=CAPACITY)
    assert small["storm_hash_share"] == 0.062  # 0.5 hashes/s of 8
    assert small["fair_share_tested"] is False
    big = judge([pair(600, 700, s400=120)], judged=True, hash_capacity=CAPACITY)
    assert big["fair_share_tested"] is True


def test_medians_skip_error_counts_and_flags() -> None:
    medians = pair_medians([{"a": 1.0, "x_errors": 5, "flag": True}, {"a": 3.0, "x_errors": 0}])
    assert medians == {"a": 2.0}


def test_the_defaults_server_gets_the_production_throttle() -> None:
    settings = load_settings({"SECRET_KEY": "x" * 40}, env_file=None)
    defaults = production_throttle()
    assert defaults == {
        "LOGIN_ATTEMPTS_PER_USERNAME": str(settings.login_attempts_per_username),
        "LOGIN_FAILURES_PER_CLIENT": str(settings.login_failures_per_client),
        "LOGIN_WINDOW_SECONDS": str(settings.login_window_seconds),
        "LOGIN_REFUSAL_DELAY_MS": str(settings.login_refusal_delay_ms),
    }
    by_name = {t.name: t for t in throttlings()}
    assert by_name["defaults"].env == defaults
    widened = by_name["widened"].env
    assert widened["LOGIN_WINDOW_SECONDS"] == defaults["LOGIN_WINDOW_SECONDS"]
    assert int(widened["LOGIN_ATTEMPTS_PER_USERNAME"]) > 10**6
    assert int(widened["LOGIN_FAILURES_PER_CLIENT"]) > 10**6


def test_each_storm_takes_fresh_accounts_and_addresses() -> None:
    accounts = Accounts(list(range(7, 20)), server_index=0)
    first, second = accounts.take(1), accounts.take(3)
    assert first == [7]
    assert second == [8, 9, 10]
    assert len(set(accounts.addresses.values())) == 4
    with pytest.raises(SystemExit):
        accounts.take(10)
    other_server = Accounts(list(range(7, 20)), server_index=1)
    other_server.take(1)
    assert other_server.addresses[7] != accounts.addresses[7]


def test_pairs_are_capped_by_the_seeded_users() -> None:
    per_pair = 1 + PW_STORM_ACCOUNTS
    assert pairs_possible(PW_STORM_SIGNERS + 3 * per_pair, 3) == 3
    assert pairs_possible(PW_STORM_SIGNERS + 2 * per_pair + 1, 3) == 2
    assert pairs_possible(PW_STORM_SIGNERS, 3) == 0

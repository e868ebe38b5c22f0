"""The password-change storm phase (issue 18, finding 2): real sign-ins' latency alone, and
while attackers post wrong current passwords to POST /api/auth/password/ with many parallel
connections.

Each wrong try that gets past the throttle costs a bcrypt hash on the same hashing threads
that sign-ins use; the issue's report was that 24 parallel wrong tries made a real sign-in
take 8 s instead of 0.6 s. Two defences meet here: the throttle (wrong tries per account and
per client address, 429 before any hash) and the hasher's fair share (the threads are handed
out in turn between accounts, so one account's storm delays another's sign-in by about the
hash in progress, not by the storm's whole queue).

The target: sign-ins' p99 during the storm at most PW_STORM_P99_TARGET (2) times idle, the
median of alternating pairs. Why 2: with a fair share, a sign-in that arrives during the storm
waits for the storm hash already running on its thread (at most one hash) and then for its own,
so it may take up to twice as long as alone, and no longer however big the storm; a sign-in
queued behind the storm (the issue's 13 times) is far beyond. The p50 ratio is reported too.

The phase starts servers of its own after the others have stopped, on the run's database and
secret (the run's tokens serve them), each with TRUSTED_PROXIES=127.0.0.1 so that the harness
can play distinct clients through X-Forwarded-For: the attackers each from an address of their
own, the real sign-ins from 127.0.0.1. Without that every request would come from one address
and the per-client limit, counting the attackers' failures, would refuse the real sign-ins
too: a test of that limit, not of the sign-ins' latency.

- **defaults**: the throttle's production defaults, read from the Settings class (so neither
  the harness's environment nor --api-env can widen or narrow them). The storm gets a few
  hashes per account and window through and is then answered 429, each after the refusal
  delay (LOGIN_REFUSAL_DELAY_MS): its connections wait instead of asking again at once, so
  that it gets about PW_STORM_CONNECTIONS refusals a second per second of delay. (Without
  the delay, thousands of 429s a second took both cores from the sign-ins' hashes.)
- **widened**: the same, with the per-account and per-client limits raised out of reach
  through their documented settings, so that every wrong try costs a hash: the fair share
  alone keeps sign-ins responsive. (Reported and judged separately: the defaults alone hold
  the storm to a few hashes, too few to test the fair share.)

Two storms on each: from one account, and from PW_STORM_ACCOUNTS accounts (each from its own
address). The fair share is per account, so the several-accounts storm gets one share per
account; with the throttle widened it is reported, not judged (on the defaults, the throttle
limits it and it is judged).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from healthcare.entrypoints.settings import Settings

from .config import (
    PW_LOGIN_CONNECTIONS,
    PW_LOGIN_SHARE,
    PW_STORM_ACCOUNTS,
    PW_STORM_CONNECTIONS,
    PW_STORM_MIN_SECONDS,
    PW_STORM_P99_TARGET,
    PW_STORM_PAIRS,
    PW_STORM_SIGNERS,
    STORM_SETTLE_SECONDS,
    Config,
)
from .load import Load, WrkOptions, ms
from .pairs import alongside, alternating_pairs, pair_medians, per_second, ratio
from .runtime import CLEANUP, log
from .servers import Server, start_api

# The throttle's settings (README: "Configuration") and the Settings fields they fill.
THROTTLE_SETTINGS = {
    "LOGIN_ATTEMPTS_PER_USERNAME": "login_attempts_per_username",
    "LOGIN_FAILURES_PER_CLIENT": "login_failures_per_client",
    "LOGIN_WINDOW_SECONDS": "login_window_seconds",
    "LOGIN_REFUSAL_DELAY_MS": "login_refusal_delay_ms",
}
OUT_OF_REACH = str(10**9)
# A storm that causes fewer hashes a second than this share of the machine's hashing
# capacity leaves the threads idle most of the time: it cannot test the fair share.
FAIR_SHARE_TESTED_SHARE = 0.5
STORM_PATH = "/api/auth/password/"


def production_throttle() -> dict[str, str]:
    """The throttle's settings at the defaults a production server starts with."""
    defaults = {f.name: f.default for f in fields(Settings)}
    return {name: str(defaults[attribute]) for name, attribute in THROTTLE_SETTINGS.items()}


@dataclass(frozen=True)
class Throttling:
    name: str
    env: dict[str, str]
    judge_several_accounts: bool


def throttlings() -> tuple[Throttling, ...]:
    defaults = production_throttle()
    widened = {
        **defaults,
        "LOGIN_ATTEMPTS_PER_USERNAME": OUT_OF_REACH,
        "LOGIN_FAILURES_PER_CLIENT": OUT_OF_REACH,
    }
    return (Throttling("defaults", defaults, True), Throttling("widened", widened, False))


@dataclass
class Accounts:
    """Hands out storm accounts never used before on a server, each with an address of its
    own: the throttle's counters outlive a pair (its window is minutes), so each pair's storm
    starts from untouched counts, as the first did."""

    users: list[int]
    server_index: int
    taken: int = 0
    addresses: dict[int, str] = field(default_factory=dict)

    def take(self, count: int) -> list[int]:
        if self.taken + count > len(self.users):
            raise SystemExit(f"password storm: not enough seeded users for {count} more")
        chosen = self.users[self.taken : self.taken + count]
        for user in chosen:
            n = self.taken
            self.addresses[user] = f"10.{self.server_index + 1}.{n // 250}.{n % 250 + 1}"
            self.taken += 1
        return chosen


def pairs_possible(users: int, wanted: int) -> int:
    """Pairs that the seeded users allow: each pair's two storms take fresh accounts."""
    per_pair = 1 + PW_STORM_ACCOUNTS
    return min(wanted, max(users - PW_STORM_SIGNERS, 0) // per_pair)


def storm_figures(storm: dict[str, Any]) -> dict[str, Any]:
    """What one storm window did: its rate, how it was answered, and the hashes it caused.

    A 400 is a wrong current password that was checked (one hash); a 429 was refused before
    any hash; a 401 would mean the storm's token was refused (no password checked: a broken
    run); anything else (a 2xx, a 5xx) is a defect.
    """
    statuses = storm.get("statuses", {})
    seconds = storm.get("duration_us", 0) / 1e6
    hashes = int(statuses.get("400", 0))
    return {
        "storm_requests": int(storm.get("requests", 0)),
        "storm_rps": per_second(storm) if storm else 0.0,
        "storm_400": hashes,
        "storm_401": int(statuses.get("401", 0)),
        "storm_429": int(statuses.get("429", 0)),
        "storm_other": int(statuses.get("2xx", 0)) + int(statuses.get("other", 0)),
        "storm_socket_errors": sum(
            int(v) for k, v in storm.get("errors", {}).items() if k != "status"
        ),
        "storm_hashes": hashes,
        "storm_hashes_per_s": round(hashes / seconds, 2) if seconds else 0.0,
    }


def judge(pairs: list[dict[str, Any]], *, judged: bool, hash_capacity: float) -> dict[str, Any]:
    """One variant's verdict from its pairs: the medians, and the checks.

    Judged on the median of the pairs' p99 ratios (at most PW_STORM_P99_TARGET), no failed
    sign-in in any window (a 429 or a timeout is not a responsive sign-in), a storm in every
    pair, and a storm answered only 400 or 429 (a 401 means it checked no password; a 2xx or
    5xx is a defect). ``judged`` False: reported, ``pass`` None.
    """
    medians = pair_medians(pairs)
    checks = {
        "p99_ratio": 0 < medians["p99_ratio"] <= PW_STORM_P99_TARGET,
        "zero_login_errors": sum(p["login_errors"] for p in pairs) == 0,
        "storm_ran": all(p["storm_requests"] > 0 for p in pairs),
        "storm_answered_400_or_429": all(
            p["storm_401"] == 0 and p["storm_other"] == 0 and p["storm_socket_errors"] == 0
            for p in pairs
        ),
    }
    share = medians["storm_hashes_per_s"] / hash_capacity if hash_capacity else 0.0
    return {
        **medians,
        "login_errors": sum(p["login_errors"] for p in pairs),
        "storm_hash_share": round(share, 3),
        "fair_share_tested": share >= FAIR_SHARE_TESTED_SHARE,
        "checks": checks,
        "judged": judged,
        "pass": all(checks.values()) if judged else None,
        "pairs": pairs,
    }


def _storm_env(accounts: Accounts, users: list[int]) -> dict[str, str]:
    return {
        "BENCH_STORM_USERS": ",".join(map(str, users)),
        "BENCH_STORM_CLIENTS": ",".join(accounts.addresses[u] for u in users),
    }


def _variant(
    load: Load,
    server: Server,
    accounts: Accounts,
    *,
    storm_accounts: int,
    pairs: int,
    window: float,
    logins: WrkOptions,
) -> list[dict[str, Any]]:
    def pair(_index: int) -> dict[str, Any]:
        storm_env = _storm_env(accounts, accounts.take(storm_accounts))
        idle = load.measure(server, "login", window, **logins)
        # The storm starts with the measurement (no ramp): a storm on the defaults gets its
        # few hashes in its first moments, before the throttle answers 429, and they must
        # fall inside the window.
        during, storm = alongside(
            lambda: load.wrk(
                server,
                "password_change",
                window + 2,
                connections=PW_STORM_CONNECTIONS,
                timeout_s=30.0,
                extra_env=storm_env,
            ),
            lambda: load.measure(server, "login", window, **logins),
            ramp_s=0.0,
            join_timeout_s=window + 120,
        )
        figures = storm_figures(storm)
        log(
            f"    storm {figures['storm_rps']:.0f} rps: {figures['storm_400']} × 400 "
            f"(hashed), {figures['storm_429']} × 429, {figures['storm_401']} × 401, "
            f"{figures['storm_other']} other"
        )
        return {
            "idle_logins": idle.requests,
            "idle_p50_ms": ms(idle.p50_ms),
            "idle_p99_ms": ms(idle.p99_ms),
            "storm_logins": during.requests,
            "storm_p50_ms": ms(during.p50_ms),
            "storm_p99_ms": ms(during.p99_ms),
            "p50_ratio": ratio(during.p50_ms, idle.p50_ms),
            "p99_ratio": ratio(during.p99_ms, idle.p99_ms),
            "login_errors": idle.errors + during.errors,
            **figures,
        }

    return alternating_pairs(pairs, STORM_SETTLE_SECONDS, pair)


def password_storm_check(
    cfg: Config, load: Load, secret: str, hash_seconds: float
) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    hash_capacity = cores / hash_seconds
    rate = round(PW_LOGIN_SHARE * hash_capacity, 2)
    users = list(range(1, cfg.sizes.users + 1))
    signers, pool = users[:PW_STORM_SIGNERS], users[PW_STORM_SIGNERS:]
    pairs = pairs_possible(len(users), min(cfg.rounds, PW_STORM_PAIRS))
    if pairs < 1:
        raise SystemExit(
            f"password storm: {len(users)} users are too few "
            f"({PW_STORM_SIGNERS} sign in, {1 + PW_STORM_ACCOUNTS} storm per pair)"
        )
    window = max(cfg.duration, PW_STORM_MIN_SECONDS)
    logins: WrkOptions = {
        "connections": PW_LOGIN_CONNECTIONS,
        "timeout_s": 30.0,
        "extra_env": {
            "BENCH_RATE": str(rate),
            "BENCH_LOGIN_USERS": ",".join(map(str, signers)),
        },
    }
    variants: list[dict[str, Any]] = []
    for index, throttling in enumerate(throttlings()):
        server = start_api(
            cfg,
            cfg.database_url,
            secret,
            f"api-password-storm-{throttling.name}",
            {**throttling.env, "TRUSTED_PROXIES": "127.0.0.1"},
        )
        accounts = Accounts(pool, index)
        try:
            load.wrk(server, "login", max(cfg.warmup, 2.0), **logins)  # warm-up, unmeasured
            for storm_accounts in (1, PW_STORM_ACCOUNTS):
                log(
                    f"password storm ({throttling.name} throttling) from {storm_accounts} "
                    f"account(s) vs sign-ins at {rate}/s: {pairs} pair(s)"
                )
                found = _variant(
                    load,
                    server,
                    accounts,
                    storm_accounts=storm_accounts,
                    pairs=pairs,
                    window=window,
                    logins=logins,
                )
                judged = storm_accounts == 1 or throttling.judge_several_accounts
                verdict = judge(found, judged=judged, hash_capacity=hash_capacity)
                variants.append(
                    {"throttling": throttling.name, "storm_accounts": storm_accounts, **verdict}
                )
                log(
                    f"  sign-in p99 ratio {verdict['p99_ratio']:.2f}, p50 ratio "
                    f"{verdict['p50_ratio']:.2f}, storm hashes {verdict['storm_hashes']:.0f}"
                    f" ({verdict['storm_hash_share']:.0%} of capacity); pass {verdict['pass']}"
                )
        finally:
            CLEANUP.stop(server.process)
    return {
        "logins": f"POST /api/auth/login/ of users {signers[0]}..{signers[-1]} at {rate}/s "
        f"({PW_LOGIN_SHARE:.0%} of the hashing capacity, {cores} cores ÷ one hash), "
        f"{PW_LOGIN_CONNECTIONS} connections, from 127.0.0.1",
        "storm": f"POST {STORM_PATH} with a wrong current_password, "
        f"{PW_STORM_CONNECTIONS} connections, each storm account from its own address",
        "window_s": window,
        "hash_capacity_per_s": round(hash_capacity, 2),
        "throttling": {t.name: t.env for t in throttlings()},
        "target": f"sign-in p99 during the storm <= {PW_STORM_P99_TARGET:g} x idle",
        "variants": variants,
        "pass": all(v["pass"] for v in variants if v["judged"]),
    }

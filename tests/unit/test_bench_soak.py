"""The soak's verdicts (bench/harness/endurance.py) and the metrics scrape's count
(bench/harness/metrics_cost.py). No servers: canned minutes, memory readings and scrapes."""

from __future__ import annotations

from typing import Any

import pytest

from harness.endurance import judge, scrape_ok
from harness.metrics_cost import requests_counted
from harness.servers import start_orders

RATE = 500.0


def minute(index: int, p99: float = 10.0, errors: int = 0, rps: float = RATE) -> dict[str, Any]:
    return {"minute": index, "rps": rps, "p99_ms": p99, "errors": errors}


def rss(*workers: float, pids: tuple[int, ...] = (11, 12)) -> dict[str, Any]:
    return {"pids": list(pids), "workers_mib": list(workers)}


def scrapes(*oks: bool) -> list[dict[str, Any]]:
    return [{"t": 5.0 * (i + 1), "requests": float(i), "ok": ok} for i, ok in enumerate(oks)]


def verdict(**changes: Any) -> dict[str, bool]:
    args: dict[str, Any] = {
        "minutes": [minute(1, 12.0), minute(2, 10.0), minute(3, 11.0)],
        "start": rss(100.0, 100.0),
        "end": rss(104.0, 101.0),
        "scrapes": scrapes(True, True, True),
        "rate": RATE,
        "warmup_errors": 0,
    }
    args.update(changes)
    checks, _ = judge(**args)
    return checks


def test_a_clean_soak_passes_every_criterion() -> None:
    assert all(verdict().values())


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        ({"warmup_errors": 1}, "zero_errors"),
        ({"minutes": [minute(1), minute(2, errors=3), minute(3)]}, "zero_errors"),
        ({"minutes": [minute(1), minute(2), minute(3, rps=RATE * 0.8)]}, "rate_held"),
        ({"end": rss(105.0, 100.0)}, "flat_memory"),
        ({"end": rss(100.0, 100.0, pids=(11, 13))}, "flat_memory"),
        ({"minutes": [minute(1, 5.0), minute(2, 10.0), minute(3, 12.5)]}, "stable_p99"),
        ({"scrapes": scrapes(True, False, True)}, "metrics_scraped"),
        ({"scrapes": []}, "metrics_scraped"),
    ],
)
def test_each_criterion_fails_alone(changes: dict[str, Any], failed: str) -> None:
    checks = verdict(**changes)
    assert [name for name, ok in checks.items() if not ok] == [failed]


def test_the_p99_is_compared_with_the_second_minute_not_the_first() -> None:
    # The first minute may still be warming up: a slow one does not excuse a slow end.
    assert verdict(minutes=[minute(1, 30.0), minute(2, 10.0), minute(3, 12.0)])["stable_p99"]
    assert not verdict(minutes=[minute(1, 30.0), minute(2, 10.0), minute(3, 12.1)])["stable_p99"]


def test_a_scrape_must_answer_and_count_more_than_the_last() -> None:
    assert scrape_ok(10.0, None)
    assert scrape_ok(11.0, 10.0)
    assert not scrape_ok(10.0, 10.0)
    assert not scrape_ok(None, 10.0)


def test_the_requests_counter_is_summed_over_its_labels() -> None:
    text = "\n".join(
        [
            "# HELP healthcare_http_requests_total Requests answered",
            "# TYPE healthcare_http_requests_total counter",
            'healthcare_http_requests_total{method="GET",route="/a",status="200"} 40.0',
            'healthcare_http_requests_total{method="PUT",route="/b",status="404"} 2.0',
            'healthcare_http_requests_created{method="GET",route="/a",status="200"} 1.7e9',
            "healthcare_http_requests_in_flight 3.0",
        ]
    )
    assert requests_counted(text) == 42.0


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [(5, [(True, 3), (False, 2)]), (4, [(True, 2), (False, 2)]), (1, [(True, 1)])],
)
def test_compared_servers_start_in_each_order_for_half_the_rounds(
    rounds: int, expected: list[tuple[bool, int]]
) -> None:
    # The first server started runs a few per cent slower: one start order only would
    # charge that to whichever side it favoured (metrics on or off, today or earlier, the
    # API or the baseline).
    assert start_orders(rounds) == expected

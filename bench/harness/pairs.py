"""Idle and storm windows in alternating pairs, judged on the median of the pairs: what the
login storm (storm.py) and the password-change storm (password_storm.py) share.

One window's p99 is its 1 % slowest requests, and on a shared machine a single pair moves by
a tenth or more between identical runs; so each phase measures a few idle/storm pairs, each
after a pause that lets the previous storm's leftovers drain, and judges the median of the
pairs' ratios.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def alternating_pairs(
    count: int, settle_s: float, pair: Callable[[int], dict[str, Any]]
) -> list[dict[str, Any]]:
    """``pair(index)`` ``count`` times, each after ``settle_s`` seconds: a storm (or the phase
    before the first pair) ends with requests the server is still working on, which the
    load generator has stopped waiting for."""
    pairs = []
    for index in range(count):
        time.sleep(settle_s)
        pairs.append(pair(index))
    return pairs


def alongside(
    background: Callable[[], dict[str, Any]],
    measure: Callable[[], T],
    *,
    ramp_s: float,
    join_timeout_s: float,
) -> tuple[T, dict[str, Any]]:
    """``measure()`` while ``background()`` (a storm) runs in a thread of its own, started
    ``ramp_s`` seconds before the measurement; returns both results (the storm's is empty if
    it had not finished ``join_timeout_s`` seconds after the measurement)."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(background()), daemon=True)
    thread.start()
    time.sleep(ramp_s)
    measured = measure()
    thread.join(join_timeout_s)
    return measured, dict(result)


def ratio(during: float, idle: float) -> float:
    """During ÷ idle, two decimals; 0 when there was no idle figure (never a pass)."""
    return round(during / idle if idle else 0.0, 2)


def per_second(wrk_result: dict[str, Any]) -> float:
    """Requests per second of one wrk run's JSON (0 for a run that did not report)."""
    seconds = wrk_result.get("duration_us", 0) / 1e6
    return round(wrk_result["requests"] / seconds, 1) if seconds else 0.0


def pair_medians(pairs: list[dict[str, Any]]) -> dict[str, float]:
    """The median over the pairs of each numeric figure but the error counts (which the
    phases sum instead: one error in any pair counts)."""
    return {
        key: float(statistics.median(pair[key] for pair in pairs))
        for key, value in pairs[0].items()
        if isinstance(value, int | float) and not isinstance(value, bool)
        if not key.endswith("errors")
    }

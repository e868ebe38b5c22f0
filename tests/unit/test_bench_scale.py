"""The data-scale phase's search and filter verdicts (bench/harness/scale.py): each page's p50
against the unfiltered page's of the same round, judged at 1.5. No servers: canned runs."""

from __future__ import annotations

from typing import Any

import pytest

from harness.config import parse_args
from harness.scale import list_verdicts

ROWS = 1_000_000
CFG = parse_args(["--rounds", "3"])  # 64 connections: keys "@1" and plain


def run(p50: float, errors: int = 0) -> dict[str, Any]:
    return {"p50_ms": p50, "p99_ms": p50 * 3, "rps": 1000 / p50, "errors": errors}


def runs(unfiltered: list[float], search: list[float], errors: int = 0) -> dict[str, Any]:
    """Every server and load gets the same rounds: unfiltered p50s, and the pages' p50s."""
    found: dict[str, Any] = {}
    for target in ("api", "baseline"):
        for suffix in ("@1", ""):
            found[f"{target}:list_patients{suffix}:{ROWS}"] = [run(x) for x in unfiltered]
            for page in ("search_patients", "filter_order_patients"):
                found[f"{target}:{page}{suffix}:{ROWS}"] = [run(x, errors) for x in search]
    return found


def test_the_ratio_is_the_median_of_the_rounds_page_over_unfiltered() -> None:
    # Per round 1.2, 3.0, 1.4: the median is 1.4, not the ratio of the medians (2/1 = 2.0).
    verdicts = list_verdicts(runs([1.0, 1.0, 2.0], [1.2, 3.0, 2.8]), ROWS, CFG)
    assert set(verdicts) == {
        f"{target}:{page}{suffix}"
        for target in ("api", "baseline")
        for page in ("search_patients", "filter_order_patients")
        for suffix in ("@1", "")
    }
    verdict = verdicts["api:search_patients@1"]
    assert verdict["round_ratios"] == [1.2, 3.0, 1.4]
    assert verdict["ratio"] == 1.4
    assert verdict["target"] == 1.5  # in latest.json beside the ratio it judges
    assert verdict["pass"]


@pytest.mark.parametrize(
    ("unfiltered", "page", "errors", "passes"),
    [
        ([1.0] * 3, [1.5] * 3, 0, True),  # at the limit
        ([1.0] * 3, [1.51] * 3, 0, False),
        ([1.0] * 3, [1.0] * 3, 1, False),  # fast, but with an error
    ],
)
def test_a_page_passes_within_one_and_a_half_times_and_without_errors(
    unfiltered: list[float], page: list[float], errors: int, passes: bool
) -> None:
    verdicts = list_verdicts(runs(unfiltered, page, errors), ROWS, CFG)
    assert {v["pass"] for v in verdicts.values()} == {passes}

"""The earlier-commit comparison (bench/harness/regression.py): its verdict per scenario, from
canned rounds. No servers."""

from __future__ import annotations

from harness.load import Run
from harness.regression import REGRESSION_TARGET, Pair, judge


def run(rps: float, errors: int = 0) -> Run:
    return Run("get_patient", "x", 64, 6.0, int(rps * 6), rps, 20, 30, 40, 50, errors, {}, 1, 1)


def rounds(*pairs: tuple[float, float], errors: int = 0) -> list[Pair]:
    """(API rps, baseline rps) per round."""
    return [(run(api, errors), run(base)) for api, base in pairs]


def test_the_change_is_the_median_of_the_rounds_ratio_today_over_ratio_earlier() -> None:
    # Today's API is slower than the earlier one, but so is today's baseline (the same new
    # work on both): the API's overhead did not grow.
    today = rounds((800, 1000), (720, 900), (900, 1000))
    earlier = rounds((900, 1125), (800, 1000), (1000, 1000))
    [row] = judge({"get_patient": today}, {"get_patient": earlier})
    assert row["round_changes"] == [1.0, 1.0, 0.9]
    assert row["change"] == 1.0
    assert row["ratio"] == 0.8
    assert row["earlier_ratio"] == 0.8
    assert row["api_rps"] == 800
    assert row["api_change"] == 0.9  # the APIs alone: 800/900, 720/800, 900/1000
    assert row["pass"]


def test_a_ratio_that_dropped_by_more_than_three_per_cent_fails() -> None:
    assert REGRESSION_TARGET == 0.97
    today = rounds((960, 1000), (965, 1000), (1000, 1000))
    earlier = rounds((1000, 1000), (1000, 1000), (1000, 1000))
    [row] = judge({"get_patient": today}, {"get_patient": earlier})
    assert row["change"] == 0.965
    assert not row["pass"]


def test_errors_fail_the_scenario_whatever_the_ratio() -> None:
    today = rounds((1100, 1000), errors=3)
    [row] = judge({"get_patient": today}, {"get_patient": rounds((1000, 1000))})
    assert row["errors"] == 3
    assert not row["pass"]

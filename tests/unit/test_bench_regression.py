"""The earlier-commit comparison (bench/harness/regression.py): its verdict per scenario, from
canned rounds. No servers."""

from __future__ import annotations

from harness.load import Run
from harness.regression import REFERENCE, REGRESSION_TARGET, judge


def run(target: str, rps: float, errors: int = 0) -> Run:
    return Run("get_patient", target, 64, 6.0, int(rps * 6), rps, 20, 30, 40, 50, errors, {}, 1, 1)


def rounds(*pairs: tuple[float, float], errors: int = 0) -> list[Run]:
    """Rounds as the scenarios phase records them: today's run, then the earlier API's."""
    out = []
    for today, earlier in pairs:
        out += [run("api", today, errors), run(REFERENCE, earlier)]
    return out


def test_the_ratio_is_the_median_of_the_rounds_today_over_earlier() -> None:
    [row] = judge({"get_patient": rounds((990, 1000), (900, 1000), (1010, 1000))})
    assert row["round_ratios"] == [0.99, 0.9, 1.01]
    assert row["ratio"] == 0.99
    assert row["today_rps"] == 990
    assert row["earlier_rps"] == 1000
    assert row["pass"]


def test_a_drop_of_more_than_three_per_cent_fails() -> None:
    assert REGRESSION_TARGET == 0.97
    [row] = judge({"get_patient": rounds((960, 1000), (965, 1000), (1000, 1000))})
    assert row["ratio"] == 0.965
    assert not row["pass"]


def test_errors_fail_the_scenario_whatever_the_ratio() -> None:
    [row] = judge({"get_patient": rounds((1100, 1000), errors=3)})
    assert row["errors"] == 3
    assert not row["pass"]

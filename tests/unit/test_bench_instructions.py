"""The instruction counter (bench/harness/instructions.py): what it reads off callgrind's
report, and the scenarios it offers. No valgrind here."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import inprocess, instructions

_ANNOTATED = """\
--------------------------------------------------------------------------------
Profile data file 'callgrind.out' (creator: callgrind-3.19.0)
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
312,561,876 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
 45,530,001 (14.57%)  Python/ceval.c:_PyEval_EvalFrameDefault
"""


def test_the_total_is_read_from_the_program_totals_line() -> None:
    found = instructions._TOTALS.search(_ANNOTATED)
    assert found is not None
    assert int(found[1].replace(",", "")) == 312_561_876


def test_a_function_at_a_hundred_per_cent_is_not_taken_for_the_total() -> None:
    only_a_function = "1,000 (100.0%)  Python/ceval.c:main\n"
    assert instructions._TOTALS.search(only_a_function) is None


def test_the_child_is_read_for_its_scenarios_without_loading_the_app() -> None:
    assert len(inprocess.SCENARIOS) == 8
    assert "create_asgi_app" not in vars(inprocess)


def test_an_unknown_scenario_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown scenarios: login"):
        instructions._run("HEAD", ["get_patient", "login"], 10, 1, "postgresql://x/y", tmp_path)


def test_the_table_gives_each_scenario_its_medians_and_change() -> None:
    rows: list[dict[str, object]] = [
        {"scenario": "get_patient", "today": 1_041_872, "earlier": 1_058_717, "change": 0.9841}
    ]
    text = instructions._markdown("7b77090", 300, 3, rows)
    assert "| get_patient | 1,041,872 | 1,058,717 | 0.984 |" in text
    assert "`bench/run.py --instructions 7b77090`" in text

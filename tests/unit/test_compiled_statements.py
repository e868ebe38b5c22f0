"""What transaction.py reads of SQLAlchemy's compiled statements, and its cache of them.

DriverTransaction runs statements on psycopg directly, from SQLAlchemy's compiled form: it
reads ``SQLCompiler.binds``, ``bind_names``, ``insert_prefetch``, ``update_prefetch``,
``positional`` and ``string``, and of each bind ``value``, ``callable``, ``expanding`` and
``type.bind_processor``. These are internals with no promise behind them (hence the pin on
SQLAlchemy's minor version in pyproject.toml): if an upgrade changes their shape, these tests
fail, loudly and before anything else does.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from healthcare.adapters.persistence.sqlalchemy import transaction
from healthcare.adapters.persistence.sqlalchemy.tables import audit_event, patient

DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


def test_compiled_statements_have_the_shape_transaction_reads() -> None:
    statement = (
        update(patient)
        .where(patient.c.id == bindparam("b_id"))
        .values(name=bindparam("name"), age=literal(3))
        .returning(patient.c.id)
    )
    compiled = statement.compile(dialect=DIALECT, column_keys=["name"])

    assert isinstance(compiled, SQLCompiler)
    assert isinstance(compiled.string, str) and "UPDATE patient" in compiled.string
    assert compiled.positional is False  # psycopg takes named %(name)s parameters
    assert isinstance(compiled.insert_prefetch, list)
    assert isinstance(compiled.update_prefetch, list)
    binds = list(compiled.binds.values())
    assert binds and all(isinstance(b, BindParameter) for b in binds)
    names = {compiled.bind_names[b] for b in binds}
    assert {"b_id", "name"} <= names
    for bind in binds:
        assert bind.callable is None
        assert bind.expanding is False
        processor = bind.type.bind_processor(DIALECT)
        assert processor is None or callable(processor)
    assert 3 in [b.value for b in binds]  # the literal's value, bound by us


def test_a_compiled_statement_binds_literals_and_processes_column_types() -> None:
    statement = insert(audit_event).values(action=literal("patient.read"))
    compiled = transaction._compiled(statement, DIALECT, ("occurred_at", "outcome", "request_id"))

    assert compiled is not None
    assert compiled.sql.startswith("INSERT INTO audit_event")
    values = compiled.values(
        {"occurred_at": datetime(2026, 1, 1, tzinfo=UTC), "outcome": "success", "request_id": "r"}
    )
    assert "patient.read" in values.values()
    with pytest.raises(TypeError, match="tzinfo is required"):  # DateTimeUTC's processor
        compiled.values({"occurred_at": datetime(2026, 1, 1), "outcome": "x", "request_id": "r"})


def test_statements_sqlalchemy_must_run_itself_are_recognised() -> None:
    expanding = select(patient.c.id).where(patient.c.id.in_(bindparam("ids", expanding=True)))
    assert transaction._compiled(expanding, DIALECT) is None


def test_the_cache_keeps_the_statements_in_use_when_others_flood_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transaction, "_COMPILED", type(transaction._COMPILED)())
    monkeypatch.setattr(transaction, "_COMPILED_MAX", 8)
    hot = select(patient.c.id).where(patient.c.id == bindparam("id"))
    first = transaction._compiled(hot, DIALECT)

    for n in range(40):  # statements built per call, each used once
        transaction._compiled(select(literal(n)), DIALECT)
        assert transaction._compiled(hot, DIALECT) is first  # still cached, not recompiled

    assert len(transaction._COMPILED) == 8
    oldest = next(iter(transaction._COMPILED))
    assert oldest[0] is not hot

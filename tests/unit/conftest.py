from __future__ import annotations

import pytest

from healthcare.domain.entities import Principal
from tests.unit.factories import Core


@pytest.fixture
def core() -> Core:
    return Core()


@pytest.fixture
def alice() -> Principal:
    return Principal(user_id=1001)


@pytest.fixture
def bob() -> Principal:
    return Principal(user_id=1002)


@pytest.fixture
def admin() -> Principal:
    return Principal(user_id=1003, is_admin=True)

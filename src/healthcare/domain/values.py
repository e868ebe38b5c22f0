"""How the domain declares its immutable records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def value_object(cls: type[_T]) -> type[_T]:
    """A slotted dataclass that the type checker holds immutable (``make lint`` refuses any
    assignment to a field; a change is ``dataclasses.replace``).

    Not ``frozen=True`` at run time: a frozen dataclass sets each field through
    ``object.__setattr__``, which made building one about six times slower (2.1 µs against
    0.37 µs for eight fields). Repositories build one per row, so a page of 100 doctors paid
    a fifth of a millisecond for the guard alone.
    """
    # Hashable as a frozen dataclass is: the fields never change.
    return dataclass(slots=True, unsafe_hash=True)(cls)

"""In-memory persistence: the unit tests' fakes, and an adapter anyone can select."""

from healthcare.adapters.persistence.memory.unit_of_work import MemoryStore, MemoryUnitOfWork

__all__ = ["MemoryStore", "MemoryUnitOfWork"]

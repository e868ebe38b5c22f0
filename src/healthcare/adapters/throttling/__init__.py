"""Counters for brute-force throttling: in process memory, or in Redis across workers."""

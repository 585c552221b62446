"""Majorities: how many voters decide, and what a majority of them reached."""

from __future__ import annotations

__all__ = ["quorum", "quorum_value"]


def quorum(voters: int) -> int:
    """How many of `voters` make a majority."""
    return voters // 2 + 1


def quorum_value(values: list[int]) -> int:
    """The highest value at least a majority of `values` reach (0 with none)."""
    if not values:
        return 0
    ordered = sorted(values, reverse=True)
    return ordered[quorum(len(ordered)) - 1]

"""Strict JSON parsing helpers for untrusted input: no duplicate keys, no NaN or Infinity.

Python's json module keeps the last of two equal keys and accepts NaN: both let two readers of
the same bytes disagree, which signed headers, keyslots and FHIR input must never allow.
"""

from __future__ import annotations

from typing import Any


def object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` that refuses an object with the same key twice (ValueError)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def refuse_constant(name: str) -> Any:
    """`parse_constant` that refuses NaN, Infinity and -Infinity (ValueError)."""
    raise ValueError(f"{name} is not allowed")

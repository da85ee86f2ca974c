"""Strict JSON for untrusted FHIR input, and typed access to what it holds.

Parsing refuses what would let two readers of the same bytes disagree (duplicate keys, NaN,
Infinity, numbers out of range). NDJSON lines are parsed with orjson when it is installed (the
publisher's extra) and only when the result is certainly the strict decoder's; without orjson the
reader is slower, never different.

The accessors (``text_at``, ``code_at``, ``objects_at``…) read one field of a JSON object and raise
``Invalid`` with the field's path when it does not have the expected type: a hostile shape becomes a
precise, located problem instead of a traceback.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any, cast

from continuity.fhir.vocabulary import MAX_TEXT

try:  # a C parser for NDJSON lines, about 3 times faster; the reader does without it the same way
    import orjson as _orjson
except ImportError:  # the publisher extra is not installed: the strict decoder reads every line
    _orjson = None  # type: ignore[assignment]

JSON = dict[str, Any]


class Invalid(Exception):
    """A resource that cannot be used; the message is the precise English reason.

    ``reason`` is the import report's reason code (``continuity.import_report.DROP_REASONS``): most
    problems are ``invalid``; a reference that leads nowhere is ``unresolved-reference``.
    """

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class _JSONRefused(ValueError):
    pass


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> JSON:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _JSONRefused(f"duplicate key {key[:80]!r} in a JSON object")
            seen.add(key)
    return result


def _refuse_constant(name: str) -> Any:
    raise _JSONRefused(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JSONRefused(f"number {text[:40]} is out of range")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs_without_duplicates, parse_constant=_refuse_constant, parse_float=_finite_float
)


def parse_json(text: str) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys; a clean error for absurd nesting."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise Invalid(f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except _JSONRefused as error:
        raise Invalid(f"invalid JSON: {error}") from None
    except RecursionError:
        raise Invalid("invalid JSON: nested too deeply") from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise Invalid(f"invalid JSON: {error}") from None


def fast_line(raw: bytes) -> JSON | None:
    r"""One NDJSON line parsed by orjson, or None to let the strict decoder above read it.

    The result is used only when it is certainly what ``parse_json`` gives, so records, problems and
    their messages never depend on which parser read a line. orjson accepts only strict RFC 8259 JSON
    (no NaN/Infinity, no number beyond a double, valid UTF-8, no lone surrogate) but keeps the last of
    duplicate keys and reads integers beyond 64 bits as floats, so the line goes to ``parse_json``:
    - when serialising the result again gives fewer ``:`` than the line holds. Outside strings a ``:``
      follows each key; inside them, a ``:`` is written as itself unless escaped as ``\u003a``, so
      (with no ``\u003`` in the line) a dropped duplicate is the only way to lose one;
    - when it is not one resource with a string or no id (a Bundle, an id that is a number), where
      a number could reach a message;
    - when it is nested deeper than orjson serialises (254 levels), or orjson refuses it (its error
      messages are not ours).
    Numbers elsewhere are read through ``float`` by the accessors, which gives the same value.
    """
    if _orjson is None or b"\\u003" in raw:
        return None
    try:
        value = _orjson.loads(raw)
        again = _orjson.dumps(value)
    except (_orjson.JSONDecodeError, _orjson.JSONEncodeError):
        return None
    if (
        value.__class__ is not dict
        or again.count(b":") != raw.count(b":")
        or value.get("resourceType") == "Bundle"
        or value.get("id", "").__class__ is not str
    ):
        return None
    return cast(JSON, value)


# --- internals: typed access to untrusted JSON ----------------------------------------------------


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null"


# The accessors below are the reader's hot path (millions of calls on a large export): each tests the
# usual case first (an exact str, dict or list, as the JSON decoder makes them) and falls back to the
# general checks, which give the same results and the same messages.


# Characters removed from every text the reader keeps: controls (Cc: ESC of a terminal escape, NUL,
# C1), formats (Cf: the bidi overrides and isolates U+202A-202E / U+2066-2069, LRM/RLM, zero-width
# characters, soft hyphen, BOM) and lone surrogates (Cs). A name "EVIL\x1b[2J" or one that reverses
# itself with U+202E must never reach a screen, a log or a PDF as such. Whitespace controls (tab,
# newline) become spaces like any other whitespace.
_STRIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


class _Tally:
    """How many texts had characters removed, read by the converter around each resource."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


STRIPPED = _Tally()


def clean(text: str) -> str:
    """Bound the length of one text value, remove control and bidi characters, collapse whitespace."""
    if (
        len(text) <= MAX_TEXT
        and text.isprintable()  # no control, format or separator character, no space other than " "
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    ):
        return text
    text = text[:MAX_TEXT]
    if not text.isprintable():
        kept = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in _STRIPPED_CATEGORIES)
        if len(kept) != len(text):
            STRIPPED.count += 1
            text = kept
    return " ".join(text.split())


def text_at(node: JSON, key: str, path: str) -> str:
    value = node.get(key)
    if value.__class__ is str:
        if len(value) <= MAX_TEXT and value.isprintable() and "  " not in value and value[:1] != " " != value[-1:]:
            return value
        return clean(value)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{path}.{key} must be a string, not {describe(value)}")
    return clean(value)


def code_at(node: JSON, key: str, path: str) -> str:
    """A string that is matched, not shown (code, system, reference, date): type-checked and bounded only."""
    value = node.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{path}.{key} must be a string, not {describe(value)}")
    return value[:MAX_TEXT].strip()


def object_at(node: JSON, key: str, path: str) -> JSON | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(f"{path}.{key} must be an object, not {describe(value)}")
    return value


def objects_at(node: JSON, key: str, path: str) -> list[tuple[JSON, str]]:
    """The objects of a list element, each with its path; a lone object is accepted as a list of one."""
    value = node.get(key)
    if value is None:
        return []
    base = f"{path}.{key}"
    if value.__class__ is list and len(value) == 1 and value[0].__class__ is dict:
        return [(value[0], base + "[0]")]
    if isinstance(value, dict):
        return [(value, base)]
    if not isinstance(value, list):
        raise Invalid(f"{base} must be a list, not {describe(value)}")
    result = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise Invalid(f"{base}[{index}] must be an object, not {describe(item)}")
        result.append((item, f"{base}[{index}]"))
    return result


def texts_at(node: JSON, key: str, path: str) -> list[str]:
    value = node.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise Invalid(f"{path}.{key} must be a list of strings, not {describe(value)}")
    result = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise Invalid(f"{path}.{key}[{index}] must be a string, not {describe(item)}")
        if cleaned := clean(item):
            result.append(cleaned)
    return result


def boolean_at(node: JSON, key: str, path: str) -> bool | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise Invalid(f"{path}.{key} must be true or false, not {describe(value)}")
    return value


def number_at(node: JSON, key: str, path: str) -> float | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{path}.{key} must be a number, not {describe(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise Invalid(f"{path}.{key} is out of range")
    return result

"""FHIR R4 JSON (IPS and other Bundles, single resources, Bulk NDJSON) → model records.

This is the only module that knows FHIR. The dialect it reads is the contract written in
docs/fhir-input.md; keep the two in step.

How it reads (memory stays bounded on NDJSON, whatever the export size):

- **Pass 1** streams every source once and keeps small per-id indexes only: 96-bit digests of the
  keys (``Type/id``) of the resources that become records (to let the last copy of a duplicate win)
  and of patient/practitioner/organization identifiers (to merge the same person exported twice),
  each patient's birth date and allergy status, compact Medication descriptions, practitioner
  roles and ALD markers. Patients, Practitioners, Organizations and Medications are validated here
  so that anything depending on a rejected one can be skipped with a precise message. An NDJSON
  line of a clinical type that only contributes its key is not even parsed in this pass.
- **Pass 2** streams the sources again and yields records in dependency order: ``Practice`` and
  ``Practitioner`` first, then ``Patient``, then the clinical records. A Bulk export folder holds
  one resource type per file, so each of its files is read exactly once in pass 2.

Both passes over a large uncompressed NDJSON file are shared among worker processes (``workers``):
the main process cuts the file into chunks of whole lines, workers parse them and work out what each
resource says (pass 1: effects on the indexes; pass 2: records), and the main process applies the
chunks in reading order, so indexes, records, their order and the report are those of a serial read.

Problems name the file, the NDJSON line (1-based) or the Bundle entry (0-based, as in
``Bundle.entry[3]``) and the resource key. ``strict=True`` raises ``InputError`` on the first one;
otherwise each bad resource is recorded in the ``ImportReport`` and skipped.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import enum
import functools
import gzip
import hashlib
import json
import math
import multiprocessing
import operator
import os
import pickle
import re
import typing
import unicodedata
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from continuity.errors import InputError

try:  # a C parser for NDJSON lines, about 3 times faster; the reader does without it the same way
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]
from continuity.ins import is_valid_nir
from continuity.model import (
    INS_OIDS,
    Address,
    Allergy,
    AllergyStatus,
    Appointment,
    Condition,
    IdentityStatus,
    Measurement,
    NonSubstitutionReason,
    Patient,
    Practice,
    Practitioner,
    RecentPrescription,
    Record,
    Sex,
    Treatment,
)

__all__ = [
    "MAX_JSON_FILE_BYTES",
    "MAX_LINE_BYTES",
    "PARALLEL_MIN_BYTES",
    "ImportProblem",
    "ImportReport",
    "read_records",
]

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest NDJSON line accepted; a longer one is reported and skipped without being held in memory."""

MAX_JSON_FILE_BYTES = 256 * 1024 * 1024
"""Largest .json file (read whole, as one Bundle). Bigger exports must use NDJSON."""

PARALLEL_MIN_BYTES = 8 * 1024 * 1024
"""Smallest uncompressed NDJSON file whose reading is shared among worker processes by default."""

_MAX_AUTO_WORKERS = 4
_CHUNK_BYTES = 512 * 1024  # lines handed to a worker process at a time (whole lines, about this size)
_SPAN_BLOCK = 64 * 1024  # what the main process reads at a time to cut a file into chunks

_MAX_BUNDLE_DEPTH = 4  # a Bundle inside a Bundle entry is read; deeper nesting is refused
_MAX_TEXT = 4096  # longest text kept from one field (a hostile 10 MB name must not reach the DB)

JSON = dict[str, Any]

# --- vocabulary -----------------------------------------------------------------------------------

_FR = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
_EXT_BIRTH_LIST_GIVEN = _FR + "fr-core-patient-birth-list-given-name"
_EXT_IDENTITY_RELIABILITY = _FR + "fr-core-identity-reliability"
_EXT_INSEE_CODE = _FR + "fr-core-address-insee-code"
_EXT_PRACTITIONER_SPECIALTY = _FR + "fr-core-practitioner-specialty"
_EXT_BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
_RPPS_OID = "urn:oid:1.2.250.1.71.4.2.1"
_ATC = "http://www.whocc.no/atc"
_LOINC = "http://loinc.org"
_CISIS = "https://smt.esante.gouv.fr/fhir/CodeSystem/terminologie-cisis"
_ALD_CODE = "MED-574"
_ALLERGY_SECTION = "48765-2"

# Negations that are coded as if they were entries (docs/fhir-input.md, "Clinical markers").
# Codes are matched whatever their system: real exports get the system wrong often enough.
_NO_KNOWN_ALLERGY_CODES = frozenset({"716186003", "409137002", "no-known-allergies", "no-known-medication-allergies"})
# Food / environmental "no known" say nothing about drugs: not entries, and no effect on the status.
_PARTIAL_NO_ALLERGY_CODES = frozenset(
    {
        "429625007",
        "428607008",
        "no-known-food-allergies",
        "no-known-environmental-allergies",
        "no-known-biologic-allergies",
    }
)
_NO_ALLERGY_INFO_CODES = frozenset({"no-allergy-info"})
_NO_KNOWN_ALLERGY_TEXTS = frozenset(
    {
        "nka",
        "nkda",
        "no known allergy",
        "no known allergies",
        "no known drug allergy",
        "no known drug allergies",
        "aucune allergie connue",
        "pas d'allergie connue",
        "absence d'allergie connue",
    }
)
_NO_PROBLEM_CODES = frozenset({"160245001", "no-known-problems", "no-problem-info"})
_NO_PROBLEM_TEXTS = frozenset({"no current problems", "no known problems", "no current problems or disability"})
_NO_MEDICATION_CODES = frozenset({"787481004", "no-known-medications", "no-medication-info"})
_NO_MEDICATION_TEXTS = frozenset({"no known medications", "no known medication", "no current medications"})

_WEIGHT_CODES = frozenset({"29463-7", "3141-9"})
_HEIGHT_CODES = frozenset({"8302-2", "8306-3", "8308-9"})
# UCUM codes first; then the spellings found in `unit` when an export has no code (matched lower-case).
_WEIGHT_UNITS = {
    **dict.fromkeys(("kg", "kilo", "kilos", "kilogram", "kilograms", "kilogramme", "kilogrammes"), 1.0),
    **dict.fromkeys(("g", "gram", "grams", "gramme", "grammes"), 0.001),
    **dict.fromkeys(("[lb_av]", "lb", "lbs", "pound", "pounds"), 0.45359237),
}
_HEIGHT_UNITS = {
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres", "centimètre", "centimètres"), 1.0),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres", "mètre", "mètres"), 100.0),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), 0.1),
    **dict.fromkeys(("[in_i]", "in", "inch", "inches"), 2.54),
}

_TREATMENT_STATUSES = frozenset({"active", "on-hold", "intended"})
_RECENT_STATUSES = frozenset({"completed", "stopped"})
_DROPPED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
# Organization types (HL7 organization-type) that are not where patients are cared for.
_NOT_A_PRACTICE_TYPES = frozenset({"ins", "pay", "govt", "edu", "reli", "crs", "cg", "bus", "other"})
_TITLES = frozenset({"dr", "dr.", "pr", "pr.", "prof", "prof.", "doctor", "docteur"})

_PERIOD_UNITS_FR = {
    "s": "seconde",
    "min": "minute",
    "h": "heure",
    "d": "jour",
    "wk": "semaine",
    "mo": "mois",
    "a": "an",
}

# Resource types that produce records (and are therefore deduplicated by key).
_SWEEP_ORGS = frozenset({"Organization", "Practitioner"})
_SWEEP_PATIENTS = frozenset({"Patient"})
_SWEEP_CLINICAL = frozenset(
    {"AllergyIntolerance", "Condition", "MedicationRequest", "MedicationStatement", "Observation", "Appointment"}
)
_RECORD_TYPES = _SWEEP_ORGS | _SWEEP_PATIENTS | _SWEEP_CLINICAL
# Read in pass 1 only, for the indexes.
_INDEX_ONLY_TYPES = frozenset({"Medication", "PractitionerRole", "Composition"})
_USED_TYPES = _RECORD_TYPES | _INDEX_ONLY_TYPES
_IDENTITY_TYPES = frozenset({"Patient", "Practitioner", "Organization"})  # merged across sources by identifier

_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_RESOURCE_ID = re.compile(r"[A-Za-z0-9\-._]{1,64}")
_FHIR_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# The usual head of a Bulk export line. Pass 1 needs only the key of most clinical resources, so a line
# that starts this way is not parsed there (pass 2 parses every line strictly).
_LINE_HEAD = re.compile(
    rb'\s*\{\s*"resourceType"\s*:\s*"(MedicationRequest|MedicationStatement|Appointment|Observation|Condition)"'
    rb'\s*,\s*"id"\s*:\s*"([A-Za-z0-9\-._]{1,64})"\s*[,}]'
)
# A line with the bytes of an ALD marker (MED-574, "ALD") or an escape that may hide one (\u) is parsed.
_SUBSTITUTION_REASON = re.compile(r"\b(MTE|EFG|CIF)\b")

_blake2b = hashlib.blake2b

_STATUS_RANK = {AllergyStatus.NO_INFORMATION: 0, AllergyStatus.NONE_KNOWN: 1, AllergyStatus.RECORDED: 2}


# --- public API -----------------------------------------------------------------------------------


@dataclass
class ImportProblem:
    """One bad line or resource, skipped in lenient mode."""

    source: str  # file path
    location: str  # "line 12" (NDJSON), "entry 3" (Bundle, 0-based) or ""
    resource: str  # "MedicationRequest/abc" or ""
    message: str  # precise English

    def __str__(self) -> str:
        return ", ".join(part for part in (self.source, self.location, self.resource) if part) + (f": {self.message}")


@dataclass
class ImportReport:
    """What a read produced and what it refused; filled while the records are being consumed."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[ImportProblem] = field(default_factory=list)
    duplicates: int = 0  # same resource (or same person) seen again: the last one read wins
    ins_dropped: int = 0  # INS present on a non-QUAL identity, dropped
    ignored_types: collections.Counter[str] = field(default_factory=collections.Counter)
    # Accepted with a caveat (partial birth date, "not substitutable" without a valid reason...).
    # Warnings never fail a strict read.
    warnings: list[ImportProblem] = field(default_factory=list)


def read_records(
    sources: Sequence[Path],
    *,
    strict: bool = False,
    report: ImportReport | None = None,
    workers: int | None = None,
) -> Iterator[Record]:
    """Yield model records from FHIR R4 JSON files, NDJSON files and folders of them.

    Args:
        sources: files (``.json``: a Bundle or one resource; ``.ndjson``: one resource a line;
            either may be gzipped, ``.json.gz`` / ``.ndjson.gz``) or folders (every such file
            directly inside, sorted by name).
        strict: raise ``InputError`` on the first problem instead of reporting and skipping.
        report: filled with counts, problems and warnings while the iterator is consumed.
        workers: worker processes that parse and convert the lines of uncompressed NDJSON files in
            both passes (the records, their order and the report are the same whatever the number;
            see docs/fhir-input.md, "Worker processes"). ``None``:
            one per CPU (at most 4) for files of at least ``PARALLEL_MIN_BYTES``, none on a single
            CPU; ``1``: none; ``n >= 2``: ``n`` for every uncompressed NDJSON file.

    Raises:
        InputError: a source that does not exist; in strict mode, the first bad line or resource.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    reader = _Reader(_expand_sources(sources), strict=strict, report=report or ImportReport())
    if workers is None:
        reader.workers = min(_cpu_count(), _MAX_AUTO_WORKERS)
        reader.parallel_min_bytes = PARALLEL_MIN_BYTES
    else:
        reader.workers = workers
        reader.parallel_min_bytes = 0
    return reader.records()


# --- internals: errors and JSON -------------------------------------------------------------------


class _Invalid(Exception):
    """A resource that cannot be used; the message is the precise English reason."""


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


def _parse_json(text: str) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys; a clean error for absurd nesting."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise _Invalid(f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except _JSONRefused as error:
        raise _Invalid(f"invalid JSON: {error}") from None
    except RecursionError:
        raise _Invalid("invalid JSON: nested too deeply") from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise _Invalid(f"invalid JSON: {error}") from None


def _fast_line(raw: bytes) -> JSON | None:
    r"""One NDJSON line parsed by orjson, or None to let the strict decoder above read it.

    The result is used only when it is certainly what ``_parse_json`` gives, so records, problems and
    their messages never depend on which parser read a line. orjson accepts only strict RFC 8259 JSON
    (no NaN/Infinity, no number beyond a double, valid UTF-8, no lone surrogate) but keeps the last of
    duplicate keys and reads integers beyond 64 bits as floats, so the line goes to ``_parse_json``:
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


def _describe(value: Any) -> str:
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


def _clean(text: str) -> str:
    """Collapse whitespace and bound the length of one text value."""
    if (
        len(text) <= _MAX_TEXT
        and text.isprintable()  # no tab, newline or other space than " "
        and "  " not in text
        and text[:1] != " "
        and text[-1:] != " "
    ):
        return text
    return " ".join(text[:_MAX_TEXT].split())


def _str(node: JSON, key: str, path: str) -> str:
    value = node.get(key)
    if value.__class__ is str:
        if len(value) <= _MAX_TEXT and value.isprintable() and "  " not in value and value[:1] != " " != value[-1:]:
            return value
        return _clean(value)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"{path}.{key} must be a string, not {_describe(value)}")
    return _clean(value)


def _code(node: JSON, key: str, path: str) -> str:
    """A string that is matched, not shown (code, system, reference, date): type-checked and bounded only."""
    value = node.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"{path}.{key} must be a string, not {_describe(value)}")
    return value[:_MAX_TEXT].strip()


def _obj(node: JSON, key: str, path: str) -> JSON | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(f"{path}.{key} must be an object, not {_describe(value)}")
    return value


def _objs(node: JSON, key: str, path: str) -> list[tuple[JSON, str]]:
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
        raise _Invalid(f"{base} must be a list, not {_describe(value)}")
    result = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise _Invalid(f"{base}[{index}] must be an object, not {_describe(item)}")
        result.append((item, f"{base}[{index}]"))
    return result


def _strs(node: JSON, key: str, path: str) -> list[str]:
    value = node.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _Invalid(f"{path}.{key} must be a list of strings, not {_describe(value)}")
    result = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _Invalid(f"{path}.{key}[{index}] must be a string, not {_describe(item)}")
        if cleaned := _clean(item):
            result.append(cleaned)
    return result


def _bool(node: JSON, key: str, path: str) -> bool | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _Invalid(f"{path}.{key} must be true or false, not {_describe(value)}")
    return value


def _number(node: JSON, key: str, path: str) -> float | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{path}.{key} must be a number, not {_describe(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise _Invalid(f"{path}.{key} is out of range")
    return result


def _codings(concept: JSON | None, path: str) -> list[tuple[str, str, str]]:
    """(system, code, display) of each coding of a CodeableConcept."""
    if concept is None:
        return []
    result = []
    for coding, coding_path in _objs(concept, "coding", path):
        result.append(
            (
                _code(coding, "system", coding_path),
                _code(coding, "code", coding_path),
                _str(coding, "display", coding_path),
            )
        )
    return result


class _Concept:
    """The readable text and first code of a CodeableConcept, whatever parts it has (read-only)."""

    __slots__ = ("atc_display", "code", "codes", "own_text", "system", "text")

    def __init__(
        self,
        text: str = "",
        code: str = "",
        system: str = "",
        codes: frozenset[str] = frozenset(),
        atc_display: str = "",
        own_text: str = "",  # CodeableConcept.text alone: what a person typed, not a terminology display
    ) -> None:
        self.text = text
        self.code = code
        self.system = system
        self.codes = codes
        self.atc_display = atc_display
        self.own_text = own_text

    @property
    def normalized_text(self) -> str:
        return self.text.casefold().rstrip(".")


_NO_CONCEPT = _Concept()


def _concept(node: JSON, key: str, path: str) -> _Concept:
    concept = node.get(key)
    if concept is None:
        return _NO_CONCEPT
    if concept.__class__ is not dict:
        concept = _obj(node, key, path)  # raises the located message
    return _concept_of(concept, f"{path}.{key}")


def _concept_of(concept: JSON | None, path: str) -> _Concept:
    if concept is None:
        return _NO_CONCEPT
    fast = _concept_fast(concept)
    if fast is not None:
        return fast
    codings = _codings(concept, path)
    text = _str(concept, "text", path)
    display = next((d for _, _, d in codings if d), "")
    first = next(((s, c) for s, c, _ in codings if c), ("", ""))
    atc = next((d for s, _, d in codings if s == _ATC and d), "")
    return _Concept(
        text=text or display,
        code=first[1],
        system=first[0],
        codes=frozenset(c for _, c, _ in codings if c),
        atc_display=atc,
        own_text=text,
    )


def _concept_fast(concept: JSON) -> _Concept | None:
    """`_concept_of` for the usual shapes (None for anything else, read by the general path).

    Usual: ``coding`` absent or a list of objects whose system/code/display are absent or strings,
    ``text`` absent or a string.
    """
    codings = concept.get("coding")
    text = concept.get("text")
    if text is None:
        text = ""
    elif text.__class__ is str:
        text = _clean(text)
    else:
        return None
    if codings is None:
        return _Concept(text, own_text=text) if text else _NO_CONCEPT
    if codings.__class__ is not list:
        return None
    display = code = system = atc = ""
    codes: list[str] = []
    for coding in codings:
        if coding.__class__ is not dict:
            return None
        s = coding.get("system")
        c = coding.get("code")
        d = coding.get("display")
        if s is None:
            s = ""
        elif s.__class__ is str:
            s = s[:_MAX_TEXT].strip()
        else:
            return None
        if c is None:
            c = ""
        elif c.__class__ is str:
            c = c[:_MAX_TEXT].strip()
        else:
            return None
        if d is None:
            d = ""
        elif d.__class__ is str:
            d = _clean(d)
        else:
            return None
        if d:
            display = display or d
            if not atc and s == _ATC:
                atc = d
        if c:
            codes.append(c)
            if not code:
                code, system = c, s
    return _Concept(text or display, code, system, frozenset(codes), atc, text)


def _status_code(node: JSON, key: str, path: str) -> str:
    """A status that is a code (``"active"``) or a CodeableConcept (``{"coding": [...]}``)."""
    value = node.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return _clean(value).lower()
    if isinstance(value, dict):
        concept = _concept_of(value, f"{path}.{key}")
        return (concept.code or concept.text).lower()
    raise _Invalid(f"{path}.{key} must be a code or a CodeableConcept, not {_describe(value)}")


def _extensions(node: JSON, url: str, path: str) -> list[tuple[JSON, str]]:
    return [(ext, ext_path) for ext, ext_path in _objs(node, "extension", path) if ext.get("url") == url]


def _parse_date(value: str, path: str) -> tuple[dt.date | None, bool]:
    """(date, partial): a FHIR date or dateTime; a partial one ("1951", "1951-03") gives (None, True)."""
    match = _FHIR_DATE.fullmatch(value)
    if not match:
        raise _Invalid(f"{path} is not a FHIR date: {value[:40]!r}")
    if match["d"] is None:
        return None, True
    try:
        return dt.date(int(match["y"]), int(match["m"]), int(match["d"])), False
    except ValueError:
        raise _Invalid(f"{path} is not a valid date: {value[:40]!r}") from None


def _date(node: JSON, key: str, path: str) -> dt.date | None:
    value = _code(node, key, path)
    return _parse_date(value, f"{path}.{key}")[0] if value else None


def _datetime(node: JSON, key: str, path: str) -> dt.datetime | None:
    value = _code(node, key, path)
    if not value:
        return None
    match = _FHIR_DATE.fullmatch(value)
    if not match or match["time"] is None:
        raise _Invalid(f"{path}.{key} is not a FHIR dateTime with a time: {value[:40]!r}")
    if match["time"].count(".") and len(match["time"].split(".")[1]) > 6:  # Python keeps microseconds
        value = value.replace(match["time"], match["time"][: match["time"].index(".") + 7], 1)
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Invalid(f"{path}.{key} is not a valid dateTime: {value[:40]!r}") from None


def _address(node: JSON, path: str) -> Address:
    """The current address: home first, never an ``old`` one."""
    candidates = [(a, p) for a, p in _objs(node, "address", path) if _code(a, "use", p) != "old"]
    if not candidates:
        return Address()
    chosen, chosen_path = next(((a, p) for a, p in candidates if _code(a, "use", p) == "home"), candidates[0])
    return Address(
        lines=tuple(_strs(chosen, "line", chosen_path)),
        postal_code=_str(chosen, "postalCode", chosen_path),
        city=_str(chosen, "city", chosen_path),
        country=_str(chosen, "country", chosen_path),
    )


def _telecoms(node: JSON, path: str, systems: frozenset[str]) -> list[str]:
    """Contact values of the given systems, by rank then order, without duplicates."""
    found: list[tuple[float, int, str]] = []
    for index, (point, point_path) in enumerate(_objs(node, "telecom", path)):
        if _code(point, "system", point_path) not in systems:
            continue
        value = _str(point, "value", point_path)
        for prefix in ("tel:", "mailto:"):
            if value.lower().startswith(prefix):
                value = value[len(prefix) :]
        rank = _number(point, "rank", point_path)
        if value:
            found.append((rank if rank is not None else math.inf, index, value))
    result: list[str] = []
    for _, _, value in sorted(found):
        if value not in result:
            result.append(value)
    return result


# --- internals: sources ---------------------------------------------------------------------------

_SUFFIXES = (".ndjson", ".json", ".ndjson.gz", ".json.gz")


def _expand_sources(sources: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(_SUFFIXES)
                )
            )
        elif path.exists():
            files.append(path)
        else:
            raise InputError(
                f"{path}: no such file or directory",
                message_fr=f"Source introuvable : {path}",
            )
    return files


class _Scope:
    """fullUrl → key of one Bundle (and the Bundles around it)."""

    __slots__ = ("parent", "urls")

    def __init__(self, parent: _Scope | None) -> None:
        self.parent = parent
        self.urls: dict[str, str] = {}

    def get(self, url: str) -> str | None:
        scope: _Scope | None = self
        while scope is not None:
            if (key := scope.urls.get(url)) is not None:
                return key
            scope = scope.parent
        return None


@dataclass(slots=True)
class _Item:
    """One resource read from a source, with where it came from."""

    ordinal: int  # position in its file, identical in both passes (see _Counter)
    location: str
    resource: JSON
    resource_type: str
    key: str  # "Type/id", or "" when the resource has no usable id
    scope: _Scope | None
    light: bool = False  # pass 1 fast path: only the type and key are known, the line was not parsed


@dataclass(slots=True)
class _Unreadable:
    ordinal: int
    location: str
    resource: str
    message: str


def _key_from_url(url: str, resource_type: str) -> str:
    """A resource id derived from an entry's fullUrl when the resource itself has none."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    if url.startswith("urn:uuid:") or url.startswith("urn:oid:"):
        tail = url.split(":", 2)[2]
    return f"{resource_type}/{tail}" if _RESOURCE_ID.fullmatch(tail) else ""


def _resource_key(resource: JSON, resource_type: str, full_url: str) -> str:
    rid = resource.get("id")
    if isinstance(rid, str) and _RESOURCE_ID.fullmatch(rid):
        return f"{resource_type}/{rid}"
    if rid is None and full_url:
        return _key_from_url(full_url, resource_type)
    return ""


def _resource_type(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    resource_type = value.get("resourceType")
    if isinstance(resource_type, str) and _RESOURCE_TYPE.fullmatch(resource_type):
        return resource_type
    return ""


def _is_bulk_manifest(value: Any) -> bool:
    return (
        isinstance(value, dict) and "resourceType" not in value and "output" in value and ("transactionTime" in value)
    )


class _SourceFile:
    """Reads one file as a stream of items (and unreadable lines), the same way on every pass."""

    def __init__(self, path: Path) -> None:
        self.path = path
        name = path.name.lower()
        self.gzipped = name.endswith(".gz")
        self.ndjson = name.removesuffix(".gz").endswith(".ndjson")

    def _open(self) -> IO[bytes]:
        if self.gzipped:
            return cast(IO[bytes], gzip.open(self.path, "rb"))
        return self.path.open("rb")

    def items(self, *, light: bool = False, span: _Span | None = None) -> Iterator[_Item | _Unreadable]:
        """The resources of the file; ``light`` lets key-only NDJSON lines through unparsed.

        ``span`` limits an uncompressed NDJSON file to whole lines from a byte offset (a chunk read
        by a worker process); items and positions are exactly those of a whole read.
        """
        if not self.path.name.lower().endswith(_SUFFIXES):
            yield _Unreadable(0, "", "", "unsupported file type (expected .json or .ndjson, optionally .gz)")
            return
        try:
            if self.ndjson:
                yield from self._ndjson_items(light, span or _Span(0, -1, 1))
            else:
                yield from self._json_items()
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            yield _Unreadable(-1, "", "", f"cannot read the file: {error}")

    def _ndjson_items(self, light: bool, span: _Span) -> Iterator[_Item | _Unreadable]:
        with self._open() as stream:
            if span.start:
                stream.seek(span.start)
            position, end = span.start, span.end
            number = span.first_line - 1
            while end < 0 or position < end:
                raw = stream.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    break
                position += len(raw)
                number += 1
                first = number << 32  # the ordinal of the line's first resource (see _Counter)
                location = f"line {number}"
                if len(raw) > MAX_LINE_BYTES and raw[-1:] != b"\n":
                    while raw and raw[-1:] != b"\n":  # drop the rest of the line, chunk by chunk
                        raw = stream.readline(MAX_LINE_BYTES)
                        position += len(raw)
                    yield _Unreadable(first, location, "", f"line longer than {MAX_LINE_BYTES} bytes")
                    continue
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if raw[:1] != b"{" and not raw.strip():
                    continue
                if (
                    light
                    and (head := _LINE_HEAD.match(raw))
                    and b"MED-574" not in raw  # the bytes of an ALD marker (or an escape that may hide one)
                    and b'"ALD"' not in raw
                    and b"\\u" not in raw
                ):
                    resource_type = head[1].decode()
                    key = f"{resource_type}/{head[2].decode()}"
                    yield _Item(first, location, {}, resource_type, key, None, light=True)
                    continue
                try:
                    value = _fast_line(raw)
                    if value is None:
                        value = _parse_json(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    yield _Unreadable(first, location, "", "line is not valid UTF-8")
                    continue
                except _Invalid as error:
                    yield _Unreadable(first, location, "", str(error))
                    continue
                resource_type = _resource_type(value)
                if resource_type and resource_type != "Bundle":  # the usual line: one resource
                    key = _resource_key(value, resource_type, "")
                    yield _Item(first, location, value, resource_type, key, None)
                else:
                    yield from _expand(value, location, None, _Counter(number), 0)

    def _json_items(self) -> Iterator[_Item | _Unreadable]:
        if not self.gzipped and self.path.stat().st_size > MAX_JSON_FILE_BYTES:
            yield _Unreadable(0, "", "", f"file larger than {MAX_JSON_FILE_BYTES} bytes; export NDJSON instead")
            return
        with self._open() as stream:
            data = stream.read(MAX_JSON_FILE_BYTES + 1)
        if len(data) > MAX_JSON_FILE_BYTES:
            yield _Unreadable(0, "", "", f"file larger than {MAX_JSON_FILE_BYTES} bytes; export NDJSON instead")
            return
        try:
            value = _parse_json(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            yield _Unreadable(0, "", "", "file is not valid UTF-8")
            return
        except _Invalid as error:
            yield _Unreadable(0, "", "", str(error))
            return
        if _is_bulk_manifest(value):
            return
        yield from _expand(value, "", None, _Counter(0), 0)


class _Counter:
    """Ordinals of the resources of one NDJSON line (or of a whole .json file, line 0).

    An ordinal is ``line << 32 | index in the line``: a chunk of lines read apart (by a worker
    process) numbers its resources exactly as a read of the whole file does.
    """

    __slots__ = ("value",)

    def __init__(self, line: int) -> None:
        self.value = (line << 32) - 1

    def next(self) -> int:
        self.value += 1
        return self.value


@dataclass(frozen=True, slots=True)
class _Span:
    """Whole NDJSON lines from byte ``start`` to ``end`` (-1: the end of the file), the first one numbered."""

    start: int
    end: int
    first_line: int


def _expand(
    value: Any, location: str, parent: _Scope | None, counter: _Counter, depth: int
) -> Iterator[_Item | _Unreadable]:
    """One parsed JSON value → its resources: the value itself, or a Bundle's entries."""
    resource_type = _resource_type(value)
    if not resource_type:
        what = "not a JSON object" if not isinstance(value, dict) else "an object without a valid resourceType"
        yield _Unreadable(counter.next(), location, "", f"not a FHIR resource ({what})")
        return
    if resource_type != "Bundle":
        yield _Item(counter.next(), location, value, resource_type, _resource_key(value, resource_type, ""), parent)
        return
    if depth >= _MAX_BUNDLE_DEPTH:
        yield _Unreadable(counter.next(), location, "", "Bundles nested too deeply")
        return
    entries = value.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        yield _Unreadable(counter.next(), location, "", f"Bundle.entry must be a list, not {_describe(entries)}")
        return
    scope = _Scope(parent)
    prefix = f"{location}, " if location else ""
    keyed: list[tuple[Any, str, str]] = []  # (resource or bad entry, fullUrl, key)
    for entry in entries:
        if not isinstance(entry, dict):
            keyed.append((entry, "", ""))
            continue
        resource = entry.get("resource")
        full_url = entry.get("fullUrl")
        full_url = full_url if isinstance(full_url, str) else ""
        entry_type = _resource_type(resource)
        key = _resource_key(resource, entry_type, full_url) if isinstance(resource, dict) and entry_type else ""
        if full_url and key:
            scope.urls[full_url] = key
        keyed.append((entry, full_url, key))
    for index, (entry, _full_url, key) in enumerate(keyed):
        entry_location = f"{prefix}entry {index}"
        if not isinstance(entry, dict):
            yield _Unreadable(counter.next(), entry_location, "", "Bundle entry is not a JSON object")
            continue
        resource = entry.get("resource")
        if resource is None:  # e.g. a DELETE in a transaction, a deleted version in a history
            continue
        entry_type = _resource_type(resource)
        if entry_type == "Bundle":
            yield from _expand(resource, entry_location, scope, counter, depth + 1)
        elif entry_type:
            yield _Item(counter.next(), entry_location, resource, entry_type, key, scope)
        else:
            yield _Unreadable(counter.next(), entry_location, "", "entry.resource is not a FHIR resource")


# --- internals: the reader ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Medication:
    dci: str
    strength: str = ""
    form: str = ""
    label: str = ""
    negation: bool = False


@dataclass(slots=True)
class _Role:
    practitioner_key: str
    specialty: str = ""
    qualite: str = ""
    phone: str = ""
    email: str = ""


class _Reader:
    def __init__(self, files: list[Path], *, strict: bool, report: ImportReport) -> None:
        self.files = files
        self.strict = strict
        self.report = report
        # Pass-1 indexes. Keys are "Type/id" strings.
        self.file_types: list[set[str]] = [set() for _ in files]
        # The two indexes that grow with the export hold 96-bit digests, not strings (memory stays a
        # few dozen bytes per resource); exact strings are kept only for what is found twice.
        self.seen: set[int] = set()  # digests of the keys of the valid resources that produce records
        self.copies: dict[str, int] = {}  # key (or identity) → copies still to skip; only duplicates
        self.alias: dict[str, str] = {}  # key → canonical key of the same person exported twice
        self.identity_index: dict[int, str] = {}  # digest of "Type|system|value" → canonical key
        self.born: dict[str, int] = {}  # canonical Patient key → birth date ordinal (0: unknown)
        self.rejected: set[str] = set()  # keys of invalid Patients/Practitioners/Medications
        self.bad: set[tuple[int, int]] = set()  # (file, ordinal) already reported in pass 1
        self.medications: dict[str, _Medication] = {}
        self.roles: dict[str, _Role] = {}  # PractitionerRole key → role
        self.roles_by_practitioner: dict[str, _Role] = {}
        self.ald_observations: dict[str, bool] = {}  # MED-574 Observation key → valueBoolean
        self.ald_conditions: set[str] = set()
        self.allergy_status: dict[str, AllergyStatus] = {}  # patient key (before aliasing) → status
        self.alias_members: dict[str, list[str]] = {}  # canonical key → the other keys merged into it
        # The clinical records of a person exported twice (merged patients only, so this stays small):
        # the same fact under two resource ids is shown once.
        self.merged_patient_ids: set[str] = set()
        self.merged_records: set[tuple[Any, ...]] = set()
        self.current_file = 0
        self.workers = 1  # worker processes for pass 2 (1: none); set by read_records
        self.parallel_min_bytes = 0
        # Where warnings go: the report, or (pass 2) the outcome of the resource being converted.
        self.warnings_sink: list[ImportProblem] = report.warnings
        self.ins_dropped = False  # set by the Patient converter, collected with its outcome
        self.converters: dict[str, Callable[[_Item], list[Record]]] = {
            "Organization": self._emit_organization,
            "Practitioner": self._emit_practitioner,
            "Patient": self._emit_patient,
            "AllergyIntolerance": self._emit_allergy,
            "Condition": self._emit_condition,
            "MedicationRequest": self._emit_medication_use,
            "MedicationStatement": self._emit_medication_use,
            "Observation": self._emit_observation,
            "Appointment": self._emit_appointment,
        }

    # -- reporting --

    def _problem(self, file_index: int, location: str, resource: str, message: str) -> None:
        problem = ImportProblem(str(self.files[file_index]), location, resource, message)
        if self.strict:
            where = ", ".join(p for p in (problem.source, _location_fr(location), resource) if p)
            raise InputError(str(problem), message_fr=f"Donnée source invalide : {where}.")
        self.report.problems.append(problem)

    def _warn(self, item: _Item, message: str) -> None:
        self._warn_at(item.location, item.key, message)

    def _warn_at(self, location: str, key: str, message: str) -> None:
        source = str(self.files[self.current_file])
        self.warnings_sink.append(ImportProblem(source, location, key, message))

    # -- driver --

    def records(self) -> Iterator[Record]:
        pool: concurrent.futures.ProcessPoolExecutor | None = None
        try:
            for file_index, path in enumerate(self.files):
                self.current_file = file_index
                if self._shared(path):
                    pool = pool or self._start_pool(("files",))
                    self._index_shared(pool, file_index, path)
                    continue
                for unit in _SourceFile(path).items(light=True):
                    if isinstance(unit, _Unreadable):
                        self.bad.add((file_index, unit.ordinal))
                        self._problem(file_index, unit.location, unit.resource, unit.message)
                    else:
                        self._index(file_index, unit)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        yield from self._pass_2()

    def _pass_2(self) -> Iterator[Record]:
        for key, canonical in self.alias.items():
            self.alias_members.setdefault(canonical, []).append(key)
            if canonical.startswith("Patient/"):
                self.merged_patient_ids.add(canonical.split("/", 1)[1])
        pool: concurrent.futures.ProcessPoolExecutor | None = None
        try:
            for sweep in (_SWEEP_ORGS, _SWEEP_PATIENTS, _SWEEP_CLINICAL):
                for file_index, path in enumerate(self.files):
                    if not self.file_types[file_index] & sweep:
                        continue
                    self.current_file = file_index
                    if self._shared(path):
                        pool = pool or self._start_pool(_WORKER_STATE)
                        yield from self._sweep_shared(pool, file_index, path, sweep)
                        continue
                    for unit in _SourceFile(path).items():
                        if (file_index, unit.ordinal) in self.bad:
                            continue
                        if isinstance(unit, _Unreadable):  # a line pass 1 did not parse
                            self.bad.add((file_index, unit.ordinal))
                            self._problem(file_index, unit.location, unit.resource, unit.message)
                        elif unit.resource_type in sweep:
                            yield from self._emit(file_index, unit)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    # -- pass 2 in worker processes --

    def _shared(self, path: Path) -> bool:
        """Whether pass 2 of this file is shared among worker processes."""
        if self.workers < 2 or not path.name.lower().endswith(".ndjson"):
            return False
        try:
            return path.stat().st_size >= self.parallel_min_bytes
        except OSError:
            return False  # the serial read reports it

    def _start_pool(self, names: tuple[str, ...]) -> concurrent.futures.ProcessPoolExecutor:
        """Worker processes holding the named attributes of this reader (pass 2: the pass-1 indexes).

        "spawn": a fresh interpreter, whatever threads the caller runs; the state is sent once to each.
        """
        state = pickle.dumps({name: getattr(self, name) for name in names}, protocol=pickle.HIGHEST_PROTOCOL)
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(state,),
        )

    def _chunks(
        self, pool: concurrent.futures.ProcessPoolExecutor, path: Path, task: Callable[..., bytes], *args: Any
    ) -> Generator[list[_Converted], None, None]:
        """The results of ``task(*args, span)`` for the chunks of a file, in order, a few in flight."""
        spans = _spans(path, _CHUNK_BYTES)
        pending: collections.deque[concurrent.futures.Future[bytes]] = collections.deque()

        def submit() -> None:
            span = next(spans, None)
            if span is not None:
                pending.append(pool.submit(task, *args, span))

        try:
            for _ in range(self.workers + 1):  # bounded: a few chunks in flight
                submit()
            while pending:
                converted: list[_Converted] = pickle.loads(pending.popleft().result())
                submit()
                yield converted
        finally:
            for future in pending:
                future.cancel()
            spans.close()

    def _index_shared(self, pool: concurrent.futures.ProcessPoolExecutor, file_index: int, path: Path) -> None:
        """Pass 1 of one NDJSON file: the workers work out what each resource says, applied here in order."""
        chunks = self._chunks(pool, path, _worker_index_chunk, file_index)
        for converted in chunks:
            for unit in converted:
                if len(unit) == 4:  # unreadable: (ordinal, location, resource, message)
                    self.bad.add((file_index, unit[0]))
                    self._problem(file_index, unit[1], unit[2], unit[3])
                    if unit[0] < 0:  # the file itself could not be read: as a whole read, stop here
                        chunks.close()
                        return
                else:
                    self._index_apply(file_index, *unit)

    def _sweep_shared(
        self, pool: concurrent.futures.ProcessPoolExecutor, file_index: int, path: Path, sweep: frozenset[str]
    ) -> Iterator[Record]:
        """Pass 2 of one NDJSON file, its chunks of lines converted by the workers, applied here in order."""
        chunks = self._chunks(pool, path, _worker_chunk, file_index, sweep)
        bad = {ordinal for bad_file, ordinal in self.bad if bad_file == file_index}  # workers skip pass 1's
        for converted in chunks:
            for unit in converted:
                ordinal = unit[0]
                if bad and ordinal in bad:
                    continue
                if len(unit) == 4:  # unreadable: (ordinal, location, resource, message)
                    bad.add(ordinal)
                    self.bad.add((file_index, ordinal))
                    self._problem(file_index, unit[1], unit[2], unit[3])
                    if ordinal < 0:  # the file itself could not be read: as a whole read, stop here
                        chunks.close()
                        return
                    continue
                _, location, key, resource_type, flat, problem, warnings, ins_dropped = unit
                canonical = self._canonical(key) if resource_type in _IDENTITY_TYPES else key
                if not self._is_last_copy(canonical):
                    continue
                if problem or warnings or ins_dropped:
                    yield from self._apply(
                        file_index, location, key, ([_rebuild(r) for r in flat], problem, warnings, ins_dropped)
                    )
                    continue
                for record in map(_rebuild, flat):  # the usual case, as _apply does it
                    if self.merged_patient_ids and self._repeats_a_merged_record(record):
                        self.report.duplicates += 1
                        continue
                    self.report.counts[type(record).__name__] += 1
                    yield record

    # -- references --

    def _ref_key(self, reference: JSON, path: str, scope: _Scope | None) -> str:
        """The key a Reference points to ("" when it has no literal reference or an unusable one)."""
        target = _code(reference, "reference", path)
        if not target or target.startswith("#"):
            return ""
        if scope is not None and (key := scope.get(target)) is not None:
            return key
        return _literal_key(target)

    def _canonical(self, key: str) -> str:
        return self.alias.get(key, key)

    def _patient_ref(self, reference: JSON | None, path: str, scope: _Scope | None) -> str:
        """The id of the (valid) patient a reference points to; raises _Invalid when it matters and fails."""
        if reference is None:
            raise _Invalid(f"{path} is missing: no patient")
        key = self._ref_key(reference, path, scope)
        if not key:
            identifier = _obj(reference, "identifier", path)
            if identifier is not None:  # a logical reference by identifier
                found = self._identity_lookup("Patient", identifier, f"{path}.identifier")
                if found:
                    return found.split("/", 1)[1]
            target = _code(reference, "reference", path) or _str(reference, "display", path)
            raise _Invalid(f"patient {target[:200]!r} cannot be resolved" if target else f"{path} has no reference")
        if not key.startswith("Patient/"):
            raise _Invalid(f"{path} points to {key}, not to a Patient")
        canonical = self._canonical(key)
        if _digest(canonical) in self.seen:
            return canonical.split("/", 1)[1]
        if key in self.rejected:
            raise _Invalid(f"its patient {key} was rejected (see the problem reported for it)")
        raise _Invalid(f"patient {key} cannot be found")

    def _practitioner_id(self, reference: JSON | None, path: str, scope: _Scope | None) -> str:
        """The id of the practitioner behind a reference (via a PractitionerRole too), or "" if none."""
        if reference is None:
            return ""
        key = self._ref_key(reference, path, scope)
        if key.startswith("PractitionerRole/") and key in self.roles:
            key = self.roles[key].practitioner_key
        key = self._canonical(key)
        if key.startswith("Practitioner/") and _digest(key) in self.seen:
            return key.split("/", 1)[1]
        return ""

    def _identity_lookup(self, resource_type: str, identifier: JSON, path: str) -> str:
        system = _code(identifier, "system", path)
        value = _str(identifier, "value", path)
        if not system or not value:
            return ""
        return self._canonical(self.identity_index.get(_digest(f"{resource_type}|{system}|{value}"), ""))

    # -- pass 1 --

    # Pass 1 works out what each resource says (``_index_effects``, which changes nothing and runs in
    # worker processes too), then applies it to the indexes in reading order (``_index_apply``).

    def _index(self, file_index: int, item: _Item) -> None:
        effects, problem = self._index_effects(item)
        self._index_apply(
            file_index, item.ordinal, item.location, item.resource_type, item.key, item.light, effects, problem
        )

    def _index_effects(self, item: _Item) -> tuple[list[_Effect], str]:
        """What pass 1 learns from one resource, in order, and its problem ("" when none)."""
        resource_type = item.resource_type
        if resource_type not in _USED_TYPES or item.light:
            return [], ""
        if not item.key:
            rid = item.resource.get("id")
            detail = "no id" if rid is None else f"an invalid id {str(rid)[:80]!r}"
            return [], f"{resource_type} has {detail}"
        effects: list[_Effect] = []
        try:
            self._index_resource(item, effects)
        except (_Invalid, TypeError, ValueError, AttributeError, KeyError, IndexError) as error:
            # The typed accessors raise _Invalid; anything else is a shape they did not foresee, still
            # a clean, located problem rather than a traceback. What was learnt before still applies.
            message = str(error) if isinstance(error, _Invalid) else f"unexpected structure ({type(error).__name__})"
            return effects, message
        return effects, ""

    def _index_apply(
        self,
        file_index: int,
        ordinal: int,
        location: str,
        resource_type: str,
        key: str,
        light: bool,
        effects: list[_Effect],
        problem: str,
    ) -> None:
        self.file_types[file_index].add(resource_type)
        if resource_type not in _USED_TYPES:
            self.report.ignored_types[resource_type] += 1
            return
        if light:
            self._remember(key)
            return
        if not key:
            self.bad.add((file_index, ordinal))
            self._problem(file_index, location, resource_type, problem)
            return
        for effect in effects:
            what = effect[0]
            if what == "identity":
                self._remember_identity(location, key, resource_type, effect[1], effect[2])
            elif what == "remember":
                self._remember(key)
            elif what == "allergy":
                self._raise_allergy_status(effect[1], effect[2])
            elif what == "medication":
                self.medications[key] = effect[1]
                self.rejected.discard(key)
            elif what == "role":
                self.roles[key] = effect[1]
                self.roles_by_practitioner.setdefault(effect[1].practitioner_key, effect[1])
            elif what == "ald_observation":
                self.ald_observations[key] = effect[1]
            elif what == "ald_condition":
                self.ald_conditions.add(effect[1])
        if problem:
            self.bad.add((file_index, ordinal))
            if resource_type in _IDENTITY_TYPES or resource_type == "Medication":
                self.rejected.add(key)
            self._problem(file_index, location, key, problem)

    def _index_resource(self, item: _Item, effects: list[_Effect]) -> None:
        resource, key, path = item.resource, item.key, item.resource_type
        if item.resource_type == "Patient":
            patient, _ = self._patient(resource, key, path)
            born = patient.birth_date.toordinal() if patient.birth_date else 0
            effects.append(("identity", born, self._identifiers(item)))
        elif item.resource_type in ("Practitioner", "Organization"):
            if item.resource_type == "Practitioner":
                self._practitioner(resource, key, path)
            effects.append(("identity", 0, self._identifiers(item)))
        elif item.resource_type == "Medication":
            effects.append(("medication", self._medication(resource, path)))
        elif item.resource_type == "PractitionerRole":
            self._index_role(resource, path, item.scope, effects)
        elif item.resource_type == "Composition":
            self._index_composition(resource, path, item.scope, effects)
        else:
            if item.resource_type == "Observation":
                self._index_ald_observation(resource, path, item.scope, effects)
            elif item.resource_type == "Condition":
                if any(c.code.upper() == "ALD" or c.text.upper() == "ALD" for c in self._categories(resource, path)):
                    effects.append(("ald_condition", key))
            elif item.resource_type == "AllergyIntolerance":
                self._index_allergy(resource, path, item.scope, effects)
            effects.append(("remember",))

    def _remember(self, key: str) -> None:
        digest = _digest(key)
        if digest in self.seen:
            self.copies[key] = self.copies.get(key, 1) + 1
        else:
            self.seen.add(digest)

    def _identifiers(self, item: _Item) -> list[tuple[str, int]]:
        """("system|value", digest of "Type|system|value") of each identifier of a resource."""
        resource_type = item.resource_type
        return [
            (f"{system}|{value}", _digest(f"{resource_type}|{system}|{value}"))
            for identifier, id_path in _objs(item.resource, "identifier", resource_type)
            if (system := _code(identifier, "system", id_path)) and (value := _str(identifier, "value", id_path))
        ]

    def _remember_identity(
        self, location: str, key: str, resource_type: str, born: int, identifiers: list[tuple[str, int]]
    ) -> None:
        """Count this copy under its canonical identity: same key, or same identifier and birth date."""
        self.rejected.discard(key)
        canonical = self._canonical(key)
        if canonical == key and _digest(key) not in self.seen:
            for identifier, digest in identifiers:
                other_key = self._canonical(self.identity_index.get(digest, key))
                if other_key == key:
                    continue
                if self.born.get(other_key, 0) != born:
                    self._warn_at(
                        location,
                        key,
                        f"shares the identifier {identifier} with {other_key} but not its birth date: kept apart",
                    )
                    continue
                self.alias[key] = other_key
                canonical = other_key
                break
        self._remember(canonical)
        if resource_type == "Patient" and canonical not in self.born:
            self.born[canonical] = born
        for _, digest in identifiers:
            self.identity_index.setdefault(digest, canonical)

    def _index_role(self, resource: JSON, path: str, scope: _Scope | None, effects: list[_Effect]) -> None:
        practitioner = _obj(resource, "practitioner", path)
        if practitioner is None:
            return
        practitioner_key = self._ref_key(practitioner, f"{path}.practitioner", scope)
        if not practitioner_key.startswith("Practitioner/"):
            return
        specialty = next((c.text for s, p in _objs(resource, "specialty", path) if (c := _concept_of(s, p)).text), "")
        qualite = next((c.text for s, p in _objs(resource, "code", path) if (c := _concept_of(s, p)).text), "")
        phones = _telecoms(resource, path, frozenset({"phone"}))
        emails = _telecoms(resource, path, frozenset({"email"}))
        role = _Role(practitioner_key, specialty, qualite, phones[0] if phones else "", emails[0] if emails else "")
        effects.append(("role", role))

    def _index_composition(self, resource: JSON, path: str, scope: _Scope | None, effects: list[_Effect]) -> None:
        subject = _obj(resource, "subject", path)
        if subject is None:
            return
        patient_key = self._ref_key(subject, f"{path}.subject", scope)
        if not patient_key.startswith("Patient/"):
            return
        for section, section_path in _objs(resource, "section", path):
            code = _concept(section, "code", section_path)
            empty = _obj(section, "emptyReason", section_path)
            if _ALLERGY_SECTION not in code.codes or empty is None or section.get("entry"):
                continue
            reason = _concept_of(empty, f"{section_path}.emptyReason")
            status = AllergyStatus.NONE_KNOWN if "nilknown" in reason.codes else AllergyStatus.NO_INFORMATION
            effects.append(("allergy", patient_key, status))

    def _index_ald_observation(self, resource: JSON, path: str, scope: _Scope | None, effects: list[_Effect]) -> None:
        if _ALD_CODE not in _concept(resource, "code", path).codes:
            return
        value = _bool(resource, "valueBoolean", path)
        if value is None:
            return
        effects.append(("ald_observation", value))
        if value:
            for focus, focus_path in _objs(resource, "focus", path):
                condition_key = self._ref_key(focus, focus_path, scope)
                if condition_key.startswith("Condition/"):
                    effects.append(("ald_condition", condition_key))

    def _index_allergy(self, resource: JSON, path: str, scope: _Scope | None, effects: list[_Effect]) -> None:
        patient = _obj(resource, "patient", path)
        if patient is None:
            return
        patient_key = self._ref_key(patient, f"{path}.patient", scope)
        if not patient_key:
            return
        kind, _ = self._allergy_kind(resource, path)
        status = {
            "allergy": AllergyStatus.RECORDED,
            "none_known": AllergyStatus.NONE_KNOWN,
            "no_information": AllergyStatus.NO_INFORMATION,
        }.get(kind)
        if status is not None:
            effects.append(("allergy", patient_key, status))

    def _raise_allergy_status(self, patient_key: str, status: AllergyStatus) -> None:
        current = self.allergy_status.get(patient_key)
        if current is None or _STATUS_RANK[status] > _STATUS_RANK[current]:
            self.allergy_status[patient_key] = status

    def _patient_allergy_status(self, canonical_key: str) -> AllergyStatus:
        statuses = [self.allergy_status.get(canonical_key, AllergyStatus.NO_INFORMATION)]
        statuses += [
            self.allergy_status[key] for key in self.alias_members.get(canonical_key, ()) if key in self.allergy_status
        ]
        return max(statuses, key=_STATUS_RANK.__getitem__)

    # -- pass 2 --

    def _is_last_copy(self, key: str) -> bool:
        remaining = self.copies.get(key)
        if remaining is None:
            return True
        if remaining > 1:
            self.copies[key] = remaining - 1
            self.report.duplicates += 1
            return False
        del self.copies[key]
        return True

    def _emit(self, file_index: int, item: _Item) -> Iterator[Record]:
        key = item.key
        if item.resource_type in _IDENTITY_TYPES:
            key = self._canonical(key)
        if not self._is_last_copy(key):
            return
        yield from self._apply(file_index, item.location, item.key, self._convert(item))

    def _convert(self, item: _Item) -> _Outcome:
        """Run the converter of one resource; nothing order-dependent happens here (workers call it too)."""
        warnings: list[ImportProblem] = []
        self.warnings_sink, self.ins_dropped = warnings, False
        try:
            records = self.converters[item.resource_type](item)
        except _Invalid as error:
            return [], str(error), warnings, self.ins_dropped
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as error:
            # A shape the typed accessors did not foresee: still a clean, located problem.
            return [], f"unexpected structure ({type(error).__name__})", warnings, self.ins_dropped
        finally:
            self.warnings_sink = self.report.warnings
        return records, "", warnings, self.ins_dropped

    def _apply(self, file_index: int, location: str, key: str, outcome: _Outcome) -> Iterator[Record]:
        """The report and the records of a converted resource, in reading order."""
        records, problem, warnings, ins_dropped = outcome
        self.report.warnings.extend(warnings)
        if ins_dropped:
            self.report.ins_dropped += 1
        if problem:
            self._problem(file_index, location, key, problem)
            return
        for record in records:
            if self._repeats_a_merged_record(record):
                self.report.duplicates += 1
                continue
            self.report.counts[type(record).__name__] += 1
            yield record

    def _repeats_a_merged_record(self, record: Record) -> bool:
        """Whether a merged patient already has this record, identical apart from its id."""
        if getattr(record, "patient_id", None) not in self.merged_patient_ids:
            return False
        content = (type(record).__name__,) + tuple(
            getattr(record, f.name) for f in dataclasses.fields(record) if f.name != "id"
        )
        if content in self.merged_records:
            return True
        self.merged_records.add(content)
        return False

    # -- Patient --

    def _patient(self, resource: JSON, key: str, path: str) -> tuple[Patient, bool]:
        """The Patient record (id = key's id) and whether an INS was dropped."""
        names = _objs(resource, "name", path)
        official = next(((n, p) for n, p in names if _code(n, "use", p) == "official"), None)
        official = official or next(((n, p) for n, p in names if _code(n, "use", p) == "maiden"), None)
        birth = official or next(
            ((n, p) for n, p in names if _code(n, "use", p) not in ("old", "nickname", "anonymous", "temp")),
            names[0] if names else None,
        )
        if birth is None:
            raise _Invalid("Patient has no name")
        birth_name_node, birth_path = birth
        birth_name = _str(birth_name_node, "family", birth_path)
        given_list = _extensions(birth_name_node, _EXT_BIRTH_LIST_GIVEN, birth_path) or _extensions(
            resource, _EXT_BIRTH_LIST_GIVEN, path
        )
        given = tuple(_str(given_list[0][0], "valueString", given_list[0][1]).split()) if given_list else ()
        given = given or tuple(_strs(birth_name_node, "given", birth_path))
        if not birth_name and not given:
            birth_name = _str(birth_name_node, "text", birth_path)
        if not birth_name and not given:
            raise _Invalid("Patient has no name (no family name, given name or text)")
        used_name = used_given = ""
        for name, name_path in names:
            if name is not birth_name_node and _code(name, "use", name_path) == "usual":
                used_name = _str(name, "family", name_path)
                used_given = next(iter(_strs(name, "given", name_path)), "")
                break

        gender = _code(resource, "gender", path).lower()
        sex = {"female": Sex.FEMALE, "f": Sex.FEMALE, "male": Sex.MALE, "m": Sex.MALE, "other": Sex.OTHER}.get(
            gender, Sex.UNKNOWN
        )
        birth_text = _code(resource, "birthDate", path)
        birth_date = _parse_date(birth_text, f"{path}.birthDate")[0] if birth_text else None

        insee = ""
        for place, place_path in _extensions(resource, _EXT_BIRTH_PLACE, path):
            place_address = _obj(place, "valueAddress", place_path)
            if place_address is None:
                continue
            for code_ext, code_path in _extensions(place_address, _EXT_INSEE_CODE, f"{place_path}.valueAddress"):
                coding = _obj(code_ext, "valueCoding", code_path)
                insee = _str(coding, "code", f"{code_path}.valueCoding") if coding else ""
                insee = insee or _str(code_ext, "valueString", code_path)

        status = IdentityStatus.PROV
        for reliability, reliability_path in _extensions(resource, _EXT_IDENTITY_RELIABILITY, path):
            for sub, sub_path in _objs(reliability, "extension", reliability_path):
                if sub.get("url") != "identityStatus":
                    continue
                coding = _obj(sub, "valueCoding", sub_path)
                code = _str(coding, "code", f"{sub_path}.valueCoding").upper() if coding else ""
                status = IdentityStatus.__members__.get(code, IdentityStatus.PROV)

        ins = ins_oid = ""
        dropped = False
        for identifier, id_path in _objs(resource, "identifier", path):
            system = _code(identifier, "system", id_path)
            oid = system.removeprefix("urn:oid:")
            if not system.startswith("urn:oid:") or oid not in INS_OIDS:
                continue
            value = _str(identifier, "value", id_path).replace(" ", "").upper()
            if not value:
                continue
            if status is not IdentityStatus.QUAL:
                dropped = True
                continue
            if not is_valid_nir(value):
                raise _Invalid(f"INS {value[:20]} ({system}) is not a valid NIR: wrong format or check key")
            if not ins:
                ins, ins_oid = value, oid

        patient = Patient(
            id=key.split("/", 1)[1],
            birth_name=birth_name,
            birth_given_names=given,
            sex=sex,
            birth_date=birth_date,
            used_name=used_name,
            used_given_name=used_given,
            birth_place_insee=insee,
            identity_status=status,
            ins=ins,
            ins_oid=ins_oid,
        )
        return patient, dropped

    def _patient_contact(self, item: _Item) -> dict[str, Any]:
        """Fields that do not identify the patient: a malformed one is dropped with a warning, never the patient."""
        resource, path = item.resource, item.resource_type
        readers: dict[str, Callable[[], Any]] = {
            "phones": lambda: tuple(_telecoms(resource, path, frozenset({"phone", "sms"}))),
            "address": lambda: _address(resource, path),
            "deceased": lambda: bool(
                _bool(resource, "deceasedBoolean", path) or _code(resource, "deceasedDateTime", path)
            ),
            "deceased_date": lambda: _date(resource, "deceasedDateTime", path),
            "active": lambda: _bool(resource, "active", path) is not False,
            "general_practitioner_id": lambda: next(
                (
                    found
                    for reference, ref_path in _objs(resource, "generalPractitioner", path)
                    if (found := self._practitioner_id(reference, ref_path, item.scope))
                ),
                "",
            ),
        }
        fields: dict[str, Any] = {}
        for name, read in readers.items():
            try:
                fields[name] = read()
            except _Invalid as error:
                self._warn(item, f"{error}: ignored")
        return fields

    def _emit_patient(self, item: _Item) -> list[Record]:
        path = item.resource_type
        patient, ins_dropped = self._patient(item.resource, item.key, path)
        self.ins_dropped = ins_dropped
        if patient.birth_date is None and _code(item.resource, "birthDate", path):
            self._warn(item, "partial birth date (no day): kept as unknown")
        canonical = self._canonical(item.key)
        return [
            dataclasses.replace(
                patient,
                id=canonical.split("/", 1)[1],
                allergy_status=self._patient_allergy_status(canonical),
                **self._patient_contact(item),
            )
        ]

    # -- Practitioner and Practice --

    def _practitioner(self, resource: JSON, key: str, path: str) -> Practitioner:
        names = _objs(resource, "name", path)
        chosen = next(((n, p) for n, p in names if _code(n, "use", p) in ("official", "usual")), None)
        chosen = chosen or (names[0] if names else None)
        if chosen is None:
            raise _Invalid("Practitioner has no name")
        name, name_path = chosen
        family = _str(name, "family", name_path)
        given = [g for g in _strs(name, "given", name_path)]
        while given and given[0].casefold() in _TITLES:
            given.pop(0)
        if family and given and given[-1] == family:  # "given": ["Dr", "Richard", "Kildare"]
            given.pop()
        if not family and not given:
            family = _str(name, "text", name_path)
        if not family and not given:
            raise _Invalid("Practitioner has no name")
        rpps = ""
        for identifier, id_path in _objs(resource, "identifier", path):
            type_concept = _concept(identifier, "type", id_path)
            if _code(identifier, "system", id_path) == _RPPS_OID or "RPPS" in type_concept.codes:
                value = _str(identifier, "value", id_path)
                if len(value) == 12 and value.startswith("8") and value.isdigit():
                    value = value[1:]  # IdNat_PS = "8" + RPPS
                if len(value) == 11 and value.isdigit():
                    rpps = value
                    break
        qualite = next(
            (c.text for q, p in _objs(resource, "qualification", path) if (c := _concept(q, "code", p)).text), ""
        )
        specialty = ""
        for ext, ext_path in _extensions(resource, _EXT_PRACTITIONER_SPECIALTY, path):
            specialty = specialty or _concept(ext, "valueCodeableConcept", ext_path).text
        phones = _telecoms(resource, path, frozenset({"phone"}))
        emails = _telecoms(resource, path, frozenset({"email"}))
        role = self.roles_by_practitioner.get(key)
        return Practitioner(
            id=key.split("/", 1)[1],
            family_name=family,
            given_names=tuple(given),
            rpps=rpps,
            qualite=qualite or (role.qualite if role else ""),
            specialty=specialty or (role.specialty if role else ""),
            address=_address(resource, path),
            phone=phones[0] if phones else (role.phone if role else ""),
            email=emails[0] if emails else (role.email if role else ""),
        )

    def _emit_practitioner(self, item: _Item) -> list[Record]:
        practitioner = self._practitioner(item.resource, item.key, item.resource_type)
        canonical = self._canonical(item.key)
        if canonical != item.key:
            practitioner = dataclasses.replace(practitioner, id=canonical.split("/", 1)[1])
        return [practitioner]

    def _emit_organization(self, item: _Item) -> list[Record]:
        resource, path = item.resource, item.resource_type
        for type_node, type_path in _objs(resource, "type", path):
            for system, code, _ in _codings(type_node, type_path):
                if system.endswith("organization-type") and code in _NOT_A_PRACTICE_TYPES:
                    return []
        name = _str(resource, "name", path)
        if not name:
            self._warn(item, "Organization without a name: not used as the practice")
            return []
        phones = _telecoms(resource, path, frozenset({"phone"}))
        return [
            Practice(
                id=self._canonical(item.key).split("/", 1)[1],
                name=name,
                address=_address(resource, path),
                phone=phones[0] if phones else "",
            )
        ]

    # -- AllergyIntolerance --

    def _allergy_kind(self, resource: JSON, path: str) -> tuple[str, _Concept]:
        """What an AllergyIntolerance says: allergy, none_known, no_information, partial_negation, dropped."""
        verification = _status_code(resource, "verificationStatus", path)
        if verification in _DROPPED_VERIFICATION:
            return "dropped", _Concept()
        code = _concept(resource, "code", path)
        if code.codes & _NO_KNOWN_ALLERGY_CODES or code.normalized_text in _NO_KNOWN_ALLERGY_TEXTS:
            return "none_known", code
        if code.codes & _NO_ALLERGY_INFO_CODES:
            return "no_information", code
        if code.codes & _PARTIAL_NO_ALLERGY_CODES:
            return "partial_negation", code
        if not code.text:
            for reaction, reaction_path in _objs(resource, "reaction", path):
                substance = _concept(reaction, "substance", reaction_path)
                if substance.text:
                    return "allergy", substance
            return "invalid", code
        return "allergy", code

    def _emit_allergy(self, item: _Item) -> list[Record]:
        resource, path = item.resource, item.resource_type
        kind, code = self._allergy_kind(resource, path)
        if kind == "invalid":
            raise _Invalid("AllergyIntolerance has no substance (no code text, display or reaction substance)")
        if kind != "allergy":
            return []
        patient_id = self._patient_ref(_obj(resource, "patient", path), f"{path}.patient", item.scope)
        criticality = _code(resource, "criticality", path)
        categories = _strs(resource, "category", path)
        manifestations: list[str] = []
        for reaction, reaction_path in _objs(resource, "reaction", path):
            for manifestation, manifestation_path in _objs(reaction, "manifestation", reaction_path):
                text = _concept_of(manifestation, manifestation_path).text
                if text and text not in manifestations:
                    manifestations.append(text)
        return [
            Allergy(
                id=item.key.split("/", 1)[1],
                patient_id=patient_id,
                substance=code.text,
                code=code.code,
                code_system=code.system,
                criticality=criticality,
                reaction=", ".join(manifestations),
                category=categories[0] if categories else "",
            )
        ]

    # -- Condition --

    def _categories(self, resource: JSON, path: str) -> list[_Concept]:
        return [_concept_of(category, category_path) for category, category_path in _objs(resource, "category", path)]

    def _emit_condition(self, item: _Item) -> list[Record]:
        resource, path = item.resource, item.resource_type
        if _status_code(resource, "verificationStatus", path) in _DROPPED_VERIFICATION:
            return []
        code = _concept(resource, "code", path)
        if code.codes & _NO_PROBLEM_CODES or code.normalized_text in _NO_PROBLEM_TEXTS:
            return []
        if not code.text:
            raise _Invalid("Condition has no text (no code text or display)")
        patient_id = self._patient_ref(_obj(resource, "subject", path), f"{path}.subject", item.scope)
        onset = _date(resource, "onsetDateTime", path)
        period = _obj(resource, "onsetPeriod", path)
        if onset is None and period is not None:
            onset = _date(period, "start", f"{path}.onsetPeriod")
        return [
            Condition(
                id=item.key.split("/", 1)[1],
                patient_id=patient_id,
                text=code.text,
                code=code.code,
                code_system=code.system,
                is_ald=item.key in self.ald_conditions,
                onset_date=onset,
                clinical_status=_status_code(resource, "clinicalStatus", path) or "active",
            )
        ]

    # -- Medication, MedicationRequest, MedicationStatement --

    def _medication(self, resource: JSON, path: str, code_field: str = "code") -> _Medication:
        code = _concept(resource, code_field, path)
        negation = bool(code.codes & _NO_MEDICATION_CODES) or code.normalized_text in _NO_MEDICATION_TEXTS
        names: list[str] = []
        strengths: list[str] = []
        for ingredient, ingredient_path in _objs(resource, "ingredient", path):
            item = _concept(ingredient, "itemCodeableConcept", ingredient_path)
            reference = _obj(ingredient, "itemReference", ingredient_path)
            name = item.atc_display or item.text
            if not name and reference is not None:
                name = _str(reference, "display", f"{ingredient_path}.itemReference")
            if name:
                names.append(name)
                strength = _ratio(_obj(ingredient, "strength", ingredient_path), f"{ingredient_path}.strength")
                if strength:
                    strengths.append(strength)
        dci = " + ".join(names) or code.atc_display or code.text
        if not dci and not negation:
            detail = f" (only the code {code.code})" if code.code else ""
            raise _Invalid(f"the medication has no name{detail}")
        # The product label is kept as the brand only when it names something else than the substance
        # ("LEVOTHYROX 75 µg"); "ramipril 5 mg, comprimé sécable" would print the DCI twice.
        label = code.own_text if code.own_text and not _mentions(code.own_text, dci) else ""
        return _Medication(
            dci=dci,
            strength=" + ".join(strengths) if len(strengths) == len(names) else "",
            form=_concept(resource, "form", path).text,
            label=label,
            negation=negation,
        )

    def _resolve_medication(self, resource: JSON, path: str, scope: _Scope | None) -> _Medication:
        if _obj(resource, "medicationCodeableConcept", path) is not None:
            return self._medication(resource, path, "medicationCodeableConcept")
        reference = _obj(resource, "medicationReference", path)
        if reference is None:
            raise _Invalid(f"{path} has no medicationCodeableConcept or medicationReference")
        ref_path = f"{path}.medicationReference"
        target = _code(reference, "reference", ref_path)
        if target.startswith("#"):
            for contained, contained_path in _objs(resource, "contained", path):
                if contained.get("resourceType") == "Medication" and contained.get("id") == target[1:]:
                    return self._medication(contained, contained_path)
            raise _Invalid(f"contained medication {target[:80]!r} cannot be found")
        if not target:
            display = _str(reference, "display", ref_path)
            if display:  # a reference that only carries a display: the only text the source had
                return _Medication(dci=display)
            raise _Invalid(f"{ref_path} has no reference and no display")
        key = self._ref_key(reference, ref_path, scope)
        if key in self.medications:
            return self.medications[key]
        if key in self.rejected:
            raise _Invalid(f"its medication {key} was rejected (see the problem reported for it)")
        raise _Invalid(f"medication {key or target[:200]!r} cannot be found")

    def _ald_link(self, resource: JSON, path: str, scope: _Scope | None) -> bool:
        """True when a reasonReference points to an ALD marker; an explicit MED-574 "false" wins."""
        linked = explicit_no = False
        for reference, ref_path in _objs(resource, "reasonReference", path):
            target = _code(reference, "reference", ref_path)
            if target.startswith("#"):
                for contained, contained_path in _objs(resource, "contained", path):
                    if contained.get("id") == target[1:] and contained.get("resourceType") == "Observation":
                        if _ALD_CODE in _concept(contained, "code", contained_path).codes:
                            value = _bool(contained, "valueBoolean", contained_path)
                            linked |= value is True
                            explicit_no |= value is False
                continue
            key = self._ref_key(reference, ref_path, scope)
            if key in self.ald_observations:
                linked |= self.ald_observations[key]
                explicit_no |= not self.ald_observations[key]
            elif key in self.ald_conditions:
                linked = True
        return linked and not explicit_no

    def _emit_medication_use(self, item: _Item) -> list[Record]:
        resource, path = item.resource, item.resource_type
        is_request = item.resource_type == "MedicationRequest"
        status = _code(resource, "status", path) or "active"
        if status not in _TREATMENT_STATUSES and status not in _RECENT_STATUSES:
            return []  # entered-in-error, cancelled, not-taken, draft, unknown
        medication = self._resolve_medication(resource, path, item.scope)
        if medication.negation:
            return []
        patient_id = self._patient_ref(_obj(resource, "subject", path), f"{path}.subject", item.scope)
        dosages = _objs(resource, "dosageInstruction" if is_request else "dosage", path)
        posology = "; ".join(p for d, d_path in dosages if (p := _posology(d, d_path)))
        route = next((c.text for d, d_path in dosages if (c := _concept(d, "route", d_path)).text), "")
        bounds_start = next((b for d, d_path in dosages if (b := _bounds_start(d, d_path))), None)
        if is_request:
            authored = _date(resource, "authoredOn", path)
            prescriber = self._practitioner_id(_obj(resource, "requester", path), f"{path}.requester", item.scope)
            start = bounds_start or authored
        else:
            period = _obj(resource, "effectivePeriod", path)
            start = _date(period, "start", f"{path}.effectivePeriod") if period else None
            start = start or _date(resource, "effectiveDateTime", path) or bounds_start
            authored = _date(resource, "dateAsserted", path)
            prescriber = self._practitioner_id(
                _obj(resource, "informationSource", path), f"{path}.informationSource", item.scope
            )
        record_id = item.key.split("/", 1)[1]
        if status in _RECENT_STATUSES:
            drug = " ".join(p for p in (medication.dci, medication.strength, medication.form) if p)
            return [
                RecentPrescription(
                    id=record_id,
                    patient_id=patient_id,
                    authored_on=authored or start,
                    prescriber_id=prescriber,
                    text=f"{drug} — {posology}" if posology else drug,
                )
            ]
        non_substitution, renewals = None, None
        chronic = False
        if is_request:
            non_substitution = self._non_substitution(item, resource, path)
            dispense = _obj(resource, "dispenseRequest", path)
            if dispense is not None:
                repeats = _number(dispense, "numberOfRepeatsAllowed", f"{path}.dispenseRequest")
                if repeats is not None:
                    if repeats < 0 or repeats != int(repeats) or repeats > 1000:
                        raise _Invalid(f"{path}.dispenseRequest.numberOfRepeatsAllowed must be a small whole number")
                    renewals = int(repeats)
            chronic = "continuous" in _concept(resource, "courseOfTherapyType", path).codes
        return [
            Treatment(
                id=record_id,
                patient_id=patient_id,
                dci=medication.dci,
                strength=medication.strength,
                form=medication.form,
                route=route,
                posology=posology,
                brand=medication.label,
                start_date=start,
                chronic=chronic,
                ald_related=self._ald_link(resource, path, item.scope),
                non_substitution=non_substitution,
                renewals_left=renewals,
                last_prescriber_id=prescriber,
                last_prescribed_on=authored if is_request else None,
            )
        ]

    def _non_substitution(self, item: _Item, resource: JSON, path: str) -> NonSubstitutionReason | None:
        substitution = _obj(resource, "substitution", path)
        if substitution is None:
            return None
        sub_path = f"{path}.substitution"
        allowed = _bool(substitution, "allowedBoolean", sub_path)
        if allowed is None:
            allowed_concept = _concept(substitution, "allowedCodeableConcept", sub_path)
            allowed = not (allowed_concept.codes & {"N", "none"}) if allowed_concept.codes else None
        if allowed is not False:
            return None
        reason = _concept(substitution, "reason", sub_path)
        candidates = [c.upper() for c in reason.codes] + _SUBSTITUTION_REASON.findall(reason.text.upper())
        for candidate in candidates:
            if candidate in NonSubstitutionReason.__members__:
                return NonSubstitutionReason(candidate)
        self._warn(
            item,
            "substitution refused without one of the reasons MTE / EFG / CIF: the line stays substitutable",
        )
        return None

    # -- Observation --

    def _emit_observation(self, item: _Item) -> list[Record]:
        resource, path = item.resource, item.resource_type
        if _code(resource, "status", path) in ("entered-in-error", "cancelled"):
            return []
        loinc = {c for s, c, _ in _codings(_obj(resource, "code", path), f"{path}.code") if s in (_LOINC, "")}
        if loinc & _WEIGHT_CODES:
            kind, units, unit_out = "weight", _WEIGHT_UNITS, "kg"
        elif loinc & _HEIGHT_CODES:
            kind, units, unit_out = "height", _HEIGHT_UNITS, "cm"
        else:
            return []
        quantity = _obj(resource, "valueQuantity", path)
        if quantity is None:
            return []  # e.g. a dataAbsentReason: nothing measured
        q_path = f"{path}.valueQuantity"
        value = _number(quantity, "value", q_path)
        unit = _str(quantity, "code", q_path) or _str(quantity, "unit", q_path)
        if value is None:
            return []
        factor = units.get(unit) or units.get(unit.lower())
        if factor is None:
            raise _Invalid(f"{kind} in an unknown unit {unit[:20]!r}")
        if value <= 0:
            raise _Invalid(f"{kind} must be positive, not {value}")
        patient_id = self._patient_ref(_obj(resource, "subject", path), f"{path}.subject", item.scope)
        measured = _date(resource, "effectiveDateTime", path)
        period = _obj(resource, "effectivePeriod", path)
        if measured is None and period is not None:
            measured = _date(period, "start", f"{path}.effectivePeriod")
        return [Measurement(patient_id, kind, round(value * factor, 3), unit_out, measured)]

    # -- Appointment --

    def _emit_appointment(self, item: _Item) -> list[Record]:
        resource, path = item.resource, item.resource_type
        status = _code(resource, "status", path) or "booked"
        if status == "entered-in-error":
            return []
        patient_ref: tuple[JSON, str] | None = None
        practitioner_id = ""
        for participant, participant_path in _objs(resource, "participant", path):
            actor = _obj(participant, "actor", participant_path)
            if actor is None:
                continue
            actor_path = f"{participant_path}.actor"
            key = self._ref_key(actor, actor_path, item.scope)
            if key.startswith("Patient/") or (not key and _str(actor, "type", actor_path) == "Patient"):
                patient_ref = patient_ref or (actor, actor_path)
            elif not practitioner_id:
                practitioner_id = self._practitioner_id(actor, actor_path, item.scope)
        if patient_ref is None:
            return []  # a slot without a patient (meeting, blocked time): nothing to call about
        patient_id = self._patient_ref(patient_ref[0], patient_ref[1], item.scope)
        start = _datetime(resource, "start", path)
        if start is None:
            raise _Invalid("Appointment has no start")
        return [
            Appointment(
                id=item.key.split("/", 1)[1],
                patient_id=patient_id,
                practitioner_id=practitioner_id,
                start=start,
                end=_datetime(resource, "end", path),
                status=status,
                description=_str(resource, "description", path),
            )
        ]


# --- pass 2 in worker processes ------------------------------------------------------------------

# (records, problem message or "", warnings, INS dropped): what converting one resource gives.
_Outcome = tuple[list[Record], str, list[ImportProblem], bool]
# What a worker sends back per unit of its chunk: (ordinal, location, resource, message) for an
# unreadable line, else (ordinal, location, key, type, flattened records, problem, warnings, INS dropped).
_Converted = tuple[Any, ...]

# The reader's state that the converters read in pass 2 (the pass-1 indexes), sent once to each worker.
_WORKER_STATE = (
    "files",
    "alias",
    "seen",
    "identity_index",
    "rejected",
    "bad",
    "medications",
    "roles",
    "roles_by_practitioner",
    "ald_observations",
    "ald_conditions",
    "allergy_status",
    "alias_members",
)

# One thing pass 1 learns from a resource, applied to the indexes in reading order: ("identity", born,
# identifiers), ("remember",), ("allergy", patient key, status), ("medication", _Medication),
# ("role", _Role), ("ald_observation", value), ("ald_condition", condition key).
_Effect = tuple[Any, ...]

_worker_reader: _Reader | None = None


def _worker_start(state: bytes) -> None:
    """Worker process initializer: a reader holding the pass-1 indexes."""
    global _worker_reader
    values = pickle.loads(state)
    reader = _Reader(values["files"], strict=False, report=ImportReport())
    for name, value in values.items():
        setattr(reader, name, value)
    _worker_reader = reader


def _worker_index_chunk(file_index: int, span: _Span) -> bytes:
    """Pass 1 of one chunk of lines, in a worker: what each resource says, nothing applied."""
    reader = _worker_reader
    assert reader is not None, "worker process not initialised"
    reader.current_file = file_index
    learnt: list[_Converted] = []
    for unit in _SourceFile(reader.files[file_index]).items(light=True, span=span):
        if isinstance(unit, _Unreadable):
            learnt.append((unit.ordinal, unit.location, unit.resource, unit.message))
        else:
            effects, problem = reader._index_effects(unit)
            learnt.append((unit.ordinal, unit.location, unit.resource_type, unit.key, unit.light, effects, problem))
    return pickle.dumps(learnt, protocol=pickle.HIGHEST_PROTOCOL)


def _worker_chunk(file_index: int, sweep: frozenset[str], span: _Span) -> bytes:
    """Pass 2 of one chunk of lines, in a worker: each resource of the sweep converted, nothing applied.

    The result stays pickled until the main process applies it (compact while it waits in line).
    """
    reader = _worker_reader
    assert reader is not None, "worker process not initialised"
    reader.current_file = file_index
    converted: list[_Converted] = []
    for unit in _SourceFile(reader.files[file_index]).items(span=span):
        if isinstance(unit, _Unreadable):
            converted.append((unit.ordinal, unit.location, unit.resource, unit.message))
        elif unit.resource_type in sweep and (file_index, unit.ordinal) not in reader.bad:
            records, problem, warnings, ins_dropped = reader._convert(unit)
            flat = [_flatten(record) for record in records]
            converted.append(
                (unit.ordinal, unit.location, unit.key, unit.resource_type, flat, problem, warnings, ins_dropped)
            )
    return pickle.dumps(converted, protocol=pickle.HIGHEST_PROTOCOL)


def _spans(path: Path, size: int) -> Generator[_Span, None, None]:
    """Chunks of whole lines of at least ``size`` bytes (the last one to the end of the file), with the
    number of their first line. Memory: one block of ``_SPAN_BLOCK`` bytes, whatever the lines."""
    with path.open("rb") as stream:
        start, first_line = 0, 1
        position = newlines = 0
        while block := stream.read(_SPAN_BLOCK):
            cut = block.rfind(b"\n") + 1  # just after the block's last newline (0: none)
            newlines += block.count(b"\n")
            position += len(block)
            boundary = position - len(block) + cut
            if cut and boundary - start >= size:
                yield _Span(start, boundary, first_line)
                start, first_line = boundary, newlines + 1
        if position > start:
            yield _Span(start, -1, first_line)


class _Shape:
    """How records of one class cross a process boundary: a tuple of plain values (pickling the
    frozen dataclasses themselves, their enums and addresses, costs several times more)."""

    __slots__ = ("address", "enums", "fields", "index", "kind")

    def __init__(self, index: int, kind: type[Any]) -> None:
        self.index = index
        self.kind = kind
        names = [f.name for f in dataclasses.fields(kind)]
        self.fields = operator.attrgetter(*names)
        self.address = names.index("address") if "address" in names else -1
        self.enums: list[tuple[int, dict[str, enum.Enum]]] = []
        hints = typing.get_type_hints(kind)
        for position, name in enumerate(names):
            hint = hints[name]
            for candidate in typing.get_args(hint) or (hint,):
                if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
                    self.enums.append((position, {member.value: member for member in candidate}))


_SHAPES = [
    _Shape(index, kind)
    for index, kind in enumerate(
        (Practice, Practitioner, Patient, Allergy, Condition, Treatment, RecentPrescription, Measurement, Appointment)
    )
]
_SHAPE_OF = {shape.kind: shape for shape in _SHAPES}


def _flatten(record: Record) -> tuple[int, tuple[Any, ...]]:
    """(shape index, field values); the index is negative when the values need no conversion back."""
    shape = _SHAPE_OF[type(record)]
    values = shape.fields(record)
    if shape.address < 0 and not any(values[position] is not None for position, _ in shape.enums):
        return -1 - shape.index, values  # e.g. a Treatment without a non-substitution reason
    changed = list(values)
    if shape.address >= 0:
        address = changed[shape.address]
        changed[shape.address] = (address.lines, address.postal_code, address.city, address.country)
    for position, _ in shape.enums:
        if changed[position] is not None:
            changed[position] = changed[position].value
    return shape.index, tuple(changed)


def _rebuild(flat: tuple[int, tuple[Any, ...]]) -> Record:
    index, values = flat
    if index < 0:
        return cast(Record, _SHAPES[-1 - index].kind(*values))
    shape = _SHAPES[index]
    changed = list(values)
    if shape.address >= 0:
        changed[shape.address] = Address(*changed[shape.address])
    for position, members in shape.enums:
        if changed[position] is not None:
            changed[position] = members[changed[position]]
    return cast(Record, shape.kind(*changed))


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- small helpers --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)  # the same medications and practitioners are referred to again and again
def _literal_key(target: str) -> str:
    """The key of a relative or absolute reference (``Type/id``, a URL ending so, ``/_history/N`` removed)."""
    if target.startswith("urn:"):
        return ""
    parts = target.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and _RESOURCE_TYPE.fullmatch(parts[-2]) and _RESOURCE_ID.fullmatch(parts[-1]):
        return f"{parts[-2]}/{parts[-1]}"
    return ""


def _location_fr(location: str) -> str:
    return location.replace("line", "ligne").replace("entry", "entrée")


def _digest(text: str) -> int:
    """A 96-bit digest of a key (BLAKE2b), the same in every process (unlike ``hash``): the worker
    processes of pass 2 look keys up in indexes built by the main one.

    Two different keys share one with a probability of about n² / 2**97: never, at any export size.
    """
    return int.from_bytes(_blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest(), "little")


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def _mentions(label: str, dci: str) -> bool:
    """Whether a product label names the (first) substance of the DCI."""
    words = re.findall(r"\w+", _fold(dci))
    return bool(words) and words[0] in re.findall(r"\w+", _fold(label))


def _quantity_text(quantity: JSON | None, path: str) -> str:
    if quantity is None:
        return ""
    value = _number(quantity, "value", path)
    if value is None:
        return ""
    unit = _str(quantity, "unit", path) or _str(quantity, "code", path)
    number = f"{value:g}".replace(".", ",")  # French decimal comma on a French prescription
    return f"{number} {unit}".strip()


def _ratio(ratio: JSON | None, path: str) -> str:
    """A strength: "2,5 mg", "5 mg/mL"; a denominator of one unit of presentation is left out."""
    if ratio is None:
        return ""
    numerator = _quantity_text(_obj(ratio, "numerator", path), f"{path}.numerator")
    denominator_node = _obj(ratio, "denominator", path)
    if not numerator:
        return ""
    if denominator_node is None:
        return numerator
    denominator_path = f"{path}.denominator"
    denominator_value = _number(denominator_node, "value", denominator_path)
    code = _code(denominator_node, "code", denominator_path)
    system = _code(denominator_node, "system", denominator_path)
    # A unit of presentation (UCUM "1" or an annotation like "{tbl}", or another terminology's
    # "Tablet") is implied by the form: "2,5 mg", not "2,5 mg/1 comprimé". A measure stays: "5 mg/mL".
    presentation = system != "http://unitsofmeasure.org" or not code or code.isdigit() or code.startswith("{")
    if denominator_value in (None, 1.0):
        return numerator if presentation else f"{numerator}/{code}"
    if presentation:
        return numerator
    return f"{numerator}/{_quantity_text(denominator_node, denominator_path)}"


def _bounds_start(dosage: JSON, path: str) -> dt.date | None:
    """When the treatment began, as some platforms say it: ``timing.repeat.boundsPeriod.start``."""
    timing = _obj(dosage, "timing", path)
    repeat = _obj(timing, "repeat", f"{path}.timing") if timing else None
    bounds = _obj(repeat, "boundsPeriod", f"{path}.timing.repeat") if repeat else None
    return _date(bounds, "start", f"{path}.timing.repeat.boundsPeriod") if bounds else None


def _posology(dosage: JSON, path: str) -> str:
    """The dosage text, or one built (in French) from the dose and the timing."""
    text = _str(dosage, "text", path)
    if text:
        return text
    parts: list[str] = []
    for dose_and_rate, dr_path in _objs(dosage, "doseAndRate", path):
        dose = _quantity_text(_obj(dose_and_rate, "doseQuantity", dr_path), f"{dr_path}.doseQuantity")
        if dose:
            parts.append(dose)
            break
    timing = _obj(dosage, "timing", path)
    if timing is not None:
        repeat = _obj(timing, "repeat", f"{path}.timing")
        if repeat is not None:
            repeat_path = f"{path}.timing.repeat"
            frequency = _number(repeat, "frequency", repeat_path)
            period = _number(repeat, "period", repeat_path)
            unit = _code(repeat, "periodUnit", repeat_path)
            if unit in _PERIOD_UNITS_FR and (frequency is not None or period is not None):
                times = f"{frequency or 1:g} fois"
                every = _PERIOD_UNITS_FR[unit]
                if period is not None and period != 1:
                    every = f"{period:g} {every}s" if unit != "mo" else f"{period:g} mois"
                parts.append(f"{times} par {every}")
        timing_code = _concept(timing, "code", f"{path}.timing")
        if timing_code.text and not parts[1:]:
            parts.append(timing_code.text)
    if _bool(dosage, "asNeededBoolean", path):
        parts.append("si besoin")
    return ", ".join(parts)

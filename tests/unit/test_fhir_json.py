"""continuity.fhir parses NDJSON lines with orjson when it can: never a different record or problem.

orjson keeps the last of duplicate keys and reads integers beyond 64 bits as floats; the reader
falls back to its strict decoder whenever that could show (docstring of ``continuity.fhir.json.fast_line``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuity.fhir import ImportReport, read_records
from continuity.fhir import json as fhir_json

PATIENT = '{"resourceType": "Patient", "id": "p1", "name": [{"family": "MARTIN"}], "birthDate": "1950-01-31"}'


def outcome(path: Path) -> tuple[list[str], list[str], list[str]]:
    report = ImportReport()
    records = [repr(record) for record in read_records([path], report=report, workers=1)]
    return records, [str(p) for p in report.problems], [str(w) for w in report.warnings]


def both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *lines: str | bytes) -> Any:
    path = tmp_path / "lines.ndjson"
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in lines))
    fast = outcome(path)
    with monkeypatch.context() as patch:
        patch.setattr(fhir_json, "_orjson", None)
        strict = outcome(path)
    assert fast == strict
    return fast


HOSTILE = [
    # duplicate keys, at the top and deep down, hidden behind colons in strings or escapes
    '{"resourceType": "Patient", "id": "p2", "id": "p3", "name": [{"family": "A"}]}',
    '{"resourceType": "Patient", "id": "p2", "name": [{"family": "A", "family": "B"}]}',
    '{"resourceType": "Patient", "id": "p2", "name": [{"family": "A:B", "family": "C"}], "x": "::"}',
    '{"resourceType": "Patient", "id": "p2", "name": [{"family": "A", "family": "B"}], "x": "\\u003a"}',
    '{"resourceType": "Patient", "id": "p2", "name": [{"family": "A", "fam\\u0069ly": "B"}]}',
    '{"resourceType": "Patient", "id": "p2", "name": [{"family": "A"}], "text": {"div": "a", "div": "b"}}',
    '{"resourceType": "Patient", "id": "p2", "name": [{"family": "A"}], "x": {"": 1, "": 2}}',
    # numbers: beyond 64 bits, beyond a double, NaN, as an id
    '{"resourceType": "Patient", "id": 123456789012345678901234567890, "name": [{"family": "A"}]}',
    '{"resourceType": "Patient", "id": 12, "name": [{"family": "A"}]}',
    '{"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"},'
    ' "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},'
    ' "valueQuantity": {"value": 123456789012345678901234567890, "code": "kg"}}',
    '{"resourceType": "Observation", "id": "o2", "status": "final", "subject": {"reference": "Patient/p1"},'
    ' "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},'
    ' "valueQuantity": {"value": 1e400, "code": "kg"}}',
    '{"resourceType": "Observation", "id": "o3", "valueQuantity": {"value": NaN}}',
    '{"resourceType": "Observation", "id": "o4", "valueQuantity": {"value": -Infinity}}',
    '{"resourceType": "MedicationRequest", "id": "m1", "status": "active", "subject": {"reference": "Patient/p1"},'
    ' "medicationCodeableConcept": {"text": "x"}, "dispenseRequest": {"numberOfRepeatsAllowed": 18446744073709551617}}',
    # strings: lone surrogates, escapes, control characters
    '{"resourceType": "Patient", "id": "p4", "name": [{"family": "\\ud800"}]}',
    '{"resourceType": "Patient", "id": "p5", "name": [{"family": "\\u00c9LO\\u00cfSE"}]}',
    '{"resourceType": "Patient", "id": "p6", "name": [{"family": "TAB\tBED"}]}',
    # shapes: not an object, a Bundle, deep nesting, trailing commas, trailing garbage
    "[1, 2]",
    '"Patient"',
    '{"resourceType": "Bundle", "entry": [{"resource": ' + PATIENT.replace('"p1"', '"b1"') + "}]}",
    '{"resourceType": "Basic", "id": "deep", "x": ' + "[" * 300 + "]" * 300 + "}",
    '{"resourceType": "Basic", "id": "deeper", "x": ' + "[" * 2000 + "]" * 2000 + "}",
    '{"resourceType": "Patient", "id": "p7", "name": [{"family": "A"},]}',
    '{"resourceType": "Patient", "id": "p8", "name": [{"family": "A"}]} x',
    '{"resourceType": "Patient", "id": "p9", "name": [{"family": "A"}]}{}',
]


@pytest.mark.parametrize("line", HOSTILE)
def test_a_hostile_line_reads_the_same_with_or_without_orjson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    both_ways(tmp_path, monkeypatch, PATIENT, line)


def test_duplicate_keys_are_still_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, problems, _ = both_ways(tmp_path, monkeypatch, PATIENT, HOSTILE[2])
    assert problems and "duplicate key 'family'" in problems[0]


def test_invalid_utf8_and_a_byte_order_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records, problems, _ = both_ways(tmp_path, monkeypatch, b"\xef\xbb\xbf" + PATIENT.encode(), b'{"id": "\xff"}')
    assert len(records) == 1 and problems[0].endswith("line is not valid UTF-8")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab:"\\ \u00e9\ud7ff{}[],'), max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", ":"]), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, duplicate=st.booleans(), escape=st.booleans())
def test_any_line_reads_the_same_with_or_without_orjson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: Any, duplicate: bool, escape: bool
) -> None:
    resource = {"resourceType": "Patient", "id": "p2", "name": [{"family": "A"}], "extension": value}
    line = json.dumps(resource, ensure_ascii=escape)
    if duplicate:  # the same key twice in the same object, written by hand
        line = line.replace('"name": ', '"name": "x", "name": ', 1)
    both_ways(tmp_path, monkeypatch, PATIENT, line)

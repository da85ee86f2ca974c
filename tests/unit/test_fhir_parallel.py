"""continuity.fhir with worker processes: the same records, in the same order, and the same report.

Pass 2 of an uncompressed NDJSON file may be shared among worker processes (``workers``); the main
process cuts the file into chunks of whole lines and applies the converted chunks in order. These
tests cut files into many small chunks so that every kind of line lands on a chunk boundary.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.errors import InputError
from continuity.fhir import ImportReport, parallel, read_records, sources
from continuity.ins import with_check_key
from continuity.synth import write_practice

QUAL = [
    {
        "url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability",
        "extension": [{"url": "identityStatus", "valueCoding": {"code": "QUAL"}}],
    }
]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read by the main process only (it cuts the files): a few lines per chunk, blocks shorter than lines.
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 1500)
    monkeypatch.setattr(sources, "SPAN_BLOCK", 200)


def summary(report: ImportReport) -> dict[str, Any]:
    return {
        "counts": dict(report.counts),
        "problems": [str(problem) for problem in report.problems],
        "warnings": [str(warning) for warning in report.warnings],
        "duplicates": report.duplicates,
        "ins_dropped": report.ins_dropped,
        "ignored_types": dict(report.ignored_types),
        "whole": report.as_json(),  # per type read / kept / flags / dropped reasons, examples, stripped texts
    }


def read(sources: list[Path], workers: int) -> tuple[list[str], dict[str, Any]]:
    """The records (their repr: an enum that became a plain string would still compare equal) and the report."""
    report = ImportReport()
    records = [repr(record) for record in read_records(sources, report=report, workers=workers)]
    return records, summary(report)


def patient(pid: str, born: str = "1950-01-31", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"use": "official", "family": "LEFÈVRE-ÇELIK", "given": ["Marie"]}],
        "gender": "female",
        "birthDate": born,
    }
    resource.update(extra)
    return resource


def request(rid: str, pid: str, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "amlodipine 5 mg"},
        "subject": {"reference": f"Patient/{pid}"},
        "dosageInstruction": [{"text": "1 comprimé le soir"}],
    }
    resource.update(extra)
    return resource


def hostile_lines() -> Iterator[str]:
    """Good and bad lines of every kind the reader tells apart, mixed."""
    ins = with_check_key("2510375123456")
    yield "\ufeff" + json.dumps(patient("p0"))  # byte-order mark on line 1
    for i in range(1, 40):
        yield json.dumps(patient(f"p{i}"), ensure_ascii=i % 2 == 0)
        yield json.dumps(request(f"mr{i}", f"p{i}"))
        if i % 5 == 0:
            yield ""  # blank line
            yield "   "
        if i % 7 == 0:
            yield '{"resourceType": "Patient", "id": "bad' + str(i) + '"'  # invalid JSON
            yield json.dumps(patient(f"nameless{i}", name=[]))  # rejected patient...
            yield json.dumps(request(f"orphan{i}", f"nameless{i}"))  # ...and what depends on it
        if i % 9 == 0:
            yield '{"resourceType": "MedicationRequest", "id": "dup", "id": "dup2"}'  # duplicate key
            yield '{"resourceType": "Observation", "id": "nan", "valueQuantity": {"value": NaN}}'
            yield json.dumps([1, 2, 3])  # not a resource
            yield json.dumps(request(f"lost{i}", "nobody"))  # patient cannot be found
            yield json.dumps(request(f"mr{i - 1}", f"p{i - 1}", status="completed"))  # a later copy wins
    # A Bundle on a line, with its own references.
    yield json.dumps(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {"fullUrl": "urn:uuid:b-patient", "resource": patient("bp", "1962-05")},  # partial birth date
                {
                    "fullUrl": "urn:uuid:b-request",
                    "resource": request("bmr", "x", subject={"reference": "urn:uuid:b-patient"}),
                },
                {"resource": None},
                "not an entry",
            ],
        }
    )
    # The same person under two ids (same INS, same birth date), then a homonym with another birth date.
    yield json.dumps(
        patient("twin-a", identifier=[{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": ins}], extension=QUAL)
    )
    yield json.dumps(
        patient("twin-b", identifier=[{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": ins}], extension=QUAL)
    )
    yield json.dumps(
        patient(
            "other", "1951-02-01", identifier=[{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": ins}], extension=QUAL
        )
    )
    yield json.dumps(request("t-a", "twin-a"))
    yield json.dumps(request("t-b", "twin-b"))
    yield json.dumps(
        patient("prov", identifier=[{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": ins}])
    )  # INS dropped
    yield json.dumps(
        request(
            "nosub",
            "p1",
            substitution={"allowedBoolean": False, "reason": {"text": "le patient préfère"}},  # warning
            dispenseRequest={"numberOfRepeatsAllowed": 2.5},  # then a problem
        )
    )
    yield json.dumps(request("weird", "p2", dosageInstruction="twice"))
    yield json.dumps({"resourceType": "Basic", "id": "ignored"})
    # The kinds of loss that are kept flagged or counted (docs/fhir-input.md).
    yield json.dumps(request("unknown", "p4", resourceType="MedicationStatement", status="unknown"))
    gone = {"reference": "Medication/gone", "display": "KARDEGIC 75 mg"}
    yield json.dumps(request("retired", "p4", medicationCodeableConcept=None, medicationReference=gone))
    coded = {"coding": [{"system": "http://snomed.info/sct", "code": "418770003"}]}
    yield json.dumps(request("coded", "p5", medicationCodeableConcept=coded))
    yield json.dumps(request("none", "p5", medicationCodeableConcept={"text": "No known medications"}))
    yield json.dumps(patient("p6", name=[{"family": "EVIL\u001b[2J\u202e", "given": ["Ana"]}]))
    yield json.dumps(patient("same-id", "1960-01-01"))
    yield json.dumps(patient("same-id", "1970-02-02"))  # another person under the same id
    yield json.dumps(request("to-same-id", "same-id"))  # the same file holds both: ambiguous
    yield json.dumps(request("l" * 200, "p6"))  # a long id
    yield json.dumps(request("mr8", "p9"))  # a later copy of mr8 about another patient: the earlier is lost
    yield json.dumps({"resourceType": "Patient", "id": "x" * 80})  # invalid id
    yield json.dumps(request("last", "p3"))  # no newline after the last line


def write_hostile(folder: Path) -> list[Path]:
    text = "\n".join(hostile_lines())
    raw = text.encode("utf-8")
    raw = raw.replace(b'"id": "p17"', b'"id": "p\xff17"')  # one line that is not UTF-8
    path = folder / "mixed.ndjson"
    path.write_bytes(raw)
    return [path]


def test_the_synthetic_practice_reads_the_same_with_workers(tmp_path: Path) -> None:
    write_practice(tmp_path, patients=60, seed=3, today=dt.date(2026, 11, 28))
    serial = read([tmp_path], workers=1)
    shared = read([tmp_path], workers=2)
    assert len(serial[0]) > 300
    assert shared == serial


def test_hostile_input_gives_the_same_records_and_problems_with_workers(tmp_path: Path) -> None:
    sources = write_hostile(tmp_path)
    records, report = read(sources, workers=1)
    assert records and report["problems"] and report["warnings"] and report["duplicates"] and report["ins_dropped"]
    assert any("not valid UTF-8" in problem for problem in report["problems"])
    whole = report["whole"]
    assert whole["summary"]["flagged"] == {
        "treatment.status-unknown": 1,
        "treatment.unresolved-medication": 1,
        "treatment.code-only": 1,
    }
    assert {"collision", "negation", "duplicate", "invalid"} <= set(whole["summary"]["dropped"])
    assert whole["stripped_texts"]["count"] == 1
    for counts in whole["types"].values():  # no loss is silent: every resource read is kept or dropped
        assert counts["read"] == counts["kept"] + sum(counts["dropped"].values())
    assert read(sources, workers=3) == (records, report)


def test_strict_mode_stops_at_the_same_place_with_workers(tmp_path: Path) -> None:
    # Every line is good but one request, whose patient is missing: found in pass 2, many chunks in.
    items = [patient(f"p{i}") for i in range(30)] + [request(f"mr{i}", f"p{i % 30}") for i in range(60)]
    items.insert(70, request("lost", "nobody"))
    source = tmp_path / "strict.ndjson"
    source.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    serial = read_until_the_error(source, workers=1)
    assert len(serial[0]) == 30 + 40 and "line 71" in serial[1]
    assert read_until_the_error(source, workers=2) == serial


def read_until_the_error(source: Path, workers: int) -> tuple[list[str], str]:
    seen: list[str] = []
    try:
        for record in read_records([source], strict=True, workers=workers):
            seen.append(repr(record))
    except InputError as error:
        return seen, str(error)
    raise AssertionError("a strict read of bad input must fail")


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        read_records([tmp_path], workers=0)


@pytest.mark.parametrize("size", [1, 50, 1500, 10**6])
def test_chunks_cover_the_file_in_whole_lines(tmp_path: Path, size: int) -> None:
    lengths = [0, 5, 700, 1, 0, 250, 3000, 17, 199, 200, 201, 0, 64]
    body = b"".join(b"x" * n + b"\n" for n in lengths) + b"tail without newline"
    path = tmp_path / "lines.ndjson"
    path.write_bytes(body)
    spans = list(sources.spans(path, size))
    assert spans[0].start == 0 and spans[-1].end == -1
    for previous, following in zip(spans, spans[1:], strict=False):
        assert previous.end == following.start
        assert body[previous.end - 1 : previous.end] == b"\n"
        assert following.first_line == body[: following.start].count(b"\n") + 1

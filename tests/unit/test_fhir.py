"""continuity.fhir: sources, references, duplicates, negations, bad and hostile input, strict vs lenient."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuity.errors import InputError
from continuity.fhir import ImportReport, read_records, sources, vocabulary
from continuity.model import (
    Allergy,
    AllergyStatus,
    Appointment,
    Condition,
    Measurement,
    Patient,
    Practice,
    Record,
    Treatment,
)


def read(*paths: Path, strict: bool = False) -> tuple[list[Record], ImportReport]:
    report = ImportReport()
    return list(read_records(list(paths), strict=strict, report=report)), report


def only(records: list[Record], kind: type) -> list[Any]:
    return [record for record in records if isinstance(record, kind)]


def lines(directory: Path, name: str, *items: Any) -> Path:
    """An NDJSON file; str items are written as they are (to write broken lines)."""
    path = directory / name
    text = "".join((item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)) + "\n" for item in items)
    path.write_text(text, encoding="utf-8")
    return path


def bundle(directory: Path, name: str, *resources: dict[str, Any], kind: str = "collection") -> Path:
    entries = [
        {"fullUrl": f"urn:uuid:{index:08d}-0000-4000-8000-000000000000", "resource": r}
        for index, r in enumerate(resources)
    ]
    path = directory / name
    path.write_text(json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries}), encoding="utf-8")
    return path


def patient(pid: str = "p1", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": "MARTIN", "given": ["Jeanne"]}],
        "gender": "female",
        "birthDate": "1950-01-31",
    }
    resource.update(extra)
    return resource


def request(rid: str = "mr1", pid: str = "p1", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "amlodipine 5 mg"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    resource.update(extra)
    return resource


def allergy(aid: str, pid: str = "p1", **code: Any) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "id": aid, "patient": {"reference": f"Patient/{pid}"}, "code": code}


def expect_located(error: InputError, source: Path, location: str, resource: str) -> None:
    message = str(error)
    assert str(source) in message, message
    assert location in message, message
    assert resource in message, message


# --- sources ---------------------------------------------------------------------------------------


def test_missing_source_is_an_error_even_when_lenient(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read(tmp_path / "absent.ndjson")


def test_a_folder_reads_its_json_and_ndjson_files_sorted(tmp_path: Path) -> None:
    lines(tmp_path, "b.ndjson", patient("p2"))
    lines(tmp_path, "a.ndjson", patient("p1"))
    (tmp_path / "c.json").write_text(json.dumps(patient("p3")))
    (tmp_path / "README.txt").write_text("not FHIR")
    (tmp_path / ".hidden.ndjson").write_text("garbage")
    with gzip.open(tmp_path / "d.ndjson.gz", "wt", encoding="utf-8") as stream:
        stream.write(json.dumps(patient("p4")) + "\n")
    (tmp_path / "manifest.json").write_text(json.dumps({"transactionTime": "2026-11-28T02:00:00Z", "output": []}))
    records, report = read(tmp_path, strict=True)
    assert [p.id for p in only(records, Patient)] == ["p1", "p2", "p3", "p4"]
    assert report.problems == []


def test_blank_lines_and_a_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(patient("p1")).encode() + b"\r\n\n   \n" + json.dumps(patient("p2")).encode()
    )
    records, _ = read(path, strict=True)
    assert [p.id for p in only(records, Patient)] == ["p1", "p2"]


def test_unsupported_file_given_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_text("<Bundle/>")
    _, report = read(path)
    assert "unsupported file type" in report.problems[0].message
    with pytest.raises(InputError, match="unsupported file type"):
        read(path, strict=True)


# --- bad input: strict raises with file, line/entry and id; lenient reports, skips, goes on --------


def test_invalid_json_line(tmp_path: Path) -> None:
    source = lines(tmp_path, "Patient.ndjson", patient("p1"), '{"resourceType": "Patient", "id": "p2",', patient("p3"))
    with pytest.raises(InputError) as error:
        read(source, strict=True)
    expect_located(error.value, source, "line 2", "invalid JSON")
    records, report = read(source)
    assert [p.id for p in only(records, Patient)] == ["p1", "p3"]
    assert [(p.location, p.message.split(":")[0]) for p in report.problems] == [("line 2", "invalid JSON")]


def test_invalid_json_file_is_reported_and_the_other_sources_still_read(tmp_path: Path) -> None:
    broken = tmp_path / "a-broken.json"
    broken.write_text('{"resourceType": "Bundle", "entry": [')
    good = lines(tmp_path, "b.ndjson", patient("p1"))
    with pytest.raises(InputError) as error:
        read(broken, good, strict=True)
    assert str(broken) in str(error.value) and "invalid JSON" in str(error.value)
    records, report = read(broken, good)
    assert [p.id for p in only(records, Patient)] == ["p1"]
    assert [(p.source, p.location) for p in report.problems] == [(str(broken), "")]


@pytest.mark.parametrize(
    "line",
    [
        '[{"resourceType": "Patient"}]',
        '"Patient"',
        "42",
        "null",
        '{"id": "p9"}',
        '{"resourceType": 5}',
        '{"resourceType": "not a type"}',
    ],
)
def test_a_line_that_is_not_a_resource(tmp_path: Path, line: str) -> None:
    source = lines(tmp_path, "x.ndjson", patient("p1"), line)
    with pytest.raises(InputError) as error:
        read(source, strict=True)
    expect_located(error.value, source, "line 2", "not a FHIR resource")
    records, report = read(source)
    assert len(only(records, Patient)) == 1 and len(report.problems) == 1


def test_a_patient_without_a_name(tmp_path: Path) -> None:
    nameless = patient("p2", name=[{"use": "official"}])
    source = lines(tmp_path, "Patient.ndjson", patient("p1"), nameless, patient("p3", name=[]))
    with pytest.raises(InputError) as error:
        read(source, strict=True)
    expect_located(error.value, source, "line 2", "Patient/p2")
    assert "no name" in str(error.value)
    records, report = read(source)
    assert [p.id for p in only(records, Patient)] == ["p1"]
    assert [(p.location, p.resource) for p in report.problems] == [("line 2", "Patient/p2"), ("line 3", "Patient/p3")]


def test_a_treatment_whose_patient_cannot_be_found(tmp_path: Path) -> None:
    patients = lines(tmp_path, "Patient.ndjson", patient("p1"))
    requests = lines(tmp_path, "MedicationRequest.ndjson", request("mr1", "p1"), request("mr2", "ghost"))
    with pytest.raises(InputError) as error:
        read(patients, requests, strict=True)
    expect_located(error.value, requests, "line 2", "MedicationRequest/mr2")
    assert "Patient/ghost cannot be found" in str(error.value)
    records, report = read(patients, requests)
    assert [t.id for t in only(records, Treatment)] == ["mr1"]
    assert [p.resource for p in report.problems] == ["MedicationRequest/mr2"]


@pytest.mark.parametrize(
    ("medication", "expected"),
    [
        ({"medicationReference": {"reference": "Medication/absent"}}, "medication 'Medication/absent' cannot be found"),
        ({"medicationReference": {"reference": "#absent"}}, "contained medication '#absent' cannot be found"),
        ({"medicationReference": {"reference": "urn:uuid:0000"}}, "cannot be found"),
        ({}, "no medicationCodeableConcept or medicationReference"),
        ({"medicationCodeableConcept": {"text": ""}}, "the medication has no name and no code"),
    ],
)
def test_a_treatment_whose_medication_cannot_be_resolved(
    tmp_path: Path, medication: dict[str, Any], expected: str
) -> None:
    mr = request("mr2")
    del mr["medicationCodeableConcept"]
    mr.update(medication)
    source = bundle(tmp_path, "b.json", patient("p1"), request("mr1"), mr)
    with pytest.raises(InputError) as error:
        read(source, strict=True)
    expect_located(error.value, source, "entry 2", "MedicationRequest/mr2")
    assert expected in str(error.value)
    records, report = read(source)
    assert [t.id for t in only(records, Treatment)] == ["mr1"] and len(report.problems) == 1


def test_a_medication_reference_with_only_a_display_is_the_text_we_have(tmp_path: Path) -> None:
    mr = request("mr1", medicationReference={"display": "Gliclazide 30 mg"})
    del mr["medicationCodeableConcept"]
    records, _ = read(bundle(tmp_path, "b.json", patient(), mr), strict=True)
    assert only(records, Treatment)[0].dci == "Gliclazide 30 mg"


def test_a_resource_without_id(tmp_path: Path) -> None:
    anonymous = patient()
    del anonymous["id"]
    source = lines(tmp_path, "Patient.ndjson", anonymous, patient("p2", id="bad id!"))
    _, report = read(source)
    assert [p.message for p in report.problems] == [
        "Patient has no id",
        "Patient has an invalid id 'bad id!' (1 to 255 of A-Z a-z 0-9 - . _)",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"resourceType": "Patient", "id": "a", "id": "b"}', "duplicate key 'id'"),
        ('{"resourceType": "Observation", "id": "o", "valueQuantity": {"value": NaN}}', "NaN is not valid JSON"),
        ('{"resourceType": "Observation", "id": "o", "valueQuantity": {"value": -Infinity}}', "-Infinity is not valid"),
        ('{"resourceType": "Observation", "id": "o", "valueQuantity": {"value": 1e999}}', "out of range"),
        ('{"resourceType": "Patient", "id": "p", "x": ' + "9" * 5000 + "}", "invalid JSON"),
    ],
)
def test_strict_json(tmp_path: Path, line: str, expected: str) -> None:
    _, report = read(lines(tmp_path, "x.ndjson", line))
    (problem,) = report.problems
    assert expected in problem.message and problem.location == "line 1"


def test_an_over_long_line_is_reported_without_being_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_LINE_BYTES", 4096)
    huge = patient("p2", name=[{"family": "X" * 20_000}])
    source = lines(tmp_path, "Patient.ndjson", patient("p1"), huge, patient("p3"))
    records, report = read(source)
    assert [p.id for p in only(records, Patient)] == ["p1", "p3"]
    assert [(p.location, p.message) for p in report.problems] == [("line 2", "line longer than 4096 bytes")]
    with pytest.raises(InputError, match="line 2"):
        read(source, strict=True)


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(json.dumps(patient("p1")).encode() + b"\n" + b'{"resourceType": "Patient", "id": "\xff"}\n')
    records, report = read(path)
    assert len(only(records, Patient)) == 1
    assert [(p.location, p.message) for p in report.problems] == [("line 2", "line is not valid UTF-8")]


def test_references_to_things_we_do_not_use_may_dangle(tmp_path: Path) -> None:
    mr = request(
        requester={"reference": "Practitioner/nobody"},
        encounter={"reference": "Encounter/e1"},
        reasonReference=[{"reference": "Observation/gone"}],
    )
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "code": {"text": "HTA"},
        "subject": {"reference": "Patient/p1"},
        "asserter": {"reference": "Practitioner/nobody"},
    }
    lab = {
        "resourceType": "Observation",
        "id": "lab",
        "code": {"text": "HbA1c"},
        "subject": {"reference": "Patient/gone"},
    }
    p = patient(
        managingOrganization={"reference": "Organization/none"}, generalPractitioner=[{"reference": "Practitioner/x"}]
    )
    records, report = read(lines(tmp_path, "all.ndjson", p, mr, condition, lab), strict=True)
    assert only(records, Treatment)[0].last_prescriber_id == ""
    assert only(records, Patient)[0].general_practitioner_id == ""
    assert len(only(records, Condition)) == 1 and report.problems == []


def test_bad_bundle_entries(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    entries = [
        {"resource": patient("p1")},
        "not an entry",
        {"resource": {"no": "type"}},
        {"request": {"method": "DELETE"}},
    ]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
    records, report = read(path)
    assert len(only(records, Patient)) == 1
    assert [(p.location, p.message) for p in report.problems] == [
        ("entry 1", "Bundle entry is not a JSON object"),
        ("entry 2", "entry.resource is not a FHIR resource"),
    ]


# --- references ------------------------------------------------------------------------------------


def test_reference_forms(tmp_path: Path) -> None:
    role = {"resourceType": "PractitionerRole", "id": "role1", "practitioner": {"reference": "Practitioner/dr1"}}
    doctor = {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "LEBLANC"}]}
    no_id = patient()
    del no_id["id"]  # its id comes from its fullUrl (urn:uuid:00000002-…)
    by_url = request(
        "mr1",
        subject={"reference": "https://ehr.example/fhir/Patient/p9/_history/3"},
        requester={"reference": "PractitionerRole/role1"},
    )
    by_identifier = request("mr2", subject={"identifier": {"system": "urn:x", "value": "42"}})
    by_uuid = request("mr3", subject={"reference": "urn:uuid:00000002-0000-4000-8000-000000000000"})
    p9 = patient("p9", identifier=[{"system": "urn:x", "value": "42"}], birthDate="1960-01-01")
    records, _ = read(
        bundle(tmp_path, "b.json", role, doctor, no_id, p9, by_url, by_identifier, by_uuid, kind="searchset"),
        strict=True,
    )
    subjects = {t.id: t.patient_id for t in only(records, Treatment)}
    assert subjects == {"mr1": "p9", "mr2": "p9", "mr3": "00000002-0000-4000-8000-000000000000"}
    assert only(records, Treatment)[0].last_prescriber_id == "dr1"  # through the PractitionerRole


def test_a_bundle_inside_a_bundle(tmp_path: Path) -> None:
    inner = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [{"fullUrl": "urn:uuid:a", "resource": patient("p1")}],
    }
    records, report = read(bundle(tmp_path, "outer.json", inner, request()), strict=True)
    assert len(only(records, Patient)) == 1 and len(only(records, Treatment)) == 1
    assert report.problems == []


# --- duplicates --------------------------------------------------------------------------------------


def test_the_last_copy_of_a_resource_wins(tmp_path: Path) -> None:
    old = lines(
        tmp_path,
        "1.ndjson",
        patient("p1", telecom=[{"system": "phone", "value": "01 00 00 00 01"}]),
        request("mr1", medicationCodeableConcept={"text": "old"}),
    )
    new = lines(tmp_path, "2.ndjson", patient("p1"), request("mr1", medicationCodeableConcept={"text": "new"}))
    records, report = read(old, new, strict=True)
    (only_patient,) = only(records, Patient)
    assert only_patient.phones == ()  # the same person (same birth date, identifiers, name): the last copy
    assert [t.dci for t in only(records, Treatment)] == ["new"]
    assert report.duplicates == 2


def test_when_the_last_copy_of_a_patient_is_bad_the_good_one_is_kept(tmp_path: Path) -> None:
    source = lines(tmp_path, "Patient.ndjson", patient("p1"), patient("p1", name=5))
    records, report = read(source, lines(tmp_path, "mr.ndjson", request()))
    assert len(only(records, Patient)) == 1 and len(only(records, Treatment)) == 1
    assert [p.location for p in report.problems] == ["line 2"]


def test_same_identifier_same_birth_date_is_one_person_else_two(tmp_path: Path) -> None:
    ident = [{"system": "urn:oid:1.2.3", "value": "7"}]
    a = bundle(tmp_path, "a.json", patient("a", identifier=ident), allergy("al-a", "a", text="Pénicilline"))
    b = bundle(tmp_path, "b.json", patient("b", identifier=ident), request("mr-b", "b"))
    c = bundle(tmp_path, "c.json", patient("c", identifier=ident, birthDate="1951-01-31"))
    records, report = read(a, b, c, strict=True)
    assert sorted(p.id for p in only(records, Patient)) == ["a", "c"]
    assert only(records, Treatment)[0].patient_id == "a"
    assert next(p for p in only(records, Patient) if p.id == "a").allergy_status is AllergyStatus.RECORDED
    (warning,) = report.warnings
    assert warning.resource == "Patient/c" and "kept apart" in warning.message


# --- negations and allergy status ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "status"),
    [
        ([{"coding": [{"system": "http://snomed.info/sct", "code": "716186003"}]}], AllergyStatus.NONE_KNOWN),
        ([{"coding": [{"code": "409137002"}]}], AllergyStatus.NONE_KNOWN),
        ([{"text": "NKDA"}], AllergyStatus.NONE_KNOWN),
        ([{"coding": [{"code": "no-known-allergies"}]}], AllergyStatus.NONE_KNOWN),
        ([{"coding": [{"code": "no-allergy-info"}]}], AllergyStatus.NO_INFORMATION),
        # "No known food allergy" says nothing about drugs: still no information.
        ([{"coding": [{"code": "429625007", "display": "No known food allergy"}]}], AllergyStatus.NO_INFORMATION),
        ([{"text": "Pénicilline"}, {"coding": [{"code": "716186003"}]}], AllergyStatus.RECORDED),
        ([], AllergyStatus.NO_INFORMATION),
    ],
)
def test_allergy_status(tmp_path: Path, codes: list[dict[str, Any]], status: AllergyStatus) -> None:
    resources = [allergy(f"a{i}", **code) for i, code in enumerate(codes)]
    records, _ = read(lines(tmp_path, "x.ndjson", patient(), *resources), strict=True)
    assert only(records, Patient)[0].allergy_status is status
    assert [a.substance for a in only(records, Allergy)] == (
        ["Pénicilline"] if status is AllergyStatus.RECORDED else []
    )


@pytest.mark.parametrize(
    ("reason", "status"), [("nilknown", AllergyStatus.NONE_KNOWN), ("unavailable", AllergyStatus.NO_INFORMATION)]
)
def test_composition_allergy_section_with_only_an_empty_reason(
    tmp_path: Path, reason: str, status: AllergyStatus
) -> None:
    composition = {
        "resourceType": "Composition",
        "id": "doc",
        "subject": {"reference": "Patient/p1"},
        "section": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "48765-2"}]},
                "emptyReason": {"coding": [{"code": reason}]},
            }
        ],
    }
    records, _ = read(bundle(tmp_path, "doc.json", composition, patient(), kind="document"), strict=True)
    assert only(records, Patient)[0].allergy_status is status


def test_refuted_allergies_and_negations_are_not_records(tmp_path: Path) -> None:
    refuted = allergy("a1", text="Latex") | {"verificationStatus": {"coding": [{"code": "refuted"}]}}
    no_problem = {
        "resourceType": "Condition",
        "id": "c1",
        "code": {"coding": [{"code": "no-problem-info"}]},
        "subject": {"reference": "Patient/p1"},
    }
    no_medication = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "787481004"}]},
        "subject": {"reference": "Patient/p1"},
    }
    records, _ = read(lines(tmp_path, "x.ndjson", patient(), refuted, no_problem, no_medication), strict=True)
    assert only(records, Allergy) == only(records, Condition) == only(records, Treatment) == []
    assert only(records, Patient)[0].allergy_status is AllergyStatus.NO_INFORMATION


# --- measurements, appointments, organizations ---------------------------------------------------


def observation(oid: str, code: str, value: Any, unit: str, **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-11-02",
        "valueQuantity": {"value": value, "code": unit},
    }
    resource.update(extra)
    return resource


def test_measurements(tmp_path: Path) -> None:
    height = observation("h", "8302-2", 1.62, "m")
    weight = observation("w", "29463-7", 140, "[lb_av]")
    ignored = observation("x", "29463-7", 70, "kg", status="entered-in-error")
    spelled = observation("s", "29463-7", 71, "") | {"valueQuantity": {"value": 71, "unit": "Kilograms"}}
    bad_unit = observation("u", "29463-7", 70, "stone")
    negative = observation("n", "8302-2", -3, "cm")
    records, report = read(lines(tmp_path, "x.ndjson", patient(), height, weight, spelled, ignored, bad_unit, negative))
    assert [(m.kind, m.value, m.unit) for m in only(records, Measurement)] == [
        ("height", 162.0, "cm"),
        ("weight", 63.503, "kg"),
        ("weight", 71.0, "kg"),
    ]
    assert [p.resource for p in report.problems] == ["Observation/u", "Observation/n"]


def test_appointments(tmp_path: Path) -> None:
    def appointment(aid: str, *actors: str, **extra: Any) -> dict[str, Any]:
        resource = {
            "resourceType": "Appointment",
            "id": aid,
            "status": "booked",
            "start": "2026-12-01T08:30:00.123456789+01:00",
            "participant": [{"actor": {"reference": actor}} for actor in actors],
        }
        resource.update(extra)
        return resource

    doctor = {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "LEBLANC"}]}
    meeting = appointment("a-meeting", "Practitioner/dr1")
    no_start = appointment("a-nostart", "Patient/p1")
    del no_start["start"]
    records, report = read(
        lines(
            tmp_path,
            "x.ndjson",
            doctor,
            patient(),
            appointment("a1", "Patient/p1", "Practitioner/dr1"),
            meeting,
            no_start,
            appointment("a-ghost", "Patient/ghost"),
        )
    )
    (kept,) = only(records, Appointment)
    assert (kept.id, kept.practitioner_id, kept.start.microsecond) == ("a1", "dr1", 123456)
    assert [(p.resource, p.message) for p in report.problems] == [
        ("Appointment/a-nostart", "Appointment has no start"),
        ("Appointment/a-ghost", "patient Patient/ghost cannot be found"),
    ]


def test_organizations(tmp_path: Path) -> None:
    practice = {
        "resourceType": "Organization",
        "id": "o1",
        "name": "Cabinet",
        "telecom": [{"system": "phone", "value": "tel:+33380000000"}],
    }
    insurer = {
        "resourceType": "Organization",
        "id": "o2",
        "name": "CPAM",
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "ins"}]}],
    }
    nameless = {"resourceType": "Organization", "id": "o3"}
    records, report = read(lines(tmp_path, "Organization.ndjson", practice, insurer, nameless), strict=True)
    assert [(p.id, p.phone) for p in only(records, Practice)] == [("o1", "+33380000000")]
    assert [w.resource for w in report.warnings] == ["Organization/o3"]


# --- hostile input: a clean problem, never a traceback --------------------------------------------


def test_deeply_nested_json(tmp_path: Path) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    nested = '{"resourceType": "Patient", "id": "p2", "extension": ' + "[" * 100_000 + "]" * 100_000 + "}"
    records, report = read(lines(tmp_path, "x.ndjson", deep, nested, patient("p3")))
    assert [p.id for p in only(records, Patient)] == ["p3"]
    assert [p.message for p in report.problems] == ["invalid JSON: nested too deeply"] * 2
    whole = tmp_path / "deep.json"
    whole.write_text(deep)
    _, report = read(whole)
    assert report.problems[0].message == "invalid JSON: nested too deeply"


def test_nested_bundles_are_bounded(tmp_path: Path) -> None:
    resource: dict[str, Any] = patient()
    for _ in range(10):
        resource = {"resourceType": "Bundle", "entry": [{"resource": resource}]}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(resource))
    _, report = read(path)
    assert [p.message for p in report.problems] == ["Bundles nested too deeply"]


def test_huge_strings_are_bounded(tmp_path: Path) -> None:
    huge = patient("p1", name=[{"family": "A" * 2_000_000, "given": ["B" * 100_000]}])
    records, _ = read(lines(tmp_path, "x.ndjson", huge), strict=True)
    (kept,) = only(records, Patient)
    assert len(kept.birth_name) == vocabulary.MAX_TEXT and len(kept.birth_given_names[0]) == vocabulary.MAX_TEXT


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("name", 5, "Patient.name must be a list, not a number"),
        ("name", ["MARTIN"], "Patient.name[0] must be an object, not a string"),
        ("name", [{"family": ["MARTIN"]}], "Patient.name[0].family must be a string, not a list"),
        ("name", [{"family": "X", "given": [1]}], "Patient.name[0].given[0] must be a string"),
        ("birthDate", 19500131, "Patient.birthDate must be a string, not a number"),
        ("birthDate", "31/01/1950", "Patient.birthDate is not a FHIR date"),
        ("birthDate", "1950-02-30", "Patient.birthDate is not a valid date"),
        ("gender", {"code": "female"}, "Patient.gender must be a string, not an object"),
        (
            "extension",
            [
                {
                    "url": vocabulary.EXT_IDENTITY_RELIABILITY,
                    "extension": [{"url": "identityStatus", "valueCoding": "QUAL"}],
                }
            ],
            "Patient.extension[0].extension[0].valueCoding must be an object, not a string",
        ),
        ("identifier", "INS", "Patient.identifier must be a list, not a string"),
    ],
)
def test_wrong_types_in_patient_fields(tmp_path: Path, field: str, value: Any, expected: str) -> None:
    source = lines(tmp_path, "Patient.ndjson", patient("p1", **{field: value}), patient("p2"))
    records, report = read(source)
    assert [p.id for p in only(records, Patient)] == ["p2"]
    (problem,) = report.problems
    assert expected in problem.message and problem.resource == "Patient/p1"


@pytest.mark.parametrize(
    ("field", "value"), [("telecom", "0612345678"), ("address", [3]), ("active", "yes"), ("deceasedBoolean", 1)]
)
def test_a_malformed_contact_field_is_dropped_not_the_patient(tmp_path: Path, field: str, value: Any) -> None:
    records, report = read(lines(tmp_path, "Patient.ndjson", patient("p1", **{field: value})), strict=True)
    assert [p.id for p in only(records, Patient)] == ["p1"]
    assert report.problems == [] and len(report.warnings) == 1 and field in report.warnings[0].message


@pytest.mark.parametrize(
    ("value", "deceased_date"),
    [("2025-02-03", dt.date(2025, 2, 3)), ("2025-02-03T10:15:00+01:00", dt.date(2025, 2, 3)), ("2025", None)],
)
def test_date_of_death_is_read(tmp_path: Path, value: str, deceased_date: dt.date | None) -> None:
    records, report = read(lines(tmp_path, "Patient.ndjson", patient("p1", deceasedDateTime=value)), strict=True)
    (found,) = only(records, Patient)
    assert found.deceased and found.deceased_date == deceased_date  # a year alone: dead, date unknown


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"subject": "Patient/p1"}, "MedicationRequest.subject must be an object, not a string"),
        ({"dosageInstruction": [{"text": 5}]}, "MedicationRequest.dosageInstruction[0].text must be a string"),
        ({"medicationCodeableConcept": {"coding": "x"}}, "medicationCodeableConcept.coding must be a list"),
        ({"authoredOn": "yesterday"}, "MedicationRequest.authoredOn is not a FHIR date"),
        ({"substitution": {"allowedBoolean": "false"}}, "substitution.allowedBoolean must be true or false"),
        ({"status": ["active"]}, "MedicationRequest.status must be a string"),
    ],
)
def test_wrong_types_in_request_fields(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    records, report = read(lines(tmp_path, "x.ndjson", patient(), request("mr1", **change), request("mr2")))
    assert [t.id for t in only(records, Treatment)] == ["mr2"]
    (problem,) = report.problems
    assert expected in problem.message and problem.resource == "MedicationRequest/mr1"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
TEMPLATES = [
    patient(
        "p1",
        identifier=[{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "x"}],
        telecom=[{"system": "phone", "value": "1"}],
    ),
    request(
        "mr1",
        dosageInstruction=[{"text": "1/j", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}],
        substitution={"allowedBoolean": False},
    ),
    allergy("a1", text="Latex") | {"reaction": [{"manifestation": [{"text": "urticaire"}]}]},
    observation("w", "29463-7", 70, "kg"),
    {
        "resourceType": "Appointment",
        "id": "ap",
        "start": "2026-12-01T08:30:00Z",
        "participant": [{"actor": {"reference": "Patient/p1"}}],
    },
    {
        "resourceType": "Medication",
        "id": "m",
        "code": {"text": "x"},
        "ingredient": [{"itemCodeableConcept": {"text": "y"}, "strength": {"numerator": {"value": 1, "unit": "mg"}}}],
    },
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=st.sampled_from(TEMPLATES), data=st.data(), replacement=JSON_VALUES)
def test_any_value_in_any_field_gives_records_or_clean_problems(
    tmp_path: Path, template: dict[str, Any], data: st.DataObject, replacement: Any
) -> None:
    resource = copy.deepcopy(template)
    where = data.draw(st.sampled_from([p for p in _paths(resource) if p[0] not in ("resourceType", "id")]))
    node = resource
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = replacement
    source = lines(
        tmp_path,
        "fuzz.ndjson",
        patient(),
        {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "X"}]},
        resource,
    )
    read(source)  # lenient: never raises
    failure: InputError | None = None
    try:
        read(source, strict=True)
    except InputError as error:  # strict: only ever a located InputError
        failure = error
    assert failure is None or str(source) in str(failure)


def test_a_line_skipped_by_the_fast_first_pass_is_still_checked(tmp_path: Path) -> None:
    """Pass 1 reads only the key of a line that starts like a Bulk export line; pass 2 parses it."""
    broken = '{"resourceType":"MedicationRequest","id":"mr1","status": oops}'
    requests = lines(tmp_path, "MedicationRequest.ndjson", request("mr1"), broken, request("mr2"))
    patients = lines(tmp_path, "Patient.ndjson", patient())
    records, report = read(requests, patients)
    assert [t.id for t in only(records, Treatment)] == ["mr2"]  # the broken copy was the last mr1
    assert [(p.location, p.message.split(":")[0]) for p in report.problems] == [("line 2", "invalid JSON")]
    with pytest.raises(InputError) as error:
        read(requests, patients, strict=True)
    expect_located(error.value, requests, "line 2", "invalid JSON")
    assert "ligne 2" in error.value.message_fr


def test_a_merged_person_keeps_one_copy_of_identical_records_only(tmp_path: Path) -> None:
    ident = [{"system": "urn:oid:1.2.3", "value": "7"}]
    first = bundle(tmp_path, "a.json", patient("a", identifier=ident), allergy("al-1", "a", text="Latex"))
    second = bundle(
        tmp_path,
        "b.json",
        patient("b", identifier=ident),
        allergy("al-2", "b", text="Latex"),  # the same fact under another id
        allergy("al-3", "b", text="Latex") | {"criticality": "high"},  # not the same: kept
    )
    records, report = read(first, second, strict=True)
    assert [(a.id, a.patient_id, a.criticality) for a in only(records, Allergy)] == [
        ("al-1", "a", ""),
        ("al-3", "a", "high"),
    ]
    assert report.duplicates == 2  # patient b, allergy al-2

"""What the reader keeps of a medication line for the ordonnance rules: every coding, the course of therapy,
the end date (and which source of it wins), and the flags — through a real snapshot database and back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from continuity import flags, snapshot_build, snapshotdb
from continuity.fhir import ImportReport, read_records
from continuity.model import Patient, Sex, Treatment

SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
CIP = "urn:oid:1.2.250.1.213.2.3.1"


def read(tmp_path: Path, *resources: dict[str, Any]) -> tuple[list[Treatment], ImportReport]:
    path = tmp_path / "export.ndjson"
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "MARTIN", "given": ["Jeanne"]}]}
    path.write_text("".join(json.dumps(r) + "\n" for r in (patient, *resources)), encoding="utf-8")
    report = ImportReport()
    records = list(read_records([path], report=report, strict=False))
    return [r for r in records if isinstance(r, Treatment)], report


def request(rid: str = "mr1", **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "authoredOn": "2026-10-01",
        "medicationCodeableConcept": {
            "coding": [
                {"system": CIP, "code": "3400930000000"},
                {"system": ATC, "code": "C09AA05", "display": "ramipril"},
                {"system": SNOMED, "code": "386872004"},
            ],
            "text": "TRIATEC 5 mg",
        },
    }
    return resource | extra


def statement(rid: str = "ms1", **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "MedicationStatement",
        "id": rid,
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "paracétamol 1 g"},
    }
    return resource | extra


def timing(**repeat: Any) -> list[dict[str, Any]]:
    return [{"text": "1 le matin", "timing": {"repeat": repeat}}]


def test_every_coding_of_the_medication_is_kept_as_system_and_code(tmp_path: Path) -> None:
    contained = {
        "resourceType": "Medication",
        "id": "med",
        "code": {"coding": [{"system": CIP, "code": "3400936000000"}], "text": "KARDEGIC 75 mg"},
        "ingredient": [
            {"itemCodeableConcept": {"coding": [{"system": ATC, "code": "B01AC06",
                                                 "display": "acide acétylsalicylique"}]}}  # fmt: skip
        ],
    }
    without_concept = {k: v for k, v in request("mr2").items() if k != "medicationCodeableConcept"}
    by_reference = without_concept | {"contained": [contained], "medicationReference": {"reference": "#med"}}
    (direct, referenced), _ = read(tmp_path, request(), by_reference)
    assert direct.codes == (f"{CIP}|3400930000000", f"{ATC}|C09AA05", f"{SNOMED}|386872004")
    assert referenced.codes == (f"{CIP}|3400936000000", f"{ATC}|B01AC06")  # the product first, then its ingredients
    assert referenced.dci == "acide acétylsalicylique" and referenced.brand == "KARDEGIC 75 mg"


@pytest.mark.parametrize(
    ("course", "expected", "chronic"),
    [
        ({"coding": [{"code": "continuous"}]}, "continuous", True),
        ({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                      "code": "acute"}]}, "acute", False),  # fmt: skip
        ({"coding": [{"code": "seasonal"}]}, "seasonal", False),
        ({"text": "Acute"}, "acute", False),
        ({"text": "au long cours"}, "", False),
        (None, "", False),
    ],
)
def test_course_of_therapy(tmp_path: Path, course: dict[str, Any] | None, expected: str, chronic: bool) -> None:
    extra = {"courseOfTherapyType": course} if course else {}
    (treatment,), _ = read(tmp_path, request(**extra))
    assert (treatment.course, treatment.chronic) == (expected, chronic)


def test_a_medication_statement_has_no_course(tmp_path: Path) -> None:
    (treatment,), _ = read(tmp_path, statement())
    assert treatment.course == ""


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        # 1. MedicationStatement.effectivePeriod.end wins over the dosage's bounds
        (statement(effectivePeriod={"start": "2026-09-01", "end": "2026-09-10"},
                   dosage=timing(boundsPeriod={"end": "2026-12-31"})), dt.date(2026, 9, 10)),  # fmt: skip
        # 2. the dosages' boundsPeriod.end (the latest of several)
        (request(dosageInstruction=[*timing(boundsPeriod={"start": "2026-10-01", "end": "2026-10-08"}),
                                    *timing(boundsPeriod={"end": "2026-10-15"})]), dt.date(2026, 10, 15)),  # fmt: skip
        # 3. boundsDuration counted from the start (authoredOn here): days, weeks, calendar months, years
        (request(dosageInstruction=timing(boundsDuration={"value": 7, "code": "d"})), dt.date(2026, 10, 8)),
        (request(dosageInstruction=timing(boundsDuration={"value": 2, "unit": "weeks"})), dt.date(2026, 10, 15)),
        (request(authoredOn="2026-01-31", dosageInstruction=timing(boundsDuration={"value": 1, "code": "mo"})),
         dt.date(2026, 2, 28)),  # fmt: skip
        (request(dosageInstruction=timing(boundsDuration={"value": 1, "code": "a"})), dt.date(2027, 10, 1)),
        # 4. dispenseRequest.validityPeriod.end, when nothing says when the treatment itself ends
        (request(dispenseRequest={"validityPeriod": {"start": "2026-10-01", "end": "2027-01-01"}}),
         dt.date(2027, 1, 1)),  # fmt: skip
        (request(dosageInstruction=timing(boundsDuration={"value": 10, "code": "d"}),
                 dispenseRequest={"validityPeriod": {"end": "2027-01-01"}}), dt.date(2026, 10, 11)),  # fmt: skip
        (request(), None),
        (statement(dosage=timing(boundsDuration={"value": 5, "code": "d"})), None),  # no start: no end either
    ],
)
def test_end_date_and_which_source_wins(tmp_path: Path, resource: dict[str, Any], expected: dt.date | None) -> None:
    (treatment,), report = read(tmp_path, resource)
    assert report.problems == []
    assert treatment.end_date == expected


def test_new_fields_and_flags_travel_through_the_snapshot_database(tmp_path: Path) -> None:
    code_only = {"coding": [{"system": SNOMED, "code": "1"}]}
    unknown = statement("ms2", status="unknown", medicationCodeableConcept=code_only)
    treatments, _ = read(
        tmp_path,
        request(courseOfTherapyType={"coding": [{"code": "acute"}]},
                dosageInstruction=timing(boundsDuration={"value": 7, "code": "d"})),
        unknown,
    )  # fmt: skip
    patient = Patient("p1", "MARTIN", ("Jeanne",), Sex.FEMALE, None, flags=(flags.INCOMPLETE,))
    database = snapshot_build.build_from_records([patient, *treatments], tmp_path / "s.db").path
    db = snapshotdb.open_file(database)
    try:
        summary = db.summary("p1")
    finally:
        db.close()
    assert summary.patient.flags == (flags.INCOMPLETE,)
    back = {t.id: t for t in summary.treatments}
    assert back["mr1"] == treatments[0]
    assert (back["mr1"].course, back["mr1"].end_date) == ("acute", dt.date(2026, 10, 8))
    assert back["ms2"].flags == (flags.STATUS_UNKNOWN, flags.CODE_ONLY)
    assert back["ms2"].codes == (f"{SNOMED}|1",)


def test_every_flag_has_a_french_label_and_an_unknown_one_is_still_shown() -> None:
    for code, flag in flags.FLAGS.items():
        assert flag.code == code and flag.label_fr and flag.applies_to
    assert flags.label_fr(flags.STATUS_UNKNOWN) == "statut inconnu — à vérifier avec le patient"
    assert flags.label_fr("from-a-newer-publisher") == "à vérifier (from-a-newer-publisher)"
    assert not flags.renew_by_default([flags.POSSIBLE_ABSENCE])
    assert flags.renew_by_default([])

"""Real exports without silent loss: each kind of loss seen in real IPS documents and Bulk exports, built with
`publisher build --report` and read back with `show --json`.

The fixtures are written here in the shapes real exports take (IPS document Bundles with urn:uuid
fullUrls and references, relative references, contained Medications, Bulk NDJSON folders with a log
file), each with one kind of trouble; every test asserts what the desk would see (`show --json`: the
item is in its usual list, with its flags) and what the report counts.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from continuity.cli import cli
from continuity.errors import ExportRefused

SNOMED = "http://snomed.info/sct"
IPS_ABSENT = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"


def run(*args: object, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def patient(family: str = "MARTIN", given: str = "Jeanne", born: str = "1950-01-31", **extra: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Patient",
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "female",
        "birthDate": born,
    }
    return resource | extra


def statement(medication: dict[str, Any], status: str = "active", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationStatement", "status": status, **medication, **extra}


def text(value: str) -> dict[str, Any]:
    return {"medicationCodeableConcept": {"text": value}}


class Document:
    """An IPS document Bundle: urn:uuid fullUrls, references by urn:uuid, a Composition first."""

    def __init__(self, patient_resource: dict[str, Any], *, patient_id: str | None = None) -> None:
        self.patient_url = f"urn:uuid:{uuid.uuid4()}"
        resource = dict(patient_resource)
        if patient_id is not None:
            resource["id"] = patient_id
        self.entries: list[dict[str, Any]] = [{"fullUrl": self.patient_url, "resource": resource}]

    def add(self, resource: dict[str, Any], *, subject: str | None = None, rid: str | None = None) -> str:
        url = f"urn:uuid:{uuid.uuid4()}"
        resource = dict(resource)
        field = "patient" if resource["resourceType"] == "AllergyIntolerance" else "subject"
        resource.setdefault(field, {"reference": subject or self.patient_url})
        if rid is not None:
            resource["id"] = rid
        self.entries.append({"fullUrl": url, "resource": resource})
        return url

    def write(self, path: Path) -> Path:
        composition = {
            "resourceType": "Composition",
            "status": "final",
            "type": {"coding": [{"system": "http://loinc.org", "code": "60591-5"}]},
            "subject": {"reference": self.patient_url},
            "title": "Patient Summary",
        }
        bundle = {
            "resourceType": "Bundle",
            "type": "document",
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": composition}, *self.entries],
        }
        path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
        return path


def ndjson(path: Path, *resources: dict[str, Any] | str) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in resources),
        encoding="utf-8",
    )
    return path


class Built:
    """`publisher build --report` of tiny exports (where one bad resource is far more than the 5 % a real
    export may lose: the share is tested on its own, and lifted elsewhere)."""

    def __init__(
        self, tmp: Path, *sources: Path, extra: tuple[object, ...] = ("--max-rejected", "100"), code: int = 0
    ) -> None:
        self.db = tmp / "snapshot.db"
        self.report_path = tmp / "report.json"
        self.result = run(
            "publisher", "build", *sources, "--out", self.db, "--report", self.report_path, *extra, code=code
        )
        self.report: dict[str, Any] = json.loads(self.report_path.read_text(encoding="utf-8"))
        assert self.report_path.stat().st_mode & 0o777 == 0o600  # it names resources: the publisher's eyes only

    def patients(self) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for letter in "abcdefghijklmnopqrstuvwxyz":
            for row in json.loads(run("search", "--db", self.db, "--json", "--limit", "100", letter).stdout):
                found[row["id"]] = row
        return list(found.values())

    def show(self, patient_id: str) -> dict[str, Any]:
        return json.loads(run("show", "--db", self.db, "--json", patient_id).stdout)  # type: ignore[no-any-return]

    def only_patient(self) -> dict[str, Any]:
        (row,) = self.patients()
        return self.show(row["id"])

    def type(self, name: str) -> dict[str, Any]:
        return self.report["types"][name]  # type: ignore[no-any-return]


def test_a_statement_of_unknown_status_stays_a_current_treatment_flagged(tmp_path: Path) -> None:
    doc = Document(patient())
    doc.add(statement(text("insuline glargine 100 UI/mL"), status="unknown"))
    doc.add(statement(text("clopidogrel 75 mg"), status="unknown"))
    doc.add(statement(text("amlodipine 5 mg")))
    built = Built(tmp_path, doc.write(tmp_path / "ips.json"))
    summary = built.only_patient()
    flags = {t["dci"]: t["flags"] for t in summary["treatments"]}
    assert flags == {
        "insuline glargine 100 UI/mL": ["status-unknown"],
        "clopidogrel 75 mg": ["status-unknown"],
        "amlodipine 5 mg": [],
    }
    counts = built.type("MedicationStatement")
    assert (counts["read"], counts["kept"], counts["kept_with_flag"]) == (3, 3, 2)
    assert counts["flags"] == {"status-unknown": 2}
    assert built.report["summary"]["flagged"] == {"treatment.status-unknown": 2}
    assert "flag status-unknown: 2" in built.result.stdout


def test_an_unresolved_medication_with_a_display_is_kept_flagged_without_one_it_is_counted(tmp_path: Path) -> None:
    doc = Document(patient())
    doc.add(statement({"medicationReference": {"reference": "Medication/gone", "display": "Kardegic 75 mg"}}))
    doc.add(statement({"medicationReference": {"reference": "#absent", "display": "Previscan 20 mg"}}))
    doc.add(statement({"medicationReference": {"reference": "Medication/gone-too"}}))
    built = Built(tmp_path, doc.write(tmp_path / "ips.json"))
    treatments = built.only_patient()["treatments"]
    assert sorted((t["dci"], t["flags"]) for t in treatments) == [
        ("Kardegic 75 mg", ["unresolved-medication"]),
        ("Previscan 20 mg", ["unresolved-medication"]),
    ]
    counts = built.type("MedicationStatement")
    assert counts["dropped"] == {"unresolved-reference": 1}
    (example,) = counts["examples"]["dropped:unresolved-reference"]
    assert example["location"] == "entry 4" and "Medication/gone-too" in example["message"]
    assert built.report["summary"]["flagged"] == {"treatment.unresolved-medication": 2}


def test_long_ids_are_accepted_and_a_too_long_one_is_reported_with_its_length(tmp_path: Path) -> None:
    long_id = "urn-oid-1.2.840.114350.1.13.0.1.7.2.698084-" + "e" * 66  # 109 characters, as a large US vendor
    too_long = "x" * 300
    folder = tmp_path / "bulk"
    folder.mkdir()
    ndjson(folder / "Patient.ndjson", patient(id=long_id), patient("DURAND", "Paul", "1961-02-03", id=too_long))
    ndjson(
        folder / "MedicationRequest.ndjson",
        {"resourceType": "MedicationRequest", "id": "mr-" + "a" * 100, "status": "active", "intent": "order",
         **text("ramipril 5 mg"), "subject": {"reference": f"Patient/{long_id}"}},
        {"resourceType": "MedicationRequest", "id": "mr-2", "status": "active", "intent": "order",
         **text("metformine 850 mg"), "subject": {"reference": f"Patient/{too_long}"}},
    )  # fmt: skip
    built = Built(tmp_path, folder)
    assert len(long_id) == 109
    summary = built.show(long_id)
    assert [t["dci"] for t in summary["treatments"]] == ["ramipril 5 mg"]
    problems = {p["location"] + " " + p["file"].rsplit("/", 1)[-1]: p for p in built.report["problems"]}
    assert "id of 300 characters: at most 255" in problems["line 2 Patient.ndjson"]["message"]
    dependant = problems["line 2 MedicationRequest.ndjson"]
    assert "was rejected" in dependant["message"] and "cannot be found" not in dependant["message"]
    assert dependant["reason"] == "unresolved-reference"


def test_code_only_concepts_are_kept_with_a_label_and_an_allergy_is_never_dropped(tmp_path: Path) -> None:
    doc = Document(patient())
    doc.add(statement({"medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": "418770003"}]}}))
    doc.add({"resourceType": "Condition", "code": {"coding": [{"system": SNOMED, "code": "44054006"}]}})
    doc.add({"resourceType": "AllergyIntolerance", "code": {"coding": [{"system": SNOMED, "code": "91936005"}]}})
    doc.add({"resourceType": "AllergyIntolerance", "criticality": "high"})  # nothing at all: still an allergy
    built = Built(tmp_path, doc.write(tmp_path / "ips.json"))
    summary = built.only_patient()
    assert [(t["dci"], t["flags"], t["codes"]) for t in summary["treatments"]] == [
        ("SNOMED CT 418770003", ["code-only"], [f"{SNOMED}|418770003"])
    ]
    assert [(c["text"], c["flags"]) for c in summary["conditions"]] == [("SNOMED CT 44054006", ["code-only"])]
    assert sorted((a["substance"], a["flags"]) for a in summary["allergies"]) == [
        ("SNOMED CT 91936005", ["code-only"]),
        ("substance non précisée", ["no-substance"]),
    ]
    assert summary["patient"]["allergy_status"] == "recorded"
    assert built.report["summary"]["flagged"] == {
        "treatment.code-only": 1,
        "condition.code-only": 1,
        "allergy.code-only": 1,
        "allergy.no-substance": 1,
    }


def test_absence_is_recognised_by_code_and_phrasing_and_kept_flagged_when_unsure(tmp_path: Path) -> None:
    doc = Document(patient())
    doc.add(statement(text("No known current medications")))
    doc.add(statement(text("Aucun traitement en cours")))
    absent = {"coding": [{"system": IPS_ABSENT, "code": "no-known-medications"}]}
    doc.add(statement({"medicationCodeableConcept": absent}))
    doc.add(statement(text("No regular medication apart from paracetamol when needed")))
    doc.add({"resourceType": "Condition", "code": {"text": "No known problems."}})
    doc.add({"resourceType": "Condition", "code": {"text": "Pas d'antécédent"}})
    doc.add({"resourceType": "Condition", "code": {"text": "Pas de diabète connu, HTA traitée"}})
    built = Built(tmp_path, doc.write(tmp_path / "ips.json"))
    summary = built.only_patient()
    assert [(t["dci"], t["flags"]) for t in summary["treatments"]] == [
        ("No regular medication apart from paracetamol when needed", ["possible-absence"])
    ]
    assert [(c["text"], c["flags"]) for c in summary["conditions"]] == [
        ("Pas de diabète connu, HTA traitée", ["possible-absence"])
    ]
    assert built.type("MedicationStatement")["dropped"] == {"negation": 3}
    assert built.type("Condition")["dropped"] == {"negation": 2}


def test_allergy_statuses_are_shown_distinctly_and_refuted_ones_are_counted(tmp_path: Path) -> None:
    def allergy(substance: str, clinical: str | None = None, verification: str | None = None) -> dict[str, Any]:
        resource: dict[str, Any] = {"resourceType": "AllergyIntolerance", "code": {"text": substance}}
        if clinical:
            resource["clinicalStatus"] = {"coding": [{"code": clinical}]}
        if verification:
            resource["verificationStatus"] = {"coding": [{"code": verification}]}
        return resource

    doc = Document(patient())
    doc.add(allergy("Pénicilline", "active", "confirmed"))
    doc.add(allergy("Latex", "resolved"))
    doc.add(allergy("Iode", "inactive"))
    doc.add(allergy("Aspirine", "active", "unconfirmed"))
    doc.add(allergy("Arachide", verification="refuted"))
    doc.add(allergy("Sulfamides", verification="entered-in-error"))
    built = Built(tmp_path, doc.write(tmp_path / "ips.json"))
    allergies = {a["substance"]: a for a in built.only_patient()["allergies"]}
    assert {name: a["flags"] for name, a in allergies.items()} == {
        "Pénicilline": [],
        "Latex": ["resolved"],
        "Iode": ["inactive"],
        "Aspirine": ["unconfirmed"],
    }
    assert allergies["Latex"]["clinical_status"] == "resolved"
    assert allergies["Aspirine"]["verification_status"] == "unconfirmed"
    assert built.type("AllergyIntolerance")["dropped"] == {"refuted": 2}


def test_two_people_under_one_id_in_two_documents_are_both_kept(tmp_path: Path) -> None:
    first = Document(patient("MARTIN", "Jeanne", "1950-01-31"), patient_id="1")
    first.add({"resourceType": "Condition", "code": {"text": "Diabète de type 2"}}, rid="c1")
    first.add(statement(text("metformine 850 mg")), rid="ms1")
    second = Document(patient("ROBERT", "Emma", "1988-07-14"), patient_id="1")
    second.add({"resourceType": "Condition", "code": {"text": "Asthme"}}, rid="c1")
    second.add(statement(text("salbutamol 100 µg")), rid="ms1")
    again = Document(patient("ROBERT", "Emma", "1988-07-14"), patient_id="1")  # the same person again
    again.add({"resourceType": "Condition", "code": {"text": "Asthme"}}, rid="c1")
    built = Built(tmp_path, first.write(tmp_path / "a.json"), second.write(tmp_path / "b.json"),
                  again.write(tmp_path / "c.json"))  # fmt: skip
    people = {row["birth_name"]: row["id"] for row in built.patients()}
    assert sorted(people) == ["MARTIN", "ROBERT"]
    martin, robert = built.show(people["MARTIN"]), built.show(people["ROBERT"])
    assert [c["text"] for c in martin["conditions"]] == ["Diabète de type 2"]
    assert [t["dci"] for t in martin["treatments"]] == ["metformine 850 mg"]
    assert [c["text"] for c in robert["conditions"]] == ["Asthme"]
    assert [t["dci"] for t in robert["treatments"]] == ["salbutamol 100 µg"]
    collisions = [w for w in built.report["warnings"] if w["reason"] == "collision"]
    assert any("a.json" in w["message"] and w["file"].endswith("b.json") for w in collisions)
    assert built.type("Patient")["dropped"] == {"duplicate": 1}  # c.json repeats b.json's person


def test_an_id_shared_by_two_people_in_a_bulk_export_is_never_attached_to_either(tmp_path: Path) -> None:
    folder = tmp_path / "bulk"
    folder.mkdir()
    ndjson(folder / "Patient.ndjson", patient(id="p1"), patient("ROBERT", "Emma", "1988-07-14", id="p1"))
    condition = {"resourceType": "Condition", "id": "c1", "code": {"text": "Asthme"}}
    ndjson(folder / "Condition.ndjson", condition | {"subject": {"reference": "Patient/p1"}})
    built = Built(tmp_path, folder)
    assert sorted(row["birth_name"] for row in built.patients()) == ["MARTIN", "ROBERT"]
    assert all(built.show(row["id"])["conditions"] == [] for row in built.patients())
    assert built.type("Condition")["dropped"] == {"collision": 1}
    (problem,) = built.report["problems"]
    assert "Patient/p1 is 2 different resources" in problem["message"] and "Patient.ndjson" in problem["message"]


def test_a_dangling_subject_in_a_single_patient_document_flags_the_patient_incomplete(tmp_path: Path) -> None:
    doc = Document(patient())
    doc.add(statement(text("amlodipine 5 mg")))
    doc.add(statement(text("bisoprolol 5 mg")), subject=f"urn:uuid:{uuid.uuid4()}")  # not in the document
    doc.add({"resourceType": "Condition", "code": {"text": "HTA"}}, subject="Patient/someone-else")
    built = Built(tmp_path, doc.write(tmp_path / "ips.json"))
    summary = built.only_patient()
    assert summary["patient"]["flags"] == ["incomplete"]
    assert [t["dci"] for t in summary["treatments"]] == ["amlodipine 5 mg"]
    assert built.type("MedicationStatement")["dropped"] == {"dangling-subject": 1}
    assert built.type("Condition")["dropped"] == {"dangling-subject": 1}
    assert built.report["incomplete_patients"] == 1
    assert built.report["summary"]["flagged"] == {"patient.incomplete": 1}
    assert "published flagged INCOMPLETE" in built.result.stdout


def test_a_bulk_export_log_is_not_imported(tmp_path: Path) -> None:
    folder = tmp_path / "bulk"
    folder.mkdir()
    ndjson(folder / "Patient.ndjson", patient(id="p1"))
    ndjson(folder / "log.ndjson", '{"time": "2026-11-28T02:00:00Z", "level": "info", "msg": "export started"}',
           "not even JSON")  # fmt: skip
    ndjson(folder / "OperationOutcome.ndjson",
           {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]})  # fmt: skip
    built = Built(tmp_path, folder)
    assert [row["id"] for row in built.patients()] == ["p1"]
    skipped = sorted(Path(name).name for name in built.report["skipped_files"])
    assert skipped == ["OperationOutcome.ndjson", "log.ndjson"]
    assert built.report["problems"] == []


def test_an_export_that_keeps_no_patient_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    truncated = tmp_path / "Patient.ndjson"
    truncated.write_text('{"resourceType": "Patient", "id": "p1", "name": [{"fam', encoding="utf-8")
    built = Built(tmp_path, truncated, extra=("--allow-rejected",), code=ExportRefused.exit_code)
    assert not built.db.exists()
    assert "aucun patient" in built.result.output
    assert built.report["summary"]["dropped"] == {"invalid": 1}


def test_too_many_rejected_resources_refuse_the_build_unless_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "bulk"
    folder.mkdir()
    ndjson(folder / "Patient.ndjson", *(patient(id=f"p{n}") for n in range(18)), *(["{broken"] * 2))
    refused = Built(tmp_path, folder, extra=(), code=ExportRefused.exit_code)  # 2 of 20 = 10 % > 5 %
    assert not refused.db.exists() and refused.report["rejected_share"] == pytest.approx(0.1)
    assert "10.0 %" in refused.result.output
    Built(tmp_path, folder, extra=("--max-rejected", "12"))
    allowed = Built(tmp_path, folder, extra=("--allow-rejected",))
    assert len(allowed.patients()) == 18


def test_control_and_bidi_characters_never_reach_the_desk(tmp_path: Path) -> None:
    doc = Document(patient("EVIL\x1b[2J\x1b[31m", "Jean\u202enép"))
    doc.add(statement(text("amlo\u200bdipine\x00 5 mg")))
    built = Built(tmp_path, doc.write(tmp_path / "ips.json"))
    summary = built.only_patient()
    assert summary["patient"]["birth_name"] == "EVIL[2J[31m"
    assert summary["patient"]["birth_given_names"] == ["Jeannép"]
    assert [t["dci"] for t in summary["treatments"]] == ["amlodipine 5 mg"]
    assert built.report["stripped_texts"]["count"] == 2
    assert built.report["summary"]["stripped"] == 2
    for value in json.dumps(summary, ensure_ascii=False):
        assert value.isprintable() or value in "\n"

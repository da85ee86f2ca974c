"""French profiles (fr-core) read by continuity.fhir: identity traits, INS, ALD, substitution, renewals."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from continuity import flags
from continuity.errors import InputError
from continuity.fhir import ImportReport, read_records
from continuity.ins import with_check_key
from continuity.model import (
    INS_OID_NIR,
    INS_OID_TEST,
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

FR_BUNDLE = Path(__file__).parent.parent / "data" / "fhir-fr" / "bundle-fr-core-transaction.json"
FR = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
CISIS = "https://smt.esante.gouv.fr/fhir/CodeSystem/terminologie-cisis"
GOOD_NIR = with_check_key("2690275056123")


def read(*paths: Path, strict: bool = False) -> tuple[list[Record], ImportReport]:
    report = ImportReport()
    return list(read_records(list(paths), strict=strict, report=report)), report


def only(records: list[Record], kind: type) -> list[Any]:
    return [record for record in records if isinstance(record, kind)]


def ndjson(directory: Path, name: str, *resources: dict[str, Any]) -> Path:
    path = directory / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in resources), encoding="utf-8")
    return path


def status(code: str) -> dict[str, Any]:
    return {
        "url": FR + "fr-core-identity-reliability",
        "extension": [{"url": "identityStatus", "valueCoding": {"code": code}}],
    }


def patient(
    pid: str, *, code: str = "QUAL", ins: str = GOOD_NIR, oid: str = INS_OID_NIR, **extra: Any
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "extension": [status(code)],
        "identifier": [{"system": f"urn:oid:{oid}", "value": ins}] if ins else [],
        "name": [{"use": "official", "family": "DURAND", "given": ["Pierre"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
    }
    resource.update(extra)
    return resource


def request(rid: str, pid: str, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "lévothyroxine sodique 75 µg, comprimé"},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": "2026-10-01",
    }
    resource.update(extra)
    return resource


# --- the authored fr-core transaction Bundle ------------------------------------------------------


@pytest.fixture(scope="module")
def fr_records() -> tuple[list[Record], ImportReport]:
    return read(FR_BUNDLE, strict=True)


def test_birth_name_used_name_given_names_birth_place(fr_records: tuple[list[Record], ImportReport]) -> None:
    records, _ = fr_records
    marie = next(p for p in only(records, Patient) if p.id == "pat-fr-1")
    assert marie.birth_name == "LEFÈVRE-ÇELIK"
    assert marie.birth_given_names == ("Marie", "Thérèse", "Anne")  # birth-list-given-name, not given[]
    assert (marie.used_name, marie.used_given_name) == ("N'DIAYE", "Marie-Thé")
    assert marie.birth_place_insee == "75056"
    assert (marie.sex, marie.birth_date) == (Sex.FEMALE, dt.date(1969, 2, 14))
    assert marie.phones == ("03 80 11 22 33", "06 12 34 56 78")  # by rank; e-mail is not a phone
    assert marie.address.lines == ("12 rue de la Liberté",)  # the "old" address is skipped
    assert marie.general_practitioner_id == "pra-fr"


def test_ins_kept_for_qual_and_dropped_for_vali(fr_records: tuple[list[Record], ImportReport]) -> None:
    records, report = fr_records
    patients = {p.id: p for p in only(records, Patient)}
    assert patients["pat-fr-1"].identity_status is IdentityStatus.QUAL
    assert (patients["pat-fr-1"].ins, patients["pat-fr-1"].ins_oid) == ("269027505612395", INS_OID_NIR)
    assert patients["pat-fr-2"].identity_status is IdentityStatus.VALI
    assert patients["pat-fr-2"].ins == ""
    assert report.ins_dropped == 1


def test_no_known_allergy_status(fr_records: tuple[list[Record], ImportReport]) -> None:
    records, _ = fr_records
    patients = {p.id: p for p in only(records, Patient)}
    assert patients["pat-fr-2"].allergy_status is AllergyStatus.NONE_KNOWN
    assert patients["pat-fr-1"].allergy_status is AllergyStatus.NO_INFORMATION


def test_ald_link_by_med574_observation(fr_records: tuple[list[Record], ImportReport]) -> None:
    records, _ = fr_records
    (condition,) = only(records, Condition)
    assert condition.is_ald  # focus of a MED-574 Observation with valueBoolean true
    treatments = {t.id: t for t in only(records, Treatment)}
    assert treatments["mr-fr-metformine"].ald_related
    assert not treatments["mr-fr-levothyrox"].ald_related  # MED-574 valueBoolean false


def test_mte_renewals_contained_medication(fr_records: tuple[list[Record], ImportReport]) -> None:
    records, _ = fr_records
    levothyrox = next(t for t in only(records, Treatment) if t.id == "mr-fr-levothyrox")
    assert levothyrox.non_substitution is NonSubstitutionReason.MTE
    assert levothyrox.renewals_left == 5
    assert (levothyrox.dci, levothyrox.strength, levothyrox.form) == (
        "lévothyroxine sodique",
        "75 µg",
        "comprimé sécable",
    )
    assert levothyrox.brand == "LEVOTHYROX 75 microgrammes, comprimé sécable"
    assert (levothyrox.last_prescriber_id, levothyrox.last_prescribed_on) == ("pra-fr", dt.date(2026, 9, 15))


def test_urn_uuid_medication_reference_and_chronic(fr_records: tuple[list[Record], ImportReport]) -> None:
    records, _ = fr_records
    metformine = next(t for t in only(records, Treatment) if t.id == "mr-fr-metformine")
    assert (metformine.dci, metformine.strength) == ("metformine", "700 mg")
    assert metformine.brand == "STAGID 700 mg, comprimé sécable"
    assert metformine.chronic
    assert metformine.renewals_left == 3
    assert metformine.start_date == dt.date(2012, 6, 1)  # timing.repeat.boundsPeriod.start
    assert metformine.posology == "1 comprimé matin et soir"


def test_refused_substitution_without_reason_stays_substitutable(
    fr_records: tuple[list[Record], ImportReport],
) -> None:
    records, report = fr_records
    paracetamol = next(t for t in only(records, Treatment) if t.id == "mr-fr-paracetamol")
    assert paracetamol.non_substitution is None
    assert paracetamol.patient_id == "pat-fr-2"  # subject by urn:uuid
    assert paracetamol.posology == "1 comprimé, 3 fois par jour, si besoin"  # built from the structure
    (warning,) = report.warnings
    assert warning.resource == "MedicationRequest/mr-fr-paracetamol"
    assert "MTE / EFG / CIF" in warning.message


def test_practitioner_practice_weight_appointment(fr_records: tuple[list[Record], ImportReport]) -> None:
    records, _ = fr_records
    (practitioner,) = only(records, Practitioner)
    assert practitioner.rpps == "10101234567"  # IdNat_PS "8" + RPPS
    assert (practitioner.qualite, practitioner.specialty) == ("Médecin", "Médecine générale")
    assert practitioner.email == "h.leblanc@capucins.example"
    (practice,) = only(records, Practice)
    assert practice.name == "Maison de santé des Capucins"
    (weight,) = only(records, Measurement)
    assert (weight.kind, weight.value, weight.unit, weight.measured_on) == ("weight", 68.5, "kg", dt.date(2026, 10, 2))
    (appointment,) = only(records, Appointment)
    assert (appointment.patient_id, appointment.practitioner_id) == ("pat-fr-1", "pra-fr")
    assert appointment.start == dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))


# --- identity edge cases ---------------------------------------------------------------------------


def test_bad_nir_key_strict(tmp_path: Path) -> None:
    bad = GOOD_NIR[:13] + f"{(int(GOOD_NIR[13:]) + 1) % 100:02d}"
    source = ndjson(tmp_path, "Patient.ndjson", patient("p-ok"), patient("p-bad", ins=bad))
    with pytest.raises(InputError) as error:
        read(source, strict=True)
    message = str(error.value)
    assert str(source) in message and "line 2" in message and "Patient/p-bad" in message
    assert "check key" in message
    assert "ligne 2" in error.value.message_fr


def test_bad_nir_key_lenient_skips_the_patient_and_what_depends_on_it(tmp_path: Path) -> None:
    bad = GOOD_NIR[:13] + f"{(int(GOOD_NIR[13:]) + 1) % 100:02d}"
    patients = ndjson(tmp_path, "Patient.ndjson", patient("p-ok"), patient("p-bad", ins=bad))
    requests = ndjson(tmp_path, "MedicationRequest.ndjson", request("mr-ok", "p-ok"), request("mr-bad", "p-bad"))
    records, report = read(requests, patients)
    assert [p.id for p in only(records, Patient)] == ["p-ok"]
    assert [t.id for t in only(records, Treatment)] == ["mr-ok"]
    assert [(p.location, p.resource) for p in report.problems] == [
        ("line 2", "Patient/p-bad"),
        ("line 2", "MedicationRequest/mr-bad"),
    ]
    assert "rejected" in report.problems[1].message


def test_bad_nir_key_on_a_non_qual_identity_is_dropped_not_an_error(tmp_path: Path) -> None:
    source = ndjson(tmp_path, "Patient.ndjson", patient("p-vali", code="VALI", ins=GOOD_NIR[:13] + "00"))
    records, report = read(source, strict=True)
    (vali,) = only(records, Patient)
    assert vali.ins == "" and report.ins_dropped == 1


def test_corsican_nir_and_test_oid(tmp_path: Path) -> None:
    corsica = with_check_key("184012A004012")
    source = ndjson(tmp_path, "Patient.ndjson", patient("p-2a", ins=corsica, oid=INS_OID_TEST))
    records, _ = read(source, strict=True)
    (corse,) = only(records, Patient)
    assert (corse.ins, corse.ins_oid) == (corsica, INS_OID_TEST)


@pytest.mark.parametrize(
    ("code", "expected", "doubt"),
    [("RECUP", "RECUP", False), ("PROV", "PROV", False), ("VIDE", "PROV", False), ("", "PROV", False),
     ("DOUT", "PROV", True), ("DOUB", "PROV", True), ("DESA", "PROV", True), ("FICT", "PROV", True)],
)  # fmt: skip
def test_identity_status_codes(tmp_path: Path, code: str, expected: str, doubt: bool) -> None:
    """A reliability code that is not a status the appliance knows is kept as provisional, and flagged:
    a duplicate, deactivated, doubtful or fictitious identity is never silently an ordinary one."""
    source = ndjson(tmp_path, "Patient.ndjson", patient("p", code=code, ins=""))
    records, _ = read(source, strict=True)
    (read_patient,) = only(records, Patient)
    assert read_patient.identity_status is IdentityStatus(expected)
    assert (flags.IDENTITY_DOUBT in read_patient.flags) is doubt


def test_birth_list_given_name_on_the_patient_and_maiden_name(tmp_path: Path) -> None:
    resource = patient("p", ins="")
    resource["extension"].append({"url": FR + "fr-core-patient-birth-list-given-name", "valueString": "Anne  Marie"})
    resource["name"] = [
        {"use": "usual", "family": "BENALI", "given": ["Anne"]},
        {"use": "maiden", "family": "ROUSSEAU", "given": ["Anne"]},
    ]
    records, _ = read(ndjson(tmp_path, "Patient.ndjson", resource), strict=True)
    (anne,) = only(records, Patient)
    assert (anne.birth_name, anne.birth_given_names, anne.used_name) == ("ROUSSEAU", ("Anne", "Marie"), "BENALI")


def test_partial_birth_date_is_unknown_with_a_warning(tmp_path: Path) -> None:
    records, report = read(ndjson(tmp_path, "Patient.ndjson", patient("p", ins="", birthDate="1951")), strict=True)
    assert only(records, Patient)[0].birth_date is None
    assert [w.message for w in report.warnings] == ["partial birth date (no day): kept as unknown"]


# --- ALD and prescriptions ----------------------------------------------------------------------


def test_ald_by_condition_category_and_explicit_false_wins(tmp_path: Path) -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c-ald",
        "category": [{"coding": [{"code": "ALD"}]}],
        "code": {"text": "Insuffisance cardiaque"},
        "subject": {"reference": "Patient/p"},
    }
    no = {
        "resourceType": "Observation",
        "id": "o-no",
        "status": "final",
        "code": {"coding": [{"system": CISIS, "code": "MED-574"}]},
        "valueBoolean": False,
    }
    linked = request("mr-linked", "p", reasonReference=[{"reference": "Condition/c-ald"}])
    overruled = request(
        "mr-overruled", "p", reasonReference=[{"reference": "Condition/c-ald"}, {"reference": "Observation/o-no"}]
    )
    contained = request(
        "mr-contained",
        "p",
        contained=[
            {
                "resourceType": "Observation",
                "id": "ald",
                "status": "final",
                "code": {"coding": [{"system": CISIS, "code": "MED-574"}]},
                "valueBoolean": True,
            }
        ],
        reasonReference=[{"reference": "#ald"}],
    )
    unlinked = request("mr-unlinked", "p")
    records, _ = read(
        ndjson(tmp_path, "Condition.ndjson", condition),
        ndjson(tmp_path, "Observation.ndjson", no),
        ndjson(tmp_path, "MedicationRequest.ndjson", linked, overruled, contained, unlinked),
        ndjson(tmp_path, "Patient.ndjson", patient("p", ins="")),
        strict=True,
    )
    assert only(records, Condition)[0].is_ald
    ald = {t.id: t.ald_related for t in only(records, Treatment)}
    assert ald == {"mr-linked": True, "mr-overruled": False, "mr-contained": True, "mr-unlinked": False}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ({"coding": [{"code": "EFG"}]}, NonSubstitutionReason.EFG),
        ({"text": "NS - CIF"}, NonSubstitutionReason.CIF),
        ({"coding": [{"code": "mte"}]}, NonSubstitutionReason.MTE),
    ],
)
def test_substitution_reasons(tmp_path: Path, reason: dict[str, Any], expected: NonSubstitutionReason) -> None:
    mr = request("mr", "p", substitution={"allowedBoolean": False, "reason": reason})
    records, _ = read(
        ndjson(tmp_path, "all.ndjson", patient("p", ins=""), mr),
        strict=True,
    )
    assert only(records, Treatment)[0].non_substitution is expected


def test_completed_request_is_a_recent_prescription(tmp_path: Path) -> None:
    done = request(
        "mr-done",
        "p",
        status="completed",
        requester={"reference": "Practitioner/dr"},
        dosageInstruction=[{"text": "1 sachet 3 fois par jour pendant 5 jours"}],
        medicationCodeableConcept={
            "coding": [{"system": "http://www.whocc.no/atc", "code": "N02BE01", "display": "paracetamol"}]
        },
    )
    doctor = {"resourceType": "Practitioner", "id": "dr", "name": [{"family": "LEBLANC", "given": ["Hélène"]}]}
    records, _ = read(ndjson(tmp_path, "all.ndjson", doctor, patient("p", ins=""), done), strict=True)
    assert only(records, Treatment) == []
    (recent,) = only(records, RecentPrescription)
    assert (recent.authored_on, recent.prescriber_id) == (dt.date(2026, 10, 1), "dr")
    assert recent.text == "paracetamol — 1 sachet 3 fois par jour pendant 5 jours"


@pytest.mark.parametrize("repeats", ["3", -1, 2.5, True])
def test_bad_renewal_counts_are_problems(tmp_path: Path, repeats: Any) -> None:
    mr = request("mr", "p", dispenseRequest={"numberOfRepeatsAllowed": repeats})
    records, report = read(ndjson(tmp_path, "all.ndjson", patient("p", ins=""), mr))
    assert only(records, Treatment) == []
    (problem,) = report.problems
    assert problem.resource == "MedicationRequest/mr" and "numberOfRepeatsAllowed" in problem.message

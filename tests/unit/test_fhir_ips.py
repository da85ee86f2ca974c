"""The six real IPS Bundles (HL7, Australia, EU connectathon) read by continuity.fhir."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from continuity.fhir import ImportReport, read_records
from continuity.model import (
    Allergy,
    AllergyStatus,
    Condition,
    Measurement,
    Patient,
    Practice,
    Practitioner,
    Record,
    Sex,
    Treatment,
)

IPS = Path(__file__).parent.parent / "data" / "fhir-ips"

# Blob SHA-1s from tests/data/fhir-ips/SOURCES.md: the copies must stay byte-for-byte.
BLOBS = {
    "bundle-minimal.json": "67173fb322e25daef02cba9c75f820c9340fb709",
    "bundle-no-info-required-sections.json": "c467f44e9a432c79c02f1709c9d01f0a9acd687e",
    "Bundle-IPS-examples-Bundle-minimal.json": "5b70738191f137836dfd309f700f9eb91785a59e",
    "IPS_IG-bundle-01.json": "a3a739ebc13e67c179a323c4672c64dedc02c01b",
    "Bundle-aups-basicsummary.json": "3a140907bb02406d3e71108ee6f37b383563283f",
    "EU_Giorgio_Cangioli_03.json": "46843f612b030d65b1aa894ec44cb0921ffcc6db",
}
MARTHA_FIRST_ID = "7685713c-e29e-4a75-8a90-45be7ba3be94"  # the id in the file read first (sorted names)


def read(*names: str) -> tuple[list[Record], ImportReport]:
    report = ImportReport()
    records = list(read_records([IPS / name for name in names], strict=True, report=report))
    return records, report


def only(records: list[Record], kind: type) -> list:  # type: ignore[type-arg]
    return [record for record in records if isinstance(record, kind)]


@pytest.mark.parametrize(("name", "blob"), sorted(BLOBS.items()))
def test_fixture_is_the_documented_blob(name: str, blob: str) -> None:
    data = (IPS / name).read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob


@pytest.mark.parametrize("name", sorted(BLOBS))
def test_each_bundle_imports_strictly_without_problem(name: str) -> None:
    records, report = read(name)
    assert report.problems == []
    assert len(only(records, Patient)) == 1
    assert sum(report.counts.values()) == len(records)


def test_bundle_minimal_urn_uuid_references() -> None:
    records, _ = read("bundle-minimal.json")
    (patient,) = only(records, Patient)
    assert (patient.birth_name, patient.birth_given_names) == ("DeLarosa", ("Martha",))
    assert (patient.sex, patient.birth_date) == (Sex.FEMALE, dt.date(1972, 5, 1))
    assert patient.phones == ("+31788700800",)
    assert patient.address.city == "Dordrecht"
    assert patient.allergy_status is AllergyStatus.RECORDED
    (allergy,) = only(records, Allergy)
    assert "penicillin" in allergy.substance
    assert (allergy.code, allergy.criticality, allergy.category) == ("373270004", "high", "medication")
    assert allergy.patient_id == patient.id
    (condition,) = only(records, Condition)
    assert condition.text == "Menopausal flushing (finding)"
    assert condition.onset_date is None  # "2015": partial dates are kept as unknown
    (treatment,) = only(records, Treatment)  # MedicationStatement → Medication entry by urn:uuid
    assert (treatment.dci, treatment.route, treatment.posology) == ("anastrozole", "Oral use", "1 tablet")
    assert treatment.start_date is None  # "2015-03"
    assert treatment.brand == ""  # the SNOMED product display is not a brand
    (practitioner,) = only(records, Practitioner)
    assert (practitioner.family_name, practitioner.qualite) == ("van Hulp", "Doctor of Medicine")
    (practice,) = only(records, Practice)
    assert practice.name.startswith("Anorg Aniza Tion BV")


def test_relative_references_in_a_urn_uuid_bundle_read_the_same() -> None:
    """Bundle-IPS-examples-Bundle-minimal: urn:uuid fullUrls, every reference "Type/id"."""
    relative, _ = read("Bundle-IPS-examples-Bundle-minimal.json")
    absolute, _ = read("bundle-minimal.json")
    assert relative == absolute


def test_ips_bundle_01_negation_is_not_an_allergy() -> None:
    records, _ = read("IPS_IG-bundle-01.json")
    (patient,) = only(records, Patient)
    allergies = only(records, Allergy)
    assert [a.substance for a in allergies] == [
        "Substance with penicillin structure and antibacterial mechanism of action (substance)"
    ]
    assert not any("food" in a.substance.lower() for a in allergies)  # 429625007 No known food allergy
    assert patient.allergy_status is AllergyStatus.RECORDED
    conditions = {c.text: c.clinical_status for c in only(records, Condition)}
    assert conditions == {"Menopausal flushing (finding)": "active", "Malignant tumor of breast": "remission"}
    treatments = {t.dci: t for t in only(records, Treatment)}
    assert set(treatments) == {"anastrozole", "Cimicifugae rhizoma"}  # the ATC name is the substance
    assert treatments["Cimicifugae rhizoma"].brand == "Black Cohosh Extract herbal supplement"
    assert only(records, Measurement) == []  # laboratory results are not weight or height
    # "Laboratoire de charme" is typed "other": not a practice.
    assert [p.name for p in only(records, Practice)] == ["Anorg Aniza Tion BV / The best custodian ever"]


def test_au_basic_summary_contained_medication_and_no_current_problems() -> None:
    records, _ = read("Bundle-aups-basicsummary.json")
    (patient,) = only(records, Patient)
    # Only a "usual" name: it is taken as the birth name, not repeated as the used name.
    assert (patient.birth_name, patient.birth_given_names, patient.used_name) == ("Banks", ("Mia", "Leanne"), "")
    assert only(records, Condition) == []  # 160245001 "No current problems or disability" is a negation
    allergies = {a.substance: a for a in only(records, Allergy)}
    assert set(allergies) == {"Intolerance to lactose", "Gluten intolerance", "Chlorhexidine"}
    assert allergies["Gluten intolerance"].code == "1269424006"  # coding without display, code.text only
    assert allergies["Intolerance to lactose"].reaction == "Abdominal pain, Abdominal bloating, Diarrhoea"
    assert allergies["Chlorhexidine"].reaction == "Hives"
    assert patient.allergy_status is AllergyStatus.RECORDED
    (treatment,) = only(records, Treatment)  # medicationReference "#bisoprolol"
    assert (treatment.dci, treatment.strength, treatment.form) == ("Bisoprolol fumarate", "2,5 mg", "Tablet")
    assert treatment.posology == "1/2 tablet in the morning"
    assert treatment.start_date == dt.date(2025, 1, 5)
    (practitioner,) = only(records, Practitioner)  # phone and qualité come from the PractitionerRole
    assert (practitioner.given_names, practitioner.family_name) == (("Bob",), "Bobrester")
    assert (practitioner.qualite, practitioner.phone) == ("General Practitioner", "0491579760")


def test_eu_bundle_twelve_medications_by_reference() -> None:
    records, _ = read("EU_Giorgio_Cangioli_03.json")
    (patient,) = only(records, Patient)
    assert (patient.birth_name, patient.birth_given_names, patient.birth_date) == (
        "Mark",
        ("John",),
        dt.date(1934, 6, 22),
    )
    treatments = only(records, Treatment)
    assert [t.dci for t in treatments] == [
        "Gliclazide",
        "Acetylsalicylic acid",
        "Metformin",
        "Finasteride",
        "tamsulosin",
        "latanoprost",
        "Timolol",
        "Atorvastatin",
        "Atenolol",
        "Bendroflumethiazide",
        "Lisinopril",
        "levothyroxine sodium",
    ]
    assert treatments[2].posology == "500 mg twice a day"
    assert treatments[0].start_date == dt.date(2015, 5, 1)
    assert all(t.patient_id == patient.id for t in treatments)
    assert len(only(records, Condition)) == 7
    (allergy,) = only(records, Allergy)
    assert (allergy.substance, allergy.code) == ("Penicillins with extended spectrum", "J01CA")


def test_no_info_required_sections() -> None:
    records, report = read("bundle-no-info-required-sections.json")
    (patient,) = only(records, Patient)
    assert (patient.id, patient.birth_name, patient.birth_given_names) == ("AAA1234", "Judge", ("James",))
    assert patient.allergy_status is AllergyStatus.NO_INFORMATION  # the section has only emptyReason
    assert only(records, Treatment) == only(records, Allergy) == only(records, Condition) == []
    assert report.ignored_types == {"Immunization": 2}
    (practitioner,) = only(records, Practitioner)
    assert practitioner.given_names == ("Richard",)  # "given": ["Dr", "Richard", "Kildare"]


def test_the_same_patient_in_three_bundles_is_kept_once() -> None:
    """bundle-minimal and Bundle-IPS-examples-Bundle-minimal share every id; IPS_IG-bundle-01 has other
    ids for Martha DeLarosa but the same identifier (urn:oid:2.16.840.1.113883.2.4.6.3|574687583) and
    birth date, so it is the same person."""
    records, report = read("bundle-minimal.json", "Bundle-IPS-examples-Bundle-minimal.json", "IPS_IG-bundle-01.json")
    (martha,) = only(records, Patient)
    assert martha.id == MARTHA_FIRST_ID
    assert martha.allergy_status is AllergyStatus.RECORDED
    everything_about_her = only(records, Allergy) + only(records, Condition) + only(records, Treatment)
    assert {r.patient_id for r in everything_about_her} == {MARTHA_FIRST_ID}
    # Same-id resources are kept once. IPS_IG-bundle-01 restates her anastrozole, flushing and penicillin
    # allergy under other ids: identical apart from the id, they are shown once; what it adds is kept.
    assert sorted((t.id, t.dci) for t in only(records, Treatment)) == [
        ("47524493-846a-4a26-bae2-4ab03e60f02e", "Cimicifugae rhizoma"),
        ("6e883e5e-7648-485a-86de-3640a61601fe", "anastrozole"),
    ]
    assert sorted(c.text for c in only(records, Condition)) == [
        "Malignant tumor of breast",
        "Menopausal flushing (finding)",
    ]
    assert len(only(records, Allergy)) == 1
    (practitioner,) = only(records, Practitioner)  # same CIBG identifier in all three
    assert practitioner.family_name == "van Hulp"
    assert len(only(records, Practice)) == 1
    # Same key or identifier: Patient ×2, Practitioner ×2, Organization ×2, Condition, MedicationStatement,
    # AllergyIntolerance; same content under another id: Condition, MedicationStatement, AllergyIntolerance.
    assert report.duplicates == 12


def test_the_six_bundles_read_together() -> None:
    report = ImportReport()
    records = list(read_records([IPS], strict=True, report=report))
    assert sorted(p.birth_name for p in only(records, Patient)) == ["Banks", "DeLarosa", "Judge", "Mark"]
    assert report.counts["Patient"] == 4
    assert report.problems == []
    # Records come in dependency order: practices and practitioners, then patients, then the rest.
    kinds = [type(r) for r in records]
    last_patient = max(i for i, k in enumerate(kinds) if k is Patient)
    first_patient = kinds.index(Patient)
    assert all(k in (Practice, Practitioner) for k in kinds[:first_patient])
    assert all(k not in (Practice, Practitioner, Patient) for k in kinds[last_patient + 1 :])

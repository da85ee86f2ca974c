"""The synthetic practice: determinism, the showcase traps, identity rules, references, FHIR validity."""

from __future__ import annotations

import collections
import datetime as dt
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.ins import is_valid_nir
from continuity.model import INS_OID_TEST
from continuity.synth import RESOURCE_TYPES, SHOWCASE_SIZE, SynthSummary, write_practice

TODAY = dt.date(2026, 11, 28)  # a Saturday: the 14 days hold two Sundays
PATIENTS = 2000

ALD_SYSTEM = "https://smt.esante.gouv.fr/fhir/CodeSystem/terminologie-cisis"
BIRTH_LIST = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name"
IDENTITY = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
INS_SYSTEM = f"urn:oid:{INS_OID_TEST}"

Resource = dict[str, Any]


class Export:
    """An export read back with plain json, indexed the way the tests need it."""

    def __init__(self, summary: SynthSummary) -> None:
        self.summary = summary
        self.by_type: dict[str, list[Resource]] = {}
        for kind in RESOURCE_TYPES:
            with (summary.out_dir / f"{kind}.ndjson").open(encoding="utf-8") as handle:
                self.by_type[kind] = [json.loads(line) for line in handle]
        self.by_key = {f"{r['resourceType']}/{r['id']}": r for rs in self.by_type.values() for r in rs}
        self.by_patient: dict[str, list[Resource]] = collections.defaultdict(list)
        for kind in ("AllergyIntolerance", "Condition", "Observation", "MedicationRequest"):
            for resource in self.by_type[kind]:
                subject = resource.get("subject") or resource["patient"]
                self.by_patient[subject["reference"].removeprefix("Patient/")].append(resource)

    def patient(self, role: str) -> Resource:
        return self.by_key[f"Patient/{self.summary.showcase[role]}"]

    def of(self, role: str, kind: str) -> list[Resource]:
        return [r for r in self.by_patient[self.summary.showcase[role]] if r["resourceType"] == kind]

    def medication_text(self, request: Resource) -> str:
        if "medicationReference" in request:
            if request["medicationReference"]["reference"] not in self.by_key:  # the showcased retired product
                return str(request["medicationReference"]["display"])
            medication = self.by_key[request["medicationReference"]["reference"]]
            return " + ".join(i["itemCodeableConcept"]["text"] for i in medication["ingredient"])
        return str(request["medicationCodeableConcept"]["text"])

    def requests_of(self, role: str) -> dict[str, Resource]:
        return {self.medication_text(r): r for r in self.of(role, "MedicationRequest")}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    summary = write_practice(tmp_path_factory.mktemp("practice"), patients=PATIENTS, seed=7, today=TODAY)
    return Export(summary)


def official(patient: Resource) -> Resource:
    """The birth name; PROV identities typed at the desk may carry a name without `use` (taken as birth name)."""
    return next((name for name in patient["name"] if name.get("use") == "official"), patient["name"][0])


def usual(patient: Resource) -> Resource | None:
    return next((name for name in patient["name"] if name.get("use") == "usual"), None)


def status_of(patient: Resource) -> str:
    extension = next(e for e in patient["extension"] if e["url"] == IDENTITY)
    return str(extension["extension"][0]["valueCoding"]["code"])


def ins_of(patient: Resource) -> str | None:
    return next((i["value"] for i in patient.get("identifier", []) if i["system"] == INS_SYSTEM), None)


def birth_insee(patient: Resource) -> str | None:
    for extension in patient["extension"]:
        if extension["url"] == BIRTH_PLACE:
            return str(extension["valueAddress"]["extension"][0]["valueCoding"]["code"])
    return None


def age(patient: Resource) -> int:
    born = dt.date.fromisoformat(patient["birthDate"])
    return TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day))


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def is_ald_marker(resource: Resource) -> bool:
    return resource["resourceType"] == "Observation" and any(
        c["system"] == ALD_SYSTEM and c["code"] == "MED-574" for c in resource["code"]["coding"]
    )


# --- determinism, files, ids -------------------------------------------------------------------------


def read_all(directory: Path) -> dict[str, bytes]:
    return {kind: (directory / f"{kind}.ndjson").read_bytes() for kind in RESOURCE_TYPES}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = write_practice(tmp_path / "a", patients=400, seed=3, today=TODAY)
    again = write_practice(tmp_path / "b", patients=400, seed=3, today=TODAY)
    other = write_practice(tmp_path / "c", patients=400, seed=4, today=TODAY)
    assert read_all(first.out_dir) == read_all(again.out_dir)
    assert first == again.__class__(first.out_dir, again.counts, again.showcase, again.demo_practitioner_rpps)
    differing = [kind for kind, data in read_all(other.out_dir).items() if data != read_all(first.out_dir)[kind]]
    assert {"Patient", "MedicationRequest", "Appointment"} <= set(differing)
    # The showcase cast is the same whatever the seed.
    assert other.showcase == first.showcase
    first_patients = (first.out_dir / "Patient.ndjson").read_text(encoding="utf-8").splitlines()
    other_patients = (other.out_dir / "Patient.ndjson").read_text(encoding="utf-8").splitlines()
    assert first_patients[:SHOWCASE_SIZE] == other_patients[:SHOWCASE_SIZE]


def test_bytes_do_not_depend_on_the_process_hash_seed(tmp_path: Path) -> None:
    # Iterating a set of strings changes order from one process to the next: none may leak into the output.
    script = (
        "import datetime, pathlib, sys; from continuity.synth import write_practice; "
        "write_practice(pathlib.Path(sys.argv[1]), patients=300, seed=2, today=datetime.date(2026, 11, 28))"
    )
    for hash_seed in ("1", "2"):
        package_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": python_path}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / hash_seed)], check=True, env=environment)
    assert read_all(tmp_path / "1") == read_all(tmp_path / "2")


def test_a_patient_does_not_depend_on_the_size_of_the_practice(tmp_path: Path, export: Export) -> None:
    small = write_practice(tmp_path, patients=300, seed=7, today=TODAY)
    small_lines = (small.out_dir / "Patient.ndjson").read_text(encoding="utf-8").splitlines()
    big_lines = (export.summary.out_dir / "Patient.ndjson").read_text(encoding="utf-8").splitlines()
    assert small_lines == big_lines[:300]


def test_counts_match_the_files_and_ids_are_stable(export: Export) -> None:
    for kind in RESOURCE_TYPES:
        assert export.summary.counts[kind] == len(export.by_type[kind]), kind
        ids = [r["id"] for r in export.by_type[kind]]
        assert len(ids) == len(set(ids)), f"duplicate ids in {kind}"
    assert [p["id"] for p in export.by_type["Patient"]] == [f"pat-{n:06d}" for n in range(1, PATIENTS + 1)]
    assert len(export.by_type["Organization"]) == 1
    assert 3 <= len(export.by_type["Practitioner"]) <= 4


def test_files_are_utf8_ndjson_with_compact_separators(export: Export) -> None:
    raw = (export.summary.out_dir / "Patient.ndjson").read_bytes()
    assert "LEFÈVRE-ÇELIK".encode() in raw  # not \u-escaped
    assert raw.endswith(b"\n")
    for line in raw.splitlines()[:50]:
        assert json.dumps(json.loads(line), ensure_ascii=False, separators=(",", ":")).encode() == line


def test_too_few_patients_for_the_showcase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="showcase"):
        write_practice(tmp_path, patients=SHOWCASE_SIZE - 1, today=TODAY)


def test_scaling_smoke_5000_patients(tmp_path: Path) -> None:
    summary = write_practice(tmp_path, patients=5000, seed=11, today=TODAY)
    assert summary.counts["Patient"] == 5000
    with (tmp_path / "MedicationRequest.ndjson").open(encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == summary.counts["MedicationRequest"] > 5000


# --- references --------------------------------------------------------------------------------------


def test_every_reference_resolves_within_the_export_but_the_one_showcased(export: Export) -> None:
    dangling: collections.Counter[str] = collections.Counter()
    for resources in export.by_type.values():
        for resource in resources:
            for reference in references(resource):
                if reference not in export.by_key:
                    dangling[reference] += 1
    # The showcase's retired product: a reference to a Medication the export does not hold, with a display.
    requests = export.of("unresolved_medication", "MedicationRequest")
    (line,) = [r for r in requests if "display" in r["medicationReference"]]
    assert dangling == {line["medicationReference"]["reference"]: 1}


def test_showcase_shapes_the_desk_must_show_flagged(export: Export) -> None:
    unknown = export.of("status_unknown", "MedicationRequest")
    assert [r["status"] for r in unknown] == ["unknown", "unknown"]
    allergies = export.of("allergy_code_only", "AllergyIntolerance")
    code_only = [a for a in allergies if "text" not in a["code"]]
    assert len(code_only) == 1 and "display" not in code_only[0]["code"]["coding"][0]
    assert [a["verificationStatus"]["coding"][0]["code"] for a in allergies] == ["confirmed", "unconfirmed"]
    (resolved,) = export.of("allergy_resolved", "AllergyIntolerance")
    assert resolved["clinicalStatus"]["coding"][0]["code"] == "resolved"
    texts = [c["code"] for c in export.of("possible_absence", "Condition")]
    assert texts == [{"text": "Pas de diabète connu, tension à surveiller"}]


def test_general_practitioners_and_prescribers_are_the_practice_doctors(export: Export) -> None:
    doctors = {f"Practitioner/{p['id']}" for p in export.by_type["Practitioner"]}
    for patient in export.by_type["Patient"]:
        assert patient["generalPractitioner"][0]["reference"] in doctors
    for request in export.by_type["MedicationRequest"]:
        assert request["requester"]["reference"] in doctors


# --- practitioners and the practice ------------------------------------------------------------------


def luhn_ok(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def test_practitioners_carry_what_an_ordonnance_prints(export: Export) -> None:
    rpps_numbers = []
    for practitioner in export.by_type["Practitioner"]:
        (rpps,) = [i["value"] for i in practitioner["identifier"] if i["system"] == "urn:oid:1.2.250.1.71.4.2.1"]
        assert len(rpps) == 11 and rpps.isdigit() and luhn_ok(rpps)
        rpps_numbers.append(rpps)
        assert practitioner["qualification"][0]["code"]["text"]
        assert practitioner["address"][0]["country"] == "France"
        telecom = {t["system"]: t["value"] for t in practitioner["telecom"]}
        assert telecom["phone"].startswith("+33 ") and "@" in telecom["email"]
    assert export.summary.demo_practitioner_rpps in rpps_numbers
    qualites = {p["qualification"][0]["code"]["text"] for p in export.by_type["Practitioner"]}
    assert "Médecin généraliste" in qualites
    organization = export.by_type["Organization"][0]
    assert organization["name"] and organization["address"][0]["postalCode"].isdigit()


# --- the showcase cast -------------------------------------------------------------------------------

SHOWCASE_ROLES = (
    "homonym_a", "homonym_b", "twin_a", "twin_b", "apostrophe", "hyphen_accent", "particle", "married",
    "child_with_weight", "child_without_weight", "ald", "ald_category", "mte", "efg", "narcotic", "buprenorphine",
    "no_known_allergy", "no_allergy_info", "no_allergy_info_coded", "allergy_penicillin", "allergy_refuted",
    "ins_qual", "ins_corsica", "vali", "prov", "recup", "deceased", "several_given_names", "used_given_name",
    "status_unknown", "unresolved_medication", "allergy_code_only", "allergy_unconfirmed", "allergy_resolved",
    "possible_absence",
)  # fmt: skip


def test_showcase_roles_are_all_there(export: Export) -> None:
    assert set(SHOWCASE_ROLES) <= set(export.summary.showcase)
    ids = set(export.summary.showcase.values())
    assert ids == {f"pat-{n:06d}" for n in range(1, SHOWCASE_SIZE + 1)}


def test_homonyms_share_birth_name_and_first_given_name_not_birth_date(export: Export) -> None:
    first, second = export.patient("homonym_a"), export.patient("homonym_b")
    assert official(first)["family"] == official(second)["family"] == "MARTIN"
    assert official(first)["given"][0] == official(second)["given"][0] == "Jean"
    assert first["birthDate"] != second["birthDate"]


def test_twins_share_birth_date_and_name_not_given_names(export: Export) -> None:
    first, second = export.patient("twin_a"), export.patient("twin_b")
    assert first["birthDate"] == second["birthDate"]
    assert official(first)["family"] == official(second)["family"]
    assert official(first)["given"][0] != official(second)["given"][0]


@pytest.mark.parametrize(
    ("role", "family"),
    [("apostrophe", "N'DIAYE"), ("hyphen_accent", "LEFÈVRE-ÇELIK"), ("particle", "de La Fontaine")],
)
def test_hard_birth_names_are_written_exactly(export: Export, role: str, family: str) -> None:
    assert official(export.patient(role))["family"] == family


def test_married_woman_has_a_used_name_other_than_her_birth_name(export: Export) -> None:
    patient = export.patient("married")
    used = usual(patient)
    assert patient["gender"] == "female"
    assert used is not None and used["family"] != official(patient)["family"]


def test_several_birth_given_names_and_a_used_given_name(export: Export) -> None:
    patient = export.patient("several_given_names")
    name = official(patient)
    (birth_list,) = [e["valueString"] for e in name["extension"] if e["url"] == BIRTH_LIST]
    assert birth_list.split(" ") == ["Marie", "Thérèse", "Josèphe"]
    assert name["given"] == ["Marie"]  # the full list is only in the extension: the importer must read it
    used = usual(patient)
    assert used is not None and used["given"] == ["Thérèse"] and "family" not in used


def weights(export: Export, role: str) -> list[Resource]:
    return [o for o in export.of(role, "Observation") if o["code"]["coding"][0]["code"] == "29463-7"]


def test_children_with_and_without_a_weight(export: Export) -> None:
    with_weight, without_weight = export.patient("child_with_weight"), export.patient("child_without_weight")
    assert age(with_weight) < 6 and age(without_weight) < 6
    measured = weights(export, "child_with_weight")
    latest = max(measured, key=lambda o: o["effectiveDateTime"])
    assert (TODAY - dt.date.fromisoformat(latest["effectiveDateTime"])).days <= 30
    assert latest["valueQuantity"] == {"value": 14.6, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
    assert weights(export, "child_without_weight") == []


def test_efg_line_for_a_child_under_six(export: Export) -> None:
    lines = export.requests_of("efg")
    substitution = lines["amoxicilline"]["substitution"]
    assert substitution["allowedBoolean"] is False and substitution["reason"]["text"] == "EFG"
    assert age(export.patient("efg")) < 6


def test_ald_patient_has_linked_and_unlinked_treatments(export: Export) -> None:
    markers = [o for o in export.of("ald", "Observation") if is_ald_marker(o)]
    assert len(markers) == 1 and markers[0]["valueBoolean"] is True
    condition = export.by_key[markers[0]["focus"][0]["reference"]]
    assert condition["code"]["coding"][0]["code"] == "44054006"  # type 2 diabetes
    marker_ref = f"Observation/{markers[0]['id']}"
    lines = export.requests_of("ald")
    for dci in ("metformine", "insuline glargine"):
        assert [r["reference"] for r in lines[dci]["reasonReference"]] == [marker_ref]
        assert lines[dci]["courseOfTherapyType"]["coding"][0]["code"] == "continuous"
    unlinked = [r for r in lines.values() if marker_ref not in list(references(r.get("reasonReference", [])))]
    assert unlinked, "the ALD patient needs a line unrelated to the ALD (bottom zone of the bizone)"
    for request in unlinked:
        for reference in references(request.get("reasonReference", [])):
            reason = export.by_key[reference]
            assert not is_ald_marker(reason)
            assert all(c.get("code") != "ALD" for cat in reason.get("category", []) for c in cat["coding"])


def test_ald_marked_on_the_condition_itself(export: Export) -> None:
    (failure,) = export.of("ald_category", "Condition")
    assert any(c.get("code") == "ALD" for category in failure["category"] for c in category["coding"])
    linked = [r for r in export.of("ald_category", "MedicationRequest") if "reasonReference" in r]
    assert len(linked) == 3
    assert all(r["reasonReference"] == [{"reference": f"Condition/{failure['id']}"}] for r in linked)


def test_mte_levothyroxine(export: Export) -> None:
    line = export.requests_of("mte")["lévothyroxine sodique"]
    assert line["substitution"]["allowedBoolean"] is False
    assert line["substitution"]["reason"]["coding"][0]["code"] == "MTE"


def test_narcotics_and_high_dose_buprenorphine(export: Export) -> None:
    lines = export.requests_of("narcotic")
    assert {"sulfate de morphine", "oxycodone"} <= set(lines)
    for dci in ("sulfate de morphine", "oxycodone"):
        assert lines[dci]["dispenseRequest"]["expectedSupplyDuration"]["value"] <= 28
        assert lines[dci]["dispenseRequest"]["numberOfRepeatsAllowed"] == 0
    bup = export.requests_of("buprenorphine")["buprénorphine"]
    medication = export.by_key[bup["medicationReference"]["reference"]]
    assert medication["ingredient"][0]["strength"]["numerator"]["value"] == 8
    assert bup["dosageInstruction"][0]["route"]["text"] == "voie sublinguale"


def allergy_codes(export: Export, role: str) -> list[str]:
    return [c["code"] for a in export.of(role, "AllergyIntolerance") for c in a["code"]["coding"]]


def test_no_known_allergy_versus_no_information_versus_penicillin(export: Export) -> None:
    assert allergy_codes(export, "no_known_allergy") == ["716186003"]
    assert export.of("no_allergy_info", "AllergyIntolerance") == []
    assert allergy_codes(export, "no_allergy_info_coded") == ["no-allergy-info"]
    (penicillin,) = export.of("allergy_penicillin", "AllergyIntolerance")
    assert penicillin["code"]["text"] == "Amoxicilline" and penicillin["criticality"] == "high"
    assert penicillin["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert not any("amoxicilline" in dci for dci in export.requests_of("allergy_penicillin"))


def test_refuted_allergy_comes_with_a_coded_no_known_drug_allergy(export: Export) -> None:
    allergies = export.of("allergy_refuted", "AllergyIntolerance")
    verification = {a["code"]["coding"][0]["code"]: a.get("verificationStatus", {}) for a in allergies}
    assert verification["372687004"]["coding"][0]["code"] == "refuted"
    assert "409137002" in verification


def nir_traits(patient: Resource) -> str:
    born = dt.date.fromisoformat(patient["birthDate"])
    sex = "1" if patient["gender"] == "male" else "2"
    return f"{sex}{born.year % 100:02d}{born.month:02d}{birth_insee(patient)}"


@pytest.mark.parametrize("role", ["ins_qual", "ins_corsica", "married", "particle"])
def test_qualified_identities_carry_a_valid_test_ins_matching_their_traits(export: Export, role: str) -> None:
    patient = export.patient(role)
    assert status_of(patient) == "QUAL"
    ins = ins_of(patient)
    assert ins is not None and is_valid_nir(ins)
    assert ins.startswith(nir_traits(patient))


def test_corsica_birth_place_in_the_nir(export: Export) -> None:
    ins = ins_of(export.patient("ins_corsica"))
    assert ins is not None and ins[5:7] == "2A"


@pytest.mark.parametrize(("role", "status"), [("vali", "VALI"), ("prov", "PROV"), ("recup", "RECUP")])
def test_other_identity_statuses_carry_no_ins(export: Export, role: str, status: str) -> None:
    patient = export.patient(role)
    assert status_of(patient) == status
    assert ins_of(patient) is None


def test_deceased_patient(export: Export) -> None:
    patient = export.patient("deceased")
    assert dt.date.fromisoformat(patient["deceasedDateTime"]) < TODAY
    assert all(r["status"] == "stopped" for r in export.of("deceased", "MedicationRequest"))
    booked = {p["actor"]["reference"] for a in export.by_type["Appointment"] for p in a["participant"]}
    assert f"Patient/{patient['id']}" not in booked


# --- every patient -----------------------------------------------------------------------------------


def test_ins_only_on_qual_identities_and_every_nir_key_is_valid(export: Export) -> None:
    statuses: collections.Counter[str] = collections.Counter()
    for patient in export.by_type["Patient"]:
        status = status_of(patient)
        statuses[status] += 1
        ins = ins_of(patient)
        assert (ins is not None) == (status == "QUAL"), patient["id"]
        if ins is not None:
            assert is_valid_nir(ins), patient["id"]
            assert ins.startswith(nir_traits(patient)), patient["id"]
        assert not [i for i in patient.get("identifier", []) if i["system"] != INS_SYSTEM]
    assert statuses["QUAL"] + statuses["VALI"] > 0.8 * PATIENTS
    assert statuses["PROV"] > 0 and statuses["RECUP"] > 0


def test_every_ins_is_unique_in_the_export(export: Export) -> None:
    values = [ins for patient in export.by_type["Patient"] if (ins := ins_of(patient)) is not None]
    assert len(values) == len(set(values))


def test_no_two_patients_share_an_ins_in_a_large_practice(tmp_path: Path) -> None:
    # Seed 7 used to give pat-016053 and pat-011795 the same test INS (different birth dates): serial
    # numbers were drawn at random among 999, and 20,000 patients make such a draw certain.
    write_practice(tmp_path, patients=20_000, seed=7, today=TODAY)
    owners: dict[str, str] = {}
    with (tmp_path / "Patient.ndjson").open(encoding="utf-8") as handle:
        for line in handle:
            patient = json.loads(line)
            ins = ins_of(patient)
            if ins is None:
                continue
            assert is_valid_nir(ins), patient["id"]
            assert ins.startswith(nir_traits(patient)), patient["id"]
            assert ins not in owners, f"{patient['id']} and {owners.get(ins)} share the INS {ins}"
            owners[ins] = patient["id"]
    assert len(owners) > 10_000


def test_random_population_looks_like_a_french_practice(export: Export) -> None:
    patients = export.by_type["Patient"][SHOWCASE_SIZE:]
    ages = [age(p) for p in patients]
    assert min(ages) == 0 and 90 <= max(ages) <= 100
    women = [p for p in patients if p["gender"] == "female"]
    assert 0.46 < len(women) / len(patients) < 0.58
    married = [p for p in women if (u := usual(p)) is not None and "family" in u]
    assert 0.22 < len(married) / len(patients) < 0.38
    assert all(usual(p)["family"] != official(p)["family"] for p in married)  # type: ignore[index]
    several = [p for p in patients if len(official(p)["given"]) > 1 or BIRTH_LIST in json.dumps(official(p))]
    assert len(several) > 0.4 * len(patients)
    phones = [t["value"] for p in patients for t in p.get("telecom", [])]
    assert phones and all(value.startswith("+33 ") for value in phones)
    assert any(value.startswith("+33 6 ") for value in phones)
    homonyms = collections.Counter((official(p)["family"].upper(), official(p)["given"][0]) for p in patients)
    assert max(homonyms.values()) >= 2, "common names should produce homonyms on their own"
    assert any("'" in official(p)["family"] or "-" in official(p)["family"] for p in patients)
    assert all(p["address"][0]["country"] == "France" for p in patients if "address" in p)


def test_about_ten_percent_of_patients_in_ald(export: Export) -> None:
    in_ald = set()
    for resource in export.by_type["Observation"]:
        if is_ald_marker(resource):
            in_ald.add(resource["subject"]["reference"])
    for condition in export.by_type["Condition"]:
        if any(c.get("code") == "ALD" for category in condition["category"] for c in category["coding"]):
            in_ald.add(condition["subject"]["reference"])
    assert 0.06 < len(in_ald) / PATIENTS < 0.16


def code_of(resource: Resource, element: str) -> str:
    return str(resource[element]["coding"][0]["code"])


def test_chronic_adults_have_three_to_six_ongoing_treatments(export: Export) -> None:
    for patient in export.by_type["Patient"][SHOWCASE_SIZE:]:
        if age(patient) < 18:
            continue
        resources = export.by_patient[patient["id"]]
        chronic_conditions = [
            r for r in resources if r["resourceType"] == "Condition" and code_of(r, "clinicalStatus") == "active"
        ]
        ongoing = [
            r
            for r in resources
            if r["resourceType"] == "MedicationRequest" and code_of(r, "courseOfTherapyType") == "continuous"
        ]
        if chronic_conditions:
            assert 3 <= len(ongoing) <= 7, patient["id"]  # 3-6, plus a contraceptive pill


def test_conditions_come_with_their_treatment(export: Export) -> None:
    treated = untreated = 0
    for resources in export.by_patient.values():
        hypertensive = any(
            r["resourceType"] == "Condition"
            and r["code"]["text"] == "Hypertension artérielle essentielle"
            and code_of(r, "clinicalStatus") == "active"
            for r in resources
        )
        if hypertensive:
            drugs = {export.medication_text(r) for r in resources if r["resourceType"] == "MedicationRequest"}
            if drugs & {"amlodipine", "ramipril", "périndopril arginine"}:
                treated += 1
            else:
                untreated += 1
    assert treated > 100 and untreated <= 0.05 * treated


DATE_FIELDS = ("onsetDateTime", "abatementDateTime", "effectiveDateTime", "recordedDate", "authoredOn")


def test_clinical_dates_lie_between_birth_and_today_or_death(export: Export) -> None:
    for patient in export.by_type["Patient"]:
        born = dt.date.fromisoformat(patient["birthDate"])
        last = dt.date.fromisoformat(patient.get("deceasedDateTime", TODAY.isoformat()))
        for resource in export.by_patient[patient["id"]]:
            dates = [resource[name] for name in DATE_FIELDS if name in resource]
            for dosage in resource.get("dosageInstruction", []):
                if "timing" in dosage:
                    dates.append(dosage["timing"]["repeat"]["boundsPeriod"]["start"])
            for value in dates:
                assert born <= dt.date.fromisoformat(value) <= last, (patient["id"], resource["id"], value)


def test_young_children_get_no_tablets(export: Export) -> None:
    checked = 0
    for patient in export.by_type["Patient"][SHOWCASE_SIZE:]:
        if age(patient) < 6:
            for request in export.by_patient[patient["id"]]:
                if request["resourceType"] == "MedicationRequest":
                    if "medicationReference" in request:
                        label = export.by_key[request["medicationReference"]["reference"]]["code"]["text"]
                    else:
                        label = request["medicationCodeableConcept"]["text"]
                    assert not any(word in label for word in ("comprimé", "gélule", "capsule")), patient["id"]
                    checked += 1
    assert checked > 0


def test_no_treatment_against_a_recorded_allergy(export: Export) -> None:
    for patient_id, resources in export.by_patient.items():
        allergic_to_penicillin = any(
            r["resourceType"] == "AllergyIntolerance"
            and r["code"].get("text") in ("Amoxicilline", "Pénicillines")
            and r["verificationStatus"]["coding"][0]["code"] == "confirmed"
            for r in resources
        )
        if allergic_to_penicillin:
            drugs = [export.medication_text(r) for r in resources if r["resourceType"] == "MedicationRequest"]
            assert not any("amoxicilline" in d.lower() for d in drugs), patient_id


def test_postologies_and_treatment_details_are_french(export: Export) -> None:
    requests = export.by_type["MedicationRequest"]
    texts = {r["dosageInstruction"][0]["text"] for r in requests}
    assert "1 comprimé matin et soir au milieu des repas" in texts
    assert all(r["dosageInstruction"][0]["route"]["text"].startswith("voie ") for r in requests)
    repeats = {r["dispenseRequest"].get("numberOfRepeatsAllowed") for r in requests}
    assert {0, 2} <= repeats
    mte = [r for r in requests if r.get("substitution", {}).get("reason", {}).get("text") == "MTE"]
    assert len(mte) > 5
    # Only substances on the MTE list (arrêtés of 12/11/2019 and 20/07/2022) may be "non substituable (MTE)".
    mte_list = {"lévothyroxine sodique", "ciclosporine", "lamotrigine", "lévétiracétam", "valproate de sodium",
                "buprénorphine"}  # fmt: skip
    assert {export.medication_text(r) for r in mte} <= mte_list
    statuses = collections.Counter(r["status"] for r in requests)
    assert statuses["active"] > statuses["completed"] > 0


def test_children_mostly_have_dated_weights(export: Export) -> None:
    children = [p for p in export.by_type["Patient"][SHOWCASE_SIZE:] if age(p) < 18]
    weighed = [p for p in children if any(
        r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "29463-7"
        for r in export.by_patient[p["id"]])]  # fmt: skip
    assert 0.7 < len(weighed) / len(children) < 0.95
    for patient in weighed:
        for resource in export.by_patient[patient["id"]]:
            if resource["resourceType"] == "Observation" and "valueQuantity" in resource:
                measured = dt.date.fromisoformat(resource["effectiveDateTime"])
                assert dt.date.fromisoformat(patient["birthDate"]) < measured < TODAY


# --- appointments ------------------------------------------------------------------------------------


def test_appointments_over_the_next_fourteen_days_never_on_sunday(export: Export) -> None:
    per_day: collections.Counter[tuple[dt.date, str]] = collections.Counter()
    for appointment in export.by_type["Appointment"]:
        start = dt.datetime.fromisoformat(appointment["start"])
        end = dt.datetime.fromisoformat(appointment["end"])
        assert start.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
        assert TODAY <= start.date() < TODAY + dt.timedelta(days=14)
        assert start.weekday() != 6
        assert dt.time(8, 0) <= start.time() and end.time() <= dt.time(19, 0) and end > start
        actors = {p["actor"]["reference"].split("/")[0]: p["actor"]["reference"] for p in appointment["participant"]}
        assert set(actors) == {"Patient", "Practitioner"}
        per_day[(start.date(), actors["Practitioner"])] += 1
    days = {day for day, _ in per_day}
    assert len(days) == 12  # 14 days minus two Sundays
    for (day, _practitioner), count in per_day.items():
        if day.weekday() == 5:
            assert 14 <= count <= 20
        else:
            assert 20 <= count <= 31


def test_showcase_patients_on_today_s_schedule(export: Export) -> None:
    today = [a for a in export.by_type["Appointment"] if a["start"].startswith(TODAY.isoformat())]
    booked = {p["actor"]["reference"] for a in today for p in a["participant"]}
    for role in ("homonym_a", "homonym_b", "twin_a", "twin_b", "child_with_weight"):
        assert f"Patient/{export.summary.showcase[role]}" in booked


def test_sunday_today_starts_the_schedule_on_monday(tmp_path: Path) -> None:
    sunday = dt.date(2026, 11, 29)
    write_practice(tmp_path, patients=200, seed=1, today=sunday)
    with (tmp_path / "Appointment.ndjson").open(encoding="utf-8") as handle:
        starts = [dt.datetime.fromisoformat(json.loads(line)["start"]) for line in handle]
    assert min(starts).date() == sunday + dt.timedelta(days=1)
    assert all(start.weekday() != 6 for start in starts)


def test_summer_appointments_use_summer_time(tmp_path: Path) -> None:
    write_practice(tmp_path, patients=100, seed=1, today=dt.date(2026, 7, 1))
    with (tmp_path / "Appointment.ndjson").open(encoding="utf-8") as handle:
        assert all(json.loads(line)["start"].endswith("+02:00") for line in handle)


# --- FHIR R4 validity --------------------------------------------------------------------------------

# fhir.resources 8 defaults to R5; its R4B subpackage is the closest to R4 it ships. No resource here
# fails because of an R4B/R4 difference (Appointment, MedicationRequest and Observation agree for the
# elements written).
MODULES = {kind: kind.lower() for kind in RESOURCE_TYPES}


@pytest.mark.parametrize("kind", RESOURCE_TYPES)
def test_sample_validates_against_fhir_r4b(export: Export, kind: str) -> None:
    model = getattr(importlib.import_module(f"fhir.resources.R4B.{MODULES[kind]}"), kind)
    resources = export.by_type[kind]
    # The showcase resources come first; take them and a spread of the random ones.
    sample = resources[:60] + resources[60 :: max(1, len(resources) // 60)]
    for resource in sample:
        model.model_validate(resource)

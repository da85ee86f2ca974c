"""The drug reference: reading BDPM folders (good and bad), reducing conditions, resolving lines, the snapshot.

Every test reads the BDPM subset in tests/data/bdpm (real lines cut from the June 2022 BDPM copy, see
its SOURCES.md) or a copy of it damaged on purpose in tmp_path.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from continuity import snapshot_build, snapshotdb
from continuity.drugs import bdpm, reference, text
from continuity.drugs.reference import DrugQuery
from continuity.errors import DrugReferenceError, SnapshotDatabaseError
from continuity.model import ResolutionMethod, Treatment
from tests.factories import small_practice

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "bdpm"


@pytest.fixture(scope="module")
def read() -> bdpm.Bdpm:
    return bdpm.read(FIXTURE)


@pytest.fixture(scope="module")
def drugs(read: bdpm.Bdpm) -> reference.DrugReference:
    return reference.in_memory(read)


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "bdpm"
    shutil.copytree(FIXTURE, folder)
    return folder


def _append(path: Path, line: bytes) -> None:
    path.write_bytes(path.read_bytes() + line)


# --- reading --------------------------------------------------------------------------------------


def test_the_real_subset_reads_as_cp1252_and_reports_the_real_malformed_lines(read: bdpm.Bdpm) -> None:
    report = read.report
    assert set(report.encodings.values()) == {"cp1252"}
    # CIS 68285029's three composition lines have 12 columns in the real BDPM: reported, product left out.
    assert [(bad.file, bad.reason) for bad in report.bad_lines] == [
        ("CIS_COMPO_bdpm.txt", "12 colonnes au lieu de 8 à 9")
    ] * 3
    assert all(bad.line > 0 for bad in report.bad_lines)
    assert 68285029 not in read.products and report.dropped_products == {68285029}
    skenan = next(p for p in read.products.values() if p.denomination.startswith("SKENAN L.P. 30 mg"))
    assert skenan.routes == ("orale",)
    assert [(s.dci, s.strength) for s in skenan.substances] == [("morphine", "30 mg")]
    assert skenan.conditions.secure_paper and skenan.conditions.narcotic and skenan.conditions.max_days == 28


def test_strict_refuses_the_malformed_line_naming_file_and_line() -> None:
    with pytest.raises(DrugReferenceError) as caught:
        bdpm.read(FIXTURE, strict=True)
    assert "CIS_COMPO_bdpm.txt, line 54" in str(caught.value)
    assert "CIS_COMPO_bdpm.txt, ligne 54" in caught.value.message_fr


def test_utf8_files_are_read_as_utf8(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    for name in bdpm.FILES:
        path = folder / name
        path.write_text(path.read_bytes().decode("cp1252"), encoding="utf-8")
    read = bdpm.read(folder)
    assert set(read.report.encodings.values()) == {"utf-8"}
    assert any(p.denomination == "MYCOHYDRALIN 500 mg, comprimé vaginal" for p in read.products.values())


@pytest.mark.parametrize("name", bdpm.FILES)
def test_a_missing_file_is_named(tmp_path: Path, name: str) -> None:
    folder = _copy(tmp_path)
    (folder / name).unlink()
    with pytest.raises(DrugReferenceError) as caught:
        bdpm.read(folder)
    assert name in str(caught.value) and name in caught.value.message_fr


def test_an_undecodable_byte_names_file_and_line(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / bdpm.CONDITIONS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].replace(b"liste", b"li\x81ste")  # 0x81 is undefined in cp1252 and invalid UTF-8
    path.write_bytes(b"".join(lines))
    with pytest.raises(DrugReferenceError) as caught:
        bdpm.read(folder)
    assert "CIS_CPD_bdpm.txt, line 5" in str(caught.value)


def test_a_utf16_file_is_refused_as_not_text(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / bdpm.PRODUCTS_FILE
    path.write_bytes(path.read_bytes().decode("cp1252").encode("utf-16-le"))
    with pytest.raises(DrugReferenceError) as caught:
        bdpm.read(folder)
    assert "CIS_bdpm.txt, line 1" in str(caught.value) and "control character" in str(caught.value)


def test_an_unknown_column_count_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / bdpm.CONDITIONS_FILE
    path.write_bytes(b"\r\n".join(line + b"\textra\tcolumns" for line in path.read_bytes().splitlines()))
    with pytest.raises(DrugReferenceError) as caught:
        bdpm.read(folder)
    assert "CIS_CPD_bdpm.txt, line 1" in str(caught.value) and "unknown column count" in str(caught.value)


def test_a_bad_product_line_is_skipped_and_reported_or_fails_with_strict(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _append(folder / bdpm.PRODUCTS_FILE, "6123456X\tPRODUIT ABIMÉ 5 mg, comprimé\tcomprimé\torale\t"
            "Autorisation active\t\tCommercialisée\t01/01/2020\t\t\t LABO\tNon\r\n".encode("cp1252"))
    read = bdpm.read(folder)
    assert any(bad.file == bdpm.PRODUCTS_FILE and "6123456X" in bad.reason for bad in read.report.bad_lines)
    with pytest.raises(DrugReferenceError, match="CIS_bdpm.txt, line 41"):
        bdpm.read(folder, strict=True)


def test_a_bad_condition_line_drops_its_product(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    # A conditions line with a third real column: its product's conditions cannot be trusted to be complete.
    _append(folder / bdpm.CONDITIONS_FILE, b"67467071\tstup\xe9fiants\tet\tautre\r\n")
    read = bdpm.read(folder)
    assert 67467071 not in read.products  # OXYCONTIN LP 20 mg: left out rather than half-known
    assert 67467071 in read.report.dropped_products


def test_zero_products_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / bdpm.PRODUCTS_FILE).write_bytes(b"")
    with pytest.raises(DrugReferenceError, match="no product"):
        bdpm.read(folder)


def test_conditions_are_reduced_to_what_the_rules_need() -> None:
    conditions = bdpm.Conditions()
    for line in ("liste I", "prescription limitée à 12 semaines", "prescription limitée à 7 jours ou 28 jours",
                 "réservé à l'usage HOSPITALIER"):
        conditions = conditions.with_condition(line)
    assert (conditions.list, conditions.max_days, conditions.hospital_only, conditions.secure_paper) == (
        "I", 7, True, False)
    assert bdpm.Conditions().with_condition("prescription limitée à 6 mois").max_days == 183
    secure = bdpm.Conditions().with_condition("prescription en toutes lettres sur ordonnance sécurisée")
    assert secure.secure_paper and not secure.narcotic


def test_the_later_rule_marks_tramadol_and_codeine_products(read: bdpm.Bdpm) -> None:
    topalgic = next(p for p in read.products.values() if p.denomination.startswith("TOPALGIC 50 mg"))
    assert topalgic.conditions.secure_paper and "26/09/2024" in topalgic.conditions.later_rule
    codoliprane = next(p for p in read.products.values() if p.denomination.startswith("CODOLIPRANE"))
    assert codoliprane.conditions.secure_paper
    assert sum(read.report.later_rule_products.values()) >= 2


# --- text -----------------------------------------------------------------------------------------


def test_substance_keys_ignore_salts_and_word_order() -> None:
    assert text.substance_key("OXYCODONE (CHLORHYDRATE D')") == text.substance_key("chlorhydrate d'oxycodone")
    assert text.substance_key("LÉVOTHYROXINE SODIQUE") == "levothyroxine"
    assert text.substance_key("CHLORURE DE SODIUM") == "chlorure sodium"  # nothing but salt words: kept
    assert text.substance_dci("SULFATE DE MORPHINE") == "morphine"


def test_quantities_compare_across_units() -> None:
    assert text.quantities("1 g") == text.quantities("1000,00 mg") == frozenset({("mg", 1000.0)})
    assert ("mg/ml", 40.0) in text.quantities("200 mg/5 mL") & text.quantities("40 mg/ml")
    assert ("ui", 100000.0) in text.quantities("100 000 UI/2 mL")


def test_free_text_is_split_into_substance_strength_and_form() -> None:
    split = text.split_free_text("lévothyroxine sodique 75 microgrammes, comprimé")
    assert (split.substance, split.strength, split.form) == ("lévothyroxine sodique", "75 microgrammes", "comprimé")
    assert text.split_free_text("amoxicilline gélule").form == "gélule"


@pytest.mark.parametrize(("form", "route"), [
    ("comprimé vaginal", "vaginale"),
    ("poudre pour inhalation en gélule", "inhalée"),
    ("pommade ophtalmique", "ophtalmique"),
    ("collyre en solution", "ophtalmique"),
    ("comprimé sublingual", "sublinguale"),
    ("suppositoire", "rectale"),
    ("dispositif transdermique", "transdermique"),
    ("solution pour pulvérisation nasale", "nasale"),
    ("gouttes auriculaires, solution", "auriculaire"),
    ("comprimé pelliculé sécable", "orale"),
    ("gélule gastro-résistante", "orale"),
    ("poudre pour solution buvable en sachet-dose", "orale"),
])
def test_route_from_form_reads_qualifiers_before_the_noun(form: str, route: str) -> None:
    assert text.route_for_form(form).route == route


@pytest.mark.parametrize("form", ["solution injectable", "crème", "gel", "pommade", ""])
def test_an_open_form_asks_for_the_route(form: str) -> None:
    guess = text.route_for_form(form)
    assert guess.ambiguous and not guess.route and guess.reason


# --- resolving ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("brand", "substance"), [
    ("OXYCONTIN LP 20 mg", "oxycodone"),
    ("SKENAN LP 30 mg", "morphine"),
    ("DUROGESIC 25 microgrammes/heure", "fentanyl"),
])
def test_narcotic_brands_resolve_to_their_substance_and_secure_paper(
    drugs: reference.DrugReference, brand: str, substance: str
) -> None:
    resolution = drugs.resolve(DrugQuery(brand))
    assert resolution.method is ResolutionMethod.TEXT
    assert resolution.substances == (substance,) and resolution.secure_paper and resolution.narcotic
    assert resolution.max_days == 28 and len(resolution.products) == 1 and resolution.denomination


def test_exact_denomination(drugs: reference.DrugReference) -> None:
    resolution = drugs.resolve(DrugQuery("amoxicilline", brand="CLAMOXYL 1 g, comprimé dispersible"))
    assert resolution.method is ResolutionMethod.DENOMINATION
    assert resolution.substances == ("amoxicilline",) and resolution.list == "I"


def test_dci_text_with_strength_and_form(drugs: reference.DrugReference) -> None:
    resolution = drugs.resolve(DrugQuery("clotrimazole", "500 mg", "comprimé vaginal"))
    assert resolution.method is ResolutionMethod.TEXT and resolution.routes == ("vaginale",)
    assert resolution.denomination == ""  # named by its DCI: no brand shown as if the export had named it
    inhaled = drugs.resolve(DrugQuery("tiotropium", "18 microgrammes", "poudre pour inhalation en gélule"))
    assert inhaled.routes == ("inhalée",)
    eye = drugs.resolve(DrugQuery("aciclovir", "30 mg/g", "pommade ophtalmique"))
    assert eye.routes == ("ophtalmique",)


def test_a_salt_named_as_its_dci_meets_the_bdpm_stereo_prefixed_name(drugs: reference.DrugReference) -> None:
    # KARDEGIC's substance is "DL-LYSINE (ACÉTYLSALICYLATE DE)": the DCI a doctor writes is
    # "acétylsalicylate de lysine". Found unidentified in the render review (a routine danger on every
    # aspirin line would train people to confirm dangers).
    assert text.substance_key("DL-LYSINE (ACÉTYLSALICYLATE DE)") == text.substance_key("acétylsalicylate de lysine")
    resolution = drugs.resolve(DrugQuery("acétylsalicylate de lysine", "75 mg", "poudre pour solution buvable"))
    assert resolution.identified and resolution.products == (64755969,) and resolution.routes == ("orale",)


def test_free_text_line_resolves(drugs: reference.DrugReference) -> None:
    resolution = drugs.resolve(DrugQuery("lévothyroxine sodique 75 microgrammes, comprimé"))
    assert resolution.substances == ("lévothyroxine",) and resolution.routes == ("orale",)
    assert resolution.form == "comprimé"


def test_cip13_and_cip7_and_cis_codes(drugs: reference.DrugReference) -> None:
    by_cip13 = drugs.resolve(DrugQuery("?", codes=("http://data.esante.gouv.fr/ansm/medicament/codeCIP13|3400935421500",)))
    assert by_cip13.method is ResolutionMethod.CODE and by_cip13.substances == ("oxycodone",)
    by_cip7 = drugs.resolve(DrugQuery("?", codes=("urn:oid:1.2.250.1.213.2.3.1|3542150",)))
    assert by_cip7.products == by_cip13.products
    by_cis = drugs.resolve(DrugQuery("?", codes=("https://data.esante.gouv.fr/ansm/medicament/codeCIS|67467071",)))
    assert by_cis.products == (67467071,)


def test_ucd_and_atc_codes_are_noted_not_used(drugs: reference.DrugReference) -> None:
    resolution = drugs.resolve(DrugQuery("clotrimazole", "500 mg", "comprimé vaginal",
                                         codes=("urn:oid:1.2.250.1.213.2.3.2.UCD|9000001", "http://www.whocc.no/atc|G01AF02")))
    assert resolution.method is ResolutionMethod.TEXT
    assert "UCD 9000001: UCD codes are not in the BDPM files read" in resolution.detail
    assert "ATC G01AF02: a class" in resolution.detail


def test_a_code_that_contradicts_the_text_is_not_trusted(drugs: reference.DrugReference) -> None:
    resolution = drugs.resolve(DrugQuery("amoxicilline", codes=("cip13|3400935421500",)))
    assert resolution.method is ResolutionMethod.UNRESOLVED and "contradicts" in resolution.detail


def test_unknown_text_is_unresolved(drugs: reference.DrugReference) -> None:
    resolution = drugs.resolve(DrugQuery("sirop maison du docteur", "10 mg", "sirop"))
    assert resolution.method is ResolutionMethod.UNRESOLVED and not resolution.identified


def test_hospital_only_and_duration_limits(drugs: reference.DrugReference) -> None:
    assert drugs.resolve(DrugQuery("ADEMPAS 1,5 mg")).hospital_only
    # One alprazolam product is hospital-only, XANAX is not: a DCI line is not refused for that.
    alprazolam = drugs.resolve(DrugQuery("alprazolam", "0,25 mg", "comprimé"))
    assert not alprazolam.hospital_only and alprazolam.max_days == 84
    assert drugs.resolve(DrugQuery("NOCTAMIDE 2 mg")).max_days == 28


def test_several_routes_are_all_kept(drugs: reference.DrugReference) -> None:
    resolution = drugs.resolve(DrugQuery("ceftriaxone", "1 g", "poudre et solvant pour solution injectable"))
    assert set(resolution.routes) == {"intramusculaire", "intraveineuse"}


def test_dci_completion(drugs: reference.DrugReference) -> None:
    assert "amoxicilline" in drugs.complete_dci("amox")
    assert drugs.complete_dci("LEVOTH") == ["lévothyroxine"]
    assert drugs.complete_dci("a") == []


# --- in the snapshot ------------------------------------------------------------------------------


def test_the_snapshot_carries_the_reference_and_each_treatment_its_resolution(
    tmp_path: Path, read: bdpm.Bdpm
) -> None:
    records = [*small_practice(), Treatment("trt-sk", "pat-qual", "SKENAN LP 30 mg", posology="1 gélule matin et soir")]
    built = snapshot_build.build_from_records(records, tmp_path / "s.db", drugs=read)
    assert built.counts["drug_product"] == len(read.products) and built.counts["drug_resolution"] == 3
    db = snapshotdb.open_file(built.path, expected_counts=built.counts)
    try:
        treatments = {t.id: t for t in db.summary("pat-qual").treatments}
        assert treatments["trt-sk"].narcotic  # from the reference's "stupéfiants", the brand never says morphine
        assert treatments["trt-sk"].drug is not None and treatments["trt-sk"].drug.substances == ("morphine",)
        assert treatments["trt-1"].drug is not None and treatments["trt-1"].drug.substances == ("metformine",)
        assert db.drug_reference() is not None
        assert '"products": 39' in db.meta["drug_reference"]
    finally:
        db.close()


def test_without_a_reference_the_fallback_list_marks_narcotics(tmp_path: Path) -> None:
    records = [*small_practice(), Treatment("trt-mo", "pat-qual", "sulfate de morphine", "30 mg"),
               Treatment("trt-sk", "pat-qual", "SKENAN LP 30 mg")]
    built = snapshot_build.build_from_records(records, tmp_path / "s.db")
    db = snapshotdb.open_file(built.path)
    try:
        treatments = {t.id: t for t in db.summary("pat-qual").treatments}
        assert treatments["trt-mo"].narcotic and treatments["trt-mo"].drug is None
        assert not treatments["trt-sk"].narcotic  # the list cannot know the brand: why the reference exists
        assert db.drug_reference() is None and db.meta["drug_reference"] == ""
    finally:
        db.close()


def _tamper(path: Path, sql: str) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("sql", [
    "UPDATE treatment SET drug = NULL WHERE id = 'trt-1'",
    "UPDATE treatment SET drug = 999 WHERE id = 'trt-1'",
    "UPDATE drug_resolution SET method = 'guessed'",
    "UPDATE drug_resolution SET substances = '{\"a\": 1}'",
    f"UPDATE drug_resolution SET products = '{list(range(10_000_001, 10_000_301))}'",  # over the 200 stored
    "DELETE FROM drug_product",
])
def test_an_inconsistent_reference_is_refused_at_open(tmp_path: Path, read: bdpm.Bdpm, sql: str) -> None:
    built = snapshot_build.build_from_records(small_practice(), tmp_path / "s.db", drugs=read)
    data = _tamper(built.path, sql)
    with pytest.raises(SnapshotDatabaseError):
        snapshotdb.open_bytes(data).close()


def test_a_reference_table_with_an_extra_index_is_refused(tmp_path: Path, read: bdpm.Bdpm) -> None:
    built = snapshot_build.build_from_records(small_practice(), tmp_path / "s.db", drugs=read)
    data = _tamper(built.path, "CREATE INDEX sneaky ON drug_product (denomination)")
    with pytest.raises(SnapshotDatabaseError, match="sneaky"):
        snapshotdb.open_bytes(data)


def test_the_demo_subset_identifies_every_drug_the_synthetic_practice_prescribes() -> None:
    from continuity import demo, synth

    shipped = reference.in_memory(bdpm.read(demo.DEMO_DRUG_REFERENCE))
    unidentified = [
        drug.key for drug in synth.DRUGS.values()
        if not shipped.resolve(DrugQuery(drug.dci, drug.strength, drug.form, drug.label)).identified
    ]
    assert unidentified == [], "re-cut the demo subset: .venv/bin/python tests/data/bdpm/cut.py /work/shared/data/bdpm"
    narcotics = [key for key in ("morphine-lp-30", "oxycodone-5", "fentanyl-25", "tramadol-50")
                 if shipped.resolve(DrugQuery(synth.DRUGS[key].dci, synth.DRUGS[key].strength,
                                              synth.DRUGS[key].form)).secure_paper]
    assert narcotics == ["morphine-lp-30", "oxycodone-5", "fentanyl-25", "tramadol-50"]


def test_an_export_coded_by_cip13_is_resolved_at_publish_time(tmp_path: Path) -> None:
    """FHIR export → publisher build with the reference → the treatment carries its resolution."""
    import json

    from continuity import publish

    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "MARTIN", "given": ["Jeanne"]}]}

    def request(rid: str, concept: dict[str, object]) -> dict[str, object]:
        return {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
                "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-10-01",
                "medicationCodeableConcept": concept}

    coded = request("mr-coded", {"coding": [{"system": "urn:oid:1.2.250.1.213.2.3.1", "code": "3400935421500"}],
                                 "text": "antalgique LP"})
    brand = request("mr-brand", {"text": "SKENAN LP 30 mg"})
    export = tmp_path / "export.ndjson"
    export.write_text("".join(json.dumps(r) + "\n" for r in (patient, coded, brand)), encoding="utf-8")
    built = publish.build([export], tmp_path / "s.db", drugs=bdpm.read(FIXTURE))
    db = snapshotdb.open_file(built.path, expected_counts=built.counts)
    try:
        treatments = {t.id.rsplit("/", 1)[-1]: t for t in db.summary("p1").treatments}
        by_code = next(t for key, t in treatments.items() if key.endswith("mr-coded"))
        by_brand = next(t for key, t in treatments.items() if key.endswith("mr-brand"))
        assert by_code.drug is not None and by_code.drug.method is ResolutionMethod.CODE
        assert by_code.drug.substances == ("oxycodone",) and by_code.narcotic
        assert by_brand.drug is not None and by_brand.drug.substances == ("morphine",) and by_brand.narcotic
    finally:
        db.close()

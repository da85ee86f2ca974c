"""Building prescriptions: renewals, ALD zones, every refusal and every warning, the preview, the journal call."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from continuity import journal as journal_module
from continuity import prescribe
from continuity.errors import ConfirmationRequired, NotFound, PrescriptionRefused
from continuity.model import Allergy, AllergyStatus
from tests.unit.pdf_fixtures import (
    NOW,
    SNAPSHOT_AT,
    TODAY,
    ald_summary,
    child,
    line,
    patient,
    practitioner,
    summary,
    treatment,
    weight,
)


def _allergy(substance: str) -> Allergy:
    return Allergy(id=f"a-{substance}", patient_id="pat-1", substance=substance)


# --- building -------------------------------------------------------------------------------------


def test_renew_all_uses_one_month_and_keeps_the_treatment_details() -> None:
    plan = prescribe.build(ald_summary(), practitioner(), renew="all", now=NOW)
    lines = plan.prescription.lines
    assert [line.source_treatment_id for line in lines] == ["t-met", "t-levo", "t-ins"]
    assert {line.duration_days for line in lines} == {30}
    levo = lines[1]
    assert (levo.dci, levo.strength, levo.route, levo.non_substitution) == (
        "lévothyroxine sodique",
        "75 µg",
        "voie orale",
        "MTE",
    )
    assert plan.prescription.is_bizone
    assert [line.ald_related for line in lines] == [True, False, True]
    assert plan.warnings == ()


def test_renewal_duration_and_renewals_are_editable() -> None:
    plan = prescribe.build(
        ald_summary(), practitioner(), renew=[prescribe.Renewal("t-levo", duration_days=90, renewals=3)], now=NOW
    )
    (levo,) = plan.prescription.lines
    assert (levo.duration_days, levo.renewals) == (90, 3)
    assert not plan.prescription.is_bizone  # the only line is not linked to the ALD
    assert "À renouveler 3 fois" in prescribe.line_details(levo)


def test_a_single_treatment_id_as_a_string() -> None:
    plan = prescribe.build(ald_summary(), practitioner(), renew="t-levo", now=NOW)
    assert [line.source_treatment_id for line in plan.prescription.lines] == ["t-levo"]


def test_unknown_treatment_is_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        prescribe.build(ald_summary(), practitioner(), renew=["nope"], now=NOW)
    assert "nope" in caught.value.message_fr


def test_new_line_gets_its_route_from_the_form() -> None:
    plan = prescribe.build(summary(), practitioner(), new_lines=[line(form="comprimé pelliculé", route="")], now=NOW)
    assert plan.prescription.lines[0].route == "voie orale"
    assert prescribe.route_for_form("collyre en récipient unidose") == "voie ophtalmique"
    assert prescribe.route_for_form("solution injectable") == ""


def test_prescription_ids_are_unique() -> None:
    ids = {prescribe.build(summary(), practitioner(), new_lines=[line()], now=NOW).prescription.id for _ in range(50)}
    assert len(ids) == 50


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dci",
    [
        "morphine",
        "Sulfate de MORPHINE",
        "oxycodone",
        "oxycodone/naloxone",
        "fentanyl",
        "hydromorphone",
        "méthadone",
        "METHADONE",
        "méthylphénidate",
        "kétamine",
        "buprénorphine",
        "buprénorphine + naloxone",
        "clonazépam",
        "zolpidem",
        "tianeptine",
        "tramadol",
        "paracétamol + tramadol",
        "paracétamol/codéine",
        "dihydrocodéine",
        "tapentadol",
        "flunitrazépam",
        "oxybate de sodium",
        "Morphine sulfate",
        "codeine phosphate",
    ],
)
def test_secure_paper_substances_are_refused(dci: str) -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        prescribe.build(summary(), practitioner(), new_lines=[line(dci)], now=NOW)
    assert "ORDONNANCE SÉCURISÉE" in caught.value.message_fr
    assert dci in caught.value.message_fr


@pytest.mark.parametrize(
    "dci", ["paracétamol", "nalbuphine", "oxybutynine", "hydroxyzine", "clobazam", "zopiclone", "ibuprofène"]
)
def test_lookalike_substances_are_not_refused(dci: str) -> None:
    prescribe.build(summary(), practitioner(), new_lines=[line(dci)], now=NOW)


def test_brand_name_is_checked_too() -> None:
    with pytest.raises(PrescriptionRefused):
        prescribe.build(summary(), practitioner(), new_lines=[line("antalgique", brand="Skenan morphine")], now=NOW)


def test_clorazepate_refused_only_at_20_mg() -> None:
    prescribe.build(
        summary(), practitioner(), new_lines=[line("clorazépate dipotassique", strength="5 mg")], now=NOW
    )
    with pytest.raises(PrescriptionRefused):
        prescribe.build(
            summary(), practitioner(), new_lines=[line("clorazépate dipotassique", strength="20 mg")], now=NOW
        )
    with pytest.raises(PrescriptionRefused):  # strength unknown: we cannot tell, so we refuse
        prescribe.build(summary(), practitioner(), new_lines=[line("clorazépate dipotassique", strength="")], now=NOW)


def test_treatment_flagged_narcotic_by_the_platform_is_refused() -> None:
    s = summary(treatments=[treatment("t-x", "antalgique palier 3", narcotic=True)])
    with pytest.raises(PrescriptionRefused) as caught:
        prescribe.build(s, practitioner(), renew="all", now=NOW)
    assert "antalgique palier 3" in caught.value.message_fr


@pytest.mark.parametrize(
    ("duration_days", "renewals"), [(366, 0), (400, 0), (180, 2), (120, 3), (30, 12), (0, 0), (-5, 0)]
)
def test_durations_over_twelve_months_are_refused(duration_days: int, renewals: int) -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        prescribe.build(
            summary(),
            practitioner(),
            new_lines=[line(duration_days=duration_days, renewals=renewals)],
            now=NOW,
        )
    assert "« paracétamol »" in caught.value.message_fr


@pytest.mark.parametrize(("duration_days", "renewals"), [(365, 0), (30, 11), (90, 3), (28, 0)])
def test_twelve_months_is_the_limit(duration_days: int, renewals: int) -> None:
    prescribe.build(
        summary(), practitioner(), new_lines=[line(duration_days=duration_days, renewals=renewals)], now=NOW
    )


@pytest.mark.parametrize(
    "rpps", ["", "1234567890", "123456789012", "1010123456a", " 10101234567", "١٠١٠١٢٣٤٥٦٧"]
)
def test_prescriber_without_valid_rpps_is_refused(rpps: str) -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        prescribe.build(summary(), practitioner(rpps=rpps), new_lines=[line()], now=NOW)
    assert "RPPS" in caught.value.message_fr


@pytest.mark.parametrize(
    "spec",
    [
        line("Arrêt de travail", strength="", form="", posology="15 jours"),
        line("avis d'arrêt maladie", strength="", form=""),
        line("repos", form="cerfa 10170", strength=""),
    ],
)
def test_sick_leave_notices_are_refused(spec: prescribe.PrescriptionLine) -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        prescribe.build(summary(), practitioner(), new_lines=[spec], now=NOW)
    assert "arrêt de travail" in caught.value.message_fr


def test_empty_prescription_is_refused() -> None:
    with pytest.raises(PrescriptionRefused):
        prescribe.build(summary(), practitioner(), now=NOW)


def test_all_refusal_reasons_are_given_at_once_and_confirmation_cannot_override() -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        prescribe.build(
            summary(),
            practitioner(rpps=""),
            new_lines=[line("morphine"), line(duration_days=400)],
            now=NOW,
        )
    message = caught.value.message_fr
    assert "RPPS" in message and "morphine" in message and "12 mois" in message
    assert caught.value.exit_code == 12
    # There is no confirm parameter on build(): a refusal stops before any plan exists.


# --- warnings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allergy", "dci", "expected"),
    [
        ("Amoxicilline", "amoxicilline", "contient cette substance"),
        ("AMOXICILLINE", "Amoxicilline + acide clavulanique", "contient cette substance"),
        ("Pénicillines", "amoxicilline", "classe des pénicillines"),
        ("penicilline", "Amoxicilline/Acide clavulanique", "classe des pénicillines"),
        ("Allergie aux bêta-lactamines (urticaire)", "céfuroxime", "classe des"),
        ("Aspirine", "ibuprofène", "classe des AINS"),
        ("AINS", "kétoprofène", "classe des AINS"),
        ("Sulfamides", "sulfaméthoxazole + triméthoprime", "classe des sulfamides"),
        ("Ibuprofène (œdème de Quincke)", "ibuprofène", "contient cette substance"),
        ("Amoxicillin", "amoxicilline", "contient cette substance"),
        ("Penicillins", "amoxicilline", "classe des pénicillines"),
    ],
)
def test_new_line_matching_an_allergy_needs_confirmation(allergy: str, dci: str, expected: str) -> None:
    s = summary(allergies=[_allergy(allergy)])
    plan = prescribe.build(s, practitioner(), new_lines=[line(dci)], now=NOW)
    assert plan.needs_confirmation
    (warning,) = plan.warnings
    assert f"« {allergy} »" in warning and f"« {dci} »" in warning and expected in warning
    with pytest.raises(ConfirmationRequired) as caught:
        prescribe.check_confirmed(plan, confirm=False)
    assert dci in caught.value.message_fr and allergy in caught.value.message_fr
    assert prescribe.check_confirmed(plan, confirm=True) is plan.prescription


@pytest.mark.parametrize(("allergy", "dci"), [("Pénicillines", "paracétamol"), ("Iode", "lévothyroxine"),
                                              ("Arachide", "amoxicilline"), ("Codéine", "paracétamol")])
def test_unrelated_allergy_does_not_warn(allergy: str, dci: str) -> None:
    plan = prescribe.build(summary(allergies=[_allergy(allergy)]), practitioner(), new_lines=[line(dci)], now=NOW)
    assert plan.warnings == ()
    assert prescribe.check_confirmed(plan, confirm=False) is plan.prescription


def test_renewals_are_not_rechecked_against_allergies() -> None:
    s = summary(treatments=[treatment("t-a", "amoxicilline")], allergies=[_allergy("Pénicillines")])
    assert prescribe.build(s, practitioner(), renew="all", now=NOW).warnings == ()


def test_child_without_recent_weight_needs_confirmation() -> None:
    kid = child()
    stale = summary(kid, measurements=[weight(20, TODAY - dt.timedelta(days=400), kid.id)])
    plan = prescribe.build(stale, practitioner(), new_lines=[line()], now=NOW)
    (warning,) = plan.warnings
    assert "Enfant de 7 ans" in warning and "dernier poids : 20 kg le" in warning
    none = prescribe.build(summary(kid), practitioner(), new_lines=[line()], now=NOW)
    assert "aucun poids enregistré" in none.warnings[0]


def test_child_with_recent_weight_prints_it() -> None:
    kid = child()
    s = summary(kid, measurements=[weight(22.5, TODAY - dt.timedelta(days=20), kid.id)])
    plan = prescribe.build(s, practitioner(), new_lines=[line()], now=NOW)
    assert plan.warnings == ()
    assert plan.prescription.weight is not None and plan.prescription.weight.value == 22.5
    form = prescribe.printed_form(plan.prescription, snapshot_created_at=SNAPSHOT_AT)
    assert form.measure_lines == ("Poids : 22,5 kg (mesuré le 08/11/2026)",)


def test_infant_weight_must_be_a_month_old_at_most() -> None:
    baby = child(birth_date=dt.date(2025, 9, 1))
    s = summary(baby, measurements=[weight(9, TODAY - dt.timedelta(days=60), baby.id)])
    (warning,) = prescribe.build(s, practitioner(), new_lines=[line()], now=NOW).warnings
    assert "Enfant de 14 mois" in warning


def test_weight_based_line_for_an_adult_needs_a_weight() -> None:
    plan = prescribe.build(summary(), practitioner(), new_lines=[line(posology="15 mg/kg toutes les 6 h")], now=NOW)
    (warning,) = plan.warnings
    assert "selon le poids" in warning and "« paracétamol »" in warning
    weighed = summary(measurements=[weight(70, TODAY - dt.timedelta(days=3))])
    plan = prescribe.build(weighed, practitioner(), new_lines=[line(posology="15 mg/kg toutes les 6 h")], now=NOW)
    assert plan.warnings == () and plan.prescription.weight is not None


@pytest.mark.parametrize(
    ("changes", "word"), [({"deceased": True}, "DÉCÉDÉ"), ({"active": False}, "INACTIF")]
)
def test_deceased_or_inactive_patient_needs_confirmation(changes: Mapping[str, Any], word: str) -> None:
    plan = prescribe.build(summary(patient(**changes)), practitioner(), new_lines=[line()], now=NOW)
    assert any(word in warning for warning in plan.warnings)
    with pytest.raises(ConfirmationRequired):
        prescribe.check_confirmed(plan, confirm=False)


def test_incomplete_prescriber_and_missing_route_warn() -> None:
    plan = prescribe.build(
        summary(),
        practitioner(phone="", email=""),
        new_lines=[line(form="solution injectable", route="")],
        now=NOW,
    )
    assert any("téléphone, courriel" in w for w in plan.warnings)
    assert any("Voie d'administration" in w for w in plan.warnings)


def test_no_allergy_information_is_a_note_not_a_warning() -> None:
    plan = prescribe.build(
        summary(patient(allergy_status=AllergyStatus.NO_INFORMATION)), practitioner(), new_lines=[line()], now=NOW
    )
    assert plan.warnings == ()
    assert plan.notes == ("Aucune information sur les allergies dans les données.",)


# --- parsing and text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "days"),
    [("30", 30), ("7j", 7), ("7 jours", 7), ("2 semaines", 14), ("1 mois", 30), ("3m", 90), ("1 an", 365)],
)
def test_parse_duration(text: str, days: int) -> None:
    assert prescribe.parse_duration(text) == days


@pytest.mark.parametrize("text", ["", "un mois", "1.5 mois", "7 ans et demi"])
def test_parse_duration_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="durée illisible"):
        prescribe.parse_duration(text)


def test_parse_line_spec() -> None:
    parsed = prescribe.parse_line_spec("amoxicilline|500 mg|gélule|1 gélule 3 fois par jour|7j")
    assert (parsed.dci, parsed.strength, parsed.form, parsed.posology, parsed.duration_days) == (
        "amoxicilline",
        "500 mg",
        "gélule",
        "1 gélule 3 fois par jour",
        7,
    )
    with_route = prescribe.parse_line_spec(
        "insuline|100 U/ml|solution injectable|10 U le soir|1 mois|voie sous-cutanée"
    )
    assert with_route.route == "voie sous-cutanée"
    for bad in ("amoxicilline", "|500 mg|gélule|x|7j", "a|b|c|d"):
        with pytest.raises(ValueError, match="ligne illisible"):
            prescribe.parse_line_spec(bad)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("04 72 00 11 22", "+33 4 72 00 11 22"),
        ("0472001122", "+33 4 72 00 11 22"),
        ("+33472001122", "+33 4 72 00 11 22"),
        ("0033 6 12 34 56 78", "+33 6 12 34 56 78"),
        ("+41 22 123 45 67", "+41 22 123 45 67"),
    ],
)
def test_phone_in_plus_33_form(raw: str, shown: str) -> None:
    assert prescribe.format_phone(raw) == shown


def test_address_without_country_prints_france() -> None:
    from dataclasses import replace

    doctor = practitioner()
    doctor = replace(doctor, address=replace(doctor.address, country=""))
    plan = prescribe.build(summary(), doctor, new_lines=[line()], now=NOW)
    form = prescribe.printed_form(plan.prescription, snapshot_created_at=SNAPSHOT_AT)
    assert "France" in form.contact_lines


def test_duration_text() -> None:
    assert [prescribe.duration_text(d) for d in (1, 5, 7, 14, 28, 30, 90, 365)] == [
        "1 jour", "5 jours", "1 semaine", "2 semaines", "4 semaines", "1 mois", "3 mois", "12 mois",
    ]


def test_preview_shows_both_zones_and_the_snapshot() -> None:
    plan = prescribe.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
    text = prescribe.preview_text(plan.prescription, snapshot_created_at=SNAPSHOT_AT)
    top = text.index(prescribe.ALD_HEADING)
    bottom = text.index(prescribe.OTHER_HEADING)
    assert top < text.index("1. metformine") < text.index("2. insuline") < bottom
    assert bottom < text.index("3. lévothyroxine") < text.index("4. paracétamol")
    assert "instantané du 27/11/2026 à 02:15" in text
    assert "logiciel de prescription était indisponible" in text
    assert "indisponible" not in prescribe.preview_text(plan.prescription, footer=False)


# --- journal --------------------------------------------------------------------------------------


class FakeJournal:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, **entry: Any) -> None:
        self.entries.append(entry)


def test_record_issued_seals_patient_details() -> None:
    journal = FakeJournal()
    plan = prescribe.build(ald_summary(), practitioner(), renew="all", now=NOW)
    document = b"%PDF-1.7 fake"
    digest = prescribe.record_issued(journal, plan.prescription, document, user="dr.lefevre", snapshot_seq=42)
    assert digest == hashlib.sha256(document).hexdigest()
    (entry,) = journal.entries
    assert entry["action"] == "print_prescription"
    assert entry["user"] == "dr.lefevre" and entry["patient_id"] == "pat-1" and entry["snapshot_seq"] == 42
    details = entry["details"]
    assert details["pdf_sha256"] == digest
    assert details["prescription_id"] == plan.prescription.id and details["line_count"] == 3
    clear = repr(details)
    assert "Diaye" not in clear and "metformine" not in clear  # patient details only in the sealed part
    sealed = journal_module.read_prescription_payload(entry["sealed"])
    assert sealed["patient"]["birth_name"] == "N'Diaye"
    assert sealed["pdf_sha256"] == digest and sealed["bizone"] is True
    assert [line["dci"] for line in sealed["lines"]] == ["metformine", "lévothyroxine sodique", "insuline glargine"]


def test_record_drill_is_marked() -> None:
    journal = FakeJournal()
    plan = prescribe.build(summary(), practitioner(), new_lines=[line()], now=NOW)
    prescribe.record_issued(journal, plan.prescription, b"x", user="u", snapshot_seq=None, drill=True)
    assert journal.entries[0]["action"] == "drill_prescription"


def test_record_issued_into_a_real_journal(tmp_path: Path) -> None:
    import nacl.public

    key = nacl.public.PrivateKey.generate()
    journal = journal_module.Journal(tmp_path, key.public_key)
    plan = prescribe.build(ald_summary(), practitioner(), renew="all", now=NOW)
    prescribe.record_issued(journal, plan.prescription, b"%PDF", user="dr.lefevre", snapshot_seq=7)
    (entry,) = [e for e in journal.entries() if e.action == "print_prescription"]
    payload = journal_module.read_prescription_payload(entry.open_sealed(key))
    assert payload["prescription_id"] == plan.prescription.id


def test_issue_journals_before_handing_out_and_not_when_unconfirmed() -> None:
    journal = FakeJournal()
    risky = prescribe.build(
        summary(allergies=[_allergy("Pénicillines")]), practitioner(), new_lines=[line("amoxicilline")], now=NOW
    )
    with pytest.raises(ConfirmationRequired):
        prescribe.issue(
            risky, confirm=False, journal=journal, user="u", snapshot_seq=3, snapshot_created_at=SNAPSHOT_AT
        )
    assert journal.entries == []
    issued = prescribe.issue(
        risky, confirm=True, journal=journal, user="u", snapshot_seq=3, snapshot_created_at=SNAPSHOT_AT
    )
    assert issued.pdf.startswith(b"%PDF")
    assert issued.pdf_sha256 == hashlib.sha256(issued.pdf).hexdigest()
    (entry,) = journal.entries
    assert entry["details"]["pdf_sha256"] == issued.pdf_sha256 and entry["snapshot_seq"] == 3


def test_naive_now_is_french_local_time() -> None:
    plan = prescribe.build(summary(), practitioner(), new_lines=[line()], now=dt.datetime(2026, 11, 28, 23, 30))
    issued = plan.prescription.issued_at
    assert issued.utcoffset() == dt.timedelta(hours=1)
    assert prescribe.date_fr(issued) == "28/11/2026"

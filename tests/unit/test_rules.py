"""The ordonnance rules: renewals and new lines, every refusal, the tiered warnings, routes, courses, the journal.

The cases at the top of issue 9 run against the real BDPM subset in tests/data/bdpm (see its
SOURCES.md); the rest also run without a reference, where the hand-written list is the fallback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from continuity import flags
from continuity import journal as journal_module
from continuity.drugs import bdpm, reference
from continuity.errors import ConfirmationRequired, NotAllowed, NotFound, PrescriptionRefused
from continuity.model import Allergy, AllergyStatus, IdentityStatus, PrescriptionLine, Treatment
from continuity.prescribing import issuing, printed, rules
from continuity.prescribing.rules import REMARK, Danger, Renewal
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

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "bdpm"


@pytest.fixture(scope="module")
def drugs() -> reference.DrugReference:
    return reference.in_memory(bdpm.read(FIXTURE))


def _allergy(substance: str) -> Allergy:
    return Allergy(id=f"a-{substance}", patient_id="pat-1", substance=substance)


def resolved(drugs: reference.DrugReference, item: Treatment) -> Treatment:
    """A treatment as the publisher stores it: resolved against the reference."""
    query = reference.DrugQuery(item.dci, item.strength, item.form, item.brand, item.codes)
    return dataclasses.replace(item, drug=drugs.resolve(query))


def codes(plan: rules.PrescriptionPlan) -> list[str]:
    return [w.code for w in plan.warnings]


# --- the cases of issue 9 -------------------------------------------------------------------------


def test_a_penicillin_allergic_patients_amoxicillin_renewal_warns(drugs: reference.DrugReference) -> None:
    ongoing = resolved(drugs, treatment("t-amox", "CLAMOXYL 1 g, comprimé dispersible", strength="", form=""))
    s = summary(treatments=[ongoing], allergies=[_allergy("Pénicillines")])
    plan = rules.build(s, practitioner(), renew="all", now=NOW, drugs=drugs)
    (danger,) = plan.dangers
    assert danger.code == Danger.ALLERGY and danger.line == 0
    assert "classe des pénicillines (amoxicilline)" in danger.text
    # Without the reference the DCI text still matches.
    plain = summary(treatments=[treatment("t-a", "amoxicilline")], allergies=[_allergy("Pénicillines")])
    assert codes(rules.build(plain, practitioner(), renew="all", now=NOW)) == [Danger.ALLERGY]


def test_an_allergy_written_as_a_brand_matches_through_the_reference(drugs: reference.DrugReference) -> None:
    s = summary(allergies=[_allergy("Augmentin")])
    plan = rules.build(s, practitioner(), new_lines=[line("amoxicilline", strength="500 mg")], now=NOW, drugs=drugs)
    assert codes(plan) == [Danger.ALLERGY] and "contient cette substance (amoxicilline)" in plan.dangers[0].text


@pytest.mark.parametrize("brand", ["OXYCONTIN LP 20 mg", "SKENAN LP 30 mg", "DUROGESIC 25 microgrammes/heure"])
def test_narcotic_brands_are_refused_by_any_name(drugs: reference.DrugReference, brand: str) -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(summary(), practitioner(), new_lines=[line(brand, strength="", form="")], now=NOW, drugs=drugs)
    assert "ORDONNANCE SÉCURISÉE" in caught.value.message_fr and brand in caught.value.message_fr
    ongoing = resolved(drugs, treatment("t-n", brand, strength="", form=""))
    assert ongoing.drug is not None and ongoing.drug.secure_paper
    with pytest.raises(PrescriptionRefused):
        rules.build(summary(treatments=[ongoing]), practitioner(), renew=["t-n"], now=NOW, drugs=drugs)


def test_renew_all_leaves_narcotics_out_naming_each_and_prints_the_rest(drugs: reference.DrugReference) -> None:
    items = [
        resolved(drugs, treatment("t-met", "metformine", form="comprimé pelliculé")),
        resolved(drugs, treatment("t-sk", "SKENAN LP 30 mg", strength="", form="")),
        resolved(drugs, treatment("t-du", "DUROGESIC 25 microgrammes/heure", strength="", form="")),
    ]
    plan = rules.build(summary(treatments=items), practitioner(), renew="all", now=NOW, drugs=drugs)
    assert [line.source_treatment_id for line in plan.prescription.lines] == ["t-met"]
    assert [(left.treatment.id, left.reason) for left in plan.left_out] == [
        ("t-sk", "à rédiger sur ordonnance sécurisée (stupéfiant ou assimilé)"),
        ("t-du", "à rédiger sur ordonnance sécurisée (stupéfiant ou assimilé)"),
    ]
    assert "Non repris : « SKENAN LP 30 mg » — à rédiger sur ordonnance sécurisée" in " ".join(plan.notes)


def test_hospital_only_products_are_refused(drugs: reference.DrugReference) -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(summary(), practitioner(), new_lines=[line("ADEMPAS 1,5 mg", strength="", form="")], now=NOW,
                    drugs=drugs)
    assert "HOSPITALIER" in caught.value.message_fr
    ongoing = resolved(drugs, treatment("t-ad", "ADEMPAS 1,5 mg", strength="", form=""))
    paracetamol = resolved(drugs, treatment("t-p", "paracétamol"))
    plan = rules.build(summary(treatments=[ongoing, paracetamol]), practitioner(), renew="all", now=NOW,
                       drugs=drugs)
    assert [left.treatment.id for left in plan.left_out] == ["t-ad"]


def _course(started_days_ago: int, days: int = 3) -> Treatment:
    return treatment("t-abx", "amoxicilline", strength="250 mg/5 mL", form="poudre pour suspension buvable",
                     posology=f"1 dose-poids matin et soir pendant {days} jours",
                     start_date=TODAY - dt.timedelta(days=started_days_ago), chronic=False)


def test_a_childs_acute_course_is_not_renewed_by_all_and_never_past_its_end() -> None:
    kid = child()
    s = summary(kid, treatments=[_course(2), treatment("t-p", "paracétamol")],
                measurements=[weight(22, TODAY - dt.timedelta(days=5), kid.id)])
    plan = rules.build(s, practitioner(), renew="all", now=NOW)
    assert [line.source_treatment_id for line in plan.prescription.lines] == ["t-p"]
    assert "courte durée" in plan.left_out[0].reason
    # Explicitly: only what remains (3-day course started 2 days ago: 1 day).
    explicit = rules.build(s, practitioner(), renew=["t-abx"], now=NOW)
    assert explicit.prescription.lines[0].duration_days == 1
    # "pendant 3 jours" beside "Durée : 1 jour" reads as a contradiction (render review): the line says
    # which course it continues and its last day.
    assert explicit.prescription.lines[0].posology == (
        "1 dose-poids matin et soir pendant 3 jours (traitement commencé le 26/11/2026, à poursuivre jusqu'au "
        "28/11/2026 inclus)")
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(s, practitioner(), renew=[Renewal("t-abx", duration_days=30)], now=NOW)
    assert "il en reste 1 jour" in caught.value.message_fr


def test_an_ended_course_cannot_be_renewed() -> None:
    s = summary(treatments=[_course(10)])
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(s, practitioner(), renew=["t-abx"], now=NOW)
    assert "rien à renouveler" in caught.value.message_fr


def test_an_acute_course_without_start_date_is_refused_not_guessed() -> None:
    s = summary(treatments=[dataclasses.replace(_course(1), start_date=None)])
    with pytest.raises(PrescriptionRefused, match="sans date de début"):
        rules.build(s, practitioner(), renew=["t-abx"], now=NOW)


def test_a_posology_that_contradicts_the_duration_is_refused() -> None:
    bad = line("amoxicilline", posology="1 gélule 3 fois par jour pendant 6 jours", duration_days=30)
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(summary(), practitioner(), new_lines=[bad], now=NOW)
    assert "pendant 6 jours" in caught.value.message_fr and "1 mois" in caught.value.message_fr
    rules.build(summary(), practitioner(), new_lines=[dataclasses.replace(bad, duration_days=6)], now=NOW)


@pytest.mark.parametrize(("dci", "strength", "form", "route"), [
    ("clotrimazole", "500 mg", "comprimé vaginal", "vaginale"),
    ("tiotropium", "18 microgrammes", "poudre pour inhalation en gélule", "inhalée"),
    ("aciclovir", "30 mg/g", "pommade ophtalmique", "ophtalmique"),
    ("DUROGESIC 25 microgrammes/heure", "", "", "transdermique"),
])
def test_routes_come_from_the_reference(drugs: reference.DrugReference, dci: str, strength: str, form: str,
                                        route: str) -> None:
    ongoing = resolved(drugs, treatment("t-r", dci, strength=strength, form=form, route=""))
    decision = rules.decide_route(ongoing.drug, ongoing.form, ongoing.route)
    assert decision.route == route


@pytest.mark.parametrize(("form", "route"), [
    ("comprimé vaginal", "vaginale"), ("poudre pour inhalation en gélule", "inhalée"),
    ("pommade ophtalmique", "ophtalmique"), ("comprimé", "orale"),
])
def test_without_reference_the_route_is_read_from_the_form_qualifiers_first(form: str, route: str) -> None:
    plan = rules.build(summary(), practitioner(), new_lines=[line("x", form=form, route="")], now=NOW)
    assert plan.prescription.lines[0].route == route
    assert printed.line_title(plan.prescription.lines[0]).endswith(f"voie {route}")


def test_free_text_line_splits_the_form_and_asks_nothing(drugs: reference.DrugReference) -> None:
    item = treatment("t-levo", "lévothyroxine sodique 75 microgrammes, comprimé", strength="", form="", route="")
    for reference_used in (None, drugs):
        ongoing = resolved(drugs, item) if reference_used else item
        plan = rules.build(summary(treatments=[ongoing]), practitioner(), renew="all", now=NOW, drugs=reference_used)
        (printed_line,) = plan.prescription.lines
        assert (printed_line.dci, printed_line.strength, printed_line.form, printed_line.route) == (
            "lévothyroxine sodique", "75 microgrammes", "comprimé", "orale")
        assert plan.warnings == ()


def test_several_routes_ask_on_that_line_only(drugs: reference.DrugReference) -> None:
    injectable = resolved(drugs, treatment("t-c", "ceftriaxone", strength="1 g",
                                           form="poudre et solvant pour solution injectable", route=""))
    other = resolved(drugs, treatment("t-m", "metformine", form="comprimé pelliculé"))
    s = summary(treatments=[injectable, other])
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(s, practitioner(), renew="all", now=NOW, drugs=drugs)
    message = caught.value.message_fr
    assert "« ceftriaxone » : voie d'administration à préciser" in message and "metformine" not in message
    plan = rules.build(s, practitioner(), renew=[Renewal("t-c", route="intramusculaire"), "t-m"], now=NOW, drugs=drugs)
    assert [line.route for line in plan.prescription.lines] == ["intramusculaire", "orale"]
    with pytest.raises(PrescriptionRefused, match="n'est pas celle de ce médicament"):
        rules.build(s, practitioner(), renew=[Renewal("t-c", route="orale")], now=NOW, drugs=drugs)


def test_an_open_form_without_reference_asks_for_the_route() -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(summary(), practitioner(), new_lines=[line("x", form="crème", route="")], now=NOW)
    assert "voie d'administration à préciser" in caught.value.message_fr


def test_one_confirmation_no_longer_covers_an_allergy_and_a_remark() -> None:
    s = summary(allergies=[_allergy("Pénicillines")])
    plan = rules.build(s, practitioner(), new_lines=[line("amoxicilline", strength="")], now=NOW)
    assert codes(plan) == [Danger.ALLERGY, REMARK]  # the missing strength is a remark on that line
    with pytest.raises(ConfirmationRequired) as caught:
        rules.check_acknowledged(plan, {REMARK})  # a bare --confirm
    assert "[allergy]" in caught.value.message_fr and "--confirm allergy" in caught.value.message_fr
    with pytest.raises(ConfirmationRequired):
        rules.check_acknowledged(plan, {Danger.ALLERGY})
    assert rules.check_acknowledged(plan, {Danger.ALLERGY, REMARK}) is plan.prescription


def test_an_unidentified_substance_is_a_danger_and_never_ticked(drugs: reference.DrugReference) -> None:
    unknown = resolved(drugs, treatment("t-u", "préparation magistrale du Dr X", strength="", form="gélule"))
    known = resolved(drugs, treatment("t-m", "metformine", form="comprimé pelliculé"))
    s = summary(treatments=[unknown, known])
    plan = rules.build(s, practitioner(), renew="all", now=NOW, drugs=drugs)
    assert [line.source_treatment_id for line in plan.prescription.lines] == ["t-m"]
    assert "non identifiée" in plan.left_out[0].reason
    explicit = rules.build(s, practitioner(), renew=["t-u"], now=NOW, drugs=drugs)
    assert Danger.UNIDENTIFIED in codes(explicit)


def test_an_unidentified_new_line_still_meets_the_fallback_list(drugs: reference.DrugReference) -> None:
    with pytest.raises(PrescriptionRefused, match="liste intégrée"):
        rules.build(summary(), practitioner(), new_lines=[line("morphine en sirop maison", strength="")], now=NOW,
                    drugs=drugs)


def test_the_reference_limit_shortens_a_default_duration_and_refuses_a_chosen_one(
    drugs: reference.DrugReference,
) -> None:
    hypnotic = resolved(drugs, treatment("t-h", "NOCTAMIDE 2 mg", strength="", form=""))
    plan = rules.build(summary(treatments=[hypnotic]), practitioner(), renew="all", now=NOW, drugs=drugs)
    assert plan.prescription.lines[0].duration_days == 28
    assert any("ramenée de 1 mois à 4 semaines" in note for note in plan.notes)
    with pytest.raises(PrescriptionRefused, match="limite de 4 semaines"):
        rules.build(summary(treatments=[hypnotic]), practitioner(), renew=[Renewal("t-h", duration_days=60)],
                    now=NOW, drugs=drugs)


def test_without_reference_the_output_says_so() -> None:
    plan = rules.build(summary(), practitioner(), new_lines=[line()], now=NOW)
    assert any("liste intégrée" in note for note in plan.notes)


def test_identity_tiers_homonym_is_a_danger_provisional_a_note() -> None:
    plan = rules.build(summary(), practitioner(), new_lines=[line()], now=NOW, homonyms=2)
    assert codes(plan) == [Danger.IDENTITY] and "2 autres patients portent" in plan.dangers[0].text
    provisional = summary(patient(identity_status=IdentityStatus.PROV))
    plan = rules.build(provisional, practitioner(), new_lines=[line()], now=NOW)
    assert plan.warnings == () and any("Identité provisoire" in note for note in plan.notes)


def test_an_identity_the_export_doubts_is_an_identity_danger() -> None:
    doubted = summary(patient(flags=(flags.IDENTITY_DOUBT,)))
    plan = rules.build(doubted, practitioner(), new_lines=[line()], now=NOW)
    assert codes(plan) == [Danger.IDENTITY] and "IDENTITÉ À VÉRIFIER" in plan.dangers[0].text


@pytest.mark.parametrize(("changes", "word"), [({"deceased": True}, "DÉCÉDÉ"), ({"active": False}, "INACTIF")])
def test_deceased_or_inactive_patient_is_a_deceased_danger(changes: Mapping[str, Any], word: str) -> None:
    plan = rules.build(summary(patient(**changes)), practitioner(), new_lines=[line()], now=NOW)
    assert codes(plan) == [Danger.DECEASED] and word in plan.dangers[0].text


def test_child_without_recent_weight_is_a_child_weight_danger() -> None:
    kid = child()
    stale = summary(kid, measurements=[weight(20, TODAY - dt.timedelta(days=400), kid.id)])
    plan = rules.build(stale, practitioner(), new_lines=[line()], now=NOW)
    (danger,) = plan.dangers
    assert danger.code == Danger.CHILD_WEIGHT
    assert "Enfant de 7 ans" in danger.text and "dernier poids : 20 kg le" in danger.text
    none = rules.build(summary(kid), practitioner(), new_lines=[line()], now=NOW)
    assert "aucun poids enregistré" in none.dangers[0].text


def test_child_with_recent_weight_prints_it() -> None:
    kid = child()
    s = summary(kid, measurements=[weight(22.5, TODAY - dt.timedelta(days=20), kid.id)])
    plan = rules.build(s, practitioner(), new_lines=[line()], now=NOW)
    assert plan.warnings == ()
    form = printed.printed_form(plan.prescription, snapshot_created_at=SNAPSHOT_AT)
    assert form.measure_lines == ("Poids : 22,5 kg (mesuré le 08/11/2026)",)
    assert form.patient_lines == ("Sexe : Masculin", "Né le 02/06/2019 (7 ans)")


def test_infant_weight_must_be_a_month_old_at_most() -> None:
    baby = child(birth_date=dt.date(2025, 9, 1))
    s = summary(baby, measurements=[weight(9, TODAY - dt.timedelta(days=60), baby.id)])
    (danger,) = rules.build(s, practitioner(), new_lines=[line()], now=NOW).dangers
    assert "Enfant de 14 mois" in danger.text


def test_weight_based_line_for_an_adult_is_a_weight_danger() -> None:
    plan = rules.build(summary(), practitioner(), new_lines=[line(posology="15 mg/kg toutes les 6 h")], now=NOW)
    assert codes(plan) == [Danger.WEIGHT]
    weighed = summary(measurements=[weight(70, TODAY - dt.timedelta(days=3))])
    plan = rules.build(weighed, practitioner(), new_lines=[line(posology="15 mg/kg toutes les 6 h")], now=NOW)
    assert plan.warnings == () and plan.prescription.weight is not None


def test_incomplete_prescriber_is_a_remark() -> None:
    plan = rules.build(summary(), practitioner(phone="", email=""), new_lines=[line()], now=NOW)
    assert codes(plan) == [REMARK] and "téléphone, courriel" in plan.remarks[0].text


def test_no_allergy_information_is_a_note() -> None:
    plan = rules.build(summary(patient(allergy_status=AllergyStatus.NO_INFORMATION)), practitioner(),
                       new_lines=[line()], now=NOW)
    assert plan.warnings == () and "Aucune information sur les allergies dans les données." in plan.notes


# --- refusals kept from before --------------------------------------------------------------------


@pytest.mark.parametrize("dci", [
    "morphine", "Sulfate de MORPHINE", "oxycodone", "oxycodone/naloxone", "fentanyl", "méthadone", "METHADONE",
    "méthylphénidate", "kétamine", "buprénorphine", "buprénorphine + naloxone", "clonazépam", "zolpidem",
    "tianeptine", "tramadol", "paracétamol + tramadol", "paracétamol/codéine", "dihydrocodéine", "tapentadol",
    "flunitrazépam", "oxybate de sodium", "Morphine sulfate", "codeine phosphate",
])
def test_without_reference_the_list_refuses_secure_paper_substances(dci: str) -> None:
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(summary(), practitioner(), new_lines=[line(dci)], now=NOW)
    assert "ORDONNANCE SÉCURISÉE" in caught.value.message_fr and dci in caught.value.message_fr


@pytest.mark.parametrize("dci", ["paracétamol", "nalbuphine", "oxybutynine", "hydroxyzine", "clobazam", "zopiclone"])
def test_lookalike_substances_are_not_refused(dci: str) -> None:
    rules.build(summary(), practitioner(), new_lines=[line(dci)], now=NOW)


def test_tramadol_and_codeine_are_secure_paper_even_in_an_older_reference(drugs: reference.DrugReference) -> None:
    for brand in ("TOPALGIC 50 mg", "CODOLIPRANE 500 mg/30 mg, comprimé"):
        with pytest.raises(PrescriptionRefused, match="ORDONNANCE SÉCURISÉE"):
            rules.build(summary(), practitioner(), new_lines=[line(brand, strength="", form="")], now=NOW, drugs=drugs)


def test_treatment_flagged_narcotic_by_the_platform_is_left_out_and_refused_explicitly() -> None:
    s = summary(treatments=[treatment("t-x", "antalgique palier 3", narcotic=True), treatment("t-p", "paracétamol")])
    plan = rules.build(s, practitioner(), renew="all", now=NOW)
    assert [left.treatment.id for left in plan.left_out] == ["t-x"]
    with pytest.raises(PrescriptionRefused, match="antalgique palier 3"):
        rules.build(s, practitioner(), renew=["t-x"], now=NOW)


@pytest.mark.parametrize(("duration_days", "renewals"), [(366, 0), (400, 0), (180, 2), (120, 3), (30, 12), (0, 0)])
def test_durations_over_twelve_months_are_refused(duration_days: int, renewals: int) -> None:
    with pytest.raises(PrescriptionRefused, match="« paracétamol »"):
        rules.build(summary(), practitioner(), new_lines=[line(duration_days=duration_days, renewals=renewals)],
                    now=NOW)


@pytest.mark.parametrize("rpps", ["", "1234567890", "123456789012", "1010123456a", " 10101234567", "١٠١٠١٢٣٤٥٦٧"])
def test_prescriber_without_valid_rpps_is_refused(rpps: str) -> None:
    with pytest.raises(PrescriptionRefused, match="RPPS"):
        rules.build(summary(), practitioner(rpps=rpps), new_lines=[line()], now=NOW)


@pytest.mark.parametrize("spec", [
    line("Arrêt de travail", strength="", form="", posology="15 jours"),
    line("avis d'arrêt maladie", strength="", form=""),
    line("repos", form="cerfa 10170", strength=""),
])
def test_sick_leave_notices_are_refused(spec: PrescriptionLine) -> None:
    with pytest.raises(PrescriptionRefused, match="arrêt de travail"):
        rules.build(summary(), practitioner(), new_lines=[spec], now=NOW)


def test_too_many_lines_are_refused_clearly() -> None:
    many = [treatment(f"t-{i}", "paracétamol") for i in range(5000)]
    with pytest.raises(PrescriptionRefused) as caught:
        rules.build(summary(treatments=many), practitioner(), renew="all", now=NOW)
    assert "5000 lignes : une ordonnance en compte au plus 30" in caught.value.message_fr
    plan = rules.build(summary(treatments=many[:30]), practitioner(), renew="all", now=NOW)
    assert len(plan.prescription.lines) == 30


def test_empty_and_unknown() -> None:
    with pytest.raises(PrescriptionRefused):
        rules.build(summary(), practitioner(), now=NOW)
    with pytest.raises(NotFound, match="nope"):
        rules.build(ald_summary(), practitioner(), renew=["nope"], now=NOW)


def test_renew_all_keeps_details_and_bizone() -> None:
    plan = rules.build(ald_summary(), practitioner(), renew="all", now=NOW)
    lines = plan.prescription.lines
    assert [line.source_treatment_id for line in lines] == ["t-met", "t-levo", "t-ins"]
    assert {line.duration_days for line in lines} == {30}
    assert (lines[1].dci, lines[1].route, lines[1].non_substitution) == ("lévothyroxine sodique", "orale", "MTE")
    assert plan.prescription.is_bizone and plan.warnings == ()


# --- parsing and text -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "days"), [("30", 30), ("7j", 7), ("2 semaines", 14), ("1 mois", 30),
                                             ("3m", 90), ("1 an", 365)])
def test_parse_duration(value: str, days: int) -> None:
    assert rules.parse_duration(value) == days


@pytest.mark.parametrize("value", ["", "un mois", "1.5 mois", "7 ans et demi"])
def test_parse_duration_refuses_garbage(value: str) -> None:
    with pytest.raises(ValueError, match="durée illisible"):
        rules.parse_duration(value)


def test_parse_line_spec_with_route_and_ald() -> None:
    parsed = rules.parse_line_spec("amoxicilline|500 mg|gélule|1 gélule 3 fois par jour|7j")
    assert (parsed.dci, parsed.strength, parsed.duration_days, parsed.ald_related) == (
        "amoxicilline", "500 mg", 7, False)
    full = rules.parse_line_spec("insuline|100 U/ml|solution injectable|10 U le soir|1 mois|voie sous-cutanée|ald")
    assert (full.route, full.ald_related) == ("voie sous-cutanée", True)
    assert rules.parse_line_spec("metformine|1000 mg|comprimé|1 cp matin et soir|1 mois|ALD").ald_related
    for bad in ("amoxicilline", "|500 mg|gélule|x|7j", "a|b|c|d", "a|b|c|d|7j|orale|cutanée"):
        with pytest.raises(ValueError, match="ligne illisible"):
            rules.parse_line_spec(bad)


def test_posology_days() -> None:
    assert rules.posology_days("1 cp 3 fois par jour pendant 6 jours") == 6
    assert rules.posology_days("pendant 2 semaines") == 14
    assert rules.posology_days("1 comprimé le soir") is None


# --- who signs ------------------------------------------------------------------------------------


def test_reception_can_never_sign() -> None:
    with pytest.raises(NotAllowed) as caught:
        issuing.signing_practitioner(issuing.Signer("accueil", False), [practitioner()])
    assert "Seul un médecin prescripteur connecté" in caught.value.message_fr and caught.value.exit_code == 40


def test_the_logged_in_prescriber_signs_not_the_patients_gp() -> None:
    me = practitioner(id="pr-me", rpps="10009999999", family_name="Martin")
    gp = practitioner()
    choice = issuing.signing_practitioner(issuing.Signer("dr.martin", True, "10009999999"), [gp, me])
    assert choice.practitioner == me and choice.chosen_by == ""
    other = issuing.signing_practitioner(issuing.Signer("dr.martin", True, "10009999999"), [gp, me],
                                         chosen=gp.rpps)
    assert other.practitioner == gp and other.chosen_by == "dr.martin"
    with pytest.raises(NotFound) as caught:
        issuing.signing_practitioner(issuing.Signer("dr.x", True, "10001111111"), [gp, me])
    assert "ne correspond à aucun praticien" in caught.value.message_fr


# --- issuing and the journal ----------------------------------------------------------------------


class ListJournal:
    """Records what would be appended (the real journal is exercised in the next tests)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def append(self, **entry: Any) -> None:
        self.entries.append(entry)


def test_issue_journals_before_handing_out_and_not_when_unacknowledged() -> None:
    journal = ListJournal()
    risky = rules.build(summary(allergies=[_allergy("Pénicillines")]), practitioner(),
                        new_lines=[line("amoxicilline")], now=NOW)
    with pytest.raises(ConfirmationRequired):
        issuing.issue(risky, acknowledged={REMARK}, journal=journal, user="u", snapshot_seq=3,
                      snapshot_created_at=SNAPSHOT_AT)
    assert journal.entries == []
    issued = issuing.issue(risky, acknowledged={Danger.ALLERGY}, journal=journal, user="u", snapshot_seq=3,
                           snapshot_created_at=SNAPSHOT_AT)
    assert issued.pdf.startswith(b"%PDF") and issued.pdf_sha256 == hashlib.sha256(issued.pdf).hexdigest()
    (entry,) = journal.entries
    details = entry["details"]
    assert details["pdf_sha256"] == issued.pdf_sha256 and details["dangers_acknowledged"] == ["allergy"]
    clear = repr(details)
    assert "Diaye" not in clear and "amoxicilline" not in clear  # patient details only in the sealed part


def test_issued_into_a_real_journal_is_sealed(tmp_path: Path) -> None:
    import nacl.public

    key = nacl.public.PrivateKey.generate()
    journal = journal_module.Journal(tmp_path, key.public_key)
    plan = rules.build(ald_summary(), practitioner(), renew="all", now=NOW)
    issuing.record_issued(journal, plan.prescription, b"%PDF", user="dr.lefevre", snapshot_seq=7, drill=True)
    (entry,) = [e for e in journal.entries() if e.action == "drill_prescription"]
    payload = journal_module.read_prescription_payload(entry.open_sealed(key))
    assert payload["prescription_id"] == plan.prescription.id and payload["patient"]["birth_name"] == "N'Diaye"


def test_naive_now_is_french_local_time() -> None:
    plan = rules.build(summary(), practitioner(), new_lines=[line()], now=dt.datetime(2026, 11, 28, 23, 30))
    assert plan.prescription.issued_at.utcoffset() == dt.timedelta(hours=1)
    assert printed.date_fr(plan.prescription.issued_at) == "28/11/2026"


def test_a_course_the_source_marks_acute_or_ended_is_not_in_all() -> None:
    acute = treatment("t-ac", "prednisolone", course="acute", start_date=TODAY - dt.timedelta(days=1),
                      end_date=TODAY + dt.timedelta(days=4))
    ended = treatment("t-end", "amlodipine", end_date=TODAY - dt.timedelta(days=3))
    s = summary(treatments=[acute, ended, treatment("t-p", "paracétamol")])
    plan = rules.build(s, practitioner(), renew="all", now=NOW)
    assert [line.source_treatment_id for line in plan.prescription.lines] == ["t-p"]
    reasons = {left.treatment.id: left.reason for left in plan.left_out}
    assert "selon l'export" in reasons["t-ac"] and "terminé le 25/11/2026" in reasons["t-end"]
    explicit = rules.build(s, practitioner(), renew=["t-ac"], now=NOW)
    # What remains until the source's end date, that day included (a FHIR Period's end is inclusive).
    assert explicit.prescription.lines[0].duration_days == 5


def test_a_treatment_the_export_left_uncertain_is_never_ticked_by_default() -> None:
    unknown = treatment("t-u", "amlodipine", flags=("status-unknown",))
    plan = rules.build(summary(treatments=[unknown, treatment("t-p", "paracétamol")]), practitioner(),
                       renew="all", now=NOW)
    assert [line.source_treatment_id for line in plan.prescription.lines] == ["t-p"]
    assert "statut inconnu" in plan.left_out[0].reason


def test_a_flagged_allergy_still_warns_and_says_so() -> None:
    flagged = dataclasses.replace(_allergy("Pénicillines"), flags=("resolved",))
    plan = rules.build(summary(allergies=[flagged]), practitioner(), new_lines=[line("amoxicilline")], now=NOW)
    assert codes(plan) == [Danger.ALLERGY] and "(résolue)" in plan.dangers[0].text

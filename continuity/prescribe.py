"""Build an emergency Prescription from a patient summary, with the safety checks, and its printed text.

The flow: `build()` turns the treatments to renew and the new lines into a `PrescriptionPlan`,
raising `PrescriptionRefused` for what the appliance must never print (secure-paper drugs, more than
12 months, no RPPS, sick-leave notices) and collecting the French warnings that need an explicit
confirmation (allergy match, child without a recent weight, deceased or inactive patient).
`check_confirmed()` enforces the confirmation. `printed_form()` computes every string the paper form
shows; the PDF templates and `preview_text()` both use it, so the preview is exactly what prints.
`record_issued()` is the single place an issued prescription is written to the journal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from continuity import display, search
from continuity.errors import ConfirmationRequired, NotFound, PrescriptionRefused
from continuity.model import (
    Measurement,
    NonSubstitutionReason,
    Patient,
    PatientSummary,
    Practitioner,
    Prescription,
    PrescriptionLine,
    Treatment,
)

# --- limits -------------------------------------------------------------------------------------

DEFAULT_DURATION_DAYS = 30  # "1 mois": the usual renewal while the platform is down
# R.5132-21 CSP: a List I / II prescription covers at most 12 months, renewals included. We count a
# month as 30 days for durations but accept a full calendar year (365 days) as "12 mois".
MAX_TOTAL_DAYS = 365
ADULT_AGE = 18  # paediatric patients: their dose depends on the weight (DOMAIN.md, R.5132-3)
# How old a child's weight may be: infants gain weight fast, older children more slowly. These are
# practice choices (no text fixes them), kept deliberately short.
INFANT_AGE = 2
INFANT_WEIGHT_MAX_DAYS = 31
CHILD_WEIGHT_MAX_DAYS = 183
WEIGHT_BASED_MAX_DAYS = 183  # a "mg/kg" line for anyone

PARIS = display.PRACTICE_TZ

ALD_HEADING = (
    "Prescriptions relatives au traitement de l'affection de longue durée reconnue "
    "(liste ou hors liste) (AFFECTION EXONÉRANTE)"
)
OTHER_HEADING = "Prescriptions SANS RAPPORT avec l'affection de longue durée (MALADIES INTERCURRENTES)"
DUPLICATE_MENTION = "Duplicata ne permettant pas la délivrance des médicaments"
DRILL_MENTION = "EXERCICE — NE PAS DÉLIVRER"


# --- text normalisation -------------------------------------------------------------------------

# One normalisation for names and substances: the search's (case, accents, ligatures, separators).
normalize = search.normalize


def _stem(word: str) -> str:
    # Dropped on both sides of every comparison: a plural "s" ("pénicillines" = "pénicilline") and a
    # final "e", so the English names FHIR sources often carry match too ("amoxicillin", "codeine").
    if len(word) > 3 and word.endswith("s"):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _tokens(text: str) -> tuple[str, ...]:
    return tuple(_stem(t) for t in normalize(text).split())


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """True when `needle` occurs as consecutive whole words in `haystack`."""
    n = len(needle)
    if n == 0:
        return False
    return any(tuple(haystack[i : i + n]) == tuple(needle) for i in range(len(haystack) - n + 1))


# --- secure paper (ordonnance sécurisée) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecurePaperSubstance:
    name_fr: str
    source: str
    min_strength_mg: float | None = None  # only dosages at or above this need secure paper


# Substances whose medicines must be prescribed on secure paper (R.5132-5 CSP, applied to narcotics
# by R.5132-29 and to "assimilated" List I/II drugs by ministerial arrêté or ANSM decision). A
# plain-paper appliance must refuse them (DOMAIN.md). FHIR carries no such flag, so we classify by
# substance name. Checked against the texts found on 28/11/2026 (Meddispar, ANSM letters, Ordre des
# pharmaciens); the list is deliberately conservative: refusing wrongly costs the doctor a
# handwritten secure prescription, printing wrongly produces an invalid and dangerous document.
_STUPEFIANT = (
    "stupéfiant — arrêté du 22/02/1990 fixant la liste des substances classées comme stupéfiants "
    "(annexes), décisions du DG de l'ANSM depuis 2022"
)
SECURE_PAPER_SUBSTANCES: tuple[SecurePaperSubstance, ...] = (
    # Stupéfiants (prescription max 28 days, R.5132-30; secure paper, R.5132-5).
    SecurePaperSubstance("morphine", _STUPEFIANT),
    SecurePaperSubstance("oxycodone", _STUPEFIANT),
    SecurePaperSubstance("hydromorphone", _STUPEFIANT),
    SecurePaperSubstance("fentanyl", _STUPEFIANT),
    SecurePaperSubstance("sufentanil", _STUPEFIANT),
    SecurePaperSubstance("alfentanil", _STUPEFIANT),
    SecurePaperSubstance("rémifentanil", _STUPEFIANT),
    SecurePaperSubstance("péthidine", _STUPEFIANT),
    SecurePaperSubstance("méthadone", _STUPEFIANT),
    SecurePaperSubstance("tapentadol", _STUPEFIANT),
    SecurePaperSubstance("méthylphénidate", _STUPEFIANT),
    SecurePaperSubstance("kétamine", _STUPEFIANT),
    SecurePaperSubstance("eskétamine", _STUPEFIANT),
    SecurePaperSubstance("cocaïne", _STUPEFIANT),
    SecurePaperSubstance("dexamfétamine", _STUPEFIANT),
    SecurePaperSubstance("lisdexamfétamine", _STUPEFIANT),  # unsure whether marketed in France
    SecurePaperSubstance("oxybate de sodium", _STUPEFIANT),
    SecurePaperSubstance("nabilone", _STUPEFIANT),
    SecurePaperSubstance("dronabinol", _STUPEFIANT),
    SecurePaperSubstance("opium", _STUPEFIANT + " (some low-dose opium preparations are exempted: unsure)"),
    # Assimilated: arrêté du 09/03/2012 applies the narcotics prescription rules to oral buprénorphine
    # (all dosages: we also refuse other routes, being unsure), oral flunitrazépam, oral clonazépam and
    # "certain" oral clorazépate dipotassique medicines (the 20 mg dosage, Tranxène 20 mg).
    SecurePaperSubstance("buprénorphine", "assimilé stupéfiant — arrêté du 09/03/2012"),
    SecurePaperSubstance("flunitrazépam", "assimilé stupéfiant — arrêté du 09/03/2012"),
    SecurePaperSubstance(
        "clonazépam",
        "assimilé stupéfiant — arrêtés du 24/08/2011 et du 09/03/2012 (voie orale; other routes refused too)",
    ),
    SecurePaperSubstance(
        "clorazépate dipotassique", "assimilé stupéfiant — arrêté du 09/03/2012 (20 mg)", min_strength_mg=20
    ),
    # Assimilated: arrêté du 07/01/2017 (in force 10/04/2017) for oral zolpidem: secure paper, in
    # words, no overlap (ANSM letter to professionals, Ordre des pharmaciens).
    SecurePaperSubstance("zolpidem", "assimilé stupéfiant — arrêté du 07/01/2017"),
    # Assimilated in 2012 (exact arrêté date not checked here): tianeptine (Stablon).
    SecurePaperSubstance("tianeptine", "assimilé stupéfiant — arrêté de 2012 (date non vérifiée)"),
    # ANSM decision of 26/09/2024, in force 01/03/2025 (postponed from 01/12/2024; plain paper was
    # tolerated only from 01/03 to 31/03/2025, ANSM communication of 26/02/2025): every medicine
    # containing tramadol, codéine or dihydrocodéine, alone or combined (paracétamol, ibuprofène,
    # antitussive syrups...), is "assimilé stupéfiant": secure paper or the national e-prescription
    # (QR code, which this appliance never prints), prescription limited to 12 weeks.
    SecurePaperSubstance("tramadol", "décision ANSM — ordonnance sécurisée depuis le 01/03/2025"),
    SecurePaperSubstance("codéine", "décision ANSM — ordonnance sécurisée depuis le 01/03/2025"),
    SecurePaperSubstance("dihydrocodéine", "décision ANSM — ordonnance sécurisée depuis le 01/03/2025"),
)

_STRENGTH_MG = re.compile(r"(\d+(?:[.,]\d+)?)\s*mg\b", re.IGNORECASE)


def secure_paper_substance(line: PrescriptionLine) -> SecurePaperSubstance | None:
    """The secure-paper substance this line contains, if any (DCI and brand are both checked)."""
    words = _tokens(f"{line.dci} {line.brand}")
    for substance in SECURE_PAPER_SUBSTANCES:
        if not _contains(words, _tokens(substance.name_fr)):
            continue
        if substance.min_strength_mg is not None:
            match = _STRENGTH_MG.search(line.strength)
            # Unknown strength: refuse, we cannot tell the 20 mg tablet apart.
            if match and float(match.group(1).replace(",", ".")) < substance.min_strength_mg:
                continue
        return substance
    return None


# --- allergy classes ----------------------------------------------------------------------------

# A recorded allergy to a class ("pénicillines") must also catch its members ("amoxicilline"). This
# is a small, deliberately incomplete table of the classes GPs meet daily; it only adds warnings, it
# never removes one. Keys are the French class names; the first alias is the display name.
ALLERGY_CLASSES: Mapping[tuple[str, ...], tuple[str, ...]] = {
    ("pénicillines", "pénicilline", "bêtalactamines", "bêta-lactamines", "béta-lactamines"): (
        "amoxicilline",
        "ampicilline",
        "benzylpénicilline",
        "phénoxyméthylpénicilline",
        "pénicilline",
        "oxacilline",
        "cloxacilline",
        "pivmécillinam",
        "pipéracilline",
        "ticarcilline",
        "témocilline",
    ),
    ("céphalosporines", "bêtalactamines", "bêta-lactamines", "béta-lactamines"): (
        "céfalexine",
        "céfadroxil",
        "céfaclor",
        "céfuroxime",
        "cefpodoxime",
        "céfixime",
        "ceftriaxone",
        "céfotaxime",
        "céfazoline",
        "ceftazidime",
        "céfépime",
    ),
    ("sulfamides", "sulfamides antibactériens"): (
        "sulfaméthoxazole",
        "sulfadiazine",
        "sulfasalazine",
        "cotrimoxazole",
    ),
    ("AINS", "anti-inflammatoires non stéroïdiens", "aspirine"): (
        "ibuprofène",
        "kétoprofène",
        "naproxène",
        "diclofénac",
        "acide acétylsalicylique",
        "aspirine",
        "célécoxib",
        "étoricoxib",
        "indométacine",
        "piroxicam",
        "méloxicam",
        "flurbiprofène",
        "acide méfénamique",
        "acide niflumique",
    ),
    ("macrolides",): ("azithromycine", "clarithromycine", "érythromycine", "roxithromycine", "spiramycine"),
    ("quinolones", "fluoroquinolones"): (
        "ciprofloxacine",
        "lévofloxacine",
        "ofloxacine",
        "moxifloxacine",
        "norfloxacine",
        "loméfloxacine",
    ),
    ("opiacés", "opioïdes", "morphiniques"): (
        "morphine",
        "codéine",
        "dihydrocodéine",
        "tramadol",
        "oxycodone",
        "hydromorphone",
        "fentanyl",
        "tapentadol",
        "buprénorphine",
        "méthadone",
    ),
}


def allergy_match(allergy_text: str, line: PrescriptionLine) -> str | None:
    """Why a line matches a recorded allergy, in French, or None.

    Accent- and case-insensitive, on whole words: "Pénicilline" matches "amoxicilline" through
    the class table; "Amoxicilline (urticaire)" matches "amoxicilline/acide clavulanique".
    """
    allergy = _tokens(allergy_text)
    drug = _tokens(f"{line.dci} {line.brand}")
    if not allergy or not drug:
        return None
    if _contains(drug, allergy) or _contains(allergy, _tokens(line.dci)):
        return "contient cette substance"
    for aliases, members in ALLERGY_CLASSES.items():
        if not any(_contains(allergy, _tokens(alias)) for alias in aliases):
            continue
        for member in members:
            if _contains(drug, _tokens(member)):
                return f"appartient à la classe des {aliases[0]} ({member})"
    return None


# --- sick leave ---------------------------------------------------------------------------------

_SICK_LEAVE = tuple(
    _tokens(text)
    for text in ("arrêt de travail", "arrêt maladie", "avis d'arrêt", "arrêt de travail cerfa", "cerfa")
)


def _is_sick_leave(line: PrescriptionLine) -> bool:
    words = _tokens(f"{line.dci} {line.form} {line.posology}")
    return any(_contains(words, phrase) for phrase in _SICK_LEAVE)


# --- route from form ----------------------------------------------------------------------------

# The route is a mandatory mention (R.5125-55) that free lines ("DCI|dosage|forme|...") and some
# platform exports leave out; the usual forms imply it. Anything else stays empty and is warned.
_ROUTE_BY_FORM: tuple[tuple[str, str], ...] = (
    ("comprimé", "voie orale"),
    ("gélule", "voie orale"),
    ("sirop", "voie orale"),
    ("solution buvable", "voie orale"),
    ("suspension buvable", "voie orale"),
    ("sachet", "voie orale"),
    ("granulés", "voie orale"),
    ("poudre pour suspension buvable", "voie orale"),
    ("collyre", "voie ophtalmique"),
    ("crème", "voie cutanée"),
    ("pommade", "voie cutanée"),
    ("gel", "voie cutanée"),
    ("suppositoire", "voie rectale"),
    ("ovule", "voie vaginale"),
    ("inhalation", "voie inhalée"),
    ("inhalateur", "voie inhalée"),
    ("aérosol", "voie inhalée"),
    ("spray nasal", "voie nasale"),
    ("pulvérisation nasale", "voie nasale"),
    ("patch", "voie transdermique"),
    ("dispositif transdermique", "voie transdermique"),
)


def route_for_form(form: str) -> str:
    words = _tokens(form)
    for form_name, route in _ROUTE_BY_FORM:
        if _contains(words, _tokens(form_name)):
            return route
    return ""


# --- durations ----------------------------------------------------------------------------------

_DURATION = re.compile(
    r"^\s*(\d+)\s*(j|jour|jours|d|s|sem|semaine|semaines|m|mois|a|an|ans)?\s*$", re.IGNORECASE
)
_UNIT_DAYS = {"j": 1, "jour": 1, "jours": 1, "d": 1, "s": 7, "sem": 7, "semaine": 7, "semaines": 7}
_UNIT_DAYS |= {"m": 30, "mois": 30, "a": 365, "an": 365, "ans": 365}


def parse_duration(text: str) -> int:
    """"30", "30 j", "2 semaines", "1 mois", "3m" → days. Raises ValueError with a French message."""
    # Accents and case only: digits must stay apart from punctuation ("1.5 mois" is not "15 mois").
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    match = _DURATION.match(plain)
    if not match:
        raise ValueError(f"durée illisible : « {text} » (exemples : 7j, 2 semaines, 1 mois)")
    unit = (match.group(2) or "j").lower()
    return int(match.group(1)) * _UNIT_DAYS[unit]


def duration_text(days: int) -> str:
    if days >= 30 and days % 30 == 0:
        return f"{days // 30} mois"
    if days == 365:
        return "12 mois"
    if days >= 7 and days % 7 == 0:
        weeks = days // 7
        return f"{weeks} semaine{'s' if weeks > 1 else ''}"
    return f"{days} jour{'s' if days > 1 else ''}"


def parse_line_spec(spec: str) -> PrescriptionLine:
    """A new line from the CLI form "DCI|dosage|forme|posologie|durée[|voie]".

    Raises ValueError (French message) when the spec is not usable.
    """
    fields = [part.strip() for part in spec.split("|")]
    if len(fields) not in (5, 6) or not fields[0]:
        raise ValueError(
            f"ligne illisible : « {spec} » — attendu « DCI|dosage|forme|posologie|durée » "
            "(et éventuellement « |voie »)"
        )
    dci, strength, form, posology, duration = fields[:5]
    route = fields[5] if len(fields) == 6 else ""
    return PrescriptionLine(
        dci=dci,
        strength=strength,
        form=form,
        route=route,
        posology=posology,
        duration_days=parse_duration(duration),
    )


# --- building -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Renewal:
    """One ongoing treatment to renew, with its (editable) duration and number of renewals."""

    treatment_id: str
    duration_days: int = DEFAULT_DURATION_DAYS
    renewals: int = 0


@dataclass(frozen=True, slots=True)
class PrescriptionPlan:
    """A prescription that passed every refusal, with the warnings that must be confirmed."""

    prescription: Prescription
    warnings: tuple[str, ...] = ()
    # Informative notes shown beside the preview; they need no confirmation.
    notes: tuple[str, ...] = ()

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.warnings)


def date_fr(day: dt.date | dt.datetime | None) -> str:
    """JJ/MM/AAAA on the practice's calendar (the Jinja filter of the forms)."""
    return display.fr_date(day, unknown="inconnue")




def _is_weight_based(line: PrescriptionLine) -> bool:
    text = normalize(f"{line.strength} {line.posology}")
    return bool(re.search(r"\bkg\b", text))


def _line_from_treatment(treatment: Treatment, renewal: Renewal) -> PrescriptionLine:
    return PrescriptionLine(
        dci=treatment.dci,
        strength=treatment.strength,
        form=treatment.form,
        route=treatment.route or route_for_form(treatment.form),
        posology=treatment.posology,
        duration_days=renewal.duration_days,
        renewals=renewal.renewals,
        non_substitution=treatment.non_substitution,
        ald_related=treatment.ald_related,
        brand=treatment.brand,
        source_treatment_id=treatment.id,
    )


def _recent(measurement: Measurement | None, today: dt.date, max_days: int) -> bool:
    return (
        measurement is not None
        and measurement.measured_on is not None
        and 0 <= (today - measurement.measured_on).days <= max_days
    )


def build(
    summary: PatientSummary,
    prescriber: Practitioner,
    *,
    renew: Iterable[str | Renewal] | str = (),
    new_lines: Iterable[PrescriptionLine] = (),
    now: dt.datetime,
    prescription_id: str | None = None,
) -> PrescriptionPlan:
    """Build the prescription, raise `PrescriptionRefused` (all reasons at once), collect warnings.

    Args:
        renew: treatment ids or `Renewal`s to renew, or "all" for every ongoing treatment.
        new_lines: free lines; a missing route is derived from the form when it can be.
        now: the issue time (a naive one is taken as French local time); also the reference for
            ages and weights.
    """
    patient = summary.patient
    if now.tzinfo is None:  # the journal needs an offset: a naive time is the practice's local time
        now = now.replace(tzinfo=PARIS)
    today = display.local(now).date()
    treatments = {t.id: t for t in summary.treatments}

    renewals: list[Renewal] = []
    if renew == "all":
        renewals = [Renewal(t.id) for t in summary.treatments]
    elif isinstance(renew, str):  # one id given as a bare string, not its characters
        renewals = [Renewal(renew)]
    else:
        for item in renew:
            renewals.append(item if isinstance(item, Renewal) else Renewal(item))

    lines: list[PrescriptionLine] = []
    narcotic_flags: set[int] = set()
    for renewal in renewals:
        treatment = treatments.get(renewal.treatment_id)
        if treatment is None:
            raise NotFound(
                f"treatment {renewal.treatment_id!r} not in patient {patient.id}'s summary",
                message_fr=f"Traitement « {renewal.treatment_id} » introuvable dans le dossier de ce patient.",
            )
        if treatment.narcotic:
            narcotic_flags.add(len(lines))
        lines.append(_line_from_treatment(treatment, renewal))
    fresh_start = len(lines)
    for line in new_lines:
        lines.append(line if line.route else replace(line, route=route_for_form(line.form)))

    refusals = _refusals(prescriber, lines, narcotic_flags)
    if refusals:
        raise PrescriptionRefused(
            "prescription refused: " + "; ".join(refusals),
            message_fr="Ordonnance refusée, elle ne sera pas imprimée :\n"
            + "\n".join(f"- {reason}" for reason in refusals),
        )

    warnings: list[str] = []
    notes: list[str] = []
    if patient.deceased:
        warnings.append(
            "Ce patient est signalé DÉCÉDÉ dans les données : vérifiez l'identité avant toute prescription."
        )
    if not patient.active:
        warnings.append(
            "Le dossier de ce patient est INACTIF (archivé) dans les données : vérifiez l'identité."
        )
    for line in lines[fresh_start:]:
        for allergy in summary.allergies:
            why = allergy_match(allergy.substance, line)
            if why:
                warnings.append(
                    f"ALLERGIE enregistrée à « {allergy.substance} » : la ligne « {line.dci} » {why}."
                )
    # Renewals are not re-checked against allergies: the platform already prescribed them with the
    # allergies known, and warning on every renewal would teach people to confirm without reading.

    age = patient.age_on(today)
    weight = summary.latest("weight")
    height = summary.latest("height")
    is_child = age is not None and age < ADULT_AGE
    weight_based = [line for line in lines if _is_weight_based(line)]
    if is_child and age is not None:
        limit = INFANT_WEIGHT_MAX_DAYS if age < INFANT_AGE else CHILD_WEIGHT_MAX_DAYS
        if not _recent(weight, today, limit):
            warnings.append(
                f"Enfant de {_age_text(patient, today)} sans poids mesuré depuis moins de "
                f"{_days_text(limit)} ({_weight_seen(weight)}) : vérifiez la posologie selon le poids."
            )
    if weight_based and not _recent(weight, today, WEIGHT_BASED_MAX_DAYS):
        names = ", ".join(f"« {line.dci} »" for line in weight_based)
        warnings.append(
            f"Posologie selon le poids pour {names} sans poids mesuré depuis moins de "
            f"{_days_text(WEIGHT_BASED_MAX_DAYS)} ({_weight_seen(weight)})."
        )
    if patient.birth_date is None:
        warnings.append("Date de naissance inconnue : c'est une mention obligatoire de l'ordonnance.")
    for line in lines:
        if not line.route:
            warnings.append(f"Voie d'administration non précisée pour « {line.dci} » (mention obligatoire).")
    missing = [
        label
        for label, value in (
            ("adresse", prescriber.address.one_line()),
            ("téléphone", prescriber.phone),
            ("courriel", prescriber.email),
            ("qualité", prescriber.qualite),
        )
        if not value
    ]
    if missing:
        warnings.append(
            f"Coordonnées du prescripteur incomplètes ({', '.join(missing)}) : mentions obligatoires."
        )
    if summary.allergies == () and patient.allergy_status.value == "no_information":
        notes.append("Aucune information sur les allergies dans les données.")

    show_weight = is_child or bool(weight_based)
    prescription = Prescription(
        id=prescription_id or uuid.uuid4().hex,
        issued_at=now,
        patient=patient,
        prescriber=prescriber,
        lines=tuple(lines),
        weight=weight if show_weight else None,
        height=height if is_child else None,
    )
    return PrescriptionPlan(prescription=prescription, warnings=tuple(warnings), notes=tuple(notes))


def _refusals(
    prescriber: Practitioner, lines: Sequence[PrescriptionLine], narcotic_flags: set[int]
) -> list[str]:
    refusals: list[str] = []
    # ASCII digits only: \d would also accept other scripts' digits ("١٢٣...").
    if not re.fullmatch(r"[0-9]{11}", prescriber.rpps or ""):
        refusals.append(
            f"le prescripteur {prescriber.display_name} n'a pas de numéro RPPS valide (11 chiffres) : "
            "seul un médecin identifié peut signer une ordonnance."
        )
    if not prescriber.family_name.strip():
        refusals.append("le nom du prescripteur est manquant.")
    if not lines:
        refusals.append("aucune ligne à prescrire.")
    for index, line in enumerate(lines):
        label = f"« {line.dci} »"
        substance = secure_paper_substance(line)
        if substance is not None or index in narcotic_flags:
            name = substance.name_fr if substance else line.dci
            refusals.append(
                f"{label} : {name} doit être prescrit(e) sur ORDONNANCE SÉCURISÉE "
                "(stupéfiant ou assimilé) — rédigez-la à la main sur une ordonnance sécurisée."
            )
        if _is_sick_leave(line):
            refusals.append(
                f"{label} : un arrêt de travail exige le formulaire Cerfa sécurisé ; "
                "il ne peut pas être imprimé ici."
            )
        if line.duration_days <= 0:
            refusals.append(f"{label} : durée nulle ou négative.")
        if line.renewals < 0:
            refusals.append(f"{label} : nombre de renouvellements négatif.")
        total = line.duration_days * (1 + max(line.renewals, 0))
        if total > MAX_TOTAL_DAYS:
            refusals.append(
                f"{label} : durée totale de {duration_text(total)} (renouvellements compris) "
                "supérieure à 12 mois, maximum légal."
            )
        if not line.dci.strip():
            refusals.append("une ligne n'a pas de DCI (dénomination commune obligatoire).")
    return refusals


def assert_printable(prescription: Prescription) -> None:
    """Re-check the refusals on a finished Prescription (pdf.render_prescription calls it).

    Defence in depth: a caller that builds a Prescription by hand, or edits one after `build()`,
    still cannot print a secure-paper drug, an over-long line or an unidentified prescriber.
    """
    refusals = _refusals(prescription.prescriber, prescription.lines, set())
    if refusals:
        raise PrescriptionRefused(
            "prescription refused at rendering: " + "; ".join(refusals),
            message_fr="Ordonnance refusée, elle ne sera pas imprimée :\n"
            + "\n".join(f"- {reason}" for reason in refusals),
        )


def check_confirmed(plan: PrescriptionPlan, confirm: bool) -> Prescription:
    """The prescription, or ConfirmationRequired listing the warnings when they were not confirmed."""
    if plan.warnings and not confirm:
        raise ConfirmationRequired(
            "confirmation required: " + " | ".join(plan.warnings),
            message_fr="Confirmation nécessaire avant impression :\n"
            + "\n".join(f"- {warning}" for warning in plan.warnings),
        )
    return plan.prescription


def _days_text(days: int) -> str:
    return f"{round(days / 30.4)} mois" if days >= 28 else f"{days} jours"


def _weight_seen(weight: Measurement | None) -> str:
    if weight is None or weight.measured_on is None:
        return "aucun poids enregistré"
    return f"dernier poids : {display.fr_number(weight.value)} {weight.unit} le {date_fr(weight.measured_on)}"


def _age_text(patient: Patient, today: dt.date) -> str:
    born = patient.birth_date
    if born is None:
        return "âge inconnu"
    years = patient.age_on(today) or 0
    if years >= INFANT_AGE:
        return f"{years} ans"
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    return f"{max(months, 0)} mois"


# --- the printed text ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrintedLine:
    number: int
    title: str  # "amoxicilline 500 mg, gélule, voie orale"
    details: tuple[str, ...]  # posology, duration, renewals, non-substitution


@dataclass(frozen=True, slots=True)
class PrintedForm:
    """Every string the ordonnance shows, in the order it shows them."""

    template: str  # "ordonnance.html" or "bizone.html"
    prescriber_name: str
    prescriber_lines: tuple[str, ...]  # qualité, specialty, RPPS
    contact_lines: tuple[str, ...]  # address (with "France"), phone, e-mail
    place_date: str
    patient_name: str
    patient_lines: tuple[str, ...]  # sex, date of birth
    measure_lines: tuple[str, ...]  # weight and height with the day they were measured
    lines: tuple[PrintedLine, ...]  # standard form
    ald_lines: tuple[PrintedLine, ...]  # bizone, top zone
    other_lines: tuple[PrintedLine, ...]  # bizone, bottom zone
    line_count: str
    signature: str
    running_header: str  # patient and date, on pages after the first
    snapshot_line: str  # the age of the data: on every page of every printout
    paper_line: str  # "" when the footer is off; it includes the snapshot line
    reference: str
    ald_heading: str = ALD_HEADING
    other_heading: str = OTHER_HEADING
    all_lines: tuple[PrintedLine, ...] = field(default=())

    @property
    def is_bizone(self) -> bool:
        return self.template == "bizone.html"

    @property
    def footer_line(self) -> str:
        """The bold line on every page: the paper/unavailable notice with the data age, or the age alone."""
        return self.paper_line or self.snapshot_line


def format_phone(raw: str) -> str:
    """A French number in +33 form ("01 23 45 67 89" → "+33 1 23 45 67 89"); others unchanged."""
    digits = re.sub(r"[^0-9+]", "", raw)
    if digits.startswith("0033"):
        digits = "+33" + digits[4:]
    if re.fullmatch(r"0[1-9][0-9]{8}", digits):
        digits = "+33" + digits[1:]
    if re.fullmatch(r"\+33[1-9][0-9]{8}", digits):
        rest = digits[3:]
        return "+33 " + rest[0] + " " + " ".join(rest[i : i + 2] for i in range(1, 9, 2))
    return raw.strip()


def patient_name(patient: Patient) -> str:
    """BIRTHNAME (usedname) given names — the identitovigilance display order."""
    used = f" ({patient.used_name})" if patient.used_name and patient.used_name != patient.birth_name else ""
    given = " ".join(patient.birth_given_names)
    if patient.used_given_name and patient.used_given_name not in patient.birth_given_names:
        given += f" (dit·e {patient.used_given_name})"
    return f"{patient.birth_name.upper()}{used} {given}".strip()


def line_title(line: PrescriptionLine) -> str:
    parts = [" ".join(p for p in (line.dci, line.strength) if p)]
    parts += [p for p in (line.form, line.route) if p]
    title = ", ".join(parts)
    if line.brand:
        title += f" ({line.brand})"
    return title


def line_details(line: PrescriptionLine) -> tuple[str, ...]:
    details = []
    if line.posology:
        details.append(line.posology)
    details.append(f"Durée : {duration_text(line.duration_days)}")
    if line.renewals > 0:
        details.append(f"À renouveler {line.renewals} fois")
    if line.non_substitution is not None:
        details.append(f"Non substituable ({NonSubstitutionReason(line.non_substitution).value})")
    return tuple(details)


def printed_form(
    prescription: Prescription, *, snapshot_created_at: dt.datetime | None, footer: bool = True
) -> PrintedForm:
    """The text of the paper form (templates and preview both render this)."""
    prescriber = prescription.prescriber
    patient = prescription.patient
    issued = date_fr(prescription.issued_at)

    prescriber_lines = tuple(
        dict.fromkeys(
            line for line in (prescriber.qualite, prescriber.specialty, f"N° RPPS : {prescriber.rpps}") if line
        )
    )
    address = prescriber.address
    city_line = f"{address.postal_code} {address.city}".strip()
    country = address.country or "France"
    contact = [*address.lines, city_line, country]
    if prescriber.phone:
        contact.append(f"Tél. : {format_phone(prescriber.phone)}")
    if prescriber.email:
        contact.append(f"Courriel : {prescriber.email}")
    place = f"Fait à {address.city}, le {issued}" if address.city else f"Le {issued}"

    today = display.local(prescription.issued_at).date()
    born = f"Né(e) le {date_fr(patient.birth_date)}" if patient.birth_date else "Date de naissance : inconnue"
    if patient.birth_date:
        born += f" ({_age_text(patient, today)})"
    patient_lines = [f"Sexe : {patient.sex.label_fr}", born]
    measure_lines: list[str] = []
    if prescription.weight is not None:
        w = prescription.weight
        measure_lines.append(f"Poids : {display.fr_number(w.value)} {w.unit} (mesuré le {date_fr(w.measured_on)})")
    if prescription.height is not None:
        h = prescription.height
        measure_lines.append(f"Taille : {display.fr_number(h.value)} {h.unit} (mesurée le {date_fr(h.measured_on)})")

    numbered = [
        PrintedLine(number=i, title=line_title(line), details=line_details(line))
        for i, line in enumerate(prescription.lines, start=1)
    ]
    bizone = prescription.is_bizone
    ald_lines: tuple[PrintedLine, ...] = ()
    other_lines: tuple[PrintedLine, ...] = ()
    lines: tuple[PrintedLine, ...] = ()
    # Bizone: ALD lines first (top zone) then the others, numbered in print order.
    if bizone:
        ordered = [line for line in prescription.lines if line.ald_related] + [
            line for line in prescription.lines if not line.ald_related
        ]
        numbered = [
            PrintedLine(number=i, title=line_title(line), details=line_details(line))
            for i, line in enumerate(ordered, start=1)
        ]
        n_ald = sum(1 for line in prescription.lines if line.ald_related)
        ald_lines, other_lines, lines = tuple(numbered[:n_ald]), tuple(numbered[n_ald:]), ()
    else:
        ald_lines, other_lines, lines = (), (), tuple(numbered)

    count = len(prescription.lines)
    name = patient_name(patient)
    birth = f" — né(e) le {date_fr(patient.birth_date)}" if patient.birth_date else ""
    snapshot = (
        f"Données du dossier : instantané du {display.fr_datetime(snapshot_created_at)}"
        if snapshot_created_at is not None
        else "Données du dossier : date de l'instantané inconnue"
    )
    paper = (
        f"Ordonnance établie sur papier car le logiciel de prescription était indisponible. {snapshot}."
        if footer
        else ""
    )
    return PrintedForm(
        template="bizone.html" if bizone else "ordonnance.html",
        prescriber_name=prescriber.display_name,
        prescriber_lines=prescriber_lines,
        contact_lines=tuple(c for c in contact if c),
        place_date=place,
        patient_name=name,
        patient_lines=tuple(patient_lines),
        measure_lines=tuple(measure_lines),
        lines=lines,
        ald_lines=ald_lines,
        other_lines=other_lines,
        line_count=f"{count} ligne{'s' if count > 1 else ''} prescrite{'s' if count > 1 else ''}",
        signature=f"Signature du {prescriber.display_name}",
        running_header=f"{name}{birth} — ordonnance du {issued}",
        snapshot_line=snapshot,
        paper_line=paper,
        reference=f"Réf. {prescription.id}",
        all_lines=tuple(numbered),
    )


def preview_text(
    prescription: Prescription,
    *,
    snapshot_created_at: dt.datetime | None = None,
    footer: bool = True,
    width: int = 78,
) -> str:
    """What will be printed, as plain text (zones included), for the TUI preview."""
    form = printed_form(prescription, snapshot_created_at=snapshot_created_at, footer=footer)
    rule = "─" * width
    out: list[str] = [form.prescriber_name, *form.prescriber_lines, *form.contact_lines, "", form.place_date]
    out += [rule, f"Patient : {form.patient_name}", " — ".join(form.patient_lines)]
    if form.measure_lines:
        out.append(" — ".join(form.measure_lines))
    out.append(rule)

    def emit(lines: Sequence[PrintedLine]) -> None:
        if not lines:
            out.append("   — néant —")
        for printed in lines:
            out.append(f"{printed.number}. {printed.title}")
            out.extend(f"   {detail}" for detail in printed.details)

    if form.is_bizone:
        out += [f"┌ {form.ald_heading}"]
        emit(form.ald_lines)
        out += ["└", f"┌ {form.other_heading}"]
        emit(form.other_lines)
        out += ["└"]
    else:
        emit(form.lines)
    out += ["", form.line_count, f"{form.signature} :", "", rule]
    # The footer sentences on lines of their own: the preview is narrower than the page.
    *sentences, last = form.footer_line.split(". ")
    out += [f"{sentence}." for sentence in sentences] + [last]
    out.append(form.reference)
    return "\n".join(out)


# --- issuing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedDocument:
    prescription: Prescription
    pdf: bytes
    pdf_sha256: str


def issue(
    plan: PrescriptionPlan,
    *,
    confirm: bool,
    journal: JournalLike | None,
    user: str,
    snapshot_seq: int | None,
    snapshot_created_at: dt.datetime,
    duplicate: bool = False,
    drill: bool = False,
    footer: bool = True,
) -> IssuedDocument:
    """Confirm, render and journal a plan: what the CLI and the TUI both do before saving or printing.

    Raises ConfirmationRequired (warnings not confirmed), RenderError, JournalError. The journal
    entry is written before the PDF is returned, so nothing can be handed out unrecorded; `journal`
    is None only for a development database on an appliance that was never initialised.
    """
    from continuity import pdf as pdf_forms  # pdf imports this module: import it when used

    prescription = check_confirmed(plan, confirm)
    document = pdf_forms.render_prescription(
        prescription, snapshot_created_at=snapshot_created_at, duplicate=duplicate, drill=drill, footer=footer
    )
    if journal is not None:
        digest = record_issued(journal, prescription, document, user=user, snapshot_seq=snapshot_seq, drill=drill)
    else:
        digest = hashlib.sha256(document).hexdigest()
    return IssuedDocument(prescription=prescription, pdf=document, pdf_sha256=digest)


# --- journal ------------------------------------------------------------------------------------


class JournalLike(Protocol):
    def append(
        self,
        *,
        user: str,
        action: str,
        patient_id: str | None = None,
        snapshot_seq: int | None = None,
        details: Mapping[str, Any] | None = None,
        sealed: Mapping[str, Any] | None = None,
    ) -> Any: ...


def record_issued(
    journal: JournalLike,
    prescription: Prescription,
    pdf: bytes,
    *,
    user: str,
    snapshot_seq: int | None,
    drill: bool = False,
    print_job: str | None = None,
) -> str:
    """Journal one issued prescription (the only call site). Returns the PDF's SHA-256.

    Follows the journal's contract (continuity/journal.py, "The sealed payload of a printed
    prescription"): everything about the patient and the lines is sealed with `prescription_payload`;
    the clear details hold only ids, counts and the digest, never patient data.
    """
    from continuity.journal import Action, prescription_payload

    digest = hashlib.sha256(pdf).hexdigest()
    journal.append(
        user=user,
        action=Action.DRILL_PRESCRIPTION if drill else Action.PRINT_PRESCRIPTION,
        patient_id=prescription.patient.id,
        snapshot_seq=snapshot_seq,
        details={
            "prescription_id": prescription.id,
            "prescriber_id": prescription.prescriber.id,
            "line_count": len(prescription.lines),
            "bizone": prescription.is_bizone,
            "pdf_sha256": digest,
            "print_job": print_job,
        },
        sealed=prescription_payload(prescription, pdf_sha256=digest),
    )
    return digest

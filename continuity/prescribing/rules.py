"""The ordonnance rules: what is refused, what is a danger to acknowledge, a remark, or a plain note.

`default_selection()` says which ongoing treatments an emergency renewal ticks by default and why
the others are left out (secure paper, hospital only, acute or ended course, unidentified substance,
unknown status). `build()` turns the chosen renewals and new lines into a `PrescriptionPlan`, raising
`PrescriptionRefused` (every reason at once) for what must never print, and sorting the rest in three
tiers:

- dangers, each with a stable code the prescriber acknowledges by name (`--confirm allergy`; one
  typed acknowledgement per danger in the interface): `Danger`;
- remarks (a mandatory mention missing, a strength not given): acknowledged by a bare `--confirm`;
- notes (a provisional identity, a duration shortened to the legal limit): shown, never blocking.

Keeping the dangers apart is the point: a remark that must be confirmed on most ordonnances would
teach people to confirm the dangerous ones without reading (DOMAIN.md). docs/prescribing.md gives the
legal text or the reference field behind every rule.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from continuity import display, flags
from continuity.drugs import classes, fallback, text
from continuity.drugs.reference import DrugQuery, DrugReference
from continuity.errors import ConfirmationRequired, NotFound, PrescriptionRefused
from continuity.model import (
    Allergy,
    DrugResolution,
    IdentityStatus,
    Measurement,
    Patient,
    PatientSummary,
    Practitioner,
    Prescription,
    PrescriptionLine,
    Treatment,
)

# --- limits -------------------------------------------------------------------------------------

DEFAULT_DURATION_DAYS = 30  # "1 mois": the usual renewal while the platform is down
# R.5132-21 CSP: a List I / II prescription covers at most 12 months, renewals included. A month
# counts 30 days for durations, and a full calendar year (365 days) is accepted as "12 mois".
MAX_TOTAL_DAYS = 365
# One ordonnance is read line by line by a pharmacist: past a few pages it is no longer checkable,
# and a hostile export with thousands of lines must not produce a thousand-page document.
MAX_LINES = 30
ADULT_AGE = 18  # paediatric patients: their dose depends on the weight (DOMAIN.md, R.5132-3)
# How old a child's weight may be: infants gain weight fast, older children more slowly. These are
# practice choices (no text fixes them), kept deliberately short.
INFANT_AGE = 2
INFANT_WEIGHT_MAX_DAYS = 31
CHILD_WEIGHT_MAX_DAYS = 183
WEIGHT_BASED_MAX_DAYS = 183  # a "mg/kg" line for anyone

PARIS = display.PRACTICE_TZ


class Danger(enum.StrEnum):
    """What must be acknowledged by name before printing (`--confirm CODE`)."""

    ALLERGY = "allergy"  # a line matches a recorded allergy (substance or class)
    UNIDENTIFIED = "unidentified"  # the reference could not tell what substance a line is
    IDENTITY = "identity"  # a homonym is in the practice (or the identity is marked doubtful)
    DECEASED = "deceased"  # the patient is marked deceased, or the record inactive
    CHILD_WEIGHT = "child-weight"  # a child without a recent weight
    WEIGHT = "weight"  # a dose per kilogram without a recent weight


REMARK = "remarque"  # the code printed beside a remark; a bare --confirm acknowledges them


@dataclass(frozen=True, slots=True)
class Alert:
    """A danger (code is a Danger) or a remark (code REMARK), in French, with the line it concerns."""

    code: str
    text: str
    line: int | None = None  # index in the prescription's lines

    @property
    def is_danger(self) -> bool:
        return self.code != REMARK


@dataclass(frozen=True, slots=True)
class LeftOut:
    """An ongoing treatment an emergency renewal does not tick by default, and why (French)."""

    treatment: Treatment
    reason: str


@dataclass(frozen=True, slots=True)
class Renewal:
    """One ongoing treatment to renew.

    `duration_days` None means the default: one month for a continuous treatment (shortened to the
    reference's limit), what remains of an acute course. `route` is the prescriber's choice when the
    product has several routes.
    """

    treatment_id: str
    duration_days: int | None = None
    renewals: int = 0
    route: str = ""


@dataclass(frozen=True, slots=True)
class PrescriptionPlan:
    """A prescription that passed every refusal, with its dangers, remarks and notes."""

    prescription: Prescription
    warnings: tuple[Alert, ...] = ()
    notes: tuple[str, ...] = ()
    left_out: tuple[LeftOut, ...] = ()

    @property
    def dangers(self) -> tuple[Alert, ...]:
        return tuple(w for w in self.warnings if w.is_danger)

    @property
    def remarks(self) -> tuple[Alert, ...]:
        return tuple(w for w in self.warnings if not w.is_danger)

    @property
    def danger_codes(self) -> frozenset[str]:
        return frozenset(w.code for w in self.dangers)

    def missing(self, acknowledged: Collection[str]) -> tuple[Alert, ...]:
        """The warnings `acknowledged` does not cover (REMARK covers every remark)."""
        return tuple(w for w in self.warnings if w.code not in acknowledged)


# --- courses: acute, ended ------------------------------------------------------------------------

_COURSE = re.compile(r"\b(?:pendant|durant|sur)\s+(\d+)\s*(jours?|j|semaines?|sem|mois)\b", re.IGNORECASE)


def posology_days(posology: str) -> int | None:
    """'... pendant 6 jours' -> 6; 'pendant 2 semaines' -> 14; None when the posology states no course."""
    match = _COURSE.search(text.fold(posology))
    if not match:
        return None
    count, unit = int(match.group(1)), match.group(2)
    if unit.startswith("sem"):
        return count * 7
    if unit.startswith("mois"):
        return count * 30
    return count


@dataclass(frozen=True, slots=True)
class Course:
    """Whether a treatment is an acute course, and what remains of it on `today`."""

    acute: bool
    why: str = ""  # French
    last_day: dt.date | None = None  # the last day of the course, included
    remaining_days: int | None = None  # today included; None when it cannot be computed (no start date)


def course_of(treatment: Treatment, today: dt.date) -> Course:
    """Acute when the source says so, when the posology says "pendant N jours", or when it has ended.

    The source's end date is the course's last day (a FHIR Period's end is inclusive); a course of N days
    started on day D ends on D + N - 1 (started on the 28th, 3 days: the 28th, 29th and 30th).
    """
    days = posology_days(treatment.posology)
    started = treatment.start_date or treatment.last_prescribed_on
    last_day = treatment.end_date
    if last_day is None and days is not None and started is not None:
        last_day = started + dt.timedelta(days=days - 1)
    remaining = (last_day - today).days + 1 if last_day is not None else None
    if treatment.course == "acute":
        return Course(True, "traitement de courte durée (selon l'export)", last_day, remaining)
    if days is not None:
        return Course(True, f"traitement de courte durée (« pendant {days} jours »)", last_day, remaining)
    if last_day is not None and last_day < today:
        return Course(True, f"traitement terminé le {display.fr_date(last_day)}", last_day, remaining)
    return Course(False)


# --- what the reference (or the fallback list) says about a line ---------------------------------


def secure_paper_reason(line: PrescriptionLine, *, narcotic_flag: bool = False) -> str | None:
    """Why a line needs secure paper (French), or None. The reference decides; the list only without it."""
    if line.drug is not None and line.drug.identified:
        if line.drug.secure_paper:
            return "stupéfiant" if line.drug.narcotic else "assimilé stupéfiant (ordonnance sécurisée)"
        return "signalé stupéfiant dans les données" if narcotic_flag else None
    # No reference, or the reference could not identify the line: the list, by text (fail closed).
    listed = fallback.secure_paper_substance(line.dci, line.brand, strength=line.strength)
    if listed is not None:
        return f"{listed.name_fr} : stupéfiant ou assimilé (liste intégrée)"
    return "signalé stupéfiant dans les données" if narcotic_flag else None


def _line_query(line: PrescriptionLine) -> DrugQuery:
    return DrugQuery(line.dci, line.strength, line.form, line.brand)


def resolve_line(line: PrescriptionLine, drugs: DrugReference | None) -> PrescriptionLine:
    """A new line with the reference's reading of it (unchanged without a reference)."""
    if drugs is None or line.drug is not None:
        return line
    return dci_first(replace(line, drug=drugs.resolve(_line_query(line))))


def dci_first(line: PrescriptionLine) -> PrescriptionLine:
    """A line named by its brand prints its DCI first, the brand after (L.5121-1-2 CSP: the DCI is mandatory).

    "CLAMOXYL 1 g, comprimé dispersible" resolved to amoxicilline prints "amoxicilline 1 g, comprimé
    dispersible, voie orale (CLAMOXYL)"; a line already written with its substances is left as it is.
    """
    drug = line.drug
    if drug is None or not drug.identified:
        return line
    written = {text.substance_key(name) for name in text.substance_names(line.dci)}
    if {text.substance_key(name) for name in drug.substances} <= written:
        return line
    brand = line.brand if line.brand and text.fold(line.brand) != text.fold(line.dci) else line.dci
    return replace(line, dci=" + ".join(drug.substances), brand=brand)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route: str = ""  # BDPM route name, '' when it must be chosen
    choices: tuple[str, ...] = ()  # what the prescriber chooses from ('' choices: any route, typed)
    reason: str = ""  # French: why it must be chosen
    note: str = ""  # French: the export's route was replaced by the reference's


def decide_route(drug: DrugResolution | None, form: str, stated: str, chosen: str = "") -> RouteDecision:
    """The route of a line: the reference's when it has one; the prescriber's choice among several; else
    the form's, qualifiers first. `stated` is the export's route, `chosen` the prescriber's."""
    wanted = text.route_name(chosen) or chosen.strip()
    stated_name = text.route_name(stated)
    if drug is not None and drug.identified and drug.routes:
        routes = drug.routes
        if wanted:
            if wanted in routes:
                return RouteDecision(wanted)
            return RouteDecision(choices=routes, reason=f"la voie « {chosen} » n'est pas celle de ce médicament "
                                 f"({', '.join(routes)})")
        if len(routes) == 1:
            note = ""
            if stated_name and stated_name != routes[0]:
                note = f"voie de l'export ({stated_name}) remplacée par celle de la référence ({routes[0]})"
            return RouteDecision(routes[0], note=note)
        if stated_name in routes:
            return RouteDecision(stated_name)
        return RouteDecision(choices=routes, reason=f"plusieurs voies possibles ({', '.join(routes)})")
    if wanted:
        return RouteDecision(wanted)
    if stated_name or stated.strip():
        return RouteDecision(stated_name or stated.strip())
    guess = text.route_for_form(form)
    if guess.route:
        return RouteDecision(guess.route)
    return RouteDecision(reason=guess.reason)


# --- selection ------------------------------------------------------------------------------------

def not_ticked_reason(treatment: Treatment, today: dt.date, *, has_reference: bool) -> str:
    """Why an emergency renewal does not tick this treatment by default ('' when it does)."""
    drug = treatment.drug
    if treatment.narcotic or (drug is not None and drug.secure_paper):
        return "à rédiger sur ordonnance sécurisée (stupéfiant ou assimilé)"
    if drug is not None and drug.hospital_only:
        return "réservé à l'usage hospitalier : ne peut pas être prescrit ici"
    course = course_of(treatment, today)
    if course.acute:
        return course.why + " : non repris d'office"
    if has_reference and (drug is None or not drug.identified):
        return "substance non identifiée dans la référence des médicaments"
    # What the export left uncertain (status unknown, possibly stopped...): the prescriber decides.
    if treatment.flags and not flags.renew_by_default(treatment.flags):
        return "; ".join(flags.label_fr(code) for code in treatment.flags)
    return ""


def default_selection(summary: PatientSummary, today: dt.date, *, has_reference: bool) -> tuple[
        tuple[Treatment, ...], tuple[LeftOut, ...]]:
    """The treatments ticked by default (the continuous ones), and the ones left out with why."""
    ticked: list[Treatment] = []
    left_out: list[LeftOut] = []
    for treatment in summary.treatments:
        reason = not_ticked_reason(treatment, today, has_reference=has_reference)
        if reason:
            left_out.append(LeftOut(treatment, reason))
        else:
            ticked.append(treatment)
    return tuple(ticked), tuple(left_out)


# --- durations ------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"^\s*(\d+)\s*(j|jour|jours|d|s|sem|semaine|semaines|m|mois|a|an|ans)?\s*$", re.IGNORECASE
)
_UNIT_DAYS = {"j": 1, "jour": 1, "jours": 1, "d": 1, "s": 7, "sem": 7, "semaine": 7, "semaines": 7}
_UNIT_DAYS |= {"m": 30, "mois": 30, "a": 365, "an": 365, "ans": 365}


def parse_duration(value: str) -> int:
    """"30", "30 j", "2 semaines", "1 mois", "3m" → days. Raises ValueError with a French message."""
    plain = text.fold(value) if not re.search(r"\d[.,]\d", value) else value
    match = _DURATION.match(plain)
    if not match:
        raise ValueError(f"durée illisible : « {value} » (exemples : 7j, 2 semaines, 1 mois)")
    unit = (match.group(2) or "j").lower()
    return int(match.group(1)) * _UNIT_DAYS[unit]


def duration_text(days: int) -> str:
    if days == 365:
        return "12 mois"
    if days >= 30 and days % 30 == 0:
        return f"{days // 30} mois"
    if days >= 7 and days % 7 == 0:
        weeks = days // 7
        return f"{weeks} semaine{'s' if weeks > 1 else ''}"
    return f"{days} jour{'s' if days > 1 else ''}"


# --- new lines from the command line ---------------------------------------------------------------


def parse_line_spec(spec: str) -> PrescriptionLine:
    """A new line "DCI|dosage|forme|posologie|durée[|voie][|ald]". Raises ValueError (French)."""
    fields = [part.strip() for part in spec.split("|")]
    extra = fields[5:]
    ald = any(text.fold(item) == "ald" for item in extra)
    routes = [item for item in extra if text.fold(item) != "ald" and item]
    if len(fields) < 5 or len(routes) > 1 or len(extra) > 2 or not fields[0]:
        raise ValueError(
            f"ligne illisible : « {spec} » — attendu « DCI|dosage|forme|posologie|durée » "
            "(et éventuellement « |voie » et « |ald »)"
        )
    dci, strength, form, posology, duration = fields[:5]
    return PrescriptionLine(
        dci=dci, strength=strength, form=form, route=routes[0] if routes else "", posology=posology,
        duration_days=parse_duration(duration), ald_related=ald,
    )


# --- allergies ------------------------------------------------------------------------------------


def _allergy_substances(allergy: Allergy, drugs: DrugReference | None) -> frozenset[str]:
    """The substance keys an allergy names: its words, and through the reference a brand's substances."""
    keys = {text.substance_key(name) for name in text.substance_names(allergy.substance)}
    if drugs is not None:
        resolved = drugs.resolve(DrugQuery(allergy.substance))
        if resolved.identified:
            keys |= {text.substance_key(name) for name in resolved.substances}
    return frozenset(k for k in keys if k)


def allergy_match(allergy: Allergy, line: PrescriptionLine, drugs: DrugReference | None) -> str | None:
    """Why a line matches a recorded allergy (French), or None: by substance, class, or words."""
    line_keys = {text.substance_key(name) for name in line_substances(line)}
    allergy_keys = _allergy_substances(allergy, drugs)
    for key in sorted(line_keys & allergy_keys):
        return f"contient cette substance ({key})"
    in_class = classes.class_member(allergy.substance, line_keys | {text.substance_key(line.dci)})
    if in_class is not None:
        klass, member = in_class
        return f"appartient à la classe des {klass} ({member})"
    # Words: "Amoxicilline (urticaire)" still matches a line written "amoxicilline/acide clavulanique".
    if classes.words_match(allergy.substance, line.dci, line.brand):
        return "contient cette substance"
    return None


def line_substances(line: PrescriptionLine) -> tuple[str, ...]:
    """The substances of a line: the reference's when it identified them, else the DCI text's."""
    if line.drug is not None and line.drug.identified:
        return line.drug.substances
    return text.substance_names(text.split_free_text(line.dci).substance if not line.strength else line.dci)


# --- building ------------------------------------------------------------------------------------


def _recent(measurement: Measurement | None, today: dt.date, max_days: int) -> bool:
    return (
        measurement is not None
        and measurement.measured_on is not None
        and 0 <= (today - measurement.measured_on).days <= max_days
    )


def age_text(patient: Patient, today: dt.date) -> str:
    return display.age_label(patient, today)


def _days_text(days: int) -> str:
    return f"{round(days / 30.4)} mois" if days >= 28 else f"{days} jours"


def _weight_seen(weight: Measurement | None) -> str:
    if weight is None or weight.measured_on is None:
        return "aucun poids enregistré"
    return (f"dernier poids : {display.fr_number(weight.value)} {weight.unit} "
            f"le {display.fr_date(weight.measured_on)}")


def _is_weight_based(line: PrescriptionLine) -> bool:
    return bool(re.search(r"\bkg\b", text.fold(f"{line.strength} {line.posology}")))


_SICK_LEAVE = ("arret de travail", "arret maladie", "avis d arret", "cerfa")


def _is_sick_leave(line: PrescriptionLine) -> bool:
    folded = text.fold(f"{line.dci} {line.form} {line.posology}")
    return any(re.search(rf"\b{phrase}\b", folded) for phrase in _SICK_LEAVE)


@dataclass
class _Draft:
    """A line being built, with what the rules need to remember about where it came from."""

    line: PrescriptionLine
    label: str
    treatment: Treatment | None = None
    course: Course | None = None
    explicit_duration: bool = False
    route: RouteDecision = field(default_factory=RouteDecision)


def _renewal_line(treatment: Treatment, renewal: Renewal, today: dt.date) -> _Draft:
    dci, strength, form = treatment.dci, treatment.strength, treatment.form
    if not strength and not form:
        # The only text the source had ("lévothyroxine sodique 75 microgrammes, comprimé"): cut it.
        split = text.split_free_text(dci)
        dci, strength, form = split.substance or dci, split.strength, split.form
    course = course_of(treatment, today)
    line = PrescriptionLine(
        dci=dci, strength=strength, form=form, route="", posology=treatment.posology,
        duration_days=renewal.duration_days or DEFAULT_DURATION_DAYS, renewals=renewal.renewals,
        non_substitution=treatment.non_substitution, ald_related=treatment.ald_related, brand=treatment.brand,
        source_treatment_id=treatment.id, drug=treatment.drug,
    )
    if course.acute and renewal.duration_days is None and course.remaining_days is not None:
        line = replace(line, duration_days=course.remaining_days)
    line = dci_first(line)
    decision = decide_route(treatment.drug, form or (treatment.drug.form if treatment.drug else ""),
                            treatment.route, renewal.route)
    return _Draft(line, _label(treatment.dci, line), treatment, course, renewal.duration_days is not None, decision)


def _label(written: str, line: PrescriptionLine) -> str:
    """How a refusal names a line: as it was written, with its DCI when the reference found one."""
    return f"« {written} »" if text.fold(written) == text.fold(line.dci) else f"« {written} » ({line.dci})"


def build(
    summary: PatientSummary,
    prescriber: Practitioner,
    *,
    renew: Iterable[str | Renewal] | str = (),
    new_lines: Iterable[PrescriptionLine] = (),
    now: dt.datetime,
    prescription_id: str | None = None,
    drugs: DrugReference | None = None,
    homonyms: int = 0,
    options: Mapping[str, Renewal] | None = None,
) -> PrescriptionPlan:
    """Build the prescription, raise `PrescriptionRefused` (all reasons at once), sort the warnings.

    Args:
        renew: treatment ids or `Renewal`s, or "all" for the default selection (`default_selection`).
        options: with "all", the `Renewal` (duration, route) of a treatment, by id, when it is selected.
        new_lines: free lines; resolved against `drugs` and given a route like renewals.
        now: the issue time (a naive one is taken as French local time); also the reference for ages,
            weights and what remains of acute courses.
        drugs: the snapshot's drug reference; None means the fallback list (and a note saying so).
        homonyms: other patients of the practice with the same name (an identity danger).
    """
    patient = summary.patient
    if now.tzinfo is None:  # the journal needs an offset: a naive time is the practice's local time
        now = now.replace(tzinfo=PARIS)
    today = display.local(now).date()
    treatments = {t.id: t for t in summary.treatments}
    notes: list[str] = []
    left_out: tuple[LeftOut, ...] = ()

    renewals: list[Renewal] = []
    if renew == "all":
        ticked, left_out = default_selection(summary, today, has_reference=drugs is not None)
        renewals = [(options or {}).get(t.id, Renewal(t.id)) for t in ticked]
    elif isinstance(renew, str):  # one id given as a bare string, not its characters
        renewals = [Renewal(renew)]
    else:
        renewals = [item if isinstance(item, Renewal) else Renewal(item) for item in renew]

    drafts: list[_Draft] = []
    for renewal in renewals:
        treatment = treatments.get(renewal.treatment_id)
        if treatment is None:
            raise NotFound(
                f"treatment {renewal.treatment_id!r} not in patient {patient.id}'s summary",
                message_fr=f"Traitement « {renewal.treatment_id} » introuvable dans le dossier de ce patient.",
            )
        drafts.append(_renewal_line(treatment, renewal, today))
    for new in new_lines:
        line = resolve_line(new, drugs)
        decision = decide_route(line.drug, line.form, "", line.route)
        drafts.append(_Draft(line, _label(new.dci, line), explicit_duration=True, route=decision))

    refusals: list[str] = []
    if len(drafts) > MAX_LINES:
        refusals.append(f"{len(drafts)} lignes : une ordonnance en compte au plus {MAX_LINES}. "
                        "Faites plusieurs ordonnances.")
    else:
        for draft in drafts:
            _line_rules(draft, today, refusals, notes)
    refusals += prescriber_refusals(prescriber)
    if not drafts:
        refusals.append("aucune ligne à prescrire.")
    if refusals:
        raise PrescriptionRefused(
            "prescription refused: " + "; ".join(refusals),
            message_fr="Ordonnance refusée, elle ne sera pas imprimée :\n"
            + "\n".join(f"- {reason}" for reason in refusals)
            + "".join(f"\n  (non repris : « {item.treatment.dci} » — {item.reason})" for item in left_out),
        )
    lines = [draft.line for draft in drafts]

    warnings: list[Alert] = []
    if patient.deceased:
        warnings.append(Alert(Danger.DECEASED, "Ce patient est signalé DÉCÉDÉ dans les données : vérifiez "
                                "l'identité avant toute prescription."))
    if not patient.active:
        warnings.append(Alert(Danger.DECEASED, "Le dossier de ce patient est INACTIF (archivé) dans les "
                                "données : vérifiez l'identité."))
    if homonyms:
        other = "autre patient porte" if homonyms == 1 else "autres patients portent"
        warnings.append(Alert(Danger.IDENTITY, f"HOMONYME : {homonyms} {other} le même nom dans le cabinet : "
                                "vérifiez la date de naissance avec le patient."))
    if flags.IDENTITY_DOUBT in patient.flags:
        warnings.append(Alert(Danger.IDENTITY, "IDENTITÉ À VÉRIFIER : l'export signale la fiabilité de cette "
                                "identité (doublon, douteuse, fictive ou désactivée) : vérifiez-la avec le "
                                "patient (pièce d'identité) avant de prescrire."))
    if patient.identity_status is IdentityStatus.PROV:
        notes.append("Identité provisoire (non vérifiée sur une pièce d'identité).")

    for index, line in enumerate(lines):
        for allergy in summary.allergies:
            why = allergy_match(allergy, line, drugs)
            if why:
                # A resolved or unconfirmed allergy still warns (fail closed), saying so.
                status = f" ({', '.join(flags.label_fr(code) for code in allergy.flags)})" if allergy.flags else ""
                warnings.append(Alert(Danger.ALLERGY, f"ALLERGIE enregistrée à « {allergy.substance} »{status} : "
                                        f"la ligne « {line.dci} » {why}.", index))
        if drugs is not None and (line.drug is None or not line.drug.identified):
            warnings.append(Alert(Danger.UNIDENTIFIED, f"SUBSTANCE NON IDENTIFIÉE : « {line.dci} » n'a pas été "
                                    "reconnu dans la référence des médicaments : vérifiez ce que vous prescrivez "
                                    "(allergies et stupéfiants n'ont pas pu être contrôlés sur cette ligne).", index))
        if not line.strength.strip():
            warnings.append(Alert(REMARK, f"Dosage non précisé pour « {line.dci} » (mention obligatoire).", index))

    age = patient.age_on(today)
    weight = summary.latest("weight")
    height = summary.latest("height")
    is_child = age is not None and age < ADULT_AGE
    weight_based = [line for line in lines if _is_weight_based(line)]
    if is_child and age is not None:
        limit = INFANT_WEIGHT_MAX_DAYS if age < INFANT_AGE else CHILD_WEIGHT_MAX_DAYS
        if not _recent(weight, today, limit):
            warnings.append(Alert(Danger.CHILD_WEIGHT, f"Enfant de {age_text(patient, today)} sans poids mesuré "
                                    f"depuis moins de {_days_text(limit)} ({_weight_seen(weight)}) : vérifiez la "
                                    "posologie selon le poids."))
    if weight_based and not _recent(weight, today, WEIGHT_BASED_MAX_DAYS) and not (
        is_child and any(w.code == Danger.CHILD_WEIGHT for w in warnings)
    ):
        names = ", ".join(f"« {line.dci} »" for line in weight_based)
        warnings.append(Alert(Danger.WEIGHT, f"Posologie selon le poids pour {names} sans poids mesuré depuis "
                                f"moins de {_days_text(WEIGHT_BASED_MAX_DAYS)} ({_weight_seen(weight)})."))
    if patient.birth_date is None:
        warnings.append(Alert(REMARK, "Date de naissance inconnue : c'est une mention obligatoire de "
                                "l'ordonnance."))
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
        warnings.append(Alert(REMARK, f"Coordonnées du prescripteur incomplètes ({', '.join(missing)}) : "
                                "mentions obligatoires."))
    if not summary.allergies and patient.allergy_status.value == "no_information":
        notes.append("Aucune information sur les allergies dans les données.")
    if drugs is None:
        notes.append(fallback.NOTICE_FR)
    notes += [f"Non repris : « {item.treatment.dci} » — {item.reason}." for item in left_out]

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
    return PrescriptionPlan(prescription, tuple(warnings), tuple(dict.fromkeys(notes)), left_out)


def _line_rules(draft: _Draft, today: dt.date, refusals: list[str], notes: list[str]) -> None:
    """The refusals of one line (appended), and its duration and route settled in `draft.line`."""
    line, label = draft.line, draft.label
    drug = line.drug
    narcotic = draft.treatment.narcotic if draft.treatment is not None else False
    secure = secure_paper_reason(line, narcotic_flag=narcotic)
    if secure is not None:
        refusals.append(f"{label} : à rédiger sur ORDONNANCE SÉCURISÉE ({secure}) — rédigez-la à la main sur "
                        "une ordonnance sécurisée.")
    if drug is not None and drug.hospital_only:
        refusals.append(f"{label} : médicament réservé à l'usage HOSPITALIER (prescription hospitalière) — "
                        "il ne peut pas être prescrit ici.")
    if _is_sick_leave(line):
        refusals.append(f"{label} : un arrêt de travail exige le formulaire Cerfa sécurisé ; il ne peut pas être "
                        "imprimé ici.")
    if not line.dci.strip():
        refusals.append("une ligne n'a pas de DCI (dénomination commune obligatoire).")

    # Acute courses: continued only for what remains, never past their end.
    course = draft.course
    if course is not None and course.acute:
        if course.remaining_days is None:
            refusals.append(f"{label} : {course.why} sans date de début : ce qui reste à prendre ne peut pas être "
                            "calculé — prescrivez-le comme une nouvelle ligne si besoin.")
        elif course.remaining_days <= 0:
            refusals.append(f"{label} : {course.why}, terminé le {display.fr_date(course.last_day)} : il n'y a "
                            "rien à renouveler.")
        elif line.duration_days > course.remaining_days:
            refusals.append(f"{label} : {course.why} — il en reste {duration_text(course.remaining_days)} "
                            f"(jusqu'au {display.fr_date(course.last_day)} inclus), pas "
                            f"{duration_text(line.duration_days)}.")
    stated = posology_days(line.posology)
    if stated is not None and line.duration_days > stated:
        refusals.append(f"{label} : la posologie dit « pendant {duration_text(stated)} » mais la durée imprimée "
                        f"serait {duration_text(line.duration_days)} : corrigez l'une ou l'autre.")

    # Durations: the reference's limit (a default duration is shortened to it, a chosen one refused).
    if drug is not None and drug.max_days is not None and line.duration_days > drug.max_days:
        if draft.explicit_duration:
            refusals.append(f"{label} : durée de {duration_text(line.duration_days)} au-delà de la limite de "
                            f"{duration_text(drug.max_days)} de ce médicament (référence : « prescription "
                            f"limitée à … »).")
        else:
            notes.append(f"{label} : durée ramenée de {duration_text(line.duration_days)} à "
                         f"{duration_text(drug.max_days)}, limite de prescription de ce médicament.")
            line = replace(line, duration_days=drug.max_days)
    if line.duration_days <= 0:
        refusals.append(f"{label} : durée nulle ou négative.")
    if line.renewals < 0:
        refusals.append(f"{label} : nombre de renouvellements négatif.")
    total = line.duration_days * (1 + max(line.renewals, 0))
    if drug is not None and drug.max_days is not None and line.renewals > 0 and total > drug.max_days:
        refusals.append(f"{label} : renouvellements compris, {duration_text(total)} dépassent la limite de "
                        f"{duration_text(drug.max_days)} de ce médicament.")
    if total > MAX_TOTAL_DAYS:
        refusals.append(f"{label} : durée totale de {duration_text(total)} (renouvellements compris) supérieure à "
                        "12 mois, maximum légal.")

    # The posology of a continued course still says "pendant 10 jours" beside "Durée : 6 jours": say which
    # course it continues and its last day, so the pharmacist does not read a contradiction.
    if course is not None and course.acute and course.remaining_days is not None and \
            0 < line.duration_days <= course.remaining_days:
        last_day = display.fr_date(today + dt.timedelta(days=line.duration_days - 1))
        started = draft.treatment.start_date if draft.treatment is not None else None
        since = f"traitement commencé le {display.fr_date(started)}, " if started is not None else ""
        line = replace(line, posology=" ".join(
            part for part in (line.posology, f"({since}à poursuivre jusqu'au {last_day} inclus)") if part))

    decision = draft.route
    if decision.route:
        line = replace(line, route=decision.route)
        if decision.note:
            notes.append(f"{label} : {decision.note}.")
    else:
        choices = f" : choisissez {' ou '.join(decision.choices)}" if decision.choices else ""
        refusals.append(f"{label} : voie d'administration à préciser ({decision.reason}){choices}.")
    draft.line = line


def prescriber_refusals(prescriber: Practitioner) -> list[str]:
    refusals: list[str] = []
    # ASCII digits only: \d would also accept other scripts' digits ("١٢٣...").
    if not re.fullmatch(r"[0-9]{11}", prescriber.rpps or ""):
        refusals.append(
            f"le prescripteur {prescriber.display_name} n'a pas de numéro RPPS valide (11 chiffres) : "
            "seul un médecin identifié peut signer une ordonnance."
        )
    if not prescriber.family_name.strip():
        refusals.append("le nom du prescripteur est manquant.")
    return refusals


def printable_refusals(prescription: Prescription) -> list[str]:
    """The refusals that can be checked on a finished Prescription (the renderer re-checks them)."""
    refusals = prescriber_refusals(prescription.prescriber)
    if not prescription.lines:
        refusals.append("aucune ligne à prescrire.")
    if len(prescription.lines) > MAX_LINES:
        refusals.append(f"{len(prescription.lines)} lignes : une ordonnance en compte au plus {MAX_LINES}.")
        return refusals
    for line in prescription.lines:
        label = f"« {line.dci} »"
        secure = secure_paper_reason(line)
        if secure is not None:
            refusals.append(f"{label} : à rédiger sur ORDONNANCE SÉCURISÉE ({secure}).")
        if line.drug is not None and line.drug.hospital_only:
            refusals.append(f"{label} : médicament réservé à l'usage HOSPITALIER.")
        if _is_sick_leave(line):
            refusals.append(f"{label} : un arrêt de travail ne peut pas être imprimé ici.")
        total = line.duration_days * (1 + max(line.renewals, 0))
        if line.duration_days <= 0 or line.renewals < 0 or total > MAX_TOTAL_DAYS:
            refusals.append(f"{label} : durée invalide ou supérieure à 12 mois.")
        if line.drug is not None and line.drug.max_days is not None and total > line.drug.max_days:
            refusals.append(f"{label} : durée au-delà de la limite de ce médicament.")
        if not line.route.strip():
            refusals.append(f"{label} : voie d'administration manquante.")
        if not line.dci.strip():
            refusals.append("une ligne n'a pas de DCI.")
    return refusals


def assert_printable(prescription: Prescription) -> None:
    """Re-check the refusals on a finished Prescription (the renderer calls it: defence in depth)."""
    refusals = printable_refusals(prescription)
    if refusals:
        raise PrescriptionRefused(
            "prescription refused at rendering: " + "; ".join(refusals),
            message_fr="Ordonnance refusée, elle ne sera pas imprimée :\n"
            + "\n".join(f"- {reason}" for reason in refusals),
        )


def check_acknowledged(plan: PrescriptionPlan, acknowledged: Collection[str]) -> Prescription:
    """The prescription, or ConfirmationRequired naming every warning still to acknowledge, with its code."""
    missing = plan.missing(acknowledged)
    if missing:
        raise ConfirmationRequired(
            "acknowledgement required: " + " | ".join(f"[{w.code}] {w.text}" for w in missing),
            message_fr="Confirmation nécessaire avant impression :\n"
            + "\n".join(f"- [{w.code}] {w.text}" for w in missing)
            + "\n" + acknowledgement_hint(missing),
        )
    return plan.prescription


def acknowledgement_hint(missing: Sequence[Alert]) -> str:
    codes = sorted({w.code for w in missing if w.is_danger})
    parts = [f"--confirm {code}" for code in codes]
    if any(not w.is_danger for w in missing):
        parts.append("--confirm (seul, pour les remarques)")
    return "Après vérification : " + " ".join(parts)


KNOWN_CODES = frozenset({*(d.value for d in Danger), REMARK})

"""French display of identities, dates and ages, shared by the CLI, the TUI and the printed forms.

One place decides how a patient is named on screen and on paper (DOMAIN.md, identitovigilance):
`BIRTHNAME (usedname) First-name — né(e) le JJ/MM/AAAA — sex`, the date of birth always beside the
name, and the INS only for a qualified identity.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
import zoneinfo
from typing import Any

from continuity import flags
from continuity.model import AllergyStatus, IdentityStatus, Measurement, Patient, PatientSummary, Sex, Treatment

# Times are stored in UTC and shown to people in the practice's time zone.
PRACTICE_TZ = zoneinfo.ZoneInfo("Europe/Paris")

IDENTITY_STATUS_FR = {
    IdentityStatus.PROV: "Provisoire",
    IdentityStatus.RECUP: "Récupérée",
    IdentityStatus.VALI: "Validée",
    IdentityStatus.QUAL: "Qualifiée",
}


def local(moment: dt.datetime) -> dt.datetime:
    """An aware time in the practice's time zone (a naive one is taken as already local)."""
    return moment.astimezone(PRACTICE_TZ) if moment.tzinfo is not None else moment


def fr_date(value: dt.date | dt.datetime | None, *, unknown: str = "date inconnue") -> str:
    """JJ/MM/AAAA; an aware datetime is shown on the practice's calendar."""
    if value is None:
        return unknown
    if isinstance(value, dt.datetime):
        value = local(value)
    return value.strftime("%d/%m/%Y")


def fr_datetime(value: dt.datetime) -> str:
    return local(value).strftime("%d/%m/%Y à %H:%M")


def fr_number(value: float) -> str:
    """12.5 → '12,5' (the French decimal comma), 12.0 → '12'."""
    return f"{value:g}".replace(".", ",")


WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS_FR = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)


def fr_long_date(value: dt.date | dt.datetime) -> str:
    """'vendredi 5 décembre 2026' ('1er' for the first of the month); a datetime adds 'à 02:13'."""
    moment = local(value) if isinstance(value, dt.datetime) else None
    day = moment.date() if moment is not None else value
    assert isinstance(day, dt.date)
    text = f"{WEEKDAYS_FR[day.weekday()]} {'1er' if day.day == 1 else day.day} {MONTHS_FR[day.month - 1]} {day.year}"
    return text + (f" à {moment:%H:%M}" if moment is not None else "")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """'1 ligne', '3 lignes': French typography instead of 'ligne(s)'."""
    return f"{count} {singular if count < 2 else (plural_form or singular + 's')}"


def elapsed(day: dt.date, today: dt.date) -> str:
    """How long ago a day was, in words: "aujourd'hui", 'hier', 'il y a 12 jours', '3 mois', '3 ans'."""
    days = (today - day).days
    if days < 0:
        return "à une date future"
    if days == 0:
        return "aujourd'hui"
    if days == 1:
        return "hier"
    if days < 60:
        return f"il y a {days} jours"
    months = (today.year - day.year) * 12 + today.month - day.month - (today.day < day.day)
    if months < 24:
        return f"il y a {plural(months, 'mois', 'mois')}"
    # Rounded, not truncated: a weight of 35 months ago is "3 ans" old, not "2 ans".
    return f"il y a {plural(round(months / 12), 'an')}"


def measure_line(measure: Measurement, today: dt.date) -> str:
    """'83,4 kg, le 23/12/2023 — il y a 3 ans' (decimal comma, date and age of the measure)."""
    text = f"{fr_number(measure.value)} {measure.unit}"
    if measure.measured_on is None:
        return text + ", date inconnue"
    return f"{text}, le {fr_date(measure.measured_on)} — {elapsed(measure.measured_on, today)}"


_FRENCH_NUMBER = re.compile(r"^(?:\+33|0033)(\d{9})$|^(0\d{9})$")


def fr_phone(number: str) -> str:
    """A French number in the national format, '+33 6 39 98 63 93' → '06 39 98 63 93'; others unchanged."""
    compact = re.sub(r"[\s.\-()]", "", number)
    compact = compact.replace("+330", "+33", 1) if compact.startswith("+330") else compact
    match = _FRENCH_NUMBER.match(compact)
    if match is None:
        return number.strip()
    digits = match[2] or "0" + match[1]
    return " ".join(digits[i:i + 2] for i in range(0, 10, 2))


def count_label(count: int, singular: str, plural: str) -> str:
    """'1 ligne', '3 lignes', 'aucune ligne' is left to the caller: French agreement, never 'ligne(s)'."""
    return f"{count} {singular if count <= 1 else plural}"


def born_label(patient: Patient) -> str:
    # "né(e)" only when the sex is not known: the sex is shown beside it anyway.
    prefix = {Sex.FEMALE: "née", Sex.MALE: "né"}.get(patient.sex, "né(e)")
    return f"{prefix} le {fr_date(patient.birth_date)}"


def deceased_label(patient: Patient) -> str:
    """'DÉCÉDÉE le 03/02/2025' (the date when the source gives it), agreeing with the sex."""
    word = {Sex.FEMALE: "DÉCÉDÉE", Sex.MALE: "DÉCÉDÉ"}.get(patient.sex, "DÉCÉDÉ(E)")
    when = f" le {fr_date(patient.deceased_date)}" if patient.deceased_date else " (date non renseignée)"
    return word + when


def age_label(patient: Patient, today: dt.date) -> str:
    age = patient.age_on(today)
    if age is None:
        return "âge inconnu"
    if age >= 2 or patient.birth_date is None:
        return f"{age} ans"
    months = (today.year - patient.birth_date.year) * 12 + today.month - patient.birth_date.month
    months -= today.day < patient.birth_date.day
    return f"{max(months, 0)} mois"


def patient_name(patient: Patient) -> str:
    """BIRTHNAME (usedname) Given names « used given name »: how a patient is named on screen, on every
    printout and in the reconciliation export (the used name in brackets only when it differs)."""
    used = f" ({patient.used_name})" if patient.used_name and patient.used_name != patient.birth_name else ""
    given = " ".join(patient.birth_given_names)
    if patient.used_given_name and patient.used_given_name not in patient.birth_given_names:
        given += f" « {patient.used_given_name} »"
    return f"{patient.birth_name.upper()}{used} {given}".strip()


def identity_line(patient: Patient) -> str:
    return f"{patient_name(patient)} — {born_label(patient)} — {patient.sex.label_fr}"


def age_of_data(created_at: dt.datetime, now: dt.datetime) -> str:
    """'il y a 15 h', 'il y a 3 j' — how old the snapshot is, for banners and printouts."""
    seconds = max(0, int((now - created_at).total_seconds()))
    if seconds < 60:
        return "à l'instant"
    if seconds < 3600:
        return f"il y a {seconds // 60} min"
    if seconds < 48 * 3600:
        return f"il y a {seconds // 3600} h"
    return f"il y a {seconds // 86400} j"


def as_json(value: Any) -> Any:
    """Model objects as JSON-ready values: dates in ISO 8601, enums by value, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    return value


def allergy_headline(summary: PatientSummary) -> str:
    """The allergy line, which must never be ambiguous: none known and no information differ."""
    if summary.allergies:
        return "ALLERGIES : " + ", ".join(
            a.substance + (f" ({a.reaction})" if a.reaction else "") + flag_marks(a.flags) for a in summary.allergies
        )
    if summary.patient.allergy_status is AllergyStatus.NONE_KNOWN:
        return "Aucune allergie connue"
    return "Allergies : information non disponible"


# French typography puts a space before ";": a no-break one, so that no line starts with ";".
SEMICOLON = "\u00a0; "


def treatment_line(treatment: Treatment) -> str:
    parts = [treatment.dci, treatment.strength, treatment.form]
    text = " ".join(p for p in parts if p)
    if treatment.posology:
        text += f" — {treatment.posology}"
    marks = []
    if treatment.ald_related:
        marks.append("ALD")
    if treatment.non_substitution:
        marks.append(f"Non substituable ({treatment.non_substitution.value})")
    if treatment.narcotic:
        marks.append("STUPÉFIANT : ordonnance sécurisée")
    if treatment.renewals_left is not None:
        marks.append(f"renouvellements restants : {treatment.renewals_left}")
    if treatment.start_date:
        marks.append(f"depuis le {fr_date(treatment.start_date)}")
    if treatment.last_prescribed_on:
        marks.append(f"dernière prescription le {fr_date(treatment.last_prescribed_on)}")
    return text + (f" [{SEMICOLON.join(marks)}]" if marks else "")


def flag_marks(codes: tuple[str, ...]) -> str:
    """What the export left uncertain about an item, shown beside it (continuity.flags):
    ' — ⚠ statut inconnu — à vérifier avec le patient'. The same marks on every screen and in `show`."""
    return "".join(f" — ⚠ {label}" for label in flags.labels_fr(codes))


def summary_text(summary: PatientSummary, *, homonyms: int, today: dt.date) -> str:
    patient = summary.patient
    lines = [identity_line(patient) + f" ({age_label(patient, today)})"]
    status = IDENTITY_STATUS_FR[patient.identity_status]
    lines.append(f"Identité : {status}" + (f" — INS {patient.ins}" if patient.ins else ""))
    if homonyms:
        lines.append(f"⚠ Homonyme ({plural(homonyms, 'autre patient', 'autres patients')} du même nom) : "
                     "vérifier la date de naissance")
    if patient.deceased:
        lines.append(f"⚠ Patient {deceased_label(patient).lower()}")
    lines += [f"⚠ {label}" for label in flags.labels_fr(patient.flags)]
    if patient.phones:
        lines.append("Téléphone : " + ", ".join(fr_phone(phone) for phone in patient.phones))
    lines += ["", allergy_headline(summary), ""]
    lines.append("Antécédents et pathologies :")
    lines += [
        f"  {'[ALD] ' if c.is_ald else ''}{c.text}{flag_marks(c.flags)}" for c in summary.conditions
    ] or ["  (aucun)"]
    lines.append("Traitements en cours :")
    lines += [f"  {treatment_line(t)}{flag_marks(t.flags)}" for t in summary.treatments] or ["  (aucun)"]
    for kind, label in (("weight", "Poids"), ("height", "Taille")):
        measure = summary.latest(kind)
        if measure:
            lines.append(f"{label} : {measure_line(measure, today)}")
    if summary.recent_prescriptions:
        lines.append("Prescriptions récentes :")
        lines += [f"  {fr_date(p.authored_on)} {p.text}" for p in summary.recent_prescriptions]
    if summary.general_practitioner:
        lines.append(f"Médecin traitant : {summary.general_practitioner.display_name}")
    if summary.appointments:
        lines.append("Rendez-vous à venir :")
        lines += [f"  {fr_datetime(a.start)} {a.description}".rstrip() for a in summary.appointments]
    return "\n".join(lines)

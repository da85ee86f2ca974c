"""French display of identities, dates and ages, shared by the CLI, the TUI and the printed forms.

One place decides how a patient is named on screen and on paper (DOMAIN.md, identitovigilance):
`BIRTHNAME (usedname) First-name — né(e) le JJ/MM/AAAA — sex`, the date of birth always beside the
name, and the INS only for a qualified identity.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import zoneinfo
from typing import Any

from continuity import flags
from continuity.model import AllergyStatus, IdentityStatus, Patient, PatientSummary, Sex, Treatment

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


def born_label(patient: Patient) -> str:
    prefix = {Sex.FEMALE: "née", Sex.MALE: "né"}.get(patient.sex, "né(e)")
    return f"{prefix} le {fr_date(patient.birth_date)}"


def age_label(patient: Patient, today: dt.date) -> str:
    age = patient.age_on(today)
    if age is None:
        return "âge inconnu"
    if age >= 2 or patient.birth_date is None:
        return f"{age} ans"
    months = (today.year - patient.birth_date.year) * 12 + today.month - patient.birth_date.month
    months -= today.day < patient.birth_date.day
    return f"{max(months, 0)} mois"


def names_label(patient: Patient) -> str:
    """BIRTHNAME (usedname) Given names: the used name in brackets only when it differs."""
    used = f" ({patient.used_name})" if patient.used_name and patient.used_name != patient.birth_name else ""
    given = " ".join(patient.birth_given_names)
    if patient.used_given_name and patient.used_given_name not in patient.birth_given_names:
        given += f" « {patient.used_given_name} »"
    return f"{patient.birth_name.upper()}{used} {given}".strip()


def identity_line(patient: Patient) -> str:
    return f"{names_label(patient)} — {born_label(patient)} — {patient.sex.label_fr}"


def age_of_data(created_at: dt.datetime, now: dt.datetime) -> str:
    """'il y a 15 h', 'il y a 3 j' — how old the snapshot is, for banners and printouts."""
    seconds = max(0, int((now - created_at).total_seconds()))
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
    return text + (f" [{'; '.join(marks)}]" if marks else "") + flag_marks(treatment.flags)


def flag_marks(codes: tuple[str, ...]) -> str:
    """What the export left uncertain about an item, shown beside it (continuity.flags): " ⚠ statut inconnu…"."""
    return "".join(f" ⚠ {label}" for label in flags.labels_fr(codes))


def summary_text(summary: PatientSummary, *, homonyms: int, today: dt.date) -> str:
    patient = summary.patient
    lines = [identity_line(patient) + f" ({age_label(patient, today)})"]
    status = IDENTITY_STATUS_FR[patient.identity_status]
    lines.append(f"Identité : {status}" + (f" — INS {patient.ins}" if patient.ins else ""))
    if homonyms:
        lines.append(f"⚠ Homonyme ({homonyms} autre(s) patient(s) du même nom) : vérifier la date de naissance")
    if patient.deceased:
        lines.append("⚠ Patient décédé")
    lines += [f"⚠ {label}" for label in flags.labels_fr(patient.flags)]
    if patient.phones:
        lines.append("Téléphone : " + ", ".join(patient.phones))
    lines += ["", allergy_headline(summary), ""]
    lines.append("Antécédents et pathologies :")
    lines += [
        f"  {'[ALD] ' if c.is_ald else ''}{c.text}{flag_marks(c.flags)}" for c in summary.conditions
    ] or ["  (aucun)"]
    lines.append("Traitements en cours :")
    lines += [f"  {treatment_line(t)}" for t in summary.treatments] or ["  (aucun)"]
    for kind, label, unit in (("weight", "Poids", "kg"), ("height", "Taille", "cm")):
        measure = summary.latest(kind)
        if measure:
            lines.append(f"{label} : {fr_number(measure.value)} {unit} (le {fr_date(measure.measured_on)})")
    if summary.recent_prescriptions:
        lines.append("Prescriptions récentes :")
        lines += [f"  {fr_date(p.authored_on)} {p.text}" for p in summary.recent_prescriptions]
    if summary.general_practitioner:
        lines.append(f"Médecin traitant : {summary.general_practitioner.display_name}")
    if summary.appointments:
        lines.append("Rendez-vous à venir :")
        lines += [f"  {fr_datetime(a.start)} {a.description}".rstrip() for a in summary.appointments]
    return "\n".join(lines)

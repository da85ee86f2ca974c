"""The text of the paper ordonnance: every string the form shows, computed once for the PDF and the preview.

`printed_form()` is the only place the wording is decided; forms/ordonnance.html and forms/bizone.html
only lay it out, and `preview_text()` shows the same strings on screen, so the preview is what prints.
French typography: the sex and the number are known, so no "Né(e)" or "ligne(s)"; decimal comma.

Every string of the form goes through `paper_text()`: control and invisible format characters (a
RIGHT-TO-LEFT OVERRIDE that prints "2 fois par jour" backwards, a terminal escape that prints as a
missing-glyph box) never reach the paper or the preview, whatever the record or the typed line holds.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from continuity import display
from continuity.drugs import text
from continuity.model import NonSubstitutionReason, Prescription, PrescriptionLine, Sex
from continuity.prescribing.rules import ADULT_AGE, duration_text

ALD_HEADING = (
    "Prescriptions relatives au traitement de l'affection de longue durée reconnue "
    "(liste ou hors liste) (AFFECTION EXONÉRANTE)"
)
OTHER_HEADING = "Prescriptions SANS RAPPORT avec l'affection de longue durée (MALADIES INTERCURRENTES)"
DUPLICATE_MENTION = "Duplicata ne permettant pas la délivrance des médicaments"
DRILL_MENTION = "EXERCICE — NE PAS DÉLIVRER"


# Cc: controls (ESC, BEL, NUL, C1); Cf: formats (bidi overrides, embeddings and isolates, LRM/RLM,
# zero-width characters, soft hyphen); Cs/Co: lone surrogates and private-use code points (no glyph).
# Line and paragraph separators and whitespace controls become a plain space.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


def paper_text(value: str) -> str:
    """`value` without control or invisible format characters: what may be printed (the forms' filter too)."""
    if value.isprintable():  # the usual case; also False for any space but " " (kept below when not a control)
        return value
    out = []
    for char in value:
        category = unicodedata.category(char)
        if category in ("Zl", "Zp") or (category == "Cc" and char.isspace()):
            out.append(" ")
        elif category not in _DROPPED_CATEGORIES:
            out.append(char)
    return "".join(out)


def _paper_value(value: Any) -> Any:
    """A form field with `paper_text` applied to every string in it (whitespace runs then collapsed)."""
    if isinstance(value, str):
        return " ".join(paper_text(value).split()) if not value.isprintable() else value
    if isinstance(value, tuple):
        return tuple(_paper_value(item) for item in value)
    if isinstance(value, PrintedLine):
        return replace(value, title=_paper_value(value.title), details=_paper_value(value.details))
    return value


def date_fr(day: dt.date | dt.datetime | None) -> str:
    """JJ/MM/AAAA on the practice's calendar (the Jinja filter of the forms)."""
    return display.fr_date(day, unknown="inconnue")


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
    running_header: str  # prescriber (name, RPPS), patient and date, on every page after the first
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


def decimal_comma(value: str) -> str:
    """'2.5 mg' → '2,5 mg' (French decimal comma); other text unchanged."""
    return re.sub(r"(?<=\d)\.(?=\d)", ",", value)


def line_title(line: PrescriptionLine) -> str:
    parts = [" ".join(p for p in (line.dci, decimal_comma(line.strength)) if p)]
    parts += [p for p in (line.form, text.route_label(line.route)) if p]
    title = ", ".join(parts)
    # The brand adds information only when it is not the DCI's own label ("metformine 1000 mg, comprimé").
    if line.brand and not text.fold(line.brand).startswith(text.fold(line.dci)):
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


def _born_line(prescription: Prescription, today: dt.date) -> str:
    patient = prescription.patient
    if patient.birth_date is None:
        return "Date de naissance : inconnue"
    age = display.age_label(patient, today)
    if patient.sex in (Sex.FEMALE, Sex.MALE):
        return f"{display.born_label(patient).capitalize()} ({age})"
    return f"Date de naissance : {date_fr(patient.birth_date)} ({age})"


def line_count(count: int) -> str:
    return display.plural(count, "ligne prescrite", "lignes prescrites")


def printed_form(
    prescription: Prescription, *, snapshot_created_at: dt.datetime | None, footer: bool = True
) -> PrintedForm:
    """The text of the paper form (templates and preview both render this)."""
    prescriber = prescription.prescriber
    patient = prescription.patient
    issued = date_fr(prescription.issued_at)

    rpps = f"N° RPPS : {prescriber.rpps}"
    prescriber_lines = tuple(dict.fromkeys(line for line in (prescriber.qualite, prescriber.specialty, rpps) if line))
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
    patient_lines = [f"Sexe : {patient.sex.label_fr}", _born_line(prescription, today)]
    measure_lines: list[str] = []
    if prescription.weight is not None:
        w = prescription.weight
        measure_lines.append(f"Poids : {display.fr_number(w.value)} {w.unit} (mesuré le {date_fr(w.measured_on)})")
    elif _is_child(prescription):
        # The pharmacist checks a child's dose against the weight: say it is missing, never just leave it off.
        measure_lines.append("Poids : non renseigné")
    if prescription.height is not None:
        h = prescription.height
        measure_lines.append(f"Taille : {display.fr_number(h.value)} {h.unit} (mesurée le {date_fr(h.measured_on)})")

    # Bizone: ALD lines first (top zone) then the others, numbered in print order.
    bizone = prescription.is_bizone
    ordered = list(prescription.lines)
    if bizone:
        ordered = [line for line in ordered if line.ald_related] + [line for line in ordered if not line.ald_related]
    numbered = [
        PrintedLine(number=i, title=line_title(line), details=line_details(line))
        for i, line in enumerate(ordered, start=1)
    ]
    ald_lines: tuple[PrintedLine, ...] = ()
    other_lines: tuple[PrintedLine, ...] = ()
    lines: tuple[PrintedLine, ...] = ()
    if bizone:
        n_ald = sum(1 for line in prescription.lines if line.ald_related)
        ald_lines, other_lines = tuple(numbered[:n_ald]), tuple(numbered[n_ald:])
    else:
        lines = tuple(numbered)

    name = display.patient_name(patient)
    birth = f", {display.born_label(patient)}" if patient.birth_date else ""
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
    form = PrintedForm(
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
        line_count=line_count(len(prescription.lines)),
        signature=f"Signature du {prescriber.display_name}",
        running_header=f"{prescriber.display_name} — {rpps} — {name}{birth} — ordonnance du {issued}",
        snapshot_line=snapshot,
        paper_line=paper,
        reference=f"Réf. {prescription.id}",
        all_lines=tuple(numbered),
    )
    return replace(form, **{f.name: _paper_value(getattr(form, f.name)) for f in fields(form)})


def _is_child(prescription: Prescription) -> bool:
    age = prescription.patient.age_on(display.local(prescription.issued_at).date())
    return age is not None and age < ADULT_AGE


def preview_text(
    prescription: Prescription,
    *,
    snapshot_created_at: dt.datetime | None = None,
    footer: bool = True,
    width: int = 78,
) -> str:
    """What will be printed, as plain text (zones included), for the TUI preview and `--preview`."""
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

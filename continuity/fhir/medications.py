"""Treatments from FHIR: Medication, MedicationRequest and MedicationStatement (docs/fhir-input.md, "Drug names").

A MedicationRequest or MedicationStatement becomes an ongoing ``Treatment`` or a
``RecentPrescription`` by its status; its medication is a CodeableConcept, a contained Medication, a
Medication elsewhere in the sources (described in pass 1) or a reference with only a display.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata

from continuity.fhir.datatypes import (
    Concept,
    bounds_start,
    coding_keys,
    concept_at,
    date_at,
    first_coding,
    posology,
    ratio,
)
from continuity.fhir.indexes import (
    SEEN,
    Conversion,
    Effect,
    MedicationDescribed,
    MedicationText,
    Skip,
    SubjectRef,
)
from continuity.fhir.json import JSON, Invalid, boolean_at, code_at, number_at, object_at, objects_at, text_at
from continuity.fhir.sources import Item, reference_key
from continuity.fhir.vocabulary import (
    ALD_CODE,
    COURSES_OF_THERAPY,
    NO_MEDICATION_CODES,
    NO_MEDICATION_TEXTS,
    RECENT_STATUSES,
    SUBSTITUTION_REASON,
    TREATMENT_STATUSES,
)
from continuity.flags import CODE_ONLY, POSSIBLE_ABSENCE, STATUS_UNKNOWN, UNRESOLVED_MEDICATION
from continuity.intake import absence, digest
from continuity.model import NonSubstitutionReason, RecentPrescription, Record, Treatment

_MAX_CODES = 32  # codings kept per medication (a hostile export could list thousands)


def describe_medication(resource: JSON, path: str, code_field: str = "code") -> MedicationText:
    """What a Medication (or a medicationCodeableConcept) says; Invalid when it names nothing at all."""
    node = resource.get(code_field)
    code = concept_at(resource, code_field, path)
    said = absence(code.text, "medication") if code.text else ""
    negation = bool(code.codes & NO_MEDICATION_CODES) or code.normalized_text in NO_MEDICATION_TEXTS
    negation = negation or said == "absent"
    flags: list[str] = []
    codes = coding_keys(node)
    names: list[str] = []
    strengths: list[str] = []
    for ingredient, ingredient_path in objects_at(resource, "ingredient", path):
        item = concept_at(ingredient, "itemCodeableConcept", ingredient_path)
        reference = object_at(ingredient, "itemReference", ingredient_path)
        name = item.atc_display or item.text
        if not name and reference is not None:
            name = text_at(reference, "display", f"{ingredient_path}.itemReference")
        if not name and item.code:
            name = first_coding(item)
            flags.append(CODE_ONLY)
        for key in coding_keys(ingredient.get("itemCodeableConcept")):
            if key not in codes:
                codes.append(key)
        if name:
            names.append(name)
            strength = ratio(object_at(ingredient, "strength", ingredient_path), f"{ingredient_path}.strength")
            if strength:
                strengths.append(strength)
    dci = " + ".join(names) or code.atc_display or code.text
    if not dci and not negation:
        if not code.code:
            raise Invalid("the medication has no name and no code")
        dci = first_coding(code)  # "SNOMED CT 418770003": kept, flagged, never printed as if identified
        flags.append(CODE_ONLY)
    if said == "possible" and not names:
        flags.append(POSSIBLE_ABSENCE)
    # The product label is kept as the brand only when it names something else than the substance
    # ("LEVOTHYROX 75 µg"); "ramipril 5 mg, comprimé sécable" would print the DCI twice.
    label = code.own_text if code.own_text and not _mentions(code.own_text, dci) else ""
    return MedicationText(
        dci=dci,
        strength=" + ".join(strengths) if len(strengths) == len(names) else "",
        form=concept_at(resource, "form", path).text,
        label=label,
        negation=negation,
        codes=tuple(codes[:_MAX_CODES]),
        flags=tuple(dict.fromkeys(flags)),
    )


def learn_medication(item: Item) -> list[Effect]:
    """Pass 1: a Medication is described once, for every line that refers to it."""
    medication = describe_medication(item.resource, item.resource_type)
    # Two different products under one id differ by name, codes, strength or form.
    fingerprint = digest(f"{medication.dci}|{sorted(medication.codes)}|{medication.strength}|{medication.form}")
    return [MedicationDescribed(medication, fingerprint)]


def learn_medication_use(item: Item) -> list[Effect]:
    """Pass 1: counted under its key; inside a Bundle, the patient it points to."""
    resource, path = item.resource, item.resource_type
    if item.scope is None:
        return [SEEN]
    subject = object_at(resource, "subject", path)
    subject_key = reference_key(subject, f"{path}.subject", item.scope) if subject is not None else ""
    return [SubjectRef(subject_key, item.scope.sole_patient()), SEEN]


def _unresolved(reference: JSON, ref_path: str, message: str) -> MedicationText:
    """A medication reference that leads nowhere: the line is kept with the reference's display, flagged;
    without a display there is nothing to show, and the line is refused."""
    display = text_at(reference, "display", ref_path)
    if display:
        return MedicationText(dci=display, flags=(UNRESOLVED_MEDICATION,))
    raise Invalid(message, reason="unresolved-reference")


def _resolve_medication(conversion: Conversion, resource: JSON, path: str) -> MedicationText:
    indexes = conversion.indexes
    if object_at(resource, "medicationCodeableConcept", path) is not None:
        return describe_medication(resource, path, "medicationCodeableConcept")
    reference = object_at(resource, "medicationReference", path)
    if reference is None:
        raise Invalid(f"{path} has no medicationCodeableConcept or medicationReference")
    ref_path = f"{path}.medicationReference"
    target = code_at(reference, "reference", ref_path)
    if target.startswith("#"):
        for contained, contained_path in objects_at(resource, "contained", path):
            if contained.get("resourceType") == "Medication" and contained.get("id") == target[1:]:
                try:
                    return describe_medication(contained, contained_path)
                except Invalid as error:
                    return _unresolved(reference, ref_path, f"its contained medication is invalid: {error}")
        return _unresolved(reference, ref_path, f"contained medication {target[:80]!r} cannot be found")
    if not target:
        display = text_at(reference, "display", ref_path)
        if display:  # a reference that only carries a display: the only text the source had
            return MedicationText(dci=display)
        raise Invalid(f"{ref_path} has no reference and no display")
    key = conversion.resolve(reference_key(reference, ref_path, conversion.item.scope))
    if key in indexes.medications:
        return indexes.medications[key]
    if key in indexes.rejected:
        return _unresolved(
            reference, ref_path, f"its medication {key[:300]} was rejected (see the problem reported for it)"
        )
    return _unresolved(reference, ref_path, f"medication {key[:300] or target[:200]!r} cannot be found")


def _ald_link(conversion: Conversion, resource: JSON, path: str) -> bool:
    """True when a reasonReference points to an ALD marker; an explicit MED-574 "false" wins."""
    linked = explicit_no = False
    for reference, ref_path in objects_at(resource, "reasonReference", path):
        target = code_at(reference, "reference", ref_path)
        if target.startswith("#"):
            for contained, contained_path in objects_at(resource, "contained", path):
                if contained.get("id") == target[1:] and contained.get("resourceType") == "Observation":
                    if ALD_CODE in concept_at(contained, "code", contained_path).codes:
                        value = boolean_at(contained, "valueBoolean", contained_path)
                        linked |= value is True
                        explicit_no |= value is False
            continue
        key = reference_key(reference, ref_path, conversion.item.scope)
        ald_observations = conversion.indexes.ald_observations
        if key in ald_observations:
            linked |= ald_observations[key]
            explicit_no |= not ald_observations[key]
        elif key in conversion.indexes.ald_conditions:
            linked = True
    return linked and not explicit_no


def convert_medication_use(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    is_request = item.resource_type == "MedicationRequest"
    status = code_at(resource, "status", path) or "active"
    if status not in TREATMENT_STATUSES and status not in RECENT_STATUSES and status != "unknown":
        raise Skip("status")  # entered-in-error, cancelled, not-taken, draft
    medication = _resolve_medication(conversion, resource, path)
    if medication.negation:
        raise Skip("negation")
    flags = list(medication.flags)
    if status == "unknown":  # whole medication sections are exported so: a current treatment, to check
        flags.insert(0, STATUS_UNKNOWN)
    patient_id = conversion.patient_id(object_at(resource, "subject", path), f"{path}.subject")
    dosages = objects_at(resource, "dosageInstruction" if is_request else "dosage", path)
    posology_text = "; ".join(p for d, d_path in dosages if (p := posology(d, d_path)))
    route = next((c.text for d, d_path in dosages if (c := concept_at(d, "route", d_path)).text), "")
    started = next((b for d, d_path in dosages if (b := bounds_start(d, d_path))), None)
    if is_request:
        authored = date_at(resource, "authoredOn", path)
        prescriber = conversion.practitioner_id(object_at(resource, "requester", path), f"{path}.requester")
        start = started or authored
    else:
        period = object_at(resource, "effectivePeriod", path)
        start = date_at(period, "start", f"{path}.effectivePeriod") if period else None
        start = start or date_at(resource, "effectiveDateTime", path) or started
        authored = date_at(resource, "dateAsserted", path)
        prescriber = conversion.practitioner_id(
            object_at(resource, "informationSource", path), f"{path}.informationSource"
        )
    record_id = item.key.split("/", 1)[1]
    if status in RECENT_STATUSES:
        drug = " ".join(p for p in (medication.dci, medication.strength, medication.form) if p)
        return [
            RecentPrescription(
                id=record_id,
                patient_id=patient_id,
                authored_on=authored or start,
                prescriber_id=prescriber,
                text=f"{drug} — {posology_text}" if posology_text else drug,
            )
        ]
    non_substitution, renewals = None, None
    course = ""
    if is_request:
        non_substitution = _non_substitution(conversion, resource, path)
        dispense = object_at(resource, "dispenseRequest", path)
        if dispense is not None:
            repeats = number_at(dispense, "numberOfRepeatsAllowed", f"{path}.dispenseRequest")
            if repeats is not None:
                if repeats < 0 or repeats != int(repeats) or repeats > 1000:
                    raise Invalid(f"{path}.dispenseRequest.numberOfRepeatsAllowed must be a small whole number")
                renewals = int(repeats)
        course = _course(concept_at(resource, "courseOfTherapyType", path))
    return [
        Treatment(
            id=record_id,
            patient_id=patient_id,
            dci=medication.dci,
            strength=medication.strength,
            form=medication.form,
            route=route,
            posology=posology_text,
            brand=medication.label,
            start_date=start,
            chronic=course == "continuous",
            ald_related=_ald_link(conversion, resource, path),
            non_substitution=non_substitution,
            renewals_left=renewals,
            last_prescriber_id=prescriber,
            last_prescribed_on=authored if is_request else None,
            codes=medication.codes,
            course=course,
            end_date=_end_date(resource, path, dosages, start, is_request),
            flags=tuple(dict.fromkeys(flags)),
        )
    ]


def _course(concept: Concept) -> str:
    """courseOfTherapyType: acute, continuous or seasonal (by code, whatever the system, else by text)."""
    for code in (*sorted(concept.codes), concept.normalized_text):
        if code in COURSES_OF_THERAPY:
            return code
    return ""


def _end_date(
    resource: JSON, path: str, dosages: list[tuple[JSON, str]], start: dt.date | None, is_request: bool
) -> dt.date | None:
    """When the treatment ends, as the source says it. The first found wins, most explicit first:

    1. ``MedicationStatement.effectivePeriod.end``;
    2. the dosages' ``timing.repeat.boundsPeriod.end`` (the latest, when several dosages have one);
    3. the dosages' ``timing.repeat.boundsDuration`` counted from the start (days, weeks, calendar
       months and years);
    4. ``MedicationRequest.dispenseRequest.validityPeriod.end`` (how long the prescription may be dispensed).
    """
    # Each field is looked for before it is read: most lines have none of them (a hot path at 100,000 patients).
    if not is_request and "effectivePeriod" in resource:
        period = object_at(resource, "effectivePeriod", path)
        end = date_at(period, "end", f"{path}.effectivePeriod") if period else None
        if end is not None:
            return end
    ends: list[dt.date] = []
    durations: list[dt.date] = []
    for dosage, dosage_path in dosages:
        if "timing" not in dosage:
            continue
        timing = object_at(dosage, "timing", dosage_path)
        repeat = object_at(timing, "repeat", f"{dosage_path}.timing") if timing else None
        if repeat is None or ("boundsPeriod" not in repeat and "boundsDuration" not in repeat):
            continue
        repeat_path = f"{dosage_path}.timing.repeat"
        bounds = object_at(repeat, "boundsPeriod", repeat_path)
        if bounds is not None and (end := date_at(bounds, "end", f"{repeat_path}.boundsPeriod")) is not None:
            ends.append(end)
        duration = object_at(repeat, "boundsDuration", repeat_path)
        if duration is not None and start is not None:
            if (end := _after(start, duration, f"{repeat_path}.boundsDuration")) is not None:
                durations.append(end)
    if ends or durations:
        return max(ends or durations)
    if is_request and "dispenseRequest" in resource:
        dispense = object_at(resource, "dispenseRequest", path)
        validity = object_at(dispense, "validityPeriod", f"{path}.dispenseRequest") if dispense else None
        if validity is not None:
            return date_at(validity, "end", f"{path}.dispenseRequest.validityPeriod")
    return None


def _after(start: dt.date, duration: JSON, path: str) -> dt.date | None:
    """``start`` plus a FHIR Duration (UCUM d, wk, mo, a; h and min end the same day)."""
    value = number_at(duration, "value", path)
    unit = code_at(duration, "code", path) or code_at(duration, "unit", path)
    if value is None or value < 0 or value > 36500:
        return None
    unit = _DURATION_UNITS.get(unit.lower(), "")
    try:
        if unit == "d":
            return start + dt.timedelta(days=round(value))
        if unit == "wk":
            return start + dt.timedelta(weeks=value)
        if unit in ("mo", "a"):
            months = round(value * (12 if unit == "a" else 1))
            year, month = divmod(start.month - 1 + months, 12)
            year += start.year
            return dt.date(year, month + 1, min(start.day, calendar.monthrange(year, month + 1)[1]))
        if unit in ("h", "min", "s"):
            return start
    except (OverflowError, ValueError):
        return None
    return None


_DURATION_UNITS = {
    **dict.fromkeys(("d", "day", "days", "jour", "jours"), "d"),
    **dict.fromkeys(("wk", "week", "weeks", "semaine", "semaines"), "wk"),
    **dict.fromkeys(("mo", "month", "months", "mois"), "mo"),
    **dict.fromkeys(("a", "year", "years", "an", "ans", "annee", "annees", "année", "années"), "a"),
    **dict.fromkeys(("h", "hour", "hours", "min", "minute", "minutes", "s"), "h"),
}


def _non_substitution(conversion: Conversion, resource: JSON, path: str) -> NonSubstitutionReason | None:
    substitution = object_at(resource, "substitution", path)
    if substitution is None:
        return None
    sub_path = f"{path}.substitution"
    allowed = boolean_at(substitution, "allowedBoolean", sub_path)
    if allowed is None:
        allowed_concept = concept_at(substitution, "allowedCodeableConcept", sub_path)
        allowed = not (allowed_concept.codes & {"N", "none"}) if allowed_concept.codes else None
    if allowed is not False:
        return None
    reason = concept_at(substitution, "reason", sub_path)
    candidates = [c.upper() for c in reason.codes] + SUBSTITUTION_REASON.findall(reason.text.upper())
    for candidate in candidates:
        if candidate in NonSubstitutionReason.__members__:
            return NonSubstitutionReason(candidate)
    conversion.warn(
        "substitution refused without one of the reasons MTE / EFG / CIF: the line stays substitutable",
    )
    return None


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def _mentions(label: str, dci: str) -> bool:
    """Whether a product label names the (first) substance of the DCI."""
    words = re.findall(r"\w+", _fold(dci))
    return bool(words) and words[0] in re.findall(r"\w+", _fold(label))

"""The clinical summary from FHIR: AllergyIntolerance, Condition, Observation, Appointment, IPS Composition."""

from __future__ import annotations

from continuity.fhir.datatypes import (
    Concept,
    codings,
    concept_at,
    concept_of,
    date_at,
    datetime_at,
    status_code,
)
from continuity.fhir.indexes import AldCondition, AldObservation, AllergySaid, Conversion, Effect, Seen
from continuity.fhir.json import JSON, Invalid, boolean_at, code_at, number_at, object_at, objects_at, text_at, texts_at
from continuity.fhir.sources import Item, reference_key
from continuity.fhir.vocabulary import (
    ALD_CODE,
    ALLERGY_SECTION,
    DROPPED_VERIFICATION,
    HEIGHT_CODES,
    HEIGHT_UNITS,
    LOINC,
    NO_ALLERGY_INFO_CODES,
    NO_KNOWN_ALLERGY_CODES,
    NO_KNOWN_ALLERGY_TEXTS,
    NO_PROBLEM_CODES,
    NO_PROBLEM_TEXTS,
    PARTIAL_NO_ALLERGY_CODES,
    WEIGHT_CODES,
    WEIGHT_UNITS,
)
from continuity.model import Allergy, AllergyStatus, Appointment, Condition, Measurement, Record

# --- AllergyIntolerance ---------------------------------------------------------------------------

_STATUS_OF_KIND = {
    "allergy": AllergyStatus.RECORDED,
    "none_known": AllergyStatus.NONE_KNOWN,
    "no_information": AllergyStatus.NO_INFORMATION,
}


def allergy_kind(resource: JSON, path: str) -> tuple[str, Concept]:
    """What an AllergyIntolerance says: allergy, none_known, no_information, partial_negation, dropped, invalid."""
    verification = status_code(resource, "verificationStatus", path)
    if verification in DROPPED_VERIFICATION:
        return "dropped", Concept()
    code = concept_at(resource, "code", path)
    if code.codes & NO_KNOWN_ALLERGY_CODES or code.normalized_text in NO_KNOWN_ALLERGY_TEXTS:
        return "none_known", code
    if code.codes & NO_ALLERGY_INFO_CODES:
        return "no_information", code
    if code.codes & PARTIAL_NO_ALLERGY_CODES:
        return "partial_negation", code
    if not code.text:
        for reaction, reaction_path in objects_at(resource, "reaction", path):
            substance = concept_at(reaction, "substance", reaction_path)
            if substance.text:
                return "allergy", substance
        return "invalid", code
    return "allergy", code


def learn_allergy(item: Item) -> list[Effect]:
    """Pass 1: what the resource says about the patient's allergies as a whole."""
    resource, path = item.resource, item.resource_type
    effects: list[Effect] = []
    patient = object_at(resource, "patient", path)
    patient_key = reference_key(patient, f"{path}.patient", item.scope) if patient is not None else ""
    if patient_key:
        kind, _ = allergy_kind(resource, path)
        status = _STATUS_OF_KIND.get(kind)
        if status is not None:
            effects.append(AllergySaid(patient_key, status))
    effects.append(Seen())
    return effects


def convert_allergy(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    kind, code = allergy_kind(resource, path)
    if kind == "invalid":
        raise Invalid("AllergyIntolerance has no substance (no code text, display or reaction substance)")
    if kind != "allergy":
        return []
    patient_id = conversion.patient_id(object_at(resource, "patient", path), f"{path}.patient")
    criticality = code_at(resource, "criticality", path)
    categories = texts_at(resource, "category", path)
    manifestations: list[str] = []
    for reaction, reaction_path in objects_at(resource, "reaction", path):
        for manifestation, manifestation_path in objects_at(reaction, "manifestation", reaction_path):
            text = concept_of(manifestation, manifestation_path).text
            if text and text not in manifestations:
                manifestations.append(text)
    return [
        Allergy(
            id=item.key.split("/", 1)[1],
            patient_id=patient_id,
            substance=code.text,
            code=code.code,
            code_system=code.system,
            criticality=criticality,
            reaction=", ".join(manifestations),
            category=categories[0] if categories else "",
        )
    ]


def learn_composition(item: Item) -> list[Effect]:
    """An IPS Composition whose Allergies section has only an ``emptyReason`` says the allergy status."""
    resource, path = item.resource, item.resource_type
    subject = object_at(resource, "subject", path)
    if subject is None:
        return []
    patient_key = reference_key(subject, f"{path}.subject", item.scope)
    if not patient_key.startswith("Patient/"):
        return []
    effects: list[Effect] = []
    for section, section_path in objects_at(resource, "section", path):
        code = concept_at(section, "code", section_path)
        empty = object_at(section, "emptyReason", section_path)
        if ALLERGY_SECTION not in code.codes or empty is None or section.get("entry"):
            continue
        reason = concept_of(empty, f"{section_path}.emptyReason")
        status = AllergyStatus.NONE_KNOWN if "nilknown" in reason.codes else AllergyStatus.NO_INFORMATION
        effects.append(AllergySaid(patient_key, status))
    return effects


# --- Condition ------------------------------------------------------------------------------------


def _categories(resource: JSON, path: str) -> list[Concept]:
    return [concept_of(category, category_path) for category, category_path in objects_at(resource, "category", path)]


def learn_condition(item: Item) -> list[Effect]:
    """Pass 1: a Condition with a category coded ``ALD`` (any system) is an ALD."""
    categories = _categories(item.resource, item.resource_type)
    if any(c.code.upper() == "ALD" or c.text.upper() == "ALD" for c in categories):
        return [AldCondition(item.key), Seen()]
    return [Seen()]


def convert_condition(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    if status_code(resource, "verificationStatus", path) in DROPPED_VERIFICATION:
        return []
    code = concept_at(resource, "code", path)
    if code.codes & NO_PROBLEM_CODES or code.normalized_text in NO_PROBLEM_TEXTS:
        return []
    if not code.text:
        raise Invalid("Condition has no text (no code text or display)")
    patient_id = conversion.patient_id(object_at(resource, "subject", path), f"{path}.subject")
    onset = date_at(resource, "onsetDateTime", path)
    period = object_at(resource, "onsetPeriod", path)
    if onset is None and period is not None:
        onset = date_at(period, "start", f"{path}.onsetPeriod")
    return [
        Condition(
            id=item.key.split("/", 1)[1],
            patient_id=patient_id,
            text=code.text,
            code=code.code,
            code_system=code.system,
            is_ald=item.key in conversion.indexes.ald_conditions,
            onset_date=onset,
            clinical_status=status_code(resource, "clinicalStatus", path) or "active",
        )
    ]


# --- Observation ----------------------------------------------------------------------------------


def learn_observation(item: Item) -> list[Effect]:
    """Pass 1: an MED-574 Observation marks an ALD (its value, and the Conditions it has as focus)."""
    resource, path = item.resource, item.resource_type
    effects: list[Effect] = []
    if ALD_CODE in concept_at(resource, "code", path).codes:
        value = boolean_at(resource, "valueBoolean", path)
        if value is not None:
            effects.append(AldObservation(value))
            if value:
                for focus, focus_path in objects_at(resource, "focus", path):
                    condition_key = reference_key(focus, focus_path, item.scope)
                    if condition_key.startswith("Condition/"):
                        effects.append(AldCondition(condition_key))
    effects.append(Seen())
    return effects


def convert_observation(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    if code_at(resource, "status", path) in ("entered-in-error", "cancelled"):
        return []
    loinc = {c for s, c, _ in codings(object_at(resource, "code", path), f"{path}.code") if s in (LOINC, "")}
    if loinc & WEIGHT_CODES:
        kind, units, unit_out = "weight", WEIGHT_UNITS, "kg"
    elif loinc & HEIGHT_CODES:
        kind, units, unit_out = "height", HEIGHT_UNITS, "cm"
    else:
        return []
    quantity = object_at(resource, "valueQuantity", path)
    if quantity is None:
        return []  # e.g. a dataAbsentReason: nothing measured
    q_path = f"{path}.valueQuantity"
    value = number_at(quantity, "value", q_path)
    unit = text_at(quantity, "code", q_path) or text_at(quantity, "unit", q_path)
    if value is None:
        return []
    factor = units.get(unit) or units.get(unit.lower())
    if factor is None:
        raise Invalid(f"{kind} in an unknown unit {unit[:20]!r}")
    if value <= 0:
        raise Invalid(f"{kind} must be positive, not {value}")
    patient_id = conversion.patient_id(object_at(resource, "subject", path), f"{path}.subject")
    measured = date_at(resource, "effectiveDateTime", path)
    period = object_at(resource, "effectivePeriod", path)
    if measured is None and period is not None:
        measured = date_at(period, "start", f"{path}.effectivePeriod")
    return [Measurement(patient_id, kind, round(value * factor, 3), unit_out, measured)]


# --- Appointment ----------------------------------------------------------------------------------


def convert_appointment(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    status = code_at(resource, "status", path) or "booked"
    if status == "entered-in-error":
        return []
    patient_reference: tuple[JSON, str] | None = None
    practitioner_id = ""
    for participant, participant_path in objects_at(resource, "participant", path):
        actor = object_at(participant, "actor", participant_path)
        if actor is None:
            continue
        actor_path = f"{participant_path}.actor"
        key = reference_key(actor, actor_path, item.scope)
        if key.startswith("Patient/") or (not key and text_at(actor, "type", actor_path) == "Patient"):
            patient_reference = patient_reference or (actor, actor_path)
        elif not practitioner_id:
            practitioner_id = conversion.practitioner_id(actor, actor_path)
    if patient_reference is None:
        return []  # a slot without a patient (meeting, blocked time): nothing to call about
    patient_id = conversion.patient_id(*patient_reference)
    start = datetime_at(resource, "start", path)
    if start is None:
        raise Invalid("Appointment has no start")
    return [
        Appointment(
            id=item.key.split("/", 1)[1],
            patient_id=patient_id,
            practitioner_id=practitioner_id,
            start=start,
            end=datetime_at(resource, "end", path),
            status=status,
            description=text_at(resource, "description", path),
        )
    ]

"""The clinical summary from FHIR: AllergyIntolerance, Condition, Observation, Appointment, IPS Composition."""

from __future__ import annotations

from continuity.fhir.datatypes import (
    NO_CONCEPT,
    Concept,
    codings,
    concept_at,
    concept_of,
    date_at,
    datetime_at,
    first_coding,
    status_code,
)
from continuity.fhir.indexes import (
    SEEN,
    AldCondition,
    AldObservation,
    AllergySaid,
    Conversion,
    Effect,
    Skip,
    SubjectRef,
)
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
    UNCONFIRMED_VERIFICATION,
    WEIGHT_CODES,
    WEIGHT_UNITS,
)
from continuity.flags import CODE_ONLY, INACTIVE, NO_SUBSTANCE, POSSIBLE_ABSENCE, RESOLVED, UNCONFIRMED
from continuity.intake import absence
from continuity.model import Allergy, AllergyStatus, Appointment, Condition, Measurement, Record

# --- AllergyIntolerance ---------------------------------------------------------------------------

_STATUS_OF_KIND = {
    "allergy": AllergyStatus.RECORDED,
    "none_known": AllergyStatus.NONE_KNOWN,
    "no_information": AllergyStatus.NO_INFORMATION,
}


class AllergyReading:
    """What an AllergyIntolerance says, read once for both passes.

    ``kind``: ``allergy`` (kept, and the patient's allergy status is RECORDED), ``none_known`` /
    ``no_information`` (a statement about allergies as a whole), ``partial_negation`` ("no known food
    allergy": says nothing about drugs) or ``refuted`` (verificationStatus refuted / entered-in-error).
    An allergy is never dropped for lack of a name: a code alone gives a label from its system, and
    nothing at all gives "substance non précisée", flagged.
    """

    __slots__ = ("flags", "kind", "substance", "substance_concept")

    def __init__(self, resource: JSON, path: str) -> None:
        self.flags: list[str] = []
        self.substance = ""
        self.substance_concept = NO_CONCEPT
        verification = status_code(resource, "verificationStatus", path)
        if verification in DROPPED_VERIFICATION:
            self.kind = "refuted"
            return
        code = concept_at(resource, "code", path)
        said = absence(code.text, "allergy") if code.text else ""
        if code.codes & NO_KNOWN_ALLERGY_CODES or code.normalized_text in NO_KNOWN_ALLERGY_TEXTS or said == "absent":
            self.kind = "none_known"
            return
        if code.codes & NO_ALLERGY_INFO_CODES:
            self.kind = "no_information"
            return
        if code.codes & PARTIAL_NO_ALLERGY_CODES:
            self.kind = "partial_negation"
            return
        self.kind = "allergy"
        if not code.text:
            for reaction, reaction_path in objects_at(resource, "reaction", path):
                substance = concept_at(reaction, "substance", reaction_path)
                if substance.text or substance.code:
                    code = substance
                    break
        self.substance_concept = code
        if code.text:
            self.substance = code.text
            if said == "possible":
                self.flags.append(POSSIBLE_ABSENCE)
        elif code.code:
            self.substance = first_coding(code)
            self.flags.append(CODE_ONLY)
        else:
            self.substance = "substance non précisée"
            self.flags.append(NO_SUBSTANCE)


def learn_allergy(item: Item) -> list[Effect]:
    """Pass 1: what the resource says about the patient's allergies as a whole."""
    resource, path = item.resource, item.resource_type
    effects: list[Effect] = []
    patient = object_at(resource, "patient", path)
    patient_key = reference_key(patient, f"{path}.patient", item.scope) if patient is not None else ""
    if patient_key:
        status = _STATUS_OF_KIND.get(AllergyReading(resource, path).kind)
        if status is not None:
            effects.append(AllergySaid(patient_key, status))
    effects += _subject(item, patient, f"{path}.patient")
    effects.append(SEEN)
    return effects


def convert_allergy(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    reading = AllergyReading(resource, path)
    if reading.kind == "refuted":
        raise Skip("refuted")
    if reading.kind != "allergy":
        raise Skip("negation")
    patient_id = conversion.patient_id(object_at(resource, "patient", path), f"{path}.patient")
    criticality = code_at(resource, "criticality", path)
    categories = texts_at(resource, "category", path)
    manifestations: list[str] = []
    for reaction, reaction_path in objects_at(resource, "reaction", path):
        for manifestation, manifestation_path in objects_at(reaction, "manifestation", reaction_path):
            text = concept_of(manifestation, manifestation_path).text
            if text and text not in manifestations:
                manifestations.append(text)
    clinical_status = status_code(resource, "clinicalStatus", path)
    verification = status_code(resource, "verificationStatus", path)
    flags = reading.flags
    if clinical_status in (RESOLVED, INACTIVE):
        flags.append(clinical_status)
    if verification in UNCONFIRMED_VERIFICATION:
        flags.append(UNCONFIRMED)
    concept = reading.substance_concept
    return [
        Allergy(
            id=item.key.split("/", 1)[1],
            patient_id=patient_id,
            substance=reading.substance,
            code=concept.code,
            code_system=concept.system,
            criticality=criticality,
            reaction=", ".join(manifestations),
            category=categories[0] if categories else "",
            clinical_status=clinical_status[:40],
            verification_status=verification[:40],
            flags=tuple(flags),
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


def _subject(item: Item, reference: JSON | None, path: str) -> list[Effect]:
    """Inside a Bundle, the patient a clinical resource points to (pass 1: dangling subjects, collisions)."""
    if item.scope is None:
        return []
    subject_key = reference_key(reference, path, item.scope) if reference is not None else ""
    return [SubjectRef(subject_key, item.scope.sole_patient())]


# --- Condition ------------------------------------------------------------------------------------


def _categories(resource: JSON, path: str) -> list[Concept]:
    return [concept_of(category, category_path) for category, category_path in objects_at(resource, "category", path)]


def learn_condition(item: Item) -> list[Effect]:
    """Pass 1: a Condition with a category coded ``ALD`` (any system) is an ALD."""
    resource, path = item.resource, item.resource_type
    effects: list[Effect] = _subject(item, object_at(resource, "subject", path), f"{path}.subject")
    categories = _categories(resource, path)
    if any(c.code.upper() == "ALD" or c.text.upper() == "ALD" for c in categories):
        effects.append(AldCondition(item.key))
    effects.append(SEEN)
    return effects


def convert_condition(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    if status_code(resource, "verificationStatus", path) in DROPPED_VERIFICATION:
        raise Skip("refuted")
    code = concept_at(resource, "code", path)
    said = absence(code.text, "problem") if code.text else ""
    if code.codes & NO_PROBLEM_CODES or code.normalized_text in NO_PROBLEM_TEXTS or said == "absent":
        raise Skip("negation")
    flags: tuple[str, ...] = ()
    text = code.text
    if not text:
        if not code.code:
            raise Invalid("Condition has no text and no code")
        text, flags = first_coding(code), (CODE_ONLY,)
    elif said == "possible":
        flags = (POSSIBLE_ABSENCE,)
    patient_id = conversion.patient_id(object_at(resource, "subject", path), f"{path}.subject")
    onset = date_at(resource, "onsetDateTime", path)
    period = object_at(resource, "onsetPeriod", path)
    if onset is None and period is not None:
        onset = date_at(period, "start", f"{path}.onsetPeriod")
    return [
        Condition(
            id=item.key.split("/", 1)[1],
            patient_id=patient_id,
            text=text,
            code=code.code,
            code_system=code.system,
            is_ald=item.key in conversion.indexes.ald_conditions,
            onset_date=onset,
            clinical_status=status_code(resource, "clinicalStatus", path) or "active",
            flags=flags,
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
    effects.append(SEEN)
    return effects


def convert_observation(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    if code_at(resource, "status", path) in ("entered-in-error", "cancelled"):
        raise Skip("status")
    loinc = {c for s, c, _ in codings(object_at(resource, "code", path), f"{path}.code") if s in (LOINC, "")}
    if loinc & WEIGHT_CODES:
        kind, units, unit_out = "weight", WEIGHT_UNITS, "kg"
    elif loinc & HEIGHT_CODES:
        kind, units, unit_out = "height", HEIGHT_UNITS, "cm"
    else:
        raise Skip("not-used")  # an ALD marker (read in pass 1) or a measurement the snapshot does not keep
    quantity = object_at(resource, "valueQuantity", path)
    if quantity is None:
        raise Skip("not-used")  # e.g. a dataAbsentReason: nothing measured
    q_path = f"{path}.valueQuantity"
    value = number_at(quantity, "value", q_path)
    unit = text_at(quantity, "code", q_path) or text_at(quantity, "unit", q_path)
    if value is None:
        raise Skip("not-used")
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
        raise Skip("status")
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
        raise Skip("not-used")  # a slot without a patient (meeting, blocked time): nothing to call about
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

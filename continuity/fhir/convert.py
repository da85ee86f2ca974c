"""What one FHIR resource says: its effects on the pass-1 indexes (``learn``) and its records (``convert``).

Nothing here depends on reading order or changes shared state, so worker processes run both; the
reader applies what they give in reading order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from continuity.fhir import clinical, medications, people
from continuity.fhir.indexes import SEEN, Conversion, Effect, Indexes, Skip
from continuity.fhir.json import STRIPPED, Invalid
from continuity.fhir.sources import Item
from continuity.fhir.vocabulary import ID_CHARACTERS, MAX_ID, USED_TYPES
from continuity.import_report import ImportProblem
from continuity.model import Record


def _seen(item: Item) -> list[Effect]:
    return [SEEN]


# Pass 1, per resource type. Clinical resources that pass 1 may not even parse (docs/fhir-input.md,
# "Memory") only count under their key.
LEARNERS: dict[str, Callable[[Item], list[Effect]]] = {
    "Patient": people.learn_patient,
    "Practitioner": people.learn_practitioner,
    "Organization": people.learn_organization,
    "PractitionerRole": people.learn_role,
    "Medication": medications.learn_medication,
    "Composition": clinical.learn_composition,
    "AllergyIntolerance": clinical.learn_allergy,
    "Condition": clinical.learn_condition,
    "Observation": clinical.learn_observation,
    "MedicationRequest": medications.learn_medication_use,
    "MedicationStatement": medications.learn_medication_use,
    "Appointment": _seen,
}

# Pass 2, per resource type that produces records.
CONVERTERS: dict[str, Callable[[Conversion], list[Record]]] = {
    "Organization": people.convert_organization,
    "Practitioner": people.convert_practitioner,
    "Patient": people.convert_patient,
    "AllergyIntolerance": clinical.convert_allergy,
    "Condition": clinical.convert_condition,
    "MedicationRequest": medications.convert_medication_use,
    "MedicationStatement": medications.convert_medication_use,
    "Observation": clinical.convert_observation,
    "Appointment": clinical.convert_appointment,
}

# A shape the typed accessors did not foresee: still a clean, located problem rather than a traceback.
_UNFORESEEN = (TypeError, ValueError, AttributeError, KeyError, IndexError)


def learn(item: Item) -> tuple[list[Effect], str]:
    """What pass 1 learns from one resource, and its problem ("" when none)."""
    resource_type = item.resource_type
    if resource_type not in USED_TYPES or item.light:
        return [], ""
    if not item.key:
        rid = item.resource.get("id")
        if rid is None:
            return [], f"{resource_type} has no id"
        if isinstance(rid, str) and ID_CHARACTERS.fullmatch(rid) and len(rid) > MAX_ID:
            return [], f"{resource_type} has an id of {len(rid)} characters: at most {MAX_ID} are accepted"
        return [], f"{resource_type} has an invalid id {str(rid)[:80]!r} (1 to {MAX_ID} of A-Z a-z 0-9 - . _)"
    try:
        return LEARNERS[resource_type](item), ""
    except Invalid as error:
        return [], str(error)
    except _UNFORESEEN as error:
        return [], f"unexpected structure ({type(error).__name__})"


class Outcome(NamedTuple):
    """What converting one resource gives."""

    records: list[Record]
    problem: str  # "" when the resource was used
    reason: str  # why it was not kept (an import report reason), "" when it was
    warnings: list[ImportProblem]
    ins_dropped: bool
    stripped: bool  # control or bidi characters were removed from its texts


def convert(indexes: Indexes, file_index: int, item: Item) -> Outcome:
    """The records of one resource of a type in ``CONVERTERS``."""
    conversion = Conversion(indexes, file_index, item)
    before = STRIPPED.count
    try:
        records = CONVERTERS[item.resource_type](conversion)
    except Skip as skip:
        records, problem, reason = [], "", skip.reason
    except Invalid as error:
        records, problem, reason = [], str(error), error.reason
    except _UNFORESEEN as error:
        records, problem, reason = [], f"unexpected structure ({type(error).__name__})", "invalid"
    else:
        problem = reason = ""
    stripped = STRIPPED.count != before
    return Outcome(records, problem, reason, conversion.warnings, conversion.ins_dropped, stripped)

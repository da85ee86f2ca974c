"""Treatments from FHIR: Medication, MedicationRequest and MedicationStatement (docs/fhir-input.md, "Drug names").

A MedicationRequest or MedicationStatement becomes an ongoing ``Treatment`` or a
``RecentPrescription`` by its status; its medication is a CodeableConcept, a contained Medication, a
Medication elsewhere in the sources (described in pass 1) or a reference with only a display.
"""

from __future__ import annotations

import re
import unicodedata

from continuity.fhir.datatypes import bounds_start, concept_at, date_at, posology, ratio
from continuity.fhir.indexes import Conversion, Effect, MedicationDescribed, MedicationText
from continuity.fhir.json import JSON, Invalid, boolean_at, code_at, number_at, object_at, objects_at, text_at
from continuity.fhir.sources import Item, reference_key
from continuity.fhir.vocabulary import (
    ALD_CODE,
    NO_MEDICATION_CODES,
    NO_MEDICATION_TEXTS,
    RECENT_STATUSES,
    SUBSTITUTION_REASON,
    TREATMENT_STATUSES,
)
from continuity.model import NonSubstitutionReason, RecentPrescription, Record, Treatment


def describe_medication(resource: JSON, path: str, code_field: str = "code") -> MedicationText:
    """What a Medication (or a medicationCodeableConcept) says; Invalid when it names nothing."""
    code = concept_at(resource, code_field, path)
    negation = bool(code.codes & NO_MEDICATION_CODES) or code.normalized_text in NO_MEDICATION_TEXTS
    names: list[str] = []
    strengths: list[str] = []
    for ingredient, ingredient_path in objects_at(resource, "ingredient", path):
        item = concept_at(ingredient, "itemCodeableConcept", ingredient_path)
        reference = object_at(ingredient, "itemReference", ingredient_path)
        name = item.atc_display or item.text
        if not name and reference is not None:
            name = text_at(reference, "display", f"{ingredient_path}.itemReference")
        if name:
            names.append(name)
            strength = ratio(object_at(ingredient, "strength", ingredient_path), f"{ingredient_path}.strength")
            if strength:
                strengths.append(strength)
    dci = " + ".join(names) or code.atc_display or code.text
    if not dci and not negation:
        detail = f" (only the code {code.code})" if code.code else ""
        raise Invalid(f"the medication has no name{detail}")
    # The product label is kept as the brand only when it names something else than the substance
    # ("LEVOTHYROX 75 µg"); "ramipril 5 mg, comprimé sécable" would print the DCI twice.
    label = code.own_text if code.own_text and not _mentions(code.own_text, dci) else ""
    return MedicationText(
        dci=dci,
        strength=" + ".join(strengths) if len(strengths) == len(names) else "",
        form=concept_at(resource, "form", path).text,
        label=label,
        negation=negation,
    )


def learn_medication(item: Item) -> list[Effect]:
    """Pass 1: a Medication is described once, for every line that refers to it."""
    return [MedicationDescribed(describe_medication(item.resource, item.resource_type))]


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
                return describe_medication(contained, contained_path)
        raise Invalid(f"contained medication {target[:80]!r} cannot be found")
    if not target:
        display = text_at(reference, "display", ref_path)
        if display:  # a reference that only carries a display: the only text the source had
            return MedicationText(dci=display)
        raise Invalid(f"{ref_path} has no reference and no display")
    key = reference_key(reference, ref_path, conversion.item.scope)
    if key in indexes.medications:
        return indexes.medications[key]
    if key in indexes.rejected:
        raise Invalid(f"its medication {key} was rejected (see the problem reported for it)")
    raise Invalid(f"medication {key or target[:200]!r} cannot be found")


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
    if status not in TREATMENT_STATUSES and status not in RECENT_STATUSES:
        return []  # entered-in-error, cancelled, not-taken, draft, unknown
    medication = _resolve_medication(conversion, resource, path)
    if medication.negation:
        return []
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
    chronic = False
    if is_request:
        non_substitution = _non_substitution(conversion, resource, path)
        dispense = object_at(resource, "dispenseRequest", path)
        if dispense is not None:
            repeats = number_at(dispense, "numberOfRepeatsAllowed", f"{path}.dispenseRequest")
            if repeats is not None:
                if repeats < 0 or repeats != int(repeats) or repeats > 1000:
                    raise Invalid(f"{path}.dispenseRequest.numberOfRepeatsAllowed must be a small whole number")
                renewals = int(repeats)
        chronic = "continuous" in concept_at(resource, "courseOfTherapyType", path).codes
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
            chronic=chronic,
            ald_related=_ald_link(conversion, resource, path),
            non_substitution=non_substitution,
            renewals_left=renewals,
            last_prescriber_id=prescriber,
            last_prescribed_on=authored if is_request else None,
        )
    ]


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

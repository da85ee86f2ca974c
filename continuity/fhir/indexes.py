"""What the first pass learns (small per-id indexes), and the references of the second pass resolved through it.

``Indexes`` is built in reading order by the main process and sent once to each worker process of the
second pass, where converters read it and never change it. What pass 1 learns from one resource is a
list of named effects (``Identity``, ``AllergySaid``…) so that workers can work them out and the main
process apply them in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from continuity.fhir.json import JSON, Invalid, code_at, object_at, text_at
from continuity.fhir.sources import Item, reference_key
from continuity.import_report import ImportProblem
from continuity.intake import AllergyStatuses, Copies, Identities
from continuity.model import AllergyStatus


@dataclass(frozen=True, slots=True)
class MedicationText:
    """What a Medication resource says, kept from pass 1 for the lines that refer to it."""

    dci: str
    strength: str = ""
    form: str = ""
    label: str = ""
    negation: bool = False


@dataclass(slots=True)
class Role:
    """A PractitionerRole: what it adds to its practitioner."""

    practitioner_key: str
    specialty: str = ""
    qualite: str = ""
    phone: str = ""
    email: str = ""


# --- what pass 1 learns from one resource, applied to the indexes in reading order -----------------


class Identity(NamedTuple):
    """A Patient, Practitioner or Organization: counted under its canonical identity."""

    born: int  # birth date ordinal, 0 when unknown or not a person
    identifiers: list[tuple[str, int]]  # ("system|value", digest of "Type|system|value")


class Seen(NamedTuple):
    """A clinical resource: counted under its own key (last copy wins)."""


class AllergySaid(NamedTuple):
    patient_key: str
    status: AllergyStatus


class MedicationDescribed(NamedTuple):
    medication: MedicationText


class RoleDescribed(NamedTuple):
    role: Role


class AldObservation(NamedTuple):
    value: bool


class AldCondition(NamedTuple):
    condition_key: str


Effect = Identity | Seen | AllergySaid | MedicationDescribed | RoleDescribed | AldObservation | AldCondition


@dataclass
class Indexes:
    """The pass-1 indexes. Keys are ``Type/id`` strings; the two that grow with the export hold digests."""

    files: list[Path]
    copies: Copies = field(default_factory=Copies)  # every resource that produces a record
    identities: Identities = field(default_factory=Identities)
    allergy: AllergyStatuses = field(default_factory=AllergyStatuses)  # by patient key before merging
    rejected: set[str] = field(default_factory=set)  # keys of invalid Patients/Practitioners/Medications
    bad: set[tuple[int, int]] = field(default_factory=set)  # (file, ordinal) already reported
    medications: dict[str, MedicationText] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)  # PractitionerRole key → role
    roles_by_practitioner: dict[str, Role] = field(default_factory=dict)
    ald_observations: dict[str, bool] = field(default_factory=dict)  # MED-574 Observation key → valueBoolean
    ald_conditions: set[str] = field(default_factory=set)

    def canonical(self, key: str) -> str:
        return self.identities.canonical(key)

    def patient_id(self, reference: JSON | None, path: str, item: Item) -> str:
        """The id of the (valid) patient a reference points to; raises Invalid when it fails."""
        if reference is None:
            raise Invalid(f"{path} is missing: no patient")
        key = reference_key(reference, path, item.scope)
        if not key:
            identifier = object_at(reference, "identifier", path)
            if identifier is not None:  # a logical reference by identifier
                found = self.identity_lookup("Patient", identifier, f"{path}.identifier")
                if found:
                    return found.split("/", 1)[1]
            target = code_at(reference, "reference", path) or text_at(reference, "display", path)
            raise Invalid(f"patient {target[:200]!r} cannot be resolved" if target else f"{path} has no reference")
        if not key.startswith("Patient/"):
            raise Invalid(f"{path} points to {key}, not to a Patient")
        canonical = self.canonical(key)
        if canonical in self.copies:
            return canonical.split("/", 1)[1]
        if key in self.rejected:
            raise Invalid(f"its patient {key} was rejected (see the problem reported for it)")
        raise Invalid(f"patient {key} cannot be found")

    def practitioner_id(self, reference: JSON | None, path: str, item: Item) -> str:
        """The id of the practitioner behind a reference (via a PractitionerRole too), or "" if none."""
        if reference is None:
            return ""
        key = reference_key(reference, path, item.scope)
        if key.startswith("PractitionerRole/") and key in self.roles:
            key = self.roles[key].practitioner_key
        key = self.canonical(key)
        if key.startswith("Practitioner/") and key in self.copies:
            return key.split("/", 1)[1]
        return ""

    def identity_lookup(self, resource_type: str, identifier: JSON, path: str) -> str:
        system = code_at(identifier, "system", path)
        value = text_at(identifier, "value", path)
        if not system or not value:
            return ""
        return self.identities.lookup(resource_type, system, value)


class Conversion:
    """The context of converting one resource in pass 2: the indexes, and where its warnings go."""

    __slots__ = ("indexes", "ins_dropped", "item", "source", "warnings")

    def __init__(self, indexes: Indexes, source: str, item: Item) -> None:
        self.indexes = indexes
        self.source = source
        self.item = item
        self.warnings: list[ImportProblem] = []
        self.ins_dropped = False  # an INS on an identity that is not QUAL, dropped

    def warn(self, message: str) -> None:
        self.warnings.append(ImportProblem(self.source, self.item.location, self.item.key, message))

    def patient_id(self, reference: JSON | None, path: str) -> str:
        return self.indexes.patient_id(reference, path, self.item)

    def practitioner_id(self, reference: JSON | None, path: str) -> str:
        return self.indexes.practitioner_id(reference, path, self.item)

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
from continuity.intake import AllergyStatuses, Ambiguous, Collisions, Copies, Identities
from continuity.model import AllergyStatus


@dataclass(frozen=True, slots=True)
class MedicationText:
    """What a Medication resource says, kept from pass 1 for the lines that refer to it."""

    dci: str
    strength: str = ""
    form: str = ""
    label: str = ""
    negation: bool = False
    codes: tuple[str, ...] = ()  # every coding of the product, "system|code"
    flags: tuple[str, ...] = ()  # continuity.flags codes the lines that use it inherit
    possible_absence: bool = False  # the text may say "no medication" in words the reader is not sure of


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
    fingerprint: int  # what tells two different resources under one id apart (birth date, identifiers, name)


class Seen(NamedTuple):
    """A clinical resource: counted under its own key (last copy wins)."""


SEEN = Seen()  # one instance serves every clinical resource


class AllergySaid(NamedTuple):
    patient_key: str
    status: AllergyStatus


class MedicationDescribed(NamedTuple):
    medication: MedicationText
    fingerprint: int


class SubjectRef(NamedTuple):
    """A clinical resource read inside a Bundle: the patient it points to, and the Bundle's only patient."""

    subject_key: str  # "" when the reference resolves to no key (a urn:uuid that is not in the Bundle)
    sole_patient: str  # "" when the Bundle has no Patient or several


class RoleDescribed(NamedTuple):
    role: Role


class AldObservation(NamedTuple):
    value: bool


class AldCondition(NamedTuple):
    condition_key: str


Effect = (
    Identity | Seen | AllergySaid | MedicationDescribed | RoleDescribed | AldObservation | AldCondition | SubjectRef
)


class BundleSubject(NamedTuple):
    """A clinical resource of a Bundle, kept from pass 1 to find dangling patients and colliding ids."""

    key: str
    subject_key: str
    sole_patient: str
    file_index: int
    bundles: tuple[int, ...]
    ordinal: int


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
    collisions: Collisions = field(default_factory=Collisions)  # different resources under one id
    bundle_subjects: list[BundleSubject] = field(default_factory=list)  # cleared at the end of pass 1
    incomplete: set[str] = field(default_factory=set)  # canonical keys of patients published flagged incomplete
    dangling: set[tuple[int, int]] = field(default_factory=set)  # (file, ordinal) of resources whose patient dangles

    def canonical(self, key: str) -> str:
        return self.identities.alias.get(key, key)

    def resolve(self, key: str, item: Item, file_index: int) -> str:
        """The distinct key a reference to ``key`` means from ``item`` (raises Invalid when ambiguous)."""
        if key not in self.collisions.variants:  # the usual case: an id shared by no two resources
            return key
        try:
            return self.collisions.resolve(key, file_index, item.scope.chain() if item.scope else ())
        except Ambiguous as error:
            files = sorted({str(self.files[place[0]]) for v in self.collisions.variants[key] for place in v.places})
            raise Invalid(f"{error} (read in {', '.join(files)})", reason="collision") from None

    def patient_id(self, reference: JSON | None, path: str, item: Item, file_index: int) -> str:
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
            if not target:
                raise Invalid(f"{path} has no reference")
            raise self._dangling(item, file_index, f"patient {target[:200]!r} cannot be resolved")
        if not key.startswith("Patient/"):
            raise Invalid(f"{path} points to {key}, not to a Patient")
        if key in self.collisions.variants:
            key = self.resolve(key, item, file_index)
        canonical = self.identities.alias.get(key, key)
        if canonical in self.copies:
            return canonical.split("/", 1)[1]
        if key in self.rejected:
            raise Invalid(
                f"its patient {key[:300]} was rejected (see the problem reported for it)", reason="unresolved-reference"
            )
        raise self._dangling(item, file_index, f"patient {key[:300]} cannot be found")

    def _dangling(self, item: Item, file_index: int, message: str) -> Invalid:
        """A patient reference that leads nowhere: prominent when its document has another, only patient."""
        if (file_index, item.ordinal) in self.dangling and item.scope is not None:
            sole = item.scope.sole_patient()
            return Invalid(
                f"{message}, and its document's only patient is {sole}: that patient is published flagged "
                "incomplete; the export must be fixed",
                reason="dangling-subject",
            )
        return Invalid(message, reason="unresolved-reference")

    def practitioner_id(self, reference: JSON | None, path: str, item: Item, file_index: int) -> str:
        """The id of the practitioner behind a reference (via a PractitionerRole too), or "" if none."""
        if reference is None:
            return ""
        key = reference_key(reference, path, item.scope)
        if key.startswith("PractitionerRole/") and key in self.roles:
            key = self.roles[key].practitioner_key
        try:
            key = self.canonical(self.resolve(key, item, file_index))
        except Invalid:
            return ""  # two practitioners under this id: none is named rather than the wrong one
        if key.startswith("Practitioner/") and key in self.copies:
            return key.split("/", 1)[1]
        return ""

    def identity_lookup(self, resource_type: str, identifier: JSON, path: str) -> str:
        system = code_at(identifier, "system", path)
        value = text_at(identifier, "value", path)
        if not system or not value:
            return ""
        return self.identities.lookup(resource_type, system, value)


class Skip(Exception):
    """A resource that is read and deliberately not kept; ``reason`` is its import report reason code
    (``status``, ``negation``, ``refuted``, ``not-used``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Conversion:
    """The context of converting one resource in pass 2: the indexes, and where its warnings go."""

    __slots__ = ("file_index", "indexes", "ins_dropped", "item", "warnings")

    def __init__(self, indexes: Indexes, file_index: int, item: Item) -> None:
        self.indexes = indexes
        self.file_index = file_index
        self.item = item
        self.warnings: list[ImportProblem] = []
        self.ins_dropped = False  # an INS on an identity that is not QUAL, dropped

    def warn(self, message: str) -> None:
        source = str(self.indexes.files[self.file_index])
        self.warnings.append(ImportProblem(source, self.item.location, self.item.key, message))

    def patient_id(self, reference: JSON | None, path: str) -> str:
        return self.indexes.patient_id(reference, path, self.item, self.file_index)

    def practitioner_id(self, reference: JSON | None, path: str) -> str:
        return self.indexes.practitioner_id(reference, path, self.item, self.file_index)

    def resolve(self, key: str) -> str:
        return self.indexes.resolve(key, self.item, self.file_index)

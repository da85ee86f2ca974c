"""Plain dataclasses for the practice: patients, their clinical summary, practitioners, appointments."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field


class Sex(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"

    @property
    def letter(self) -> str:
        """The one-letter form printed on French forms (F / M / I for indéterminé)."""
        return {"female": "F", "male": "M"}.get(self.value, "I")

    @property
    def label_fr(self) -> str:
        return {"female": "Féminin", "male": "Masculin", "other": "Indéterminé"}.get(self.value, "Inconnu")


class IdentityStatus(enum.StrEnum):
    """French identity reliability status (référentiel national d'identitovigilance)."""

    PROV = "PROV"  # provisional: traits not checked against an ID document
    RECUP = "RECUP"  # retrieved from the national INS service, no ID document seen
    VALI = "VALI"  # checked against a high-trust ID document
    QUAL = "QUAL"  # validated and retrieved from INSi: the only status that may carry the INS


class AllergyStatus(enum.StrEnum):
    """What the source says about allergies as a whole: an empty list is ambiguous on its own."""

    RECORDED = "recorded"  # at least one allergy is listed
    NONE_KNOWN = "none_known"  # the source states "no known allergy"
    NO_INFORMATION = "no_information"  # nothing recorded, or the section is empty with a reason


class NonSubstitutionReason(enum.StrEnum):
    """The three reasons a prescriber may refuse generic substitution (arrêté of 12/11/2019)."""

    MTE = "MTE"  # narrow therapeutic margin, patient stabilised
    EFG = "EFG"  # child under 6, no suitable generic form
    CIF = "CIF"  # proven contraindication to an excipient of every generic


# OIDs of the INS identifier (DOMAIN.md): NIR, NIA, and the test and demo assigning authorities.
INS_OID_NIR = "1.2.250.1.213.1.4.8"
INS_OID_NIA = "1.2.250.1.213.1.4.9"
INS_OID_TEST = "1.2.250.1.213.1.4.10"
INS_OID_DEMO = "1.2.250.1.213.1.4.11"
INS_OIDS = frozenset({INS_OID_NIR, INS_OID_NIA, INS_OID_TEST, INS_OID_DEMO})


@dataclass(frozen=True, slots=True)
class Address:
    lines: tuple[str, ...] = ()
    postal_code: str = ""
    city: str = ""
    country: str = ""

    def one_line(self) -> str:
        parts = [*self.lines, f"{self.postal_code} {self.city}".strip(), self.country]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Patient:
    id: str
    birth_name: str
    birth_given_names: tuple[str, ...]
    sex: Sex
    birth_date: dt.date | None
    used_name: str = ""
    used_given_name: str = ""
    birth_place_insee: str = ""
    identity_status: IdentityStatus = IdentityStatus.PROV
    # The INS and its OID are carried only for a QUAL identity (checked in __post_init__).
    ins: str = ""
    ins_oid: str = ""
    phones: tuple[str, ...] = ()
    address: Address = field(default_factory=Address)
    deceased: bool = False
    active: bool = True
    general_practitioner_id: str = ""
    allergy_status: AllergyStatus = AllergyStatus.NO_INFORMATION
    flags: tuple[str, ...] = ()  # what the export left uncertain (continuity.flags), e.g. an incomplete record
    deceased_date: dt.date | None = None  # when the source gives it; `deceased` may be true without it

    def __post_init__(self) -> None:
        if self.ins and self.identity_status is not IdentityStatus.QUAL:
            raise ValueError(f"patient {self.id}: an INS may only be carried by a QUAL identity")

    @property
    def first_given_name(self) -> str:
        return self.birth_given_names[0] if self.birth_given_names else ""

    def age_on(self, day: dt.date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True, slots=True)
class Allergy:
    id: str
    patient_id: str
    substance: str
    code: str = ""
    code_system: str = ""
    criticality: str = ""  # low | high | unable-to-assess
    reaction: str = ""
    category: str = ""  # food | medication | environment | biologic
    clinical_status: str = ""  # active | inactive | resolved, "" when the source does not say
    verification_status: str = ""  # confirmed | unconfirmed | presumed, "" when the source does not say
    flags: tuple[str, ...] = ()  # continuity.flags codes: shown with the allergy, never a reason to hide it


@dataclass(frozen=True, slots=True)
class Condition:
    id: str
    patient_id: str
    text: str
    code: str = ""
    code_system: str = ""
    is_ald: bool = False  # recognised affection de longue durée (exonérante)
    onset_date: dt.date | None = None
    clinical_status: str = "active"
    flags: tuple[str, ...] = ()  # continuity.flags codes


class ResolutionMethod(enum.StrEnum):
    """How a treatment line was matched to the drug reference (continuity/drugs/reference.py)."""

    CODE = "code"  # a CIP13, CIP7 or CIS code of the source
    DENOMINATION = "denomination"  # the text is a product's exact denomination
    TEXT = "text"  # normalised DCI or brand text
    UNRESOLVED = "unresolved"  # nothing matched, or the matches disagree: the substance is unidentified


@dataclass(frozen=True, slots=True)
class DrugResolution:
    """What the drug reference says a treatment line is, computed by the publisher (or for a new line).

    `substances` are DCI names as doctors write them ("amoxicilline"); the conditions are the most
    restrictive of the candidate products (secure paper if any is, the shortest duration limit), except
    `hospital_only`, true when every candidate is reserved to hospitals.
    """

    method: ResolutionMethod
    products: tuple[int, ...] = ()  # candidate CIS codes
    substances: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()  # BDPM route names ("orale", "transdermique")
    form: str = ""
    secure_paper: bool = False
    narcotic: bool = False
    hospital_only: bool = False
    list: str = ""  # "I", "II" or ""
    max_days: int | None = None
    detail: str = ""  # how it was resolved, or why not (English, for the log and the report)
    denomination: str = ""  # the product's denomination when there is exactly one candidate

    @property
    def identified(self) -> bool:
        return self.method is not ResolutionMethod.UNRESOLVED and bool(self.substances)


@dataclass(frozen=True, slots=True)
class Treatment:
    """An ongoing treatment, as the platform last knew it."""

    id: str
    patient_id: str
    dci: str  # substance name (DCI / INN), or the only text the source had
    strength: str = ""
    form: str = ""
    route: str = ""
    posology: str = ""
    brand: str = ""
    start_date: dt.date | None = None
    chronic: bool = False
    ald_related: bool = False
    non_substitution: NonSubstitutionReason | None = None
    narcotic: bool = False  # must be prescribed on secure paper (see prescribe.py for the list)
    renewals_left: int | None = None
    last_prescriber_id: str = ""
    last_prescribed_on: dt.date | None = None
    codes: tuple[str, ...] = ()  # every coding of the medication, "system|code" (system as written in the source)
    course: str = ""  # "acute" | "continuous" | "seasonal", "" when the source does not say
    end_date: dt.date | None = None  # when the treatment ends, as the source says it (docs/fhir-input.md)
    flags: tuple[str, ...] = ()  # continuity.flags codes: shown with the line, never a reason to hide it
    # The drug reference's reading of this line, computed at publish time (None: no reference).
    drug: DrugResolution | None = None


@dataclass(frozen=True, slots=True)
class RecentPrescription:
    """A prescription issued on the platform before the outage (for reference only)."""

    id: str
    patient_id: str
    authored_on: dt.date | None
    prescriber_id: str
    text: str  # drug and posology as one readable line


@dataclass(frozen=True, slots=True)
class Measurement:
    """Weight (kg) or height (cm), with the date it was measured."""

    patient_id: str
    kind: str  # "weight" | "height"
    value: float
    unit: str
    measured_on: dt.date | None


@dataclass(frozen=True, slots=True)
class Practitioner:
    id: str
    family_name: str
    given_names: tuple[str, ...]
    rpps: str = ""  # 11 digits
    qualite: str = ""  # e.g. "Médecin généraliste"
    specialty: str = ""
    address: Address = field(default_factory=Address)
    phone: str = ""
    email: str = ""

    @property
    def display_name(self) -> str:
        return f"Dr {' '.join(self.given_names)} {self.family_name}".strip()


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    patient_id: str
    practitioner_id: str
    start: dt.datetime
    end: dt.datetime | None = None
    status: str = "booked"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Practice:
    id: str
    name: str
    address: Address = field(default_factory=Address)
    phone: str = ""


@dataclass(frozen=True, slots=True)
class PatientSummary:
    """Everything the appliance shows about one patient."""

    patient: Patient
    allergies: tuple[Allergy, ...]
    conditions: tuple[Condition, ...]
    treatments: tuple[Treatment, ...]
    recent_prescriptions: tuple[RecentPrescription, ...]
    measurements: tuple[Measurement, ...]
    general_practitioner: Practitioner | None
    appointments: tuple[Appointment, ...]

    def latest(self, kind: str) -> Measurement | None:
        dated = [m for m in self.measurements if m.kind == kind]
        if not dated:
            return None
        return max(dated, key=lambda m: m.measured_on or dt.date.min)

    @property
    def ald_conditions(self) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.is_ald)


@dataclass(frozen=True, slots=True)
class PrescriptionLine:
    dci: str
    strength: str = ""
    form: str = ""
    route: str = ""
    posology: str = ""
    duration_days: int = 30
    renewals: int = 0
    non_substitution: NonSubstitutionReason | None = None
    ald_related: bool = False
    brand: str = ""
    source_treatment_id: str = ""  # empty for a new line
    drug: DrugResolution | None = None  # the reference's reading (None: no reference)


@dataclass(frozen=True, slots=True)
class Prescription:
    """An emergency ordonnance issued by the appliance during an outage."""

    id: str
    issued_at: dt.datetime
    patient: Patient
    prescriber: Practitioner
    lines: tuple[PrescriptionLine, ...]
    weight: Measurement | None = None
    height: Measurement | None = None

    @property
    def is_bizone(self) -> bool:
        return any(line.ald_related for line in self.lines)


# Everything the FHIR reader yields and the snapshot database stores.
Record = (
    Practice
    | Practitioner
    | Patient
    | Allergy
    | Condition
    | Treatment
    | RecentPrescription
    | Measurement
    | Appointment
)

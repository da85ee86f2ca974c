"""The FHIR vocabulary the reader recognises: extension URLs, code systems, coded negations, units, statuses.

docs/fhir-input.md is the contract these constants implement; keep the two in step.
"""

from __future__ import annotations

import re

MAX_TEXT = 4096
"""Longest text kept from one field (a hostile 10 MB name must not reach the database)."""

# --- extensions and systems -----------------------------------------------------------------------

FR_CORE = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
EXT_BIRTH_LIST_GIVEN = FR_CORE + "fr-core-patient-birth-list-given-name"
EXT_IDENTITY_RELIABILITY = FR_CORE + "fr-core-identity-reliability"
EXT_INSEE_CODE = FR_CORE + "fr-core-address-insee-code"
EXT_PRACTITIONER_SPECIALTY = FR_CORE + "fr-core-practitioner-specialty"
EXT_BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
RPPS_OID = "urn:oid:1.2.250.1.71.4.2.1"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CISIS = "https://smt.esante.gouv.fr/fhir/CodeSystem/terminologie-cisis"
ALD_CODE = "MED-574"
ALLERGY_SECTION = "48765-2"

# --- coded negations (docs/fhir-input.md, "Clinical markers") -------------------------------------
# Codes are matched whatever their system: real exports get the system wrong often enough.

NO_KNOWN_ALLERGY_CODES = frozenset({"716186003", "409137002", "no-known-allergies", "no-known-medication-allergies"})
# Food / environmental "no known" say nothing about drugs: not entries, and no effect on the status.
PARTIAL_NO_ALLERGY_CODES = frozenset(
    {
        "429625007",
        "428607008",
        "no-known-food-allergies",
        "no-known-environmental-allergies",
        "no-known-biologic-allergies",
    }
)
NO_ALLERGY_INFO_CODES = frozenset({"no-allergy-info"})
NO_KNOWN_ALLERGY_TEXTS = frozenset(
    {
        "nka",
        "nkda",
        "no known allergy",
        "no known allergies",
        "no known drug allergy",
        "no known drug allergies",
        "aucune allergie connue",
        "pas d'allergie connue",
        "absence d'allergie connue",
    }
)
NO_PROBLEM_CODES = frozenset({"160245001", "no-known-problems", "no-problem-info"})
NO_PROBLEM_TEXTS = frozenset({"no current problems", "no known problems", "no current problems or disability"})
NO_MEDICATION_CODES = frozenset({"787481004", "no-known-medications", "no-medication-info"})
NO_MEDICATION_TEXTS = frozenset({"no known medications", "no known medication", "no current medications"})

# --- measurements ---------------------------------------------------------------------------------

WEIGHT_CODES = frozenset({"29463-7", "3141-9"})
HEIGHT_CODES = frozenset({"8302-2", "8306-3", "8308-9"})
# UCUM codes first; then the spellings found in `unit` when an export has no code (matched lower-case).
WEIGHT_UNITS = {
    **dict.fromkeys(("kg", "kilo", "kilos", "kilogram", "kilograms", "kilogramme", "kilogrammes"), 1.0),
    **dict.fromkeys(("g", "gram", "grams", "gramme", "grammes"), 0.001),
    **dict.fromkeys(("[lb_av]", "lb", "lbs", "pound", "pounds"), 0.45359237),
}
HEIGHT_UNITS = {
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres", "centimètre", "centimètres"), 1.0),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres", "mètre", "mètres"), 100.0),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), 0.1),
    **dict.fromkeys(("[in_i]", "in", "inch", "inches"), 2.54),
}

# --- statuses and kinds ---------------------------------------------------------------------------

TREATMENT_STATUSES = frozenset({"active", "on-hold", "intended"})
RECENT_STATUSES = frozenset({"completed", "stopped"})
DROPPED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
# Organization types (HL7 organization-type) that are not where patients are cared for.
NOT_A_PRACTICE_TYPES = frozenset({"ins", "pay", "govt", "edu", "reli", "crs", "cg", "bus", "other"})
TITLES = frozenset({"dr", "dr.", "pr", "pr.", "prof", "prof.", "doctor", "docteur"})

PERIOD_UNITS_FR = {
    "s": "seconde",
    "min": "minute",
    "h": "heure",
    "d": "jour",
    "wk": "semaine",
    "mo": "mois",
    "a": "an",
}

# --- resource types -------------------------------------------------------------------------------

# Resource types that produce records (and are therefore deduplicated by key), by the sweep of pass 2
# that emits them: practices and practitioners first, then patients, then the clinical records.
SWEEP_ORGS = frozenset({"Organization", "Practitioner"})
SWEEP_PATIENTS = frozenset({"Patient"})
SWEEP_CLINICAL = frozenset(
    {"AllergyIntolerance", "Condition", "MedicationRequest", "MedicationStatement", "Observation", "Appointment"}
)
SWEEPS = (SWEEP_ORGS, SWEEP_PATIENTS, SWEEP_CLINICAL)
RECORD_TYPES = SWEEP_ORGS | SWEEP_PATIENTS | SWEEP_CLINICAL
# Read in pass 1 only, for the indexes.
INDEX_ONLY_TYPES = frozenset({"Medication", "PractitionerRole", "Composition"})
USED_TYPES = RECORD_TYPES | INDEX_ONLY_TYPES
IDENTITY_TYPES = frozenset({"Patient", "Practitioner", "Organization"})  # merged across sources by identifier
# Clinical types whose patient is read in pass 1 when they come in a Bundle (single-patient documents).
SUBJECT_FIELDS = {
    "AllergyIntolerance": "patient",
    "Condition": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "Observation": "subject",
}
# Not resources to import: a Bulk export's log and error files (OperationOutcome lines).
LOG_FILE_STEMS = frozenset({"log", "error", "errors", "operationoutcome"})

# --- syntax ---------------------------------------------------------------------------------------

MAX_ID = 255
"""Longest resource id accepted. FHIR says 64, but real exports write longer ones (a large US vendor
writes 109): bounded, so a hostile id cannot grow the indexes without limit."""
RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
RESOURCE_ID = re.compile(r"[A-Za-z0-9\-._]{1,255}")
ID_CHARACTERS = re.compile(r"[A-Za-z0-9\-._]+")  # an id's alphabet, whatever its length
FHIR_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
# The usual head of a Bulk export line. Pass 1 needs only the key of most clinical resources, so a line
# that starts this way is not parsed there (pass 2 parses every line strictly).
LINE_HEAD = re.compile(
    rb'\s*\{\s*"resourceType"\s*:\s*"(MedicationRequest|MedicationStatement|Appointment|Observation|Condition)"'
    rb'\s*,\s*"id"\s*:\s*"([A-Za-z0-9\-._]{1,255})"\s*[,}]'
)
SUBSTITUTION_REASON = re.compile(r"\b(MTE|EFG|CIF)\b")

# --- names of code systems, for the label of a concept that has only a code ------------------------
# "SNOMED CT 418770003": what the desk sees of a drug, problem or allergy exported with a code and no text.

SYSTEM_NAMES = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://loinc.org": "LOINC",
    "http://www.whocc.no/atc": "ATC",
    "http://hl7.org/fhir/sid/icd-10": "CIM-10",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://hl7.org/fhir/sid/icd-9-cm": "ICD-9-CM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    "urn:oid:1.2.250.1.213.2.3.1": "CIP",  # Code Identifiant de Présentation (French drug box)
    "urn:oid:1.2.250.1.213.2.3.2": "UCD",  # Unité Commune de Dispensation
    "urn:oid:1.2.250.1.213.2.3.3": "CIS",  # Code Identifiant de Spécialité
    "http://standardterms.edqm.eu": "EDQM",
    "http://fhir.de/CodeSystem/ifa/pzn": "PZN",
    "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips": "IPS",
}
COURSES_OF_THERAPY = frozenset({"acute", "continuous", "seasonal"})
UNCONFIRMED_VERIFICATION = frozenset({"unconfirmed", "presumed", "provisional", "differential"})

"""Patients, practitioners and practices from FHIR: Patient, Practitioner, PractitionerRole, Organization.

Identity traits follow fr-core and DOMAIN.md (docs/fhir-input.md, "Identity"): a wrong type or a
malformed value in any of them rejects the Patient; a malformed contact field is dropped with a warning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from continuity.fhir.datatypes import (
    address,
    codings,
    concept_at,
    concept_of,
    date_at,
    extensions,
    parse_date,
    telecoms,
)
from continuity.fhir.indexes import Conversion, Effect, Identity, Role, RoleDescribed, Skip
from continuity.fhir.json import JSON, Invalid, boolean_at, code_at, object_at, objects_at, text_at, texts_at
from continuity.fhir.sources import Item, reference_key
from continuity.fhir.vocabulary import (
    EXT_BIRTH_LIST_GIVEN,
    EXT_BIRTH_PLACE,
    EXT_IDENTITY_RELIABILITY,
    EXT_INSEE_CODE,
    EXT_PRACTITIONER_SPECIALTY,
    NOT_A_PRACTICE_TYPES,
    RPPS_OID,
    TITLES,
)
from continuity.flags import IDENTITY_DOUBT, INCOMPLETE
from continuity.ins import is_valid_nir
from continuity.intake import Identities, digest
from continuity.model import INS_OIDS, IdentityStatus, Patient, Practice, Practitioner, Record, Sex

# --- Patient --------------------------------------------------------------------------------------


def read_patient(resource: JSON, key: str, path: str) -> tuple[Patient, bool]:
    """The Patient record (id = key's id) and whether an INS was dropped."""
    fields, dropped = _patient_fields(resource, key, path)
    return Patient(**fields), dropped


def _patient_fields(resource: JSON, key: str, path: str) -> tuple[dict[str, Any], bool]:
    """What ``read_patient`` makes a Patient of (the converter adds to it and makes the record once)."""
    names = objects_at(resource, "name", path)
    official = next(((n, p) for n, p in names if code_at(n, "use", p) == "official"), None)
    official = official or next(((n, p) for n, p in names if code_at(n, "use", p) == "maiden"), None)
    birth = official or next(
        ((n, p) for n, p in names if code_at(n, "use", p) not in ("old", "nickname", "anonymous", "temp")),
        names[0] if names else None,
    )
    if birth is None:
        raise Invalid("Patient has no name")
    birth_name_node, birth_path = birth
    birth_name = text_at(birth_name_node, "family", birth_path)
    given_list = extensions(birth_name_node, EXT_BIRTH_LIST_GIVEN, birth_path) or extensions(
        resource, EXT_BIRTH_LIST_GIVEN, path
    )
    given = tuple(text_at(given_list[0][0], "valueString", given_list[0][1]).split()) if given_list else ()
    given = given or tuple(texts_at(birth_name_node, "given", birth_path))
    if not birth_name and not given:
        birth_name = text_at(birth_name_node, "text", birth_path)
    if not birth_name and not given:
        raise Invalid("Patient has no name (no family name, given name or text)")
    used_name = used_given = ""
    for name, name_path in names:
        if name is not birth_name_node and code_at(name, "use", name_path) == "usual":
            used_name = text_at(name, "family", name_path)
            used_given = next(iter(texts_at(name, "given", name_path)), "")
            break

    gender = code_at(resource, "gender", path).lower()
    sex = {"female": Sex.FEMALE, "f": Sex.FEMALE, "male": Sex.MALE, "m": Sex.MALE, "other": Sex.OTHER}.get(
        gender, Sex.UNKNOWN
    )
    birth_text = code_at(resource, "birthDate", path)
    birth_date = parse_date(birth_text, f"{path}.birthDate")[0] if birth_text else None

    insee = ""
    for place, place_path in extensions(resource, EXT_BIRTH_PLACE, path):
        place_address = object_at(place, "valueAddress", place_path)
        if place_address is None:
            continue
        for code_ext, code_path in extensions(place_address, EXT_INSEE_CODE, f"{place_path}.valueAddress"):
            coding = object_at(code_ext, "valueCoding", code_path)
            insee = text_at(coding, "code", f"{code_path}.valueCoding") if coding else ""
            insee = insee or text_at(code_ext, "valueString", code_path)

    status = IdentityStatus.PROV
    doubt = False
    for reliability, reliability_path in extensions(resource, EXT_IDENTITY_RELIABILITY, path):
        for sub, sub_path in objects_at(reliability, "extension", reliability_path):
            if sub.get("url") != "identityStatus":
                continue
            coding = object_at(sub, "valueCoding", sub_path)
            code = text_at(coding, "code", f"{sub_path}.valueCoding").upper() if coding else ""
            status = IdentityStatus.__members__.get(code, IdentityStatus.PROV)
            # Any other code of the reliability table (doublon, désactivée, douteuse, fictive...) is
            # a warning about this identity: kept as provisional, never silently (flags.IDENTITY_DOUBT).
            doubt = code not in IdentityStatus.__members__ and code not in ("", "VIDE")

    ins = ins_oid = ""
    dropped = False
    for identifier, id_path in objects_at(resource, "identifier", path):
        system = code_at(identifier, "system", id_path)
        oid = system.removeprefix("urn:oid:")
        if not system.startswith("urn:oid:") or oid not in INS_OIDS:
            continue
        value = text_at(identifier, "value", id_path).replace(" ", "").upper()
        if not value:
            continue
        if status is not IdentityStatus.QUAL:
            dropped = True
            continue
        if not is_valid_nir(value):
            raise Invalid(f"INS {value[:20]} ({system}) is not a valid NIR: wrong format or check key")
        if not ins:
            ins, ins_oid = value, oid

    fields = {
        "id": key.split("/", 1)[1],
        "birth_name": birth_name,
        "birth_given_names": given,
        "sex": sex,
        "birth_date": birth_date,
        "used_name": used_name,
        "used_given_name": used_given,
        "birth_place_insee": insee,
        "identity_status": status,
        "ins": ins,
        "ins_oid": ins_oid,
        "flags": (IDENTITY_DOUBT,) if doubt else (),
    }
    return fields, dropped


def _patient_contact(conversion: Conversion) -> dict[str, Any]:
    item = conversion.item
    """Fields that do not identify the patient: a malformed one is dropped with a warning, never the patient."""
    resource, path = item.resource, item.resource_type
    readers: dict[str, Callable[[], Any]] = {
        "phones": lambda: tuple(telecoms(resource, path, frozenset({"phone", "sms"}))),
        "address": lambda: address(resource, path),
        "deceased": lambda: bool(
            boolean_at(resource, "deceasedBoolean", path) or code_at(resource, "deceasedDateTime", path)
        ),
        "deceased_date": lambda: date_at(resource, "deceasedDateTime", path),
        "active": lambda: boolean_at(resource, "active", path) is not False,
        "general_practitioner_id": lambda: next(
            (
                found
                for reference, ref_path in objects_at(resource, "generalPractitioner", path)
                if (found := conversion.practitioner_id(reference, ref_path))
            ),
            "",
        ),
    }
    fields: dict[str, Any] = {}
    for name, read in readers.items():
        try:
            fields[name] = read()
        except Invalid as error:
            conversion.warn(f"{error}: ignored")
    return fields


def learn_patient(item: Item) -> list[Effect]:
    """Pass 1: the patient is valid (else Invalid) and counted under its identity."""
    patient, _ = read_patient(item.resource, item.key, item.resource_type)
    born = patient.birth_date.toordinal() if patient.birth_date else 0
    found = identifiers(item)
    # Two different persons under one id differ by birth date, identifiers or birth name.
    fingerprint = digest(f"{born}|{sorted(i for i, _ in found)}|{patient.birth_name.casefold()}")
    return [Identity(born, found, fingerprint)]


def convert_patient(conversion: Conversion) -> list[Record]:
    item, indexes = conversion.item, conversion.indexes
    path = item.resource_type
    fields, conversion.ins_dropped = _patient_fields(item.resource, item.key, path)
    if fields["birth_date"] is None and code_at(item.resource, "birthDate", path):
        conversion.warn("partial birth date (no day): kept as unknown")
    canonical = indexes.canonical(item.key)
    fields["id"] = canonical.split("/", 1)[1]
    fields["allergy_status"] = indexes.allergy.of(canonical, indexes.identities)
    if canonical in indexes.incomplete:
        fields["flags"] += (INCOMPLETE,)
    fields.update(_patient_contact(conversion))
    return [Patient(**fields)]  # made once (dataclasses.replace would make it, and check it, twice)


# --- Practitioner, PractitionerRole and Practice --------------------------------------------------


def read_practitioner(resource: JSON, key: str, path: str, role: Role | None) -> Practitioner:
    names = objects_at(resource, "name", path)
    chosen = next(((n, p) for n, p in names if code_at(n, "use", p) in ("official", "usual")), None)
    chosen = chosen or (names[0] if names else None)
    if chosen is None:
        raise Invalid("Practitioner has no name")
    name, name_path = chosen
    family = text_at(name, "family", name_path)
    given = [g for g in texts_at(name, "given", name_path)]
    while given and given[0].casefold() in TITLES:
        given.pop(0)
    if family and given and given[-1] == family:  # "given": ["Dr", "Richard", "Kildare"]
        given.pop()
    if not family and not given:
        family = text_at(name, "text", name_path)
    if not family and not given:
        raise Invalid("Practitioner has no name")
    rpps = ""
    for identifier, id_path in objects_at(resource, "identifier", path):
        type_concept = concept_at(identifier, "type", id_path)
        if code_at(identifier, "system", id_path) == RPPS_OID or "RPPS" in type_concept.codes:
            value = text_at(identifier, "value", id_path)
            if len(value) == 12 and value.startswith("8") and value.isdigit():
                value = value[1:]  # IdNat_PS = "8" + RPPS
            if len(value) == 11 and value.isdigit():
                rpps = value
                break
    qualite = next(
        (c.text for q, p in objects_at(resource, "qualification", path) if (c := concept_at(q, "code", p)).text), ""
    )
    specialty = ""
    for ext, ext_path in extensions(resource, EXT_PRACTITIONER_SPECIALTY, path):
        specialty = specialty or concept_at(ext, "valueCodeableConcept", ext_path).text
    phones = telecoms(resource, path, frozenset({"phone"}))
    emails = telecoms(resource, path, frozenset({"email"}))
    return Practitioner(
        id=key.split("/", 1)[1],
        family_name=family,
        given_names=tuple(given),
        rpps=rpps,
        qualite=qualite or (role.qualite if role else ""),
        specialty=specialty or (role.specialty if role else ""),
        address=address(resource, path),
        phone=phones[0] if phones else (role.phone if role else ""),
        email=emails[0] if emails else (role.email if role else ""),
    )


def learn_practitioner(item: Item) -> list[Effect]:
    practitioner = read_practitioner(item.resource, item.key, item.resource_type, None)
    found = identifiers(item)
    fingerprint = digest(f"{sorted(i for i, _ in found)}|{practitioner.family_name.casefold()}|{practitioner.rpps}")
    return [Identity(0, found, fingerprint)]


def convert_practitioner(conversion: Conversion) -> list[Record]:
    item, indexes = conversion.item, conversion.indexes
    role = indexes.roles_by_practitioner.get(item.key)
    practitioner = read_practitioner(item.resource, item.key, item.resource_type, role)
    canonical = indexes.canonical(item.key)
    if canonical != item.key:
        practitioner = dataclasses.replace(practitioner, id=canonical.split("/", 1)[1])
    return [practitioner]


def learn_organization(item: Item) -> list[Effect]:
    found = identifiers(item)
    name = text_at(item.resource, "name", item.resource_type)
    return [Identity(0, found, digest(f"{sorted(i for i, _ in found)}|{name.casefold()}"))]


def convert_organization(conversion: Conversion) -> list[Record]:
    item = conversion.item
    resource, path = item.resource, item.resource_type
    for type_node, type_path in objects_at(resource, "type", path):
        for system, code, _ in codings(type_node, type_path):
            if system.endswith("organization-type") and code in NOT_A_PRACTICE_TYPES:
                raise Skip("not-used")
    name = text_at(resource, "name", path)
    if not name:
        conversion.warn("Organization without a name: not used as the practice")
        raise Skip("not-used")
    phones = telecoms(resource, path, frozenset({"phone"}))
    return [
        Practice(
            id=conversion.indexes.canonical(item.key).split("/", 1)[1],
            name=name,
            address=address(resource, path),
            phone=phones[0] if phones else "",
        )
    ]


def identifiers(item: Item) -> list[tuple[str, int]]:
    """("system|value", digest of "Type|system|value") of each identifier of a resource."""
    resource_type = item.resource_type
    return [
        (f"{system}|{value}", Identities.identifier_digest(resource_type, system, value))
        for identifier, id_path in objects_at(item.resource, "identifier", resource_type)
        if (system := code_at(identifier, "system", id_path)) and (value := text_at(identifier, "value", id_path))
    ]


def learn_role(item: Item) -> list[Effect]:
    resource, path, scope = item.resource, item.resource_type, item.scope
    practitioner = object_at(resource, "practitioner", path)
    if practitioner is None:
        return []
    practitioner_key = reference_key(practitioner, f"{path}.practitioner", scope)
    if not practitioner_key.startswith("Practitioner/"):
        return []
    specialty = next((c.text for s, p in objects_at(resource, "specialty", path) if (c := concept_of(s, p)).text), "")
    qualite = next((c.text for s, p in objects_at(resource, "code", path) if (c := concept_of(s, p)).text), "")
    phones = telecoms(resource, path, frozenset({"phone"}))
    emails = telecoms(resource, path, frozenset({"email"}))
    role = Role(practitioner_key, specialty, qualite, phones[0] if phones else "", emails[0] if emails else "")
    return [RoleDescribed(role)]

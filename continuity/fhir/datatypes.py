"""FHIR data types read from untrusted JSON: CodeableConcept, dates, Address, ContactPoint, Ratio, Dosage."""

from __future__ import annotations

import datetime as dt
import functools
import math

from continuity.fhir.json import (
    JSON,
    Invalid,
    boolean_at,
    clean,
    code_at,
    describe,
    number_at,
    object_at,
    objects_at,
    text_at,
    texts_at,
)
from continuity.fhir.vocabulary import ATC, FHIR_DATE, MAX_TEXT, PERIOD_UNITS_FR, SYSTEM_NAMES, UCUM
from continuity.model import Address


def codings(concept: JSON | None, path: str) -> list[tuple[str, str, str]]:
    """(system, code, display) of each coding of a CodeableConcept."""
    if concept is None:
        return []
    result = []
    for coding, coding_path in objects_at(concept, "coding", path):
        result.append(
            (
                code_at(coding, "system", coding_path),
                code_at(coding, "code", coding_path),
                text_at(coding, "display", coding_path),
            )
        )
    return result


class Concept:
    """The readable text and first code of a CodeableConcept, whatever parts it has (read-only)."""

    __slots__ = ("atc_display", "code", "codes", "own_text", "system", "text")

    def __init__(
        self,
        text: str = "",
        code: str = "",
        system: str = "",
        codes: frozenset[str] = frozenset(),
        atc_display: str = "",
        own_text: str = "",  # CodeableConcept.text alone: what a person typed, not a terminology display
    ) -> None:
        self.text = text
        self.code = code
        self.system = system
        self.codes = codes
        self.atc_display = atc_display
        self.own_text = own_text

    @property
    def normalized_text(self) -> str:
        return self.text.casefold().rstrip(".")


NO_CONCEPT = Concept()


def concept_at(node: JSON, key: str, path: str) -> Concept:
    concept = node.get(key)
    if concept is None:
        return NO_CONCEPT
    if concept.__class__ is not dict:
        concept = object_at(node, key, path)  # raises the located message
    return concept_of(concept, f"{path}.{key}")


def concept_of(concept: JSON | None, path: str) -> Concept:
    if concept is None:
        return NO_CONCEPT
    fast = _concept_fast(concept)
    if fast is not None:
        return fast
    found = codings(concept, path)
    text = text_at(concept, "text", path)
    display = next((d for _, _, d in found if d), "")
    first = next(((s, c) for s, c, _ in found if c), ("", ""))
    atc = next((d for s, _, d in found if s == ATC and d), "")
    return Concept(
        text=text or display,
        code=first[1],
        system=first[0],
        codes=frozenset(c for _, c, _ in found if c),
        atc_display=atc,
        own_text=text,
    )


def _concept_fast(concept: JSON) -> Concept | None:
    """`concept_of` for the usual shapes (None for anything else, read by the general path).

    Usual: ``coding`` absent or a list of objects whose system/code/display are absent or strings,
    ``text`` absent or a string.
    """
    codings = concept.get("coding")
    text = concept.get("text")
    if text is None:
        text = ""
    elif text.__class__ is str:
        text = clean(text)
    else:
        return None
    if codings is None:
        return Concept(text, own_text=text) if text else NO_CONCEPT
    if codings.__class__ is not list:
        return None
    display = code = system = atc = ""
    codes: list[str] = []
    for coding in codings:
        if coding.__class__ is not dict:
            return None
        s = coding.get("system")
        c = coding.get("code")
        d = coding.get("display")
        if s is None:
            s = ""
        elif s.__class__ is str:
            s = s[:MAX_TEXT].strip()
        else:
            return None
        if c is None:
            c = ""
        elif c.__class__ is str:
            c = c[:MAX_TEXT].strip()
        else:
            return None
        if d is None:
            d = ""
        elif d.__class__ is str:
            d = clean(d)
        else:
            return None
        if d:
            display = display or d
            if not atc and s == ATC:
                atc = d
        if c:
            codes.append(c)
            if not code:
                code, system = c, s
    return Concept(text or display, code, system, frozenset(codes), atc, text)


def status_code(node: JSON, key: str, path: str) -> str:
    """A status that is a code (``"active"``) or a CodeableConcept (``{"coding": [...]}``)."""
    value = node.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return clean(value).lower()
    if isinstance(value, dict):
        concept = concept_of(value, f"{path}.{key}")
        return (concept.code or concept.text).lower()
    raise Invalid(f"{path}.{key} must be a code or a CodeableConcept, not {describe(value)}")


def extensions(node: JSON, url: str, path: str) -> list[tuple[JSON, str]]:
    return [(ext, ext_path) for ext, ext_path in objects_at(node, "extension", path) if ext.get("url") == url]


def parse_date(value: str, path: str) -> tuple[dt.date | None, bool]:
    """(date, partial): a FHIR date or dateTime; a partial one ("1951", "1951-03") gives (None, True)."""
    parsed = _parsed_date(value)
    if isinstance(parsed, str):
        raise Invalid(f"{path} {parsed}: {value[:40]!r}")
    return parsed


@functools.lru_cache(maxsize=1 << 16)  # an export repeats its dates (birth dates, days of prescription) endlessly
def _parsed_date(value: str) -> tuple[dt.date | None, bool] | str:
    """``parse_date`` without the path; what is wrong with the value when it is not a date."""
    match = FHIR_DATE.fullmatch(value)
    if not match:
        return "is not a FHIR date"
    if match["d"] is None:
        return None, True
    try:
        return dt.date(int(match["y"]), int(match["m"]), int(match["d"])), False
    except ValueError:
        return "is not a valid date"


def date_at(node: JSON, key: str, path: str) -> dt.date | None:
    value = code_at(node, key, path)
    return parse_date(value, f"{path}.{key}")[0] if value else None


def datetime_at(node: JSON, key: str, path: str) -> dt.datetime | None:
    value = code_at(node, key, path)
    if not value:
        return None
    match = FHIR_DATE.fullmatch(value)
    if not match or match["time"] is None:
        raise Invalid(f"{path}.{key} is not a FHIR dateTime with a time: {value[:40]!r}")
    if match["time"].count(".") and len(match["time"].split(".")[1]) > 6:  # Python keeps microseconds
        value = value.replace(match["time"], match["time"][: match["time"].index(".") + 7], 1)
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{path}.{key} is not a valid dateTime: {value[:40]!r}") from None


def address(node: JSON, path: str) -> Address:
    """The current address: home first, never an ``old`` one."""
    candidates = [(a, p) for a, p in objects_at(node, "address", path) if code_at(a, "use", p) != "old"]
    if not candidates:
        return Address()
    chosen, chosen_path = next(((a, p) for a, p in candidates if code_at(a, "use", p) == "home"), candidates[0])
    return Address(
        lines=tuple(texts_at(chosen, "line", chosen_path)),
        postal_code=text_at(chosen, "postalCode", chosen_path),
        city=text_at(chosen, "city", chosen_path),
        country=text_at(chosen, "country", chosen_path),
    )


def telecoms(node: JSON, path: str, systems: frozenset[str]) -> list[str]:
    """Contact values of the given systems, by rank then order, without duplicates."""
    found: list[tuple[float, int, str]] = []
    for index, (point, point_path) in enumerate(objects_at(node, "telecom", path)):
        if code_at(point, "system", point_path) not in systems:
            continue
        value = text_at(point, "value", point_path)
        for prefix in ("tel:", "mailto:"):
            if value.lower().startswith(prefix):
                value = value[len(prefix) :]
        rank = number_at(point, "rank", point_path)
        if value:
            found.append((rank if rank is not None else math.inf, index, value))
    result: list[str] = []
    for _, _, value in sorted(found):
        if value not in result:
            result.append(value)
    return result


def quantity_text(quantity: JSON | None, path: str) -> str:
    if quantity is None:
        return ""
    value = number_at(quantity, "value", path)
    if value is None:
        return ""
    unit = text_at(quantity, "unit", path) or text_at(quantity, "code", path)
    number = f"{value:g}".replace(".", ",")  # French decimal comma on a French prescription
    return f"{number} {unit}".strip()


def ratio(ratio: JSON | None, path: str) -> str:
    """A strength: "2,5 mg", "5 mg/mL"; a denominator of one unit of presentation is left out."""
    if ratio is None:
        return ""
    numerator = quantity_text(object_at(ratio, "numerator", path), f"{path}.numerator")
    denominator_node = object_at(ratio, "denominator", path)
    if not numerator:
        return ""
    if denominator_node is None:
        return numerator
    denominator_path = f"{path}.denominator"
    denominator_value = number_at(denominator_node, "value", denominator_path)
    code = code_at(denominator_node, "code", denominator_path)
    system = code_at(denominator_node, "system", denominator_path)
    # A unit of presentation (UCUM "1" or an annotation like "{tbl}", or another terminology's
    # "Tablet") is implied by the form: "2,5 mg", not "2,5 mg/1 comprimé". A measure stays: "5 mg/mL".
    presentation = system != UCUM or not code or code.isdigit() or code.startswith("{")
    if denominator_value in (None, 1.0):
        return numerator if presentation else f"{numerator}/{code}"
    if presentation:
        return numerator
    return f"{numerator}/{quantity_text(denominator_node, denominator_path)}"


def bounds_start(dosage: JSON, path: str) -> dt.date | None:
    """When the treatment began, as some platforms say it: ``timing.repeat.boundsPeriod.start``."""
    timing = object_at(dosage, "timing", path)
    repeat = object_at(timing, "repeat", f"{path}.timing") if timing else None
    bounds = object_at(repeat, "boundsPeriod", f"{path}.timing.repeat") if repeat else None
    return date_at(bounds, "start", f"{path}.timing.repeat.boundsPeriod") if bounds else None


def posology(dosage: JSON, path: str) -> str:
    """The dosage text, or one built (in French) from the dose and the timing."""
    text = text_at(dosage, "text", path)
    if text:
        return text
    parts: list[str] = []
    for dose_and_rate, dr_path in objects_at(dosage, "doseAndRate", path):
        dose = quantity_text(object_at(dose_and_rate, "doseQuantity", dr_path), f"{dr_path}.doseQuantity")
        if dose:
            parts.append(dose)
            break
    timing = object_at(dosage, "timing", path)
    if timing is not None:
        repeat = object_at(timing, "repeat", f"{path}.timing")
        if repeat is not None:
            repeat_path = f"{path}.timing.repeat"
            frequency = number_at(repeat, "frequency", repeat_path)
            period = number_at(repeat, "period", repeat_path)
            unit = code_at(repeat, "periodUnit", repeat_path)
            if unit in PERIOD_UNITS_FR and (frequency is not None or period is not None):
                times = f"{frequency or 1:g} fois"
                every = PERIOD_UNITS_FR[unit]
                if period is not None and period != 1:
                    every = f"{period:g} {every}s" if unit != "mo" else f"{period:g} mois"
                parts.append(f"{times} par {every}")
        timing_code = concept_at(timing, "code", f"{path}.timing")
        if timing_code.text and not parts[1:]:
            parts.append(timing_code.text)
    if boolean_at(dosage, "asNeededBoolean", path):
        parts.append("si besoin")
    return ", ".join(parts)


def code_label(system: str, code: str) -> str:
    """The label of a concept that has only a code: "SNOMED CT 418770003", or the system when unknown."""
    code = clean(code)[:80]
    name = SYSTEM_NAMES.get(system)
    if name is None:
        name = clean(system.removeprefix("urn:oid:").rstrip("/").rsplit("/", 1)[-1])[:60] or "code"
    return f"{name} {code}"


def coding_keys(concept: object) -> list[str]:
    """Every coding of a CodeableConcept (already type-checked) as "system|code", in order."""
    if not isinstance(concept, dict):
        return []
    codings_node = concept.get("coding")
    if isinstance(codings_node, dict):
        codings_node = [codings_node]
    if not isinstance(codings_node, list):
        return []
    keys = []
    for coding in codings_node:
        if isinstance(coding, dict) and isinstance(code := coding.get("code"), str) and code.strip():
            system = coding.get("system")
            system = clean(system) if isinstance(system, str) else ""
            key = f"{system}|{clean(code)}"
            if key not in keys:
                keys.append(key)
    return keys


def first_coding(concept: Concept) -> str:
    """The label built from a concept's first code (Concept keeps the system of its first code)."""
    return code_label(concept.system, concept.code) if concept.code else ""

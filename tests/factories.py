"""Small builders of synthetic model records for tests (no real person's data)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from continuity.model import (
    Address,
    Allergy,
    AllergyStatus,
    Appointment,
    Condition,
    IdentityStatus,
    Measurement,
    NonSubstitutionReason,
    Patient,
    Practice,
    Practitioner,
    Record,
    Sex,
    Treatment,
)

_ids = itertools.count(1)


def practitioner(**overrides: Any) -> Practitioner:
    values: dict[str, Any] = {
        "id": "prac-1",
        "family_name": "Garnier",
        "given_names": ("Hélène",),
        "rpps": "10001234567",
        "qualite": "Médecin généraliste",
        "specialty": "Médecine générale",
        "address": Address(("12 rue des Lilas",), "69003", "Lyon", "France"),
        "phone": "+33 4 78 00 00 01",
        "email": "h.garnier@cabinet-lilas.example",
    }
    values.update(overrides)
    return Practitioner(**values)


def patient(birth_name: str, given: str | tuple[str, ...], born: str, **overrides: Any) -> Patient:
    values: dict[str, Any] = {
        "id": f"pat-{next(_ids):06d}",
        "birth_name": birth_name,
        "birth_given_names": (given,) if isinstance(given, str) else given,
        "sex": Sex.FEMALE,
        "birth_date": dt.date.fromisoformat(born),
        "identity_status": IdentityStatus.VALI,
        "phones": ("+33 6 12 34 56 78",),
        "general_practitioner_id": "prac-1",
        "allergy_status": AllergyStatus.NO_INFORMATION,
    }
    values.update(overrides)
    return Patient(**values)


def small_practice(today: dt.date = dt.date(2026, 11, 28)) -> list[Record]:
    """A handful of patients with the identity traps the search must handle."""
    records: list[Record] = [Practice("cab-lilas", "Cabinet des Lilas"), practitioner()]
    homonym_a = patient("MARTIN", "Marie", "1951-03-12", id="pat-martin-1")
    homonym_b = patient("MARTIN", "Marie", "1987-07-01", id="pat-martin-2")
    records += [
        homonym_a,
        homonym_b,
        patient("MARTINEZ", "Paul", "1960-01-05", id="pat-martinez", sex=Sex.MALE),
        patient("LEFÈVRE-ÇELIK", "Amandine", "1979-09-30", id="pat-lefevre"),
        patient("N'DIAYE", "Moussa", "1990-02-14", id="pat-ndiaye", sex=Sex.MALE),
        patient("de La Fontaine", ("Jeanne", "Marie", "Louise"), "1944-12-24", id="pat-fontaine"),
        patient("DUBOIS", "Claire", "1972-05-05", id="pat-married", used_name="MOREAU"),
        patient("BERNARD", "Léo", "2023-06-01", id="pat-twin-1", sex=Sex.MALE),
        patient("BERNARD", "Lina", "2023-06-01", id="pat-twin-2"),
        patient(
            "ROUSSEAU", "Jacques", "1951-03-12", id="pat-qual", sex=Sex.MALE,
            identity_status=IdentityStatus.QUAL, ins="151037512345658", ins_oid="1.2.250.1.213.1.4.10",
            allergy_status=AllergyStatus.RECORDED,
        ),
        patient("ŒUVRAY", "Zoé", "2001-01-01", id="pat-oeuvray", allergy_status=AllergyStatus.NONE_KNOWN),
        Allergy("alg-1", "pat-qual", "Amoxicilline", criticality="high", reaction="Urticaire", category="medication"),
        Condition("cond-1", "pat-qual", "Diabète de type 2", code="E11", is_ald=True),
        Condition("cond-2", "pat-qual", "Hypertension artérielle", code="I10"),
        Treatment("trt-1", "pat-qual", "metformine", "1000 mg", "comprimé", "orale", "1 comprimé matin et soir",
                  chronic=True, ald_related=True, renewals_left=2, last_prescriber_id="prac-1",
                  last_prescribed_on=dt.date(2026, 10, 2)),
        Treatment("trt-2", "pat-qual", "lévothyroxine sodique", "75 µg", "comprimé", "orale", "1 comprimé le matin",
                  chronic=True, non_substitution=NonSubstitutionReason.MTE),
        Measurement("pat-twin-1", "weight", 11.2, "kg", dt.date(2026, 10, 1)),
        Measurement("pat-twin-1", "weight", 10.4, "kg", dt.date(2026, 6, 1)),
        Appointment("apt-1", "pat-qual", "prac-1", dt.datetime.combine(today, dt.time(9, 0))),
        Appointment("apt-2", "pat-ndiaye", "prac-1", dt.datetime.combine(today, dt.time(9, 20))),
        Appointment("apt-old", "pat-qual", "prac-1", dt.datetime(2025, 1, 1, 9, 0)),
    ]
    return records

"""Builders of synthetic French patients, practitioners and prescriptions for the ordonnance tests."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from continuity.model import (
    Address,
    Allergy,
    AllergyStatus,
    Condition,
    Measurement,
    NonSubstitutionReason,
    Patient,
    PatientSummary,
    Practitioner,
    Prescription,
    PrescriptionLine,
    Sex,
    Treatment,
)

NOW = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.UTC)
SNAPSHOT_AT = dt.datetime(2026, 11, 27, 1, 15, tzinfo=dt.UTC)
TODAY = NOW.date()

HOSTILE_NAMES = (
    "<script>alert(1)</script>",
    "{{7*7}}",
    "<img src=http://192.0.2.1/x.png>",
    "שָׁלוֹם-العربية",
)
LONG_NAME = "Kà" * 250  # 500 characters, one unbreakable word


def practitioner(**changes: object) -> Practitioner:
    base = Practitioner(
        id="pr-1",
        family_name="Lefèvre-Çelik",
        given_names=("Hélène", "Zoé"),
        rpps="10101234567",
        qualite="Médecin généraliste",
        specialty="Médecine générale",
        address=Address(lines=("12 rue de l'Église",), postal_code="69003", city="Lyon", country="France"),
        phone="04 72 00 11 22",
        email="dr.lefevre@cabinet-exemple.fr",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def patient(**changes: object) -> Patient:
    base = Patient(
        id="pat-1",
        birth_name="N'Diaye",
        birth_given_names=("Aïssatou", "Éléonore"),
        sex=Sex.FEMALE,
        birth_date=dt.date(1958, 3, 14),
        used_name="Dupré",
        allergy_status=AllergyStatus.RECORDED,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def child(**changes: object) -> Patient:
    traits: dict[str, object] = {
        "id": "pat-child",
        "birth_name": "Gaël",
        "birth_given_names": ("Noé",),
        "sex": Sex.MALE,
        "birth_date": dt.date(2019, 6, 2),
        "used_name": "",
    }
    return patient(**(traits | changes))


def treatment(id: str, dci: str, **changes: object) -> Treatment:
    base = Treatment(
        id=id,
        patient_id="pat-1",
        dci=dci,
        strength="1000 mg",
        form="comprimé",
        route="voie orale",
        posology="1 comprimé matin et soir",
        chronic=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def weight(value: float, measured_on: dt.date, patient_id: str = "pat-1") -> Measurement:
    return Measurement(patient_id=patient_id, kind="weight", value=value, unit="kg", measured_on=measured_on)


def summary(
    the_patient: Patient | None = None,
    *,
    treatments: Sequence[Treatment] = (),
    allergies: Sequence[Allergy] = (),
    conditions: Sequence[Condition] = (),
    measurements: Sequence[Measurement] = (),
) -> PatientSummary:
    return PatientSummary(
        patient=the_patient or patient(),
        allergies=tuple(allergies),
        conditions=tuple(conditions),
        treatments=tuple(treatments),
        recent_prescriptions=(),
        measurements=tuple(measurements),
        general_practitioner=practitioner(),
        appointments=(),
    )


def ald_summary() -> PatientSummary:
    return summary(
        treatments=(
            treatment("t-met", "metformine", ald_related=True),
            treatment(
                "t-levo",
                "lévothyroxine sodique",
                strength="75 µg",
                posology="1 comprimé le matin à jeun",
                non_substitution=NonSubstitutionReason.MTE,
            ),
            treatment("t-ins", "insuline glargine", strength="100 U/ml", form="solution injectable en stylo",
                      route="voie sous-cutanée", posology="20 unités le soir", ald_related=True),
        ),
        allergies=(Allergy(id="a-1", patient_id="pat-1", substance="Pénicillines", reaction="urticaire"),),
        conditions=(Condition(id="c-1", patient_id="pat-1", text="Diabète de type 2", is_ald=True),),
        measurements=(weight(71.5, dt.date(2026, 10, 2)),),
    )


def line(dci: str = "paracétamol", **changes: object) -> PrescriptionLine:
    base = PrescriptionLine(
        dci=dci,
        strength="500 mg",
        form="gélule",
        route="voie orale",
        posology="1 à 2 gélules toutes les 6 heures si douleur, sans dépasser 8 par jour",
        duration_days=7,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def prescription(
    lines: Sequence[PrescriptionLine], *, the_patient: Patient | None = None, **changes: object
) -> Prescription:
    base = Prescription(
        id="0f3c9a2e5b7d4c1a",
        issued_at=NOW,
        patient=the_patient or patient(),
        prescriber=practitioner(),
        lines=tuple(lines),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def pdf_text(pdf: bytes, tmp_path: Path, *, layout: bool = False) -> list[str]:
    """The text of each page (pdftotext when installed, pypdf otherwise)."""
    if shutil.which("pdftotext"):
        source = tmp_path / "read.pdf"
        source.write_bytes(pdf)
        args = ["pdftotext", "-enc", "UTF-8", *(["-layout"] if layout else []), str(source), "-"]
        text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        return text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")
    import io

    import pypdf

    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def flat(text: str) -> str:
    """Whitespace collapsed, so a mention wrapped over two lines still matches."""
    return " ".join(text.split())

"""Shared helpers for the journal tests: an appliance home with keys, a clock, prescriptions."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nacl.public
import nacl.signing

from continuity import journal as journal_module
from continuity.model import (
    IdentityStatus,
    NonSubstitutionReason,
    Patient,
    Practitioner,
    Prescription,
    PrescriptionLine,
    Sex,
)


@dataclass
class Appliance:
    home: Path
    box_key: nacl.public.PrivateKey
    signing_key: nacl.signing.SigningKey

    def journal(self) -> journal_module.Journal:
        return journal_module.Journal(self.home)


def make_appliance(home: Path) -> Appliance:
    """An appliance home with the two public key files keys.py writes at `continuity init`."""
    home.mkdir(parents=True, exist_ok=True)
    box_key = nacl.public.PrivateKey.generate()
    signing_key = nacl.signing.SigningKey.generate()
    write_key_files(home, box_key.public_key, signing_key.verify_key)
    return Appliance(home, box_key, signing_key)


def write_key_files(home: Path, public: nacl.public.PublicKey, verify: nacl.signing.VerifyKey) -> None:
    (home / "appliance.pub").write_text(f"continuity-appliance-v1:{base64.b64encode(bytes(public)).decode()}\n")
    (home / "appliance.sign.pub").write_text(
        f"continuity-appliance-sign-v1:{base64.b64encode(bytes(verify)).decode()}\n"
    )


class Clock:
    """Replaces journal._now so tests can write entries in chosen months."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now

    def set(self, year: int, month: int, day: int = 1) -> None:
        self.now = dt.datetime(year, month, day, 8, 0, tzinfo=dt.UTC)


PRESCRIBER = Practitioner(
    id="prac-1",
    family_name="MARTIN",
    given_names=("Claire",),
    rpps="10101010101",
    qualite="Médecin généraliste",
)
OTHER_PRESCRIBER = Practitioner(id="prac-2", family_name="DURAND", given_names=("Paul",), rpps="10000000002")


def make_patient(index: int = 1) -> Patient:
    return Patient(
        id=f"pat-{index:04d}",
        birth_name=["NDIAYE", "LEFÈVRE-ÇELIK", "ZYLBERSTEIN"][index % 3],
        birth_given_names=(["Aminata", "Éloïse", "Gaspard"][index % 3], "Marie"),
        sex=Sex.FEMALE,
        birth_date=dt.date(1950 + index, 3, 14),
        used_name="QUINTAVALLE" if index % 2 else "",
        identity_status=IdentityStatus.QUAL,
        ins=f"2{50 + index:02d}037512345{index % 10}",
        ins_oid="1.2.250.1.213.1.4.10",
    )


def make_prescription(index: int = 1, prescriber: Practitioner = PRESCRIBER) -> Prescription:
    return Prescription(
        id=f"rx-{index:04d}",
        issued_at=dt.datetime(2026, 11, 28, 9, index % 60, tzinfo=dt.UTC),
        patient=make_patient(index),
        prescriber=prescriber,
        lines=(
            PrescriptionLine(
                dci="lévothyroxine sodique",
                strength="75 µg",
                form="comprimé",
                route="orale",
                posology="1 comprimé le matin à jeun",
                duration_days=90,
                renewals=2,
                non_substitution=NonSubstitutionReason.MTE,
                ald_related=True,
            ),
            PrescriptionLine(
                dci="paracétamol", strength="1 g", form="comprimé", posology="1 cp 3 fois par jour si douleur"
            ),
        ),
    )


def patient_markers(patient: Patient) -> list[str]:
    """Strings that must never appear in clear on disk."""
    assert patient.birth_date is not None
    markers = [patient.birth_name, patient.first_given_name, patient.ins, patient.birth_date.strftime("%d/%m/%Y")]
    markers.append(patient.birth_date.isoformat())
    if patient.used_name:
        markers.append(patient.used_name)
    return markers


def files_bytes(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every file under root, gzip-decoded as well when it is gzip."""
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        yield path, data
        if data[:2] == b"\x1f\x8b":
            yield path, gzip.decompress(data)

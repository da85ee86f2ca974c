"""An appliance home with a prescriber login whose RPPS is a practitioner of the snapshot (and a drug reference).

Staff RPPS numbers are checked (11 digits and their check digit, continuity/keys.py), so the prescriber
here is a practitioner of their own with a valid number, added to the small practice of tests/factories.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from continuity import keys, snapshot_build
from continuity.drugs import bdpm
from continuity.model import Practitioner, Record
from tests.factories import practitioner, small_practice
from tests.transport_helpers import PRACTICE, Rig

BDPM_FIXTURE = Path(__file__).resolve().parent / "data" / "bdpm"
PRESCRIBER = "dr.valide"
PRESCRIBER_PASSPHRASE = "ordonnance bleue quinze mardi"
PRESCRIBER_RPPS = "10001234565"  # passes the RPPS check digit


def prescriber_practitioner() -> Practitioner:
    return replace(practitioner(), id="prac-rx", family_name="Valide", given_names=("Claire",), rpps=PRESCRIBER_RPPS)


@dataclass
class PrescribingHome:
    rig: Rig
    snapshot: Path


def with_prescriber(rig: Rig, records: list[Record] | None = None, *, with_reference: bool = True) -> PrescribingHome:
    """Enrol the prescriber, publish `records` (the small practice by default, plus their practitioner)."""
    keys.add_staff(rig.home, rig.secrets, PRESCRIBER, PRESCRIBER_PASSPHRASE, role=keys.Role.PRESCRIBER,
                   rpps=PRESCRIBER_RPPS)
    database = rig.tmp / "prescribing.db"
    built = snapshot_build.build_from_records(
        [*(records if records is not None else small_practice()), prescriber_practitioner()], database,
        practice_id=PRACTICE, drugs=bdpm.read(BDPM_FIXTURE) if with_reference else None,
    )
    rig.counts = built.counts
    rig.database = database
    return PrescribingHome(rig, database)

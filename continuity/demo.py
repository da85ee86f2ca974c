"""The demo practice: a synthetic practice published, pulled and stored, ready to unlock.

`make demo` (`continuity demo`) runs the real chain end to end — synthesise a FHIR export, build,
seal and sign it as the platform would, pull it into an appliance home — so that what a newcomer
sees is exactly what a practice would run, on invented patients.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from continuity import keys, publish, pull, staff, synth
from continuity.drugs import bdpm
from continuity.errors import StoreError
from continuity.store import Store

DEMO_USER = "accueil"
DEMO_PASSPHRASE = "continuite demo lilas"
DEMO_DOCTOR = "dr.garnier"
DEMO_DOCTOR_PASSPHRASE = "ordonnance demo tilleul"
DEMO_PRACTICE_ID = "cabinet-demo"
DEMO_DRUG_REFERENCE = Path(__file__).resolve().parent / "drugs" / "demo_bdpm"
# A marker that makes `prepare` willing to wipe a home: it never deletes a real appliance's data.
MARKER = ".continuity-demo"


@dataclass(frozen=True)
class DemoPractice:
    home: Path
    platform: Path  # the publisher's side: FHIR export, publisher key, outbox
    snapshot_file: Path
    synth: synth.SynthSummary
    users: dict[str, str]  # user -> passphrase (demo only!)
    roles: dict[str, str]  # user -> French role label


def prepare(home: Path, *, patients: int = 2000, seed: int = 2026, today: dt.date | None = None) -> DemoPractice:
    """Create (or re-create) a demo appliance home with a freshly generated practice."""
    if home.exists() and any(home.iterdir()) and not (home / MARKER).exists():
        raise StoreError(
            f"{home} holds data that is not a demo home; refusing to overwrite it",
            message_fr=f"Le dossier {home} contient de vraies données : la démonstration ne l'écrase pas.",
        )
    platform = home.with_name(home.name + "-platform")
    for folder in (home, platform):
        if folder.exists():
            shutil.rmtree(folder)
    Store(home).create()
    (home / MARKER).write_text("demo appliance home: may be deleted and re-created by `continuity demo`\n")

    export = platform / "fhir"
    summary = synth.write_practice(export, patients=patients, seed=seed, today=today or dt.date.today())
    keys.generate_publisher_key(platform / "keys")
    # The doctor is enrolled first (a prescriber administers staff), then reception; the doctor's RPPS
    # is that of a practitioner of the synthetic practice, so the ordonnances they sign are theirs.
    staff.initialise(home, DEMO_DOCTOR, DEMO_DOCTOR_PASSPHRASE, role=keys.Role.PRESCRIBER,
                     rpps=summary.demo_practitioner_rpps)
    doctor = keys.open_member(home, DEMO_DOCTOR, DEMO_DOCTOR_PASSPHRASE)
    staff.add(home, doctor, DEMO_USER, DEMO_PASSPHRASE, role=keys.Role.RECEPTION)
    keys.trust_publisher(home, platform / "keys" / "publisher.pub")
    snapshot_file = platform / "outbox" / "snapshot-000001.snap"
    snapshot_file.parent.mkdir(parents=True)
    # The demo's drug reference: the BDPM subset shipped in the package (every drug the synthetic
    # practice prescribes, cut from a real BDPM copy; see continuity/drugs/demo_bdpm/SOURCES.md).
    drugs = bdpm.read(DEMO_DRUG_REFERENCE)
    publish.publish(
        [export],
        snapshot_file,
        signing_key=keys.load_publisher_signing_key(platform / "keys" / "publisher.key"),
        recipients=[keys.appliance_public_key(home)],
        practice_id=DEMO_PRACTICE_ID,
        sequence=1,
        drugs=drugs,
    )
    store = Store(home)
    pull.pull(store, str(snapshot_file))
    return DemoPractice(
        home=home,
        platform=platform,
        snapshot_file=snapshot_file,
        synth=summary,
        users={DEMO_USER: DEMO_PASSPHRASE, DEMO_DOCTOR: DEMO_DOCTOR_PASSPHRASE},
        roles={DEMO_USER: "accueil", DEMO_DOCTOR: f"prescripteur, RPPS {summary.demo_practitioner_rpps}"},
    )

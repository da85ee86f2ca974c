"""After a whole session (pull, unlock, every record viewed, prints, drill, lock): no patient data in clear on disk."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from continuity import doctor, drill
from continuity.journal import Journal, verify_journal
from continuity.model import Patient, PrescriptionLine
from continuity.session import Session, fixed_clock
from tests.factories import small_practice
from tests.prescribing_helpers import PRESCRIBER, PRESCRIBER_PASSPHRASE, with_prescriber
from tests.transport_helpers import NOW, PASSPHRASE, USER, make_rig, use_weak_kdf
from tests.unit.journal_helpers import files_bytes

_BASE64 = re.compile(r"^[A-Za-z0-9+/=]*$")


def markers(patient: Patient) -> list[str]:
    """Names, birth dates and INS that must not appear in clear.

    Short pure-ASCII names are left out: a 4-letter word turns up by chance in kilobytes of base64
    ciphertext; six characters or any accent, space or hyphen cannot.
    """
    found = [patient.birth_name, patient.used_name, *patient.birth_given_names, patient.ins]
    if patient.birth_date is not None:
        found += [patient.birth_date.isoformat(), patient.birth_date.strftime("%d/%m/%Y")]
    return [text for text in found if text and (len(text) >= 6 or not _BASE64.match(text))]


def test_a_full_session_leaves_no_patient_data_in_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    with_prescriber(rig)
    rig.ingest(rig.make(1))
    patients = [record for record in small_practice() if isinstance(record, Patient)]
    assert len(patients) > 5

    session = Session.unlock(rig.home, USER, PASSPHRASE, clock=fixed_clock(NOW))
    for patient in patients:
        session.open_patient(patient.id)
    session.lock()
    session = Session.unlock(rig.home, PRESCRIBER, PRESCRIBER_PASSPHRASE, clock=fixed_clock(NOW))
    view = session.open_patient("pat-qual")
    signing = session.signing(session.signer())
    plan = session.plan_prescription(
        view, signing,
        new_lines=[PrescriptionLine(dci="paracétamol", strength="1 g", form="comprimé", posology="1 cp si douleur")],
    )
    session.issue_prescription(plan, signing, acknowledged={w.code for w in plan.warnings})
    session.lock()
    drill.run_drill(
        lambda: Session.unlock(rig.home, PRESCRIBER, PRESCRIBER_PASSPHRASE, clock=fixed_clock(NOW)),
        patient_search="rousseau",
        out_dir=tmp_path / "drill-out",
        printer=lambda pdf_bytes, save_to: "imprimé",
        printer_check=lambda: doctor.Check("Imprimante", doctor.Status.OK, "ok"),
        with_report_pdf=False,
    )

    assert verify_journal(rig.home).ok
    assert len(list(Journal(rig.home).entries())) > len(patients) + 5
    assert leaks(rig.home, patients) == []
    # The scan itself finds what it looks for, gzip-compressed too.
    (rig.home / "planted.gz").write_bytes(gzip.compress(f"x {patients[0].birth_name} x".encode()))
    assert set(leaks(rig.home, patients)) == {(Path("planted.gz"), patients[0].birth_name)}


def leaks(home: Path, patients: list[Patient]) -> list[tuple[Path, str]]:
    found = []
    for path, data in files_bytes(home):
        text = data.decode("utf-8", errors="replace")
        for patient in patients:
            found += [(path.relative_to(home), marker) for marker in markers(patient) if marker in text]
    return found

"""Reconciliation export: prescriptions journaled with the sealed payload come back as FHIR R4 and CSV."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from pathlib import Path

import nacl.public
import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from continuity import journal as journal_module
from continuity import reconcile
from continuity.errors import StoreError
from continuity.journal import Action, prescription_payload
from continuity.model import Prescription
from tests.unit.journal_helpers import OTHER_PRESCRIBER, Appliance, Clock, make_appliance, make_prescription

# fhir.resources 8 defaults to R5: the R4B package is the R4-compatible one (R4B differs from R4 only
# in resources this export does not use).


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock(dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC))
    monkeypatch.setattr(journal_module, "_now", fixed)
    return fixed


@pytest.fixture
def appliance(tmp_path: Path) -> Appliance:
    return make_appliance(tmp_path / "home")


def issue(appliance: Appliance, prescription: Prescription, *, action: str = Action.PRINT_PRESCRIPTION) -> None:
    appliance.journal().append(
        user="accueil",
        action=action,
        patient_id=prescription.patient.id,
        snapshot_seq=12,
        sealed=prescription_payload(prescription, pdf_sha256=f"{int(prescription.id[3:]):064x}"),
    )


@pytest.fixture
def outage(appliance: Appliance, clock: Clock) -> list[Prescription]:
    """One prescription the day before, then an outage morning with five real ones and a drill one."""
    issue(appliance, make_prescription(99))
    clock.now = dt.datetime(2026, 11, 28, 7, 30, tzinfo=dt.UTC)
    issued = [make_prescription(n, OTHER_PRESCRIBER if n % 2 else make_prescription(n).prescriber) for n in range(1, 6)]
    for prescription in issued:
        appliance.journal().append(user="accueil", action="view_patient", patient_id=prescription.patient.id)
        issue(appliance, prescription)
    issue(appliance, make_prescription(42), action=Action.DRILL_PRESCRIPTION)
    return issued


def test_collect_reads_the_window_only(appliance: Appliance, outage: list[Prescription]) -> None:
    found, skipped = reconcile.collect(appliance.journal(), appliance.box_key, dt.date(2026, 11, 28))
    assert [item.payload["prescription_id"] for item in found] == [p.id for p in outage]
    assert skipped == []
    everything, _ = reconcile.collect(appliance.journal(), appliance.box_key, dt.date(2026, 11, 27))
    assert len(everything) == 6


def test_a_wrong_key_skips_with_a_reason_instead_of_losing_silently(
    appliance: Appliance, outage: list[Prescription]
) -> None:
    found, skipped = reconcile.collect(appliance.journal(), nacl.public.PrivateKey.generate(), dt.date(2026, 11, 28))
    assert found == []
    assert len(skipped) == 5


def test_legacy_action_is_reported(appliance: Appliance, outage: list[Prescription]) -> None:
    appliance.journal().append(user="accueil", action="prescription.issued", patient_id="pat-0001", sealed={"x": 1})
    _, skipped = reconcile.collect(appliance.journal(), appliance.box_key, dt.date(2026, 11, 28))
    assert len(skipped) == 1
    assert "prescription.issued" in skipped[0].reason


def test_round_trip_fhir_bundle(appliance: Appliance, outage: list[Prescription], tmp_path: Path) -> None:
    result = reconcile.export(
        appliance.journal(), appliance.box_key, dt.date(2026, 11, 28), tmp_path / "out", user="dr.martin"
    )
    bundle_path = next(path for path in result.files if path.name.endswith(".fhir.json"))
    raw = json.loads(bundle_path.read_text("utf-8"))
    Bundle.model_validate(raw)
    for item in raw["entry"]:
        get_fhir_model_class(item["resource"]["resourceType"]).model_validate(item["resource"])
    requests = [item["resource"] for item in raw["entry"] if item["resource"]["resourceType"] == "MedicationRequest"]
    provenances = [item["resource"] for item in raw["entry"] if item["resource"]["resourceType"] == "Provenance"]
    assert len(requests) == sum(len(p.lines) for p in outage)
    assert len(provenances) == len(outage)
    by_group: dict[str, list[dict[str, object]]] = {}
    for request in requests:
        by_group.setdefault(request["groupIdentifier"]["value"], []).append(request)
    for prescription in outage:
        lines = by_group[prescription.id]
        assert len(lines) == len(prescription.lines)
        for request, line in zip(lines, prescription.lines, strict=True):
            assert request["subject"]["reference"] == f"Patient/{prescription.patient.id}"
            assert prescription.patient.birth_name in request["subject"]["display"]
            assert request["subject"]["identifier"]["value"] == prescription.patient.ins
            assert request["requester"]["identifier"]["value"] == "8" + prescription.prescriber.rpps
            assert request["dosageInstruction"][0]["text"] == line.posology
            assert request["authoredOn"] == prescription.issued_at.isoformat()
            assert request["dispenseRequest"]["numberOfRepeatsAllowed"] == line.renewals
            assert request["dispenseRequest"]["expectedSupplyDuration"]["value"] == line.duration_days
            assert request["substitution"]["allowedBoolean"] is (line.non_substitution is None)
            assert line.dci in request["medicationCodeableConcept"]["text"]
    first_provenance = provenances[0]
    targets = {target["reference"] for target in first_provenance["target"]}
    assert targets == {f"urn:uuid:{request['id']}" for request in by_group[outage[0].id]}
    # Ids are stable across exports, so re-importing twice does not duplicate.
    again = reconcile.fhir_bundle(result.prescriptions, generated_at=dt.datetime.now(dt.UTC))
    assert [item["resource"]["id"] for item in again["entry"]] == [item["resource"]["id"] for item in raw["entry"]]


def test_round_trip_csv(appliance: Appliance, outage: list[Prescription], tmp_path: Path) -> None:
    result = reconcile.export(
        appliance.journal(), appliance.box_key, dt.date(2026, 11, 28), tmp_path / "out", user="dr.martin"
    )
    csv_path = next(path for path in result.files if path.suffix == ".csv")
    data = csv_path.read_bytes()
    assert data.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    expected = [(p, n, line) for p in outage for n, line in enumerate(p.lines, start=1)]
    assert len(rows) == len(expected)
    for row, (prescription, number, line) in zip(rows, expected, strict=True):
        patient = prescription.patient
        assert patient.birth_date is not None
        assert row["ordonnance"] == prescription.id
        assert row["ligne"] == str(number)
        assert row["nom_naissance"] == patient.birth_name
        assert row["date_naissance"] == patient.birth_date.strftime("%d/%m/%Y")
        assert row["ins"] == patient.ins
        assert row["rpps"] == prescription.prescriber.rpps
        assert row["dci"] == line.dci
        assert row["posologie"] == line.posology
        assert row["duree_jours"] == str(line.duration_days)
        assert row["non_substituable"] == (line.non_substitution.value if line.non_substitution else "")
        assert row["ald"] == ("oui" if line.ald_related else "non")
        assert row["saisi_par"] == "accueil"


def test_export_is_journaled_and_files_are_private(
    appliance: Appliance, outage: list[Prescription], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = reconcile.export(appliance.journal(), appliance.box_key, dt.date(2026, 11, 28), out, user="dr.martin")
    for path in result.files:
        assert path.parent == out
        assert path.stat().st_mode & 0o777 == 0o600
    last = list(appliance.journal().entries())[-1]
    assert last.action == "export"
    assert last.user == "dr.martin"
    assert last.details["prescriptions"] == 5
    assert sorted(last.details["files"]) == sorted(path.name for path in result.files)
    if result.pdf_missing_reason is None:
        assert any(path.suffix == ".pdf" for path in result.files)
    assert journal_module.verify_journal(appliance.home).ok


def test_export_never_overwrites(appliance: Appliance, outage: list[Prescription], tmp_path: Path) -> None:
    now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    journal = appliance.journal()
    reconcile.export(journal, appliance.box_key, dt.date(2026, 11, 28), tmp_path, user="dr.martin", now=now)
    with pytest.raises(StoreError, match="already exists"):
        reconcile.export(journal, appliance.box_key, dt.date(2026, 11, 28), tmp_path, user="dr.martin", now=now)


def test_pdf_context_groups_by_patient_then_prescriber(appliance: Appliance, outage: list[Prescription]) -> None:
    found, _ = reconcile.collect(appliance.journal(), appliance.box_key, dt.date(2026, 11, 28))
    context = reconcile.pdf_context(
        found, since=reconcile.window_start(dt.date(2026, 11, 28)), generated_at=dt.datetime.now(dt.UTC)
    )
    assert context["prescription_count"] == 5
    assert sum(len(prescriber["prescriptions"]) for p in context["patients"] for prescriber in p["prescribers"]) == 5
    assert len({patient["id"] for patient in context["patients"]}) == len(context["patients"])


def test_pdf_list_reads_back(appliance: Appliance, outage: list[Prescription], tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    result = reconcile.export(appliance.journal(), appliance.box_key, dt.date(2026, 11, 28), tmp_path, user="dr.martin")
    assert result.pdf_missing_reason is None
    pdf_path = next(path for path in result.files if path.suffix == ".pdf")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(pdf_path).pages)
    flat = " ".join(text.split())
    assert "Ordonnances émises pendant l'interruption" in flat
    for prescription in outage:
        assert prescription.id in flat
        assert prescription.patient.birth_name in flat
    assert "MARTIN" in flat and "DURAND" in flat
    assert "EXERCICE" not in flat


def test_csv_cells_cannot_become_formulas(appliance: Appliance, clock: Clock) -> None:
    prescription = make_prescription(7)
    hostile = dataclasses.replace(prescription.lines[1], posology='=HYPERLINK("http://example.invalid","x")')
    prescription = dataclasses.replace(prescription, lines=(prescription.lines[0], hostile))
    issue(appliance, prescription)
    found, _ = reconcile.collect(appliance.journal(), appliance.box_key, dt.date(2026, 11, 1))
    rows = list(csv.DictReader(io.StringIO(reconcile.csv_text(found).lstrip("\ufeff")), delimiter=";"))
    assert rows[1]["posologie"] == '\'=HYPERLINK("http://example.invalid","x")'
    assert rows[0]["posologie"] == prescription.lines[0].posology

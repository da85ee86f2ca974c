"""continuity.fhir streams NDJSON: memory holds small per-id indexes, never the export."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from continuity.fhir import ImportReport, read_records, sources
from continuity.ins import with_check_key

FR = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
PATIENTS = 5_000
REQUESTS_PER_PATIENT = 3


def narrative(sentence: str, times: int) -> dict[str, str]:
    """The XHTML summary real exports (IPS, most EHRs) put in every resource's ``text``."""
    return {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + (sentence + " ") * times + "</div>",
    }


def write_export(folder: Path) -> int:
    """A Bulk Data export: one Patient file, one MedicationRequest file; returns its size in bytes."""
    with (folder / "Patient.ndjson").open("w", encoding="utf-8") as out:
        for i in range(PATIENTS):
            patient: dict[str, Any] = {
                "resourceType": "Patient",
                "id": f"pat-{i:06d}",
                "text": narrative("Patiente suivie au cabinet, identité qualifiée.", 40),
                "extension": [
                    {
                        "url": FR + "fr-core-identity-reliability",
                        "extension": [{"url": "identityStatus", "valueCoding": {"code": "QUAL"}}],
                    }
                ],
                "identifier": [
                    {
                        "system": "urn:oid:1.2.250.1.213.1.4.10",
                        "value": with_check_key(f"2{51 + i % 40:02d}0375{i // 1000:03d}{i % 1000:03d}"),
                    }
                ],
                "name": [{"use": "official", "family": "LEFÈVRE-ÇELIK", "given": ["Marie", "Anne"]}],
                "gender": "female",
                "birthDate": f"{1951 + i % 40}-03-12",
                "address": [{"line": ["12 rue de la Paix"], "postalCode": "75002", "city": "Paris"}],
            }
            out.write(json.dumps(patient, ensure_ascii=False) + "\n")
    with (folder / "MedicationRequest.ndjson").open("w", encoding="utf-8") as out:
        for i in range(PATIENTS):
            for j in range(REQUESTS_PER_PATIENT):
                request = {
                    "resourceType": "MedicationRequest",
                    "id": f"mr-{i:06d}-{j}",
                    "status": "active",
                    "intent": "order",
                    "text": narrative("Traitement au long cours, renouvelé.", 30),
                    "medicationCodeableConcept": {
                        "coding": [{"system": "http://www.whocc.no/atc", "code": "C09AA05", "display": "ramipril"}],
                        "text": "ramipril 5 mg, comprimé",
                    },
                    "subject": {"reference": f"Patient/pat-{i:06d}"},
                    "authoredOn": "2026-10-19",
                    "dosageInstruction": [{"text": "1 comprimé le matin", "route": {"text": "voie orale"}}],
                    "dispenseRequest": {"numberOfRepeatsAllowed": 2},
                }
                out.write(json.dumps(request, ensure_ascii=False) + "\n")
    return sum(path.stat().st_size for path in folder.iterdir())


@pytest.mark.slow
def test_peak_memory_stays_far_below_the_export_size(tmp_path: Path) -> None:
    size = write_export(tmp_path)
    report = ImportReport()
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_records([tmp_path], strict=True, report=report))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == PATIENTS * (1 + REQUESTS_PER_PATIENT)
    assert report.counts == {"Patient": PATIENTS, "Treatment": PATIENTS * REQUESTS_PER_PATIENT}
    # What stays is a few hundred bytes per patient (digests of its key and identifiers) and a few
    # dozen per other resource: about a tenth of this export, whatever the size of its lines.
    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte export"


def test_a_json_file_too_large_to_read_whole_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "MAX_JSON_FILE_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Basic"}}] * 100}))
    report = ImportReport()
    assert list(read_records([path], report=report)) == []
    assert "export NDJSON instead" in report.problems[0].message

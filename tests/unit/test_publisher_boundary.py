"""The publisher side stays on the publisher: the appliance never loads the FHIR reader or the snapshot
build, and the FHIR reader runs without the publisher's optional dependency (orjson)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import continuity

ROOT = Path(continuity.__file__).parent.parent

# What an appliance runs: the nightly job, unlock, the desk, the journal.
APPLIANCE_MODULES = [
    "continuity.snapshotdb",
    "continuity.store",
    "continuity.pull",
    "continuity.watch",
    "continuity.status",
    "continuity.session",
    "continuity.journal",
    "continuity.prescribing.rules",
    "continuity.prescribing.issuing",
    "continuity.display",
]
PUBLISHER_MODULES = {"continuity.fhir", "continuity.snapshot_build", "continuity.intake", "continuity.import_report",
                     "continuity.drugs.bdpm"}


def run(script: str) -> str:
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return result.stdout.strip().splitlines()[-1]


def test_appliance_modules_load_nothing_of_the_publisher() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {APPLIANCE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('continuity.'))))\n"
    )
    loaded = set(json.loads(run(script)))
    assert set(APPLIANCE_MODULES) <= loaded
    assert not {m for m in loaded if m in PUBLISHER_MODULES or m.startswith("continuity.fhir.")}
    assert "orjson" not in run("import sys, continuity.snapshotdb, continuity.session; print(sorted(sys.modules))")


def test_the_fhir_reader_works_without_orjson(tmp_path: Path) -> None:
    export = tmp_path / "Patient.ndjson"
    lines = [
        {"resourceType": "Patient", "id": f"p{n}", "name": [{"family": "MARTIN", "given": ["Jeanne"]}]}
        for n in range(3)
    ]
    export.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"resourceType": "Patient", "id": 5}\n')
    script = (
        "import sys, json\n"
        "sys.modules['orjson'] = None  # as if the publisher extra were not installed: import fails\n"
        "from continuity.fhir import ImportReport, read_records\n"
        "from continuity.fhir import json as fhir_json\n"
        "assert fhir_json._orjson is None\n"
        "report = ImportReport()\n"
        f"records = list(read_records([{str(export)!r}], report=report, workers=1))\n"
        "print(json.dumps([[r.id for r in records], [p.message for p in report.problems]]))\n"
    )
    ids, problems = json.loads(run(script))
    assert ids == ["p0", "p1", "p2"]
    assert problems == ["Patient has an invalid id '5' (1 to 255 of A-Z a-z 0-9 - . _)"]

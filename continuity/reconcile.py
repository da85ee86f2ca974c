"""Reconciliation export: the prescriptions issued during an outage, as a FHIR R4 Bundle, a CSV and a printable list.

The files contain patient data in clear by nature. They are written only into the directory the user
names, created 0600 and never overwriting anything, and the export itself is journaled (who, when,
which window, how many prescriptions) before any file is written.

FHIR: one ``Bundle`` of type ``collection`` (R4). Each printed line becomes a ``MedicationRequest``
(FHIR has one medication per request); the lines of one ordonnance share ``groupIdentifier`` (the
prescription id) and one ``Provenance`` names the prescriber as author, the appliance user as
enterer and the journal entry and PDF digest as sources. Resource ids are UUIDv5 derived from the
prescription id, so exporting the same window twice gives the same ids (safe re-import).
Patients and practitioners are referenced by the platform's own ids (``Patient/<id>``), with the
INS as identifier when the identity is qualified and the RPPS (as idNatPs ``8`` + RPPS) for the
prescriber.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import nacl.public

from continuity import display
from continuity.errors import ContinuityError, JournalError, StoreError
from continuity.journal import (
    Action,
    Journal,
    JournalEntry,
    PrescriptionPayload,
    read_prescription_payload,
)
from continuity.model import Patient, Sex

PARIS = display.PRACTICE_TZ
# UUIDv5 namespace of Continuity exports (a fixed random UUID: ids stay stable across exports).
NAMESPACE: Final = uuid.UUID("5b0c3c64-6a55-4f0e-9a3f-2f6a1d9e7c41")
INS_SYSTEM_PREFIX: Final = "urn:oid:"
# idNatPs: the national identifier of a health professional, "8" + RPPS (ANS, annuaire santé).
IDNATPS_SYSTEM: Final = "urn:oid:1.2.250.1.71.4.2.1"
UCUM: Final = "http://unitsofmeasure.org"
PROVENANCE_PARTICIPANT: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
PAPER_NOTE: Final = (
    "Prescription d'urgence imprimée sur papier par Continuity pendant l'indisponibilité du logiciel du cabinet."
)
PDF_TITLE: Final = "Ordonnances émises pendant l'interruption"
CLEAR_DATA_WARNING_FR: Final = (
    "ATTENTION : les fichiers exportés contiennent des données de patients en clair. "
    "Conservez-les sur un support protégé et détruisez-les une fois la saisie terminée."
)
# Legacy action names journaled before the shape was fixed: reported, never silently skipped.
LEGACY_PRESCRIPTION_ACTIONS: Final = frozenset({"prescription.issued"})

CSV_COLUMNS: Final = (
    "date_emission",
    "ordonnance",
    "ligne",
    "patient_id",
    "nom_naissance",
    "nom_usage",
    "prenoms",
    "date_naissance",
    "sexe",
    "ins",
    "prescripteur",
    "rpps",
    "dci",
    "dosage",
    "forme",
    "voie",
    "posologie",
    "duree_jours",
    "renouvellements",
    "non_substituable",
    "ald",
    "marque",
    "saisi_par",
    "entree_journal",
    "pdf_sha256",
)


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedPrescription:
    """One printed ordonnance read back from the journal."""

    entry: JournalEntry
    payload: PrescriptionPayload

    @property
    def issued_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.payload["issued_at"])


@dataclasses.dataclass(frozen=True, slots=True)
class Skipped:
    """A prescription entry of the window that could not be exported, and why."""

    index: int
    reason: str


@dataclasses.dataclass(slots=True)
class ExportResult:
    directory: Path
    files: list[Path]
    prescriptions: list[IssuedPrescription]
    skipped: list[Skipped]
    pdf_missing_reason: str | None = None


def window_start(day: dt.date | dt.datetime) -> dt.datetime:
    """A date means midnight, French time, that day; a naive datetime is French time too."""
    if isinstance(day, dt.datetime):
        return day if day.tzinfo is not None else day.replace(tzinfo=PARIS)
    return dt.datetime.combine(day, dt.time(), tzinfo=PARIS)


def collect(
    journal: Journal,
    box_key: nacl.public.PrivateKey | Sequence[nacl.public.PrivateKey],
    since: dt.date | dt.datetime,
    until: dt.date | dt.datetime | None = None,
) -> tuple[list[IssuedPrescription], list[Skipped]]:
    """The prescriptions journaled in [since, until), opened with the appliance private key."""
    start = window_start(since)
    end = window_start(until) if until is not None else None
    issued: list[IssuedPrescription] = []
    skipped: list[Skipped] = []
    for entry in journal.entries():
        if entry.action != Action.PRINT_PRESCRIPTION and entry.action not in LEGACY_PRESCRIPTION_ACTIONS:
            continue
        moment = entry.time
        if moment < start or (end is not None and moment >= end):
            continue
        if entry.action in LEGACY_PRESCRIPTION_ACTIONS:
            skipped.append(Skipped(entry.index, f"action {entry.action!r} has no version 1 prescription payload"))
            continue
        try:
            payload = read_prescription_payload(entry.open_sealed(box_key))
        except JournalError as error:
            skipped.append(Skipped(entry.index, str(error)))
            continue
        issued.append(IssuedPrescription(entry, payload))
    return issued, skipped


# --- FHIR ------------------------------------------------------------------------------------------


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def patient_display(payload: PrescriptionPayload) -> str:
    """The patient as every screen and printout names them (display.patient_name), with the birth date."""
    traits = payload["patient"]
    patient = Patient(
        id=traits["id"],
        birth_name=traits["birth_name"],
        birth_given_names=tuple(traits["birth_given_names"]),
        sex=Sex(traits["sex"]) if traits["sex"] in Sex._value2member_map_ else Sex.UNKNOWN,
        birth_date=dt.date.fromisoformat(traits["birth_date"]) if traits["birth_date"] else None,
        used_name=traits["used_name"],
        used_given_name=traits["used_given_name"],
    )
    born = display.born_label(patient) if patient.birth_date else "date de naissance inconnue"
    return f"{display.patient_name(patient)} — {born}"


def prescriber_display(payload: PrescriptionPayload) -> str:
    prescriber = payload["prescriber"]
    return f"Dr {' '.join(prescriber['given_names'])} {prescriber['family_name']}".replace("  ", " ").strip()


def _date_fr(iso_date: str) -> str:
    return dt.date.fromisoformat(iso_date).strftime("%d/%m/%Y")


def _medication_text(line: Any) -> str:
    parts = [line["dci"], line["strength"]]
    text = " ".join(part for part in parts if part)
    if line["form"]:
        text += f", {line['form']}"
    if line["brand"]:
        text += f" ({line['brand']})"
    return text


def _subject(payload: PrescriptionPayload) -> dict[str, Any]:
    patient = payload["patient"]
    reference: dict[str, Any] = {"reference": f"Patient/{patient['id']}", "display": patient_display(payload)}
    if patient["ins"] and patient["identity_status"] == "QUAL" and patient["ins_oid"]:
        reference["identifier"] = {"system": INS_SYSTEM_PREFIX + patient["ins_oid"], "value": patient["ins"]}
    return reference


def _requester(payload: PrescriptionPayload) -> dict[str, Any]:
    prescriber = payload["prescriber"]
    reference: dict[str, Any] = {
        "reference": f"Practitioner/{prescriber['id']}",
        "display": prescriber_display(payload),
    }
    if prescriber["rpps"]:
        reference["identifier"] = {"system": IDNATPS_SYSTEM, "value": "8" + prescriber["rpps"]}
    return reference


def medication_requests(issued: IssuedPrescription) -> list[dict[str, Any]]:
    payload = issued.payload
    prescription_id = payload["prescription_id"]
    resources = []
    for number, line in enumerate(payload["lines"], start=1):
        resource: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "id": _uuid("medication-request", prescription_id, str(number)),
            "identifier": [{"system": "urn:continuity:prescription-line", "value": f"{prescription_id}/{number}"}],
            "groupIdentifier": {"system": "urn:continuity:prescription", "value": prescription_id},
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": _medication_text(line)},
            "subject": _subject(payload),
            "authoredOn": payload["issued_at"],
            "requester": _requester(payload),
            "dosageInstruction": [{"sequence": 1, "text": line["posology"] or "selon prescription"}],
            "dispenseRequest": {
                "numberOfRepeatsAllowed": line["renewals"],
                "expectedSupplyDuration": {
                    "value": line["duration_days"],
                    "unit": "jours",
                    "system": UCUM,
                    "code": "d",
                },
            },
            "substitution": {"allowedBoolean": line["non_substitution"] is None},
            "note": [{"text": PAPER_NOTE}],
        }
        if line["route"]:
            resource["dosageInstruction"][0]["route"] = {"text": line["route"]}
        if line["non_substitution"]:
            code = line["non_substitution"]
            resource["substitution"]["reason"] = {"coding": [{"code": code}], "text": code}
        if line["ald_related"]:
            resource["note"].append({"text": "En rapport avec l'affection de longue durée (ALD)."})
        resources.append(resource)
    return resources


def provenance(issued: IssuedPrescription, targets: Sequence[str]) -> dict[str, Any]:
    payload = issued.payload
    entry = issued.entry
    return {
        "resourceType": "Provenance",
        "id": _uuid("provenance", payload["prescription_id"]),
        "target": [{"reference": target} for target in targets],
        "occurredDateTime": payload["issued_at"],
        "recorded": entry.timestamp,
        "agent": [
            {
                "type": {"coding": [{"system": PROVENANCE_PARTICIPANT, "code": "author", "display": "Author"}]},
                "who": _requester(payload),
            },
            {
                "type": {"coding": [{"system": PROVENANCE_PARTICIPANT, "code": "enterer", "display": "Enterer"}]},
                "who": {"display": f"Continuity, session de {entry.user}"},
            },
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {"system": "urn:continuity:journal-entry-sha256", "value": entry.hash},
                    "display": f"Entrée n° {entry.index} du journal Continuity",
                },
            },
            {
                "role": "source",
                "what": {
                    "identifier": {"system": "urn:continuity:pdf-sha256", "value": payload["pdf_sha256"]},
                    "display": "Ordonnance imprimée (empreinte SHA-256 du PDF)",
                },
            },
        ],
    }


def fhir_bundle(prescriptions: Iterable[IssuedPrescription], *, generated_at: dt.datetime) -> dict[str, Any]:
    """A FHIR R4 collection Bundle: MedicationRequests and one Provenance per ordonnance."""
    entries: list[dict[str, Any]] = []
    for issued in prescriptions:
        urls = []
        for resource in medication_requests(issued):
            url = f"urn:uuid:{resource['id']}"
            urls.append(url)
            entries.append({"fullUrl": url, "resource": resource})
        record = provenance(issued, urls)
        entries.append({"fullUrl": f"urn:uuid:{record['id']}", "resource": record})
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": generated_at.isoformat(timespec="seconds")},
        "type": "collection",
        "timestamp": generated_at.isoformat(timespec="seconds"),
        "entry": entries,
    }


# --- CSV -------------------------------------------------------------------------------------------


def csv_rows(prescriptions: Iterable[IssuedPrescription]) -> list[dict[str, str]]:
    rows = []
    for issued in prescriptions:
        payload = issued.payload
        patient = payload["patient"]
        prescriber = payload["prescriber"]
        for number, line in enumerate(payload["lines"], start=1):
            rows.append(
                {
                    "date_emission": issued.issued_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M"),
                    "ordonnance": payload["prescription_id"],
                    "ligne": str(number),
                    "patient_id": patient["id"],
                    "nom_naissance": patient["birth_name"],
                    "nom_usage": patient["used_name"],
                    "prenoms": " ".join(patient["birth_given_names"]),
                    "date_naissance": _date_fr(patient["birth_date"]) if patient["birth_date"] else "",
                    "sexe": {"female": "F", "male": "M"}.get(patient["sex"], "I"),
                    "ins": patient["ins"] if patient["identity_status"] == "QUAL" else "",
                    "prescripteur": prescriber_display(payload),
                    "rpps": prescriber["rpps"],
                    "dci": line["dci"],
                    "dosage": line["strength"],
                    "forme": line["form"],
                    "voie": line["route"],
                    "posologie": line["posology"],
                    "duree_jours": str(line["duration_days"]),
                    "renouvellements": str(line["renewals"]),
                    "non_substituable": line["non_substitution"] or "",
                    "ald": "oui" if line["ald_related"] else "non",
                    "marque": line["brand"],
                    "saisi_par": issued.entry.user,
                    "entree_journal": str(issued.entry.index),
                    "pdf_sha256": payload["pdf_sha256"],
                }
            )
    return rows


def _cell(value: str) -> str:
    """Neutralise formula injection: a cell starting with = + - @ would be run by the spreadsheet (OWASP)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_text(prescriptions: Iterable[IssuedPrescription]) -> str:
    """Semicolon-separated with a BOM, as French spreadsheet software opens it without an import dialog."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in csv_rows(prescriptions))
    return "\ufeff" + buffer.getvalue()


# --- printable list --------------------------------------------------------------------------------


def pdf_context(
    prescriptions: Sequence[IssuedPrescription], *, since: dt.datetime, generated_at: dt.datetime
) -> dict[str, Any]:
    """Template context of forms/export.html: groups by patient, then prescriber, in time order."""
    groups: dict[str, dict[str, Any]] = {}
    for issued in sorted(prescriptions, key=lambda item: (patient_display(item.payload), item.issued_at)):
        payload = issued.payload
        patient = groups.setdefault(
            payload["patient"]["id"],
            {
                "display": patient_display(payload),
                "id": payload["patient"]["id"],
                "ins": payload["patient"]["ins"] if payload["patient"]["identity_status"] == "QUAL" else "",
                "prescribers": {},
            },
        )
        prescriber = patient["prescribers"].setdefault(
            payload["prescriber"]["id"],
            {"display": prescriber_display(payload), "rpps": payload["prescriber"]["rpps"], "prescriptions": []},
        )
        prescriber["prescriptions"].append(
            {
                "id": payload["prescription_id"],
                "issued_at": issued.issued_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M"),
                "user": issued.entry.user,
                "lines": [
                    {
                        "text": _medication_text(line),
                        "posology": line["posology"],
                        "duration_days": line["duration_days"],
                        "renewals": line["renewals"],
                        "non_substitution": line["non_substitution"] or "",
                        "ald": line["ald_related"],
                    }
                    for line in payload["lines"]
                ],
            }
        )
    patients = [{**patient, "prescribers": list(patient["prescribers"].values())} for patient in groups.values()]
    generated = generated_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
    return {
        "title": PDF_TITLE,
        "since": since.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M"),
        "generated_at": generated,
        "patients": patients,
        "prescription_count": len(prescriptions),
        "line_count": sum(len(item.payload["lines"]) for item in prescriptions),
        "warning": CLEAR_DATA_WARNING_FR,
        "snapshot_line": f"Liste produite le {generated} à partir du journal Continuity, pour la ressaisie.",
        "drill": False,
    }


def render_pdf(
    prescriptions: Sequence[IssuedPrescription], *, since: dt.datetime, generated_at: dt.datetime
) -> tuple[bytes | None, str | None]:
    """The printable list, or (None, why) when the PDF renderer or the template is not available."""
    try:
        from continuity import pdf
    except ImportError as error:
        return None, f"module pdf indisponible ({error})"
    template = pdf.FORMS_DIR / "export.html"
    if not template.exists():
        return None, "modèle forms/export.html absent"
    return pdf.render_form("export.html", pdf_context(prescriptions, since=since, generated_at=generated_at)), None


# --- export ----------------------------------------------------------------------------------------


def _write_new(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise StoreError(
            f"{path} already exists", message_fr=f"Le fichier {path.name} existe déjà : rien n'a été écrasé."
        ) from error
    except OSError as error:
        raise StoreError(f"cannot create {path}: {error}", message_fr=f"Impossible d'écrire {path}.") from error
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise StoreError(f"cannot write {path}: {error}", message_fr=f"Impossible d'écrire {path}.") from error


def export(
    journal: Journal,
    box_key: nacl.public.PrivateKey | Sequence[nacl.public.PrivateKey],
    since: dt.date | dt.datetime,
    out_dir: Path,
    *,
    user: str,
    until: dt.date | dt.datetime | None = None,
    with_pdf: bool = True,
    now: dt.datetime | None = None,
) -> ExportResult:
    """Write the FHIR Bundle, the CSV and (if the renderer is there) the PDF list for the window.

    The export is journaled first (action ``export``); if that fails nothing is written.
    ``out_dir`` is created if needed (its parent must exist). Raises StoreError if a file exists.
    """
    generated_at = now or dt.datetime.now(dt.UTC)
    start = window_start(since)
    prescriptions, skipped = collect(journal, box_key, since, until)
    stamp = f"{start.astimezone(PARIS):%Y%m%d}-{generated_at.astimezone(PARIS):%Y%m%dT%H%M%S}"
    out_dir = Path(out_dir)
    names = {
        "fhir": f"ordonnances-interruption-{stamp}.fhir.json",
        "csv": f"ordonnances-interruption-{stamp}.csv",
        "pdf": f"ordonnances-interruption-{stamp}.pdf",
    }
    pdf_bytes: bytes | None = None
    pdf_missing: str | None = "PDF non demandé"
    if with_pdf:
        try:
            pdf_bytes, pdf_missing = render_pdf(prescriptions, since=start, generated_at=generated_at)
        except ContinuityError as error:
            pdf_bytes, pdf_missing = None, f"rendu du PDF impossible : {error}"
    files = [out_dir / names["fhir"], out_dir / names["csv"]]
    if pdf_bytes is not None:
        files.append(out_dir / names["pdf"])
    journal.append(
        user=user,
        action=Action.EXPORT,
        details={
            "since": start.isoformat(),
            "until": window_start(until).isoformat() if until is not None else None,
            "prescriptions": len(prescriptions),
            "skipped": len(skipped),
            "files": [path.name for path in files],
            # Pseudonymous ids only: lets an access report show whose prescriptions left the appliance.
            "patients": sorted({item.payload["patient"]["id"] for item in prescriptions}),
        },
    )
    try:
        out_dir.mkdir(mode=0o700, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create {out_dir}: {error}", message_fr=f"Impossible de créer {out_dir}.") from error
    bundle = fhir_bundle(prescriptions, generated_at=generated_at)
    _write_new(files[0], json.dumps(bundle, ensure_ascii=False, indent=2).encode("utf-8"))
    _write_new(files[1], csv_text(prescriptions).encode("utf-8"))
    if pdf_bytes is not None:
        _write_new(files[2], pdf_bytes)
    return ExportResult(out_dir, files, prescriptions, skipped, pdf_missing)

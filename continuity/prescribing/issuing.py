"""The one path an ordonnance takes to paper: who signs, acknowledgements, render, journal, then hand out.

`signing_practitioner()` decides who signs: the logged-in prescriber (their RPPS must be a practitioner
of the snapshot, whose name and address print), or another practitioner of the practice that a
prescriber explicitly chose (journaled as such). Reception never issues an ordonnance.

`issue()` checks the acknowledgements, renders the PDF and journals it before returning it, so nothing
is handed out unrecorded. The CLI, the TUI and the drill reach it through `Session.issue_prescription`;
none of them strings these steps together itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from continuity.errors import NotAllowed, NotFound, PrescriptionRefused
from continuity.model import Practitioner, Prescription
from continuity.prescribing import rules


@dataclass(frozen=True, slots=True)
class Signer:
    """The logged-in staff member, as far as signing goes (built from `Session.member`)."""

    user: str
    is_prescriber: bool
    rpps: str = ""


RECEPTION_REFUSAL_FR = (
    "Seul un médecin prescripteur connecté peut établir une ordonnance. L'accueil peut rechercher un patient, "
    "consulter et imprimer son résumé et l'agenda : demandez au médecin de se connecter."
)


@dataclass(frozen=True, slots=True)
class SigningChoice:
    practitioner: Practitioner
    chosen_by: str = ""  # the prescriber who chose another practitioner ('' when signing as themselves)


def signing_practitioner(
    signer: Signer, practitioners: Iterable[Practitioner], *, chosen: str | None = None
) -> SigningChoice:
    """Who signs. Raises NotAllowed (reception), NotFound (RPPS or choice not in the snapshot)."""
    if not signer.is_prescriber:
        raise NotAllowed(f"{signer.user} is not a prescriber: cannot issue an ordonnance",
                         message_fr=RECEPTION_REFUSAL_FR)
    known = list(practitioners)
    own = next((p for p in known if p.rpps and p.rpps == signer.rpps), None)
    if own is None:
        raise NotFound(
            f"no practitioner with RPPS {signer.rpps!r} (the login {signer.user!r}) in the snapshot",
            message_fr=f"Votre numéro RPPS ({signer.rpps or 'non renseigné'}) ne correspond à aucun praticien "
            "du cabinet dans ces données : l'ordonnance ne peut pas porter vos coordonnées.",
        )
    if not chosen or chosen in (own.rpps, own.id):
        return SigningChoice(own)
    other = next((p for p in known if chosen in (p.rpps, p.id)), None)
    if other is None:
        raise NotFound(
            f"no practitioner with RPPS or id {chosen!r}",
            message_fr=f"Aucun praticien du cabinet n'a le RPPS « {chosen} » dans ces données.",
        )
    return SigningChoice(other, chosen_by=signer.user)


@dataclass(frozen=True, slots=True)
class IssuedDocument:
    prescription: Prescription
    pdf: bytes
    pdf_sha256: str


class JournalLike(Protocol):
    def append(
        self,
        *,
        user: str,
        action: str,
        patient_id: str | None = None,
        snapshot_seq: int | None = None,
        details: Mapping[str, Any] | None = None,
        sealed: Mapping[str, Any] | None = None,
    ) -> Any: ...


def issue(
    plan: rules.PrescriptionPlan,
    *,
    acknowledged: Collection[str],
    journal: JournalLike | None,
    user: str,
    snapshot_seq: int | None,
    snapshot_created_at: dt.datetime,
    chosen_by: str = "",
    duplicate: bool = False,
    drill: bool = False,
    footer: bool = True,
) -> IssuedDocument:
    """Check the acknowledgements, render and journal a plan; the PDF is returned only once journaled.

    Raises ConfirmationRequired (a warning not acknowledged), PrescriptionRefused, RenderError,
    JournalError. `journal` is None only for a development database on an appliance that was never
    initialised (the caller says so).
    """
    from continuity import pdf as pdf_forms  # weasyprint is loaded only when something is rendered

    prescription = rules.check_acknowledged(plan, acknowledged)
    if chosen_by and chosen_by != user:
        raise PrescriptionRefused(f"chosen_by {chosen_by!r} is not the issuing user {user!r}")
    document = pdf_forms.render_prescription(
        prescription, snapshot_created_at=snapshot_created_at, duplicate=duplicate, drill=drill, footer=footer
    )
    if journal is not None:
        digest = record_issued(journal, prescription, document, user=user, snapshot_seq=snapshot_seq, drill=drill,
                               acknowledged=sorted(set(acknowledged) & plan.danger_codes),
                               signed_for_other=bool(chosen_by))
    else:
        digest = hashlib.sha256(document).hexdigest()
    return IssuedDocument(prescription=prescription, pdf=document, pdf_sha256=digest)


def record_issued(
    journal: JournalLike,
    prescription: Prescription,
    pdf: bytes,
    *,
    user: str,
    snapshot_seq: int | None,
    drill: bool = False,
    print_job: str | None = None,
    acknowledged: Collection[str] = (),
    signed_for_other: bool = False,
) -> str:
    """Journal one issued prescription (the only call site is `issue`). Returns the PDF's SHA-256.

    Follows the journal's contract (continuity/journal.py, "The sealed payload of a printed
    prescription"): everything about the patient and the lines is sealed with `prescription_payload`;
    the clear details hold only ids, counts, danger codes and the digest, never patient data.
    """
    from continuity.journal import Action, prescription_payload

    digest = hashlib.sha256(pdf).hexdigest()
    journal.append(
        user=user,
        action=Action.DRILL_PRESCRIPTION if drill else Action.PRINT_PRESCRIPTION,
        patient_id=prescription.patient.id,
        snapshot_seq=snapshot_seq,
        details={
            "prescription_id": prescription.id,
            "prescriber_id": prescription.prescriber.id,
            "signed_for_other": signed_for_other,
            "line_count": len(prescription.lines),
            "bizone": prescription.is_bizone,
            "dangers_acknowledged": list(acknowledged),
            "pdf_sha256": digest,
            "print_job": print_job,
        },
        sealed=prescription_payload(prescription, pdf_sha256=digest),
    )
    return digest

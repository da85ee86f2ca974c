"""The error hierarchy: one root, one class per reason, each with its exit code and a French message.

`str(error)` is the precise English message for the log; `error.message_fr` is what a receptionist
reads in the TUI or on stderr. Exit codes are stable: cron jobs and monitoring rely on them
(docs/operations.md lists them).
"""

from __future__ import annotations

from typing import Any, ClassVar


class ContinuityError(Exception):
    exit_code: ClassVar[int] = 1
    default_message_fr: ClassVar[str] = "Une erreur est survenue. Voir le journal technique."

    def __init__(self, message: str, *, message_fr: str | None = None) -> None:
        super().__init__(message)
        self.message_fr = message_fr or self.default_message_fr


# --- input and data -------------------------------------------------------------------------------


class InputError(ContinuityError):
    """A source file (FHIR JSON/NDJSON, line, resource) that cannot be used."""

    exit_code = 3
    default_message_fr = "Un fichier source est illisible ou incomplet."


class DrugReferenceError(InputError):
    """A drug reference folder (BDPM files) that cannot be used: missing file, encoding, layout, bad line."""

    default_message_fr = "La référence des médicaments (BDPM) est illisible ou incomplète."


class SnapshotDatabaseError(ContinuityError):
    """A snapshot database that fails validation (schema, integrity, counts)."""

    exit_code = 4
    default_message_fr = "Les données de l'instantané sont invalides : elles ne seront pas utilisées."


class NotFound(ContinuityError):
    exit_code = 5
    default_message_fr = "Élément introuvable."


# --- appliance, keys, staff -----------------------------------------------------------------------


class NotInitialized(ContinuityError):
    exit_code = 6
    default_message_fr = "Ce poste n'est pas encore configuré (commande « continuity init »)."


class AuthenticationError(ContinuityError):
    """Wrong passphrase, unknown user, or a keyslot that does not open."""

    exit_code = 7
    default_message_fr = "Nom ou phrase de passe incorrect."


class KeyslotError(ContinuityError):
    exit_code = 8
    default_message_fr = "Le trousseau d'accès est endommagé. Appelez le support."


class KeyslotRefused(KeyslotError):
    """A keyslot the signed staff roster does not list as it is: a removed member's, a restored or
    replaced file. Its passphrase is never tried."""

    default_message_fr = (
        "Cet accès n'est pas (ou plus) dans la liste du personnel de ce poste : il est refusé. "
        "Un membre retiré ne peut pas revenir en remettant son ancien fichier."
    )


class StaffError(ContinuityError):
    exit_code = 9
    default_message_fr = "Opération sur le personnel refusée."


# --- journal, prescriptions, printing -------------------------------------------------------------


class JournalError(ContinuityError):
    """The journal cannot be written or read: nothing that needs journaling may proceed."""

    exit_code = 10
    default_message_fr = (
        "Le journal d'accès ne peut pas être écrit (disque plein ou protégé ?). "
        "Par sécurité, les dossiers patients ne sont pas affichés."
    )


class JournalBroken(ContinuityError):
    exit_code = 11
    default_message_fr = "Le journal a été modifié ou est incomplet."


class PrescriptionRefused(ContinuityError):
    """A prescription the appliance must not print (narcotic, too long, no RPPS...). Cannot be overridden."""

    exit_code = 12
    default_message_fr = "Cette ordonnance ne peut pas être imprimée."


class ConfirmationRequired(ContinuityError):
    """A warning that needs an explicit confirmation (allergy match, child without weight...)."""

    exit_code = 13
    default_message_fr = "Une confirmation est nécessaire."


class NotAllowed(ContinuityError):
    """The logged-in staff member's role does not allow this (reception issuing an ordonnance)."""

    exit_code = 40  # 18-19 publisher, 20-3x snapshot transport
    default_message_fr = "Votre rôle ne permet pas cette opération."


class PrintError(ContinuityError):
    exit_code = 14
    default_message_fr = "L'impression a échoué."


class RenderError(ContinuityError):
    exit_code = 15
    default_message_fr = "Le document PDF n'a pas pu être produit."


class StoreError(ContinuityError):
    """The appliance home cannot be read or written (permissions, disk full)."""

    exit_code = 16
    default_message_fr = "Le dossier de l'application est inaccessible ou plein."


class WitnessError(ContinuityError):
    """The publisher's journal witness could not be reached, refused the head, or sent something that
    does not verify (continuity/witness.py)."""

    exit_code = 34
    default_message_fr = "Le témoin de l'éditeur n'a pas enregistré la fin du journal."

    def __init__(self, message: str, *, message_fr: str | None = None, refused: bool = False) -> None:
        super().__init__(message, message_fr=message_fr)
        # True when the witness answered and said no (a rewritten or foreign journal): an alarm. False
        # when it could not be reached or answered nonsense: a warning, the pull is not affected.
        self.refused = refused


class NoSnapshot(ContinuityError):
    exit_code = 17
    default_message_fr = "Aucune donnée n'a encore été reçue sur ce poste."


class ExportRefused(ContinuityError):
    """Publisher: an export that must not be published (no patient kept, too many resources rejected,
    a sequence already used). ``build`` holds what was built (its import report), when anything was."""

    exit_code = 18
    default_message_fr = "L'export n'est pas publié : il est vide ou trop d'éléments ont été refusés."

    def __init__(self, message: str, *, message_fr: str | None = None, build: Any = None) -> None:
        super().__init__(message, message_fr=message_fr)
        self.build = build


class ShrinkRefused(ExportRefused):
    """Publisher: far fewer patients than the previous publication (a truncated or broken export)."""

    exit_code = 19
    default_message_fr = (
        "L'export n'est pas publié : il compte beaucoup moins de patients que la publication précédente."
    )


# --- snapshot transport: one class per rejection reason (docs/snapshot-format.md) -----------------


class SnapshotRejected(ContinuityError):
    """Root of the rejections of a snapshot file; the current snapshot is never touched."""

    exit_code = 20
    reason: ClassVar[str] = "rejected"
    default_message_fr = "Le fichier reçu a été refusé ; les données précédentes restent utilisées."


class Malformed(SnapshotRejected):
    exit_code = 21
    reason = "malformed"


class UnsupportedFormat(SnapshotRejected):
    exit_code = 22
    reason = "unsupported_format"


class UntrustedSigner(SnapshotRejected):
    exit_code = 23
    reason = "untrusted_signer"
    default_message_fr = "Le fichier reçu n'est pas signé par l'éditeur de confiance : refusé."


class NotForThisAppliance(SnapshotRejected):
    exit_code = 24
    reason = "not_for_this_appliance"
    default_message_fr = "Le fichier reçu est destiné à un autre poste : refusé."


class Rollback(SnapshotRejected):
    exit_code = 25
    reason = "rollback"
    default_message_fr = "Le fichier reçu est plus ancien que les données actuelles : refusé."


class Equivocation(SnapshotRejected):
    exit_code = 26
    reason = "equivocation"
    default_message_fr = (
        "ALERTE : deux fichiers différents portent le même numéro. Prévenez l'éditeur du logiciel."
    )


class Expired(SnapshotRejected):
    exit_code = 27
    reason = "expired"
    default_message_fr = "Le fichier reçu est périmé : refusé. Les données précédentes restent utilisées."


class SequenceJump(SnapshotRejected):
    exit_code = 28
    reason = "seq_jump"


class Truncated(SnapshotRejected):
    exit_code = 29
    reason = "truncated"
    default_message_fr = "Le fichier reçu est incomplet (transfert interrompu ?) : refusé."


class PayloadCorrupt(SnapshotRejected):
    exit_code = 30
    reason = "payload_corrupt"
    default_message_fr = "Le fichier reçu est endommagé : refusé."


class TooLarge(SnapshotRejected):
    exit_code = 31
    reason = "too_large"


class TransportError(SnapshotRejected):
    """Network or file access failed: nothing was received."""

    exit_code = 32
    reason = "transport"
    default_message_fr = "Impossible de récupérer les données (réseau ou serveur indisponible)."


class Quarantined(SnapshotRejected):
    """A verified snapshot with far fewer patients than the current one (or none): kept aside, not used."""

    exit_code = 33
    reason = "quarantined"
    default_message_fr = (
        "Le fichier reçu contient beaucoup moins de patients que les données actuelles : il est mis de côté "
        "et les données actuelles restent utilisées. Prévenez l'éditeur ; un responsable peut l'accepter "
        "(« continuity accept »)."
    )


REJECTION_CLASSES: tuple[type[SnapshotRejected], ...] = (
    Malformed,
    UnsupportedFormat,
    UntrustedSigner,
    NotForThisAppliance,
    Rollback,
    Equivocation,
    Expired,
    SequenceJump,
    Truncated,
    PayloadCorrupt,
    TooLarge,
    TransportError,
    Quarantined,
)

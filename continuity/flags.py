"""Flags on imported items: what an export left uncertain, as short stable codes with their French label.

A flagged item stays where it is usually shown (a flagged treatment is still in the treatments) with its
label beside it: missing, unknown or ambiguous data is shown flagged, never dropped or guessed silently.
The codes travel in the snapshot database (docs/snapshot-database.md) and are read back as they were
written; a code this version does not know is still shown, with a generic label.

``renew_by_default`` says whether an ordonnance may tick a flagged treatment for renewal on its own:
a line whose drug or status is uncertain is offered unticked, and the prescriber decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Flag:
    code: str  # stable, English, lower-case with hyphens
    label_fr: str  # what the desk and the printed summary show
    renew_by_default: bool = False  # a treatment with this flag may still be ticked for renewal by default
    applies_to: tuple[str, ...] = ()  # model classes it is put on (documentation)


# Treatments
STATUS_UNKNOWN = "status-unknown"
UNRESOLVED_MEDICATION = "unresolved-medication"
CODE_ONLY = "code-only"
POSSIBLE_ABSENCE = "possible-absence"
# Allergies
UNCONFIRMED = "unconfirmed"
RESOLVED = "resolved"
INACTIVE = "inactive"
NO_SUBSTANCE = "no-substance"
# Patients
INCOMPLETE = "incomplete"
# The export's identity reliability code is none the appliance knows as a status (VIDE, PROV, RECUP,
# VALI, QUAL): a duplicate, a deactivated, doubtful or fictitious identity... kept as provisional and
# flagged; an ordonnance needs the identity acknowledged (prescribing/rules.py).
IDENTITY_DOUBT = "identity-doubt"

FLAGS: dict[str, Flag] = {
    flag.code: flag
    for flag in (
        Flag(
            STATUS_UNKNOWN,
            "statut inconnu — à vérifier avec le patient",
            applies_to=("Treatment",),
        ),
        Flag(
            UNRESOLVED_MEDICATION,
            "médicament non identifié dans l'export (seul son libellé est connu) — à vérifier",
            applies_to=("Treatment",),
        ),
        Flag(
            CODE_ONLY,
            "libellé absent de l'export (code seul) — à vérifier",
            applies_to=("Treatment", "Allergy", "Condition"),
        ),
        Flag(
            POSSIBLE_ABSENCE,
            "peut signifier « aucun » — à vérifier",
            applies_to=("Treatment", "Condition"),
        ),
        Flag(UNCONFIRMED, "non confirmée", applies_to=("Allergy",)),
        Flag(RESOLVED, "résolue", applies_to=("Allergy",)),
        Flag(INACTIVE, "inactive", applies_to=("Allergy",)),
        Flag(NO_SUBSTANCE, "substance non précisée dans l'export — à vérifier", applies_to=("Allergy",)),
        Flag(
            IDENTITY_DOUBT,
            "fiabilité de l'identité signalée dans l'export (doublon, douteuse, fictive ou désactivée ?) — "
            "vérifier l'identité",
            applies_to=("Patient",),
        ),
        Flag(
            INCOMPLETE,
            "dossier incomplet dans l'export : des éléments n'ont pas pu lui être rattachés",
            applies_to=("Patient",),
        ),
    )
}

UNKNOWN_LABEL_FR = "à vérifier"


def label_fr(code: str) -> str:
    """The French label of a flag; a code this version does not know is still shown, as "à vérifier"."""
    flag = FLAGS.get(code)
    return flag.label_fr if flag is not None else f"{UNKNOWN_LABEL_FR} ({code[:40]})"


def labels_fr(codes: Iterable[str]) -> list[str]:
    return [label_fr(code) for code in codes]


def renew_by_default(codes: Iterable[str]) -> bool:
    """Whether a treatment with these flags may be ticked for renewal without the prescriber deciding."""
    return all(code in FLAGS and FLAGS[code].renew_by_default for code in codes)

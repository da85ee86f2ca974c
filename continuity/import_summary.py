"""The summary of an import that travels in the signed snapshot header: counts only, never patient data.

The publisher makes it from its import report; the appliance reads it from the header (``status``
without unlocking, and the interface's status screen) and says, in French, what the export left
uncertain: "3 traitements au statut inconnu, 2 lignes de traitement non identifiées".

In the header it is the object ``import`` of at most ``MAX_ENTRIES`` names → whole numbers
(docs/snapshot-format.md): ``read``, ``kept``, ``stripped``, ``flag.<kind>.<flag>`` and
``dropped.<reason>``. It is untrusted input like the rest of the header: ``from_header`` refuses
anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 64
MAX_COUNT = 1 << 40
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_REJECTED_REASONS = ("invalid", "unresolved-reference", "dangling-subject", "collision")


class SummaryError(ValueError):
    """A header ``import`` object that is not what this module writes."""


@dataclass(frozen=True)
class ImportSummary:
    read: int = 0  # resources read
    kept: int = 0  # resources that became records
    flagged: Mapping[str, int] = field(default_factory=dict)  # "treatment.status-unknown" → items
    dropped: Mapping[str, int] = field(default_factory=dict)  # reason → resources
    stripped: int = 0  # resources whose texts had control or bidi characters removed

    @property
    def rejected(self) -> int:
        return sum(self.dropped.get(reason, 0) for reason in _REJECTED_REASONS)

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "kept": self.kept,
            "flagged": dict(sorted(self.flagged.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "stripped": self.stripped,
        }

    def header_fields(self) -> dict[str, int]:
        """The flat object written in the snapshot header (at most MAX_ENTRIES names, largest counts first)."""
        fields = {"read": self.read, "kept": self.kept, "stripped": self.stripped}
        extra = [(f"flag.{name}", count) for name, count in self.flagged.items() if count]
        extra += [(f"dropped.{reason}", count) for reason, count in self.dropped.items() if count]
        extra.sort(key=lambda entry: (-entry[1], entry[0]))
        fields.update((name, min(count, MAX_COUNT)) for name, count in extra[: MAX_ENTRIES - len(fields)])
        return fields

    @classmethod
    def from_header(cls, value: object) -> ImportSummary:
        """Read back ``header_fields`` from an (authenticated but untrusted) header."""
        if not isinstance(value, dict) or len(value) > MAX_ENTRIES:
            raise SummaryError(f"import summary is not an object of at most {MAX_ENTRIES} entries")
        counts: dict[str, int] = {}
        for name, count in value.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise SummaryError(f"import summary: bad name {str(name)[:40]!r}")
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
                raise SummaryError(f"import summary: {name} is not a count")
            counts[name] = count
        return cls(
            read=counts.get("read", 0),
            kept=counts.get("kept", 0),
            flagged={name[5:]: n for name, n in counts.items() if name.startswith("flag.")},
            dropped={name[8:]: n for name, n in counts.items() if name.startswith("dropped.")},
            stripped=counts.get("stripped", 0),
        )

    def lines_fr(self) -> list[str]:
        """What the desk and ``status`` say about the export, most important first; [] when nothing."""
        lines = []
        for name, (singular, plural) in _FLAG_PHRASES_FR.items():
            count = self.flagged.get(name, 0)
            if count:
                lines.append(f"{count} {singular if count == 1 else plural}")
        known = set(_FLAG_PHRASES_FR)
        others = sum(count for name, count in self.flagged.items() if name not in known)
        if others:
            lines.append(f"{others} autre(s) élément(s) signalé(s) « à vérifier »")
        if self.rejected:
            lines.append(
                f"{self.rejected} élément(s) de l'export refusé(s) (invalides, non rattachés ou en conflit)"
            )
        if self.stripped:
            lines.append(f"{self.stripped} fiche(s) dont des caractères de contrôle ont été retirés")
        return lines


# Per "kind.flag": (one, several). Order: what matters most at the desk first.
_FLAG_PHRASES_FR: dict[str, tuple[str, str]] = {
    "patient.incomplete": (
        "dossier patient incomplet dans l'export",
        "dossiers patients incomplets dans l'export",
    ),
    "treatment.status-unknown": ("traitement au statut inconnu", "traitements au statut inconnu"),
    "treatment.unresolved-medication": (
        "ligne de traitement non identifiée",
        "lignes de traitement non identifiées",
    ),
    "treatment.code-only": ("traitement connu par son seul code", "traitements connus par leur seul code"),
    "treatment.possible-absence": (
        "traitement pouvant signifier « aucun »",
        "traitements pouvant signifier « aucun »",
    ),
    "allergy.code-only": ("allergie connue par son seul code", "allergies connues par leur seul code"),
    "allergy.no-substance": ("allergie sans substance précisée", "allergies sans substance précisée"),
    "allergy.unconfirmed": ("allergie non confirmée", "allergies non confirmées"),
    "allergy.resolved": ("allergie résolue", "allergies résolues"),
    "allergy.inactive": ("allergie inactive", "allergies inactives"),
    "condition.code-only": ("antécédent connu par son seul code", "antécédents connus par leur seul code"),
    "condition.possible-absence": (
        "antécédent pouvant signifier « aucun »",
        "antécédents pouvant signifier « aucun »",
    ),
}

"""The import report: what reading a practice export produced, and what it refused and why.

Every resource read is counted once, per resource type, as **kept** (it became records; those kept with
a flag are counted per flag too) or **dropped** with a reason, so that ``read = kept + dropped`` and no
loss is silent. The first few examples of each outcome name the file, the line or entry and the
resource id. Types the reader does not use (Encounter, Procedure…) are counted apart, as *ignored*.

The report stays on the publisher (``--report FILE.json``): its examples name resources. What travels
in the signed snapshot is ``summary()``: counts only (``continuity.import_summary``).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from continuity.import_summary import ImportSummary

# Why a resource was dropped. The first four are errors of the export (they count against
# ``--max-rejected``); the others are what the export itself says should not be shown.
REJECTED_REASONS = ("invalid", "unresolved-reference", "dangling-subject", "collision")
DROP_REASONS = (
    *REJECTED_REASONS,
    "status",  # entered-in-error, cancelled, not-taken, draft…: not a current fact
    "negation",  # "no known allergy", "no current problems": a statement of absence, not an item
    "refuted",  # verificationStatus refuted / entered-in-error
    "duplicate",  # the same resource (or the same person) read again: the last copy wins
    "not-used",  # e.g. an Observation that is neither a weight, a height nor an ALD marker
)
REASON_TEXTS = {
    "invalid": "invalid or unreadable",
    "unresolved-reference": "a reference that leads nowhere (patient or medication)",
    "dangling-subject": "its patient is not in its single-patient document",
    "collision": "an id shared by two different resources",
    "status": "status says it is not current",
    "negation": "a statement of absence",
    "refuted": "refuted or entered in error",
    "duplicate": "repeated (the last copy is kept)",
    "not-used": "not used by the snapshot",
}
MAX_EXAMPLES = 5


@dataclass
class ImportProblem:
    """One bad line or resource, skipped in lenient mode (or one accepted with a caveat: a warning)."""

    source: str  # file path
    location: str  # "line 12" (NDJSON), "entry 3" (Bundle, 0-based) or ""
    resource: str  # "MedicationRequest/abc" or ""
    message: str  # precise English
    reason: str = "invalid"  # a DROP_REASONS code (problems) or a short warning kind

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.source, self.location, self.resource) if part)
        return f"{where}: {self.message}" if self.message else where

    def as_json(self) -> dict[str, str]:
        return {
            "file": self.source,
            "location": self.location,
            "resource": self.resource,
            "reason": self.reason,
            "message": self.message,
        }


@dataclass
class TypeCounts:
    """The outcome of every resource of one type."""

    read: int = 0
    kept: int = 0
    flagged: collections.Counter[str] = field(default_factory=collections.Counter)  # flag → kept resources
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)  # reason → resources
    flagged_resources: int = 0  # kept resources with at least one flag


@dataclass
class ImportReport:
    """What a read produced and what it refused; filled while the records are being consumed."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)  # records, by model class
    problems: list[ImportProblem] = field(default_factory=list)
    duplicates: int = 0  # same resource (or same person) seen again: the last one read wins
    ins_dropped: int = 0  # INS present on a non-QUAL identity, dropped
    ignored_types: collections.Counter[str] = field(default_factory=collections.Counter)
    # Accepted with a caveat (partial birth date, "not substitutable" without a valid reason, a
    # collision kept apart...). Warnings never fail a strict read.
    warnings: list[ImportProblem] = field(default_factory=list)
    types: dict[str, TypeCounts] = field(default_factory=dict)
    # First examples of each outcome: ("Type", "dropped:reason" | "flag:code") → problems.
    examples: dict[tuple[str, str], list[ImportProblem]] = field(default_factory=dict)
    stripped_texts: int = 0  # resources whose texts had control or bidi characters removed
    stripped_examples: list[ImportProblem] = field(default_factory=list)
    # Patients published flagged incomplete (a clinical resource of their document could not be attached).
    incomplete_patients: int = 0
    skipped_files: list[str] = field(default_factory=list)  # a Bulk export's log / error files, not read

    # -- filling --

    def _type(self, resource_type: str) -> TypeCounts:
        counts = self.types.get(resource_type)
        if counts is None:
            counts = self.types[resource_type] = TypeCounts()
        return counts

    def _example(self, resource_type: str, outcome: str, example: ImportProblem) -> None:
        examples = self.examples.setdefault((resource_type, outcome), [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(example)

    def kept(self, resource_type: str, flags: Iterable[str] = (), where: ImportProblem | None = None) -> None:
        # Called once per resource of the export: the usual case (a known type, no flag) does the least.
        counts = self.types.get(resource_type) or self._type(resource_type)
        counts.read += 1
        counts.kept += 1
        if flags:
            counts.flagged_resources += 1
            for flag in sorted(set(flags)):
                counts.flagged[flag] += 1
                if where is not None:
                    self._example(resource_type, f"flag:{flag}", where)

    def dropped(self, resource_type: str, reason: str, where: ImportProblem | None = None) -> None:
        counts = self._type(resource_type or "(unreadable)")
        counts.read += 1
        counts.dropped[reason] += 1
        if where is not None:
            self._example(resource_type or "(unreadable)", f"dropped:{reason}", where)

    def stripped(self, where: ImportProblem) -> None:
        self.stripped_texts += 1
        if len(self.stripped_examples) < MAX_EXAMPLES:
            self.stripped_examples.append(where)

    # -- reading --

    @property
    def read(self) -> int:
        return sum(counts.read for counts in self.types.values())

    @property
    def rejected(self) -> int:
        """Resources dropped because the export is wrong (not because it said to drop them)."""
        return sum(counts.dropped[reason] for counts in self.types.values() for reason in REJECTED_REASONS)

    @property
    def rejected_share(self) -> float:
        read = self.read
        return self.rejected / read if read else 0.0

    def flag_totals(self) -> collections.Counter[str]:
        """Kept items per flag, all types together."""
        totals: collections.Counter[str] = collections.Counter()
        for counts in self.types.values():
            totals.update(counts.flagged)
        return totals

    def drop_totals(self) -> collections.Counter[str]:
        totals: collections.Counter[str] = collections.Counter()
        for counts in self.types.values():
            totals.update(counts.dropped)
        return totals

    def summary(self) -> ImportSummary:
        """Counts only, no patient data: what travels in the signed snapshot."""
        flagged: dict[str, int] = {}
        for resource_type, counts in self.types.items():
            kind = _RECORD_KIND.get(resource_type)
            if kind is None:
                continue
            for flag, count in counts.flagged.items():
                name = f"{kind}.{flag}"
                flagged[name] = flagged.get(name, 0) + count
        if self.incomplete_patients:
            flagged["patient.incomplete"] = self.incomplete_patients
        return ImportSummary(
            read=self.read,
            kept=sum(counts.kept for counts in self.types.values()),
            flagged=flagged,
            dropped=dict(self.drop_totals()),
            stripped=self.stripped_texts,
        )

    def as_json(self) -> dict[str, Any]:
        """The whole report (``--report FILE.json``), examples included."""
        return {
            "summary": self.summary().as_json(),
            "rejected_share": round(self.rejected_share, 6),
            "types": {
                resource_type: {
                    "read": counts.read,
                    "kept": counts.kept,
                    "kept_with_flag": counts.flagged_resources,
                    "flags": dict(sorted(counts.flagged.items())),
                    "dropped": dict(sorted(counts.dropped.items())),
                    "examples": {
                        outcome: [example.as_json() for example in examples]
                        for (example_type, outcome), examples in sorted(self.examples.items())
                        if example_type == resource_type
                    },
                }
                for resource_type, counts in sorted(self.types.items())
            },
            "ignored_types": dict(sorted(self.ignored_types.items())),
            "skipped_files": list(self.skipped_files),
            "records": dict(sorted(self.counts.items())),
            "duplicates": self.duplicates,
            "ins_dropped": self.ins_dropped,
            "incomplete_patients": self.incomplete_patients,
            "stripped_texts": {
                "count": self.stripped_texts,
                "examples": [example.as_json() for example in self.stripped_examples],
            },
            "problems": [problem.as_json() for problem in self.problems],
            "warnings": [warning.as_json() for warning in self.warnings],
        }

    def text(self, *, max_examples: int = 3) -> list[str]:
        """The report as lines of English for the publisher's terminal or log."""
        lines = ["import report: per resource type, read = kept + dropped"]
        width = max((len(name) for name in self.types), default=10)
        for resource_type, counts in sorted(self.types.items()):
            lines.append(
                f"  {resource_type:{width}}  read {counts.read:>8}  kept {counts.kept:>8}"
                f"  (with a flag {counts.flagged_resources})  dropped {sum(counts.dropped.values()):>6}"
            )
            for flag, count in sorted(counts.flagged.items()):
                lines.append(f"      flag {flag}: {count}")
                lines += self._example_lines(resource_type, f"flag:{flag}", max_examples)
            for reason, count in sorted(counts.dropped.items()):
                lines.append(f"      dropped, {REASON_TEXTS.get(reason, reason)}: {count}")
                lines += self._example_lines(resource_type, f"dropped:{reason}", max_examples)
        if self.skipped_files:
            lines.append(f"  files not read (a Bulk export's log or errors): {', '.join(self.skipped_files)}")
        if self.ignored_types:
            ignored = ", ".join(f"{name} {count}" for name, count in sorted(self.ignored_types.items()))
            lines.append(f"  types not used: {ignored}")
        if self.incomplete_patients:
            lines.append(
                f"  !! {self.incomplete_patients} patient(s) published flagged INCOMPLETE: resources of their "
                "single-patient document point to a patient that is not in it; fix the export"
            )
        if self.stripped_texts:
            lines.append(f"  control or bidi characters removed from the texts of {self.stripped_texts} resource(s)")
            lines += [f"        {example}" for example in self.stripped_examples[:max_examples]]
        if self.warnings:
            lines.append(f"  warnings: {len(self.warnings)}")
            lines += [f"        {warning}" for warning in self.warnings[:max_examples]]
        lines.append(
            f"  rejected (errors of the export): {self.rejected} of {self.read} ({100 * self.rejected_share:.1f} %)"
        )
        return lines

    def _example_lines(self, resource_type: str, outcome: str, limit: int) -> list[str]:
        return [f"        e.g. {example}" for example in self.examples.get((resource_type, outcome), [])[:limit]]


# The kind of record each resource type becomes, for the summary ("treatment.status-unknown").
_RECORD_KIND = {
    "MedicationRequest": "treatment",
    "MedicationStatement": "treatment",
    "AllergyIntolerance": "allergy",
    "Condition": "condition",
    "Patient": "patient",
}

"""The import report: what reading a practice export produced, and what it refused and why."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class ImportProblem:
    """One bad line or resource, skipped in lenient mode (or one accepted with a caveat: a warning)."""

    source: str  # file path
    location: str  # "line 12" (NDJSON), "entry 3" (Bundle, 0-based) or ""
    resource: str  # "MedicationRequest/abc" or ""
    message: str  # precise English

    def __str__(self) -> str:
        return ", ".join(part for part in (self.source, self.location, self.resource) if part) + (f": {self.message}")


@dataclass
class ImportReport:
    """What a read produced and what it refused; filled while the records are being consumed."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[ImportProblem] = field(default_factory=list)
    duplicates: int = 0  # same resource (or same person) seen again: the last one read wins
    ins_dropped: int = 0  # INS present on a non-QUAL identity, dropped
    ignored_types: collections.Counter[str] = field(default_factory=collections.Counter)
    # Accepted with a caveat (partial birth date, "not substitutable" without a valid reason...).
    # Warnings never fail a strict read.
    warnings: list[ImportProblem] = field(default_factory=list)

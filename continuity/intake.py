"""The rules of reading a practice export that do not depend on its format (FHIR today, a CSV export tomorrow).

- **Last copy wins**: the same record (same key) read twice is kept once, the last copy read
  (``Copies``). A reader counts the copies in a first pass and keeps only the last in a second.
- **Identity merge**: the same person exported under two ids (an identical identifier and the same
  birth date) is one person, under the key read first (``Identities``); the records of a merged
  person that are identical apart from their id are kept once (``MergedRecords``).
- **Allergy status**: what the sources say about allergies as a whole; when they disagree, RECORDED
  wins over NONE_KNOWN, which wins over NO_INFORMATION (``AllergyStatuses``).

Keys are opaque strings (``Type/id`` for FHIR). The indexes that grow with the export hold 96-bit
digests (``digest``), the same in every process, so a reader may share its work among processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

from continuity.model import AllergyStatus, Record

_blake2b = hashlib.blake2b

_STATUS_RANK = {AllergyStatus.NO_INFORMATION: 0, AllergyStatus.NONE_KNOWN: 1, AllergyStatus.RECORDED: 2}


def digest(text: str) -> int:
    """A 96-bit digest of a key (BLAKE2b), the same in every process (unlike ``hash``): worker
    processes look keys up in indexes built by the main one.

    Two different keys share one with a probability of about n² / 2**97: never, at any export size.
    """
    return int.from_bytes(_blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest(), "little")


@dataclass
class Copies:
    """Last copy wins: the keys read (as digests) and, for the few read more than once, the copies left to skip."""

    seen: set[int] = field(default_factory=set)
    copies: dict[str, int] = field(default_factory=dict)  # only keys read more than once

    def remember(self, key: str) -> None:
        """Count one copy of ``key`` (first pass)."""
        key_digest = digest(key)
        if key_digest in self.seen:
            self.copies[key] = self.copies.get(key, 1) + 1
        else:
            self.seen.add(key_digest)

    def __contains__(self, key: str) -> bool:
        return digest(key) in self.seen

    def is_last_copy(self, key: str) -> bool:
        """Whether this copy of ``key`` (second pass, same order) is the last one; the earlier ones say no."""
        remaining = self.copies.get(key)
        if remaining is None:
            return True
        if remaining > 1:
            self.copies[key] = remaining - 1
            return False
        del self.copies[key]
        return True


@dataclass
class Identities:
    """Persons (and practitioners, organisations) exported under several keys, merged by identifier.

    ``alias`` maps a key to the key it was merged into (its canonical key); ``index`` maps the digest
    of ``"Type|system|value"`` of each identifier to the canonical key that carries it.
    """

    alias: dict[str, str] = field(default_factory=dict)
    index: dict[int, str] = field(default_factory=dict)
    born: dict[str, int] = field(default_factory=dict)  # canonical person key → birth date ordinal (0: unknown)
    members: dict[str, list[str]] = field(default_factory=dict)  # canonical key → the other keys merged into it

    def canonical(self, key: str) -> str:
        return self.alias.get(key, key)

    def lookup(self, resource_type: str, system: str, value: str) -> str:
        """The canonical key of the resource of this type that carries the identifier, or ""."""
        return self.canonical(self.index.get(digest(f"{resource_type}|{system}|{value}"), ""))

    @staticmethod
    def identifier_digest(resource_type: str, system: str, value: str) -> int:
        return digest(f"{resource_type}|{system}|{value}")

    def remember(
        self,
        key: str,
        *,
        is_person: bool,
        born: int,
        identifiers: list[tuple[str, int]],
        copies: Copies,
    ) -> list[str]:
        """Count this copy under its canonical identity: the same key, or the same identifier and birth date.

        Args:
            key: the record's own key.
            is_person: a patient (merged only when the birth dates agree too).
            born: the birth date's ordinal, 0 when unknown.
            identifiers: ``("system|value", identifier_digest)`` of each of its identifiers.
            copies: where the copy is counted.

        Returns:
            Warnings (English): identifiers shared with another record whose birth date differs.
        """
        warnings = []
        canonical = self.canonical(key)
        if canonical == key and key not in copies:
            for identifier, identifier_digest in identifiers:
                other_key = self.canonical(self.index.get(identifier_digest, key))
                if other_key == key:
                    continue
                if self.born.get(other_key, 0) != born:
                    warnings.append(
                        f"shares the identifier {identifier} with {other_key} but not its birth date: kept apart"
                    )
                    continue
                self.alias[key] = other_key
                canonical = other_key
                break
        copies.remember(canonical)
        if is_person and canonical not in self.born:
            self.born[canonical] = born
        for _, identifier_digest in identifiers:
            self.index.setdefault(identifier_digest, canonical)
        return warnings

    def finish(self) -> None:
        """After the first pass: list the keys merged into each canonical key."""
        self.members = {}
        for key, canonical in self.alias.items():
            self.members.setdefault(canonical, []).append(key)


def stronger_allergy_status(first: AllergyStatus, second: AllergyStatus) -> AllergyStatus:
    return first if _STATUS_RANK[first] >= _STATUS_RANK[second] else second


@dataclass
class AllergyStatuses:
    """What each person's sources say about allergies as a whole (keys before any merge)."""

    said: dict[str, AllergyStatus] = field(default_factory=dict)

    def add(self, person_key: str, status: AllergyStatus) -> None:
        current = self.said.get(person_key)
        self.said[person_key] = status if current is None else stronger_allergy_status(current, status)

    def of(self, canonical_key: str, identities: Identities) -> AllergyStatus:
        """The status of a (possibly merged) person: the strongest said under any of its keys."""
        status = self.said.get(canonical_key, AllergyStatus.NO_INFORMATION)
        for key in identities.members.get(canonical_key, ()):
            if key in self.said:
                status = stronger_allergy_status(status, self.said[key])
        return status


class MergedRecords:
    """The records of merged persons: the same fact under two record ids (the same allergy restated by
    two documents) is kept once. Only merged persons are tracked, so this stays small."""

    def __init__(self, person_ids: set[str]) -> None:
        self.person_ids = person_ids
        self.seen: set[tuple[Any, ...]] = set()

    def repeats(self, record: Record) -> bool:
        """Whether a merged person already has this record, identical apart from its id."""
        if getattr(record, "patient_id", None) not in self.person_ids:
            return False
        content = (type(record).__name__,) + tuple(
            getattr(record, f.name) for f in dataclasses.fields(record) if f.name != "id"
        )
        if content in self.seen:
            return True
        self.seen.add(content)
        return False

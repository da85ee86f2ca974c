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
import functools
import hashlib
import unicodedata
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


# Lookups (pass 2: every reference of every resource) ask again and again for the same few keys: the
# practitioners, the medications, the patient of a run of resources. ``remember`` sees each key about
# once and digests it directly.
_looked_up_digest = functools.lru_cache(maxsize=4096)(digest)


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
        return _looked_up_digest(key) in self.seen

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
    """What each person's sources say about allergies as a whole (keys before any merge).

    Statements read inside a Bundle are kept with their place until the end of the first pass, when it
    is known whether their person key is shared by several persons (``Collisions``): an IPS document
    says "no known allergy" in its Composition before its Patient entry is even read.
    """

    said: dict[str, AllergyStatus] = field(default_factory=dict)
    said_file: dict[str, int] = field(default_factory=dict)  # the file of the statements in `said` (-1: several)
    in_bundles: list[tuple[str, int, tuple[int, ...], AllergyStatus]] = field(default_factory=list)

    def _raise(self, person_key: str, status: AllergyStatus) -> None:
        current = self.said.get(person_key)
        self.said[person_key] = status if current is None else stronger_allergy_status(current, status)

    def add(self, person_key: str, status: AllergyStatus, file_index: int, bundles: tuple[int, ...] = ()) -> None:
        if bundles:
            self.in_bundles.append((person_key, file_index, bundles, status))
            return
        self._raise(person_key, status)
        if self.said_file.setdefault(person_key, file_index) != file_index:
            self.said_file[person_key] = -1

    def finish(self, collisions: Collisions) -> None:
        """After the first pass: every statement attributed to the person it is about (or to none when that
        is ambiguous: fails closed, the person's status stays "no information")."""
        for key in collisions.variants.keys() & self.said.keys():
            status = self.said.pop(key)
            try:
                self._raise(collisions.resolve(key, self.said_file.get(key, -1), ()), status)
            except Ambiguous:
                pass
        for key, file_index, bundles, status in self.in_bundles:
            try:
                self._raise(collisions.resolve(key, file_index, bundles), status)
            except Ambiguous:
                pass
        self.in_bundles = []
        self.said_file = {}

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


# --- different resources under one key ------------------------------------------------------------

Place = tuple[int, int | None]  # (source file index, innermost Bundle number or None)


class Ambiguous(Exception):
    """A reference to a key that several different resources share, from where none of them is closer."""


@dataclass
class Variant:
    """One of the different resources exported under the same key."""

    key: str  # the distinct key it is kept under (the first one keeps the original key)
    fingerprint: int
    places: list[Place]  # where its copies were read


@dataclass
class Collisions:
    """Different resources exported under one key (two persons, each ``Patient/1`` in its own document)
    are both kept, the later ones under distinct keys (``Patient/1~2``); the same resource repeated
    (same fingerprint) is one resource, whose last copy wins (``Copies``).

    A reference to a shared key goes to the resource of the same Bundle, else to the only one of the
    same file; from anywhere else it is ambiguous, and what depends on it is refused rather than
    attached to the wrong resource.
    """

    # digest(key) → (fingerprint << 20 | file index) of the first resource read under it
    first: dict[int, int] = field(default_factory=dict)
    first_bundles: dict[int, list[Place]] = field(default_factory=dict)  # its copies read inside a Bundle
    variants: dict[str, list[Variant]] = field(default_factory=dict)  # only keys that collide
    renamed: dict[tuple[int, int], str] = field(default_factory=dict)  # (file, ordinal) → distinct key

    def place(self, key: str, fingerprint: int, place: Place, ordinal: int) -> tuple[str, str]:
        """Record one copy of ``key``; returns its distinct key and, for a new collision, the key it collides with."""
        fingerprint &= (1 << 64) - 1
        key_digest = digest(key)
        file_index, bundle = place
        variants = self.variants.get(key)
        if variants is None:
            packed = self.first.get(key_digest)
            if packed is None:
                self.first[key_digest] = fingerprint << 20 | file_index
                if bundle is not None:
                    self.first_bundles[key_digest] = [place]
                return key, ""
            if packed >> 20 == fingerprint:  # the same resource again
                if bundle is not None:
                    self.first_bundles.setdefault(key_digest, []).append(place)
                return key, ""
            first_places: list[Place] = [(packed & 0xFFFFF, None), *self.first_bundles.pop(key_digest, [])]
            variants = self.variants[key] = [Variant(key, packed >> 20, first_places)]
        for variant in variants:
            if variant.fingerprint == fingerprint:
                variant.places.append(place)
                if variant.key != key:
                    self.renamed[(file_index, ordinal)] = variant.key
                return variant.key, ""
        distinct = f"{key}~{len(variants) + 1}"
        variants.append(Variant(distinct, fingerprint, [place]))
        self.renamed[(file_index, ordinal)] = distinct
        return distinct, key

    def key_of(self, key: str, file_index: int, ordinal: int) -> str:
        """The distinct key of a copy read in pass 1 (its own key unless it collided)."""
        if not self.renamed:
            return key
        return self.renamed.get((file_index, ordinal), key)

    def first_file(self, key: str) -> int:
        """The file the first resource under a colliding key was read from."""
        return self.variants[key][0].places[0][0]

    def resolve(self, key: str, file_index: int, bundles: tuple[int, ...]) -> str:
        """The distinct key a reference to ``key`` means, from a resource of ``file_index`` inside ``bundles``.

        Raises:
            Ambiguous: no Bundle around the reference holds one of the resources, and its file holds
                none or several of them.
        """
        variants = self.variants.get(key)
        if variants is None:
            return key
        for bundle in bundles:  # innermost first
            for variant in variants:
                if (file_index, bundle) in variant.places:
                    return variant.key
        in_file = [variant for variant in variants if any(place[0] == file_index for place in variant.places)]
        if len(in_file) == 1:
            return in_file[0].key
        raise Ambiguous(f"{key} is {len(variants)} different resources; this reference cannot tell which")


# --- absence written as text ----------------------------------------------------------------------

# "No known current medications" written as free text is a statement of absence, not a treatment.
# Exact phrasings (compared folded: lower case, no accents, punctuation as spaces) are dropped as
# statements; a text that only starts like a negation is kept, flagged "possible-absence".
_ABSENCE_PHRASES = {
    "medication": {
        "no known medications",
        "no known medication",
        "no current medications",
        "no current medication",
        "no known current medications",
        "no medications",
        "no medication",
        "no regular medications",
        "no regular medication",
        "no medicines",
        "no current medicines",
        "not on any medication",
        "not on any medications",
        "no drugs",
        "no information about medications",
        "none",
        "nil",
        "aucun traitement",
        "aucun traitement en cours",
        "aucun traitement connu",
        "pas de traitement",
        "pas de traitement en cours",
        "sans traitement",
        "aucun medicament",
        "pas de medicament",
        "neant",
        "aucun",
    },
    "problem": {
        "no known problems",
        "no current problems",
        "no current problems or disability",
        "no known current problems",
        "no problems",
        "no known medical problems",
        "no past medical history",
        "no significant past medical history",
        "no information about problems",
        "none",
        "nil",
        "aucun antecedent",
        "aucun antecedent connu",
        "pas d antecedent",
        "pas d antecedents",
        "aucune pathologie",
        "pas de pathologie",
        "aucun probleme",
        "neant",
        "aucun",
        "aucune",
    },
    "allergy": {
        "nka",
        "nkda",
        "no known allergy",
        "no known allergies",
        "no known drug allergy",
        "no known drug allergies",
        "no allergies",
        "no allergy",
        "none",
        "nil",
        "aucune allergie",
        "aucune allergie connue",
        "pas d allergie",
        "pas d allergies",
        "pas d allergie connue",
        "absence d allergie",
        "absence d allergie connue",
        "neant",
    },
}
_NEGATION_STARTS = frozenset(
    {"no", "not", "none", "nil", "nka", "nkda", "without", "aucun", "aucune", "pas", "sans", "neant", "absence"}
)


# How every phrase and negation above begins (lower case, before folding): the cheap test first.
_HEADS = (
    "no ",
    "no-",
    "no.",
    "none",
    "nil",
    "nka",
    "nkda",
    "not ",
    "aucun",
    "pas ",
    "pas d",
    "sans ",
    "neant",
    "néant",
    "absence",
    "without",
)


def fold_text(text: str) -> str:
    """Lower case, accents removed, anything not a letter or digit a single space."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.split())


def absence(text: str, kind: str) -> str:
    """Whether a text says there is nothing of ``kind`` ("medication", "problem", "allergy").

    Returns ``"absent"`` for a known phrasing ("No known medications", "Aucun traitement en cours"),
    ``"possible"`` for a text that starts like a negation ("No regular meds except…", "Pas de …"), and
    ``""`` otherwise.
    """
    head = text[:8].casefold()
    if not head.startswith(_HEADS) and head != "no":  # most texts: one cheap test, no folding
        return ""
    folded = fold_text(text)
    if not folded:
        return ""
    if folded in _ABSENCE_PHRASES[kind]:
        return "absent"
    if folded.split(" ", 1)[0] in _NEGATION_STARTS:
        return "possible"
    return ""

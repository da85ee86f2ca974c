"""The two passes over the sources, applied in reading order: the records, and the report of what was refused.

- **Pass 1** streams every source once and keeps small per-id indexes only (``Indexes``): digests of
  the keys of the resources that become records (to let the last copy of a duplicate win) and of
  patient/practitioner/organization identifiers (to merge the same person exported twice), each
  patient's birth date and allergy status, compact Medication descriptions, practitioner roles and
  ALD markers. Patients, Practitioners, Organizations and Medications are validated here so that
  anything depending on a rejected one can be skipped with a precise message, and fingerprinted so
  that two different resources under one id are both kept (``intake.Collisions``). An NDJSON line of
  a clinical type that only contributes its key is not even parsed in this pass.
- Between the passes, what depends on the whole export is settled: merged persons, allergy statements,
  clinical resources of single-patient documents whose patient dangles, clinical ids shared by
  resources about different patients.
- **Pass 2** streams the sources again and yields records in dependency order: ``Practice`` and
  ``Practitioner`` first, then ``Patient``, then the clinical records. A Bulk export folder holds one
  resource type per file, so each of its files is read exactly once in pass 2.

Both passes over a large uncompressed NDJSON file may be shared among worker processes
(``continuity.fhir.parallel``); what they give is applied here in reading order, so indexes, records,
their order and the report are those of a serial read. Every resource read is counted in the report
as kept (with its flags) or dropped with a reason.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from continuity.errors import InputError
from continuity.fhir import parallel
from continuity.fhir.convert import Outcome, convert, learn
from continuity.fhir.indexes import (
    AldCondition,
    AldObservation,
    AllergySaid,
    BundleSubject,
    Effect,
    Identity,
    Indexes,
    MedicationDescribed,
    RoleDescribed,
    Seen,
    SubjectRef,
)
from continuity.fhir.sources import Item, SourceFile, Span, Unreadable, is_log_file, rejected_key
from continuity.fhir.vocabulary import IDENTITY_TYPES, INDEX_ONLY_TYPES, SWEEPS, USED_TYPES
from continuity.import_report import ImportProblem, ImportReport
from continuity.intake import Ambiguous, MergedRecords
from continuity.model import Record


class Reader:
    """One read of a set of source files; ``records()`` runs both passes."""

    def __init__(
        self, files: list[Path], *, strict: bool, report: ImportReport, workers: int, parallel_min_bytes: int
    ) -> None:
        self.skipped_logs = [path for path in files if is_log_file(path)]
        self.files = files
        self.strict = strict
        self.report = report
        self.workers = workers  # worker processes (1: none)
        self.parallel_min_bytes = parallel_min_bytes
        self.indexes = Indexes(files)
        self.file_types: list[set[str]] = [set() for _ in files]
        self.merged = MergedRecords(set())
        # Earlier copies of a duplicated clinical key, until its last copy: (patient id, file, location, type).
        self.earlier: dict[str, list[tuple[str, int, str, str]]] = {}
        # The chunks of the files whose reading is shared, cut in pass 1 and used again in pass 2.
        self.spans: dict[Path, list[Span]] = {}

    # -- reporting --

    def _where(
        self, file_index: int, location: str, resource: str, message: str = "", reason: str = ""
    ) -> ImportProblem:
        return ImportProblem(str(self.files[file_index]), location, resource, message, reason or "invalid")

    def _problem(self, file_index: int, location: str, resource_type: str, key: str, message: str, reason: str) -> None:
        """A resource refused: counted as dropped, listed with its reason (raised at once in strict mode)."""
        problem = self._where(file_index, location, key or resource_type, message, reason)
        if self.strict:
            where = ", ".join(p for p in (problem.source, _location_fr(location), key or resource_type) if p)
            raise InputError(str(problem), message_fr=f"Donnée source invalide : {where}.")
        self.report.problems.append(problem)
        self.report.dropped(resource_type, reason, problem)

    def _unreadable(self, file_index: int, unit: Unreadable) -> None:
        self.indexes.bad.add((file_index, unit.ordinal))
        self._problem(file_index, unit.location, "", unit.resource, unit.message, "invalid")

    # -- driver --

    def records(self) -> Iterator[Record]:
        pool: concurrent.futures.ProcessPoolExecutor | None = None
        for path in self.skipped_logs:
            self.report.skipped_files.append(str(path))
        try:
            for file_index, path in enumerate(self.files):
                if path in self.skipped_logs:
                    continue
                if self._shared(path):
                    pool = pool or parallel.start_pool(self.workers, Indexes(self.files))
                    self._learn_shared(pool, file_index, path)
                    continue
                types, remember = self.file_types[file_index], self.indexes.copies.remember
                for unit in SourceFile(path).items(light=True):
                    if isinstance(unit, Unreadable):
                        self._unreadable(file_index, unit)
                    elif unit.light:  # most lines of a Bulk export: only their key matters here
                        types.add(unit.resource_type)
                        remember(unit.key)
                    else:
                        effects, problem = learn(unit)
                        bundles = unit.scope.chain() if unit.scope is not None else ()
                        lost = rejected_key(unit.resource, unit.resource_type) if problem and not unit.key else ""
                        self._learnt(file_index, unit, effects, problem, bundles, lost)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._between_passes()
        yield from self._pass_2()

    def _shared(self, path: Path) -> bool:
        """Whether the reading of this file is shared among worker processes."""
        if self.workers < 2 or not path.name.lower().endswith(".ndjson"):
            return False
        try:
            return path.stat().st_size >= self.parallel_min_bytes
        except OSError:
            return False  # the serial read reports it

    # -- pass 1 --

    def _learnt(
        self,
        file_index: int,
        item: Item | parallel.Learnt,
        effects: list[Effect],
        problem: str,
        bundles: tuple[int, ...],
        lost_key: str,
    ) -> None:
        """Apply what pass 1 learnt from one resource, in reading order."""
        resource_type, key = item.resource_type, item.key
        indexes = self.indexes
        self.file_types[file_index].add(resource_type)
        if resource_type not in USED_TYPES:
            self.report.ignored_types[resource_type] += 1
            return
        if item.light:
            indexes.copies.remember(key)
            return
        if not key:
            indexes.bad.add((file_index, item.ordinal))
            if lost_key and (resource_type in IDENTITY_TYPES or resource_type == "Medication"):
                indexes.rejected.add(lost_key)
            self._problem(file_index, item.location, resource_type, lost_key, problem, "invalid")
            return
        for effect in effects:
            # Dispatch on the exact class (the effects are final named tuples): cheaper than `match` here,
            # where every resource of the export passes.
            kind = effect.__class__
            if kind is Seen:
                indexes.copies.remember(key)
            elif kind is Identity:
                born, identifiers, fingerprint = cast(Identity, effect)
                key = self._distinct(file_index, item, (file_index, bundles[0] if bundles else None), fingerprint)
                indexes.rejected.discard(key)
                for warning in indexes.identities.remember(
                    key,
                    is_person=resource_type == "Patient",
                    born=born,
                    identifiers=identifiers,
                    copies=indexes.copies,
                ):
                    self.report.warnings.append(self._where(file_index, item.location, key, warning, "identity"))
            elif kind is AllergySaid:
                patient_key, status = cast(AllergySaid, effect)
                indexes.allergy.add(patient_key, status, file_index, bundles)
            elif kind is MedicationDescribed:
                medication, fingerprint = cast(MedicationDescribed, effect)
                key = self._distinct(file_index, item, (file_index, bundles[0] if bundles else None), fingerprint)
                indexes.medications[key] = medication
                indexes.rejected.discard(key)
            elif kind is RoleDescribed:
                role = cast(RoleDescribed, effect).role
                indexes.roles[key] = role
                indexes.roles_by_practitioner.setdefault(role.practitioner_key, role)
            elif kind is AldObservation:
                indexes.ald_observations[key] = cast(AldObservation, effect).value
            elif kind is AldCondition:
                indexes.ald_conditions.add(cast(AldCondition, effect).condition_key)
            elif kind is SubjectRef:
                subject_key, sole_patient = cast(SubjectRef, effect)
                indexes.bundle_subjects.append(
                    BundleSubject(key, subject_key, sole_patient, file_index, bundles, item.ordinal)
                )
        if problem:
            indexes.bad.add((file_index, item.ordinal))
            if resource_type in IDENTITY_TYPES or resource_type == "Medication":
                indexes.rejected.add(key)
            self._problem(file_index, item.location, resource_type, key, problem, "invalid")
        elif resource_type in INDEX_ONLY_TYPES:
            self.report.kept(resource_type)

    def _distinct(
        self, file_index: int, item: Item | parallel.Learnt, place: tuple[int, int | None], fingerprint: int
    ) -> str:
        """The key a fingerprinted copy is kept under; a new collision is reported as a warning."""
        distinct, collided = self.indexes.collisions.place(item.key, fingerprint, place, item.ordinal)
        if collided:
            first = self.files[self.indexes.collisions.first_file(collided)]
            self.report.warnings.append(
                self._where(
                    file_index,
                    item.location,
                    item.key,
                    f"{collided} is also a different {item.resource_type} in {first}: both are kept, this one as "
                    f"{distinct}; what refers to {collided} goes to the one of the same document or file",
                    "collision",
                )
            )
        return distinct

    def _learn_shared(self, pool: concurrent.futures.ProcessPoolExecutor, file_index: int, path: Path) -> None:
        """Pass 1 of one NDJSON file: the workers work out what each resource says, applied here in order."""
        chunks = parallel.chunks(
            pool, self.workers, parallel.file_spans(path, self.spans), parallel.learn_chunk, file_index
        )
        types, remember = self.file_types[file_index], self.indexes.copies.remember
        for units in chunks:
            for unit in units:
                if unit.__class__ is parallel.Light:  # most lines: only their keys matter
                    types.add(unit.resource_type)
                    for key in unit.keys:
                        remember(key)
                elif isinstance(unit, Unreadable):
                    self._unreadable(file_index, unit)
                    if unit.ordinal < 0:  # the file itself could not be read: as a whole read, stop here
                        chunks.close()
                        return
                else:
                    self._learnt(file_index, unit, unit.effects, unit.problem, unit.bundles, unit.rejected_key)

    # -- between the passes --

    def _between_passes(self) -> None:
        indexes = self.indexes
        indexes.identities.finish()
        indexes.allergy.finish(indexes.collisions)
        self._bundle_subjects()
        self.merged = MergedRecords(
            {key.split("/", 1)[1] for key in indexes.identities.members if key.startswith("Patient/")}
        )

    def _person(self, subject: BundleSubject, key: str) -> str:
        """The canonical patient key a reference made inside a Bundle leads to ("" when none or ambiguous)."""
        if not key.startswith("Patient/"):
            return ""
        try:
            distinct = self.indexes.collisions.resolve(key, subject.file_index, subject.bundles)
        except Ambiguous:
            return ""
        canonical = self.indexes.canonical(distinct)
        return canonical if canonical in self.indexes.copies else ""

    def _bundle_subjects(self) -> None:
        """Clinical resources read inside Bundles: dangling patients, and one id for different patients.

        - A resource whose patient is nowhere while its document has one (other) patient: that patient
          is published flagged incomplete, the resource is refused as ``dangling-subject``.
        - The same clinical id in several documents about different patients (each document says
          ``Condition/1``): every one is kept, the later ones under distinct ids.
        """
        indexes = self.indexes
        by_key: dict[str, list[tuple[BundleSubject, str]]] = {}
        for subject in indexes.bundle_subjects:
            person = self._person(subject, subject.subject_key)
            if not person and subject.sole_patient:
                sole = self._person(subject, subject.sole_patient)
                if sole:
                    indexes.dangling.add((subject.file_index, subject.ordinal))
                    if sole not in indexes.incomplete:
                        indexes.incomplete.add(sole)
                        self.report.incomplete_patients += 1
                    self.report.warnings.append(
                        self._where(
                            subject.file_index,
                            "",
                            subject.key,
                            f"points to {subject.subject_key or 'a patient that is not in its document'}, while its "
                            f"document's only patient is {sole}: {sole} is published flagged incomplete",
                            "dangling-subject",
                        )
                    )
            by_key.setdefault(subject.key, []).append((subject, person))
        for key, copies in by_key.items():
            persons = list(dict.fromkeys(person for _, person in copies if person))
            if len(copies) < 2 or len(persons) < 2:
                continue
            last_person = next((person for _, person in reversed(copies) if person), "")
            groups = [person for person in persons if person != last_person]
            counts = {person: 0 for person in persons}
            for number, person in enumerate(groups, start=2):
                distinct = f"{key}~{number}"
                for subject, about in copies:
                    if about == person:
                        indexes.collisions.renamed[(subject.file_index, subject.ordinal)] = distinct
                        indexes.copies.remember(distinct)
                        counts[person] += 1
                first = next(subject for subject, about in copies if about == person)
                self.report.warnings.append(
                    self._where(
                        first.file_index,
                        "",
                        key,
                        f"{key} is also used for resources about {last_person}: kept, about {person}, as {distinct}",
                        "collision",
                    )
                )
            moved = sum(counts.values())  # copies now counted under their distinct keys, not under `key`
            remaining = indexes.copies.copies.get(key, 1) - moved
            if remaining > 1:
                indexes.copies.copies[key] = remaining
            else:
                indexes.copies.copies.pop(key, None)
        indexes.bundle_subjects = []

    # -- pass 2 --

    def _pass_2(self) -> Iterator[Record]:
        pool: concurrent.futures.ProcessPoolExecutor | None = None
        indexes = self.indexes
        renamed = indexes.collisions.renamed  # the copies kept under a distinct key: usually none
        try:
            for sweep in SWEEPS:
                for file_index, path in enumerate(self.files):
                    if not self.file_types[file_index] & sweep:
                        continue
                    if self._shared(path):
                        pool = pool or parallel.start_pool(self.workers, indexes)
                        yield from self._convert_shared(pool, file_index, path, sweep)
                        continue
                    for unit in SourceFile(path).items():
                        if (file_index, unit.ordinal) in indexes.bad:
                            continue
                        if isinstance(unit, Unreadable):  # a line pass 1 did not parse
                            self._unreadable(file_index, unit)
                        elif unit.resource_type in sweep:
                            if renamed:
                                unit.key = renamed.get((file_index, unit.ordinal), unit.key)
                            if self._is_last_copy(file_index, unit.resource_type, unit.key, unit.location):
                                yield from self._apply(file_index, unit, convert(indexes, file_index, unit))
                            elif unit.resource_type not in IDENTITY_TYPES:  # an earlier copy: whose is it?
                                self._remember_earlier(file_index, unit, convert(indexes, file_index, unit).records)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        for key in list(self.earlier):  # a last copy that could not be read at all
            for _, other_file, location, resource_type in self.earlier.pop(key):
                self.report.dropped(
                    resource_type, "duplicate", self._where(other_file, location, key, reason="duplicate")
                )

    def _is_last_copy(self, file_index: int, resource_type: str, key: str, location: str) -> bool:
        copies = self.indexes.copies
        if not copies.copies:  # no key was read twice
            return True
        if resource_type in IDENTITY_TYPES:
            key = self.indexes.canonical(key)
        if copies.is_last_copy(key):
            return True
        self.report.duplicates += 1
        if resource_type in IDENTITY_TYPES:  # a clinical copy is counted when its last copy says whose it was
            self.report.dropped(resource_type, "duplicate", self._where(file_index, location, key, reason="duplicate"))
        return False

    def _remember_earlier(self, file_index: int, item: Item | parallel.Converted, records: list[Record]) -> None:
        patient = next((str(getattr(r, "patient_id", "")) for r in records), "")
        self.earlier.setdefault(item.key, []).append((patient, file_index, item.location, item.resource_type))

    def _settle_earlier(self, file_index: int, item: Item | parallel.Converted, records: list[Record]) -> None:
        """The last copy of a clinical id read several times: earlier copies about another patient are
        refused as collisions (their content is not kept, and the export must be fixed), the others are
        duplicates."""
        earlier = self.earlier.pop(item.key, None)
        if earlier is None:
            return
        patient = next((str(getattr(r, "patient_id", "")) for r in records), "")
        for other_patient, other_file, location, resource_type in earlier:
            if patient and other_patient and other_patient != patient:
                self._problem(
                    other_file,
                    location,
                    resource_type,
                    item.key,
                    f"{item.key} is about patient {other_patient} here and about {patient} in the copy kept "
                    f"({self.files[file_index]}, {item.location}): this one is lost; give them distinct ids",
                    "collision",
                )
            else:
                where = self._where(other_file, location, item.key, reason="duplicate")
                self.report.dropped(resource_type, "duplicate", where)

    def _apply(self, file_index: int, item: Item | parallel.Converted, outcome: Outcome) -> Iterator[Record]:
        """The report and the records of a converted resource, in reading order."""
        records, problem, reason, warnings, ins_dropped, stripped = outcome
        report = self.report
        resource_type, key = item.resource_type, item.key
        if self.earlier:
            self._settle_earlier(file_index, item, records)
        report.warnings.extend(warnings)
        if ins_dropped:
            report.ins_dropped += 1
        if stripped:
            report.stripped(self._where(file_index, item.location, key, "control or bidi characters removed"))
        if problem:
            self._problem(file_index, item.location, resource_type, key, problem, reason)
            return
        if not records:
            report.dropped(
                resource_type, reason or "not-used", self._where(file_index, item.location, key, reason=reason)
            )
            return
        kept = False
        flags: tuple[str, ...] = ()
        for record in records:
            if self.merged.person_ids and self.merged.repeats(record):
                report.duplicates += 1
                continue
            kept = True
            flags += getattr(record, "flags", ())
            report.counts[type(record).__name__] += 1
            yield record
        if kept:
            report.kept(resource_type, flags, self._where(file_index, item.location, key) if flags else None)
        else:
            report.dropped(resource_type, "duplicate", self._where(file_index, item.location, key, reason="duplicate"))

    def _convert_shared(
        self, pool: concurrent.futures.ProcessPoolExecutor, file_index: int, path: Path, sweep: frozenset[str]
    ) -> Iterator[Record]:
        """Pass 2 of one NDJSON file, its chunks of lines converted by the workers, applied here in order."""
        chunks = parallel.chunks(
            pool, self.workers, parallel.file_spans(path, self.spans), parallel.convert_chunk, file_index, sweep
        )
        bad = {ordinal for bad_file, ordinal in self.indexes.bad if bad_file == file_index}  # workers skip pass 1's
        merged, report, rebuild, named = self.merged, self.report, parallel.rebuild, parallel.Converted._make
        counts = report.counts
        copy_counts = self.indexes.copies.copies  # only keys read more than once: usually almost empty
        for units in chunks:
            for unit in units:
                if unit.__class__ is Unreadable:
                    ordinal = unit.ordinal
                    if bad and ordinal in bad:
                        continue
                    bad.add(ordinal)
                    self._unreadable(file_index, unit)
                    if ordinal < 0:  # the file itself could not be read: as a whole read, stop here
                        chunks.close()
                        return
                    continue
                # A Converted's fields: unpacked once (the main process is the bottleneck of a shared read).
                ordinal, location, key, resource_type, flat, problem, reason, warnings, ins_dropped, stripped = unit
                if bad and ordinal in bad:
                    continue
                if copy_counts and not self._is_last_copy(file_index, resource_type, key, location):
                    if resource_type not in IDENTITY_TYPES:
                        self._remember_earlier(file_index, named(unit), [rebuild(r) for r in flat])
                    continue
                if problem or warnings or ins_dropped or stripped or not flat or self.earlier:
                    outcome = Outcome([rebuild(r) for r in flat], problem, reason, warnings, ins_dropped, stripped)
                    yield from self._apply(file_index, named(unit), outcome)
                    continue
                # The usual case, as _apply does it.
                kept = False
                flags: tuple[str, ...] = ()
                for record in map(rebuild, flat):
                    if merged.person_ids and merged.repeats(record):
                        report.duplicates += 1
                        continue
                    kept = True
                    flags += getattr(record, "flags", ())
                    counts[type(record).__name__] += 1
                    yield record
                if kept:
                    report.kept(resource_type, flags, self._where(file_index, location, key) if flags else None)
                else:
                    report.dropped(
                        resource_type, "duplicate", self._where(file_index, location, key, reason="duplicate")
                    )


def _location_fr(location: str) -> str:
    return location.replace("line", "ligne").replace("entry", "entrée")

"""The two passes over the sources, applied in reading order: the records, and the report of what was refused.

- **Pass 1** streams every source once and keeps small per-id indexes only (``Indexes``): digests of
  the keys of the resources that become records (to let the last copy of a duplicate win) and of
  patient/practitioner/organization identifiers (to merge the same person exported twice), each
  patient's birth date and allergy status, compact Medication descriptions, practitioner roles and
  ALD markers. Patients, Practitioners, Organizations and Medications are validated here so that
  anything depending on a rejected one can be skipped with a precise message. An NDJSON line of a
  clinical type that only contributes its key is not even parsed in this pass.
- **Pass 2** streams the sources again and yields records in dependency order: ``Practice`` and
  ``Practitioner`` first, then ``Patient``, then the clinical records. A Bulk export folder holds one
  resource type per file, so each of its files is read exactly once in pass 2.

Both passes over a large uncompressed NDJSON file may be shared among worker processes
(``continuity.fhir.parallel``); what they give is applied here in reading order, so indexes, records,
their order and the report are those of a serial read.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

from continuity.errors import InputError
from continuity.fhir import parallel
from continuity.fhir.convert import Outcome, convert, learn
from continuity.fhir.indexes import (
    AldCondition,
    AldObservation,
    AllergySaid,
    Effect,
    Identity,
    Indexes,
    MedicationDescribed,
    RoleDescribed,
    Seen,
)
from continuity.fhir.sources import Item, SourceFile, Unreadable
from continuity.fhir.vocabulary import IDENTITY_TYPES, SWEEPS, USED_TYPES
from continuity.import_report import ImportProblem, ImportReport
from continuity.intake import MergedRecords
from continuity.model import Record


class Reader:
    """One read of a set of source files; ``records()`` runs both passes."""

    def __init__(
        self, files: list[Path], *, strict: bool, report: ImportReport, workers: int, parallel_min_bytes: int
    ) -> None:
        self.files = files
        self.strict = strict
        self.report = report
        self.workers = workers  # worker processes (1: none)
        self.parallel_min_bytes = parallel_min_bytes
        self.indexes = Indexes(files)
        self.file_types: list[set[str]] = [set() for _ in files]
        self.merged = MergedRecords(set())

    # -- reporting --

    def _problem(self, file_index: int, location: str, resource: str, message: str) -> None:
        problem = ImportProblem(str(self.files[file_index]), location, resource, message)
        if self.strict:
            where = ", ".join(p for p in (problem.source, _location_fr(location), resource) if p)
            raise InputError(str(problem), message_fr=f"Donnée source invalide : {where}.")
        self.report.problems.append(problem)

    def _unreadable(self, file_index: int, unit: Unreadable) -> None:
        self.indexes.bad.add((file_index, unit.ordinal))
        self._problem(file_index, unit.location, unit.resource, unit.message)

    # -- driver --

    def records(self) -> Iterator[Record]:
        pool: concurrent.futures.ProcessPoolExecutor | None = None
        try:
            for file_index, path in enumerate(self.files):
                if self._shared(path):
                    pool = pool or parallel.start_pool(self.workers, Indexes(self.files))
                    self._learn_shared(pool, file_index, path)
                    continue
                for unit in SourceFile(path).items(light=True):
                    if isinstance(unit, Unreadable):
                        self._unreadable(file_index, unit)
                    else:
                        effects, problem = learn(unit)
                        self._learnt(file_index, unit, effects, problem)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        yield from self._pass_2()

    def _pass_2(self) -> Iterator[Record]:
        identities = self.indexes.identities
        identities.finish()
        self.merged = MergedRecords(
            {canonical.split("/", 1)[1] for canonical in identities.members if canonical.startswith("Patient/")}
        )
        pool: concurrent.futures.ProcessPoolExecutor | None = None
        try:
            for sweep in SWEEPS:
                for file_index, path in enumerate(self.files):
                    if not self.file_types[file_index] & sweep:
                        continue
                    if self._shared(path):
                        pool = pool or parallel.start_pool(self.workers, self.indexes)
                        yield from self._convert_shared(pool, file_index, path, sweep)
                        continue
                    source = str(path)
                    for unit in SourceFile(path).items():
                        if (file_index, unit.ordinal) in self.indexes.bad:
                            continue
                        if isinstance(unit, Unreadable):  # a line pass 1 did not parse
                            self._unreadable(file_index, unit)
                        elif unit.resource_type in sweep and self._is_last_copy(unit.resource_type, unit.key):
                            yield from self._apply(
                                file_index, unit.location, unit.key, convert(self.indexes, source, unit)
                            )
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _shared(self, path: Path) -> bool:
        """Whether the reading of this file is shared among worker processes."""
        if self.workers < 2 or not path.name.lower().endswith(".ndjson"):
            return False
        try:
            return path.stat().st_size >= self.parallel_min_bytes
        except OSError:
            return False  # the serial read reports it

    # -- pass 1 --

    def _learnt(self, file_index: int, item: Item | parallel.Learnt, effects: list[Effect], problem: str) -> None:
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
            self._problem(file_index, item.location, resource_type, problem)
            return
        for effect in effects:
            match effect:
                case Identity(born, identifiers):
                    indexes.rejected.discard(key)
                    for warning in indexes.identities.remember(
                        key,
                        is_person=resource_type == "Patient",
                        born=born,
                        identifiers=identifiers,
                        copies=indexes.copies,
                    ):
                        self.report.warnings.append(
                            ImportProblem(str(self.files[file_index]), item.location, key, warning)
                        )
                case Seen():
                    indexes.copies.remember(key)
                case AllergySaid(patient_key, status):
                    indexes.allergy.add(patient_key, status)
                case MedicationDescribed(medication):
                    indexes.medications[key] = medication
                    indexes.rejected.discard(key)
                case RoleDescribed(role):
                    indexes.roles[key] = role
                    indexes.roles_by_practitioner.setdefault(role.practitioner_key, role)
                case AldObservation(value):
                    indexes.ald_observations[key] = value
                case AldCondition(condition_key):
                    indexes.ald_conditions.add(condition_key)
        if problem:
            indexes.bad.add((file_index, item.ordinal))
            if resource_type in IDENTITY_TYPES or resource_type == "Medication":
                indexes.rejected.add(key)
            self._problem(file_index, item.location, key, problem)

    def _learn_shared(self, pool: concurrent.futures.ProcessPoolExecutor, file_index: int, path: Path) -> None:
        """Pass 1 of one NDJSON file: the workers work out what each resource says, applied here in order."""
        chunks = parallel.chunks(pool, self.workers, path, parallel.learn_chunk, file_index)
        for units in chunks:
            for unit in units:
                if isinstance(unit, Unreadable):
                    self._unreadable(file_index, unit)
                    if unit.ordinal < 0:  # the file itself could not be read: as a whole read, stop here
                        chunks.close()
                        return
                else:
                    self._learnt(file_index, unit, unit.effects, unit.problem)

    # -- pass 2 --

    def _is_last_copy(self, resource_type: str, key: str) -> bool:
        if resource_type in IDENTITY_TYPES:
            key = self.indexes.canonical(key)
        if self.indexes.copies.is_last_copy(key):
            return True
        self.report.duplicates += 1
        return False

    def _apply(self, file_index: int, location: str, key: str, outcome: Outcome) -> Iterator[Record]:
        """The report and the records of a converted resource, in reading order."""
        records, problem, warnings, ins_dropped = outcome
        self.report.warnings.extend(warnings)
        if ins_dropped:
            self.report.ins_dropped += 1
        if problem:
            self._problem(file_index, location, key, problem)
            return
        for record in records:
            if self.merged.repeats(record):
                self.report.duplicates += 1
                continue
            self.report.counts[type(record).__name__] += 1
            yield record

    def _convert_shared(
        self, pool: concurrent.futures.ProcessPoolExecutor, file_index: int, path: Path, sweep: frozenset[str]
    ) -> Iterator[Record]:
        """Pass 2 of one NDJSON file, its chunks of lines converted by the workers, applied here in order."""
        chunks = parallel.chunks(pool, self.workers, path, parallel.convert_chunk, file_index, sweep)
        bad = {ordinal for bad_file, ordinal in self.indexes.bad if bad_file == file_index}  # workers skip pass 1's
        merged, counts, rebuild = self.merged, self.report.counts, parallel.rebuild
        for units in chunks:
            for unit in units:
                ordinal = unit.ordinal
                if bad and ordinal in bad:
                    continue
                if isinstance(unit, Unreadable):
                    bad.add(ordinal)
                    self._unreadable(file_index, unit)
                    if ordinal < 0:  # the file itself could not be read: as a whole read, stop here
                        chunks.close()
                        return
                    continue
                if not self._is_last_copy(unit.resource_type, unit.key):
                    continue
                if unit.problem or unit.warnings or unit.ins_dropped:
                    outcome = Outcome([rebuild(r) for r in unit.records], unit.problem, unit.warnings, unit.ins_dropped)
                    yield from self._apply(file_index, unit.location, unit.key, outcome)
                    continue
                for record in map(rebuild, unit.records):  # the usual case, as _apply does it
                    if merged.person_ids and merged.repeats(record):
                        self.report.duplicates += 1
                        continue
                    counts[type(record).__name__] += 1
                    yield record


def _location_fr(location: str) -> str:
    return location.replace("line", "ligne").replace("entry", "entrée")

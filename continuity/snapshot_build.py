"""Publisher side: model records → a snapshot database file with exactly the schema of ``snapshotdb``.

The appliance only opens and validates snapshot databases (``continuity.snapshotdb``); building one
happens here, on the publisher, from whatever reader produced the records (``continuity.fhir``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import json
import os
import sqlite3
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuity import search, snapshotdb
from continuity.drugs import fallback as drug_fallback
from continuity.drugs import reference as drug_reference
from continuity.errors import InputError
from continuity.import_report import ImportReport
from continuity.import_summary import ImportSummary
from continuity.model import (
    Address,
    Allergy,
    Appointment,
    Condition,
    DrugResolution,
    Measurement,
    Patient,
    Practice,
    Practitioner,
    RecentPrescription,
    Record,
    Treatment,
)

if TYPE_CHECKING:
    from continuity.drugs.bdpm import Bdpm

try:
    import orjson as _orjson
except ImportError:  # the publisher's extra is not installed: the standard module alone
    _orjson = None  # type: ignore[assignment]


@dataclass
class BuildResult:
    path: Path
    counts: dict[str, int]
    report: ImportReport | None = None  # when built from an export
    warnings: list[str] = field(default_factory=list)


def _json(value: Any) -> str:
    """Compact JSON, non-ASCII as is. orjson (the publisher's extra) writes exactly the same text several
    times faster (names, phones and addresses of every patient pass here); the standard module writes
    what orjson refuses (a lone surrogate) and serves when orjson is not installed."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value).decode()
        except TypeError:
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=4096)
def _json_codes(values: tuple[str, ...]) -> str:
    """A list column that repeats (a medication's codings, a flag list): encoded once per distinct value."""
    return _json(list(values))


def _address_json(address: Address) -> str:
    return _json(
        {"lines": list(address.lines), "postal_code": address.postal_code, "city": address.city,
         "country": address.country}
    )


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def name_key(birth_name: str, given_names: Sequence[str]) -> str:
    """Sort and homonym key: normalised birth name, then first given name."""
    first = given_names[0] if given_names else ""
    return f"{search.normalize(birth_name)} {search.normalize(first)}".strip()


def _violation(record: Record) -> str | None:
    """What in a record the schema's CHECK constraints would refuse (model types rule out the rest)."""
    match record:
        case Practitioner(rpps=rpps) if rpps and not (len(rpps) == 11 and rpps.isascii() and rpps.isdigit()):
            return f"Practitioner {record.id}: RPPS {rpps!r} is not 11 digits"
        case Treatment(renewals_left=renewals) if renewals is not None and not 0 <= renewals <= 99:
            return f"Treatment {record.id}: {renewals} renewals is outside 0-99"
        case Treatment(course=course) if course not in snapshotdb.COURSES:
            return f"Treatment {record.id}: unknown course of therapy {course[:40]!r}"
        case Measurement(value=value) if not 0 < value < 1000:
            return f"Measurement of {record.patient_id}: {record.kind} {value} {record.unit} is outside (0, 1000)"
    return None


class _Writer:
    """Runs the inserts on one background thread, in order, a few batches ahead at most.

    SQLite releases the GIL while it writes, so on two cores the B-tree work of one batch overlaps
    the parsing of the next records on the main thread. The queue is short to keep memory bounded.
    """

    MAX_PENDING = 4

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-writer")
        self.pending: deque[Future[object]] = deque()

    def submit(self, function: Callable[..., object], *args: Any) -> None:
        while len(self.pending) >= self.MAX_PENDING:
            self.pending.popleft().result()  # re-raises a failed insert here, on the main thread
        self.pending.append(self.executor.submit(function, *args))

    def close(self) -> None:
        """Wait for every queued insert; the first failure is raised, the rest are dropped."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pending.clear()
            self.executor.shutdown(wait=True, cancel_futures=True)


class _Builder:
    """Writes records into a fresh database file; records may arrive in any order."""

    def __init__(self, conn: sqlite3.Connection, *, strict: bool,
                 drugs: drug_reference.DrugReference | None = None) -> None:
        self.conn = conn
        # Every treatment is resolved against the drug reference as it is added; equal resolutions
        # share one drug_resolution row (a practice has far fewer distinct lines than treatments).
        self.drugs = drugs
        self.resolution_ids: dict[DrugResolution, int] = {}
        self.rows: dict[str, int] = {}  # patient id -> row
        self.defined: set[str] = set()  # patient ids that have a Patient record
        self.homonym_keys: dict[int, tuple[str, ...]] = {}
        self.sort_keys: dict[int, tuple[str, str, str]] = {}
        self.tokens: dict[int, dict[str, int]] = {}
        self.words_seen: set[str] = set()
        self.names: dict[int, str] = {}  # search.names_text of each patient, by row
        self.practice: Practice | None = None
        self.pending: dict[str, list[tuple[Any, ...]]] = {}
        self.writer = _Writer()
        self.strict = strict
        self.warnings: list[str] = []

    def row_of(self, patient_id: str) -> int:
        row = self.rows.get(patient_id)
        if row is None:
            row = self.rows[patient_id] = len(self.rows) + 1
        return row

    def _queue(self, table: str, values: tuple[Any, ...]) -> None:
        batch = self.pending.setdefault(table, [])
        batch.append(values)
        if len(batch) >= 5000:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.pending):
            batch = self.pending.pop(name, [])
            if batch:
                marks = ",".join("?" * len(batch[0]))
                self.writer.submit(self._insert, f"INSERT OR REPLACE INTO {name} VALUES ({marks})", batch)

    def _insert(self, sql: str, batch: list[tuple[Any, ...]]) -> None:
        # Runs on the writer thread. The cursor is closed here too: one freed later on the main
        # thread would finalise its statement while the writer uses the connection.
        self.conn.executemany(sql, batch).close()

    def add(self, record: Record) -> None:
        problem = _violation(record)
        if problem is not None:
            if self.strict:
                raise InputError(problem, message_fr="Une donnée de l'export est hors des limites admises.")
            self.warnings.append(f"skipped: {problem}")
            return
        match record:
            case Patient():
                self._patient(record)
            case Practitioner():
                self._queue("practitioner", (
                    record.id, record.family_name, _json(list(record.given_names)), record.rpps,
                    record.qualite, record.specialty, _address_json(record.address), record.phone,
                    record.email,
                ))
            case Allergy():
                self._queue("allergy", (
                    record.id, self.row_of(record.patient_id), record.substance, record.code,
                    record.code_system, record.criticality, record.reaction, record.category,
                    record.clinical_status, record.verification_status, _json_codes(record.flags),
                ))
            case Condition():
                self._queue("condition", (
                    record.id, self.row_of(record.patient_id), record.text, record.code,
                    record.code_system, int(record.is_ald), _iso(record.onset_date), record.clinical_status,
                    _json_codes(record.flags),
                ))
            case Treatment():
                drug_id, narcotic = self._resolve(record)
                self._queue("treatment", (
                    record.id, self.row_of(record.patient_id), record.dci, record.strength, record.form,
                    record.route, record.posology, record.brand, _iso(record.start_date),
                    int(record.chronic), int(record.ald_related),
                    record.non_substitution.value if record.non_substitution else None,
                    int(narcotic), record.renewals_left, record.last_prescriber_id,
                    _iso(record.last_prescribed_on), _json_codes(record.codes), record.course,
                    _iso(record.end_date), _json_codes(record.flags), drug_id,
                ))
            case RecentPrescription():
                self._queue("recent_prescription", (
                    record.id, self.row_of(record.patient_id), _iso(record.authored_on),
                    record.prescriber_id, record.text,
                ))
            case Measurement():
                self._queue("measurement", (
                    self.row_of(record.patient_id), record.kind, record.value, record.unit,
                    _iso(record.measured_on),
                ))
            case Appointment():
                self._queue("appointment", (
                    record.id, self.row_of(record.patient_id), record.practitioner_id,
                    record.start.isoformat(), _iso(record.end), record.status, record.description,
                ))
            case Practice():
                self.practice = record

    def _resolve(self, treatment: Treatment) -> tuple[int | None, bool]:
        """The drug_resolution id of a treatment and whether it needs secure paper.

        With a reference, "secure paper" is the reference's conditions; without one, the hand-written
        list of substances (continuity/drugs/fallback.py), by text.
        """
        if self.drugs is None:
            listed = drug_fallback.secure_paper_substance(treatment.dci, treatment.brand, strength=treatment.strength)
            return None, treatment.narcotic or listed is not None
        resolution = self.drugs.resolve(drug_reference.DrugQuery(
            treatment.dci, treatment.strength, treatment.form, treatment.brand, treatment.codes,
        ))
        known = self.resolution_ids.get(resolution)
        if known is None:
            known = self.resolution_ids[resolution] = len(self.resolution_ids) + 1
        return known, resolution.secure_paper

    def _patient(self, patient: Patient) -> None:
        row = self.row_of(patient.id)
        self.defined.add(patient.id)
        key = name_key(patient.birth_name, patient.birth_given_names)
        keys = [key]
        if patient.used_name:
            keys.append(name_key(patient.used_name, [patient.used_given_name or patient.first_given_name]))
        self.homonym_keys[row] = tuple(keys)
        self.sort_keys[row] = (key, _iso(patient.birth_date) or "", patient.id)
        words = self.tokens[row] = search.name_tokens(
            patient.birth_name, patient.used_name, patient.birth_given_names, patient.used_given_name
        )
        names = self.names[row] = search.names_text(words)
        # Each new word's phonetic key is worked out as it appears (search.sound_key keeps the last 64k):
        # ``finish`` then finds them made, instead of computing them all at the very end, alone, while
        # the worker processes of the reader are done and their cores idle.
        seen = self.words_seen
        for word in words:
            if word not in seen:
                seen.add(word)
                search.sound_key(word)
        self._queue("patient", (
            row, patient.id, patient.birth_name, _json(list(patient.birth_given_names)), patient.used_name,
            patient.used_given_name, patient.sex.value, _iso(patient.birth_date), patient.birth_place_insee,
            patient.identity_status.value, patient.ins, patient.ins_oid, _json(list(patient.phones)),
            _address_json(patient.address), int(patient.deceased), _iso(patient.deceased_date),
            int(patient.active), patient.general_practitioner_id, patient.allergy_status.value, key, 0, 0,
            _json_codes(patient.flags), names,
        ))

    def finish(self) -> list[str]:
        self.flush()
        self.writer.close()
        missing = sorted(set(self.rows) - self.defined)
        if missing:
            raise InputError(
                f"{len(missing)} patient(s) referenced but never defined, e.g. {', '.join(missing[:5])}",
                message_fr="Des données font référence à des patients absents de l'export.",
            )
        # Homonyms: other patients sharing a birth-name or used-name key (same name, another person).
        by_key: Counter[str] = Counter()
        for keys in self.homonym_keys.values():
            by_key.update(set(keys))
        # Rank = position in display order (name, then birth date): the search index stores ranks, so
        # its natural order is the order results are shown in, and a lookup can stop at the first page.
        ordered = sorted(self.sort_keys, key=self.sort_keys.__getitem__)
        rank_of = {row: rank for rank, row in enumerate(ordered, start=1)}
        self.conn.executemany(
            "UPDATE patient SET rank = ?, homonyms = ? WHERE row = ?",
            ((rank_of[row], max(by_key[k] for k in keys) - 1, row) for row, keys in self.homonym_keys.items()),
        )
        # In primary-key order (token, quality descending, rank): the B-tree is written sequentially.
        # (The columns are declared in key order too: SQLite 3.40's quick_check misreads NOT NULL
        # columns of a WITHOUT ROWID table whose key order differs from the column order.)
        # Each row carries the patient's names and birth date: a lookup checks its other criteria on
        # the row it walks instead of looking the patient up again (search.names_text).
        # Sorted as plain tuples with the quality negated (a key function would cost a call per row); a
        # patient has a token once, so (token, quality, rank) decide and the names are never compared.
        token_rows = sorted(
            (token, -quality, rank_of[row], self.names[row], self.sort_keys[row][1] or None)
            for row, words in self.tokens.items()
            for token, quality in words.items()
        )
        self.conn.executemany(
            "INSERT INTO name_token VALUES (?, ?, ?, ?, ?)",
            ((token, -negated, rank, names, born) for token, negated, rank, names, born in token_rows),
        )
        # One row per distinct word: its phonetic key (the search's second tier) and whether it is a
        # surname (typo tolerance). Sorted by quality descending within a token: the first is the best.
        best: dict[str, int] = {}
        rows: Counter[str] = Counter()
        for token, negated, *_ in token_rows:
            best.setdefault(token, -negated)
            rows[token] += 1
        self.conn.executemany("INSERT INTO name_word VALUES (?, ?, ?)", sorted(search.word_rows(best)))
        # How many index rows each word has: a lookup sizes a typed word's prefix range from these few
        # rows instead of counting the index itself (search._range_size).
        self.conn.executemany("INSERT INTO name_count VALUES (?, ?)", sorted(rows.items()))
        return self.warnings


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run with the cyclic garbage collector triggered a hundred times less often.

    A build keeps millions of objects alive for its whole length (the reader's indexes, the builder's
    keys) and makes millions more that die young (records, rows); with the default thresholds the
    collector runs thousands of times and walks the long-lived ones again and again: about a third of
    the main process's time at 100,000 patients. Records and rows hold no reference cycles, so nearly
    nothing is left for it to find; it still runs now and then, so a cycle made on the way (an error
    kept with its traceback) is freed all the same.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def build_from_records(
    records: Iterable[Record],
    out: Path,
    *,
    practice_id: str | None = None,
    created_at: dt.datetime | None = None,
    strict: bool = False,
    drugs: Bdpm | None = None,
    import_summary: Callable[[], ImportSummary] | None = None,
) -> BuildResult:
    """Write a snapshot database at `out` (atomically: a temp file renamed into place).

    A record the schema would refuse fails the build when `strict`, else it is skipped and listed in
    `BuildResult.warnings`. With `drugs` (a read BDPM), the snapshot carries the drug reference and
    every treatment its resolution, computed here, once.
    ``import_summary`` is asked for once every record is in (the reader's report is complete then)
    and stored in ``meta`` for the desk's status screen.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".build-", suffix=".db", dir=out.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        # One writer thread uses the connection while the main thread reads records (see _Writer).
        conn = sqlite3.connect(temp, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.executescript(snapshotdb.TABLES)
            resolver = drug_reference.in_memory(drugs) if drugs is not None else None
            builder = _Builder(conn, strict=strict, drugs=resolver)
            conn.execute("BEGIN")
            try:
                with fewer_collections():
                    for record in records:
                        builder.add(record)
                    warnings = builder.finish()
            finally:
                builder.writer.close()
                if resolver is not None:
                    resolver.close()
            if drugs is not None:
                drug_reference.write_tables(conn, drugs)
                conn.executemany(
                    "INSERT INTO drug_resolution VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    ((rid, *drug_reference.resolution_row(r)) for r, rid in builder.resolution_ids.items()),
                )
            practice = builder.practice or Practice(id=practice_id or "practice", name="Cabinet médical")
            meta = {
                "schema_version": str(snapshotdb.SCHEMA_VERSION),
                "practice_id": practice_id or practice.id,
                "practice_name": practice.name,
                "practice_address": _address_json(practice.address),
                "practice_phone": practice.phone,
                "created_at": (created_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
                "drug_reference": drug_reference.describe(drugs) if drugs is not None else "",
            }
            if import_summary is not None:
                meta[snapshotdb.IMPORT_SUMMARY_KEY] = _json(import_summary().header_fields())
            conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            conn.commit()
            conn.executescript(snapshotdb.INDEXES)
            conn.execute(f"PRAGMA user_version = {snapshotdb.SCHEMA_VERSION}")
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in snapshotdb.COUNTED_TABLES}
            conn.commit()
            conn.execute("VACUUM")
        finally:
            conn.close()
        os.replace(temp, out)
    except sqlite3.IntegrityError as error:
        temp.unlink(missing_ok=True)
        # A record the importer let through but the schema's CHECK constraints refuse (e.g. 500
        # renewals): the appliance would refuse such a database, so the publisher must not build it.
        raise InputError(
            f"a record violates the snapshot schema: {error}",
            message_fr="Une donnée de l'export est hors des limites admises : l'instantané n'est pas construit.",
        ) from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return BuildResult(path=out, counts=counts, warnings=warnings)

"""The snapshot database: its schema, building it from model records, and opening it as untrusted input.

The publisher builds a SQLite file with exactly the schema below; the appliance receives its bytes
(inside the envelope), and `open_bytes` validates them before anything reads a row: the schema must
equal ours to the letter (no trigger, view or extra table can ride along), `trusted_schema` is off,
`quick_check` runs (it also enforces the NOT NULL and CHECK constraints on numbers and flags), and
row counts must equal the signed header's. The database then lives only in memory, read-only.
Dates and enumerations are not CHECKed in SQL: evaluating GLOB and IN-list constraints on every row
tripled `quick_check` at 100,000 patients (0.47 s against 0.16 s), and the reader converts each of
them with `date.fromisoformat` / the model's enums anyway, so a bad value is refused when it is read
(SnapshotDatabaseError), never used. docs/snapshot-database.md documents the schema for producers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import tempfile
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuity import search
from continuity.errors import InputError, NotFound, SnapshotDatabaseError
from continuity.model import (
    Address,
    Allergy,
    AllergyStatus,
    Appointment,
    Condition,
    IdentityStatus,
    Measurement,
    NonSubstitutionReason,
    Patient,
    PatientSummary,
    Practice,
    Practitioner,
    RecentPrescription,
    Record,
    Sex,
    Treatment,
)

SCHEMA_VERSION = 2

# A database larger than this is refused before it is even deserialised (100,000 patients ≈ 120 MB).
MAX_DATABASE_BYTES = 1 << 30

_BOOL = "IN (0, 1)"

# The tables, in creation order. Indexes are created after the rows are in (faster builds); the
# validation compares the set of schema entries, so the order they were created in does not matter.
TABLES = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE practitioner (
    id TEXT PRIMARY KEY NOT NULL,
    family_name TEXT NOT NULL,
    given_names TEXT NOT NULL,
    rpps TEXT NOT NULL CHECK (rpps = '' OR (length(rpps) = 11 AND rpps NOT GLOB '*[^0-9]*')),
    qualite TEXT NOT NULL,
    specialty TEXT NOT NULL,
    address TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT NOT NULL
) STRICT;
CREATE TABLE patient (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    birth_name TEXT NOT NULL,
    birth_given_names TEXT NOT NULL,
    used_name TEXT NOT NULL,
    used_given_name TEXT NOT NULL,
    sex TEXT NOT NULL,
    birth_date TEXT,
    birth_place_insee TEXT NOT NULL,
    identity_status TEXT NOT NULL,
    ins TEXT NOT NULL,
    ins_oid TEXT NOT NULL,
    phones TEXT NOT NULL,
    address TEXT NOT NULL,
    deceased INTEGER NOT NULL CHECK (deceased {_BOOL}),
    deceased_date TEXT,
    active INTEGER NOT NULL CHECK (active {_BOOL}),
    general_practitioner_id TEXT NOT NULL,
    allergy_status TEXT NOT NULL,
    name_key TEXT NOT NULL,
    homonyms INTEGER NOT NULL CHECK (homonyms >= 0),
    rank INTEGER NOT NULL
) STRICT;
CREATE TABLE name_token (
    token TEXT NOT NULL,
    quality INTEGER NOT NULL CHECK (quality BETWEEN 0 AND 4),
    rank INTEGER NOT NULL,
    PRIMARY KEY (token, quality DESC, rank)
) STRICT, WITHOUT ROWID;
CREATE TABLE name_word (
    sound TEXT NOT NULL,
    token TEXT NOT NULL,
    surname INTEGER NOT NULL CHECK (surname IN (0, 1)),
    PRIMARY KEY (sound, token)
) STRICT, WITHOUT ROWID;
CREATE TABLE allergy (
    id TEXT PRIMARY KEY NOT NULL,
    patient INTEGER NOT NULL,
    substance TEXT NOT NULL,
    code TEXT NOT NULL,
    code_system TEXT NOT NULL,
    criticality TEXT NOT NULL,
    reaction TEXT NOT NULL,
    category TEXT NOT NULL
) STRICT;
CREATE TABLE condition (
    id TEXT PRIMARY KEY NOT NULL,
    patient INTEGER NOT NULL,
    text TEXT NOT NULL,
    code TEXT NOT NULL,
    code_system TEXT NOT NULL,
    is_ald INTEGER NOT NULL CHECK (is_ald {_BOOL}),
    onset_date TEXT,
    clinical_status TEXT NOT NULL
) STRICT;
CREATE TABLE treatment (
    id TEXT PRIMARY KEY NOT NULL,
    patient INTEGER NOT NULL,
    dci TEXT NOT NULL,
    strength TEXT NOT NULL,
    form TEXT NOT NULL,
    route TEXT NOT NULL,
    posology TEXT NOT NULL,
    brand TEXT NOT NULL,
    start_date TEXT,
    chronic INTEGER NOT NULL CHECK (chronic {_BOOL}),
    ald_related INTEGER NOT NULL CHECK (ald_related {_BOOL}),
    non_substitution TEXT,
    narcotic INTEGER NOT NULL CHECK (narcotic {_BOOL}),
    renewals_left INTEGER CHECK (renewals_left IS NULL OR renewals_left BETWEEN 0 AND 99),
    last_prescriber_id TEXT NOT NULL,
    last_prescribed_on TEXT
) STRICT;
CREATE TABLE recent_prescription (
    id TEXT PRIMARY KEY NOT NULL,
    patient INTEGER NOT NULL,
    authored_on TEXT,
    prescriber_id TEXT NOT NULL,
    text TEXT NOT NULL
) STRICT;
CREATE TABLE measurement (
    patient INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value REAL NOT NULL CHECK (value > 0 AND value < 1000),
    unit TEXT NOT NULL,
    measured_on TEXT
) STRICT;
CREATE TABLE appointment (
    id TEXT PRIMARY KEY NOT NULL,
    patient INTEGER NOT NULL,
    practitioner_id TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT,
    status TEXT NOT NULL,
    description TEXT NOT NULL
) STRICT;
"""

INDEXES = """
CREATE INDEX name_token_by_rank ON name_token (rank, token);
CREATE UNIQUE INDEX patient_rank ON patient (rank);
CREATE INDEX patient_rank_birth ON patient (rank, birth_date);
CREATE INDEX patient_birth_date ON patient (birth_date, rank);
CREATE INDEX patient_ins ON patient (ins);
CREATE INDEX allergy_patient ON allergy (patient);
CREATE INDEX condition_patient ON condition (patient);
CREATE INDEX treatment_patient ON treatment (patient);
CREATE INDEX recent_prescription_patient ON recent_prescription (patient);
CREATE INDEX measurement_patient ON measurement (patient);
CREATE INDEX appointment_patient ON appointment (patient);
CREATE INDEX appointment_start ON appointment (start);
"""

# The counts a snapshot header carries and `open_bytes` checks.
COUNTED_TABLES = (
    "patient",
    "practitioner",
    "allergy",
    "condition",
    "treatment",
    "recent_prescription",
    "measurement",
    "appointment",
)


def _expected_schema() -> frozenset[tuple[str, str, str, str | None]]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(TABLES + INDEXES)
        return frozenset(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        conn.close()


EXPECTED_SCHEMA = _expected_schema()


# --- building (publisher side) --------------------------------------------------------------------


@dataclass
class BuildResult:
    path: Path
    counts: dict[str, int]
    report: Any = None  # fhir.ImportReport when built from FHIR sources
    warnings: list[str] = field(default_factory=list)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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

    def __init__(self, conn: sqlite3.Connection, *, strict: bool) -> None:
        self.conn = conn
        self.rows: dict[str, int] = {}  # patient id -> row
        self.defined: set[str] = set()  # patient ids that have a Patient record
        self.homonym_keys: dict[int, tuple[str, ...]] = {}
        self.sort_keys: dict[int, tuple[str, str, str]] = {}
        self.tokens: dict[int, dict[str, int]] = {}
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
                ))
            case Condition():
                self._queue("condition", (
                    record.id, self.row_of(record.patient_id), record.text, record.code,
                    record.code_system, int(record.is_ald), _iso(record.onset_date), record.clinical_status,
                ))
            case Treatment():
                self._queue("treatment", (
                    record.id, self.row_of(record.patient_id), record.dci, record.strength, record.form,
                    record.route, record.posology, record.brand, _iso(record.start_date),
                    int(record.chronic), int(record.ald_related),
                    record.non_substitution.value if record.non_substitution else None,
                    int(record.narcotic), record.renewals_left, record.last_prescriber_id,
                    _iso(record.last_prescribed_on),
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

    def _patient(self, patient: Patient) -> None:
        row = self.row_of(patient.id)
        self.defined.add(patient.id)
        key = name_key(patient.birth_name, patient.birth_given_names)
        keys = [key]
        if patient.used_name:
            keys.append(name_key(patient.used_name, [patient.used_given_name or patient.first_given_name]))
        self.homonym_keys[row] = tuple(keys)
        self.sort_keys[row] = (key, _iso(patient.birth_date) or "", patient.id)
        self.tokens[row] = search.name_tokens(
            patient.birth_name, patient.used_name, patient.birth_given_names, patient.used_given_name
        )
        self._queue("patient", (
            row, patient.id, patient.birth_name, _json(list(patient.birth_given_names)), patient.used_name,
            patient.used_given_name, patient.sex.value, _iso(patient.birth_date), patient.birth_place_insee,
            patient.identity_status.value, patient.ins, patient.ins_oid, _json(list(patient.phones)),
            _address_json(patient.address), int(patient.deceased), _iso(patient.deceased_date),
            int(patient.active), patient.general_practitioner_id, patient.allergy_status.value, key, 0, 0,
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
        token_rows = sorted(
            ((token, quality, rank_of[row]) for row, words in self.tokens.items() for token, quality in words.items()),
            key=lambda row: (row[0], -row[1], row[2]),
        )
        self.conn.executemany("INSERT INTO name_token VALUES (?, ?, ?)", token_rows)
        # One row per distinct word: its phonetic key (the search's second tier) and whether it is a surname.
        best: dict[str, int] = {}
        for token, quality, _ in token_rows:
            best.setdefault(token, quality)  # sorted by quality descending within a token: the first is the best
        self.conn.executemany("INSERT INTO name_word VALUES (?, ?, ?)", sorted(search.word_rows(best)))
        return self.warnings


def build_from_records(
    records: Iterable[Record],
    out: Path,
    *,
    practice_id: str | None = None,
    created_at: dt.datetime | None = None,
    strict: bool = False,
) -> BuildResult:
    """Write a snapshot database at `out` (atomically: a temp file renamed into place).

    A record the schema would refuse fails the build when `strict`, else it is skipped and listed in
    `BuildResult.warnings`.
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
            conn.executescript(TABLES)
            builder = _Builder(conn, strict=strict)
            conn.execute("BEGIN")
            try:
                for record in records:
                    builder.add(record)
                warnings = builder.finish()
            finally:
                builder.writer.close()
            practice = builder.practice or Practice(id=practice_id or "practice", name="Cabinet médical")
            meta = {
                "schema_version": str(SCHEMA_VERSION),
                "practice_id": practice_id or practice.id,
                "practice_name": practice.name,
                "practice_address": _address_json(practice.address),
                "practice_phone": practice.phone,
                "created_at": (created_at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
            }
            conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            conn.commit()
            conn.executescript(INDEXES)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED_TABLES}
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


def build(
    sources: Sequence[Path],
    out: Path,
    *,
    strict: bool = False,
    practice_id: str | None = None,
    created_at: dt.datetime | None = None,
) -> BuildResult:
    """Read FHIR sources (files or Bulk NDJSON folders) and write the snapshot database."""
    from continuity import fhir  # the appliance never needs the FHIR reader, so load it lazily

    report = fhir.ImportReport()
    result = build_from_records(
        fhir.read_records(sources, strict=strict, report=report),
        out,
        practice_id=practice_id,
        created_at=created_at,
        strict=strict,
    )
    result.report = report
    return result


# --- opening (appliance side) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchResult:
    patient: Patient
    score: int  # higher is a better match (whole words, whole surnames)
    homonyms: int  # other patients with the same name: the date of birth must be checked
    close: bool = False  # second tier ("orthographe proche"): the name sounds alike or is one error away


@dataclass(frozen=True, slots=True)
class AgendaEntry:
    appointment: Appointment
    patient: Patient


def open_bytes(data: bytes, *, expected_counts: Mapping[str, int] | None = None) -> SnapshotDB:
    """Validate an untrusted database image and return it open, read-only, in memory."""
    if len(data) > MAX_DATABASE_BYTES:
        raise SnapshotDatabaseError(f"database of {len(data)} bytes exceeds the {MAX_DATABASE_BYTES} cap")
    if not data.startswith(b"SQLite format 3\x00"):
        raise SnapshotDatabaseError("not a SQLite database (bad magic)")
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        # Before the first byte of the untrusted image is parsed: no schema-defined function may run.
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA cell_size_check = ON")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1 << 20)
        conn.deserialize(data)
        _validate(conn, expected_counts)
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.DatabaseError as error:
        conn.close()
        raise SnapshotDatabaseError(f"database refused: {error}") from error
    except BaseException:
        conn.close()
        raise
    return SnapshotDB(conn)


def open_file(path: Path, *, expected_counts: Mapping[str, int] | None = None) -> SnapshotDB:
    """Open a plain snapshot database file (publisher checks, `--db` on the command line)."""
    try:
        size = path.stat().st_size
        if size > MAX_DATABASE_BYTES:
            raise SnapshotDatabaseError(f"{path}: {size} bytes exceeds the {MAX_DATABASE_BYTES} cap")
        data = path.read_bytes()
    except OSError as error:
        raise SnapshotDatabaseError(
            f"{path}: cannot read ({error.strerror})", message_fr=f"Fichier illisible : {path}"
        ) from error
    return open_bytes(data, expected_counts=expected_counts)


def _validate(conn: sqlite3.Connection, expected_counts: Mapping[str, int] | None) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise SnapshotDatabaseError(f"schema version {version}, expected {SCHEMA_VERSION}")
    found = frozenset(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    if found != EXPECTED_SCHEMA:
        extra = sorted(f"{t} {n}" for t, n, _, _ in found - EXPECTED_SCHEMA)
        missing = sorted(f"{t} {n}" for t, n, _, _ in EXPECTED_SCHEMA - found)
        raise SnapshotDatabaseError(
            f"schema differs from version {SCHEMA_VERSION}: unexpected {extra or 'nothing'}, "
            f"missing or altered {missing or 'nothing'}"
        )
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(20)")]
    if problems != ["ok"]:
        raise SnapshotDatabaseError(f"quick_check failed: {'; '.join(problems)}")
    required_meta = {"schema_version", "practice_id", "practice_name", "created_at"}
    keys = {row[0] for row in conn.execute("SELECT key FROM meta")}
    if not required_meta <= keys:
        raise SnapshotDatabaseError(f"meta lacks {sorted(required_meta - keys)}")
    if expected_counts is not None:
        for table in COUNTED_TABLES:
            actual = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if expected_counts.get(table) != actual:
                raise SnapshotDatabaseError(
                    f"{table}: {actual} rows, the signed header says {expected_counts.get(table)}"
                )


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _measurement_kind(value: str) -> str:
    if value not in ("weight", "height"):
        raise ValueError(f"unknown measurement kind {value!r}")
    return value


def _address(value: str) -> Address:
    data = json.loads(value)
    return Address(
        lines=tuple(str(line) for line in data.get("lines", [])),
        postal_code=str(data.get("postal_code", "")),
        city=str(data.get("city", "")),
        country=str(data.get("country", "")),
    )


def _strings(value: str) -> tuple[str, ...]:
    data = json.loads(value)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list")
    return tuple(str(item) for item in data)


_PATIENT_COLUMNS = (
    "row, id, birth_name, birth_given_names, used_name, used_given_name, sex, birth_date, "
    "birth_place_insee, identity_status, ins, ins_oid, phones, address, deceased, deceased_date, active, "
    "general_practitioner_id, allergy_status, homonyms, rank"
)


class SnapshotDB:
    """A validated snapshot, open read-only in memory. Every method returns model objects."""

    # Patients of recent result pages, by rank: typing "dup", "dupo", "dupon" shows mostly the same
    # patients, and building them is half of a search's time. Cleared on close with the data.
    RESULT_CACHE_SIZE = 4096

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.meta: dict[str, str] = dict(conn.execute("SELECT key, value FROM meta"))
        self._results: OrderedDict[int, tuple[Patient, int]] = OrderedDict()
        self._surnames: search.SurnameIndex | None = None
        self._surnames_lock = threading.Lock()

    def close(self) -> None:
        self._results.clear()
        self._surnames = None
        self._conn.close()

    def surnames(self) -> search.SurnameIndex:
        """The distinct surnames for typo tolerance, read once (≈ 40 ms at 100,000 patients)."""
        with self._surnames_lock:
            if self._surnames is None:
                self._surnames = search.SurnameIndex.load(self._conn)
            return self._surnames

    def warm_up(self) -> None:
        """Read ahead what the first searches need (call it from a worker thread after unlock)."""
        self.surnames()

    @property
    def created_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.meta["created_at"])

    @property
    def practice_name(self) -> str:
        return self.meta.get("practice_name", "")

    def counts(self) -> dict[str, int]:
        return {t: self._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED_TABLES}

    # Rows passed the NOT NULL and numeric CHECK constraints, but dates, enums, JSON columns and free text are
    # untrusted: a conversion failure becomes a SnapshotDatabaseError, never a crash.
    def _rows(self, sql: str, params: Sequence[object] = ()) -> Iterator[sqlite3.Row]:
        cursor = self._conn.execute(sql, params)
        cursor.row_factory = sqlite3.Row
        yield from cursor

    @staticmethod
    def _patient(row: sqlite3.Row) -> Patient:
        try:
            return Patient(
                id=row["id"],
                birth_name=row["birth_name"],
                birth_given_names=_strings(row["birth_given_names"]),
                used_name=row["used_name"],
                used_given_name=row["used_given_name"],
                sex=Sex(row["sex"]),
                birth_date=_date(row["birth_date"]),
                birth_place_insee=row["birth_place_insee"],
                identity_status=IdentityStatus(row["identity_status"]),
                ins=row["ins"],
                ins_oid=row["ins_oid"],
                phones=_strings(row["phones"]),
                address=_address(row["address"]),
                deceased=bool(row["deceased"]),
                deceased_date=_date(row["deceased_date"]),
                active=bool(row["active"]),
                general_practitioner_id=row["general_practitioner_id"],
                allergy_status=AllergyStatus(row["allergy_status"]),
            )
        except (ValueError, TypeError, AttributeError) as error:
            raise SnapshotDatabaseError(f"patient row {row['row']}: {error}") from error

    def search(self, text: str, limit: int = search.DEFAULT_LIMIT) -> list[SearchResult]:
        query = search.parse_query(text)
        if query.is_empty:
            return []
        hits = search.find(self._conn, query, limit, self.surnames())
        cache = self._results
        missing = [hit.rank for hit in hits if hit.rank not in cache]
        if missing:
            marks = ",".join("?" * len(missing))
            for row in self._rows(f"SELECT {_PATIENT_COLUMNS} FROM patient WHERE rank IN ({marks})", missing):
                cache[row["rank"]] = (self._patient(row), row["homonyms"])
        results = []
        for hit in hits:
            if (entry := cache.get(hit.rank)) is not None:
                cache.move_to_end(hit.rank)
                results.append(SearchResult(entry[0], hit.score, entry[1], close=hit.close))
        while len(cache) > self.RESULT_CACHE_SIZE:
            cache.popitem(last=False)
        return results

    def _patient_row(self, patient_id: str) -> sqlite3.Row:
        for row in self._rows(f"SELECT {_PATIENT_COLUMNS} FROM patient WHERE id = ?", (patient_id,)):
            return row
        raise NotFound(f"no patient with id {patient_id!r}", message_fr="Patient introuvable dans les données.")

    def patient(self, patient_id: str) -> Patient:
        return self._patient(self._patient_row(patient_id))

    def homonyms(self, patient_id: str) -> int:
        return int(self._patient_row(patient_id)["homonyms"])

    def practitioners(self) -> list[Practitioner]:
        return [self._practitioner(r) for r in self._rows("SELECT * FROM practitioner ORDER BY family_name, id")]

    def practitioner(self, practitioner_id: str) -> Practitioner | None:
        for row in self._rows("SELECT * FROM practitioner WHERE id = ?", (practitioner_id,)):
            return self._practitioner(row)
        return None

    @staticmethod
    def _practitioner(row: sqlite3.Row) -> Practitioner:
        try:
            return Practitioner(
                id=row["id"], family_name=row["family_name"], given_names=_strings(row["given_names"]),
                rpps=row["rpps"], qualite=row["qualite"], specialty=row["specialty"],
                address=_address(row["address"]), phone=row["phone"], email=row["email"],
            )
        except (ValueError, TypeError, AttributeError) as error:
            raise SnapshotDatabaseError(f"practitioner {row['id']}: {error}") from error

    def summary(self, patient_id: str, *, today: dt.date | None = None) -> PatientSummary:
        row = self._patient_row(patient_id)
        patient = self._patient(row)
        key = (row["row"],)
        today = today or dt.date.today()
        try:
            allergies = tuple(
                Allergy(r["id"], patient_id, r["substance"], r["code"], r["code_system"], r["criticality"],
                        r["reaction"], r["category"])
                for r in self._rows("SELECT * FROM allergy WHERE patient = ? ORDER BY substance", key)
            )
            conditions = tuple(
                Condition(r["id"], patient_id, r["text"], r["code"], r["code_system"], bool(r["is_ald"]),
                          _date(r["onset_date"]), r["clinical_status"])
                for r in self._rows(
                    "SELECT * FROM condition WHERE patient = ? ORDER BY is_ald DESC, onset_date DESC, text", key
                )
            )
            treatments = tuple(
                Treatment(
                    id=r["id"], patient_id=patient_id, dci=r["dci"], strength=r["strength"], form=r["form"],
                    route=r["route"], posology=r["posology"], brand=r["brand"],
                    start_date=_date(r["start_date"]), chronic=bool(r["chronic"]),
                    ald_related=bool(r["ald_related"]),
                    non_substitution=NonSubstitutionReason(r["non_substitution"]) if r["non_substitution"] else None,
                    narcotic=bool(r["narcotic"]), renewals_left=r["renewals_left"],
                    last_prescriber_id=r["last_prescriber_id"], last_prescribed_on=_date(r["last_prescribed_on"]),
                )
                for r in self._rows(
                    "SELECT * FROM treatment WHERE patient = ? ORDER BY ald_related DESC, dci", key
                )
            )
            recent = tuple(
                RecentPrescription(r["id"], patient_id, _date(r["authored_on"]), r["prescriber_id"], r["text"])
                for r in self._rows(
                    "SELECT * FROM recent_prescription WHERE patient = ? ORDER BY authored_on DESC LIMIT 20", key
                )
            )
            measurements = tuple(
                Measurement(patient_id, _measurement_kind(r["kind"]), r["value"], r["unit"], _date(r["measured_on"]))
                for r in self._rows(
                    "SELECT * FROM measurement WHERE patient = ? ORDER BY measured_on DESC", key
                )
            )
            appointments = tuple(
                self._appointment(r, patient_id)
                for r in self._rows(
                    "SELECT * FROM appointment WHERE patient = ? AND start >= ? ORDER BY start",
                    (row["row"], today.isoformat()),
                )
            )
        except (ValueError, TypeError) as error:
            raise SnapshotDatabaseError(f"patient {patient_id}: unreadable record: {error}") from error
        gp = self.practitioner(patient.general_practitioner_id) if patient.general_practitioner_id else None
        return PatientSummary(patient, allergies, conditions, treatments, recent, measurements, gp, appointments)

    @staticmethod
    def _appointment(r: sqlite3.Row, patient_id: str) -> Appointment:
        return Appointment(
            id=r["id"], patient_id=patient_id, practitioner_id=r["practitioner_id"],
            start=dt.datetime.fromisoformat(r["start"]),
            end=dt.datetime.fromisoformat(r["end"]) if r["end"] else None,
            status=r["status"], description=r["description"],
        )

    def agenda(self, first_day: dt.date, last_day: dt.date) -> list[AgendaEntry]:
        """Appointments from the first to the last day included, by time then practitioner."""
        end = (last_day + dt.timedelta(days=1)).isoformat()
        try:
            appointments = [
                (r["patient"], r)
                for r in self._rows(
                    "SELECT * FROM appointment WHERE start >= ? AND start < ? ORDER BY start, practitioner_id",
                    (first_day.isoformat(), end),
                )
            ]
            wanted = sorted({row for row, _ in appointments})
            patients: dict[int, Patient] = {}
            for chunk in range(0, len(wanted), 500):
                part = wanted[chunk:chunk + 500]
                sql = f"SELECT {_PATIENT_COLUMNS} FROM patient WHERE row IN ({','.join('?' * len(part))})"
                patients.update((r["row"], self._patient(r)) for r in self._rows(sql, part))
            return [
                AgendaEntry(self._appointment(r, patients[row].id), patients[row])
                for row, r in appointments if row in patients
            ]
        except (ValueError, TypeError) as error:
            raise SnapshotDatabaseError(f"agenda: unreadable appointment: {error}") from error

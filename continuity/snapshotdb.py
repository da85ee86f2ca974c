"""The snapshot database on the appliance: its schema, and opening it as untrusted input.

The publisher builds a SQLite file with exactly the schema below (``continuity.snapshot_build``); the
appliance receives its bytes (inside the envelope), and `open_bytes` validates them before anything
reads a row: the schema must equal ours to the letter (no trigger, view or extra table can ride
along), `trusted_schema` is off, `quick_check` runs (it also enforces the NOT NULL and CHECK
constraints on numbers and flags), and row counts must equal the signed header's. The database then
lives only in memory, read-only.
Dates and enumerations are not CHECKed in SQL: evaluating GLOB and IN-list constraints on every row
tripled `quick_check` at 100,000 patients (0.47 s against 0.16 s), and the reader converts each of
them with `date.fromisoformat` / the model's enums anyway, so a bad value is refused when it is read
(SnapshotDatabaseError), never used. docs/snapshot-database.md documents the schema for producers.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import json.scanner
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from continuity import search
from continuity.drugs import reference as drug_reference
from continuity.errors import NotFound, SnapshotDatabaseError
from continuity.import_summary import ImportSummary, SummaryError
from continuity.model import (
    Address,
    Allergy,
    AllergyStatus,
    Appointment,
    Condition,
    DrugResolution,
    IdentityStatus,
    Measurement,
    NonSubstitutionReason,
    Patient,
    PatientSummary,
    Practitioner,
    RecentPrescription,
    Sex,
    Treatment,
)

# 2: flags, allergy statuses, treatment codes/course/end date; 3: the drug reference tables and
# treatment.drug; 4: name_word (phonetic keys), patient deceased_date, the (rank, birth_date) index;
# 5: the patient's names and birth date on every name_token row and patient.names, for lookups that
# check every criterion on the index row they walk, and name_count (docs/snapshot-database.md).
SCHEMA_VERSION = 5

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
    rank INTEGER NOT NULL,
    flags TEXT NOT NULL,
    names TEXT NOT NULL
) STRICT;
CREATE TABLE name_token (
    token TEXT NOT NULL,
    quality INTEGER NOT NULL CHECK (quality BETWEEN 0 AND 4),
    rank INTEGER NOT NULL,
    names TEXT NOT NULL,
    birth_date TEXT,
    PRIMARY KEY (token, quality DESC, rank)
) STRICT, WITHOUT ROWID;
CREATE TABLE name_count (
    token TEXT PRIMARY KEY,
    rows INTEGER NOT NULL CHECK (rows > 0)
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
    category TEXT NOT NULL,
    clinical_status TEXT NOT NULL,
    verification_status TEXT NOT NULL,
    flags TEXT NOT NULL
) STRICT;
CREATE TABLE condition (
    id TEXT PRIMARY KEY NOT NULL,
    patient INTEGER NOT NULL,
    text TEXT NOT NULL,
    code TEXT NOT NULL,
    code_system TEXT NOT NULL,
    is_ald INTEGER NOT NULL CHECK (is_ald {_BOOL}),
    onset_date TEXT,
    clinical_status TEXT NOT NULL,
    flags TEXT NOT NULL
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
    last_prescribed_on TEXT,
    codes TEXT NOT NULL,
    course TEXT NOT NULL,
    end_date TEXT,
    flags TEXT NOT NULL,
    drug INTEGER
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
CREATE UNIQUE INDEX patient_rank ON patient (rank);
CREATE INDEX patient_birth_names ON patient (birth_date, rank, names);
CREATE INDEX patient_ins ON patient (ins);
CREATE INDEX allergy_patient ON allergy (patient);
CREATE INDEX condition_patient ON condition (patient);
CREATE INDEX treatment_patient ON treatment (patient);
CREATE INDEX recent_prescription_patient ON recent_prescription (patient);
CREATE INDEX measurement_patient ON measurement (patient);
CREATE INDEX appointment_patient ON appointment (patient);
CREATE INDEX appointment_start ON appointment (start);
"""

# The drug reference (continuity/drugs/reference.py): empty tables when the publisher was given none.
TABLES += drug_reference.TABLES
INDEXES += drug_reference.INDEXES

# The meta key of the publisher's import summary (counts only: continuity/import_summary.py).
IMPORT_SUMMARY_KEY = "import_summary"

# Treatment.course: what the source says of the course of therapy ("" when it does not say).
COURSES = frozenset({"", "acute", "continuous", "seasonal"})

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
    *drug_reference.COUNTED_TABLES,
)


def _expected_schema() -> frozenset[tuple[str, str, str, str | None]]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(TABLES + INDEXES)
        return frozenset(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    finally:
        conn.close()


EXPECTED_SCHEMA = _expected_schema()


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
    _validate_drugs(conn)


def _validate_drugs(conn: sqlite3.Connection) -> None:
    """A snapshot with a drug reference resolves every treatment, and each resolution is readable.

    One pass over the treatments (the resolutions are few and their ids contiguous from 1).
    """
    has_reference = conn.execute("SELECT 1 FROM drug_product LIMIT 1").fetchone() is not None
    first, last, resolutions = conn.execute("SELECT min(id), max(id), count(*) FROM drug_resolution").fetchone()
    if resolutions and (first != 1 or last != resolutions):
        raise SnapshotDatabaseError(f"drug_resolution ids are not 1..{resolutions}")
    total, resolved, dangling = conn.execute(
        "SELECT count(*), count(drug), count(*) FILTER (WHERE drug < 1 OR drug > ?) FROM treatment", (resolutions,)
    ).fetchone()
    unresolved = total - resolved
    if has_reference and unresolved:
        raise SnapshotDatabaseError(f"drug reference present but {unresolved} treatment(s) carry no resolution")
    if not has_reference and resolved:
        raise SnapshotDatabaseError(f"{resolved} treatment(s) carry a drug resolution but there is no reference")
    if dangling:
        raise SnapshotDatabaseError(f"{dangling} treatment(s) point to a missing drug_resolution row")


def _date(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


def _course(value: str) -> str:
    if value not in COURSES:
        raise ValueError(f"unknown course of therapy {value[:40]!r}")
    return value


def _measurement_kind(value: str) -> str:
    if value not in ("weight", "height"):
        raise ValueError(f"unknown measurement kind {value!r}")
    return value


_SCAN_JSON = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed: the context is a decoder


def _json(text: str) -> Any:
    """`json.loads` for the short JSON texts of a row, at a quarter of its cost.

    A search builds up to 50 patients per keystroke, three JSON texts each, and `json.loads`'s
    wrapper costs more than the parsing. The decoder's C scanner reads one value; when it does not
    consume the whole text (whitespace around it, an error), `json.loads` decides, with its errors.
    """
    try:
        value, end = _SCAN_JSON(text, 0)
    except StopIteration:
        end = -1
    return value if end == len(text) else json.loads(text)


def _address(value: str) -> Address:
    data = _json(value)
    return Address(
        lines=tuple(str(line) for line in data.get("lines", [])),
        postal_code=str(data.get("postal_code", "")),
        city=str(data.get("city", "")),
        country=str(data.get("country", "")),
    )


def _strings(value: str) -> tuple[str, ...]:
    if value == "[]":  # most patients' flags, many phones: no need to parse
        return ()
    data = _json(value)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list")
    return tuple(map(str, data))


_Enum = TypeVar("_Enum", bound=enum.Enum)


def _member(kind: type[_Enum], values: Mapping[object, _Enum], value: object) -> _Enum:
    """The enum member of a stored value: a dict lookup, several times cheaper than calling the enum."""
    try:
        return values[value]
    except KeyError:
        raise ValueError(f"{value!r} is not a valid {kind.__name__}") from None


_SEXES: dict[object, Sex] = {member.value: member for member in Sex}
_IDENTITY_STATUSES: dict[object, IdentityStatus] = {member.value: member for member in IdentityStatus}
_ALLERGY_STATUSES: dict[object, AllergyStatus] = {member.value: member for member in AllergyStatus}


_PATIENT_COLUMNS = (
    "row, id, birth_name, birth_given_names, used_name, used_given_name, sex, birth_date, "
    "birth_place_insee, identity_status, ins, ins_oid, phones, address, deceased, deceased_date, active, "
    "general_practitioner_id, allergy_status, homonyms, rank, flags"
)
# Positions in _PATIENT_COLUMNS of the columns read outside `_patient`.
_PATIENT_ROW, _PATIENT_HOMONYMS, _PATIENT_RANK = 0, 19, 20


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
        self._resolutions: dict[int, DrugResolution] = {}
        for row in conn.execute("SELECT * FROM drug_resolution"):
            try:
                self._resolutions[row[0]] = drug_reference.resolution_from_row(row[1:])
            except (ValueError, TypeError) as error:
                raise SnapshotDatabaseError(f"drug_resolution {row[0]}: {error}") from error
        has_reference = conn.execute("SELECT 1 FROM drug_product LIMIT 1").fetchone() is not None
        self._drugs = drug_reference.DrugReference(conn) if has_reference else None

    def close(self) -> None:
        self._results.clear()
        self._surnames = None
        self._resolutions.clear()
        if self._drugs is not None:
            self._drugs.close()
        self._conn.close()

    def drug_reference(self) -> drug_reference.DrugReference | None:
        """The snapshot's drug reference, or None when the publisher was given none (fallback rules apply)."""
        return self._drugs

    def surnames(self) -> search.SurnameIndex:
        """The surname words for typo tolerance, read once per unlock (a few ms)."""
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

    def import_summary(self) -> ImportSummary | None:
        """What the publisher's import report said of this export (None when the snapshot carries none)."""
        text = self.meta.get(IMPORT_SUMMARY_KEY)
        if text is None:
            return None
        try:
            return ImportSummary.from_header(json.loads(text))
        except (ValueError, SummaryError) as error:
            raise SnapshotDatabaseError(f"meta {IMPORT_SUMMARY_KEY}: {error}") from error

    # Rows passed the NOT NULL and numeric CHECK constraints, but dates, enums, JSON columns and free text are
    # untrusted: a conversion failure becomes a SnapshotDatabaseError, never a crash.
    def _rows(self, sql: str, params: Sequence[object] = ()) -> Iterator[sqlite3.Row]:
        cursor = self._conn.execute(sql, params)
        cursor.row_factory = sqlite3.Row
        yield from cursor

    @staticmethod
    def _patient(row: Sequence[Any]) -> Patient:
        # By position (the order of _PATIENT_COLUMNS): a search builds up to 50 of these per keystroke,
        # and reading a sqlite3.Row by name, the enums' constructors and the JSON parser were most of it.
        try:
            return Patient(
                id=row[1],
                birth_name=row[2],
                birth_given_names=_strings(row[3]),
                used_name=row[4],
                used_given_name=row[5],
                sex=_member(Sex, _SEXES, row[6]),
                birth_date=_date(row[7]),
                birth_place_insee=row[8],
                identity_status=_member(IdentityStatus, _IDENTITY_STATUSES, row[9]),
                ins=row[10],
                ins_oid=row[11],
                phones=_strings(row[12]),
                address=_address(row[13]),
                deceased=bool(row[14]),
                deceased_date=_date(row[15]),
                active=bool(row[16]),
                general_practitioner_id=row[17],
                allergy_status=_member(AllergyStatus, _ALLERGY_STATUSES, row[18]),
                flags=_strings(row[21]),
            )
        except (ValueError, TypeError, AttributeError) as error:
            raise SnapshotDatabaseError(f"patient row {row[_PATIENT_ROW]}: {error}") from error

    def search(self, text: str, limit: int = search.DEFAULT_LIMIT) -> list[SearchResult]:
        query = search.parse_query(text)
        if query.is_empty:
            return []
        hits = search.find(self._conn, query, limit, self.surnames())
        cache = self._results
        missing = [hit.rank for hit in hits if hit.rank not in cache]
        if missing:
            marks = ",".join("?" * len(missing))
            sql = f"SELECT {_PATIENT_COLUMNS} FROM patient WHERE rank IN ({marks})"
            for row in self._conn.execute(sql, missing):  # plain tuples: `_patient` reads by position
                cache[row[_PATIENT_RANK]] = (self._patient(row), row[_PATIENT_HOMONYMS])
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
                        r["reaction"], r["category"], clinical_status=r["clinical_status"],
                        verification_status=r["verification_status"], flags=_strings(r["flags"]))
                for r in self._rows("SELECT * FROM allergy WHERE patient = ? ORDER BY substance", key)
            )
            conditions = tuple(
                Condition(r["id"], patient_id, r["text"], r["code"], r["code_system"], bool(r["is_ald"]),
                          _date(r["onset_date"]), r["clinical_status"], flags=_strings(r["flags"]))
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
                    codes=_strings(r["codes"]), course=_course(r["course"]), end_date=_date(r["end_date"]),
                    flags=_strings(r["flags"]), drug=self._resolution(r["drug"]),
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

    def _resolution(self, drug_id: int | None) -> DrugResolution | None:
        if drug_id is None:
            return None
        resolution = self._resolutions.get(drug_id)
        if resolution is None:  # validated at open; kept as a guard against a changed database
            raise SnapshotDatabaseError(f"treatment points to missing drug_resolution {drug_id}")
        return resolution

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
                patients.update((r[_PATIENT_ROW], self._patient(r)) for r in self._conn.execute(sql, part))
            return [
                AgendaEntry(self._appointment(r, patients[row].id), patients[row])
                for row, r in appointments if row in patients
            ]
        except (ValueError, TypeError) as error:
            raise SnapshotDatabaseError(f"agenda: unreadable appointment: {error}") from error

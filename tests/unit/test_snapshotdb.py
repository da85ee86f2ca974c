"""The snapshot database: build, validate as untrusted input, search, summary, agenda."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest

from continuity import snapshot_build, snapshotdb
from continuity.errors import InputError, NotFound, SnapshotDatabaseError
from continuity.model import AllergyStatus, NonSubstitutionReason, Sex, Treatment
from tests.factories import patient, small_practice

TODAY = dt.date(2026, 11, 28)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    result = snapshot_build.build_from_records(small_practice(TODAY), tmp_path / "snapshot.db")
    return result.path


@pytest.fixture
def db(db_path: Path) -> snapshotdb.SnapshotDB:
    return snapshotdb.open_file(db_path)


def ids(results: list[snapshotdb.SearchResult]) -> list[str]:
    return [r.patient.id for r in results]


# --- building ---------------------------------------------------------------------------------------


def test_build_reports_counts_and_meta(db_path: Path) -> None:
    result = snapshot_build.build_from_records(small_practice(TODAY), db_path.with_name("again.db"))
    assert result.counts["patient"] == 11
    assert result.counts["treatment"] == 2
    assert result.counts["appointment"] == 3
    db = snapshotdb.open_file(result.path, expected_counts=result.counts)
    assert db.practice_name == "Cabinet des Lilas"
    assert db.counts() == result.counts


def test_build_refuses_records_pointing_to_an_undefined_patient(tmp_path: Path) -> None:
    records = [*small_practice(TODAY), Treatment("trt-x", "pat-ghost", "paracétamol")]
    with pytest.raises(InputError, match="pat-ghost"):
        snapshot_build.build_from_records(records, tmp_path / "out.db")
    assert not (tmp_path / "out.db").exists()
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_a_record_outside_the_schema_limits_is_skipped_or_fails_a_strict_build(tmp_path: Path) -> None:
    records = [*small_practice(TODAY), Treatment("trt-x", "pat-qual", "paracétamol", renewals_left=500)]
    with pytest.raises(InputError, match="trt-x: 500 renewals"):
        snapshot_build.build_from_records(records, tmp_path / "out.db", strict=True)
    assert list(tmp_path.iterdir()) == []
    lenient = snapshot_build.build_from_records(records, tmp_path / "out.db")
    assert lenient.counts["treatment"] == 2
    assert lenient.warnings == ["skipped: Treatment trt-x: 500 renewals is outside 0-99"]


def test_an_insert_failing_on_the_writer_thread_surfaces_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bypass the Python-side check so the CHECK constraint itself fails, on the writer thread.
    monkeypatch.setattr(snapshot_build, "_violation", lambda record: None)
    records = [*small_practice(TODAY), Treatment("trt-x", "pat-qual", "paracétamol", renewals_left=500)]
    with pytest.raises(InputError, match="CHECK constraint failed"):
        snapshot_build.build_from_records(records, tmp_path / "out.db")
    assert list(tmp_path.iterdir()) == []


# --- search -----------------------------------------------------------------------------------------


def test_exact_name_ranks_before_prefix(db: snapshotdb.SnapshotDB) -> None:
    found = ids(db.search("martin"))
    assert found == ["pat-martin-1", "pat-martin-2", "pat-martinez"]
    scores = [r.score for r in db.search("martin")]
    assert scores[0] == scores[1] > scores[2]


def test_birth_name_with_apostrophe_ranks_before_the_same_used_name(tmp_path: Path) -> None:
    records = [*small_practice(TODAY), patient("CAMARA", "Awa", "1953-10-06", id="pat-camara", used_name="N'DIAYE")]
    db = snapshotdb.open_file(snapshot_build.build_from_records(records, tmp_path / "nd.db").path)
    assert ids(db.search("n'diaye")) == ["pat-ndiaye", "pat-camara"]


def test_whole_birth_names_rank_before_used_names_compounds_and_given_names(tmp_path: Path) -> None:
    records = [
        *small_practice(TODAY),
        patient("AUBERT", "Martin", "1950-01-01", id="pat-given-martin", sex=Sex.MALE),
        patient("BARBIER-MARTIN", "Jade", "2021-08-05", id="pat-compound"),
        patient("ABADIE", "Claire", "1970-01-01", id="pat-used-martin", used_name="MARTIN"),
    ]
    db = snapshotdb.open_file(snapshot_build.build_from_records(records, tmp_path / "rank.db").path)
    assert ids(db.search("martin")) == [
        "pat-martin-1",  # birth name MARTIN, in display order (then birth date)
        "pat-martin-2",
        "pat-used-martin",  # used name MARTIN
        "pat-compound",  # one word of a compound surname
        "pat-given-martin",  # first name Martin
        "pat-martinez",  # only a prefix
    ]


def test_a_patient_reached_through_several_tokens_is_listed_once_and_the_page_stays_full(tmp_path: Path) -> None:
    # "jea" starts three first-given-name tokens of each of these patients (jeanne, jeannejeannette,
    # the used given name jeannot) and another one (jeannette): the ranked read of the index meets
    # each patient several times, the best first, and must still fill the page.
    records = [
        patient("ZIMMER", ("Jeanne", "Jeannette"), f"19{50 + n}-01-01", id=f"pat-jea-{n}", used_given_name="Jeannot")
        for n in range(6)
    ]
    db = snapshotdb.open_file(snapshot_build.build_from_records(records, tmp_path / "jea.db").path)
    for limit in (1, 2, 3, 5):
        found = ids(db.search("jea", limit=limit))
        assert len(found) == limit and len(set(found)) == limit
    assert ids(db.search("jea")) == [f"pat-jea-{n}" for n in range(6)]


def test_prefix_and_given_name_combination(db: snapshotdb.SnapshotDB) -> None:
    assert ids(db.search("mart pau")) == ["pat-martinez"]
    assert ids(db.search("marie martin")) == ["pat-martin-1", "pat-martin-2"]


def test_garbled_names_on_the_index_rows_fail_no_search(db_path: Path, tmp_path: Path) -> None:
    # A snapshot is hostile input: the names text each index row carries is only ever searched in,
    # never trusted to be well formed. A patient it no longer describes is simply not found by it.
    data = tampered(
        db_path,
        tmp_path,
        "UPDATE name_token SET names = ' :: x:y martin: :9'",
        "UPDATE patient SET names = 'garbage'",
        "UPDATE name_count SET rows = 9223372036854775807",  # sizes that would overflow a sum
    )
    garbled = snapshotdb.open_bytes(data)
    assert "pat-martin-1" in ids(garbled.search("martin"))  # one word: the index alone
    for text in ("martin marie", "mart pau", "martin 12/03/1951", "martni", "dupond jean", "1951 m"):
        garbled.search(text)


def test_homonyms_are_flagged_and_told_apart_by_birth_date(db: snapshotdb.SnapshotDB) -> None:
    results = db.search("martin marie")
    assert all(r.homonyms == 1 for r in results)
    assert {r.patient.birth_date for r in results} == {dt.date(1951, 3, 12), dt.date(1987, 7, 1)}
    assert ids(db.search("martin 12/03/1951")) == ["pat-martin-1"]
    assert db.search("martinez")[0].homonyms == 0


def test_twins_share_a_birth_date_but_not_a_given_name(db: snapshotdb.SnapshotDB) -> None:
    assert set(ids(db.search("bernard 01/06/2023"))) == {"pat-twin-1", "pat-twin-2"}
    assert ids(db.search("bernard lina")) == ["pat-twin-2"]
    # Twins have different given names: they are not homonyms of each other.
    assert all(r.homonyms == 0 for r in db.search("bernard"))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("lefevre", "pat-lefevre"),
        ("LEFÈVRE-ÇELIK", "pat-lefevre"),
        ("celik", "pat-lefevre"),
        ("lefevre celik", "pat-lefevre"),
        ("lefevrecelik", "pat-lefevre"),
        ("n'diaye", "pat-ndiaye"),
        ("ndiaye", "pat-ndiaye"),
        ("n diaye", "pat-ndiaye"),
        ("n'dia", "pat-ndiaye"),
        ("diaye", "pat-ndiaye"),
        ("fontaine", "pat-fontaine"),
        ("de la fontaine", "pat-fontaine"),
        ("delafontaine", "pat-fontaine"),
        ("fontaine louise", "pat-fontaine"),  # third birth given name
        ("moreau", "pat-married"),  # used name
        ("dubois", "pat-married"),  # birth name
        ("moreau claire", "pat-married"),
        ("oeuvray", "pat-oeuvray"),
        ("œuvray", "pat-oeuvray"),
        ("zoe", "pat-oeuvray"),
    ],
)
def test_accents_case_hyphens_apostrophes_and_used_names(
    db: snapshotdb.SnapshotDB, typed: str, expected: str
) -> None:
    assert ids(db.search(typed))[:1] == [expected]


def test_search_by_birth_date_alone(db: snapshotdb.SnapshotDB) -> None:
    assert set(ids(db.search("12/03/1951"))) == {"pat-martin-1", "pat-qual"}
    assert set(ids(db.search("12031951"))) == {"pat-martin-1", "pat-qual"}
    assert "pat-fontaine" in ids(db.search("1944"))
    assert "pat-martinez" not in ids(db.search("1944"))


def test_search_by_ins(db: snapshotdb.SnapshotDB) -> None:
    assert ids(db.search("151037512345658")) == ["pat-qual"]
    assert ids(db.search("1 51 03 75 123 456 58")) == ["pat-qual"]
    assert ids(db.search("1510375123456")) == ["pat-qual"]  # without the key
    assert db.search("299999999999999") == []


def test_nothing_found_and_empty_query(db: snapshotdb.SnapshotDB) -> None:
    assert db.search("zzzz") == []
    assert db.search("") == []
    assert db.search("martin 01/01/1900") == []


def test_limit_bounds_results(db: snapshotdb.SnapshotDB) -> None:
    assert len(db.search("m", limit=2)) == 2


# --- summary and agenda -----------------------------------------------------------------------------


def test_summary_returns_the_whole_patient(db: snapshotdb.SnapshotDB) -> None:
    summary = db.summary("pat-qual", today=TODAY)
    assert summary.patient.ins == "151037512345658"
    assert summary.patient.allergy_status is AllergyStatus.RECORDED
    assert [a.substance for a in summary.allergies] == ["Amoxicilline"]
    assert [c.text for c in summary.conditions] == ["Diabète de type 2", "Hypertension artérielle"]
    assert summary.ald_conditions[0].code == "E11"
    assert [t.dci for t in summary.treatments] == ["metformine", "lévothyroxine sodique"]
    assert summary.treatments[1].non_substitution is NonSubstitutionReason.MTE
    assert summary.treatments[0].renewals_left == 2
    assert summary.general_practitioner is not None and summary.general_practitioner.rpps == "10001234567"
    assert [a.id for a in summary.appointments] == ["apt-1"]  # the past one is not "upcoming"


def test_latest_weight_is_the_most_recent(db: snapshotdb.SnapshotDB) -> None:
    weight = db.summary("pat-twin-1", today=TODAY).latest("weight")
    assert weight is not None and weight.value == 11.2 and weight.measured_on == dt.date(2026, 10, 1)


def test_unknown_patient_is_not_found(db: snapshotdb.SnapshotDB) -> None:
    with pytest.raises(NotFound):
        db.summary("pat-nobody")


def test_agenda_lists_the_day_with_patients(db: snapshotdb.SnapshotDB) -> None:
    entries = db.agenda(TODAY, TODAY)
    assert [(e.appointment.start.time(), e.patient.id) for e in entries] == [
        (dt.time(9, 0), "pat-qual"),
        (dt.time(9, 20), "pat-ndiaye"),
    ]


def test_opened_database_is_read_only(db: snapshotdb.SnapshotDB) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        db._conn.execute("DELETE FROM patient")


# --- untrusted input ------------------------------------------------------------------------------------


def tampered(db_path: Path, tmp_path: Path, *statements: str, writable_schema: bool = False) -> bytes:
    copy = tmp_path / "tampered.db"
    shutil.copy(db_path, copy)
    conn = sqlite3.connect(copy)
    if writable_schema:
        conn.execute("PRAGMA writable_schema = ON")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return copy.read_bytes()


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TRIGGER evil AFTER INSERT ON meta BEGIN DELETE FROM patient; END",
        "CREATE TABLE extra (x)",
        "CREATE VIEW v AS SELECT * FROM patient",
        "CREATE INDEX extra_index ON patient (birth_name)",
        "DROP INDEX patient_ins",
        "ALTER TABLE patient ADD COLUMN note TEXT",
    ],
)
def test_schema_whitelist_refuses_any_extra_or_missing_object(
    db_path: Path, tmp_path: Path, statement: str
) -> None:
    data = tampered(db_path, tmp_path, statement)
    with pytest.raises(SnapshotDatabaseError, match="schema differs"):
        snapshotdb.open_bytes(data)


def test_wrong_schema_version_is_refused(db_path: Path, tmp_path: Path) -> None:
    data = tampered(db_path, tmp_path, "PRAGMA user_version = 99")
    with pytest.raises(SnapshotDatabaseError, match="schema version 99"):
        snapshotdb.open_bytes(data)


def test_rows_violating_the_check_constraints_are_caught(db_path: Path, tmp_path: Path) -> None:
    # Write a bad row under a weakened schema, then restore the original text: only the rows lie.
    copy = tmp_path / "bad-rows.db"
    shutil.copy(db_path, copy)
    conn = sqlite3.connect(copy)
    (original,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'treatment'").fetchone()
    conn.execute("PRAGMA writable_schema = ON")
    weakened = original.replace("CHECK (renewals_left IS NULL OR renewals_left BETWEEN 0 AND 99)", "")
    assert weakened != original
    conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'treatment'", (weakened,))
    conn.commit()
    conn.close()
    conn = sqlite3.connect(copy)
    conn.execute("UPDATE treatment SET renewals_left = 5000 WHERE id = 'trt-1'")
    conn.commit()
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'treatment'", (original,))
    conn.commit()
    conn.close()
    with pytest.raises(SnapshotDatabaseError, match="CHECK constraint failed"):
        snapshotdb.open_file(copy)


@pytest.mark.parametrize(
    ("statement", "read"),
    [
        ("UPDATE patient SET sex = 'dragon' WHERE id = 'pat-qual'", "summary"),
        ("UPDATE patient SET birth_date = '1951-02-31' WHERE id = 'pat-qual'", "summary"),
        ("UPDATE patient SET identity_status = 'VALI' WHERE id = 'pat-qual'", "summary"),  # INS needs QUAL
        ("UPDATE treatment SET non_substitution = 'XYZ' WHERE id = 'trt-2'", "summary"),
        ("UPDATE measurement SET kind = 'shoe size'", "twin"),
        ("UPDATE appointment SET start = 'tomorrow' WHERE id = 'apt-1'", "summary"),
        ("UPDATE appointment SET start = '2026-11-28Tnoon' WHERE id = 'apt-1'", "agenda"),
    ],
)
def test_dates_and_enumerations_that_lie_are_refused_when_read(
    db_path: Path, tmp_path: Path, statement: str, read: str
) -> None:
    db = snapshotdb.open_bytes(tampered(db_path, tmp_path, statement))  # the snapshot opens...
    readers = {
        "summary": lambda: db.summary("pat-qual", today=TODAY),
        "twin": lambda: db.summary("pat-twin-1", today=TODAY),
        "agenda": lambda: db.agenda(dt.date(2000, 1, 1), dt.date(2100, 1, 1)),
    }
    with pytest.raises(SnapshotDatabaseError):  # ...but the lying record is never shown
        readers[read]()


def test_counts_must_match_the_signed_header(db_path: Path) -> None:
    counts = snapshotdb.open_file(db_path).counts()
    with pytest.raises(SnapshotDatabaseError, match="patient: 11 rows, the signed header says 12"):
        snapshotdb.open_file(db_path, expected_counts={**counts, "patient": 12})


@pytest.mark.parametrize("mangle", ["empty", "magic", "truncated", "garbage_page"])
def test_damaged_images_are_refused_cleanly(db_path: Path, mangle: str) -> None:
    data = db_path.read_bytes()
    if mangle == "empty":
        data = b""
    elif mangle == "magic":
        data = b"NotSQLite format" + data[16:]
    elif mangle == "truncated":
        data = data[: len(data) // 2]
    else:
        data = data[:8192] + bytes(range(256)) * 16 + data[8192 + 4096 :]
    with pytest.raises(SnapshotDatabaseError):
        snapshotdb.open_bytes(data)


def test_json_columns_that_lie_do_not_crash_the_reader(db_path: Path, tmp_path: Path) -> None:
    data = tampered(db_path, tmp_path, "UPDATE patient SET birth_given_names = '{\"not\": \"a list\"}'")
    db = snapshotdb.open_bytes(data)
    with pytest.raises(SnapshotDatabaseError, match="patient row"):
        db.search("martin")


@pytest.mark.parametrize("typed", ["m", "mar", "martin", "b", "martin marie", "mar ma", "l a", "zz"])
def test_dense_prefix_path_ranks_like_the_candidate_path(
    db: snapshotdb.SnapshotDB, monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    from continuity import search

    sparse = [(r.patient.id, r.score) for r in db.search(typed)]
    monkeypatch.setattr(search, "DENSE_PREFIX_ROWS", 1)  # force the walk-in-display-order path
    dense = [(r.patient.id, r.score) for r in db.search(typed)]
    # Same patients with the same scores; the whole-word matches lead in the same order, and only
    # the prefix-only tail may differ in order (display order instead of token quality).
    assert sorted(dense) == sorted(sparse)
    whole_word = [hit for hit in sparse if hit[1] >= search.EXACT_BONUS * len(typed.split())]
    assert dense[: len(whole_word)] == whole_word


def test_dense_path_still_honours_the_limit(db: snapshotdb.SnapshotDB, monkeypatch: pytest.MonkeyPatch) -> None:
    from continuity import search

    monkeypatch.setattr(search, "DENSE_PREFIX_ROWS", 1)
    assert [r.patient.id for r in db.search("martin", limit=2)] == ["pat-martin-1", "pat-martin-2"]
    assert len(db.search("m", limit=3)) == 3


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("typed", ["martin 12/03/1951", "mar 1951", "bernard 01/06/2023", "b 2023", "m 1800"])
def test_name_driven_paths_apply_the_birth_date_like_the_date_driven_path(
    db: snapshotdb.SnapshotDB, monkeypatch: pytest.MonkeyPatch, typed: str, dense: bool
) -> None:
    from continuity import search

    by_date = sorted((r.patient.id, r.score) for r in db.search(typed))
    monkeypatch.setattr(search, "_birth_size", lambda conn, birth, cap: 10**9)  # the name drives instead
    if dense:
        monkeypatch.setattr(search, "DENSE_PREFIX_ROWS", 1)
    by_name = sorted((r.patient.id, r.score) for r in db.search(typed))
    assert by_name == by_date


def test_repeated_searches_reuse_built_patients_and_close_drops_them(
    db: snapshotdb.SnapshotDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = db.search("martin")
    built: list[object] = []
    original = snapshotdb.SnapshotDB._patient
    monkeypatch.setattr(snapshotdb.SnapshotDB, "_patient", staticmethod(lambda row: built.append(row) or original(row)))
    again = db.search("mart")
    assert [r.patient for r in again] == [r.patient for r in first]  # same patients, same order...
    assert built == []  # ...none rebuilt
    monkeypatch.setattr(snapshotdb.SnapshotDB, "RESULT_CACHE_SIZE", 1)
    db.search("n'diaye")
    assert len(db._results) == 1  # bounded
    db.close()
    assert len(db._results) == 0  # locking drops them with the data


# --- names as heard, hyphens, ranking (issue 11) ---------------------------------------------------


@pytest.fixture
def heard_db(tmp_path: Path) -> snapshotdb.SnapshotDB:
    records = [
        *small_practice(TODAY),
        patient("DUPONT", "Jean", "1958-03-12", id="pat-dupont", sex=Sex.MALE),
        patient("DUPONDEL", "Anne", "1970-01-01", id="pat-dupondel"),
        patient("LEFEBVRE", "Paul", "1948-06-06", id="pat-lefebvre", sex=Sex.MALE),
        patient("LEFÈVRE", "Lucie", "1992-04-04", id="pat-lefevre-2"),
        patient("LEMAIRE", "Odile", "1939-09-09", id="pat-lemaire"),
        patient("MARTIN", "Jean", "1961-01-01", id="pat-martin-jean", sex=Sex.MALE),
        patient("MARTIN", ("Pierre", "Jean"), "1962-02-02", id="pat-martin-pierre-jean", sex=Sex.MALE),
        patient("JEAN", "Germaine", "1940-04-04", id="pat-jean-martin", used_name="MARTIN"),
        patient("MARTIN", "Jean-Pierre", "1963-03-03", id="pat-jp-hyphen", sex=Sex.MALE),
        patient("MARTIN", "Jean Pierre", "1964-04-04", id="pat-jp-space", sex=Sex.MALE),
        patient("MARTIN", ("Jean", "Pierre"), "1965-05-05", id="pat-jp-list", sex=Sex.MALE),
        patient("MARTIN-DUPUIS", "Léa", "1990-10-10", id="pat-md-hyphen"),
        patient("MARTIN DUPUIS", "Noé", "1991-11-11", id="pat-md-space", sex=Sex.MALE),
    ]
    return snapshotdb.open_file(snapshot_build.build_from_records(records, tmp_path / "heard.db").path)


def close_ids(results: list[snapshotdb.SearchResult]) -> list[str]:
    return [r.patient.id for r in results if r.close]


@pytest.mark.parametrize(
    ("heard", "found"),
    [
        ("dupond", "pat-dupont"),
        ("lefebvre", "pat-lefevre-2"),
        ("lefevre", "pat-lefebvre"),
        ("ndiaie", "pat-ndiaye"),
        ("n'diaie", "pat-ndiaye"),
        ("dupnot", "pat-dupont"),  # one typing error, not a sound
        ("dupond jean", "pat-dupont"),
        ("lemere odile", "pat-lemaire"),
        ("dupond 12/3/58", "pat-dupont"),
    ],
)
def test_names_as_heard_come_in_a_second_tier(heard_db: snapshotdb.SnapshotDB, heard: str, found: str) -> None:
    results = heard_db.search(heard)
    assert found in close_ids(results)


def test_exact_and_prefix_matches_always_come_before_names_as_heard(heard_db: snapshotdb.SnapshotDB) -> None:
    results = heard_db.search("dupond")
    assert ids(results) == ["pat-dupondel", "pat-dupont"]  # the prefix first, then the sound-alike
    assert [r.close for r in results] == [False, True]
    results = heard_db.search("lefevre")
    tiers = [r.close for r in results]
    assert tiers == sorted(tiers)  # every first-tier result before any second-tier one
    assert {"pat-lefevre", "pat-lefevre-2"} <= set(ids(results)) and "pat-lefebvre" in close_ids(results)


def test_second_tier_respects_the_birth_date_and_the_other_words(heard_db: snapshotdb.SnapshotDB) -> None:
    assert "pat-dupont" not in ids(heard_db.search("dupond 01/01/1970"))
    assert "pat-dupont" not in ids(heard_db.search("dupond marcel"))
    assert heard_db.search("zzzzz") == []


def test_exact_surname_and_first_given_name_rank_first(heard_db: snapshotdb.SnapshotDB) -> None:
    found = ids(heard_db.search("martin jean"))
    assert found[0] == "pat-martin-jean"  # not JEAN (MARTIN) Germaine, not MARTIN Pierre Jean
    assert ids(heard_db.search("jean martin"))[0] == "pat-martin-jean"
    assert {"pat-jean-martin", "pat-martin-pierre-jean"} <= set(found)


@pytest.mark.parametrize("typed", ["martin jean-pierre", "martin jean pierre", "MARTIN Jean–Pierre".replace("–", "-")])
def test_hyphen_and_space_are_the_same_in_given_names(heard_db: snapshotdb.SnapshotDB, typed: str) -> None:
    found = ids(heard_db.search(typed))
    assert {"pat-jp-hyphen", "pat-jp-space", "pat-jp-list"} <= set(found[:3])


@pytest.mark.parametrize("typed", ["martin-dupuis", "martin dupuis", "martindupuis"])
def test_hyphen_and_space_are_the_same_in_surnames(heard_db: snapshotdb.SnapshotDB, typed: str) -> None:
    assert set(ids(heard_db.search(typed))[:2]) == {"pat-md-hyphen", "pat-md-space"}


def test_civility_and_short_date_in_a_query(heard_db: snapshotdb.SnapshotDB) -> None:
    assert ids(heard_db.search("mme lemaire"))[0] == "pat-lemaire"
    assert ids(heard_db.search("M. Dupont 12/3/58")) == ["pat-dupont"]
    assert ids(heard_db.search("dupont 12 mars 1958")) == ["pat-dupont"]
    assert ids(heard_db.search("12.03.1958 dupont")) == ["pat-dupont"]


def test_deceased_date_travels_in_the_snapshot(tmp_path: Path) -> None:
    records = [*small_practice(TODAY), patient("ANCIEN", "Marc", "1930-01-01", id="pat-dead", deceased=True,
                                                deceased_date=dt.date(2025, 2, 3))]
    db = snapshotdb.open_file(snapshot_build.build_from_records(records, tmp_path / "dead.db").path)
    assert db.patient("pat-dead").deceased_date == dt.date(2025, 2, 3)
    assert db.patient("pat-qual").deceased_date is None


@pytest.mark.parametrize("typed", ["dupond 12/03/1958", "dupond 1958", "lefevre 1948", "ndiaie 1990", "dupnot 1958"])
def test_names_as_heard_with_a_date_give_the_same_patients_whichever_drives(
    heard_db: snapshotdb.SnapshotDB, monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    from continuity import search

    monkeypatch.setattr(search, "_birth_size", lambda conn, birth, cap: 0)  # the birth date drives
    by_date = sorted((r.patient.id, r.score, r.close) for r in heard_db.search(typed))
    monkeypatch.setattr(search, "_birth_size", lambda conn, birth, cap: 10**9)  # the words heard drive
    by_name = sorted((r.patient.id, r.score, r.close) for r in heard_db.search(typed))
    assert by_date == by_name and any(close for _, _, close in by_name)

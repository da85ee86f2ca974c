"""Name normalisation and query parsing."""

import datetime as dt
import sqlite3

import pytest

from continuity import search


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lefèvre-Çelik", "lefevre celik"),
        ("N'Diaye", "n diaye"),
        ("N’DIAYE", "n diaye"),  # typographic apostrophe
        ("de La Fontaine", "de la fontaine"),
        ("ŒUVRAY", "oeuvray"),
        ("  Zoé   Ähm ", "zoe ahm"),
        ("Straße", "strasse"),
    ],
)
def test_normalize_folds_case_accents_and_separators(text: str, expected: str) -> None:
    assert search.normalize(text) == expected


def test_name_tokens_include_joined_multiword_surnames_with_their_quality() -> None:
    found = search.name_tokens("N'DIAYE", "de La Fontaine", ["Jean-Pierre"])
    assert found == {
        "ndiaye": search.QUALITY_BIRTH_NAME,
        "n": search.QUALITY_NAME_PART,
        "diaye": search.QUALITY_NAME_PART,
        "delafontaine": search.QUALITY_USED_NAME,
        "de": search.QUALITY_NAME_PART,
        "la": search.QUALITY_NAME_PART,
        "fontaine": search.QUALITY_NAME_PART,
        "jean": search.QUALITY_GIVEN_NAME,
        "pierre": search.QUALITY_GIVEN_NAME,
        "jeanpierre": search.QUALITY_FIRST_GIVEN_NAME,  # the whole first given name
    }


def test_a_word_that_is_both_surname_and_given_name_keeps_the_better_quality() -> None:
    assert search.name_tokens("MARTIN", "", ["Martin"]) == {"martin": search.QUALITY_BIRTH_NAME}


@pytest.mark.parametrize(
    ("typed", "first", "last"),
    [
        ("12/03/1951", dt.date(1951, 3, 12), dt.date(1951, 3, 12)),
        ("12-03-1951", dt.date(1951, 3, 12), dt.date(1951, 3, 12)),
        ("12.3.1951", dt.date(1951, 3, 12), dt.date(1951, 3, 12)),
        ("12031951", dt.date(1951, 3, 12), dt.date(1951, 3, 12)),
        ("03/1951", dt.date(1951, 3, 1), dt.date(1951, 3, 31)),
        ("12/1951", dt.date(1951, 12, 1), dt.date(1951, 12, 31)),
        ("1951", dt.date(1951, 1, 1), dt.date(1951, 12, 31)),
    ],
)
def test_dates_typed_the_french_way(typed: str, first: dt.date, last: dt.date) -> None:
    date = search.parse_date(typed)
    assert date is not None
    assert (date.first, date.last) == (first, last)


@pytest.mark.parametrize("typed", ["31/02/1951", "32011951", "13/1951", "0000", "19511", "martin"])
def test_impossible_or_non_dates_are_not_dates(typed: str) -> None:
    assert search.parse_date(typed) is None


def test_query_mixes_names_and_date_and_orders_longest_word_first() -> None:
    query = search.parse_query("marie MARTIN 12/03/1951")
    assert query.words == ("martin", "marie")
    assert query.birth is not None and query.birth.first == dt.date(1951, 3, 12)


def test_query_recognises_an_ins_with_or_without_spaces() -> None:
    assert search.parse_query("1 51 03 75 123 456 58").ins == "151037512345658"
    assert search.parse_query("1510375123456").ins == "1510375123456"
    # An 8-digit date is not an INS.
    assert search.parse_query("12031951").ins == ""


def test_blank_and_punctuation_only_queries_are_empty() -> None:
    assert search.parse_query("   ").is_empty
    assert search.parse_query(" - ' ").is_empty


def test_a_hyphenated_or_apostrophe_word_is_searched_whole() -> None:
    assert search.parse_query("N'Diaye").words == ("ndiaye",)
    assert search.parse_query("lefèvre-ç").words == ("lefevrec",)
    assert search.parse_query("N Diaye").words == ("diaye", "n")


# --- names as heard: the phonetic key -----------------------------------------------------------


@pytest.mark.parametrize(
    ("heard", "written"),
    [
        ("dupond", "DUPONT"),
        ("lefebvre", "LEFÈVRE"),
        ("lefèvre", "Lefebvre"),
        ("ndiaie", "N'DIAYE"),
        ("lemaire", "Lemère"),
        ("matthieu", "Mathieu"),
        ("rousseau", "Roussot"),
        ("schevallier", "Chevalier"),
        ("euvrai", "Œuvray"),
        ("henri", "Enri"),
        ("philippe", "Filipe"),
        ("gaspard", "Kaspar"),
    ],
)
def test_names_heard_alike_share_the_phonetic_key(heard: str, written: str) -> None:
    assert search.sound_key(heard) == search.sound_key(written)


@pytest.mark.parametrize(
    ("one", "other"),
    [("martin", "marton"), ("dupont", "dubois"), ("lefevre", "lefort"), ("bernard", "renard"), ("petit", "patin")],
)
def test_names_that_sound_different_keep_different_keys(one: str, other: str) -> None:
    assert search.sound_key(one) != search.sound_key(other)


def test_phonetic_key_follows_the_published_phonex_steps() -> None:
    # Worked by hand from the steps (docs/snapshot-database.md): "on" before a consonant is sound 1,
    # d and p become t, a final t is silent; "ai" is the sound é (y); b and v become f.
    assert search.sound_key("dupond") == "TUT1"
    assert search.sound_key("ndiaye") == "NTIYE"
    assert search.sound_key("lefebvre") == "LEFEFRE"
    assert search.sound_key("martin") == "NORT4"
    assert search.sound_key("") == ""
    assert search.sound_key("1234") == ""


def test_typo_index_finds_one_error_on_a_surname_of_the_same_initial() -> None:
    index = search.SurnameIndex(["dupont", "dupond", "durand", "lefevre", "tupont", "dupontel"])
    assert sorted(index.one_edit("dupnot")) == ["dupont"]  # two neighbouring letters swapped
    assert sorted(index.one_edit("dupon")) == ["dupond", "dupont"]  # one letter missing
    assert sorted(index.one_edit("lefevvre")) == ["lefevre"]  # one letter too many
    assert index.one_edit("dup") == []  # too short to guess
    assert index.one_edit("zzzz") == []


# --- hyphens, dates, civilities ----------------------------------------------------------------------


def test_given_names_index_both_the_joined_and_the_separate_forms() -> None:
    listed = search.name_tokens("MARTIN", "", ["Jean", "Pierre"])
    hyphenated = search.name_tokens("MARTIN", "", ["Jean-Pierre"])
    spaced = search.name_tokens("MARTIN", "", ["Jean Pierre"])
    for found in (listed, hyphenated, spaced):
        assert {"jean", "pierre", "jeanpierre"} <= set(found)
    assert listed["jean"] == search.QUALITY_FIRST_GIVEN_NAME
    assert hyphenated["jeanpierre"] == spaced["jeanpierre"] == search.QUALITY_FIRST_GIVEN_NAME


def test_used_given_name_counts_as_a_first_given_name() -> None:
    found = search.name_tokens("DUBOIS", "", ["Marie", "Claire"], used_given_name="Clairette")
    assert found["clairette"] == search.QUALITY_FIRST_GIVEN_NAME
    assert found["claire"] == search.QUALITY_GIVEN_NAME


TODAY = dt.date(2026, 11, 28)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("12/3/58", dt.date(1958, 3, 12)),
        ("1/2/1984", dt.date(1984, 2, 1)),
        ("12.03.1958", dt.date(1958, 3, 12)),
        ("12-03-58", dt.date(1958, 3, 12)),
        ("5/6/05", dt.date(2005, 6, 5)),  # two digits: the latest such year not in the future
        ("5/6/26", dt.date(2026, 6, 5)),
        ("5/6/27", dt.date(1927, 6, 5)),
    ],
)
def test_short_dates(typed: str, expected: dt.date) -> None:
    date = search.parse_date(typed, TODAY)
    assert date is not None and date.first == date.last == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("12 mars 1958", dt.date(1958, 3, 12)),
        ("martin 12 mars 1958", dt.date(1958, 3, 12)),
        ("1er janvier 2001 dubois", dt.date(2001, 1, 1)),
        ("3 févr. 84", dt.date(1984, 2, 3)),
        ("25 Décembre 1944", dt.date(1944, 12, 25)),
        ("15 aout 1990", dt.date(1990, 8, 15)),
    ],
)
def test_dates_spelled_out_in_french(typed: str, expected: dt.date) -> None:
    query = search.parse_query(typed, TODAY)
    assert query.birth is not None and query.birth.first == query.birth.last == expected
    assert all(not word.isdigit() and word not in search.MONTHS_FR for word in query.words)


def test_a_month_name_without_a_day_stays_a_name() -> None:
    assert search.parse_query("mars 1958", TODAY).words == ("mars",)  # MARS..., born in 1958
    impossible = search.parse_query("31 fevrier 1958", TODAY).birth
    assert impossible is None or impossible.first != impossible.last  # no day is made up


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("mme lemaire", ("lemaire",)),
        ("Mme. Lemaire", ("lemaire",)),
        ("M. Dupont Jean", ("dupont", "jean")),
        ("mr dupont", ("dupont",)),
        ("Mlle Martin", ("martin",)),
        ("dr garnier", ("garnier",)),
        ("madame n'diaye", ("ndiaye",)),
        ("m dupont", ("dupont", "m")),  # without its dot, "m" may be the first letter of a name
        ("mme", ("mme",)),  # alone, it is what the user has typed so far
    ],
)
def test_civilities_are_ignored(typed: str, words: tuple[str, ...]) -> None:
    assert search.parse_query(typed, TODAY).words == words


def test_query_keeps_the_typed_order_for_ranking() -> None:
    query = search.parse_query("dupont jean-pierre", TODAY)
    assert query.words == ("jeanpierre", "dupont")
    assert query.typed == ("dupont", "jeanpierre")


def test_names_text_tells_which_typed_words_start_or_are_one_of_the_names() -> None:
    # Each index row carries this text: the lookup checks the other typed words on it (SQL instr).
    qualities = search.name_tokens("MARTIN", "", ["Jean-Pierre"])
    text = search.names_text(qualities)
    assert search.parse_names(text) == qualities
    for typed in ("mar", "martin", "jean", "jeanp", "pierre"):
        assert f" {typed}" in text
    for not_a_prefix in ("artin", "ierre", "eanpierre"):
        assert f" {not_a_prefix}" not in text
    assert " martin:" in text and " mart:" not in text  # the whole word


def test_malformed_names_entries_match_nothing() -> None:
    assert search.parse_names(" jean:1 :4 martin: x:y ok:2 ::") == {"jean": 1, "ok": 2}


def score_of(word: str, names: str) -> int:
    """The database's score of one typed word on a row carrying this names text."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (names TEXT NOT NULL)")
    conn.execute("INSERT INTO t VALUES (?)", (names,))
    sql, params = search._word_score("t", [word])
    return int(conn.execute(f"SELECT {sql} FROM t", params).fetchone()[0])


def test_a_words_score_is_the_best_of_the_tokens_it_starts() -> None:
    text = search.names_text(search.name_tokens("MARTIN", "MARTINEZ", ["Jean"]))
    assert score_of("martin", text) == search.EXACT_BONUS + search.QUALITY_BIRTH_NAME
    assert score_of("martine", text) == search.QUALITY_USED_NAME
    assert score_of("jean", text) == search.EXACT_BONUS + search.QUALITY_FIRST_GIVEN_NAME
    assert score_of("j", text) == search.QUALITY_FIRST_GIVEN_NAME


def test_a_words_score_takes_the_best_quality_among_the_tokens_it_starts() -> None:
    # ABEL Martine, used name MARTY: "mart" starts the given name and the used name; the used name
    # scores (alphabetically, the given name would come first).
    text = search.names_text(search.name_tokens("ABEL", "MARTY", ["Martine"]))
    assert score_of("mart", text) == search.QUALITY_USED_NAME
    assert score_of("martine", text) == search.EXACT_BONUS + search.QUALITY_FIRST_GIVEN_NAME


def test_a_malformed_names_text_scores_without_failing() -> None:
    for garbled in (" x y:1 x: x:a", " x:", " x", "x", " x:9999", ":::"):
        score_of("x", garbled)

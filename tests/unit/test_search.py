"""Name normalisation and query parsing."""

import datetime as dt

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
        "jeanpierre": search.QUALITY_GIVEN_NAME,
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

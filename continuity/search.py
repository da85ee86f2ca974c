"""Patient search: name normalisation, query parsing, and the ranked lookup on the snapshot database.

Names are matched as normalised tokens: case- and accent-insensitive, hyphens and apostrophes as
spaces ("N'Diaye" → "n diaye"), with the joined form of multi-part surnames indexed too, so that
"ndiaye", "lefevrecelik" and "delafontaine" find them. Birth dates are typed the French way
(12/03/1951, 12031951, 03/1951, 1951). A 13- or 15-digit number is an INS (NIR) lookup.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Letters that Unicode decomposition does not split into base + accent.
_FOLD = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ı": "i", "ð": "d", "þ": "th"})
_NON_ALNUM = re.compile(r"[^0-9a-z]+")

MAX_QUERY_TOKENS = 6
DEFAULT_LIMIT = 50


def normalize(text: str) -> str:
    """Lower-case ASCII words separated by single spaces: 'Lefèvre-Çelik' → 'lefevre celik'."""
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    stripped = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _NON_ALNUM.sub(" ", stripped).strip()


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def name_tokens(surnames: Iterable[str], given_names: Iterable[str]) -> set[str]:
    """Index tokens for one patient: every word of every name, plus joined multi-word surnames."""
    result: set[str] = set()
    for surname in surnames:
        words = tokens(surname)
        result.update(words)
        if len(words) > 1:
            result.add("".join(words))
    for given in given_names:
        words = tokens(given)
        result.update(words)
        if len(words) > 1:
            result.add("".join(words))
    return result


@dataclass(frozen=True, slots=True)
class DateFilter:
    """A birth-date constraint: an exact day, a month of a year, or a year."""

    first: dt.date
    last: dt.date

    def describe(self) -> str:
        if self.first == self.last:
            return self.first.strftime("%d/%m/%Y")
        return f"{self.first:%d/%m/%Y}–{self.last:%d/%m/%Y}"


@dataclass(frozen=True, slots=True)
class Query:
    words: tuple[str, ...]
    birth: DateFilter | None = None
    ins: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.words and self.birth is None and not self.ins


_DATE_FULL = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_DATE_MONTH = re.compile(r"^(\d{1,2})[/.\-](\d{4})$")
_DIGITS8 = re.compile(r"^\d{8}$")
_YEAR = re.compile(r"^(18|19|20)\d{2}$")
_INS = re.compile(r"^[12378]\d{4}(\d{2}|2A|2B)\d{6}(\d{2})?$", re.IGNORECASE)


def _day(year: int, month: int, day: int) -> DateFilter | None:
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return None
    return DateFilter(date, date)


def _month(year: int, month: int) -> DateFilter | None:
    if not 1 <= month <= 12 or year < 1800:
        return None
    first = dt.date(year, month, 1)
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return DateFilter(first, following - dt.timedelta(days=1))


def parse_date(token: str) -> DateFilter | None:
    """A date as typed at a French desk, or None when the token is not one."""
    if m := _DATE_FULL.match(token):
        return _day(int(m[3]), int(m[2]), int(m[1]))
    if m := _DATE_MONTH.match(token):
        return _month(int(m[2]), int(m[1]))
    if _DIGITS8.match(token):
        return _day(int(token[4:]), int(token[2:4]), int(token[:2]))
    if _YEAR.match(token):
        year = int(token)
        return DateFilter(dt.date(year, 1, 1), dt.date(year, 12, 31))
    return None


def parse_query(text: str) -> Query:
    raw = text.strip()
    compact = raw.replace(" ", "")
    # An INS is typed with or without spaces; 13 characters (no key) or 15.
    if len(compact) in (13, 15) and _INS.match(compact) and not _DIGITS8.match(raw):
        return Query(words=(), ins=compact.upper())
    words: list[str] = []
    birth: DateFilter | None = None
    for part in raw.split():
        date = parse_date(part) if birth is None else None
        if date is not None:
            birth = date
        else:
            words.extend(tokens(part))
    # Longest first: the longest prefix is the most selective one to drive the lookup.
    ordered = sorted(dict.fromkeys(words), key=len, reverse=True)[:MAX_QUERY_TOKENS]
    return Query(words=tuple(ordered), birth=birth)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result row: the patient's row id and how well it matched."""

    row: int
    exact: int  # query words matched exactly (not only as a prefix)


def _prefix_bounds(word: str) -> tuple[str, str]:
    # Tokens are ASCII [0-9a-z], so '{' (after 'z') closes every prefix range.
    return word, word + "{"


def find(conn: sqlite3.Connection, query: Query, limit: int = DEFAULT_LIMIT) -> list[Hit]:
    """Patient rows matching the query, best first: exact words before prefixes, then by name.

    The lookup is driven by the longest query word's prefix range on the token index (whose order
    puts the exact token first), and every other word and the birth date are checked per candidate
    through indexes, so the cost follows the number of candidates, not the practice size.
    """
    if query.ins:
        sql = "SELECT row FROM patient WHERE ins = ? OR substr(ins, 1, 13) = ? ORDER BY row LIMIT ?"
        return [Hit(row, 1) for (row,) in conn.execute(sql, (query.ins, query.ins[:13], limit))]
    if not query.words:
        if query.birth is None:
            return []
        sql = "SELECT row FROM patient WHERE birth_date BETWEEN ? AND ? ORDER BY name_key, birth_date LIMIT ?"
        bounds = (query.birth.first.isoformat(), query.birth.last.isoformat(), limit)
        return [Hit(row, 0) for (row,) in conn.execute(sql, bounds)]

    driver, *others = query.words
    low, high = _prefix_bounds(driver)
    conditions = []
    exact_terms = ["(MAX(t.token = ?))"]
    params: list[object] = [driver]
    for _ in others:
        conditions.append(
            "EXISTS (SELECT 1 FROM name_token o WHERE o.patient = t.patient AND o.token >= ? AND o.token < ?)"
        )
        exact_terms.append("EXISTS (SELECT 1 FROM name_token o WHERE o.patient = t.patient AND o.token = ?)")
    where = ["t.token >= ?", "t.token < ?"]
    where_params: list[object] = [low, high]
    for word in others:
        where_params.extend(_prefix_bounds(word))
    where.extend(conditions)
    if query.birth is not None:
        where.append("p.birth_date BETWEEN ? AND ?")
        where_params.extend([query.birth.first.isoformat(), query.birth.last.isoformat()])
    params.extend(others)
    sql = (
        f"SELECT t.patient, {' + '.join(exact_terms)} AS exact "
        "FROM name_token t JOIN patient p ON p.row = t.patient "
        f"WHERE {' AND '.join(where)} "
        "GROUP BY t.patient ORDER BY exact DESC, p.name_key, p.birth_date LIMIT ?"
    )
    rows = conn.execute(sql, [*params, *where_params, limit]).fetchall()
    return [Hit(row, exact) for row, exact in rows]

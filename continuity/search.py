"""Patient search: name normalisation, query parsing, and the ranked lookup on the snapshot database.

Names are matched as normalised tokens: case- and accent-insensitive, hyphens and apostrophes as
spaces ("N'Diaye" → "n diaye"), with the joined form of multi-part surnames indexed too, so that
"ndiaye", "lefevrecelik" and "delafontaine" find them. Birth dates are typed the French way
(12/03/1951, 12031951, 03/1951, 1951). A 13- or 15-digit number is an INS (NIR) lookup.
"""

from __future__ import annotations

import datetime as dt
import functools
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


@functools.lru_cache(maxsize=1 << 16)
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
    """One search result: the patient's rank (its position in display order) and how well it matched."""

    rank: int
    exact: int  # query words matched exactly (not only as a prefix)


# Above this many index entries for the driving word, its prefix is "dense" (typing the first
# letters of a common name): the lookup then walks patients in display order and stops at the first
# page instead of ranking every candidate.
DENSE_PREFIX_ROWS = 4000


def _prefix_bounds(word: str) -> tuple[str, str]:
    # Tokens are ASCII [0-9a-z], so '{' (after 'z') closes every prefix range.
    return word, word + "{"


def _has_prefix(alias: str) -> str:
    return f"EXISTS (SELECT 1 FROM name_token o WHERE o.rank = {alias}.rank AND o.token >= ? AND o.token < ?)"


def _has_exact(alias: str) -> str:
    return f"EXISTS (SELECT 1 FROM name_token o WHERE o.rank = {alias}.rank AND o.token = ?)"


def _prefix_params(words: Iterable[str]) -> list[object]:
    return [bound for word in words for bound in _prefix_bounds(word)]


def _exact_score(alias: str, words: tuple[str, ...]) -> tuple[str, list[object]]:
    if not words:
        return "0", []
    return " + ".join(_has_exact(alias) for _ in words), list(words)


def find(conn: sqlite3.Connection, query: Query, limit: int = DEFAULT_LIMIT) -> list[Hit]:
    """Patients matching the query, best first: more exact words first, then name and birth date.

    Each query shape takes the path whose cost follows the size of the answer, not of the practice:
    an INS or a birth date drives through its own index; a rare name prefix ranks all its
    candidates; a common one walks the patients in display order and stops at the first page.
    """
    if query.ins:
        sql = "SELECT rank FROM patient WHERE ins = ? OR (length(?) = 13 AND substr(ins, 1, 13) = ?) LIMIT ?"
        return [Hit(rank, 1) for (rank,) in conn.execute(sql, (query.ins, query.ins, query.ins, limit))]
    words = query.words
    if query.birth is not None:
        score, score_params = _exact_score("p", words)
        conditions = ["p.birth_date BETWEEN ? AND ?", *(_has_prefix("p") for _ in words)]
        sql = (
            f"SELECT p.rank, {score} FROM patient p WHERE {' AND '.join(conditions)} "
            "ORDER BY 2 DESC, p.rank LIMIT ?"
        )
        params = [*score_params, query.birth.first.isoformat(), query.birth.last.isoformat(),
                  *_prefix_params(words), limit]
        return [Hit(rank, exact) for rank, exact in conn.execute(sql, params)]
    if not words:
        return []

    driver, others = words[0], words[1:]
    low, high = _prefix_bounds(driver)
    (sampled,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM name_token WHERE token >= ? AND token < ? LIMIT ?)",
        (low, high, DENSE_PREFIX_ROWS),
    ).fetchone()
    if sampled < DENSE_PREFIX_ROWS:
        score, score_params = _exact_score("t", others)
        conditions = ["t.token >= ?", "t.token < ?", *(_has_prefix("t") for _ in others)]
        sql = (
            f"SELECT t.rank, MAX(t.token = ?) + {score} AS exact FROM name_token t "
            f"WHERE {' AND '.join(conditions)} GROUP BY t.rank ORDER BY exact DESC, t.rank LIMIT ?"
        )
        params = [driver, *score_params, low, high, *_prefix_params(others), limit]
        return [Hit(rank, exact) for rank, exact in conn.execute(sql, params)]

    # Dense prefix: every word exact first (an index equality, already in rank order)...
    exact_conditions = ["t.token = ?", *(_has_exact("t") for _ in others)]
    sql = f"SELECT t.rank FROM name_token t WHERE {' AND '.join(exact_conditions)} ORDER BY t.rank LIMIT ?"
    hits = [Hit(rank, len(words)) for (rank,) in conn.execute(sql, [driver, *others, limit])]
    if len(hits) >= limit:
        return hits
    # ...then the prefix matches, walking patients in display order until the page is full.
    score, score_params = _exact_score("p", words)
    seen = [hit.rank for hit in hits]
    conditions = [*(_has_prefix("p") for _ in words)]
    if seen:
        conditions.append(f"p.rank NOT IN ({','.join('?' * len(seen))})")
    sql = f"SELECT p.rank, {score} FROM patient p WHERE {' AND '.join(conditions)} ORDER BY p.rank LIMIT ?"
    params = [*score_params, *_prefix_params(words), *seen, limit - len(hits)]
    return hits + [Hit(rank, exact) for rank, exact in conn.execute(sql, params)]

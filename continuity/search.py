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


# How well an index token stands for the patient, used to rank results: typing "martin" should list
# the MARTINs before BARBIER-MARTIN, and both before a patient whose first name is Martin.
QUALITY_BIRTH_NAME = 3  # the whole birth name (multi-word ones joined: "ndiaye", "delafontaine")
QUALITY_USED_NAME = 2  # the whole used name
QUALITY_NAME_PART = 1  # one word of a compound or particle surname ("fontaine", "celik")
QUALITY_GIVEN_NAME = 0


def name_tokens(birth_name: str, used_name: str, given_names: Iterable[str]) -> dict[str, int]:
    """Index tokens for one patient with their quality (the best one when a word occurs twice)."""
    found: dict[str, int] = {}

    def add(token: str, quality: int) -> None:
        if found.get(token, -1) < quality:
            found[token] = quality

    for surname, whole in ((birth_name, QUALITY_BIRTH_NAME), (used_name, QUALITY_USED_NAME)):
        words = tokens(surname)
        for word in words:
            add(word, QUALITY_NAME_PART)
        if words:
            add("".join(words), whole)
    for given in given_names:
        words = tokens(given)
        for word in words:
            add(word, QUALITY_GIVEN_NAME)
        if len(words) > 1:
            add("".join(words), QUALITY_GIVEN_NAME)
    return found


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
        elif joined := "".join(tokens(part)):
            # "N'Diaye" or "Lefèvre-Çelik" typed as one word is searched as the whole name
            # ("ndiaye"), which the index holds for every multi-word name, so the N'DIAYEs come
            # before patients who merely have a "diaye" and an "n..." somewhere in their names.
            words.append(joined)
    # Longest first: the longest prefix is the most selective one to drive the lookup.
    ordered = sorted(dict.fromkeys(words), key=len, reverse=True)[:MAX_QUERY_TOKENS]
    return Query(words=tuple(ordered), birth=birth)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the patient's rank (its position in display order) and how well it matched."""

    rank: int
    score: int  # per word: 4 for a whole-word match, plus the matching token's quality (0-3)


# Above this many index entries for the driving word, its prefix is "dense" (typing the first
# letters of a common name): the lookup then walks the index range in order and stops at the first
# page instead of scoring every candidate (measured: scoring costs about 0.6 µs per entry).
DENSE_PREFIX_ROWS = 1000


def _prefix_bounds(word: str) -> tuple[str, str]:
    # Tokens are ASCII [0-9a-z], so '{' (after 'z') closes every prefix range.
    return word, word + "{"


# A word scores 4 when it equals a token (not only its prefix), plus the token's quality (0-3).
EXACT_BONUS = 4


def _word_score(alias: str) -> str:
    """Best score of one query word among the patient's tokens (NULL when none matches)."""
    return (
        f"(SELECT MAX((o.token = ?) * {EXACT_BONUS} + o.quality) FROM name_token o "
        f"WHERE o.rank = {alias}.rank AND o.token >= ? AND o.token < ?)"
    )


def _word_params(word: str) -> list[object]:
    return [word, *_prefix_bounds(word)]


def _range_size(conn: sqlite3.Connection, word: str, cap: int | None = None) -> int:
    """Index entries for the word's prefix, counted up to `cap` (a bounded walk of the index)."""
    low, high = _prefix_bounds(word)
    (size,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM name_token WHERE token >= ? AND token < ? LIMIT ?)",
        (low, high, cap or DENSE_PREFIX_ROWS),
    ).fetchone()
    return int(size)


# When several words are all common, they are counted further to pick the one whose index range is
# the shortest to walk: with few matches in all, the walk covers the driver's whole range.
RECOUNT_CAP = 16 * 1024


def _prefix_params(words: Iterable[str]) -> list[object]:
    return [bound for word in words for bound in _prefix_bounds(word)]


def _has_prefix(alias: str) -> str:
    return f"EXISTS (SELECT 1 FROM name_token o WHERE o.rank = {alias}.rank AND o.token >= ? AND o.token < ?)"


def _birth_size(conn: sqlite3.Connection, birth: DateFilter) -> int:
    (size,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM patient WHERE birth_date BETWEEN ? AND ? LIMIT ?)",
        (birth.first.isoformat(), birth.last.isoformat(), DENSE_PREFIX_ROWS),
    ).fetchone()
    return int(size)


def _born_in(alias: str) -> str:
    return f"EXISTS (SELECT 1 FROM patient b WHERE b.rank = {alias}.rank AND b.birth_date BETWEEN ? AND ?)"


def find(conn: sqlite3.Connection, query: Query, limit: int = DEFAULT_LIMIT) -> list[Hit]:
    """Patients matching the query, best first: exact words and whole surnames first, then display order.

    Each query shape takes the path whose cost follows the size of the answer, not of the practice.
    An INS drives through its index. Otherwise the most selective criterion drives: the rarest word,
    or the birth date when fewer patients were born then. A rare driver has all its candidates
    scored; a common one is walked in index order (the whole word first, then alphabetically,
    surnames before given names) with the other criteria checked per row, and the walk stops when
    the page is full.
    """
    if query.ins:
        # 15 characters: the INS itself; 13 (without the key): a prefix range on the same index.
        low, high = (query.ins, query.ins) if len(query.ins) == 15 else (query.ins, query.ins + "~")
        ins_sql = "SELECT rank FROM patient WHERE ins >= ? AND ins <= ? LIMIT ?"
        return [Hit(rank, 1) for (rank,) in conn.execute(ins_sql, (low, high, limit))]
    words, birth = query.words, query.birth
    if not words and birth is None:
        return []
    sizes = {word: _range_size(conn, word) for word in words}
    common = [word for word in words if sizes[word] >= DENSE_PREFIX_ROWS]
    if len(common) > 1 and len(common) == len(words):
        sizes.update({word: _range_size(conn, word, RECOUNT_CAP) for word in common})
    driver = min(words, key=lambda word: (sizes[word], -len(word))) if words else ""
    birth_bounds = [birth.first.isoformat(), birth.last.isoformat()] if birth else []

    if birth is not None and (not words or _birth_size(conn, birth) <= sizes[driver]):
        scores = [_word_score("p") for _ in words]
        conditions = ["p.birth_date BETWEEN ? AND ?", *(_has_prefix("p") for _ in words)]
        sql = (
            f"SELECT p.rank, {' + '.join(scores) or '0'} AS score FROM patient p "
            f"WHERE {' AND '.join(conditions)} ORDER BY score DESC, p.rank LIMIT ?"
        )
        word_params = [value for word in words for value in _word_params(word)]
        params = [*word_params, *birth_bounds, *_prefix_params(words), limit]
        return [Hit(rank, score) for rank, score in conn.execute(sql, params)]

    others = [word for word in words if word != driver]
    other_scores = "".join(" + " + _word_score("c") for _ in others)
    other_score_params = [value for word in others for value in _word_params(word)]
    filters = "".join(" AND " + _has_prefix("t") for _ in others) + (" AND " + _born_in("t") if birth else "")
    filter_params = [*_prefix_params(others), *birth_bounds]
    low, high = _prefix_bounds(driver)
    if sizes[driver] < DENSE_PREFIX_ROWS:
        sql = (
            f"SELECT c.rank, c.driver_score{other_scores} AS score FROM ("
            f"SELECT t.rank AS rank, MAX((t.token = ?) * {EXACT_BONUS} + t.quality) AS driver_score "
            f"FROM name_token t WHERE t.token >= ? AND t.token < ?{filters} GROUP BY t.rank) c "
            "ORDER BY score DESC, c.rank LIMIT ?"
        )
        params = [*other_score_params, driver, low, high, *filter_params, limit]
        return [Hit(rank, score) for rank, score in conn.execute(sql, params)]

    # A common driver (the first letters of a frequent name): walk its index range in key order —
    # the whole word first, then alphabetically, surnames before given names — keeping the rows
    # that pass the other criteria, and stop at a page. A patient reached through two tokens of the
    # range is kept once; the page is then ordered like the scored path.
    sql = (
        f"SELECT c.rank, c.driver_score{other_scores} AS score FROM ("
        f"SELECT t.rank AS rank, (t.token = ?) * {EXACT_BONUS} + t.quality AS driver_score "
        f"FROM name_token t WHERE t.token >= ? AND t.token < ?{filters} LIMIT ?) c"
    )
    params = [*other_score_params, driver, low, high, *filter_params, limit * 2]
    best: dict[int, int] = {}
    for rank, score in conn.execute(sql, params):
        best[rank] = max(score, best.get(rank, score))
    ordered = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [Hit(rank, score) for rank, score in ordered]

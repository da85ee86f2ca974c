"""Patient search: name normalisation, query parsing, and the ranked lookup on the snapshot database.

Names are matched as normalised tokens: case- and accent-insensitive, hyphens and apostrophes as
spaces ("N'Diaye" → "n diaye"), with the joined form of multi-part names indexed too, so that
"ndiaye", "lefevrecelik", "delafontaine" and "jeanpierre" find them whichever way they were written.
Birth dates are typed the French way (12/03/1951, 12/3/51, 12.03.1951, 12031951, 12 mars 1951,
03/1951, 1951); civilities ("Mme", "M.", "Dr"...) are ignored. A 13- or 15-digit number is an INS.

Two tiers of results. The first holds the patients whose names start with every typed word, whole
words and the typed surname + first given name first. The second, shown after it and labelled
"orthographe proche" on screen, holds names as heard: the same French phonetic key (`sound_key`,
Phonex) or one typing error (rapidfuzz's optimal string alignment distance) on a surname.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

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


# --- the phonetic key ------------------------------------------------------------------------------
#
# Phonex, by Frédéric Brouard (1999), "Phonex : un algorithme phonétique pour le français",
# https://sqlpro.developpez.com/cours/soundex/ — designed for French surnames, it improves on
# Soundex2 by recognising the sounds "on", "an", "in", "ai", "ou", "oi", "ch"... The rules below
# are its steps 1-16, applied in that order to the whole word. Step 17-18 pack the resulting
# letters into a base-22 float; we keep the letters instead (the same information, exact and
# indexable). Deviations, each because the literal rule misses a French name heard:
#   - step 2 drops an initial "h" too ("Henri" sounds like "Enri");
#   - the "é" sound written "y" by step 7 counts as a vowel in steps 8 and 9 ("Lemaire" = "Lemère"),
#     as the widely used Python port by C. Pennaforte does for step 9;
#   - "qu" is replaced before "q", "sch" before "ch" (in the published order they could never
#     apply), and "sc" becomes "s" only before e or i ("Pascal" keeps its k);
#   - letters outside a-z (digits) are ignored.
_PHONEX_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"Y", "I"),  # 1
        (r"(^|[^PCS])H", r"\1"),  # 2
        (r"PH", "F"),  # 3
        (r"G(AI?[NM])", r"K\1"),  # 4
        (r"[AE]I[NM](?=[AEIOU])", "YN"),  # 5
        (r"EAU", "O"),  # 6
        (r"OUA", "2"),
        (r"[AE]I[NM]", "4"),
        (r"[AE]I", "Y"),  # 7
        (r"E([RTZ])", r"Y\1"),
        (r"ESS", "YS"),
        (r"[AE][NM](?=[^AEIOUY1234]|$)", "1"),  # 8
        (r"ON(?=[^AEIOUY1234]|$)", "1"),
        (r"IN(?=[^AEIOUY1234]|$)", "4"),
        (r"(?<=[AEIOUY1234])S(?=[AEIOUY1234])", "Z"),  # 9
        (r"OE", "E"),  # 10
        (r"EU", "E"),
        (r"AU", "O"),
        (r"O[IY]", "2"),
        (r"OU", "3"),
        (r"SCH|CH|SH", "5"),  # 11
        (r"SS", "S"),
        (r"SC(?=[EI])", "S"),
        (r"C(?=[EI])", "S"),  # 12
        (r"QU|GU|C|Q", "K"),  # 13
        (r"G(?=[AO])", "K"),
    )
)
_PHONEX_LETTERS = str.maketrans("ADPJBVM", "OTTGFFN")  # 14
_REPEATED = re.compile(r"(.)\1+")  # 15
_SILENT_END = re.compile(r"[TX]$")  # 16
_NOT_LETTER = re.compile(r"[^A-Z]")


@functools.lru_cache(maxsize=1 << 16)
def sound_key(word: str) -> str:
    """The French phonetic key of one name word (Phonex letters): 'dupond' and 'Dupont' → 'TUT1'.

    A pure function of the word: the publisher stores it for every name token at build time and
    the appliance computes it for the typed word, so both sides must run this same code.
    """
    text = _NOT_LETTER.sub("", normalize(word).upper())
    for pattern, replacement in _PHONEX_RULES:
        text = pattern.sub(replacement, text)
    text = _REPEATED.sub(r"\1", text.translate(_PHONEX_LETTERS))
    return _SILENT_END.sub("", text)


# How well an index token stands for the patient, used to rank results: typing "martin" should list
# the MARTINs before BARBIER-MARTIN, and both before a patient whose first name is Martin.
QUALITY_BIRTH_NAME = 4  # the whole birth name (multi-word ones joined: "ndiaye", "delafontaine")
QUALITY_USED_NAME = 3  # the whole used name
QUALITY_NAME_PART = 2  # one word of a compound or particle surname ("fontaine", "celik")
QUALITY_FIRST_GIVEN_NAME = 1  # the whole first given name ("jeanpierre"), or the used given name
QUALITY_GIVEN_NAME = 0  # another given name, or one word of a compound given name
SURNAME_QUALITIES = frozenset({QUALITY_BIRTH_NAME, QUALITY_USED_NAME, QUALITY_NAME_PART})


def name_tokens(
    birth_name: str, used_name: str, given_names: Sequence[str], used_given_name: str = ""
) -> dict[str, int]:
    """Index tokens for one patient with their quality (the best one when a word occurs twice).

    Hyphen and space are the same thing in names, both ways: every word is indexed, and so is the
    joined form of each multi-word name and of each pair of successive given names, so "jean-pierre"
    and "jean pierre" find Jean-Pierre, Jean Pierre and the given names Jean, Pierre alike.
    """
    found: dict[str, int] = {}

    def add(token: str, quality: int) -> None:
        if token and found.get(token, -1) < quality:
            found[token] = quality

    for surname, whole in ((birth_name, QUALITY_BIRTH_NAME), (used_name, QUALITY_USED_NAME)):
        words = tokens(surname)
        for word in words:
            add(word, QUALITY_NAME_PART)
        add("".join(words), whole)
    given = [tokens(name) for name in given_names]
    for index, words in enumerate(given):
        for word in words:
            add(word, QUALITY_GIVEN_NAME)
        first = QUALITY_FIRST_GIVEN_NAME if index == 0 else QUALITY_GIVEN_NAME
        add("".join(words), first)
        if index + 1 < len(given):
            # The given names Jean, Pierre are also the person called Jean-Pierre.
            add("".join(words + given[index + 1]), first)
    used_given = tokens(used_given_name)
    for word in used_given:
        add(word, QUALITY_GIVEN_NAME)
    add("".join(used_given), QUALITY_FIRST_GIVEN_NAME)
    return found


def word_rows(qualities: Mapping[str, int]) -> list[tuple[str, str, int]]:
    """The `name_word` rows: (phonetic key, word, 1 if it is a surname or part of one), words with a key.

    `qualities` is each distinct word of the index with its best quality over all patients.
    """
    rows = []
    for token, quality in qualities.items():
        key = sound_key(token)
        if key:
            rows.append((key, token, int(quality in SURNAME_QUALITIES)))
    return rows


def names_text(qualities: Mapping[str, int]) -> str:
    """Every index token of one patient with its quality, as stored beside each of its index rows.

    " martin:4 jean:1 pierre:0": a space before each token and a colon after it, so that a typed
    word is a prefix of one of the patient's tokens exactly when " word" occurs in the text, and is
    the whole token when " word:" does. A lookup walks one index range and checks the other typed
    words on the row itself (SQL `instr`), instead of looking each patient up again. Best quality
    first: the first token a word starts is the best one it starts (`_word_score`).
    """
    ordered = sorted(qualities.items(), key=lambda item: (-item[1], item[0]))
    return "".join(f" {token}:{quality}" for token, quality in ordered)


def parse_names(text: str) -> dict[str, int]:
    """The tokens and qualities of `names_text` (a malformed entry is skipped: it matches nothing)."""
    found: dict[str, int] = {}
    for entry in text.split():
        token, _, quality = entry.rpartition(":")
        if token and quality.isdigit():
            found[token] = int(quality)
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
    words: tuple[str, ...]  # normalised, longest first (the longest prefix is the most selective)
    birth: DateFilter | None = None
    ins: str = ""
    typed: tuple[str, ...] = field(default=(), compare=False)  # the same words in the order typed

    @property
    def is_empty(self) -> bool:
        return not self.words and self.birth is None and not self.ins


_YEAR_DIGITS = r"(\d{4}|\d{2})"
_DATE_FULL = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-]" + _YEAR_DIGITS + "$")
_DATE_MONTH = re.compile(r"^(\d{1,2})[/.\-](\d{4})$")
_DIGITS8 = re.compile(r"^\d{8}$")
_YEAR = re.compile(r"^(18|19|20)\d{2}$")
_DAY = re.compile(r"^(\d{1,2})(er)?$")
_INS = re.compile(r"^[12378]\d{4}(\d{2}|2A|2B)\d{6}(\d{2})?$", re.IGNORECASE)

# Month names and their usual abbreviations, normalised ("févr." → "fevr").
MONTHS_FR = {
    **dict.fromkeys(("janvier", "janv", "jan"), 1),
    **dict.fromkeys(("fevrier", "fevr", "fev"), 2),
    **dict.fromkeys(("mars", "mar"), 3),
    **dict.fromkeys(("avril", "avr"), 4),
    "mai": 5,
    "juin": 6,
    **dict.fromkeys(("juillet", "juil"), 7),
    **dict.fromkeys(("aout", "aou"), 8),
    **dict.fromkeys(("septembre", "sept", "sep"), 9),
    **dict.fromkeys(("octobre", "oct"), 10),
    **dict.fromkeys(("novembre", "nov"), 11),
    **dict.fromkeys(("decembre", "dec"), 12),
}

# Civilities and titles said or typed before a name; ignored when another word is typed. A bare
# "m" is a civility only with its dot ("M."): without it, it is the first letter of a name.
CIVILITIES = frozenset({
    "mr", "mme", "mmes", "mlle", "mlles", "melle", "dr", "pr", "docteur", "professeur",
    "madame", "monsieur", "mademoiselle", "messieurs",
})


def _is_civility(raw: str) -> bool:
    word = normalize(raw)
    return word in CIVILITIES or (word == "m" and raw.endswith("."))


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


def _full_year(digits: str, today: dt.date) -> int:
    """A year typed with 2 digits is the latest one not in the future: '58' → 1958, '05' → 2005."""
    if len(digits) == 4:
        return int(digits)
    year = today.year // 100 * 100 + int(digits)
    return year if year <= today.year else year - 100


def parse_date(token: str, today: dt.date | None = None) -> DateFilter | None:
    """A date as typed at a French desk, or None when the token is not one."""
    today = today or dt.date.today()
    if m := _DATE_FULL.match(token):
        return _day(_full_year(m[3], today), int(m[2]), int(m[1]))
    if m := _DATE_MONTH.match(token):
        return _month(int(m[2]), int(m[1]))
    if _DIGITS8.match(token):
        return _day(int(token[4:]), int(token[2:4]), int(token[:2]))
    if _YEAR.match(token):
        year = int(token)
        return DateFilter(dt.date(year, 1, 1), dt.date(year, 12, 31))
    return None


def _spelled_date(parts: Sequence[str], today: dt.date) -> DateFilter | None:
    """'12 mars 1958', '1er mars 58': a day, a month name, a year."""
    day, month, year = parts
    day_match = _DAY.match(day.lower())
    month_number = MONTHS_FR.get(normalize(month).replace(" ", ""))
    if day_match is None or month_number is None or not re.fullmatch(_YEAR_DIGITS, year):
        return None
    return _day(_full_year(year, today), month_number, int(day_match[1]))


def parse_query(text: str, today: dt.date | None = None) -> Query:
    today = today or dt.date.today()
    raw = text.strip()
    compact = raw.replace(" ", "")
    # An INS is typed with or without spaces; 13 characters (no key) or 15.
    if len(compact) in (13, 15) and _INS.match(compact) and not _DIGITS8.match(raw):
        return Query(words=(), ins=compact.upper())
    parts = raw.split()
    if len(parts) > 1:
        parts = [part for part in parts if not _is_civility(part)] or parts
    words: list[str] = []
    birth: DateFilter | None = None
    index = 0
    while index < len(parts):
        if birth is None and index + 3 <= len(parts):
            spelled = _spelled_date(parts[index:index + 3], today)
            if spelled is not None:
                birth = spelled
                index += 3
                continue
        part = parts[index]
        index += 1
        date = parse_date(part, today) if birth is None else None
        if date is not None:
            birth = date
        elif joined := "".join(tokens(part)):
            # "N'Diaye" or "Jean-Pierre" typed as one word is searched as the whole name ("ndiaye"),
            # which the index holds for every multi-word name, so the N'DIAYEs come before patients
            # who merely have a "diaye" and an "n..." somewhere in their names.
            words.append(joined)
    kept = sorted(dict.fromkeys(words), key=len, reverse=True)[:MAX_QUERY_TOKENS]
    typed = tuple(word for word in dict.fromkeys(words) if word in kept)
    return Query(words=tuple(kept), birth=birth, typed=typed)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the patient's rank (its position in display order) and how well it matched."""

    rank: int
    score: int  # per word: 4 for a whole-word match, plus the matching token's quality (0-4)
    close: bool = False  # second tier: the name sounds the same or is one typing error away


# Above this many index entries for the driving word, its prefix is "dense" (typing the first
# letters of a common name): the lookup then walks the index range in order and stops at the first
# page instead of scoring every candidate (measured: scoring costs about 0.6 µs per entry).
DENSE_PREFIX_ROWS = 1000


def _prefix_bounds(word: str) -> tuple[str, str]:
    # Tokens are ASCII [0-9a-z], so '{' (after 'z') closes every prefix range.
    return word, word + "{"


# A word scores 4 when it equals a token (not only its prefix), plus the token's quality (0-3).
EXACT_BONUS = 4


def _range_size(conn: sqlite3.Connection, word: str) -> int:
    """Index rows for the word's prefix: the sum of the `name_count` of the words it starts (a few
    hundred rows at most for one letter, against thousands of index rows to count). `total` is a
    float that cannot overflow: a hostile snapshot's counts only misguide the choice of driver."""
    low, high = _prefix_bounds(word)
    (size,) = conn.execute("SELECT total(rows) FROM name_count WHERE token >= ? AND token < ?", (low, high)).fetchone()
    return int(min(size, 1 << 62))


# Counting a range of the index itself (the second tier's constraints) stops here when several are
# common: past it, the other words are common too and the walk fills a page within a few thousand
# rows whichever drives.
RECOUNT_CAP = 4 * 1024


def _birth_size(conn: sqlite3.Connection, birth: DateFilter, cap: int) -> int:
    """Patients born in the date range, counted up to `cap` (a bounded walk of the index)."""
    (size,) = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM patient WHERE birth_date BETWEEN ? AND ? LIMIT ?)",
        (birth.first.isoformat(), birth.last.isoformat(), cap),
    ).fetchone()
    return int(size)


def _starts_a_name(alias: str, words: Sequence[str]) -> tuple[str, list[object]]:
    """SQL checking, on a row carrying the patient's `names`, that each word starts one of its names."""
    return "".join(f" AND instr({alias}.names, ?) > 0" for _ in words), [f" {word}" for word in words]


def _word_score(alias: str, words: Sequence[str]) -> tuple[str, list[object]]:
    """SQL adding up, on a row carrying the patient's `names`, each word's best score among them.

    A whole token scores the exact bonus plus its quality, more than any token the word only
    starts; otherwise the first token it starts has the best quality (`names_text` lists them best
    first), read after the colon that follows the word. Computed where the row is read, so that the
    database ranks the page. A malformed text scores 0 (a hostile snapshot misorders, never fails).
    """
    names = f"{alias}.names"
    terms: list[str] = []
    params: list[object] = []
    for word in words:
        exact, prefix = f" {word}:", f" {word}"
        after = f"instr({names}, ?) + {len(prefix)}"  # where the word's first token goes on
        terms.append(
            f"(CASE WHEN instr({names}, ?) > 0 "
            f"THEN {EXACT_BONUS} + CAST(substr({names}, instr({names}, ?) + {len(exact)}, 1) AS INTEGER) "
            f"ELSE CAST(substr({names}, {after} + instr(substr({names}, {after}), ':'), 1) AS INTEGER) END)"
        )
        params += [exact, exact, prefix, prefix]
    return " + ".join(terms) or "0", params


def find(
    conn: sqlite3.Connection, query: Query, limit: int = DEFAULT_LIMIT, surnames: SurnameIndex | None = None
) -> list[Hit]:
    """Patients matching the query: the names starting with every typed word, then names as heard.

    The first tier is `_first_tier`, with the patients whose surname and first given name are
    exactly two of the typed words moved to the top. When it leaves room on the page, the second
    tier (`find_close`) follows it, every hit marked `close`. `surnames` lists the surname tokens for
    the one-typing-error matches (`SurnameIndex.load`, kept for the life of the database); without
    it only the phonetic key makes the second tier.
    """
    if query.ins:
        return [Hit(rank, score) for score, rank, _ in _first_tier(conn, query, limit)]
    first = _exact_names_first(query, _first_tier(conn, query, limit))
    hits = [Hit(rank, score) for score, rank, _ in first]
    if len(hits) < limit and query.words:
        room = min(limit - len(hits), CLOSE_LIMIT)
        hits += find_close(conn, query, room, exclude={hit.rank for hit in hits}, surnames=surnames)
    return hits


def _first_tier(conn: sqlite3.Connection, query: Query, limit: int) -> list[tuple[int, int, str]]:
    """Patients matching the query as (score, rank, names), best first: exact words and whole surnames
    first, then display order.

    Each query shape takes the path whose cost follows the size of the answer, not of the practice.
    An INS drives through its index. Otherwise the most selective criterion drives: the rarest word,
    or the birth date when fewer patients were born then. Its index range is walked and every other
    criterion is checked on the row itself — each index row carries the patient's names and birth
    date (`names_text`) — so the walk never looks a patient up again. A rare driver has all its
    candidates scored; a common one is walked in index order (the whole word first, then
    alphabetically, surnames before given names) and the walk stops when the page is full.
    """
    if query.ins:
        # 15 characters: the INS itself; 13 (without the key): a prefix range on the same index.
        low, high = (query.ins, query.ins) if len(query.ins) == 15 else (query.ins, query.ins + "~")
        ins_sql = "SELECT rank FROM patient WHERE ins >= ? AND ins <= ? LIMIT ?"
        return [(1, rank, "") for (rank,) in conn.execute(ins_sql, (low, high, limit))]
    words, birth = query.words, query.birth
    if not words and birth is None:
        return []
    birth_bounds = [birth.first.isoformat(), birth.last.isoformat()] if birth else []
    if birth is not None and not words:
        sql = "SELECT rank FROM patient WHERE birth_date BETWEEN ? AND ? ORDER BY rank LIMIT ?"
        return [(0, rank, "") for (rank,) in conn.execute(sql, [*birth_bounds, limit])]
    sizes = {word: _range_size(conn, word) for word in words}
    driver = min(words, key=lambda word: (sizes[word], -len(word)))

    if birth is not None and _birth_size(conn, birth, min(sizes[driver], RECOUNT_CAP) + 1) <= sizes[driver]:
        # Fewer patients were born then than have the rarest word: walk the birth-date index, whose
        # entries carry the names.
        checks, check_params = _starts_a_name("p", words)
        score, score_params = _word_score("p", words)
        sql = (
            f"SELECT {score} AS score, p.rank, p.names FROM patient p INDEXED BY patient_birth_names "
            f"WHERE p.birth_date BETWEEN ? AND ?{checks} ORDER BY score DESC, p.rank LIMIT ?"
        )
        return conn.execute(sql, [*score_params, *birth_bounds, *check_params, limit]).fetchall()

    others = [word for word in words if word != driver]
    checks, check_params = _starts_a_name("t", others)
    if birth is not None:
        checks += " AND t.birth_date BETWEEN ? AND ?"
        check_params += birth_bounds
    low, high = _prefix_bounds(driver)
    others_score, others_params = _word_score("t", others)
    driver_score = f"(t.token = ?) * {EXACT_BONUS} + t.quality"
    if sizes[driver] < DENSE_PREFIX_ROWS:
        # Every candidate scored and the best ranked by the database. A patient two of whose tokens
        # start with the driver has two rows: the best comes first, the other is dropped here —
        # cheaper than grouping by patient, which sorts every row twice. Rarely, duplicates leave
        # the page short: it is read again, further.
        sql = (
            f"SELECT {driver_score} + {others_score} AS score, t.rank, t.names FROM name_token t "
            f"WHERE t.token >= ? AND t.token < ?{checks} ORDER BY score DESC, t.rank LIMIT ?"
        )
        params = [driver, *others_params, low, high, *check_params]
        rows = limit * 2
        while True:
            fetched = conn.execute(sql, [*params, rows]).fetchall()
            page: dict[int, tuple[int, int, str]] = {}
            for row in fetched:
                page.setdefault(row[1], row)
            if len(page) >= limit or len(fetched) < rows:
                return list(page.values())[:limit]
            rows *= 4

    # A common driver (the first letters of a frequent name): walk its index range in key order —
    # the whole word first, then alphabetically, surnames before given names — keeping the rows
    # that pass the other criteria, and stop at a page. A patient reached through two tokens of the
    # range is kept once, with its best score; the page is then ordered like the scored path.
    sql = (
        f"SELECT {driver_score} + {others_score}, t.rank, t.names FROM name_token t "
        f"WHERE t.token >= ? AND t.token < ?{checks} LIMIT ?"
    )
    found: dict[int, tuple[int, int, str]] = {}
    for score, rank, names in conn.execute(sql, [driver, *others_params, low, high, *check_params, limit * 2]):
        if rank not in found or found[rank][0] < score:
            found[rank] = (score, rank, names)
    return sorted(found.values(), key=lambda item: (-item[0], item[1]))[:limit]


def _exact_names_first(query: Query, page: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Move to the top the patients whose surname and first given name are what was typed.

    "martin jean" must open on MARTIN Jean, not on JEAN (MARTIN) Germaine, whose two surnames
    score higher word by word, nor on MARTIN Pierre Jean. Either order is accepted ("jean martin"),
    and two typed words may make one name ("martin jean pierre" is MARTIN Jean-Pierre): the more
    typed words the surname and first given name account for, the higher the patient.
    """
    typed = query.typed
    if len(typed) < 2 or len(page) < 2:
        return page
    # Each name the typed words can make: one word, or two successive words joined.
    spans = [(typed[i], {i}) for i in range(len(typed))]
    spans += [(typed[i] + typed[i + 1], {i, i + 1}) for i in range(len(typed) - 1)]
    # What the names text holds when a span is a whole surname, or the whole first given name.
    as_surname = [(used, (f" {name}:{QUALITY_BIRTH_NAME}", f" {name}:{QUALITY_USED_NAME}")) for name, used in spans]
    as_given = [(used, f" {name}:{QUALITY_FIRST_GIVEN_NAME}") for name, used in spans]

    def covered(names: str) -> int:
        surnames = [used for used, needles in as_surname if needles[0] in names or needles[1] in names]
        if not surnames:
            return 0
        givens = [used for used, needle in as_given if needle in names]
        return max((len(one) + len(other) for one in surnames for other in givens if not one & other), default=0)

    return sorted(page, key=lambda item: -covered(item[2]))  # stable: the score order stays within a group


# --- second tier: names as heard ---------------------------------------------------------------------

SOUND_MIN_LENGTH = 3  # shorter words sound like too many names
# At most this many names as heard follow the first tier: enough to find the one meant (the
# receptionist then checks the date of birth), and the walk stops sooner.
CLOSE_LIMIT = 20
TYPO_MIN_LENGTH = 4  # one typing error in a shorter word is another name altogether
TYPO_MAX_DISTANCE = 1
# Per word in the second tier: a sound-alike token scores 2 + its quality, a one-error surname 1 +
# its quality, a prefix its quality (an exact token keeps EXACT_BONUS + quality).
SOUND_BONUS = 2
TYPO_BONUS = 1


class SurnameIndex:
    """Every distinct surname word of a snapshot, by first letter and length, for typo lookups.

    One typing error is searched among surnames of the same first letter (a receptionist who heard
    the name gets its first letter right; a first letter heard wrong — D/T, B/P, G/J — is the
    phonetic key's job) and of a length one shorter, equal or one longer (what one edit allows).
    rapidfuzz computes the distance (optimal string alignment: one substitution, insertion,
    deletion or swap of two neighbouring letters).
    """

    def __init__(self, surnames: Iterable[str]) -> None:
        self._by_shape: dict[tuple[str, int], list[str]] = {}
        for surname in surnames:
            if surname:
                self._by_shape.setdefault((surname[0], len(surname)), []).append(surname)

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> SurnameIndex:
        return cls(token for (token,) in conn.execute("SELECT token FROM name_word WHERE surname = 1"))

    def one_edit(self, word: str) -> list[str]:
        """Surname words at most one typing error away from `word` (itself included if present)."""
        if len(word) < TYPO_MIN_LENGTH:
            return []
        found: list[str] = []
        for length in (len(word) - 1, len(word), len(word) + 1):
            choices = self._by_shape.get((word[0], length))
            if choices:
                matches = process.extract(
                    word, choices, scorer=OSA.distance, score_cutoff=TYPO_MAX_DISTANCE, limit=None
                )
                found += [choice for choice, _, _ in matches]
        return found


@dataclass(frozen=True, slots=True)
class _Heard:
    """One typed word and the index words that may stand for it in the second tier."""

    word: str
    alike: tuple[str, ...]  # words with its phonetic key that do not start with it (any name)
    typos: tuple[str, ...]  # surname words one error away that do not start with it

    @property
    def fuzzy(self) -> bool:
        return bool(self.alike or self.typos)

    def ways(self, alias: str, *, prefix: bool = False) -> list[tuple[str, list[object]]]:
        """SQL conditions on the token row `alias` for this word heard differently (same sound, one
        typo on a surname); with `prefix`, the tokens starting with it too."""
        ways: list[tuple[str, list[object]]] = []
        if prefix:
            ways.append((f"{alias}.token >= ? AND {alias}.token < ?", [*_prefix_bounds(self.word)]))
        if self.alike:
            ways.append((f"{alias}.token IN ({','.join('?' * len(self.alike))})", [*self.alike]))
        if self.typos:
            marks = ",".join("?" * len(self.typos))
            ways.append((f"{alias}.token IN ({marks}) AND {alias}.quality >= ?", [*self.typos, min(SURNAME_QUALITIES)]))
        return ways

    def needles(self, *, prefix: bool = False) -> list[str]:
        """What the patient's `names` text contains when one of its tokens is this word heard
        differently (with `prefix`, or starts with it): the same checks as `ways`, on the row itself."""
        found = [f" {self.word}"] if prefix else []
        found += [f" {token}:" for token in self.alike]
        found += [f" {token}:{quality}" for token in self.typos for quality in sorted(SURNAME_QUALITIES)]
        return found

    def score(self, token: str, quality: int) -> int | None:
        if token == self.word:
            return EXACT_BONUS + quality
        if token in self.alike:
            return SOUND_BONUS + quality
        if token in self.typos and quality in SURNAME_QUALITIES:
            return TYPO_BONUS + quality
        if token.startswith(self.word):
            return quality
        return None


def _heard(conn: sqlite3.Connection, word: str, surnames: SurnameIndex | None) -> _Heard:
    key = sound_key(word) if len(word) >= SOUND_MIN_LENGTH else ""
    alike: list[str] = []
    if len(key) > 1:
        rows = conn.execute("SELECT token FROM name_word WHERE sound = ?", (key,))
        alike = [token for (token,) in rows if not token.startswith(word)]
    typos = [t for t in (surnames.one_edit(word) if surnames else []) if not t.startswith(word) and t not in alike]
    return _Heard(word, tuple(alike), tuple(typos))


class _Constraint:
    """One condition every second-tier patient meets: rows to walk (`sources`) or a check on a row.

    A name constraint is met by one `name_token` row of the patient meeting any of the conditions
    `ways(alias)` gives for that row's alias, or — on any row carrying the patient's `names` — by
    one of its `needles`; the birth-date constraint is a range of the birth-date index.
    """

    def __init__(
        self,
        ways: Callable[[str], list[tuple[str, list[object]]]] | None = None,
        needles: Sequence[str] = (),
        birth: DateFilter | None = None,
    ) -> None:
        self.ways = ways or (lambda alias: [])
        self.needles = list(needles)
        self.birth: list[object] = [birth.first.isoformat(), birth.last.isoformat()] if birth else []
        self._sizes: dict[int, int] = {}

    def sources(self) -> list[tuple[str, list[object]]]:
        """SELECT statements of the (rank, names) meeting it, each walked in turn ("... WHERE cond")."""
        if self.birth:
            return [(
                "SELECT t.rank, t.names FROM patient t INDEXED BY patient_birth_names "
                "WHERE t.birth_date BETWEEN ? AND ?", self.birth,
            )]
        return [(f"SELECT t.rank, t.names FROM name_token t WHERE {sql}", params) for sql, params in self.ways("t")]

    def check(self) -> tuple[str, list[object]]:
        """SQL testing it on the row `t` walked by another constraint (a `name_token` or `patient` row)."""
        if self.birth:
            return "t.birth_date BETWEEN ? AND ?", self.birth
        return f"({' OR '.join('instr(t.names, ?) > 0' for _ in self.needles)})", [*self.needles]

    def size(self, conn: sqlite3.Connection, cap: int = DENSE_PREFIX_ROWS) -> int:
        """Rows its sources would walk, counted up to `cap` (a bounded walk of the index)."""
        if cap not in self._sizes:
            total = 0
            for sql, params in self.sources():
                if total >= cap:
                    break
                (rows,) = conn.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)", [*params, cap - total]).fetchone()
                total += int(rows)
            self._sizes[cap] = total
        return self._sizes[cap]


def _fewest_rows(conn: sqlite3.Connection, constraints: Sequence[_Constraint]) -> _Constraint:
    """The constraint with the fewest rows to walk. Each is counted only up to the fewest found so far
    (counting is a walk too), then, when all are common, further up to RECOUNT_CAP."""
    best = constraints[0]
    for cap in (DENSE_PREFIX_ROWS, RECOUNT_CAP):
        fewest = best.size(conn, cap)
        for constraint in constraints:
            if fewest == 0:
                break
            if constraint is not best and (size := constraint.size(conn, fewest)) < fewest:
                best, fewest = constraint, size
        if fewest < DENSE_PREFIX_ROWS:
            break
    return best


def find_close(
    conn: sqlite3.Connection,
    query: Query,
    limit: int,
    *,
    exclude: set[int],
    surnames: SurnameIndex | None = None,
) -> list[Hit]:
    """The second tier: patients every typed word matches by prefix, phonetic key or one typing error,
    at least one of them not by prefix (those are the first tier's), best first.

    The words standing for a typed word heard differently are found first: the index words with
    its phonetic key (`name_word`, a few per key) that do not start with it, and the surname words
    one error away (`SurnameIndex`). Each typed word that has some is in turn the one heard
    differently. Its patients meet several constraints — that word heard differently, every other
    word by prefix, sound or typo, the birth date — and, as in the first tier, the one with the
    fewest index rows drives: its rows are walked with the others checked on each row (its names
    and birth date) until a page is collected; the page is then scored word by word. The cost
    follows the number of patients whose names sound or start alike, not the size of the practice.
    """
    heard = [_heard(conn, word, surnames) for word in query.words]
    if limit <= 0 or not any(h.fuzzy for h in heard):
        return []
    matches = {h.word: _Constraint(functools.partial(h.ways, prefix=True), h.needles(prefix=True)) for h in heard}
    differently = {h.word: _Constraint(h.ways, h.needles()) for h in heard if h.fuzzy}
    born = _Constraint(birth=query.birth) if query.birth else None
    found: dict[int, str] = {}
    for word in sorted(differently, key=lambda w: differently[w].size(conn)):
        constraints = [differently[word], *(matches[h.word] for h in heard if h.word != word)]
        if born is not None:
            constraints.append(born)
        # When all are common (a frequent name heard differently, a frequent given name), they are
        # counted further to walk the shortest range, the few patients they have in common being at its end.
        driver = _fewest_rows(conn, constraints)
        checks = [constraint.check() for constraint in constraints if constraint is not driver]
        where = "".join(f" AND {sql}" for sql, _ in checks)
        check_params = [value for _, params in checks for value in params]
        for source, params in driver.sources():
            sql = f"{source}{where} LIMIT ?"
            for rank, names in conn.execute(sql, [*params, *check_params, limit + len(exclude)]):
                if rank not in exclude:
                    found[rank] = names
            if len(found) >= limit:
                break
        if len(found) >= limit:
            break
    return _score_close(heard, found, limit)


def _score_close(heard: list[_Heard], found: Mapping[int, str], limit: int) -> list[Hit]:
    """Score the collected patients word by word (whole word, sound, typo, prefix) and keep the best page."""
    scored = []
    for rank, names in found.items():
        scores = [-1] * len(heard)
        for token, quality in parse_names(names).items():
            for index, word in enumerate(heard):
                score = word.score(token, quality)
                if score is not None and score > scores[index]:
                    scores[index] = score
        if min(scores) >= 0:
            scored.append((sum(scores), rank))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [Hit(rank, score, close=True) for score, rank in scored[:limit]]

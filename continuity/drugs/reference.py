"""The drug reference as the snapshot carries it, and the resolver that reads a treatment line through it.

The publisher reads the BDPM (continuity/drugs/bdpm.py), writes the compact tables below into the
snapshot, and resolves every treatment once (the resolution is stored with it, deduplicated in
`drug_resolution`). The appliance reads the same tables through `DrugReference` to resolve the lines
a doctor adds, complete DCI names, and match allergies written as brands.

Resolution, in order, recording the method (model.ResolutionMethod):
1. code: a CIP13 (or a CIP7, turned into its CIP13) or a CIS code of the source. UCD codes are not in
   the four BDPM files read here (they are in CIS_UCD, not read): a UCD is noted, never used. ATC
   codes name a class, not a product: noted, not used. A code whose product contradicts the line's
   DCI text is not trusted: the line is unresolved.
2. denomination: the brand or the text is exactly a product's denomination (case, accents and "L.P."
   aside).
3. text: the DCI text names substances (salts aside): the products with exactly those substances,
   narrowed by strength and form when they match; else the brand text is the start of denominations
   ("OXYCONTIN LP 20 mg" → "OXYCONTIN LP 20 mg, comprimé pelliculé à libération prolongée"), narrowed
   the same way, and only when every candidate has the same substances.
4. unresolved: the line's substance is unidentified.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from continuity.drugs import text
from continuity.model import DrugResolution, ResolutionMethod

if TYPE_CHECKING:  # the BDPM reader is publisher-side: the appliance only reads the tables
    from continuity.drugs.bdpm import Bdpm

TABLES = """
CREATE TABLE drug_product (
    cis INTEGER PRIMARY KEY CHECK (cis BETWEEN 10000000 AND 99999999),
    denomination TEXT NOT NULL,
    form TEXT NOT NULL,
    routes TEXT NOT NULL,
    secure_paper INTEGER NOT NULL CHECK (secure_paper IN (0, 1)),
    narcotic INTEGER NOT NULL CHECK (narcotic IN (0, 1)),
    hospital_only INTEGER NOT NULL CHECK (hospital_only IN (0, 1)),
    list TEXT NOT NULL CHECK (list IN ('', 'I', 'II')),
    max_days INTEGER CHECK (max_days IS NULL OR max_days BETWEEN 1 AND 366),
    later_rule TEXT NOT NULL,
    name_key TEXT NOT NULL
) STRICT;
CREATE TABLE drug_substance (
    cis INTEGER NOT NULL,
    position INTEGER NOT NULL CHECK (position BETWEEN 0 AND 99),
    key TEXT NOT NULL,
    sa_key TEXT NOT NULL,
    dci TEXT NOT NULL,
    strength TEXT NOT NULL,
    base_strength TEXT NOT NULL,
    PRIMARY KEY (cis, position)
) STRICT, WITHOUT ROWID;
CREATE TABLE drug_cip13 (
    cip13 INTEGER PRIMARY KEY CHECK (cip13 BETWEEN 1000000000000 AND 9999999999999),
    cis INTEGER NOT NULL
) STRICT;
CREATE TABLE drug_resolution (
    id INTEGER PRIMARY KEY,
    method TEXT NOT NULL,
    products TEXT NOT NULL,
    substances TEXT NOT NULL,
    routes TEXT NOT NULL,
    form TEXT NOT NULL,
    secure_paper INTEGER NOT NULL CHECK (secure_paper IN (0, 1)),
    narcotic INTEGER NOT NULL CHECK (narcotic IN (0, 1)),
    hospital_only INTEGER NOT NULL CHECK (hospital_only IN (0, 1)),
    list TEXT NOT NULL CHECK (list IN ('', 'I', 'II')),
    max_days INTEGER CHECK (max_days IS NULL OR max_days BETWEEN 1 AND 366),
    detail TEXT NOT NULL,
    denomination TEXT NOT NULL
) STRICT;
"""

INDEXES = """
CREATE INDEX drug_product_name ON drug_product (name_key);
CREATE INDEX drug_substance_key ON drug_substance (key, cis);
CREATE INDEX drug_substance_sa_key ON drug_substance (sa_key, cis);
"""

COUNTED_TABLES = ("drug_product", "drug_substance", "drug_cip13", "drug_resolution")

# A DCI-level resolution can match many generics; the stored candidate list is capped (the
# conditions are computed on every candidate before the cap).
MAX_STORED_PRODUCTS = 200


def write_tables(conn: sqlite3.Connection, bdpm: Bdpm) -> dict[str, int]:
    """Insert a read BDPM into the (already created) drug tables of `conn`. Returns the row counts."""
    conn.executemany(
        "INSERT INTO drug_product VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            (p.cis, p.denomination, p.form, ";".join(p.routes), int(p.conditions.secure_paper),
             int(p.conditions.narcotic), int(p.conditions.hospital_only), p.conditions.list,
             p.conditions.max_days, p.conditions.later_rule, text.fold(p.denomination))
            for p in bdpm.products.values()
        ),
    )
    conn.executemany(
        "INSERT INTO drug_substance VALUES (?,?,?,?,?,?,?)",
        (
            (p.cis, position, s.key, s.sa_key or s.key, s.dci, s.strength, s.base_strength)
            for p in bdpm.products.values()
            for position, s in enumerate(p.substances[:100])
        ),
    )
    conn.executemany("INSERT INTO drug_cip13 VALUES (?,?)", sorted(bdpm.cip13.items()))
    return {
        "drug_product": len(bdpm.products),
        "drug_substance": sum(min(len(p.substances), 100) for p in bdpm.products.values()),
        "drug_cip13": len(bdpm.cip13),
    }


def in_memory(bdpm: Bdpm) -> DrugReference:
    """A reference on a private in-memory database (the publisher resolves against it while building)."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(TABLES + INDEXES)
    write_tables(conn, bdpm)
    conn.commit()
    return DrugReference(conn, owns_connection=True)


def describe(bdpm: Bdpm) -> str:
    """The snapshot's meta `drug_reference`: where the reference came from and what reading it found."""
    report = bdpm.report
    return json.dumps(
        {
            "source": "BDPM",
            "folder": report.folder.name,
            "products": len(bdpm.products),
            "cip13": len(bdpm.cip13),
            "encodings": report.encodings,
            "bad_lines": report.bad_line_count,
            "dropped_products": len(report.dropped_products),
            "later_rules": report.later_rule_products,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


# --- what a line says ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DrugQuery:
    """The parts of a treatment or new line the resolver reads."""

    dci: str
    strength: str = ""
    form: str = ""
    brand: str = ""
    codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProductRow:
    cis: int
    denomination: str
    form: str
    routes: tuple[str, ...]
    secure_paper: bool
    narcotic: bool
    hospital_only: bool
    list: str
    max_days: int | None
    later_rule: str
    substances: tuple[tuple[str, str, str, str, str], ...]  # (key, SA key, dci, strength, base strength)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(s[0] for s in self.substances)

    def has_substances(self, keys: frozenset[str]) -> bool:
        """True when `keys` name exactly this product's substances (each by its base or its salt)."""
        if len(keys) != len(self.substances):
            return False
        left = list(self.substances)
        for key in keys:
            match = next((s for s in left if key in (s[0], s[1])), None)
            if match is None:
                return False
            left.remove(match)
        return True

    def quantities(self) -> frozenset[tuple[str, float]]:
        found = set(text.quantities(self.denomination.partition(",")[0]))
        for _key, _sa_key, _dci, strength, base in self.substances:
            found |= text.quantities(strength) | text.quantities(base)
        return frozenset(found)

    def form_words(self) -> frozenset[str]:
        # The denomination's form ("comprimé vaginal") says more than the form column ("comprimé").
        _name, _, denomination_form = self.denomination.partition(",")
        return text.form_words(denomination_form) | text.form_words(self.form)


_CIP_SYSTEM = re.compile(r"cip|1\.2\.250\.1\.213\.2\.3\.1|ansm.*presentation", re.IGNORECASE)
_CIS_SYSTEM = re.compile(r"\bcis\b|codecis|code-cis|1\.2\.250\.1\.213\.2\.3\.2|specialite", re.IGNORECASE)
_UCD_SYSTEM = re.compile(r"ucd", re.IGNORECASE)
_ATC_SYSTEM = re.compile(r"atc", re.IGNORECASE)


def _ean_check(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return str((10 - total % 10) % 10)


def cip7_to_cip13(cip7: str) -> str:
    """A CIP7 as the CIP13 printed on the same box: '34009' + CIP7 + EAN-13 check digit."""
    body = "34009" + cip7
    return body + _ean_check(body)


class DrugReference:
    """Read access to the drug tables of a database connection (the snapshot's, or the publisher's own)."""

    def __init__(self, conn: sqlite3.Connection, *, owns_connection: bool = False) -> None:
        self._conn = conn
        self._owns = owns_connection
        self._cache: dict[DrugQuery, DrugResolution] = {}

    def close(self) -> None:
        self._cache.clear()
        if self._owns:
            self._conn.close()

    def product_count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM drug_product").fetchone()[0])

    @property
    def is_empty(self) -> bool:
        return self._conn.execute("SELECT 1 FROM drug_product LIMIT 1").fetchone() is None

    # -- products

    def products(self, cis_codes: Iterable[int]) -> list[ProductRow]:
        wanted = sorted(set(cis_codes))
        rows: list[ProductRow] = []
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            substances: dict[int, list[tuple[str, str, str, str, str]]] = {}
            for cis, key, sa_key, dci, strength, base in self._conn.execute(
                "SELECT cis, key, sa_key, dci, strength, base_strength FROM drug_substance "
                f"WHERE cis IN ({marks}) ORDER BY cis, position",
                part,
            ):
                substances.setdefault(cis, []).append((key, sa_key, dci, strength, base))
            for row in self._conn.execute(
                "SELECT cis, denomination, form, routes, secure_paper, narcotic, hospital_only, list, max_days, "
                f"later_rule FROM drug_product WHERE cis IN ({marks}) ORDER BY cis",
                part,
            ):
                rows.append(ProductRow(
                    row[0], row[1], row[2], tuple(r for r in row[3].split(";") if r), bool(row[4]), bool(row[5]),
                    bool(row[6]), row[7], row[8], row[9], tuple(substances.get(row[0], ())),
                ))
        return rows

    def by_cip13(self, code: int) -> int | None:
        row = self._conn.execute("SELECT cis FROM drug_cip13 WHERE cip13 = ?", (code,)).fetchone()
        return None if row is None else int(row[0])

    def by_name(self, name_key: str) -> list[int]:
        return [row[0] for row in self._conn.execute("SELECT cis FROM drug_product WHERE name_key = ?", (name_key,))]

    def by_name_prefix(self, prefix: str, limit: int = 400) -> list[int]:
        if len(prefix) < 3:
            return []
        return [
            row[0]
            for row in self._conn.execute(
                "SELECT cis FROM drug_product WHERE name_key >= ? AND name_key < ? LIMIT ?",
                (prefix, prefix + "\U0010ffff", limit),
            )
        ]

    def by_substances(self, keys: frozenset[str]) -> list[int]:
        """The products whose substance keys are exactly `keys`."""
        if not keys:
            return []
        candidates: set[int] | None = None
        for key in sorted(keys):
            found = {row[0] for row in self._conn.execute(
                "SELECT cis FROM drug_substance WHERE key = ? UNION SELECT cis FROM drug_substance WHERE sa_key = ?",
                (key, key),
            )}
            candidates = found if candidates is None else candidates & found
            if not candidates:
                return []
        return [p.cis for p in self.products(candidates or ()) if p.has_substances(keys)]

    def known_substance(self, key: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM drug_substance WHERE key = ? "
            "UNION ALL SELECT 1 FROM drug_substance WHERE sa_key = ? LIMIT 1",
            (key, key),
        ).fetchone() is not None

    @functools.cached_property
    def _dci_names(self) -> tuple[tuple[str, str], ...]:
        counted = Counter(dci for (dci,) in self._conn.execute("SELECT dci FROM drug_substance"))
        return tuple(sorted(((text.fold(dci), dci) for dci in counted), key=lambda item: item[0]))

    def complete_dci(self, typed: str, limit: int = 8) -> list[str]:
        """DCI names starting with what was typed (accents and case aside), shortest first."""
        prefix = text.fold(typed)
        if len(prefix) < 2:
            return []
        found = [dci for folded, dci in self._dci_names if folded.startswith(prefix)]
        return sorted(found, key=lambda dci: (len(dci), dci))[:limit]

    # -- resolving

    def resolve(self, query: DrugQuery) -> DrugResolution:
        cached = self._cache.get(query)
        if cached is None:
            cached = self._cache[query] = self._resolve(query)
            if len(self._cache) > 50_000:  # a hostile export with millions of distinct texts
                self._cache.clear()
        return cached

    def _resolve(self, query: DrugQuery) -> DrugResolution:
        notes: list[str] = []
        dci, strength, form = query.dci, query.strength, query.form
        if not strength and not form:
            split = text.split_free_text(dci)
            dci, strength, form = split.substance, split.strength, split.form
        text_keys = frozenset(k for k in (text.substance_key(n) for n in text.substance_names(dci)) if k)
        known_text_keys = text_keys if text_keys and all(self.known_substance(k) for k in text_keys) else frozenset()

        for coded in query.codes:
            system, _, value = coded.rpartition("|")
            value = value.strip()
            cis = self._code(system, value, notes)
            if cis is None:
                continue
            product = self.products([cis])
            if not product:
                notes.append(f"code {value}: product {cis} not in the reference")
                continue
            if known_text_keys and not product[0].has_substances(known_text_keys):
                return DrugResolution(
                    ResolutionMethod.UNRESOLVED,
                    detail=f"code {value} is {product[0].denomination!r}, which contradicts the text {query.dci!r}",
                )
            return self._merge(ResolutionMethod.CODE, product, form, [*notes, f"code {value}"])

        for candidate in (query.brand, query.dci, f"{query.dci} {query.strength}, {query.form}"):
            folded = text.fold(candidate)
            if folded:
                found = self.by_name(folded)
                if found:
                    return self._merge(ResolutionMethod.DENOMINATION, self.products(found), form,
                                       [*notes, f"denomination {candidate!r}"])

        if known_text_keys:
            products = self.products(self.by_substances(known_text_keys))
            if products:
                narrowed = self._narrow(products, strength, form, notes)
                if not narrowed:
                    notes.append(f"no product of {sorted(known_text_keys)} with strength {strength!r} and form "
                                 f"{form!r}: conditions of every product with these substances")
                merged = self._merge(ResolutionMethod.TEXT, narrowed or products, form,
                                     [*notes, f"substances {sorted(known_text_keys)}"])
                # Named by its DCI: no product name is shown as if the export had named it.
                return dataclasses.replace(merged, denomination="")

        for candidate in (query.brand, query.dci):
            resolved = self._by_brand(candidate, strength, form, notes)
            if resolved is not None:
                return resolved
        if text_keys and not known_text_keys:
            unknown = sorted(k for k in text_keys if not self.known_substance(k))
            notes.append(f"substance(s) {unknown} not in the reference")
        return DrugResolution(ResolutionMethod.UNRESOLVED, detail="; ".join([*notes, "nothing matched"]))

    def _code(self, system: str, value: str, notes: list[str]) -> int | None:
        digits = value.isascii() and value.isdigit()
        if _UCD_SYSTEM.search(system):
            notes.append(f"UCD {value}: UCD codes are not in the BDPM files read (CIS_UCD), not used")
            return None
        if _ATC_SYSTEM.search(system):
            notes.append(f"ATC {value}: a class, not a product, not used")
            return None
        if digits and len(value) == 13 and (_CIP_SYSTEM.search(system) or value.startswith("3400")):
            return self.by_cip13(int(value))
        if digits and len(value) == 7 and _CIP_SYSTEM.search(system):
            return self.by_cip13(int(cip7_to_cip13(value)))
        if digits and len(value) == 8 and _CIS_SYSTEM.search(system):
            return int(value)
        notes.append(f"code {system}|{value}: not a CIP13, CIP7 or CIS code, not used")
        return None

    def _narrow(self, products: Sequence[ProductRow], strength: str, form: str,
                notes: list[str] | None = None) -> list[ProductRow]:
        """The candidates that match the strength and the form; relaxed one at a time, with a note, if none do."""
        by_strength = _by_strength(products, strength)
        both = _by_form(by_strength, form)
        if both:
            return both
        by_form = _by_form(products, form)
        if by_form and notes is not None:
            notes.append(f"strength {strength!r} not found: every strength of the form")
            return by_form
        if by_strength and not text.form_words(form):
            return by_strength
        return []

    def _by_brand(self, candidate: str, strength: str, form: str, notes: list[str]) -> DrugResolution | None:
        folded = text.fold(candidate.partition(",")[0])
        if len(folded) < 3:
            return None
        name_words: list[str] = []
        for word in folded.split():
            if word[0].isdigit():
                break
            name_words.append(word)
        prefixes = [folded]
        if name_words and " ".join(name_words) != folded:
            prefixes.append(" ".join(name_words))
        for prefix in prefixes:
            found = self.by_name_prefix(prefix)
            # The prefix must end on a word: "DOLIPRANE" must not find "DOLIPRANELIQUIZ".
            products = [
                p for p in self.products(found)
                if text.fold(p.denomination).startswith(prefix + " ") or text.fold(p.denomination) == prefix
            ]
            if not products:
                continue
            narrowed = self._narrow(products, strength or candidate, form, notes)
            chosen = narrowed or products
            if len({p.keys for p in chosen}) != 1:
                notes.append(f"brand {prefix!r}: candidates with different substances")
                return DrugResolution(ResolutionMethod.UNRESOLVED, detail="; ".join(notes))
            if not narrowed:
                notes.append(f"brand {prefix!r}: strength or form not found, every product of the brand")
            return self._merge(ResolutionMethod.TEXT, chosen, form, [*notes, f"brand {prefix!r}"])
        return None

    def _merge(self, method: ResolutionMethod, products: Sequence[ProductRow], form: str,
               notes: list[str]) -> DrugResolution:
        routes = Counter(route for p in products for route in p.routes)
        first = products[0]
        forms = {p.form for p in products}
        limits = [p.max_days for p in products if p.max_days is not None]
        lists = {p.list for p in products}
        later = sorted({p.later_rule for p in products if p.later_rule})
        if later:
            notes.append("later rule: " + "; ".join(later))
        return DrugResolution(
            method=method,
            products=tuple(sorted(p.cis for p in products))[:MAX_STORED_PRODUCTS],
            substances=tuple(dict.fromkeys(s[2] for s in first.substances)),
            routes=tuple(route for route, _ in routes.most_common()),
            form=form or (forms.pop() if len(forms) == 1 else ""),
            secure_paper=any(p.secure_paper for p in products),
            narcotic=any(p.narcotic for p in products),
            hospital_only=all(p.hospital_only for p in products),
            list="I" if "I" in lists else ("II" if "II" in lists else ""),
            max_days=min(limits) if limits else None,
            detail="; ".join(notes),
            denomination=first.denomination if len(products) == 1 else "",
        )


def _by_strength(products: Sequence[ProductRow], strength: str) -> list[ProductRow]:
    wanted = text.quantities(strength)
    if not wanted:
        return list(products)
    amounts = {q for q in wanted if "/" not in q[0]}
    concentrations = {q for q in wanted if "/" in q[0]}
    return [
        p for p in products
        if (amounts and amounts <= p.quantities()) or (concentrations and concentrations <= p.quantities())
    ]


def _by_form(products: Sequence[ProductRow], form: str) -> list[ProductRow]:
    """The products whose form contains every word of `form`; else those sharing its first word and the most
    others ("comprimé pelliculé gastro-résistant" finds "comprimé gastro-résistant")."""
    wanted = text.form_words(form)
    if not wanted:
        return list(products)
    exact = [p for p in products if wanted <= p.form_words()]
    if exact:
        return exact
    head = next(iter(text.form_words(form.split(",")[0].split()[0]) if form.split() else ()), "")
    if not head:
        return []
    sharing = [(len(wanted & p.form_words()), p) for p in products if head in p.form_words()]
    if not sharing:
        return []
    best = max(score for score, _ in sharing)
    return [p for score, p in sharing if score == best and score >= 2]


# --- stored resolutions ----------------------------------------------------------------------------


def resolution_row(resolution: DrugResolution) -> tuple[object, ...]:
    """The drug_resolution columns after `id`."""
    return (
        resolution.method.value, json.dumps(list(resolution.products)),
        json.dumps(list(resolution.substances), ensure_ascii=False),
        json.dumps(list(resolution.routes), ensure_ascii=False), resolution.form, int(resolution.secure_paper),
        int(resolution.narcotic), int(resolution.hospital_only), resolution.list, resolution.max_days,
        resolution.detail, resolution.denomination,
    )


def _json_list(value: str, kind: type, limit: int) -> tuple[object, ...]:
    data = json.loads(value)
    if not isinstance(data, list) or not all(isinstance(item, kind) and not isinstance(item, bool) for item in data):
        raise ValueError(f"expected a JSON list of {kind.__name__}")
    if len(data) > limit:
        raise ValueError(f"{len(data)} items, at most {limit}")
    return tuple(data)


def resolution_from_row(row: Sequence[object]) -> DrugResolution:
    """A stored resolution (the columns after `id`). Raises ValueError on anything malformed."""
    (method, products, substances, routes, form, secure, narcotic, hospital, listed, max_days, detail,
     denomination) = row
    if not all(isinstance(v, str) for v in (method, products, substances, routes, form, listed, detail,
                                             denomination)):
        raise ValueError("drug_resolution: text column holds a non-text value")
    return DrugResolution(
        method=ResolutionMethod(str(method)),
        products=tuple(int(p) for p in _json_list(str(products), int, MAX_STORED_PRODUCTS)),  # type: ignore[call-overload]
        substances=tuple(str(s) for s in _json_list(str(substances), str, 100)),
        routes=tuple(str(r) for r in _json_list(str(routes), str, 100)),
        form=str(form),
        secure_paper=bool(secure),
        narcotic=bool(narcotic),
        hospital_only=bool(hospital),
        list=str(listed),
        max_days=int(max_days) if isinstance(max_days, int) else None,
        detail=str(detail),
        denomination=str(denomination),
    )

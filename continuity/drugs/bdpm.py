"""Read the BDPM files (the French public drug database) into the products the drug reference keeps.

The folder is the one the BDPM's download page serves (see /work/shared/data/bdpm/SOURCES.md for the
columns): `CIS_bdpm.txt` (products), `CIS_COMPO_bdpm.txt` (composition), `CIS_CPD_bdpm.txt`
(prescribing conditions) and `CIS_CIP_bdpm.txt` (boxes and their CIP13). Tab-separated, no header,
UTF-8 in some downloads and Windows-1252 in others (each file is tried as UTF-8, then cp1252),
CRLF or LF, trailing tabs.

Errors name the file and the line. A missing file, an undecodable byte, a control character (a
UTF-16 file, a binary), or a first line whose column count is not the format's ("unknown column
count": the BDPM changed its layout, or this is not the right file) stop the read. A later line that
cannot be parsed is a `BadLine`: with `strict` it stops the read, otherwise it is skipped and
reported, and the product it belongs to is dropped when the line was part of its composition or
conditions (a product whose substances or conditions are incomplete must not look complete). A
reference with no product is refused.

Only what the ordonnance rules need is kept: a product's denomination, form, routes, substances with
strengths, and its conditions reduced to secure paper, narcotic, hospital only, liste I/II and the
duration limit in days.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from continuity.drugs import text
from continuity.errors import DrugReferenceError

PRODUCTS_FILE = "CIS_bdpm.txt"
COMPOSITION_FILE = "CIS_COMPO_bdpm.txt"
CONDITIONS_FILE = "CIS_CPD_bdpm.txt"
PRESENTATIONS_FILE = "CIS_CIP_bdpm.txt"
FILES = (PRODUCTS_FILE, COMPOSITION_FILE, CONDITIONS_FILE, PRESENTATIONS_FILE)

# Accepted column counts per file (a trailing tab adds an empty last column). The BDPM has added
# columns over the years at the end of CIS_CIP; the first ones, which we read, have not moved.
COLUMNS: dict[str, range] = {
    PRODUCTS_FILE: range(11, 14),
    COMPOSITION_FILE: range(8, 10),
    CONDITIONS_FILE: range(2, 4),
    PRESENTATIONS_FILE: range(10, 15),
}

# More bad lines than this share of a file means the file is not what we think it is.
MAX_BAD_SHARE = 0.05
MAX_FILE_BYTES = 64 << 20  # the real files are 1-5 MB
MAX_REPORTED_LINES = 200

_CIS = re.compile(r"[0-9]{8}")
_CIP13 = re.compile(r"[0-9]{13}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- conditions ----------------------------------------------------------------------------------

SECURE_PAPER_CONDITIONS = ("stupefiants", "prescription en toutes lettres sur ordonnance securisee")
NARCOTIC_CONDITION = "stupefiants"
HOSPITAL_ONLY_CONDITIONS = ("prescription hospitaliere", "reserve a l usage hospitalier")
_LIMIT = re.compile(r"^prescription limitee a (\d+) (jours?|semaines?|mois)\b(?: ou (\d+) (jours?|semaines?|mois))?")


def _days(count: str, unit: str) -> int:
    number = int(count)
    if unit.startswith("jour"):
        return number
    if unit.startswith("semaine"):
        return number * 7
    return (number * 365 + 6) // 12  # months: 6 mois = 183 jours, 12 mois = 365


@dataclass(frozen=True, slots=True)
class LaterRule:
    """A legal change applied on top of the reference: products containing `substances` need secure paper.

    A BDPM copy older than the change does not say it; a newer one does, and the rule then changes
    nothing (the build reports how many products it marked).
    """

    substances: tuple[str, ...]
    since: dt.date
    source: str


# ANSM decision of 26/09/2024 (in force 01/03/2025, after a postponement from 01/12/2024): every
# medicine containing tramadol, codéine or dihydrocodéine, alone or combined, is prescribed on secure
# paper (or the national e-prescription, which this appliance never prints), for 12 weeks at most.
LATER_RULES = (
    LaterRule(
        ("tramadol", "codeine", "dihydrocodeine"),
        dt.date(2025, 3, 1),
        "décision ANSM du 26/09/2024 (ordonnance sécurisée depuis le 01/03/2025)",
    ),
)


@dataclass(frozen=True, slots=True)
class Conditions:
    """A product's prescribing conditions, reduced to what the ordonnance rules need."""

    secure_paper: bool = False  # "stupéfiants" or "prescription en toutes lettres sur ordonnance sécurisée"
    narcotic: bool = False  # "stupéfiants" proper
    hospital_only: bool = False  # "prescription hospitalière", "réservé à l'usage HOSPITALIER"
    list: str = ""  # "I", "II" or ""
    max_days: int | None = None  # "prescription limitée à N semaines" (the shortest when several)
    later_rule: str = ""  # the LaterRule that marked it secure paper, if any

    def with_condition(self, condition: str) -> Conditions:
        folded = text.fold(condition)
        secure = self.secure_paper or folded in SECURE_PAPER_CONDITIONS
        narcotic = self.narcotic or folded == NARCOTIC_CONDITION
        hospital = self.hospital_only or folded in HOSPITAL_ONLY_CONDITIONS
        listed = self.list
        if folded == "liste i":
            listed = "I"
        elif folded == "liste ii" and listed != "I":
            listed = "II"
        max_days = self.max_days
        match = _LIMIT.match(folded)
        if match:
            days = [_days(match.group(1), match.group(2))]
            if match.group(3):
                days.append(_days(match.group(3), match.group(4)))
            limit = min(days)
            max_days = limit if max_days is None else min(max_days, limit)
        return Conditions(secure, narcotic, hospital, listed, max_days, self.later_rule)


@dataclass(frozen=True, slots=True)
class Substance:
    dci: str  # the substance as a doctor writes it: "morphine" for "SULFATE DE MORPHINE"
    key: str  # text.substance_key of the base (the FT line when the BDPM gives one)
    strength: str  # "30 mg", "75 microgrammes" ('' when the BDPM gives none)
    base_strength: str = ""  # the FT line's strength, expressed as the base
    sa_key: str = ""  # text.substance_key of the SA line (the salt's name: "carbonate de lithium")


@dataclass(slots=True)
class Product:
    cis: int
    denomination: str
    form: str
    routes: tuple[str, ...]
    substances: list[Substance] = field(default_factory=list)
    conditions: Conditions = field(default_factory=Conditions)


@dataclass(frozen=True, slots=True)
class BadLine:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, ligne {self.line} : {self.reason}"


@dataclass
class ReadReport:
    """What reading a BDPM folder found, for the publisher's output and the snapshot's meta."""

    folder: Path
    encodings: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    bad_lines: list[BadLine] = field(default_factory=list)
    bad_line_count: int = 0
    dropped_products: set[int] = field(default_factory=set)
    later_rule_products: dict[str, int] = field(default_factory=dict)

    def add_bad(self, bad: BadLine) -> None:
        self.bad_line_count += 1
        if len(self.bad_lines) < MAX_REPORTED_LINES:
            self.bad_lines.append(bad)


@dataclass
class Bdpm:
    products: dict[int, Product]
    cip13: dict[int, int]  # CIP13 -> CIS
    report: ReadReport


def _decode(path: Path, name: str) -> tuple[str, str]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DrugReferenceError(
                f"{name}: {size} bytes, more than the {MAX_FILE_BYTES} accepted",
                message_fr=f"Référence des médicaments : {name} est bien trop gros ({size} octets).",
            )
        raw = path.read_bytes()
    except FileNotFoundError as error:
        raise DrugReferenceError(
            f"{path}: missing (a BDPM folder holds {', '.join(FILES)})",
            message_fr=f"Référence des médicaments : fichier {name} absent de {path.parent}.",
        ) from error
    except OSError as error:
        raise DrugReferenceError(
            f"{path}: cannot read ({error.strerror})", message_fr=f"Référence des médicaments : {name} illisible."
        ) from error
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    for encoding in ("utf-8", "cp1252"):
        try:
            decoded = raw.decode(encoding)
        except UnicodeDecodeError as error:
            if encoding == "cp1252":
                line = raw.count(b"\n", 0, error.start) + 1
                raise DrugReferenceError(
                    f"{name}, line {line}: byte {raw[error.start]:#04x} is neither UTF-8 nor Windows-1252",
                    message_fr=f"Référence des médicaments : {name}, ligne {line} : encodage inconnu "
                    "(ni UTF-8 ni Windows-1252).",
                ) from error
            continue
        control = _CONTROL.search(decoded)
        if control:
            line = decoded.count("\n", 0, control.start()) + 1
            raise DrugReferenceError(
                f"{name}, line {line}: control character {ord(control.group()):#04x} "
                "(not a BDPM text file: UTF-16, binary?)",
                message_fr=f"Référence des médicaments : {name}, ligne {line} : caractère de contrôle "
                "(ce n'est pas un fichier texte de la BDPM).",
            )
        return decoded, encoding
    raise AssertionError("unreachable")  # pragma: no cover


def _rows(folder: Path, name: str, report: ReadReport, *, strict: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, columns) of every non-empty line whose column count is acceptable."""
    decoded, encoding = _decode(folder / name, name)
    report.encodings[name] = encoding
    accepted = COLUMNS[name]
    bad = total = 0
    first = True
    for number, line in enumerate(decoded.splitlines(), start=1):
        if not line.strip():
            continue
        total += 1
        columns = line.split("\t")
        if len(columns) not in accepted:
            if first:
                raise DrugReferenceError(
                    f"{name}, line {number}: {len(columns)} columns, expected {accepted.start}-{accepted.stop - 1}"
                    " (unknown column count: not this BDPM file, or its layout changed)",
                    message_fr=f"Référence des médicaments : {name}, ligne {number} : {len(columns)} colonnes "
                    f"au lieu de {accepted.start} à {accepted.stop - 1} (format inconnu).",
                )
            bad += 1
            _bad(report, BadLine(name, number, f"{len(columns)} colonnes au lieu de "
                                 f"{accepted.start} à {accepted.stop - 1}"), strict=strict)
            cis = columns[0].strip()
            if _CIS.fullmatch(cis) and name in (COMPOSITION_FILE, CONDITIONS_FILE, PRODUCTS_FILE):
                report.dropped_products.add(int(cis))
            continue
        first = False
        yield number, [column.strip() for column in columns]
    report.lines[name] = total
    if total and bad / total > MAX_BAD_SHARE:
        raise DrugReferenceError(
            f"{name}: {bad} of {total} lines malformed: not a usable BDPM file",
            message_fr=f"Référence des médicaments : {name} a {bad} lignes illisibles sur {total}.",
        )


def _bad(report: ReadReport, bad: BadLine, *, strict: bool) -> None:
    if strict:
        raise DrugReferenceError(
            f"{bad.file}, line {bad.line}: {bad.reason}", message_fr=f"Référence des médicaments : {bad}."
        )
    report.add_bad(bad)


def read(folder: Path, *, strict: bool = False) -> Bdpm:
    """Read a BDPM folder. Raises DrugReferenceError (missing file, encoding, layout, zero products)."""
    report = ReadReport(folder=folder)
    if not folder.is_dir():
        raise DrugReferenceError(
            f"{folder}: not a folder", message_fr=f"Référence des médicaments : {folder} n'est pas un dossier."
        )
    for name in FILES:  # every file must be there before anything is read
        if not (folder / name).is_file():
            raise DrugReferenceError(
                f"{folder / name}: missing (a BDPM folder holds {', '.join(FILES)})",
                message_fr=f"Référence des médicaments : fichier {name} absent de {folder}.",
            )

    products: dict[int, Product] = {}
    for number, columns in _rows(folder, PRODUCTS_FILE, report, strict=strict):
        cis_text, denomination, form, routes = columns[:4]
        if not _CIS.fullmatch(cis_text) or not denomination:
            _bad(report, BadLine(PRODUCTS_FILE, number, f"code CIS « {cis_text[:20]} » ou dénomination invalide"),
                 strict=strict)
            continue
        if int(cis_text) in products:
            _bad(report, BadLine(PRODUCTS_FILE, number, f"CIS {cis_text} en double"), strict=strict)
            report.dropped_products.add(int(cis_text))
            continue
        route_list = tuple(dict.fromkeys(text.route_name(r) or r.strip() for r in routes.split(";") if r.strip()))
        products[int(cis_text)] = Product(int(cis_text), denomination, form, route_list)

    # Composition: SA lines are the active substances; an FT line (same link number) gives the base the
    # strength is expressed in, which is the name doctors write ("lévothyroxine", not "sodique").
    active: dict[tuple[int, str], tuple[str, str]] = {}
    bases: dict[tuple[int, str], tuple[str, str]] = {}
    order: dict[int, list[str]] = {}
    for number, columns in _rows(folder, COMPOSITION_FILE, report, strict=strict):
        cis_text, _element, _code, name, strength, _per, nature, link = columns[:8]
        if not _CIS.fullmatch(cis_text) or nature not in ("SA", "FT") or not name:
            _bad(report, BadLine(COMPOSITION_FILE, number, "ligne de composition illisible"), strict=strict)
            if _CIS.fullmatch(cis_text):
                report.dropped_products.add(int(cis_text))
            continue
        link_key = (int(cis_text), link or name)
        target = active if nature == "SA" else bases
        # One product lists the same substance once per element (comprimé and pelliculage): keep the first.
        target.setdefault(link_key, (name, strength))
        if nature == "SA" and link_key[1] not in order.setdefault(int(cis_text), []):
            order[int(cis_text)].append(link_key[1])
    for cis, links in order.items():
        composed = products.get(cis)
        if composed is None:
            continue
        seen: set[str] = set()
        for link in links:
            name, strength = active[(cis, link)]
            base = bases.get((cis, link))
            key = text.substance_key(base[0] if base else name)
            if key in seen:
                continue
            seen.add(key)
            # The SA strength is what the box says (LEVOTHYROX 75 microgrammes: SA 75, FT 72,96); the
            # FT one only when the SA line has none (CLAMOXYL 1 g: SA empty, FT 1000 mg).
            shown_strength = strength or (base[1] if base else "")
            base_strength = base[1] if base else ""
            composed.substances.append(Substance(text.substance_dci(base[0] if base else name), key,
                                                 shown_strength, base_strength, text.substance_key(name)))

    for number, columns in _rows(folder, CONDITIONS_FILE, report, strict=strict):
        cis_text, condition = columns[:2]
        if not _CIS.fullmatch(cis_text):
            _bad(report, BadLine(CONDITIONS_FILE, number, f"code CIS « {cis_text[:20]} » invalide"), strict=strict)
            continue
        conditioned = products.get(int(cis_text))
        if conditioned is not None and condition:
            conditioned.conditions = conditioned.conditions.with_condition(condition)

    cip13: dict[int, int] = {}
    for number, columns in _rows(folder, PRESENTATIONS_FILE, report, strict=strict):
        cis_text, code = columns[0], columns[6]
        if not _CIS.fullmatch(cis_text) or not _CIP13.fullmatch(code):
            _bad(report, BadLine(PRESENTATIONS_FILE, number, f"code CIS ou CIP13 « {code[:20]} » invalide"),
                 strict=strict)
            continue
        if int(cis_text) in products:
            cip13[int(code)] = int(cis_text)

    for dropped in report.dropped_products:
        products.pop(dropped, None)
    cip13 = {code: cis for code, cis in cip13.items() if cis in products}
    for rule in LATER_RULES:
        marked = 0
        for product in products.values():
            if product.conditions.secure_paper or not {s.key for s in product.substances} & set(rule.substances):
                continue
            product.conditions = Conditions(
                True, product.conditions.narcotic, product.conditions.hospital_only, product.conditions.list,
                product.conditions.max_days, rule.source,
            )
            marked += 1
        report.later_rule_products[rule.source] = marked
    if not products:
        raise DrugReferenceError(
            f"{folder}: no product could be read",
            message_fr=f"Référence des médicaments : aucun médicament lisible dans {folder}.",
        )
    return Bdpm(products=products, cip13=cip13, report=report)

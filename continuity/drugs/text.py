"""Drug names as text: folding, substance keys, strengths, forms, and the route a form implies (no I/O).

One folding serves both sides of every comparison, the BDPM's words and the export's or the
prescriber's: lower-case ASCII, accents removed, "L.P." = "LP", decimal comma = point, "100 000" =
"100000", "POUR CENT" = "%", "µg" = "microgrammes". Substances compare by a key that drops salts,
esters and hydrates ("CHLORHYDRATE D'OXYCODONE", "OXYCODONE (CHLORHYDRATE D')" and "oxycodone" share
the key "oxycodone"), so a DCI written by a doctor meets the BDPM's chemical name.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

_FOLD = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "’": " ", "'": " ", "ʼ": " ", "µ": "μ"})


_MICRO = re.compile(r"μ\s*g\b|\bmcg\b|\bug\b")
_ABBREVIATION_DOT = re.compile(r"\b([a-z])\.(?=[a-z]\b)")
_DECIMAL_COMMA = re.compile(r"(\d),(\d)")
_THOUSANDS = re.compile(r"\b(\d{1,3}) (\d{3})\b")
_PER_CENT = re.compile(r"\bpour cent\b")
_LONE_DOT = re.compile(r"(?<!\d)\.|\.(?!\d)")
_SLASH_PERCENT = re.compile(r"([%/])")
_OTHER = re.compile(r"[^0-9a-z.%/]+")


@functools.lru_cache(maxsize=1 << 15)
def fold(text: str) -> str:
    """Lower-case ASCII words, numbers with a decimal point, and "%" and "/" as their own tokens."""
    text = text.casefold().translate(_FOLD)
    text = _MICRO.sub(" microgrammes ", text)
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # Abbreviations with dots: "l.p." -> "lp", "u.i." -> "ui" (the BDPM writes both "LP" and "L.P.").
    text = _ABBREVIATION_DOT.sub(r"\1", text)
    text = _DECIMAL_COMMA.sub(r"\1.\2", text)
    while _THOUSANDS.search(text):
        text = _THOUSANDS.sub(r"\1\2", text)
    text = _PER_CENT.sub("%", text)
    text = _LONE_DOT.sub(" ", text)
    text = _SLASH_PERCENT.sub(r" \1 ", text)
    return _OTHER.sub(" ", text).strip()


def words(text: str) -> tuple[str, ...]:
    return tuple(fold(text).split())


# --- substances ------------------------------------------------------------------------------------

# Words that name the salt, ester or hydrate a substance comes as, not the substance (folded). The
# key drops them on both sides; when nothing else is left ("CHLORURE DE SODIUM") the key keeps every
# word, so the comparison stays exact.
SALT_WORDS = frozenset(
    """
    chlorhydrate dichlorhydrate bromhydrate hydrobromure sulfate hemisulfate bisulfate nitrate phosphate
    dihydrogenophosphate acetate citrate tartrate hemitartrate bitartrate maleate fumarate hemifumarate
    succinate besilate besylate mesilate mesylate tosilate tosylate lactate gluconate oxalate benzoate
    metasulfobenzoate propionate dipropionate furoate valerate butyrate xinafoate bromure chlorure iodure
    carbonate trometamol erbumine tert butylamine arginine lysinate sodique disodique trisodique potassique
    dipotassique calcique magnesique sodium potassium magnesium de d sel base anhydre hydrate monohydrate
    monohydrate dihydrate trihydrate hemihydrate sesquihydrate tetrahydrate pentahydrate hexahydrate
    heptahydrate hydratee monohydratee dihydratee trihydratee hemihydratee sesquihydratee hexahydratee
    """.split()
)

# Stereochemical prefixes the BDPM writes and doctors do not ("DL-LYSINE (ACÉTYLSALICYLATE DE)" is the
# "acétylsalicylate de lysine" of a prescription): dropped from keys like salt words.
STEREO_WORDS = frozenset({"dl", "rac"})

# The same substance spelt differently by the DCI and the BDPM (folded).
SYNONYMS = {"cholecalciferol": "colecalciferol", "oestradiol": "estradiol", "ergocalciferol": "ergocalciferol"}


@functools.lru_cache(maxsize=1 << 14)
def substance_key(name: str) -> str:
    """The comparison key of one substance name: its words without salts, sorted ('' for no words)."""
    found = [SYNONYMS.get(w, w) for w in fold(name).split() if w.isalpha() or not w[0].isdigit()]
    found = [w for w in found if w not in {"%", "/"}]
    found = [w for w in found if w not in STEREO_WORDS] or found
    kept = [w for w in found if w not in SALT_WORDS]
    return " ".join(sorted(kept or [w for w in found if w not in {"de", "d", "du"}]))


@functools.lru_cache(maxsize=1 << 14)
def substance_dci(name: str) -> str:
    """The substance as a doctor writes it: 'OXYCODONE (CHLORHYDRATE D')' -> 'oxycodone'.

    Lower case, accents kept, salt words dropped (unless nothing else is left: 'chlorure de sodium').
    """
    parts = [p for p in re.split(r"[\s()'’,]+", name.lower()) if p]
    kept = [p for p in parts if fold(p) not in SALT_WORDS]
    return " ".join(kept or parts)


_SUBSTANCE_SEPARATORS = re.compile(r"\s*(?:\+|/|;|\bet\b|,)\s*", re.IGNORECASE)


def substance_names(text: str) -> tuple[str, ...]:
    """'amoxicilline + acide clavulanique' -> ('amoxicilline', 'acide clavulanique')."""
    return tuple(part.strip() for part in _SUBSTANCE_SEPARATORS.split(text) if part.strip())


# --- strengths -------------------------------------------------------------------------------------

_QUANTITY = re.compile(
    r"(\d+(?:\.\d+)?)\s*(mg|g|microgrammes?|ng|ui|u|unites?|%|ml)\b(?!\s*/\s*(?:kg)\b)"
    r"(?:\s*/\s*(\d+(?:\.\d+)?)?\s*(ml)\b)?"
)
_MASS = {"mg": 1.0, "g": 1000.0, "microgramme": 0.001, "microgrammes": 0.001, "ng": 0.000001}


@functools.lru_cache(maxsize=1 << 14)
def quantities(text: str) -> frozenset[tuple[str, float]]:
    """The amounts a strength text states, in canonical units: mass in mg, "ui", "%", and concentrations.

    '1 g' and '1000,00 mg' give the same {('mg', 1000.0)}; '100 000 UI/2 mL' gives {('ui', 100000.0),
    ('ui/ml', 50000.0)}; '200 mg/5 mL' and '40 mg/ml' share ('mg/ml', 40.0).
    """
    found: set[tuple[str, float]] = set()
    for number, unit, per_number, per_unit in _QUANTITY.findall(fold(text)):
        value = float(number)
        if unit in _MASS:
            kind, amount = "mg", round(value * _MASS[unit], 9)
        elif unit in {"ui", "u", "unite", "unites"}:
            kind, amount = "ui", value
        elif unit == "%":
            found.add(("%", value))
            found.add(("mg/ml", round(value * 10, 9)))  # 2,4 % = 2,4 g/100 mL = 24 mg/mL
            continue
        else:
            continue
        found.add((kind, amount))
        if per_unit:
            volume = float(per_number) if per_number else 1.0
            if volume > 0:
                found.add((f"{kind}/ml", round(amount / volume, 6)))
    return frozenset(found)


# --- forms -----------------------------------------------------------------------------------------

_FORM_STOPWORDS = frozenset("a au aux en de du des et ou la le les l d pour par avec sans un une".split())


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith(("s", "x")) else word


@functools.lru_cache(maxsize=1 << 14)
def form_words(text: str) -> frozenset[str]:
    """The meaningful words of a pharmaceutical form ('comprimés pelliculés' = 'comprimé pelliculé')."""
    return frozenset(
        _stem(w) for w in fold(text).split() if w.isalpha() and len(w) > 1 and w not in _FORM_STOPWORDS
    )


# The nouns that start a pharmaceutical form in free text (folded, longest first where one contains
# another): what `split_free_text` cuts on when the text has no strength to cut after.
FORM_NOUNS = (
    "comprime", "gelule", "capsule", "sirop", "solution", "suspension", "poudre", "granules", "granule",
    "sachet", "collyre", "pommade", "creme", "gel", "suppositoire", "ovule", "dispositif", "patch",
    "emulsion", "lotion", "pastille", "lyophilisat", "microgranules", "inhalateur", "spray", "ampoule",
    "stylo", "film", "gomme", "collutoire", "emplatre", "implant", "shampooing", "vernis",
)


@dataclass(frozen=True, slots=True)
class FreeText:
    """A line written as one text ('lévothyroxine sodique 75 microgrammes, comprimé'), cut in three."""

    substance: str
    strength: str
    form: str


_STRENGTH_SPAN = re.compile(
    r"\d+(?:[.,]\d+)?(?:\s\d{3})*\s*(?:mg|g|µg|μg|microgrammes?|mcg|ng|ui|u\.i\.|unités?|%|pour\s+cent|ml)\b"
    r"(?:\s*/\s*(?:\d+(?:[.,]\d+)?\s*)?(?:mg|g|µg|μg|microgrammes?|ml|dose|heure|h|24\s*h|g)\b)*"
    r"(?:\s*/\s*\d+(?:[.,]\d+)?(?:\s\d{3})*\s*(?:mg|g|µg|μg|microgrammes?|mcg|ng|ui|%|ml)\b)*",
    re.IGNORECASE,
)


def split_free_text(text: str) -> FreeText:
    """Cut a one-field line into substance, strength and form.

    The strength is the first amount with a unit; the form is what follows it (after a comma if there
    is one). Without an amount, the form starts at the first form noun ('comprimé', 'gélule'...).
    """
    text = " ".join(text.split())
    match = _STRENGTH_SPAN.search(text)
    if match:
        substance = text[: match.start()].strip(" ,;-")
        form = text[match.end() :].strip(" ,;-")
        return FreeText(substance, match.group(0).strip(), form)
    folded_words = text.split()
    for index, word in enumerate(folded_words):
        if fold(word).split()[:1] and fold(word).split()[0] in FORM_NOUNS and index > 0:
            return FreeText(" ".join(folded_words[:index]).strip(" ,;-"), "", " ".join(folded_words[index:]))
    if "," in text:
        substance, _, form = text.partition(",")
        return FreeText(substance.strip(), "", form.strip())
    return FreeText(text, "", "")


# --- routes ----------------------------------------------------------------------------------------

# Route names as the BDPM writes them (the authority for "voie d'administration"), keyed by their folded
# form and the English or abbreviated names exports use.
_ROUTE_NAMES = {
    "orale": "orale", "oral": "orale", "per os": "orale", "po": "orale",
    "sublinguale": "sublinguale", "sublingual": "sublinguale",
    "buccale": "buccale", "buccal": "buccale", "voie buccale autre": "buccale", "buccogingivale": "buccogingivale",
    "gingivale": "gingivale", "oropharyngee": "oropharyngée",
    "cutanee": "cutanée", "cutaneous": "cutanée", "topical": "cutanée", "topique": "cutanée",
    "transdermique": "transdermique", "transdermal": "transdermique",
    "inhalee": "inhalée", "inhalation": "inhalée", "inhaled": "inhalée", "respiratory tract route": "inhalée",
    "nasale": "nasale", "nasal": "nasale",
    "ophtalmique": "ophtalmique", "ophthalmic": "ophtalmique", "oculaire": "ophtalmique",
    "auriculaire": "auriculaire", "otic": "auriculaire", "auricular": "auriculaire",
    "rectale": "rectale", "rectal": "rectale",
    "vaginale": "vaginale", "vaginal": "vaginale",
    "sous cutanee": "sous-cutanée", "subcutaneous": "sous-cutanée", "sc": "sous-cutanée",
    "intraveineuse": "intraveineuse", "intravenous": "intraveineuse", "iv": "intraveineuse",
    "intramusculaire": "intramusculaire", "intramuscular": "intramusculaire", "im": "intramusculaire",
    "intradermique": "intradermique", "intradermal": "intradermique",
    "uretrale": "urétrale", "intra uterine": "intra-utérine", "dentaire": "dentaire",
}


def route_name(text: str) -> str:
    """'voie orale', 'Oral route', 'orale' -> 'orale'; '' when the text names no route we know."""
    key = " ".join(w for w in fold(text.replace("-", " ")).split() if w not in {"voie", "route", "par"})
    if key in _ROUTE_NAMES:
        return _ROUTE_NAMES[key]
    full = " ".join(fold(text.replace("-", " ")).split())
    return _ROUTE_NAMES.get(full, "")


def route_label(route: str) -> str:
    """What the ordonnance prints: 'orale' -> 'voie orale'."""
    route = route.strip()
    if not route:
        return ""
    return route if fold(route).startswith("voie") else f"voie {route}"


@dataclass(frozen=True, slots=True)
class RouteGuess:
    """The route a form implies: `route` when it is unambiguous, else `ambiguous` with why."""

    route: str = ""
    ambiguous: bool = False
    reason: str = ""


# Qualifiers first (DOMAIN.md): a "comprimé vaginal" is not swallowed, a "poudre pour inhalation en
# gélule" is inhaled (swallowing inhaler capsules is a known error), a "pommade ophtalmique" goes in
# the eye. Each entry: folded phrases -> route.
_QUALIFIERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("vaginal", "vaginale", "ovule", "intravaginal"), "vaginale"),
    (("sublingual", "sublinguale"), "sublinguale"),
    (("buccal", "buccale", "buccogingival", "buccogingivale", "pastille", "gomme a macher", "collutoire",
      "bain de bouche"), "buccale"),
    (("ophtalmique", "collyre", "oculaire"), "ophtalmique"),
    (("auriculaire", "otique"), "auriculaire"),
    (("nasal", "nasale", "pulverisation nasale"), "nasale"),
    (("rectal", "rectale", "suppositoire", "lavement"), "rectale"),
    (("pour inhalation", "inhalation", "a inhaler", "inhalateur", "nebuliseur", "nebulisation"), "inhalée"),
    (("transdermique", "patch"), "transdermique"),
)
# Forms that leave the route open: the prescriber must choose it, on that line.
_OPEN_FORMS: tuple[tuple[str, str], ...] = (
    ("injectable", "forme injectable : voie intraveineuse, intramusculaire ou sous-cutanée ?"),
    ("perfusion", "perfusion : voie à préciser"),
    ("a sucer", "à sucer : voie orale ou buccale ?"),
)
_PLAIN_ORAL = (
    "comprime", "gelule", "capsule", "sirop", "buvable", "sachet", "granules", "granule", "lyophilisat oral",
    "microgranules", "orodispersible", "effervescent", "a croquer",
)
_OPEN_NOUNS = ("creme", "gel", "pommade", "lotion", "emulsion", "solution", "suspension", "poudre", "spray",
               "mousse", "pate")


def _has(folded: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}(?:s|x)?\b", folded) is not None


@functools.lru_cache(maxsize=1 << 12)
def route_for_form(form: str) -> RouteGuess:
    """The route a pharmaceutical form implies, qualifiers first, then the plain noun; else ambiguous."""
    folded = fold(form)
    if not folded:
        return RouteGuess(ambiguous=True, reason="forme non précisée : voie à préciser")
    for phrases, route in _QUALIFIERS:
        if any(_has(folded, phrase) for phrase in phrases):
            return RouteGuess(route)
    for phrase, reason in _OPEN_FORMS:
        if _has(folded, phrase):
            return RouteGuess(ambiguous=True, reason=reason)
    if any(_has(folded, noun) for noun in _PLAIN_ORAL):
        return RouteGuess("orale")
    for noun in _OPEN_NOUNS:
        if _has(folded, noun):
            return RouteGuess(ambiguous=True, reason=f"« {form} » : voie à préciser (cutanée, autre ?)")
    return RouteGuess(ambiguous=True, reason=f"« {form} » : voie à préciser")

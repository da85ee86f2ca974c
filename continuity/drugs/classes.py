"""Allergy classes: a recorded allergy to a class ("pénicillines") must also catch its members.

A small, deliberately incomplete table of the classes GPs meet daily (the BDPM files read here carry
no ATC classification: CIS_MITM is not among them). It only adds warnings, never removes one. Members
are compared by substance key (continuity/drugs/text.py), so a brand resolved by the reference to
"amoxicilline" is caught by a "pénicillines" allergy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from continuity.drugs import text

# Keys are the French class names (the first alias is the display name); values are DCI names.
ALLERGY_CLASSES: Mapping[tuple[str, ...], tuple[str, ...]] = {
    ("pénicillines", "pénicilline", "bêtalactamines", "bêta-lactamines", "béta-lactamines", "penicillin"): (
        "amoxicilline", "ampicilline", "benzylpénicilline", "phénoxyméthylpénicilline", "pénicilline",
        "oxacilline", "cloxacilline", "pivmécillinam", "pipéracilline", "ticarcilline", "témocilline",
    ),
    ("céphalosporines", "bêtalactamines", "bêta-lactamines", "béta-lactamines", "cephalosporin"): (
        "céfalexine", "céfadroxil", "céfaclor", "céfuroxime", "cefpodoxime", "céfixime", "ceftriaxone",
        "céfotaxime", "céfazoline", "ceftazidime", "céfépime",
    ),
    ("sulfamides", "sulfamides antibactériens"): (
        "sulfaméthoxazole", "sulfadiazine", "sulfasalazine", "cotrimoxazole",
    ),
    ("AINS", "anti-inflammatoires non stéroïdiens", "aspirine", "nsaid"): (
        "ibuprofène", "kétoprofène", "naproxène", "diclofénac", "acide acétylsalicylique", "aspirine", "célécoxib",
        "étoricoxib", "indométacine", "piroxicam", "méloxicam", "flurbiprofène", "acide méfénamique",
        "acide niflumique",
    ),
    ("macrolides",): ("azithromycine", "clarithromycine", "érythromycine", "roxithromycine", "spiramycine"),
    ("quinolones", "fluoroquinolones"): (
        "ciprofloxacine", "lévofloxacine", "ofloxacine", "moxifloxacine", "norfloxacine", "loméfloxacine",
    ),
    ("opiacés", "opioïdes", "morphiniques", "codeine"): (
        "morphine", "codéine", "dihydrocodéine", "tramadol", "oxycodone", "hydromorphone", "fentanyl",
        "tapentadol", "buprénorphine", "méthadone",
    ),
}


def _stem(word: str) -> str:
    # A plural "s" and a final "e" are dropped on both sides, so the English names FHIR sources often
    # carry match too ("amoxicillin", "codeine", "penicillins").
    if len(word) > 3 and word.endswith("s"):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _stems(value: str) -> tuple[str, ...]:
    return tuple(_stem(w) for w in text.fold(value).split() if w.isalpha())


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def class_member(allergy_text: str, substance_keys: Iterable[str]) -> tuple[str, str] | None:
    """(class, member) when the allergy names a class one of the substances belongs to."""
    allergy = _stems(allergy_text)
    keys = set(substance_keys)
    for aliases, members in ALLERGY_CLASSES.items():
        if not any(_contains(allergy, _stems(alias)) for alias in aliases):
            continue
        for member in members:
            if text.substance_key(member) in keys:
                return aliases[0], member
    return None


def words_match(allergy_text: str, dci: str, brand: str = "") -> bool:
    """The allergy's words occur in the line's (DCI and brand), or the DCI's in the allergy's ("Amoxicilline
    (urticaire)" and "amoxicilline"), accents, case and plurals aside."""
    allergy, line, substance = _stems(allergy_text), _stems(f"{dci} {brand}"), _stems(dci)
    return bool(allergy) and (_contains(line, allergy) or _contains(allergy, substance))

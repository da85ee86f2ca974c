"""What the appliance knows without a drug reference: a hand-written list of secure-paper substances.

Used only when the snapshot carries no drug reference (the publisher was not given --drug-reference):
the snapshot build marks `treatment.narcotic` from it and the ordonnance rules refuse by it, and both
say that the check ran on this list. It matches DCI and brand *text*, so it misses a brand that does
not contain the substance's name ("SKENAN" for morphine): that is why the reference exists.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from continuity.drugs import text

NOTICE_FR = (
    "Pas de référence des médicaments dans ces données : les stupéfiants et assimilés sont reconnus "
    "par une liste intégrée de substances (DCI), qui ne reconnaît pas toutes les marques."
)


@dataclass(frozen=True, slots=True)
class SecurePaperSubstance:
    name_fr: str
    source: str
    min_strength_mg: float | None = None  # only dosages at or above this need secure paper


# Substances whose medicines must be prescribed on secure paper (R.5132-5 CSP, applied to narcotics
# by R.5132-29 and to "assimilated" List I/II drugs by ministerial arrêté or ANSM decision). Checked
# against the texts found on 28/11/2026 (Meddispar, ANSM letters, Ordre des pharmaciens); the list is
# deliberately conservative: refusing wrongly costs the doctor a handwritten secure prescription,
# printing wrongly produces an invalid and dangerous document.
_STUPEFIANT = (
    "stupéfiant — arrêté du 22/02/1990 fixant la liste des substances classées comme stupéfiants "
    "(annexes), décisions du DG de l'ANSM depuis 2022"
)
SECURE_PAPER_SUBSTANCES: tuple[SecurePaperSubstance, ...] = (
    # Stupéfiants (prescription max 28 days, R.5132-30; secure paper, R.5132-5).
    SecurePaperSubstance("morphine", _STUPEFIANT),
    SecurePaperSubstance("oxycodone", _STUPEFIANT),
    SecurePaperSubstance("hydromorphone", _STUPEFIANT),
    SecurePaperSubstance("fentanyl", _STUPEFIANT),
    SecurePaperSubstance("sufentanil", _STUPEFIANT),
    SecurePaperSubstance("alfentanil", _STUPEFIANT),
    SecurePaperSubstance("rémifentanil", _STUPEFIANT),
    SecurePaperSubstance("péthidine", _STUPEFIANT),
    SecurePaperSubstance("méthadone", _STUPEFIANT),
    SecurePaperSubstance("tapentadol", _STUPEFIANT),
    SecurePaperSubstance("méthylphénidate", _STUPEFIANT),
    SecurePaperSubstance("kétamine", _STUPEFIANT),
    SecurePaperSubstance("eskétamine", _STUPEFIANT),
    SecurePaperSubstance("cocaïne", _STUPEFIANT),
    SecurePaperSubstance("dexamfétamine", _STUPEFIANT),
    SecurePaperSubstance("lisdexamfétamine", _STUPEFIANT),  # unsure whether marketed in France
    SecurePaperSubstance("oxybate de sodium", _STUPEFIANT),
    SecurePaperSubstance("nabilone", _STUPEFIANT),
    SecurePaperSubstance("dronabinol", _STUPEFIANT),
    SecurePaperSubstance("opium", _STUPEFIANT + " (some low-dose opium preparations are exempted: unsure)"),
    # Assimilated: arrêté du 09/03/2012 applies the narcotics prescription rules to oral buprénorphine
    # (all dosages: we also refuse other routes, being unsure), oral flunitrazépam, oral clonazépam and
    # "certain" oral clorazépate dipotassique medicines (the 20 mg dosage, Tranxène 20 mg).
    SecurePaperSubstance("buprénorphine", "assimilé stupéfiant — arrêté du 09/03/2012"),
    SecurePaperSubstance("flunitrazépam", "assimilé stupéfiant — arrêté du 09/03/2012"),
    SecurePaperSubstance(
        "clonazépam",
        "assimilé stupéfiant — arrêtés du 24/08/2011 et du 09/03/2012 (voie orale; other routes refused too)",
    ),
    SecurePaperSubstance(
        "clorazépate dipotassique", "assimilé stupéfiant — arrêté du 09/03/2012 (20 mg)", min_strength_mg=20
    ),
    # Assimilated: arrêté du 07/01/2017 (in force 10/04/2017) for oral zolpidem: secure paper, in
    # words, no overlap (ANSM letter to professionals, Ordre des pharmaciens).
    SecurePaperSubstance("zolpidem", "assimilé stupéfiant — arrêté du 07/01/2017"),
    # Assimilated in 2012 (exact arrêté date not checked here): tianeptine (Stablon).
    SecurePaperSubstance("tianeptine", "assimilé stupéfiant — arrêté de 2012 (date non vérifiée)"),
    # ANSM decision of 26/09/2024, in force 01/03/2025 (see drugs/bdpm.py LATER_RULES, which applies the
    # same decision on top of a reference older than it).
    SecurePaperSubstance("tramadol", "décision ANSM — ordonnance sécurisée depuis le 01/03/2025"),
    SecurePaperSubstance("codéine", "décision ANSM — ordonnance sécurisée depuis le 01/03/2025"),
    SecurePaperSubstance("dihydrocodéine", "décision ANSM — ordonnance sécurisée depuis le 01/03/2025"),
)

_STRENGTH_MG = re.compile(r"(\d+(?:[.,]\d+)?)\s*mg\b", re.IGNORECASE)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


_SUBSTANCE_WORDS = tuple((substance, text.words(substance.name_fr)) for substance in SECURE_PAPER_SUBSTANCES)


# A publish asks this of every treatment, and a practice's treatments repeat a few hundred texts.
@functools.lru_cache(maxsize=8192)
def secure_paper_substance(*texts: str, strength: str = "") -> SecurePaperSubstance | None:
    """The listed substance these texts (DCI, brand) name, if any, as whole words (accents and case aside)."""
    found = text.words(" ".join(texts))
    for substance, words in _SUBSTANCE_WORDS:
        if not _contains(found, words):
            continue
        if substance.min_strength_mg is not None:
            match = _STRENGTH_MG.search(strength)
            # Unknown strength: refuse, we cannot tell the 20 mg tablet apart.
            if match and float(match.group(1).replace(",", ".")) < substance.min_strength_mg:
                continue
        return substance
    return None

"""A deterministic synthetic French practice, written as a FHIR R4 Bulk Data export (NDJSON files).

Everything here is invented: names are drawn from lists of common surnames and given names, phone
numbers from the ranges ARCEP reserves for fiction, RPPS numbers from the 997… range of test cards,
INS numbers on the *test* OID. The output follows docs/fhir-input.md, the dialect the importer
reads, and deliberately carries the traps of a real practice: accented, hyphenated and apostrophe
names, married names, homonyms, twins, children with and without a weight, ALD-linked treatments,
non-substitutable lines, narcotics, "no known allergy" versus no information at all.

Determinism: each random patient draws from its own generator seeded with (seed, index), so the
output is byte-identical for (patients, seed, today) and patient N is the same whatever the total
(a NIR serial number drawn twice moves to the next free one, which depends only on the patients
before N: no two people in a practice share an INS).
Memory stays bounded: resources are written as they are made, one NDJSON file per resource type.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import random
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, NamedTuple, TypeVar

from continuity.ins import with_check_key
from continuity.model import INS_OID_TEST

Resource = dict[str, Any]
_T = TypeVar("_T")

# Exactly json.dumps(resource, ensure_ascii=False, separators=(",", ":")), without building an encoder
# for each of the half-million resources of a large practice.
_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

# Written in this order; every file exists even when empty.
RESOURCE_TYPES: Final = (
    "Organization",
    "Practitioner",
    "Medication",
    "Patient",
    "AllergyIntolerance",
    "Condition",
    "Observation",
    "MedicationRequest",
    "Appointment",
)

# --- systems and extension URLs (docs/fhir-input.md) -------------------------------------------------

FR_CORE = "https://hl7.fr/ig/fhir/core"
EXT_BIRTH_LIST_GIVEN_NAME = f"{FR_CORE}/StructureDefinition/fr-core-patient-birth-list-given-name"
EXT_IDENTITY_RELIABILITY = f"{FR_CORE}/StructureDefinition/fr-core-identity-reliability"
EXT_INSEE_CODE = f"{FR_CORE}/StructureDefinition/fr-core-address-insee-code"
EXT_BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
EXT_PRACTITIONER_SPECIALTY = f"{FR_CORE}/StructureDefinition/fr-core-practitioner-specialty"
CS_IDENTITY_STATUS = f"{FR_CORE}/CodeSystem/fr-core-cs-v2-0445"
CS_IDENTIFIER_TYPE = f"{FR_CORE}/CodeSystem/fr-core-cs-v2-0203"
CS_COMMUNE = "https://mos.esante.gouv.fr/NOS/TRE_R13-Commune/FHIR/TRE-R13-Commune"
CS_SPECIALTY = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
CS_PROFESSION = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
CS_CISIS = "https://smt.esante.gouv.fr/fhir/CodeSystem/terminologie-cisis"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
IPS_ABSENT = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
INS_TEST_SYSTEM = f"urn:oid:{INS_OID_TEST}"


@dataclass(frozen=True)
class SynthSummary:
    out_dir: Path
    counts: dict[str, int]  # resources written per type
    showcase: dict[str, str]  # role -> patient id (several roles may share a patient)
    demo_practitioner_rpps: str


# --- small value helpers -------------------------------------------------------------------------------


def _cumulative(weights: Sequence[float]) -> list[float]:
    total = 0.0
    result = []
    for weight in weights:
        total += weight
        result.append(total)
    return result


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _luhn_complete(body: str) -> str:
    """Append the Luhn check digit (the RPPS number's last digit is a Luhn key)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


def _paris_offset(day: dt.date) -> str:
    """UTC offset of metropolitan France at office hours on that day (DST: last Sundays of March/October)."""

    def last_sunday(year: int, month: int) -> dt.date:
        last = dt.date(year, month, 31)
        return last - dt.timedelta(days=(last.weekday() + 1) % 7)

    summer = last_sunday(day.year, 3) <= day < last_sunday(day.year, 10)
    return "+02:00" if summer else "+01:00"


def _fiction_phone(rng: _Rng, kind: str) -> str:
    # ARCEP sets these ranges aside for fiction: they never reach a real subscriber.
    prefix = "+33 6 39 98" if kind == "mobile" else "+33 4 65 71"
    number = rng.below(10000)
    return f"{prefix} {number // 100:02d} {number % 100:02d}"


class _Rng(random.Random):
    """random.Random with cheap single draws: the generator runs a few dozen draws per patient."""

    def pick(self, items: Sequence[_T]) -> _T:
        return items[int(self.random() * len(items))]

    def between(self, low: int, high: int) -> int:
        """An integer in [low, high], both included."""
        return low + int(self.random() * (high - low + 1))

    def below(self, count: int) -> int:
        return int(self.random() * count)

    def weighted(self, items: Sequence[_T], cumulative: Sequence[float]) -> _T:
        return items[bisect.bisect(cumulative, self.random() * cumulative[-1], 0, len(items) - 1)]


def _ref(kind: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{resource_id}"}


def _coding(system: str, code: str, display: str = "") -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _concept(system: str, code: str, display: str, text: str) -> Resource:
    return {"coding": [_coding(system, code, display)], "text": text}


def _quantity(value: float, unit: str, code: str) -> Resource:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


# --- places --------------------------------------------------------------------------------------------


class _Place(NamedTuple):
    insee: str  # 5 characters: commune code, 2A/2B for Corsica, 99xxx for a country
    city: str
    country: str = "France"


# Where the practice's patients live: real communes around a fictional practice in Villeurbanne.
_HOME_TOWNS: Final[tuple[tuple[str, str, float], ...]] = (
    ("69100", "Villeurbanne", 45),
    ("69003", "Lyon", 8),
    ("69006", "Lyon", 5),
    ("69007", "Lyon", 4),
    ("69120", "Vaulx-en-Velin", 10),
    ("69500", "Bron", 8),
    ("69300", "Caluire-et-Cuire", 6),
    ("69150", "Décines-Charpieu", 6),
    ("69200", "Vénissieux", 5),
    ("69680", "Chassieu", 3),
)
_HOME_CUM: Final = _cumulative([weight for _, _, weight in _HOME_TOWNS])

_LOCAL_BIRTH_PLACES: Final = (
    _Place("69266", "Villeurbanne"),
    _Place("69383", "Lyon 3e Arrondissement"),
    _Place("69388", "Lyon 8e Arrondissement"),
    _Place("69384", "Lyon 4e Arrondissement"),
    _Place("69029", "Bron"),
    _Place("69259", "Vénissieux"),
    _Place("69256", "Vaulx-en-Velin"),
    _Place("42218", "Saint-Étienne"),
    _Place("38185", "Grenoble"),
)
_FRENCH_BIRTH_PLACES: Final = (
    _Place("75114", "Paris 14e Arrondissement"),
    _Place("75112", "Paris 12e Arrondissement"),
    _Place("13205", "Marseille 5e Arrondissement"),
    _Place("31555", "Toulouse"),
    _Place("59350", "Lille"),
    _Place("33063", "Bordeaux"),
    _Place("44109", "Nantes"),
    _Place("67482", "Strasbourg"),
    _Place("63113", "Clermont-Ferrand"),
    _Place("21231", "Dijon"),
    _Place("29019", "Brest"),
    _Place("2A004", "Ajaccio"),
    _Place("2B033", "Bastia"),
    _Place("97209", "Fort-de-France"),
    _Place("97411", "Saint-Denis"),
)
_COUNTRIES: Final = {
    "maghreb": (_Place("99350", "", "Maroc"), _Place("99352", "", "Algérie"), _Place("99351", "", "Tunisie")),
    "west_africa": (
        _Place("99341", "", "Sénégal"),
        _Place("99335", "", "Mali"),
        _Place("99326", "", "Côte d'Ivoire"),
        _Place("99322", "", "Cameroun"),
    ),
    "portugal": (_Place("99139", "", "Portugal"),),
    "turkey": (_Place("99208", "", "Turquie"),),
    "vietnam": (_Place("99243", "", "Viêt Nam"),),
    "southern_europe": (_Place("99127", "", "Italie"), _Place("99134", "", "Espagne")),
}

_STREET_TYPES: Final = ("rue", "rue", "rue", "avenue", "boulevard", "impasse", "allée", "place", "chemin", "cours")
_STREET_NAMES: Final = (
    "Victor-Hugo", "Jean-Jaurès", "de la République", "Anatole-France", "des Tilleuls", "Paul-Bert",
    "du 8-Mai-1945", "Émile-Zola", "Pasteur", "des Acacias", "Gabriel-Péri", "Francis-de-Pressensé",
    "Léon-Blum", "de la Paix", "du Docteur-Rollet", "Frédéric-Faÿs", "des Charmettes", "Roger-Salengro",
    "Marcel-Cachin", "Jules-Guesde", "de l'Égalité", "Édouard-Herriot", "des Maraîchers", "Hector-Berlioz",
    "d'Alsace", "Lafayette", "Garibaldi", "de la Soie", "Louis-Becker", "des Glycines",
)  # fmt: skip


def _address(rng: _Rng) -> Resource:
    postal_code, city, _ = rng.weighted(_HOME_TOWNS, _HOME_CUM)
    number = rng.between(1, 180)
    suffix = " bis" if rng.random() < 0.05 else ""
    lines = [f"{number}{suffix} {rng.pick(_STREET_TYPES)} {rng.pick(_STREET_NAMES)}"]
    if rng.random() < 0.25:
        lines.append(f"Bâtiment {rng.pick('ABCDE')}, appartement {rng.between(1, 64)}")
    return {
        "use": "home",
        "line": lines,
        "postalCode": postal_code,
        "city": city,
        "country": "France",
    }


# --- names ---------------------------------------------------------------------------------------------

# Origins of surnames in the practice, with their share. Names are common ones, listed by origin.
_ORIGIN_WEIGHTS: Final = (
    ("france", 70),
    ("maghreb", 11),
    ("west_africa", 4),
    ("portugal", 5),
    ("turkey", 3),
    ("vietnam", 2),
    ("southern_europe", 5),
)
_SURNAMES: Final[dict[str, tuple[str, ...]]] = {
    "france": (
        "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
        "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard",
        "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller", "Lefebvre", "Faure",
        "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier", "Chevalier", "François", "Legrand",
        "Gauthier", "Perrin", "Robin", "Clément", "Morin", "Nicolas", "Henry", "Roussel", "Mathieu",
        "Gautier", "Masson", "Marchand", "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noël", "Meyer",
        "Dufour", "Meunier", "Brun", "Blanchard", "Giraud", "Joly", "Rivière", "Lucas", "Brunet", "Gaillard",
        "Barbier", "Arnaud", "Martinez", "Gérard", "Roche", "Renard", "Schmitt", "Roy", "Leroux", "Colin",
        "Vidal", "Caron", "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix",
        "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît", "Rey", "Leclerc", "Payet", "Rolland",
        "Leclercq", "Guillaume", "Lecomte", "Lopez", "Jean", "Dupuy", "Guillot", "Hubert", "Berger",
        "Carpentier", "Sanchez", "Dupuis", "Moulin", "Louis", "Deschamps", "Huet", "Vasseur", "Perez",
        "Boucher", "Fleury", "Royer", "Klein", "Jacquet", "Adam", "Paris", "Poirier", "Marty", "Aubry",
        "Guyot", "Carré", "Charles", "Renault", "Charpentier", "Ménard", "Maillard", "Baron", "Bertin",
        "Bailly", "Hervé", "Schneider", "Fernandez", "Le Gall", "Collet", "Léger", "Bouvier", "Julien",
        "Prévost", "Millet", "Perrot", "Daniel", "Le Roux", "Cousin", "Germain", "Breton", "Besson",
        "Langlois", "Rémy", "Le Goff", "Pelletier", "Lévêque", "Perrier", "Leblanc", "Barré", "Lebrun",
        "Marchal", "Weber", "Mallet", "Hamon", "Boulanger", "Jacob", "Monnier", "Michaud", "Rodriguez",
        "Guichard", "Gillet", "Étienne", "Grondin", "Poulain", "Tessier", "Chevallier", "Collin", "Chauvin",
        "Da Costa", "Bouchet", "Gay", "Lemaître", "Bénard", "Maréchal", "Humbert", "Reynaud", "Antoine",
        "Hoarau", "Perret", "Barthélemy", "Cordier", "Pichon", "Lejeune", "Gilbert", "Lamy", "Delaunay",
        "Pasquier", "Carlier", "Laporte", "de Souza", "Besnard", "L'Hôte", "d'Arcy", "Le Bihan",
    ),
    "maghreb": (
        "Benali", "Haddad", "Mansouri", "Belkacem", "Bensaïd", "Cherif", "Hamidi", "Bouzid", "Amrani",
        "El Amrani", "Saïdi", "Brahimi", "Meziane", "Ait Ahmed", "Boukhari", "Zerrouki", "Lahlou", "Benyahia",
        "Kaci", "Touati", "Ben Ali", "Messaoudi", "Ouali", "Rahmani", "Djebbar", "Bennani", "El Idrissi",
    ),
    "west_africa": (
        "N'Diaye", "Diallo", "Traoré", "Koné", "Diop", "Camara", "Sow", "Cissé", "Ba", "Fofana", "Keïta",
        "Touré", "Sylla", "Coulibaly", "N'Guessan", "Kouassi", "Mbappé", "Diarra", "Ndong", "Faye",
    ),
    "portugal": (
        "Da Silva", "Dos Santos", "Pereira", "Ferreira", "Rodrigues", "Gonçalves", "Fernandes", "Lopes",
        "Marques", "Sousa", "Costa", "De Oliveira", "Teixeira", "Carvalho", "Mendes", "Ribeiro", "Pinto",
    ),
    "turkey": ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın", "Arslan", "Doğan"),
    "vietnam": ("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Do", "Ngo"),
    "southern_europe": (
        "Rossi", "Russo", "Ferrari", "Esposito", "Romano", "Garcia", "Martinez", "Gomez", "Navarro",
        "Ruiz", "Moreno", "Giordano", "Colombo", "Fernandez", "Jiménez",
    ),
}  # fmt: skip

# French given names by birth period, so that a patient born in 1940 is not called Kylian.
_FRENCH_GIVEN: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("female", "old"): (
        "Marie", "Jeanne", "Monique", "Françoise", "Jacqueline", "Simone", "Colette", "Denise", "Paulette",
        "Yvette", "Suzanne", "Thérèse", "Ginette", "Odette", "Germaine", "Madeleine", "Hélène", "Nicole",
        "Josette", "Renée", "Andrée", "Gisèle", "Lucienne", "Marie-Thérèse", "Geneviève", "Annie",
    ),
    ("female", "middle"): (
        "Nathalie", "Isabelle", "Sylvie", "Catherine", "Sandrine", "Valérie", "Christine", "Véronique",
        "Stéphanie", "Céline", "Sophie", "Aurélie", "Émilie", "Karine", "Laurence", "Martine", "Patricia",
        "Élodie", "Virginie", "Marie-Claire", "Anne-Sophie", "Delphine", "Hélène", "Corinne", "Mélanie",
    ),
    ("female", "young"): (
        "Emma", "Léa", "Chloé", "Manon", "Inès", "Camille", "Jade", "Louise", "Zoé", "Lina", "Léna", "Alice",
        "Clémence", "Anaïs", "Maëlys", "Héloïse", "Sarah", "Lucie", "Juliette", "Mathilde", "Océane", "Éva",
        "Romane", "Ambre", "Rose", "Anna", "Mila", "Julia", "Margaux", "Noémie",
    ),
    ("male", "old"): (
        "Jean", "Pierre", "Michel", "André", "Jacques", "René", "Marcel", "Bernard", "Roger", "Louis",
        "Georges", "Henri", "Robert", "Claude", "Gérard", "Raymond", "Maurice", "Lucien", "Jean-Pierre",
        "Jean-Claude", "Paul", "Joseph", "Fernand", "Gilbert", "Guy", "Francis",
    ),
    ("male", "middle"): (
        "Philippe", "Christophe", "Stéphane", "Laurent", "Frédéric", "Sébastien", "Nicolas", "Olivier",
        "Thierry", "Éric", "David", "Pascal", "Jérôme", "Patrick", "Vincent", "Franck", "Cédric", "Julien",
        "Jean-Marc", "Jean-François", "Bruno", "Alain", "Didier", "Fabrice", "Hervé", "Loïc", "Joël",
    ),
    ("male", "young"): (
        "Lucas", "Hugo", "Louis", "Gabriel", "Raphaël", "Arthur", "Jules", "Nathan", "Léo", "Théo", "Tom",
        "Enzo", "Mathéo", "Noé", "Adam", "Maël", "Timothée", "Clément", "Maxime", "Antoine", "Baptiste",
        "Thomas", "Paul", "Sacha", "Aurélien", "Kylian", "Noah", "Évan", "Gaël", "Jean-Baptiste",
    ),
}  # fmt: skip
_ORIGIN_GIVEN: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("maghreb", "female"): (
        "Fatima", "Khadija", "Amina", "Nadia", "Samira", "Leïla", "Yasmina", "Malika", "Sonia", "Myriam",
        "Naïma", "Soraya", "Zohra", "Farida", "Salima", "Nour",
    ),
    ("maghreb", "male"): (
        "Mohamed", "Ahmed", "Karim", "Rachid", "Youssef", "Mehdi", "Nordine", "Farid", "Kamel", "Samir",
        "Abdelkader", "Bilal", "Hakim", "Saïd", "Mustapha", "Ilyès",
    ),
    ("west_africa", "female"): (
        "Aminata", "Fatoumata", "Awa", "Mariam", "Aïssatou", "Kadiatou", "Ramatoulaye", "Adama", "Fanta",
    ),
    ("west_africa", "male"): (
        "Mamadou", "Moussa", "Ibrahima", "Ousmane", "Abdoulaye", "Seydou", "Cheikh", "Souleymane",
    ),
    ("portugal", "female"): ("Maria", "Ana", "Fernanda", "Conceição", "Rosa", "Isabel", "Lurdes", "Filomena"),
    ("portugal", "male"): ("José", "Manuel", "António", "João", "Joaquim", "Fernando", "Carlos", "Tiago"),
    ("turkey", "female"): ("Ayşe", "Fatma", "Zeynep", "Elif", "Emine", "Hatice", "Merve", "Büşra"),
    ("turkey", "male"): ("Mehmet", "Mustafa", "Ahmet", "Ali", "Hüseyin", "Hasan", "Emre", "Murat"),
    ("vietnam", "female"): ("Thi Lan", "Thi Hoa", "Linh", "Mai", "Thu", "Huong", "Ngoc Anh", "Thanh"),
    ("vietnam", "male"): ("Van Minh", "Duc", "Tuan", "Quang", "Huy", "Long", "Thanh", "Van Hai"),
    ("southern_europe", "female"): ("Giulia", "Francesca", "Carmen", "Lucia", "Dolores", "Pilar", "Rosa"),
    ("southern_europe", "male"): ("Giuseppe", "Antonio", "Francesco", "Miguel", "Juan", "Rafael", "Salvatore"),
}  # fmt: skip


def _zipf_weights(count: int) -> tuple[float, ...]:
    # Common names are much more common: that is where real homonyms come from.
    return tuple(1.0 / (rank + 4) for rank in range(count))


_SURNAME_CUM_WEIGHTS: Final = {origin: _cumulative(_zipf_weights(len(names))) for origin, names in _SURNAMES.items()}
_ORIGINS: Final = tuple(origin for origin, _ in _ORIGIN_WEIGHTS)
_ORIGIN_CUM: Final = _cumulative([weight for _, weight in _ORIGIN_WEIGHTS])


def _surname(rng: _Rng, origin: str) -> str:
    return rng.weighted(_SURNAMES[origin], _SURNAME_CUM_WEIGHTS[origin])


def _stored_family(rng: _Rng, name: str) -> str:
    """How the practice software stored a family name: mostly upper case, some without accents."""
    draw = rng.random()
    if draw < 0.68:
        return name.upper()
    if draw < 0.80:
        return _strip_accents(name).upper()
    return name


_ACCENTS: Final = str.maketrans(
    "àâäáãåçéèêëíìîïñóòôöõúùûüýÿÀÂÄÁÃÅÇÉÈÊËÍÌÎÏÑÓÒÔÖÕÚÙÛÜÝŸışğŞĞİ",
    "aaaaaaceeeeiiiinooooouuuuyyAAAAAACEEEEIIIINOOOOOUUUUYYisgSGI",
)


def _strip_accents(name: str) -> str:
    return name.translate(_ACCENTS)


def _given_names(rng: _Rng, sex: str, origin: str, birth_year: int) -> list[str]:
    period = "old" if birth_year < 1960 else "middle" if birth_year < 1990 else "young"
    french = _FRENCH_GIVEN[(sex, period)]
    if origin == "france" or (birth_year >= 1990 and rng.random() < 0.45):
        pool = french
    else:
        pool = _ORIGIN_GIVEN.get((origin, sex), french)
    count = rng.weighted((1, 2, 3), (35, 77, 100))
    names = [rng.pick(pool)]
    for _ in range(count - 1):
        candidate = rng.pick(french if rng.random() < 0.6 else pool)
        if candidate not in names:
            names.append(candidate)
    return names


# --- practitioners and the practice --------------------------------------------------------------------


class _Practitioner(NamedTuple):
    id: str
    family: str
    given: tuple[str, ...]
    gender: str
    rpps: str
    qualite: str
    specialty_code: str
    specialty_display: str
    email: str
    phone: str


# RPPS numbers: 11 digits with a Luhn key, in the 997… range of the ANS test cards rather than the 10…
# range of real practitioners, so that a printed test ordonnance does not name a real doctor.
_PRACTITIONERS: Final = (
    _Practitioner("pra-01", "GARNIER", ("Anne-Sophie",), "female", _luhn_complete("9970012345"),
                  "Médecin généraliste", "SM54", "Médecine générale (SM)",
                  "as.garnier@cabinet-des-tilleuls.example", "+33 4 65 71 00 11"),
    _Practitioner("pra-02", "BENSAÏD", ("Karim",), "male", _luhn_complete("9970023456"),
                  "Médecin généraliste", "SM54", "Médecine générale (SM)",
                  "k.bensaid@cabinet-des-tilleuls.example", "+33 4 65 71 00 12"),
    _Practitioner("pra-03", "LE GOFF", ("Thomas", "Yann"), "male", _luhn_complete("9970034567"),
                  "Médecin généraliste", "SM54", "Médecine générale (SM)",
                  "t.legoff@cabinet-des-tilleuls.example", "+33 4 65 71 00 13"),
    _Practitioner("pra-04", "TRAN", ("Mai-Linh",), "female", _luhn_complete("9970045678"),
                  "Pédiatre", "SM40", "Pédiatrie (SM)",
                  "ml.tran@cabinet-des-tilleuls.example", "+33 4 65 71 00 14"),
)  # fmt: skip
_GENERALISTS: Final = ("pra-01", "pra-02", "pra-03")
_PEDIATRICIAN: Final = "pra-04"
ORGANIZATION_ID: Final = "org-cabinet-des-tilleuls"
_PRACTICE_ADDRESS: Final = {
    "use": "work",
    "line": ["14 rue des Tilleuls"],
    "postalCode": "69100",
    "city": "Villeurbanne",
    "country": "France",
}


def _organization() -> Resource:
    return {
        "resourceType": "Organization",
        "id": ORGANIZATION_ID,
        "active": True,
        "type": [{"text": "Cabinet de groupe de médecine générale et pédiatrie"}],
        "name": "Cabinet médical des Tilleuls",
        "telecom": [
            {"system": "phone", "value": "+33 4 65 71 00 10", "use": "work"},
            {"system": "email", "value": "accueil@cabinet-des-tilleuls.example", "use": "work"},
        ],
        "address": [_PRACTICE_ADDRESS],
    }


def _practitioner(practitioner: _Practitioner) -> Resource:
    return {
        "resourceType": "Practitioner",
        "id": practitioner.id,
        "extension": [
            {
                "url": EXT_PRACTITIONER_SPECIALTY,
                "valueCodeableConcept": _concept(
                    CS_SPECIALTY,
                    practitioner.specialty_code,
                    practitioner.specialty_display,
                    practitioner.specialty_display.removesuffix(" (SM)"),
                ),
            }
        ],
        "identifier": [
            {
                "use": "official",
                "type": {"coding": [_coding(CS_IDENTIFIER_TYPE, "RPPS")]},
                "system": RPPS_SYSTEM,
                "value": practitioner.rpps,
            }
        ],
        "active": True,
        "name": [
            {"use": "official", "family": practitioner.family, "given": list(practitioner.given), "prefix": ["Dr"]}
        ],
        "telecom": [
            {"system": "phone", "value": practitioner.phone, "use": "work"},
            {"system": "email", "value": practitioner.email, "use": "work"},
        ],
        "address": [_PRACTICE_ADDRESS],
        "gender": practitioner.gender,
        "qualification": [
            {"code": {"coding": [_coding(CS_PROFESSION, "10", "Médecin")], "text": practitioner.qualite}}
        ],
    }


# --- drugs ---------------------------------------------------------------------------------------------


class _Route(NamedTuple):
    code: str
    display: str
    text: str


_ROUTES: Final = {
    "oral": _Route("26643006", "Oral route", "voie orale"),
    "sc": _Route("34206005", "Subcutaneous route", "voie sous-cutanée"),
    "transdermal": _Route("45890007", "Transdermal route", "voie transdermique"),
    "sublingual": _Route("37839007", "Sublingual route", "voie sublinguale"),
    "inhaled": _Route("447694001", "Respiratory tract route", "voie inhalée"),
}


class _Ingredient(NamedTuple):
    dci: str
    value: float
    unit: str  # as printed
    ucum: str
    per_value: float = 1
    per_unit: str = ""  # as printed: "comprimé", "mL", "dose"
    per_ucum: str = ""


class _Drug(NamedTuple):
    key: str
    ingredients: tuple[_Ingredient, ...]
    strength: str  # as printed
    form: str
    route: str
    atc: str
    posologies: tuple[str, ...]
    supply_days: int = 30
    # On the list of narrow-therapeutic-margin substances (arrêtés of 12/11/2019 and 20/07/2022): a
    # stabilised patient's line may be "non substituable (MTE)".
    mte_candidate: bool = False
    allergen_class: str = ""  # "penicillin" | "nsaid" | "codeine": never prescribed to an allergic patient

    @property
    def dci(self) -> str:
        return " + ".join(ingredient.dci for ingredient in self.ingredients)

    @property
    def medication_id(self) -> str:
        return f"med-{self.key}"

    @property
    def label(self) -> str:
        return f"{self.dci} {self.strength}, {self.form}"


def _tablet(dci: str, value: float, unit: str, ucum: str, per: str = "comprimé") -> tuple[_Ingredient, ...]:
    return (_Ingredient(dci, value, unit, ucum, 1, per, "1"),)


_DRUG_LIST: Final = (
    # Diabetes, cardiovascular
    _Drug("metformine-1000", _tablet("metformine", 1000, "mg", "mg"), "1000 mg", "comprimé pelliculé", "oral",
          "A10BA02", ("1 comprimé matin et soir au milieu des repas", "1 comprimé le soir au cours du repas")),
    _Drug("insuline-glargine-100", (_Ingredient("insuline glargine", 100, "unités", "[iU]", 1, "mL", "mL"),),
          "100 unités/mL", "solution injectable en stylo prérempli", "sc", "A10AE04",
          ("20 unités le soir au coucher, à adapter selon les glycémies capillaires",
           "14 unités le soir, dose à adapter selon le protocole")),
    _Drug("gliclazide-30", _tablet("gliclazide", 30, "mg", "mg"), "30 mg", "comprimé à libération modifiée", "oral",
          "A10BB09", ("2 comprimés le matin au petit-déjeuner", "1 comprimé le matin au petit-déjeuner")),
    _Drug("sitagliptine-100", _tablet("sitagliptine", 100, "mg", "mg"), "100 mg", "comprimé pelliculé", "oral",
          "A10BH01", ("1 comprimé par jour",)),
    _Drug("amlodipine-5", (_Ingredient("amlodipine", 5, "mg", "mg", 1, "gélule", "1"),), "5 mg", "gélule", "oral",
          "C08CA01", ("1 gélule le matin",)),
    _Drug("ramipril-5", _tablet("ramipril", 5, "mg", "mg"), "5 mg", "comprimé sécable", "oral", "C09AA05",
          ("1 comprimé le matin",)),
    _Drug("perindopril-5", _tablet("périndopril arginine", 5, "mg", "mg"), "5 mg", "comprimé pelliculé", "oral",
          "C09AA04", ("1 comprimé le matin avant le repas",)),
    _Drug("bisoprolol-2.5", _tablet("bisoprolol", 2.5, "mg", "mg"), "2,5 mg", "comprimé pelliculé sécable", "oral",
          "C07AB07", ("1 comprimé le matin",)),
    _Drug("hydrochlorothiazide-25", _tablet("hydrochlorothiazide", 25, "mg", "mg"), "25 mg", "comprimé sécable",
          "oral", "C03AA03", ("1 comprimé le matin",)),
    _Drug("furosemide-40", _tablet("furosémide", 40, "mg", "mg"), "40 mg", "comprimé sécable", "oral", "C03CA01",
          ("1 comprimé le matin", "1 comprimé le matin et 1/2 comprimé à midi")),
    _Drug("atorvastatine-20", _tablet("atorvastatine", 20, "mg", "mg"), "20 mg", "comprimé pelliculé", "oral",
          "C10AA05", ("1 comprimé le soir",)),
    _Drug("rosuvastatine-10", _tablet("rosuvastatine", 10, "mg", "mg"), "10 mg", "comprimé pelliculé", "oral",
          "C10AA07", ("1 comprimé le soir",)),
    _Drug("aspirine-75", (_Ingredient("acide acétylsalicylique", 75, "mg", "mg", 1, "sachet", "1"),), "75 mg",
          "poudre pour solution buvable en sachet-dose", "oral", "B01AC06", ("1 sachet par jour au cours du repas",),
          allergen_class="nsaid"),
    _Drug("apixaban-5", _tablet("apixaban", 5, "mg", "mg"), "5 mg", "comprimé pelliculé", "oral", "B01AF02",
          ("1 comprimé matin et soir",)),
    _Drug("warfarine-5", _tablet("warfarine", 5, "mg", "mg"), "5 mg", "comprimé sécable", "oral", "B01AA03",
          ("3/4 de comprimé le soir, dose à adapter selon l'INR",)),
    # Thyroid, transplant, psychiatry, neurology (several with a narrow therapeutic margin)
    _Drug("levothyroxine-75", (_Ingredient("lévothyroxine sodique", 75, "µg", "ug", 1, "comprimé", "1"),),
          "75 microgrammes", "comprimé sécable", "oral", "H03AA01",
          ("1 comprimé le matin à jeun, 30 minutes avant le petit-déjeuner",), mte_candidate=True),
    _Drug("levothyroxine-100", (_Ingredient("lévothyroxine sodique", 100, "µg", "ug", 1, "comprimé", "1"),),
          "100 microgrammes", "comprimé sécable", "oral", "H03AA01",
          ("1 comprimé le matin à jeun, 30 minutes avant le petit-déjeuner",), mte_candidate=True),
    _Drug("ciclosporine-100", (_Ingredient("ciclosporine", 100, "mg", "mg", 1, "capsule", "1"),), "100 mg",
          "capsule molle", "oral", "L04AD01", ("1 capsule matin et soir à heures fixes",), mte_candidate=True),
    _Drug("prednisone-5", _tablet("prednisone", 5, "mg", "mg"), "5 mg", "comprimé", "oral", "H02AB07",
          ("1 comprimé le matin",)),
    _Drug("lithium-400", _tablet("carbonate de lithium", 400, "mg", "mg"), "400 mg",
          "comprimé pelliculé à libération prolongée", "oral", "N05AN01",
          ("1 comprimé le soir, dose à adapter selon la lithémie",)),
    _Drug("lamotrigine-100", _tablet("lamotrigine", 100, "mg", "mg"), "100 mg", "comprimé", "oral", "N03AX09",
          ("1 comprimé matin et soir",), mte_candidate=True),
    _Drug("levetiracetam-500", _tablet("lévétiracétam", 500, "mg", "mg"), "500 mg", "comprimé pelliculé", "oral",
          "N03AX14", ("1 comprimé matin et soir",), mte_candidate=True),
    _Drug("valproate-500", _tablet("valproate de sodium", 500, "mg", "mg"), "500 mg",
          "comprimé pelliculé gastro-résistant", "oral", "N03AG01", ("1 comprimé matin et soir",),
          mte_candidate=True),
    _Drug("sertraline-50", (_Ingredient("sertraline", 50, "mg", "mg", 1, "gélule", "1"),), "50 mg", "gélule", "oral",
          "N06AB06", ("1 gélule le matin",)),
    _Drug("escitalopram-10", _tablet("escitalopram", 10, "mg", "mg"), "10 mg", "comprimé pelliculé sécable", "oral",
          "N06AB10", ("1 comprimé le matin",)),
    _Drug("alprazolam-0.25", _tablet("alprazolam", 0.25, "mg", "mg"), "0,25 mg", "comprimé sécable", "oral",
          "N05BA12", ("1 comprimé le soir si anxiété, maximum 3 par jour",), supply_days=28),
    _Drug("zolpidem-10", _tablet("zolpidem", 10, "mg", "mg"), "10 mg", "comprimé pelliculé sécable", "oral",
          "N05CF02", ("1/2 comprimé au coucher",), supply_days=28),
    _Drug("levodopa-benserazide-100", (_Ingredient("lévodopa", 100, "mg", "mg", 1, "gélule", "1"),
                                       _Ingredient("bensérazide", 25, "mg", "mg", 1, "gélule", "1")),
          "100 mg/25 mg", "gélule", "oral", "N04BA02", ("1 gélule matin, midi et soir",)),
    _Drug("methotrexate-10", _tablet("méthotrexate", 10, "mg", "mg"), "10 mg", "comprimé", "oral", "L04AX03",
          ("1 comprimé une fois par semaine, le lundi",)),
    _Drug("acide-folique-5", _tablet("acide folique", 5, "mg", "mg"), "5 mg", "comprimé", "oral", "B03BB01",
          ("1 comprimé une fois par semaine, le mercredi",)),
    # Respiratory, digestive
    _Drug("salbutamol-100", (_Ingredient("salbutamol", 100, "µg", "ug", 1, "dose", "{dose}"),),
          "100 microgrammes/dose", "suspension pour inhalation en flacon pressurisé", "inhaled", "R03AC02",
          ("2 bouffées en cas de gêne respiratoire, jusqu'à 8 bouffées par jour",)),
    _Drug("fluticasone-salmeterol-250", (_Ingredient("fluticasone", 250, "µg", "ug", 1, "dose", "{dose}"),
                                         _Ingredient("salmétérol", 50, "µg", "ug", 1, "dose", "{dose}")),
          "250 microgrammes/50 microgrammes/dose", "poudre pour inhalation en récipient unidose", "inhaled",
          "R03AK06", ("1 inhalation matin et soir, se rincer la bouche après chaque prise",)),
    _Drug("tiotropium-18", (_Ingredient("tiotropium", 18, "µg", "ug", 1, "gélule", "1"),), "18 microgrammes",
          "poudre pour inhalation en gélule", "inhaled", "R03BB04", ("1 inhalation par jour à heure fixe",)),
    _Drug("cetirizine-10", _tablet("cétirizine", 10, "mg", "mg"), "10 mg", "comprimé pelliculé sécable", "oral",
          "R06AE07", ("1 comprimé le soir pendant la saison des pollens",)),
    _Drug("omeprazole-20", (_Ingredient("oméprazole", 20, "mg", "mg", 1, "gélule", "1"),), "20 mg",
          "gélule gastro-résistante", "oral", "A02BC01", ("1 gélule le matin à jeun",)),
    _Drug("colecalciferol-100000", (_Ingredient("colécalciférol", 100000, "UI", "[iU]", 2, "mL", "mL"),),
          "100 000 UI/2 mL", "solution buvable en ampoule", "oral", "A11CC05",
          ("1 ampoule tous les 3 mois",), supply_days=90),
    _Drug("ethinylestradiol-levonorgestrel", (_Ingredient("lévonorgestrel", 0.1, "mg", "mg", 1, "comprimé", "1"),
                                               _Ingredient("éthinylestradiol", 0.02, "mg", "mg", 1, "comprimé", "1")),
          "0,1 mg/0,02 mg", "comprimé enrobé", "oral", "G03AA07",
          ("1 comprimé par jour pendant 21 jours, puis 7 jours d'arrêt",), supply_days=84),
    # Pain: non-narcotic, then narcotics and assimilated (secure paper, at most 28 days)
    _Drug("paracetamol-1000", _tablet("paracétamol", 1, "g", "g"), "1 g", "comprimé", "oral", "N02BE01",
          ("1 comprimé jusqu'à 3 fois par jour si douleur, en espaçant les prises d'au moins 6 heures",)),
    _Drug("tramadol-50", (_Ingredient("tramadol", 50, "mg", "mg", 1, "gélule", "1"),), "50 mg", "gélule", "oral",
          "N02AX02", ("1 gélule si douleur, jusqu'à 3 fois par jour",), supply_days=28),
    _Drug("morphine-lp-30", (_Ingredient("sulfate de morphine", 30, "mg", "mg", 1, "gélule", "1"),), "30 mg",
          "gélule à libération prolongée", "oral", "N02AA01", ("1 gélule matin et soir, à heures fixes",),
          supply_days=28),
    _Drug("oxycodone-5", (_Ingredient("oxycodone", 5, "mg", "mg", 1, "gélule", "1"),), "5 mg", "gélule", "oral",
          "N02AA05", ("1 gélule en cas d'accès douloureux, jusqu'à 4 par jour, espacer d'au moins 4 heures",),
          supply_days=28),
    _Drug("fentanyl-25", (_Ingredient("fentanyl", 25, "µg/h", "ug/h", 1, "dispositif", "1"),), "25 microgrammes/heure",
          "dispositif transdermique", "transdermal", "N02AB03", ("1 patch à changer toutes les 72 heures",),
          supply_days=28),
    _Drug("buprenorphine-8", _tablet("buprénorphine", 8, "mg", "mg"), "8 mg", "comprimé sublingual", "sublingual",
          "N07BC01", ("1 comprimé par jour à laisser fondre sous la langue, délivrance fractionnée par 7 jours",),
          supply_days=28, mte_candidate=True),
    _Drug("methylphenidate-lp-18", _tablet("méthylphénidate", 18, "mg", "mg"), "18 mg",
          "comprimé à libération prolongée", "oral", "N06BA04", ("1 comprimé le matin, les jours d'école",),
          supply_days=28),
    # Short courses (recent prescriptions)
    _Drug("amoxicilline-1000", _tablet("amoxicilline", 1, "g", "g"), "1 g", "comprimé dispersible", "oral",
          "J01CA04", ("1 comprimé matin, midi et soir pendant 6 jours",), supply_days=6, allergen_class="penicillin"),
    _Drug("amoxicilline-clavulanique-1000", (_Ingredient("amoxicilline", 1, "g", "g", 1, "sachet", "1"),
                                             _Ingredient("acide clavulanique", 125, "mg", "mg", 1, "sachet", "1")),
          "1 g/125 mg", "poudre pour suspension buvable en sachet-dose", "oral", "J01CR02",
          ("1 sachet matin, midi et soir pendant 7 jours",), supply_days=7, allergen_class="penicillin"),
    _Drug("amoxicilline-susp-250", (_Ingredient("amoxicilline", 250, "mg", "mg", 5, "mL", "mL"),), "250 mg/5 mL",
          "poudre pour suspension buvable", "oral", "J01CA04",
          ("1 dose-poids matin, midi et soir pendant 6 jours (pipette graduée en kg)",), supply_days=6,
          allergen_class="penicillin"),
    _Drug("pristinamycine-500", _tablet("pristinamycine", 500, "mg", "mg"), "500 mg", "comprimé pelliculé", "oral",
          "J01FG01", ("2 comprimés matin et soir pendant 4 jours",), supply_days=4),
    _Drug("azithromycine-250", _tablet("azithromycine", 250, "mg", "mg"), "250 mg", "comprimé pelliculé", "oral",
          "J01FA10", ("2 comprimés le premier jour, puis 1 comprimé par jour pendant 4 jours",), supply_days=5),
    _Drug("azithromycine-susp-200", (_Ingredient("azithromycine", 200, "mg", "mg", 5, "mL", "mL"),), "200 mg/5 mL",
          "poudre pour suspension buvable", "oral", "J01FA10",
          ("1 dose-poids par jour pendant 3 jours (pipette graduée en kg)",), supply_days=3),
    _Drug("fosfomycine-3000", (_Ingredient("fosfomycine trométamol", 3, "g", "g", 1, "sachet", "1"),), "3 g",
          "granulés pour solution buvable en sachet", "oral", "J01XX01",
          ("1 sachet en une prise unique, à distance des repas",), supply_days=1),
    _Drug("ibuprofene-400", _tablet("ibuprofène", 400, "mg", "mg"), "400 mg", "comprimé pelliculé", "oral",
          "M01AE01", ("1 comprimé jusqu'à 3 fois par jour au cours des repas, pendant 5 jours au plus",),
          supply_days=5, allergen_class="nsaid"),
    _Drug("paracetamol-susp-2.4", (_Ingredient("paracétamol", 2.4, "g", "g", 100, "mL", "mL"),), "2,4 %",
          "suspension buvable", "oral", "N02BE01",
          ("1 dose-poids toutes les 6 heures si fièvre ou douleur, 4 fois par jour au plus",), supply_days=5),
    _Drug("prednisolone-20", _tablet("prednisolone", 20, "mg", "mg"), "20 mg", "comprimé orodispersible", "oral",
          "H02AB06", ("2 comprimés le matin pendant 5 jours",), supply_days=5),
)  # fmt: skip
DRUGS: Final = {drug.key: drug for drug in _DRUG_LIST}


def _is_solid_oral(drug: _Drug) -> bool:
    return drug.route == "oral" and any(word in drug.form for word in ("comprimé", "gélule", "capsule"))


def _medication(drug: _Drug) -> Resource:
    ingredients = []
    for ingredient in drug.ingredients:
        ingredients.append(
            {
                "itemCodeableConcept": {"text": ingredient.dci},
                "isActive": True,
                "strength": {
                    "numerator": _quantity(ingredient.value, ingredient.unit, ingredient.ucum),
                    "denominator": _quantity(ingredient.per_value, ingredient.per_unit, ingredient.per_ucum),
                },
            }
        )
    return {
        "resourceType": "Medication",
        "id": drug.medication_id,
        "code": {"coding": [_coding(ATC, drug.atc)], "text": drug.label},
        "form": {"text": drug.form},
        "ingredient": ingredients,
    }


# --- conditions, allergies -----------------------------------------------------------------------------


class _ConditionDef(NamedTuple):
    key: str
    text: str
    icd10: str
    icd10_display: str
    snomed: str = ""
    snomed_display: str = ""
    # Treatment slots: (probability, drug keys to choose one from).
    regimen: tuple[tuple[float, tuple[str, ...]], ...] = ()


_CONDITION_LIST: Final = (
    _ConditionDef("diabete2", "Diabète de type 2", "E11", "Diabète sucré de type 2", "44054006",
                  "Diabetes mellitus type 2",
                  ((1.0, ("metformine-1000",)), (0.45, ("gliclazide-30", "sitagliptine-100")),
                   (0.25, ("insuline-glargine-100",)), (0.6, ("atorvastatine-20", "rosuvastatine-10")))),
    _ConditionDef("hta", "Hypertension artérielle essentielle", "I10", "Hypertension essentielle (primitive)",
                  "38341003", "Hypertensive disorder",
                  ((1.0, ("amlodipine-5", "ramipril-5", "perindopril-5")),
                   (0.4, ("hydrochlorothiazide-25", "bisoprolol-2.5")))),
    _ConditionDef("dyslipidemie", "Hypercholestérolémie", "E78.0", "Hypercholestérolémie essentielle",
                  "55822004", "Hyperlipidemia", ((1.0, ("atorvastatine-20", "rosuvastatine-10")),)),
    _ConditionDef("hypothyroidie", "Hypothyroïdie", "E03.9", "Hypothyroïdie, sans précision", "40930008",
                  "Hypothyroidism", ((1.0, ("levothyroxine-75", "levothyroxine-100")),)),
    _ConditionDef("fa", "Fibrillation auriculaire", "I48", "Fibrillation et flutter auriculaires", "49436004",
                  "Atrial fibrillation", ((1.0, ("apixaban-5", "warfarine-5")), (0.8, ("bisoprolol-2.5",)))),
    _ConditionDef("coronaropathie", "Cardiopathie ischémique", "I25.1", "Cardiopathie artérioscléreuse",
                  "53741008", "Coronary arteriosclerosis",
                  ((1.0, ("aspirine-75",)), (1.0, ("atorvastatine-20",)), (0.8, ("bisoprolol-2.5",)),
                   (0.6, ("ramipril-5",)))),
    _ConditionDef("insuffisance_cardiaque", "Insuffisance cardiaque", "I50.9", "Insuffisance cardiaque, sans précision",
                  "84114007", "Heart failure",
                  ((1.0, ("furosemide-40",)), (1.0, ("bisoprolol-2.5",)), (0.8, ("ramipril-5",)))),
    _ConditionDef("asthme", "Asthme", "J45.9", "Asthme, sans précision", "195967001", "Asthma",
                  ((1.0, ("salbutamol-100",)), (0.6, ("fluticasone-salmeterol-250",)), (0.3, ("cetirizine-10",)))),
    _ConditionDef("bpco", "Bronchopneumopathie chronique obstructive", "J44.9",
                  "Maladie pulmonaire obstructive chronique, sans précision", "13645005",
                  "Chronic obstructive lung disease", ((1.0, ("tiotropium-18",)), (1.0, ("salbutamol-100",)))),
    _ConditionDef("depression", "Épisode dépressif", "F32.9", "Épisode dépressif, sans précision", "35489007",
                  "Depressive disorder",
                  ((1.0, ("sertraline-50", "escitalopram-10")), (0.3, ("alprazolam-0.25",)))),
    _ConditionDef("rgo", "Reflux gastro-œsophagien", "K21.9", "Reflux gastro-œsophagien sans œsophagite",
                  "235595009", "Gastroesophageal reflux disease", ((1.0, ("omeprazole-20",)),)),
    _ConditionDef("epilepsie", "Épilepsie", "G40.9", "Épilepsie, sans précision", "84757009", "Epilepsy",
                  ((1.0, ("lamotrigine-100", "levetiracetam-500", "valproate-500")),)),
    _ConditionDef("bipolaire", "Trouble bipolaire", "F31.9", "Trouble affectif bipolaire, sans précision",
                  "13746004", "Bipolar disorder", ((1.0, ("lithium-400",)),)),
    _ConditionDef("parkinson", "Maladie de Parkinson", "G20", "Maladie de Parkinson", "49049000",
                  "Parkinson's disease", ((1.0, ("levodopa-benserazide-100",)),)),
    _ConditionDef("alzheimer", "Maladie d'Alzheimer", "G30.9", "Maladie d'Alzheimer, sans précision", "26929004",
                  "Alzheimer's disease", ()),
    _ConditionDef("polyarthrite", "Polyarthrite rhumatoïde", "M06.9", "Polyarthrite rhumatoïde, sans précision",
                  "69896004", "Rheumatoid arthritis",
                  ((1.0, ("methotrexate-10",)), (1.0, ("acide-folique-5",)), (0.4, ("prednisone-5",)))),
    _ConditionDef("greffe_rein", "Greffe rénale", "Z94.0", "Greffe de rein",
                  regimen=((1.0, ("ciclosporine-100",)), (1.0, ("prednisone-5",)))),
    _ConditionDef("cancer_sein", "Cancer du sein", "C50.9", "Tumeur maligne du sein, sans précision", "254837009",
                  "Malignant neoplasm of breast",
                  ((0.5, ("morphine-lp-30", "fentanyl-25")), (0.4, ("oxycodone-5",)), (0.8, ("paracetamol-1000",)))),
    _ConditionDef("lombalgie", "Lombalgie chronique", "M54.5", "Lombalgie basse", "279039007", "Low back pain",
                  ((1.0, ("paracetamol-1000",)), (0.5, ("tramadol-50",)))),
    _ConditionDef("arthrose", "Arthrose", "M19.9", "Arthrose, sans précision", "396275006", "Osteoarthritis",
                  ((1.0, ("paracetamol-1000",)),)),
    _ConditionDef("dependance_opiaces", "Dépendance aux opiacés, traitement de substitution", "F11.2",
                  "Troubles mentaux et du comportement liés à l'utilisation d'opiacés : syndrome de dépendance",
                  "75544000", "Opioid dependence", ((1.0, ("buprenorphine-8",)),)),
    _ConditionDef("insomnie", "Insomnie", "G47.0", "Troubles de l'endormissement et du maintien du sommeil",
                  "193462001", "Insomnia", ((1.0, ("zolpidem-10",)),)),
    _ConditionDef("tdah", "Trouble déficit de l'attention avec hyperactivité", "F90.0",
                  "Perturbation de l'activité et de l'attention", "406506008",
                  "Attention deficit hyperactivity disorder",
                  ((1.0, ("methylphenidate-lp-18",)),)),
    _ConditionDef("carence_vitd", "Carence en vitamine D", "E55.9", "Carence en vitamine D, sans précision",
                  regimen=((1.0, ("colecalciferol-100000",)),)),
    # Short episodes (resolved), treated with a recent prescription
    _ConditionDef("angine", "Angine aiguë", "J03.9", "Amygdalite aiguë, sans précision"),
    _ConditionDef("sinusite", "Sinusite aiguë", "J01.9", "Sinusite aiguë, sans précision", "15805002",
                  "Acute sinusitis"),
    _ConditionDef("cystite", "Cystite aiguë", "N30.0", "Cystite aiguë", "68226007", "Acute cystitis"),
    _ConditionDef("bronchite", "Bronchite aiguë", "J20.9", "Bronchite aiguë, sans précision", "10509002",
                  "Acute bronchitis"),
    _ConditionDef("otite", "Otite moyenne aiguë", "H66.9", "Otite moyenne, sans précision", "65363002",
                  "Otitis media"),
    _ConditionDef("lumbago", "Lumbago aigu", "M54.5", "Lombalgie basse"),
)  # fmt: skip
CONDITIONS: Final = {condition.key: condition for condition in _CONDITION_LIST}

# ALD-eligible conditions (liste des ALD 30 and hors liste) with their share among patients in ALD.
_ALD_CONDITIONS: Final = (
    ("diabete2", 36, 30), ("coronaropathie", 10, 45), ("insuffisance_cardiaque", 6, 55), ("fa", 7, 50),
    ("cancer_sein", 8, 35), ("depression", 6, 20), ("bipolaire", 3, 20), ("bpco", 5, 45), ("epilepsie", 3, 6),
    ("parkinson", 3, 55), ("alzheimer", 3, 65), ("polyarthrite", 3, 30), ("greffe_rein", 1, 25),
    ("asthme", 2, 6), ("dependance_opiaces", 1, 20), ("tdah", 1, 6),
)  # fmt: skip
# Chronic, mostly not ALD: (key, minimum age, maximum age, probability per patient in that range).
_COMMON_CONDITIONS: Final = (
    ("hta", 40, 101, 0.30), ("dyslipidemie", 40, 101, 0.18), ("hypothyroidie", 25, 101, 0.07),
    ("rgo", 25, 101, 0.07), ("asthme", 4, 60, 0.06), ("depression", 18, 101, 0.06), ("arthrose", 55, 101, 0.15),
    ("lombalgie", 30, 75, 0.05), ("insomnie", 30, 101, 0.02), ("carence_vitd", 65, 101, 0.15),
    ("diabete2", 40, 101, 0.03), ("epilepsie", 6, 80, 0.004), ("tdah", 6, 17, 0.02),
    ("dependance_opiaces", 20, 60, 0.004),
)  # fmt: skip


class _Allergen(NamedTuple):
    text: str
    snomed: str
    display: str
    category: str
    allergen_class: str
    reaction_code: str
    reaction_display: str
    reaction_text: str


_ALLERGENS: Final = (
    _Allergen("Amoxicilline", "372687004", "Amoxicillin", "medication", "penicillin",
              "126485001", "Urticaria", "Urticaire généralisée"),
    _Allergen("Pénicillines", "373270004", "Penicillin -class of antibiotic-", "medication", "penicillin",
              "41291007", "Angioedema", "Œdème de Quincke"),
    _Allergen("Acide acétylsalicylique (aspirine)", "387458008", "Aspirin", "medication", "nsaid",
              "4386001", "Bronchospasm", "Bronchospasme"),
    _Allergen("Ibuprofène", "387207008", "Ibuprofen", "medication", "nsaid",
              "126485001", "Urticaria", "Urticaire"),
    _Allergen("Codéine", "387494007", "Codeine", "medication", "codeine",
              "422587007", "Nausea", "Nausées et vomissements"),
    _Allergen("Pollens de graminées", "256277009", "Grass pollen", "environment", "",
              "61582004", "Allergic rhinitis", "Rhinite allergique"),
    _Allergen("Acariens", "260147004", "House dust mite", "environment", "",
              "61582004", "Allergic rhinitis", "Rhinite allergique"),
    _Allergen("Latex", "111088007", "Latex", "environment", "",
              "271807003", "Eruption of skin", "Eczéma de contact"),
    _Allergen("Arachide", "762952008", "Peanut", "food", "",
              "39579001", "Anaphylaxis", "Choc anaphylactique"),
)  # fmt: skip
_ALLERGEN_CUM: Final = _cumulative((30, 10, 8, 6, 4, 18, 12, 5, 7))

# Coded negations and no-information statements (docs/fhir-input.md, *Clinical markers*).
_NO_KNOWN_ALLERGY: Final = _concept(SNOMED, "716186003", "No known allergy", "Pas d'allergie connue")
_NO_KNOWN_DRUG_ALLERGY: Final = _concept(
    SNOMED, "409137002", "No known drug allergy", "Pas d'allergie médicamenteuse connue"
)
_NO_ALLERGY_INFO: Final = _concept(
    IPS_ABSENT, "no-allergy-info", "No information about allergies", "Allergies : pas d'information"
)

_CLINICAL_ACTIVE: Final = {
    "coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active")]
}
_CLINICAL_RESOLVED: Final = {
    "coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "resolved", "Resolved")]
}
_CONDITION_CONFIRMED: Final = {
    "coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed")]
}
_PROBLEM_LIST: Final = [
    {"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")]}
]
_ENCOUNTER_DIAGNOSIS: Final = [
    {"coding": [_coding("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis")]}
]
# Some platforms mark the ALD on the Condition itself (docs/fhir-input.md accepts any system).
_ALD_CATEGORY: Final = {"coding": [{"code": "ALD", "display": "Affection de longue durée exonérante"}]}
_ALLERGY_ACTIVE: Final = {
    "coding": [_coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active")]
}
_ALLERGY_CONFIRMED: Final = {
    "coding": [_coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed")]
}
_ALLERGY_REFUTED: Final = {
    "coding": [_coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "refuted")]
}
_ALLERGY_UNCONFIRMED: Final = {
    "coding": [_coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "unconfirmed")]
}
_ALLERGY_CLINICAL: Final = {
    status: {"coding": [_coding("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", status)]}
    for status in ("active", "inactive", "resolved")
}
_VITAL_SIGNS: Final = [
    {"coding": [_coding("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital Signs")]}
]
_WEIGHT_CODE: Final = _concept(LOINC, "29463-7", "Body weight", "Poids")
_HEIGHT_CODE: Final = _concept(LOINC, "8302-2", "Body height", "Taille")
_ALD_CODE: Final = _concept(CS_CISIS, "MED-574", "En rapport avec une ALD", "En rapport avec une ALD")
_CONTINUOUS: Final = {
    "coding": [
        _coding(
            "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
            "continuous",
            "Continuous long term therapy",
        )
    ]
}
_ACUTE: Final = {
    "coding": [
        _coding("http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "acute", "Short course")
    ]
}
_COMMUNITY: Final = [
    {"coding": [_coding("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community")]}
]
_NON_SUBSTITUTION_TEXT: Final = {
    "MTE": "Marge thérapeutique étroite",
    "EFG": "Enfant de moins de 6 ans, pas de forme générique adaptée",
    "CIF": "Contre-indication formelle à un excipient",
}
_IDENTITY_DISPLAY: Final = {
    "PROV": "Identité provisoire",
    "RECUP": "Identité récupérée",
    "VALI": "Identité validée",
    "QUAL": "Identité qualifiée",
}


# --- the people ----------------------------------------------------------------------------------------


@dataclass
class _Person:
    id: str
    sex: str  # "female" | "male"
    birth_date: dt.date
    birth_name: str
    given_names: list[str]
    status: str  # PROV | RECUP | VALI | QUAL
    birth_place: _Place | None
    gp: str
    used_name: str = ""
    used_given_name: str = ""
    given_in_extension_only: bool = False  # given[] holds the first name only; the extension the full list
    official_use: bool = True  # PROV identities typed at the desk may carry a name without `use`
    phones: list[tuple[str, str]] = field(default_factory=list)
    address: Resource | None = None
    deceased_on: dt.date | None = None
    deceased_flag_only: bool = False
    active: bool = True
    nir_order: int = 1

    def nir(self) -> str:
        """A NIR consistent with sex, birth month and year and birth place, with a correct key."""
        place = self.birth_place.insee if self.birth_place else "99100"
        first13 = (
            f"{1 if self.sex == 'male' else 2}{self.birth_date.year % 100:02d}{self.birth_date.month:02d}"
            f"{place}{self.nir_order:03d}"
        )
        return with_check_key(first13)

    def claim_nir(self, taken: set[str]) -> None:
        """Move `nir_order` to the next free serial number (1-999, wrapping) so no two people share a NIR.

        The first 13 digits decide the key, so they are what must be unique within the practice.
        """
        for _ in range(999):
            first13 = self.nir()[:13]
            if first13 not in taken:
                taken.add(first13)
                return
            self.nir_order = self.nir_order % 999 + 1
        raise ValueError(f"no free NIR serial number left for {self.id} ({first13[:10]}…)")


def _patient(person: _Person) -> Resource:
    extensions: list[Resource] = [
        {
            "url": EXT_IDENTITY_RELIABILITY,
            "extension": [
                {
                    "url": "identityStatus",
                    "valueCoding": _coding(CS_IDENTITY_STATUS, person.status, _IDENTITY_DISPLAY[person.status]),
                }
            ],
        }
    ]
    if person.birth_place is not None:
        place = person.birth_place
        coding = {"code": place.insee} if place.insee.startswith("99") else _coding(CS_COMMUNE, place.insee)
        birth_address: Resource = {"extension": [{"url": EXT_INSEE_CODE, "valueCoding": coding}]}
        if place.city:
            birth_address["city"] = place.city
        birth_address["country"] = place.country
        extensions.append({"url": EXT_BIRTH_PLACE, "valueAddress": birth_address})
    resource: Resource = {"resourceType": "Patient", "id": person.id, "extension": extensions}
    if person.status == "QUAL":
        resource["identifier"] = [
            {
                "use": "official",
                "type": {"coding": [_coding(CS_IDENTIFIER_TYPE, "INS-NIR-TEST", "NIR de test")]},
                "system": INS_TEST_SYSTEM,
                "value": person.nir(),
            }
        ]
    resource["active"] = person.active
    official: Resource = {}
    if person.official_use:
        official["use"] = "official"
    if len(person.given_names) > 1 or person.status == "QUAL":
        official["extension"] = [{"url": EXT_BIRTH_LIST_GIVEN_NAME, "valueString": " ".join(person.given_names)}]
    official["family"] = person.birth_name
    official["given"] = person.given_names[:1] if person.given_in_extension_only else list(person.given_names)
    names = [official]
    if person.used_name or person.used_given_name:
        usual: Resource = {"use": "usual"}
        if person.used_name:
            usual["family"] = person.used_name
        if person.used_given_name:
            usual["given"] = [person.used_given_name]
        names.append(usual)
    resource["name"] = names
    if person.phones:
        resource["telecom"] = [{"system": "phone", "value": value, "use": use} for value, use in person.phones]
    resource["gender"] = person.sex
    resource["birthDate"] = person.birth_date.isoformat()
    if person.deceased_on is not None:
        if person.deceased_flag_only:
            resource["deceasedBoolean"] = True
        else:
            resource["deceasedDateTime"] = person.deceased_on.isoformat()
    if person.address is not None:
        resource["address"] = [person.address]
    resource["generalPractitioner"] = [_ref("Practitioner", person.gp)]
    resource["managingOrganization"] = _ref("Organization", ORGANIZATION_ID)
    return resource


# --- the export: one open NDJSON file per type ---------------------------------------------------------


class _Export:
    """The open NDJSON files of one export; writes each resource as soon as it is made."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.counts = dict.fromkeys(RESOURCE_TYPES, 0)
        self._files: dict[str, BinaryIO] = {}
        try:
            for kind in RESOURCE_TYPES:
                self._files[kind] = (out_dir / f"{kind}.ndjson").open("wb", buffering=1 << 20)
        except BaseException:
            self.close()
            raise

    def write(self, resource: Resource) -> None:
        kind = resource["resourceType"]
        self._files[kind].write((_JSON.encode(resource) + "\n").encode())
        self.counts[kind] += 1

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()

    def __enter__(self) -> _Export:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


# --- clinical content of one patient -------------------------------------------------------------------


class _Chart:
    """Writes one patient's clinical resources, numbering their ids after the patient's."""

    def __init__(self, export: _Export, person: _Person, today: dt.date) -> None:
        self.export = export
        self.person = person
        self.today = today
        self.subject = _ref("Patient", person.id)
        self.suffix = person.id.removeprefix("pat-")
        self._serial = 0
        self.allergen_classes: set[str] = set()

    def _next_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self.suffix}-{self._serial}"

    def age_on(self, day: dt.date) -> int:
        born = self.person.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    # Allergies
    def no_known_allergy(self, concept: Resource = _NO_KNOWN_ALLERGY) -> None:
        self.export.write(
            {
                "resourceType": "AllergyIntolerance",
                "id": self._next_id("alg"),
                "clinicalStatus": _ALLERGY_ACTIVE,
                "verificationStatus": _ALLERGY_CONFIRMED,
                "code": concept,
                "patient": self.subject,
                "recordedDate": self._past(400, 3000).isoformat(),
            }
        )

    def no_allergy_information_coded(self) -> None:
        self.export.write(
            {
                "resourceType": "AllergyIntolerance",
                "id": self._next_id("alg"),
                "code": _NO_ALLERGY_INFO,
                "patient": self.subject,
            }
        )

    def allergy(
        self,
        allergen: _Allergen,
        *,
        criticality: str = "high",
        refuted: bool = False,
        clinical: str = "active",
        unconfirmed: bool = False,
        code_only: bool = False,
    ) -> None:
        """An allergy; ``clinical`` resolved / inactive, ``unconfirmed`` and ``code_only`` (a SNOMED code and
        no text at all) are the shapes real exports use that the desk must show flagged."""
        verification = _ALLERGY_REFUTED if refuted else _ALLERGY_UNCONFIRMED if unconfirmed else _ALLERGY_CONFIRMED
        code = _concept(SNOMED, allergen.snomed, allergen.display, allergen.text)
        resource: Resource = {
            "resourceType": "AllergyIntolerance",
            "id": self._next_id("alg"),
            "clinicalStatus": _ALLERGY_CLINICAL[clinical],
            "verificationStatus": verification,
            "type": "allergy",
            "category": [allergen.category],
            "criticality": criticality,
            "code": {"coding": [{"system": SNOMED, "code": allergen.snomed}]} if code_only else code,
            "patient": self.subject,
            "recordedDate": self._past(200, 5000).isoformat(),
            "reaction": [
                {"manifestation": [_concept(SNOMED, allergen.reaction_code, allergen.reaction_display,
                                            allergen.reaction_text)]}
            ],
        }  # fmt: skip
        if refuted:
            # Reactivity ruled out by an allergist's tests: kept in the record, never an allergy.
            resource.pop("clinicalStatus")
        elif allergen.allergen_class:
            self.allergen_classes.add(allergen.allergen_class)
        self.export.write(resource)

    def condition_text(self, text: str, *, onset: dt.date) -> str:
        """A problem written as free text only (no code), as some exports carry them."""
        condition_id = self._next_id("cond")
        self.export.write(
            {
                "resourceType": "Condition",
                "id": condition_id,
                "clinicalStatus": _CLINICAL_ACTIVE,
                "category": list(_PROBLEM_LIST),
                "code": {"text": text},
                "subject": self.subject,
                "onsetDateTime": onset.isoformat(),
            }
        )
        return condition_id

    # Conditions and the ALD marker
    def condition(
        self,
        definition: _ConditionDef,
        *,
        onset: dt.date,
        snomed: bool,
        ald_category: bool = False,
        resolved_on: dt.date | None = None,
    ) -> str:
        condition_id = self._next_id("cond")
        if snomed and definition.snomed:
            code = _concept(SNOMED, definition.snomed, definition.snomed_display, definition.text)
        else:
            code = _concept(ICD10, definition.icd10, definition.icd10_display, definition.text)
        category: list[Resource] = list(_ENCOUNTER_DIAGNOSIS if resolved_on else _PROBLEM_LIST)
        if ald_category:
            category = [*category, _ALD_CATEGORY]
        resource: Resource = {
            "resourceType": "Condition",
            "id": condition_id,
            "clinicalStatus": _CLINICAL_RESOLVED if resolved_on else _CLINICAL_ACTIVE,
            "verificationStatus": _CONDITION_CONFIRMED,
            "category": category,
            "code": code,
            "subject": self.subject,
            "onsetDateTime": onset.isoformat(),
        }
        if resolved_on is not None:
            resource["abatementDateTime"] = resolved_on.isoformat()
        self.export.write(resource)
        return condition_id

    def ald_marker(self, condition_id: str, recognised_on: dt.date) -> str:
        """The fr-core ALD Observation (MED-574 = true) whose focus is the recognised condition."""
        marker_id = self._next_id("ald")
        self.export.write(
            {
                "resourceType": "Observation",
                "id": marker_id,
                "status": "final",
                "code": _ALD_CODE,
                "subject": self.subject,
                "focus": [_ref("Condition", condition_id)],
                "effectiveDateTime": recognised_on.isoformat(),
                "valueBoolean": True,
            }
        )
        return marker_id

    # Measurements
    def measurement(self, kind: str, value: float, on: dt.date) -> None:
        weight = kind == "weight"
        self.export.write(
            {
                "resourceType": "Observation",
                "id": self._next_id("obs"),
                "status": "final",
                "category": _VITAL_SIGNS,
                "code": _WEIGHT_CODE if weight else _HEIGHT_CODE,
                "subject": self.subject,
                "effectiveDateTime": on.isoformat(),
                "valueQuantity": _quantity(value, "kg", "kg") if weight else _quantity(value, "cm", "cm"),
            }
        )

    # Treatments and prescriptions
    def medication_request(
        self,
        drug: _Drug,
        *,
        requester: str,
        authored: dt.date,
        posology: str = "",
        chronic: bool = True,
        started: dt.date | None = None,
        repeats: int | None = None,
        reasons: Sequence[Resource] = (),
        non_substitution: str = "",
        status: str = "active",
        inline: bool = False,
        missing_medication: str = "",
    ) -> str:
        """A prescription line; ``missing_medication`` makes it point at a Medication the export does not
        hold, with that text as the reference's display (what real exports do when a product was retired)."""
        request_id = self._next_id("mr")
        resource: Resource = {
            "resourceType": "MedicationRequest",
            "id": request_id,
            "status": status,
            "intent": "order",
            "category": _COMMUNITY,
        }
        if inline:
            resource["medicationCodeableConcept"] = {"coding": [_coding(ATC, drug.atc)], "text": drug.label}
        elif missing_medication:
            resource["medicationReference"] = {
                "reference": f"Medication/{drug.medication_id}-retired",
                "display": missing_medication,
            }
        else:
            resource["medicationReference"] = _ref("Medication", drug.medication_id)
        resource["subject"] = self.subject
        resource["authoredOn"] = authored.isoformat()
        resource["requester"] = _ref("Practitioner", requester)
        if reasons:
            resource["reasonReference"] = list(reasons)
        resource["courseOfTherapyType"] = _CONTINUOUS if chronic else _ACUTE
        route = _ROUTES[drug.route]
        dosage: Resource = {"text": posology or drug.posologies[0]}
        if started is not None:
            dosage["timing"] = {"repeat": {"boundsPeriod": {"start": started.isoformat()}}}
        dosage["route"] = _concept(SNOMED, route.code, route.display, route.text)
        resource["dosageInstruction"] = [dosage]
        dispense: Resource = {}
        if repeats is not None:
            dispense["numberOfRepeatsAllowed"] = repeats
        dispense["expectedSupplyDuration"] = {
            "value": drug.supply_days,
            "unit": "jours",
            "system": UCUM,
            "code": "d",
        }
        resource["dispenseRequest"] = dispense
        if non_substitution:
            resource["substitution"] = {
                "allowedBoolean": False,
                "reason": {
                    "coding": [{"code": non_substitution, "display": _NON_SUBSTITUTION_TEXT[non_substitution]}],
                    "text": non_substitution,
                },
            }
        self.export.write(resource)
        return request_id

    def _past(self, min_days: int, max_days: int) -> dt.date:
        """A day in the past, the middle of the range, and never before the patient was born."""
        day = self.today - dt.timedelta(days=(min_days + max_days) // 2)
        return max(day, self.person.birth_date)


# --- growth --------------------------------------------------------------------------------------------

# Median weight (kg) and height (cm) by age in years, French growth charts rounded.
_GROWTH: Final = (
    (0, 3.4, 50), (0.5, 7.5, 66), (1, 9.6, 75), (2, 12.2, 87), (3, 14.3, 96), (4, 16.3, 103), (5, 18.3, 110),
    (6, 20.5, 116), (8, 25.5, 128), (10, 32.0, 139), (12, 40.0, 151), (14, 50.0, 163), (16, 58.0, 170),
    (18, 63.0, 172),
)  # fmt: skip


def _growth(age_years: float, rng: _Rng) -> tuple[float, float]:
    for (age_low, weight_low, height_low), (age_high, weight_high, height_high) in zip(
        _GROWTH, _GROWTH[1:], strict=False
    ):
        if age_years <= age_high:
            ratio = (age_years - age_low) / (age_high - age_low)
            weight = weight_low + ratio * (weight_high - weight_low)
            height = height_low + ratio * (height_high - height_low)
            break
    else:
        weight, height = 72.0, 170.0
    return round(weight * rng.uniform(0.85, 1.18), 1), round(height * rng.uniform(0.95, 1.05))


# --- random patients -----------------------------------------------------------------------------------

# Share of the practice's patients by 5-year age band, 0-4 … 95-100 (close to the French pyramid).
_AGE_BANDS: Final = (5.2, 5.8, 6.1, 6.1, 5.6, 5.6, 6.0, 6.3, 6.3, 6.4, 6.6, 6.5, 6.2, 5.9, 5.4, 4.1, 3.0, 2.0, 1.0, 0.3)
_AGE_CUM: Final = _cumulative(_AGE_BANDS)


def _random_birth_date(rng: _Rng, today: dt.date) -> dt.date:
    band = rng.weighted(range(len(_AGE_BANDS)), _AGE_CUM)
    age = min(100, band * 5 + rng.below(5))
    latest = _years_before(today, age)
    earliest = _years_before(today, age + 1) + dt.timedelta(days=1)
    return earliest + dt.timedelta(days=rng.below((latest - earliest).days + 1))


def _random_person(rng: _Rng, index: int, today: dt.date) -> _Person:
    sex = "female" if rng.random() < 0.52 else "male"
    birth_date = _random_birth_date(rng, today)
    age = today.year - birth_date.year
    origin = rng.weighted(_ORIGINS, _ORIGIN_CUM)
    raw_name = _surname(rng, origin)
    if birth_date.year >= 2005 and rng.random() < 0.06:
        # Double family name given to a child since 2005 (loi du 4 mars 2002).
        raw_name = f"{raw_name}-{_surname(rng, 'france')}"
    given = _given_names(rng, sex, origin, birth_date.year)
    status = rng.weighted(("QUAL", "VALI", "PROV", "RECUP"), (58, 88, 96, 100))

    if origin != "france" and birth_date.year < 1985 and rng.random() < 0.7:
        birth_place: _Place | None = rng.pick(_COUNTRIES[origin])
    elif rng.random() < 0.6:
        birth_place = rng.pick(_LOCAL_BIRTH_PLACES)
    else:
        birth_place = rng.pick(_FRENCH_BIRTH_PLACES)
    if status == "PROV" and rng.random() < 0.5:
        birth_place = None  # typed at the desk without the ID document

    if age < 16:
        gp = _PEDIATRICIAN if rng.random() < 0.6 else rng.pick(_GENERALISTS)
    else:
        gp = rng.weighted(_GENERALISTS, (40, 75, 100))

    person = _Person(
        id=f"pat-{index:06d}",
        sex=sex,
        birth_date=birth_date,
        birth_name=_stored_family(rng, raw_name),
        given_names=given,
        status=status,
        birth_place=birth_place,
        gp=gp,
        given_in_extension_only=len(given) > 1 and rng.random() < 0.4,
        official_use=not (status == "PROV" and rng.random() < 0.3),
        nir_order=rng.between(1, 999),
    )
    if sex == "female" and age >= 22 and rng.random() < (0.3 if age < 30 else 0.65 if age < 45 else 0.8):
        # Married (or widowed) women using their spouse's name: about 28% of all patients.
        spouse_origin = origin if rng.random() < 0.7 else "france"
        spouse_name = _surname(rng, spouse_origin)
        if spouse_name != raw_name:
            person.used_name = _stored_family(rng, spouse_name)
    if len(given) > 1 and rng.random() < 0.06:
        person.used_given_name = given[1]
    if rng.random() < 0.9:
        person.phones.append((_fiction_phone(rng, "mobile"), "mobile"))
    if rng.random() < (0.6 if age >= 65 else 0.2):
        person.phones.append((_fiction_phone(rng, "home"), "home"))
    if rng.random() < 0.96:
        person.address = _address(rng)
    if age >= 60 and rng.random() < 0.006 * (age - 55) / 10:
        person.deceased_on = today - dt.timedelta(days=rng.between(5, 900))
        person.deceased_flag_only = rng.random() < 0.3
    elif rng.random() < 0.01:
        person.active = False  # moved away, record kept
    return person


def _random_chart(chart: _Chart, rng: _Rng) -> None:
    person = chart.person
    today = chart.today
    age = chart.age_on(today)
    alive = person.deceased_on is None

    # Allergies first: treatments avoid what the patient is allergic to.
    draw = rng.random()
    if draw < 0.45:
        chart.no_known_allergy(_NO_KNOWN_ALLERGY if rng.random() < 0.8 else _NO_KNOWN_DRUG_ALLERGY)
    elif draw < 0.47:
        chart.no_allergy_information_coded()
    elif draw < 0.85:
        pass  # no allergy resource at all: no information
    else:
        allergens: list[_Allergen] = []
        for _ in range(rng.between(1, 2)):
            allergen = rng.weighted(_ALLERGENS, _ALLERGEN_CUM)
            if allergen not in allergens:
                allergens.append(allergen)
                chart.allergy(allergen, criticality=rng.pick(("high", "low")))

    # Chronic conditions; one of them may be the recognised ALD.
    conditions: list[tuple[_ConditionDef, bool]] = []  # (definition, is the ALD)
    ald_chance = 0.012 if age < 18 else 0.035 if age < 40 else 0.10 if age < 60 else 0.21 if age < 80 else 0.33
    if rng.random() < ald_chance:
        eligible = [(key, weight) for key, weight, min_age in _ALD_CONDITIONS if age >= min_age]
        if age < 18:
            eligible = [(key, weight) for key, weight in eligible if key in ("asthme", "epilepsie", "tdah")]
        if eligible:
            key = rng.weighted([key for key, _ in eligible], _cumulative([weight for _, weight in eligible]))
            conditions.append((CONDITIONS[key], True))
    for key, min_age, max_age, chance in _COMMON_CONDITIONS:
        if min_age <= age < max_age and rng.random() < chance and all(c.key != key for c, _ in conditions):
            conditions.append((CONDITIONS[key], False))

    snomed = rng.random() < 0.5  # this platform codes in SNOMED CT, or in CIM-10
    ald_style_marker = rng.random() < 0.7  # fr-core MED-574 Observation, else an ALD category on the Condition
    lines: list[tuple[_Drug, list[Resource], dt.date]] = []  # drug, reasons, earliest start
    for definition, is_ald in conditions:
        years_ago = rng.between(1, max(1, min(25, age - 15))) if age > 16 else rng.between(0, max(0, age - 1))
        onset = today - dt.timedelta(days=365 * years_ago + rng.between(0, 364))
        if onset < person.birth_date:
            onset = min(today, person.birth_date + dt.timedelta(days=rng.between(200, 800)))
        condition_id = chart.condition(
            definition, onset=onset, snomed=snomed, ald_category=is_ald and not ald_style_marker
        )
        reasons: list[Resource] = []
        if is_ald:
            if ald_style_marker:
                recognised = min(today, onset + dt.timedelta(days=rng.between(20, 200)))
                marker = chart.ald_marker(condition_id, recognised)
                reasons = [_ref("Observation", marker)]
            else:
                reasons = [_ref("Condition", condition_id)]
        elif rng.random() < 0.3:
            reasons = [_ref("Condition", condition_id)]  # a plain reason: not ALD
        for probability, choices in definition.regimen:
            if rng.random() < probability:
                drug = DRUGS[rng.pick(choices)]
                if drug.allergen_class in chart.allergen_classes or any(d.key == drug.key for d, _, _ in lines):
                    continue
                if drug.key.startswith("ethinyl") and person.sex != "female":
                    continue
                if age < 6 and _is_solid_oral(drug):
                    continue  # a child under 6 does not swallow tablets
                lines.append((drug, reasons, onset))

    if conditions and age >= 18:
        # The adult fillers of a chronic patient's list (children keep only what their condition needs).
        fillers = ["paracetamol-1000", "colecalciferol-100000", "omeprazole-20", "cetirizine-10"]
        rng.shuffle(fillers)
        while len(lines) < 3 and fillers:
            drug = DRUGS[fillers.pop()]
            if all(d.key != drug.key for d, _, _ in lines):
                lines.append((drug, [], person.birth_date))
        del lines[6:]
    if person.sex == "female" and 16 <= age <= 45 and rng.random() < 0.25 and len(lines) < 6:
        lines.append((DRUGS["ethinylestradiol-levonorgestrel"], [], _years_before(today, age - 15)))

    for drug, reasons, earliest in lines:
        requester = person.gp if person.gp != _PEDIATRICIAN or age < 18 else rng.pick(_GENERALISTS)
        if rng.random() < 0.15:
            requester = rng.pick(_GENERALISTS)
        narcotic_like = drug.supply_days == 28
        authored = max(earliest, today - dt.timedelta(days=rng.between(2, 26 if narcotic_like else 85)))
        if drug.mte_candidate and rng.random() < 0.35:
            non_substitution = "MTE"
        elif rng.random() < 0.005:
            non_substitution = "CIF"
        else:
            non_substitution = ""
        chart.medication_request(
            drug,
            requester=requester,
            authored=authored,
            posology=rng.pick(drug.posologies),
            started=max(earliest, authored - dt.timedelta(days=rng.between(0, 2000))) if rng.random() < 0.7 else None,
            repeats=0 if narcotic_like else rng.pick((0, 1, 2, 2, 2, 3, 5)),
            reasons=reasons,
            non_substitution=non_substitution,
            status="active" if alive else "stopped",
        )

    # A short episode in the last year, treated and resolved: a recent prescription.
    if rng.random() < 0.22:
        _random_episode(chart, rng, age)

    # Weights and heights: most children, some adults.
    if age < 18:
        if rng.random() < 0.85:
            for _ in range(rng.between(1, 3)):
                measured = today - dt.timedelta(days=rng.between(3, 400 if age < 6 else 700))
                if measured <= person.birth_date:
                    continue
                weight, height = _growth((measured - person.birth_date).days / 365.25, rng)
                chart.measurement("weight", weight, measured)
                if rng.random() < 0.8:
                    chart.measurement("height", height, measured)
    elif rng.random() < 0.3:
        measured = today - dt.timedelta(days=rng.between(10, 1100))
        height = round(rng.gauss(164 if person.sex == "female" else 176, 7))
        weight = round(rng.gauss(66 if person.sex == "female" else 80, 13), 1)
        chart.measurement("weight", max(38.0, weight), measured)
        if rng.random() < 0.7:
            chart.measurement("height", height, measured)


def _random_episode(chart: _Chart, rng: _Rng, age: int) -> None:
    today = chart.today
    allergic = chart.allergen_classes
    options: tuple[str, ...]
    if age < 12:
        # Children get suspensions dosed by weight (a pipette graduated in kg), not adult tablets.
        key = rng.pick(("otite", "angine", "bronchite")) if age >= 3 else rng.pick(("otite", "bronchite"))
        options = ("paracetamol-susp-2.4",) if key == "bronchite" else ("amoxicilline-susp-250",)
        fallback = "azithromycine-susp-200"
    else:
        key = rng.pick(("angine", "sinusite", "cystite", "bronchite", "lumbago"))
        if key == "cystite" and chart.person.sex != "female":
            key = "angine"
        options = {
            "angine": ("amoxicilline-1000",),
            "sinusite": ("amoxicilline-1000", "amoxicilline-clavulanique-1000"),
            "cystite": ("fosfomycine-3000",),
            "bronchite": ("paracetamol-1000",),
            "lumbago": ("ibuprofene-400", "paracetamol-1000"),
        }[key]
        fallback = "pristinamycine-500" if key != "lumbago" else "paracetamol-1000"
    drug = DRUGS[rng.pick(options)]
    if drug.allergen_class in allergic:
        drug = DRUGS[fallback]
    onset = today - dt.timedelta(days=rng.between(10, 360))
    if onset <= chart.person.birth_date:
        return
    condition_id = chart.condition(
        CONDITIONS[key], onset=onset, snomed=rng.random() < 0.5, resolved_on=onset + dt.timedelta(days=10)
    )
    chart.medication_request(
        drug,
        requester=chart.person.gp,
        authored=onset,
        chronic=False,
        repeats=0,
        reasons=[_ref("Condition", condition_id)],
        status="completed",
        inline=rng.random() < 0.5,
    )


# --- the showcase cast ---------------------------------------------------------------------------------


def _showcase_people(today: dt.date) -> list[tuple[tuple[str, ...], _Person, Callable[[_Chart], None]]]:
    """The fixed cast at the start of every export: same names and traps whatever the seed."""
    lyon = _Place("69383", "Lyon 3e Arrondissement")
    villeurbanne = _Place("69266", "Villeurbanne")
    rng = _Rng("continuity-showcase")  # phones and addresses only

    def person(
        pid: int,
        sex: str,
        born: dt.date,
        birth_name: str,
        given: list[str],
        status: str,
        place: _Place | None,
        gp: str = "pra-01",
        **traits: Any,
    ) -> _Person:
        result = _Person(
            id=f"pat-{pid:06d}",
            sex=sex,
            birth_date=born,
            birth_name=birth_name,
            given_names=given,
            status=status,
            birth_place=place,
            gp=gp,
            nir_order=100 + pid,
            **traits,
        )
        result.phones.append((_fiction_phone(rng, "mobile"), "mobile"))
        result.address = _address(rng)
        return result  # fmt: skip

    def child_born(years: int, extra_days: int) -> dt.date:
        return _years_before(today, years) - dt.timedelta(days=extra_days)

    def days_ago(days: int) -> dt.date:
        return today - dt.timedelta(days=days)

    def nothing(chart: _Chart) -> None:
        chart.no_known_allergy()

    # What real exports do that the desk must show flagged (docs/fhir-input.md, "What happens to each kind").
    def possible_absence(chart: _Chart) -> None:
        chart.no_known_allergy()
        chart.condition_text("Pas de diabète connu, tension à surveiller", onset=days_ago(400))

    def status_unknown(chart: _Chart) -> None:
        chart.allergy(_ALLERGENS[7], criticality="low", clinical="resolved")  # latex, resolved
        fibrillation = chart.condition(CONDITIONS["fa"], onset=dt.date(2016, 4, 2), snomed=True)
        # A whole medication section exported with status "unknown": current, to check with the patient.
        chart.medication_request(DRUGS["apixaban-5"], requester="pra-01", authored=days_ago(60), repeats=2,
                                 reasons=[_ref("Condition", fibrillation)], status="unknown")  # fmt: skip
        chart.medication_request(DRUGS["amlodipine-5"], requester="pra-01", authored=days_ago(60), repeats=2,
                                 status="unknown")  # fmt: skip

    def export_troubles(chart: _Chart) -> None:
        chart.allergy(_ALLERGENS[3], code_only=True)  # ibuprofen, as a SNOMED code without any text
        chart.allergy(_ALLERGENS[5], criticality="low", unconfirmed=True)  # grass pollen, not confirmed
        asthma = chart.condition(CONDITIONS["asthme"], onset=dt.date(2008, 9, 1), snomed=True)
        chart.medication_request(DRUGS["salbutamol-100"], requester="pra-03", authored=days_ago(25), repeats=1,
                                 reasons=[_ref("Condition", asthma)],
                                 missing_medication="VENTOLINE 100 µg/dose, suspension pour inhalation")  # fmt: skip

    def homonym_a(chart: _Chart) -> None:
        chart.no_known_allergy()
        hta = chart.condition(CONDITIONS["hta"], onset=dt.date(2012, 5, 3), snomed=True)
        chart.medication_request(DRUGS["ramipril-5"], requester="pra-01", authored=days_ago(40), repeats=2,
                                 reasons=[_ref("Condition", hta)])  # fmt: skip

    def homonym_b(chart: _Chart) -> None:
        chart.allergy(_ALLERGENS[2], criticality="high")  # aspirin: the two Jean MARTIN must not be mixed up

    def twins(chart: _Chart) -> None:
        chart.no_known_allergy()
        weight, height = _growth(7.2, _Rng(chart.person.id))
        chart.measurement("weight", weight, days_ago(60))
        chart.measurement("height", height, days_ago(60))

    def child_with_weight(chart: _Chart) -> None:
        chart.no_known_allergy()
        chart.measurement("weight", 12.9, days_ago(190))
        chart.measurement("height", 91, days_ago(190))
        chart.measurement("weight", 14.6, days_ago(12))
        chart.measurement("height", 97, days_ago(12))
        otitis = chart.condition(CONDITIONS["otite"], onset=days_ago(2), snomed=True)
        # A current short course, not substitutable for a child under 6 (EFG).
        chart.medication_request(DRUGS["amoxicilline-susp-250"], requester=_PEDIATRICIAN, authored=days_ago(2),
                                 chronic=False, repeats=0, reasons=[_ref("Condition", otitis)],
                                 non_substitution="EFG")  # fmt: skip
        chart.medication_request(DRUGS["paracetamol-susp-2.4"], requester=_PEDIATRICIAN, authored=days_ago(2),
                                 chronic=False, repeats=0)  # fmt: skip

    def child_without_weight(chart: _Chart) -> None:
        pass  # no allergy resource, no measurement: nothing to print as a weight

    def ald(chart: _Chart) -> None:
        chart.no_known_allergy()
        diabetes = chart.condition(CONDITIONS["diabete2"], onset=dt.date(2014, 9, 1), snomed=True)
        marker = [_ref("Observation", chart.ald_marker(diabetes, dt.date(2015, 1, 20)))]
        reflux = chart.condition(CONDITIONS["rgo"], onset=dt.date(2021, 3, 15), snomed=False)
        chart.medication_request(
            DRUGS["metformine-1000"],
            requester="pra-01",
            authored=days_ago(35),
            started=dt.date(2014, 10, 2),
            repeats=2,
            reasons=marker,
        )
        chart.medication_request(
            DRUGS["insuline-glargine-100"],
            requester="pra-01",
            authored=days_ago(35),
            started=dt.date(2019, 6, 11),
            repeats=2,
            reasons=marker,
        )
        chart.medication_request(
            DRUGS["atorvastatine-20"], requester="pra-01", authored=days_ago(35), repeats=2, reasons=marker
        )
        # Not related to the ALD: the bottom zone of the bizone ordonnance.
        chart.medication_request(DRUGS["omeprazole-20"], requester="pra-01", authored=days_ago(35), repeats=2,
                                 reasons=[_ref("Condition", reflux)])  # fmt: skip
        chart.measurement("weight", 88.5, days_ago(35))
        chart.measurement("height", 174, days_ago(35))

    def ald_category(chart: _Chart) -> None:
        chart.no_known_allergy()
        failure = chart.condition(
            CONDITIONS["insuffisance_cardiaque"], onset=dt.date(2018, 2, 2), snomed=False, ald_category=True
        )
        reason = [_ref("Condition", failure)]
        for key in ("furosemide-40", "bisoprolol-2.5", "ramipril-5"):
            chart.medication_request(DRUGS[key], requester="pra-02", authored=days_ago(20), repeats=2, reasons=reason)
        chart.medication_request(DRUGS["paracetamol-1000"], requester="pra-02", authored=days_ago(20), repeats=0)
        # fmt: skip

    def mte(chart: _Chart) -> None:
        chart.no_known_allergy(_NO_KNOWN_DRUG_ALLERGY)
        thyroid = chart.condition(CONDITIONS["hypothyroidie"], onset=dt.date(2003, 4, 1), snomed=True)
        chart.medication_request(
            DRUGS["levothyroxine-75"],
            requester="pra-03",
            authored=days_ago(50),
            started=dt.date(2003, 4, 20),
            repeats=2,
            reasons=[_ref("Condition", thyroid)],
            non_substitution="MTE",
        )
        chart.medication_request(DRUGS["colecalciferol-100000"], requester="pra-03", authored=days_ago(50),
                                 repeats=1)  # fmt: skip

    def narcotic(chart: _Chart) -> None:
        chart.allergy(_ALLERGENS[4], criticality="low")  # codeine
        cancer = chart.condition(
            CONDITIONS["cancer_sein"]._replace(
                text="Cancer de la prostate", icd10="C61", icd10_display="Tumeur maligne de la prostate"
            ),
            onset=dt.date(2022, 11, 8),
            snomed=False,
        )
        marker = [_ref("Observation", chart.ald_marker(cancer, dt.date(2022, 12, 15)))]
        chart.medication_request(
            DRUGS["morphine-lp-30"], requester="pra-02", authored=days_ago(9), repeats=0, reasons=marker
        )
        chart.medication_request(
            DRUGS["oxycodone-5"], requester="pra-02", authored=days_ago(9), repeats=0, reasons=marker
        )
        chart.medication_request(DRUGS["paracetamol-1000"], requester="pra-02", authored=days_ago(9), repeats=0)
        # fmt: skip

    def buprenorphine(chart: _Chart) -> None:
        chart.no_known_allergy()
        dependence = chart.condition(CONDITIONS["dependance_opiaces"], onset=dt.date(2016, 6, 1), snomed=True)
        chart.medication_request(DRUGS["buprenorphine-8"], requester="pra-03", authored=days_ago(6), repeats=0,
                                 reasons=[_ref("Condition", dependence)])  # fmt: skip

    def penicillin(chart: _Chart) -> None:
        chart.allergy(_ALLERGENS[0], criticality="high")
        angina = chart.condition(CONDITIONS["angine"], onset=days_ago(70), snomed=False, resolved_on=days_ago(60))
        chart.medication_request(DRUGS["pristinamycine-500"], requester="pra-01", authored=days_ago(70),
                                 chronic=False, repeats=0, reasons=[_ref("Condition", angina)], status="completed",
                                 inline=True)  # fmt: skip

    def refuted(chart: _Chart) -> None:
        chart.allergy(_ALLERGENS[0], refuted=True)
        chart.no_known_allergy(_NO_KNOWN_DRUG_ALLERGY)

    def no_info_coded(chart: _Chart) -> None:
        chart.no_allergy_information_coded()

    def deceased(chart: _Chart) -> None:
        chart.no_known_allergy()
        failure = chart.condition(CONDITIONS["insuffisance_cardiaque"], onset=dt.date(2015, 1, 5), snomed=True)
        chart.medication_request(DRUGS["furosemide-40"], requester="pra-01", authored=days_ago(80), repeats=2,
                                 reasons=[_ref("Condition", failure)], status="stopped")  # fmt: skip

    def several_given(chart: _Chart) -> None:
        chart.no_known_allergy()
        chart.condition(CONDITIONS["arthrose"], onset=dt.date(2005, 2, 1), snomed=True)
        chart.medication_request(DRUGS["paracetamol-1000"], requester="pra-02", authored=days_ago(30), repeats=2)

    twin_birth = child_born(7, 83)
    cast: list[tuple[tuple[str, ...], _Person, Callable[[_Chart], None]]] = [
        (("homonym_a", "ins_qual"),
         person(1, "male", dt.date(1958, 3, 12), "MARTIN", ["Jean", "Pierre"], "QUAL", lyon), homonym_a),
        (("homonym_b", "vali"),
         person(2, "male", dt.date(1972, 11, 5), "MARTIN", ["Jean", "Louis"], "VALI", villeurbanne, "pra-02"),
         homonym_b),
        (("twin_a",), person(3, "female", twin_birth, "NGUYEN", ["Lina"], "QUAL", villeurbanne, _PEDIATRICIAN),
         twins),
        (("twin_b",), person(4, "female", twin_birth, "NGUYEN", ["Léna", "Thi"], "QUAL", villeurbanne,
                             _PEDIATRICIAN), twins),
        (("apostrophe", "possible_absence"), person(5, "female", dt.date(1981, 9, 23), "N'DIAYE",
                                                    ["Aminata", "Awa"], "QUAL", _COUNTRIES["west_africa"][0]),
         possible_absence),
        (("hyphen_accent", "unresolved_medication", "allergy_code_only", "allergy_unconfirmed"),
         person(6, "female", dt.date(1990, 1, 30), "LEFÈVRE-ÇELIK", ["Élise", "Zeynep"], "VALI", lyon, "pra-03"),
         export_troubles),
        (("particle", "status_unknown", "allergy_resolved"),
         person(7, "male", dt.date(1949, 6, 2), "de La Fontaine", ["Hugues", "Marie", "Amaury"], "QUAL",
                _Place("21231", "Dijon")), status_unknown),
        (("married",), person(8, "female", dt.date(1976, 4, 14), "ROUSSEAU", ["Camille", "Marie"], "QUAL", lyon,
                              used_name="BENALI"), nothing),
        (("child_with_weight", "efg"),
         person(9, "male", child_born(3, 61), "PEREIRA", ["Tiago", "Manuel"], "QUAL", villeurbanne, _PEDIATRICIAN),
         child_with_weight),
        (("child_without_weight", "no_allergy_info"),
         person(10, "female", child_born(2, 150), "BOUZID", ["Inès"], "VALI", villeurbanne, _PEDIATRICIAN),
         child_without_weight),
        (("ald",), person(11, "male", dt.date(1961, 2, 8), "ROBERT", ["Alain", "Georges"], "QUAL", lyon), ald),
        (("ald_category",), person(12, "male", dt.date(1955, 8, 19), "KAYA", ["Mehmet"], "VALI",
                                   _COUNTRIES["turkey"][0], "pra-02"), ald_category),
        (("mte",), person(13, "female", dt.date(1947, 10, 19), "LAURENT", ["Monique", "Jeanne"], "VALI",
                          _Place("42218", "Saint-Étienne"), "pra-03", used_name="PICARD"), mte),
        (("narcotic",), person(14, "male", dt.date(1952, 12, 3), "DA SILVA", ["Manuel", "José"], "QUAL",
                               _COUNTRIES["portugal"][0], "pra-02"), narcotic),
        (("buprenorphine",), person(15, "male", dt.date(1988, 7, 7), "PETIT", ["Kevin"], "VALI", villeurbanne,
                                    "pra-03"), buprenorphine),
        (("no_known_allergy",), person(16, "female", dt.date(1995, 3, 3), "BERNARD", ["Chloé"], "QUAL", lyon),
         nothing),
        (("allergy_penicillin",), person(17, "female", dt.date(1968, 5, 25), "GIRARD", ["Sylvie", "Anne"], "QUAL",
                                         villeurbanne), penicillin),
        (("allergy_refuted",), person(18, "male", dt.date(1979, 1, 9), "MOREL", ["Antoine"], "VALI", lyon, "pra-02"),
         refuted),
        (("no_allergy_info_coded",), person(19, "female", dt.date(1999, 12, 31), "YILMAZ", ["Elif"], "QUAL", lyon,
                                            "pra-03"), no_info_coded),
        (("ins_corsica",), person(20, "male", dt.date(1966, 2, 27), "SANTONI", ["Paul-Antoine"], "QUAL",
                                  _Place("2A004", "Ajaccio")), nothing),
        (("ins_corsica_b",), person(21, "female", dt.date(1983, 8, 15), "ORSINI", ["Marie-Dominique"], "QUAL",
                                    _Place("2B033", "Bastia"), "pra-02"), nothing),
        (("prov",), person(22, "male", dt.date(1993, 5, 1), "DIALLO", ["Mamadou"], "PROV", None, "pra-02"), nothing),
        (("recup",), person(23, "female", dt.date(1987, 10, 10), "COSTA", ["Ana", "Maria"], "RECUP",
                            _COUNTRIES["portugal"][0]), nothing),
        (("deceased",), person(24, "male", dt.date(1931, 1, 15), "LEROY", ["Marcel", "Henri"], "QUAL", lyon,
                               deceased_on=today - dt.timedelta(days=40)), deceased),
        (("several_given_names", "used_given_name"),
         person(25, "female", dt.date(1940, 7, 14), "DUPONT", ["Marie", "Thérèse", "Josèphe"], "QUAL",
                _Place("69123", "Lyon"), "pra-02", used_given_name="Thérèse", given_in_extension_only=True),
         several_given),
    ]  # fmt: skip
    return cast


# --- appointments --------------------------------------------------------------------------------------


def _weighted_table(pairs: Sequence[tuple[str, float]]) -> tuple[tuple[str, ...], list[float]]:
    return tuple(text for text, _ in pairs), _cumulative([weight for _, weight in pairs])


_APPOINTMENT_REASONS: Final = _weighted_table((
    ("Consultation", 50), ("Renouvellement d'ordonnance", 20), ("Suivi de maladie chronique", 10),
    ("Certificat médical", 4), ("Vaccination", 5), ("Résultats d'analyses", 6), ("Première consultation", 3),
    ("Bilan de santé", 2),  # a reason that fits any patient: the pools do not know sex or age
))  # fmt: skip
_PEDIATRIC_REASONS: Final = _weighted_table((
    ("Consultation", 50), ("Examen de santé obligatoire", 15), ("Vaccination", 20), ("Suivi de croissance", 15),
))  # fmt: skip


def _slots(day: dt.date) -> list[dt.time]:
    """Quarter-hour slots: mornings 08:30-12:00 and afternoons 14:00-18:45; Saturday mornings 08:00-13:00."""
    if day.weekday() == 5:
        starts = [(8, 0, 20)]
    else:
        starts = [(8, 30, 14), (14, 0, 19)]
    slots = []
    for hour, minute, count in starts:
        for slot in range(count):
            total = hour * 60 + minute + 15 * slot
            slots.append(dt.time(total // 60, total % 60))
    return slots


def _appointment(
    appointment_id: str, patient_id: str, practitioner_id: str, day: dt.date, time: dt.time, reason: str
) -> Resource:
    offset = _paris_offset(day)
    start = dt.datetime.combine(day, time)
    end = start + dt.timedelta(minutes=15)
    return {
        "resourceType": "Appointment",
        "id": appointment_id,
        "status": "booked",
        "description": reason,
        "start": f"{start.isoformat()}{offset}",
        "end": f"{end.isoformat()}{offset}",
        "minutesDuration": 15,
        "participant": [
            {"actor": _ref("Patient", patient_id), "required": "required", "status": "accepted"},
            {"actor": _ref("Practitioner", practitioner_id), "required": "required", "status": "accepted"},
        ],
    }


def _write_appointments(
    export: _Export,
    rng: _Rng,
    today: dt.date,
    pools: Pools,
    pinned: list[tuple[int, str, str, int]],
) -> None:
    """Fill 14 days (Sundays closed) with 20-30 appointments per practitioner-day.

    `pinned` holds (day offset, practitioner id, patient id, slot index) for the showcase cast.
    """
    serial = 0
    everyone = array("I")
    for pool in pools.values():
        everyone.extend(pool)
    for offset in range(14):
        day = today + dt.timedelta(days=offset)
        if day.weekday() == 6:
            continue
        slots = _slots(day)
        for practitioner in _PRACTITIONERS:
            reasons = _PEDIATRIC_REASONS if practitioner.id == _PEDIATRICIAN else _APPOINTMENT_REASONS
            pool = pools[practitioner.id] if len(pools[practitioner.id]) >= 40 else everyone
            if not pool:
                continue
            booked: dict[int, str] = {}
            for pin_day, pin_practitioner, patient_id, slot in pinned:
                if pin_day == offset and pin_practitioner == practitioner.id and slot < len(slots):
                    booked[slot] = patient_id
            wanted = rng.between(16, 20) if day.weekday() == 5 else rng.between(20, 30)
            free = [slot for slot in range(len(slots)) if slot not in booked]
            chosen = rng.sample(free, max(0, min(len(free), wanted - len(booked))))
            seen = set(booked.values())
            for slot in chosen:
                for _ in range(5):
                    patient_id = f"pat-{pool[rng.below(len(pool))]:06d}"
                    if patient_id not in seen:
                        break
                seen.add(patient_id)
                booked[slot] = patient_id
            for slot in sorted(booked):
                serial += 1
                reason = rng.weighted(reasons[0], reasons[1])
                export.write(_appointment(f"apt-{serial:06d}", booked[slot], practitioner.id, day, slots[slot], reason))


# --- entry point ---------------------------------------------------------------------------------------

SHOWCASE_SIZE: Final = 25
Pools = dict[str, "array[int]"]


def _empty_pools() -> Pools:
    return {practitioner.id: array("I") for practitioner in _PRACTITIONERS}


def _write_random_patients(
    export: _Export, first: int, last: int, seed: int, today: dt.date, nirs: set[str]
) -> Pools:
    """Write random patients first..last (inclusive) and return who may get an appointment, per practitioner.

    `nirs` holds the first 13 digits of the NIRs already given in the practice; each new person claims
    a free one (a drawn serial number already taken moves to the next free one, deterministically).
    """
    pools = _empty_pools()
    for index in range(first, last + 1):
        rng = _Rng((seed << 32) + index)  # an int seeds faster than a str
        person = _random_person(rng, index, today)
        person.claim_nir(nirs)
        export.write(_patient(person))
        # A deceased patient's record stops on the day they died.
        _random_chart(_Chart(export, person, person.deceased_on or today), rng)
        if person.deceased_on is None and person.active:
            pools[person.gp].append(index)
    return pools


def write_practice(
    out_dir: Path,
    *,
    patients: int = 2000,
    seed: int = 0,
    today: dt.date | None = None,
) -> SynthSummary:
    """Write a synthetic practice as FHIR R4 Bulk Data NDJSON files into `out_dir`.

    The first patients are the fixed showcase cast; the rest are random, drawn from (seed, index).
    Byte-identical for the same (patients, seed, today).
    """
    if patients < SHOWCASE_SIZE:
        raise ValueError(f"at least {SHOWCASE_SIZE} patients are needed for the showcase cast, got {patients}")
    today = today or dt.date.today()
    out_dir = Path(out_dir)
    showcase: dict[str, str] = {}

    with _Export(out_dir) as export:
        export.write(_organization())
        for practitioner in _PRACTITIONERS:
            export.write(_practitioner(practitioner))
        for drug in _DRUG_LIST:
            export.write(_medication(drug))

        nirs: set[str] = set()  # no two people in the practice share a NIR
        for roles, person, fill in _showcase_people(today):
            person.claim_nir(nirs)
            for role in roles:
                showcase[role] = person.id
            export.write(_patient(person))
            fill(_Chart(export, person, today))

        pools = _write_random_patients(export, SHOWCASE_SIZE + 1, patients, seed, today, nirs)

        # The showcase on the schedule: both Jean MARTIN the same morning, the twins back to back.
        first_open_day = 1 if today.weekday() == 6 else 0
        pinned = [
            (first_open_day, "pra-01", showcase["homonym_a"], 2),
            (first_open_day, "pra-01", showcase["homonym_b"], 5),
            (first_open_day, _PEDIATRICIAN, showcase["twin_a"], 0),
            (first_open_day, _PEDIATRICIAN, showcase["twin_b"], 1),
            (first_open_day, _PEDIATRICIAN, showcase["child_with_weight"], 3),
            (first_open_day, "pra-02", showcase["narcotic"], 4),
            (first_open_day, "pra-01", showcase["ald"], 8),
            (first_open_day + 1, "pra-03", showcase["mte"], 6),
        ]
        _write_appointments(export, _Rng(f"{seed}/appointments"), today, pools, pinned)
        counts = dict(export.counts)

    return SynthSummary(
        out_dir=out_dir,
        counts=counts,
        showcase=showcase,
        demo_practitioner_rpps=_PRACTITIONERS[0].rpps,
    )

#!/usr/bin/env python3
"""Issue a set of ordonnances as a pharmacist would see them, and render every page to PNG for review.

Synthetic patients only. An appliance home is made in a scratch folder (a reception login, the
prescriber "dr.valide" whose RPPS is a practitioner of the practice, a trusted publisher), a snapshot
carrying the BDPM test subset (tests/data/bdpm) is published into it, and each case runs the real
`continuity prescribe` command (unlock → session → rules → render → journal) in-process. Each PDF
page is rendered with `pdftoppm -png`; `index.txt` lists every case with its exit code, its messages
and the text of its pages, so the PNGs can be checked against docs/prescribing.md and DOMAIN.md.

    .venv/bin/python scripts/render-review.py [OUT_DIR]    # default tests/artifacts/render-review (git-ignored)

It uses the cheap test key derivation (CONTINUITY_TEST_WEAK_KDF=1): the passphrases are throwaway.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["CONTINUITY_TEST_WEAK_KDF"] = "1"

from click.testing import CliRunner  # noqa: E402

from continuity import envelope, flags, keys, snapshot_build, snapshotdb  # noqa: E402
from continuity.cli import cli  # noqa: E402
from continuity.drugs import bdpm  # noqa: E402
from continuity.model import (  # noqa: E402
    Address,
    Allergy,
    AllergyStatus,
    Condition,
    IdentityStatus,
    Measurement,
    NonSubstitutionReason,
    Patient,
    Practice,
    Practitioner,
    Record,
    Sex,
    Treatment,
)
from continuity.store import Store  # noqa: E402

BDPM = ROOT / "tests" / "data" / "bdpm"
PRACTICE = "cabinet-review"
RECEPTION, RECEPTION_PASS = "accueil", "cheval correct agrafe"
PRESCRIBER, PRESCRIBER_PASS = "dr.valide", "ordonnance bleue quinze mardi"
PRESCRIBER_RPPS = "10001234565"
GP_RPPS = "10001234567"
TODAY = dt.date.today()


def ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def born(years: int, days: int = 40) -> dt.date:
    return TODAY.replace(year=TODAY.year - years) - dt.timedelta(days=days)


def practitioners() -> list[Practitioner]:
    address = Address(("12 rue des Lilas", "Bâtiment B"), "69003", "Lyon", "France")
    return [
        Practitioner("prac-gp", "Garnier", ("Hélène",), GP_RPPS, "Médecin généraliste", "Médecine générale",
                     address, "04 78 00 00 01", "h.garnier@cabinet-lilas.example"),
        Practitioner("prac-rx", "Valide", ("Claire", "Anne"), PRESCRIBER_RPPS, "Médecin généraliste",
                     "Médecine générale", address, "04 78 00 00 02", "c.valide@cabinet-lilas.example"),
    ]


def patient(pid: str, name: str, given: str, birth: dt.date, sex: Sex = Sex.FEMALE, **more: object) -> Patient:
    values: dict[str, object] = {
        "id": pid, "birth_name": name, "birth_given_names": (given,), "sex": sex, "birth_date": birth,
        "identity_status": IdentityStatus.VALI, "general_practitioner_id": "prac-gp",
        "allergy_status": AllergyStatus.NONE_KNOWN,
    }
    values.update(more)
    return Patient(**values)  # type: ignore[arg-type]


def treatment(tid: str, pid: str, dci: str, strength: str = "", form: str = "", posology: str = "",
              **more: object) -> Treatment:
    values: dict[str, object] = {"chronic": True, "last_prescriber_id": "prac-gp", "last_prescribed_on": ago(40)}
    values.update(more)
    return Treatment(tid, pid, dci, strength, form, posology=posology, **values)  # type: ignore[arg-type]


HOSTILE_RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: reverses what follows on screen and on paper


def records() -> list[Record]:
    out: list[Record] = [Practice(PRACTICE, "Cabinet des Lilas"), *practitioners()]
    # Standard: a stable adult, lévothyroxine non substituable (MTE), metformine.
    out += [
        patient("p-std", "BLANC", "Sophie", dt.date(1975, 4, 9)),
        treatment("std-levo", "p-std", "lévothyroxine sodique", "75 microgrammes", "comprimé sécable",
                  "1 comprimé le matin à jeun", non_substitution=NonSubstitutionReason.MTE),
        treatment("std-met", "p-std", "metformine", "1000 mg", "comprimé pelliculé", "1 comprimé matin et soir"),
    ]
    # Bizone: diabetes in ALD, penicillin allergy, amoxicilline-containing brand still listed.
    out += [
        patient("p-ald", "ROUSSEAU", "Jacques", dt.date(1951, 3, 12), Sex.MALE, allergy_status=AllergyStatus.RECORDED),
        Condition("c-ald", "p-ald", "Diabète de type 2", code="E11", is_ald=True),
        Allergy("a-ald", "p-ald", "Pénicillines", criticality="high", reaction="Urticaire", category="medication"),
        treatment("ald-met", "p-ald", "metformine", "1000 mg", "comprimé pelliculé", "1 comprimé matin et soir",
                  ald_related=True),
        treatment("ald-levo", "p-ald", "LEVOTHYROX 100 microgrammes, comprimé sécable", posology="1 comprimé le matin",
                  brand="LEVOTHYROX", non_substitution=NonSubstitutionReason.MTE),
        treatment("ald-amox", "p-ald", "CLAMOXYL 1 g, comprimé dispersible", posology="1 comprimé matin et soir",
                  brand="CLAMOXYL"),
    ]
    # Child (6 years) with a weight from 10 days ago; a 3-day antibiotic course started 2 days ago.
    out += [
        patient("p-kid", "GAËL", "Noé", born(6), Sex.MALE),
        Measurement("p-kid", "weight", 21.5, "kg", ago(10)),
        Measurement("p-kid", "height", 117, "cm", ago(10)),
        treatment("kid-amox", "p-kid", "amoxicilline", "500 mg", "gélule",
                  "1 gélule matin, midi et soir pendant 3 jours", chronic=False, course="acute", start_date=ago(2)),
    ]
    # Child (3 years) without any weight.
    out += [patient("p-kid2", "BERNARD", "Lina", born(3))]
    # Many lines: an ALD patient with lines in both zones, to spill over two pages.
    out += [
        patient("p-many", "DE LA FONTAINE", "Jeanne", dt.date(1944, 12, 24), allergy_status=AllergyStatus.RECORDED),
        Condition("c-many", "p-many", "Insuffisance cardiaque", is_ald=True),
    ]
    # Brands, a narcotic by brand, a hospital-only product, a free-text line.
    out += [
        patient("p-brand", "MARTINEZ", "Paul", dt.date(1960, 1, 5), Sex.MALE),
        treatment("br-doli", "p-brand", "DOLIPRANE 1000 mg, comprimé",
                  posology="1 comprimé si douleur, 3 par jour au plus", brand="DOLIPRANE"),
        treatment("br-oxy", "p-brand", "OXYCONTIN LP 20 mg", posology="1 comprimé matin et soir", brand="OXYCONTIN"),
        treatment("br-duro", "p-brand", "DUROGESIC 25 microgrammes/heure", posology="1 patch tous les 3 jours",
                  brand="DUROGESIC"),
        treatment("br-levo", "p-brand", "lévothyroxine sodique 75 microgrammes, comprimé",
                  posology="1 comprimé le matin"),
        treatment("br-xanax", "p-brand", "XANAX 0,25 mg, comprimé sécable", posology="1 comprimé le soir si besoin",
                  brand="XANAX"),
        treatment("br-hosp", "p-brand", "ALPRAZOLAM VIATRIS 1 mg, comprimé sécable", posology="1 le soir"),
    ]
    # Acute course in an adult: 10 days started 4 days ago.
    out += [
        patient("p-acute", "N'DIAYE", "Moussa", dt.date(1990, 2, 14), Sex.MALE),
        treatment("ac-amox", "p-acute", "amoxicilline", "1 g", "comprimé dispersible",
                  "1 comprimé matin et soir pendant 10 jours", chronic=False, start_date=ago(4)),
        treatment("ac-levo", "p-acute", "lévothyroxine sodique", "100 microgrammes", "comprimé sécable",
                  "1 comprimé le matin"),
    ]
    # Hostile text in the record (a publisher that did not clean it): bidi override, escape, zero-width.
    out += [
        patient("p-hostile", f"LEROY{HOSTILE_RLO}ENIAM", "Zoé\u200b", dt.date(1982, 8, 1),
                used_name="MOREAU\x1b[31m"),
        treatment("ho-met", "p-hostile", "metformine", "1000 mg", "comprimé pelliculé",
                  f"1 comprimé {HOSTILE_RLO}2 fois par jour\x07", ),
    ]
    # Homonyms (same names, other birth dates) and a doubtful identity: identity dangers.
    out += [
        patient("p-hom-1", "PETIT", "Marie", dt.date(1951, 3, 12)),
        patient("p-hom-2", "PETIT", "Marie", dt.date(1987, 7, 1)),
        treatment("hom-met", "p-hom-1", "metformine", "1000 mg", "comprimé pelliculé", "1 comprimé matin et soir"),
        patient("p-doubt", "LAMBERT", "Hugo", dt.date(1969, 10, 2), Sex.MALE, flags=(flags.IDENTITY_DOUBT,)),
        treatment("doubt-levo", "p-doubt", "lévothyroxine sodique", "100 microgrammes", "comprimé sécable",
                  "1 comprimé le matin"),
    ]
    return out


@dataclass
class Case:
    name: str
    what: str  # what to look at
    patient: str
    args: list[str] = field(default_factory=list)
    user: str = PRESCRIBER
    expect: int = 0  # the expected exit code


LONG_LINES = [
    "paracétamol|1000 mg|comprimé|1 comprimé toutes les 6 heures si douleur, 4 par jour au plus|1 mois",
    "metformine|1000 mg|comprimé pelliculé|1 comprimé matin et soir au milieu des repas|3 mois|ald",
    "lévothyroxine sodique|100 microgrammes|comprimé sécable|1 comprimé le matin à jeun|3 mois",
    "acétylsalicylate de lysine|75 mg|poudre pour solution buvable en sachet-dose|1 sachet le midi|3 mois|ald",
    "lévothyroxine sodique|75 microgrammes|comprimé sécable|1 comprimé le matin à jeun|3 mois|ald",
    "tiotropium|18 microgrammes|poudre pour inhalation en gélule|1 inhalation par jour avec le dispositif|3 mois",
    "clotrimazole|500 mg|comprimé vaginal|1 comprimé au coucher, une seule fois|1 jour",
    "aciclovir|30 mg/g|pommade ophtalmique|1 application 5 fois par jour dans l'œil atteint|7 jours",
    "alprazolam|0,25 mg|comprimé sécable|1 comprimé le soir si anxiété|1 mois",
    "paracétamol|500 mg|comprimé effervescent sécable|1 comprimé si fièvre|7 jours",
    "amoxicilline|1 g|comprimé dispersible|1 comprimé matin et soir|6 jours",
    "amoxicilline|500 mg|gélule|2 gélules matin et soir|7 jours",
    "metformine|500 mg|comprimé pelliculé|1 comprimé le midi|3 mois|ald",
    "acétylsalicylate de lysine|160 mg|poudre pour solution buvable en sachet-dose|1 sachet si douleur|7 jours",
    "tiotropium|18 microgrammes|poudre pour inhalation en gélule|1 inhalation le matin|1 mois|ald",
    "paracétamol|1000 mg|comprimé|1 comprimé le soir|1 mois|ald",
]


def cases() -> list[Case]:
    long = [arg for spec in LONG_LINES for arg in ("--line", spec)]
    return [
        Case("01-standard", "standard: 2 renewals, NS (MTE), signed by the logged-in prescriber, not the GP",
             "p-std", ["--renew", "all"]),
        Case("02-bizone-allergy-refused", "bizone: a CLAMOXYL renewal on a penicillin allergy needs --confirm allergy",
             "p-ald", ["--renew", "all", "--line", "acétylsalicylate de lysine|75 mg|poudre pour solution buvable en "
                       "sachet-dose|1 sachet le midi|3 mois|ald"], expect=13),
        Case("03-bizone", "bizone with a new ALD line in the top zone; CLAMOXYL confirmed as an allergy",
             "p-ald", ["--renew", "all", "--line", "acétylsalicylate de lysine|75 mg|poudre pour solution buvable en "
                       "sachet-dose|1 sachet le midi|3 mois|ald", "--confirm", "allergy"]),
        Case("04-child-weight", "child with weight and height (dated); acute course capped to what remains (1 day)",
             "p-kid", ["--renew", "kid-amox", "--line", "paracétamol|500 mg|comprimé|15 mg/kg toutes les 6 heures, "
                       "soit 1/2 comprimé si fièvre|5 jours"]),
        Case("05-child-no-weight-refused", "3-year-old without weight: child-weight danger stops the print",
             "p-kid2", ["--line", "paracétamol|500 mg|comprimé|1/2 comprimé si fièvre|3 jours"], expect=13),
        Case("06-child-no-weight-confirmed", "3-year-old, child-weight acknowledged: no weight line printed",
             "p-kid2", ["--line", "paracétamol|500 mg|comprimé|1/2 comprimé si fièvre|3 jours",
                        "--confirm", "child-weight"]),
        Case("07-two-pages-bizone", "16 lines, bizone over two pages: headings repeat, prescriber+RPPS on page 2",
             "p-many", [*long]),
        Case("08-two-pages-standard", "standard over two pages (only non-ALD lines)",
             "p-brand", [*(a for spec in LONG_LINES if not spec.endswith("|ald") for a in ("--line", spec)),
                         "--line", "paracétamol|500 mg|gélule|1 gélule le soir|7 jours",
                         "--line", "paracétamol|1000 mg|comprimé effervescent sécable|1 comprimé le soir|7 jours"]),
        Case("09-brands-renew-all", "brands: DOLIPRANE printed as paracétamol (DOLIPRANE); OXYCONTIN, DUROGESIC, "
             "hospital-only left out by name; free-text lévothyroxine → voie orale", "p-brand", ["--renew", "all"]),
        Case("10-oxycontin-refused", "OXYCONTIN asked explicitly: refused (secure paper)", "p-brand",
             ["--renew", "br-oxy"], expect=12),
        Case("11-skenan-new-line-refused", "a new line SKENAN LP 30 mg: refused", "p-brand",
             ["--line", "SKENAN LP 30 mg|30 mg|gélule|1 gélule matin et soir|7 jours"], expect=12),
        Case("12-routes", "routes: vaginal, inhalée, ophtalmique from the form; plain comprimé → orale",
             "p-std", ["--line", "clotrimazole|500 mg|comprimé vaginal|1 comprimé au coucher, une seule fois|1 jour",
                       "--line", "tiotropium|18 microgrammes|poudre pour inhalation en gélule|1 inhalation par jour"
                       "|1 mois",
                       "--line", "aciclovir|30 mg/g|pommade ophtalmique|5 applications par jour|7 jours",
                       "--line", "paracétamol|1000 mg|comprimé|1 comprimé si douleur|5 jours"]),
        Case("13-acute-adult", "acute course (10 days from 4 days ago) renewed for what remains: 6 jours",
             "p-acute", ["--renew", "ac-amox", "--renew", "ac-levo"]),
        Case("14-acute-too-long-refused", "acute course asked for 1 month: refused", "p-acute",
             ["--renew", "ac-amox", "--duration", "1 mois"], expect=12),
        Case("15-missing-strength-refused", "a line without strength: remark, bare --confirm needed", "p-std",
             ["--line", "paracétamol||comprimé|1 comprimé si douleur|5 jours"], expect=13),
        Case("16-missing-strength", "a line without strength, confirmed: prints without a strength", "p-std",
             ["--line", "paracétamol||comprimé|1 comprimé si douleur|5 jours", "--confirm"]),
        Case("17-hostile", "hostile text: bidi override, escape and zero-width in name and posology",
             "p-hostile", ["--renew", "all", "--line", f"paracétamol|500 mg|comprimé|{HOSTILE_RLO}1 comprimé\x1b[2J "
                           "si douleur|5 jours"]),
        Case("18-chosen-gp", "a prescriber choosing the patient's GP as signer (journaled)", "p-std",
             ["--renew", "all", "--prescriber", GP_RPPS]),
        Case("19-duplicate", "standard + duplicate page", "p-acute", ["--renew", "ac-levo", "--duplicate"]),
        Case("20-drill", "drill: EXERCICE watermark on every page", "p-std", ["--renew", "all", "--drill"]),
        Case("21-reception-refused", "reception login: refused", "p-std", ["--renew", "all"], user=RECEPTION,
             expect=40),
        Case("22-duration-limit", "XANAX renewal of 6 mois: refused (12-week limit)", "p-brand",
             ["--renew", "br-xanax", "--duration", "6 mois"], expect=12),
        Case("23-homonym-refused", "a homonym in the practice (same names): the identity danger stops the print",
             "p-hom-1", ["--renew", "all"], expect=13),
        Case("24-homonym-confirmed", "homonym acknowledged (--confirm identity): birth date prominent on the page",
             "p-hom-1", ["--renew", "all", "--confirm", "identity"]),
        Case("25-doubtful-identity-confirmed", "identity the export doubts (e.g. reliability code DOUB), acknowledged",
             "p-doubt", ["--renew", "all", "--confirm", "identity"]),
    ]


def make_home(work: Path) -> tuple[Path, dict[str, Path]]:
    home = work / "home"
    Store(home).create()
    secrets = keys.init_appliance(home, RECEPTION, RECEPTION_PASS)
    keys.add_staff(home, secrets, PRESCRIBER, PRESCRIBER_PASS, role=keys.Role.PRESCRIBER, rpps=PRESCRIBER_RPPS)
    keys.generate_publisher_key(work / "publisher")
    keys.trust_publisher(home, work / "publisher" / "publisher.pub")
    built = snapshot_build.build_from_records(records(), work / "practice.db", practice_id=PRACTICE,
                                              drugs=bdpm.read(BDPM))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    created = now - dt.timedelta(hours=3)
    snap = work / "review.snap"
    envelope.seal(work / "practice.db", snap, signing_keys=[keys.load_publisher_signing_key(work / "publisher")],
                  recipients=[secrets.box_key.public_key], practice_id=PRACTICE, sequence=1, created_at=created,
                  expires_at=created + dt.timedelta(hours=48), schema_version=snapshotdb.SCHEMA_VERSION,
                  counts=built.counts)
    with snap.open("rb") as handle:
        Store(home).ingest(handle, now=now)
    secret_files = {}
    for user, passphrase in ((RECEPTION, RECEPTION_PASS), (PRESCRIBER, PRESCRIBER_PASS)):
        secret_files[user] = work / f"{user}.pass"
        secret_files[user].write_text(passphrase + "\n")
    return home, secret_files


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "artifacts" / "render-review"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    home, secrets = make_home(out / "work")
    runner = CliRunner()
    index: list[str] = []
    failures = 0
    for case in cases():
        pdf = out / f"{case.name}.pdf"
        args = ["prescribe", case.patient, "--home", str(home), "--user", case.user,
                "--passphrase-file", str(secrets[case.user]), "--out", str(pdf), *case.args]
        result = runner.invoke(cli, args)
        ok = result.exit_code == case.expect
        failures += not ok
        index += [f"=== {case.name} — {case.what}", f"exit {result.exit_code} (expected {case.expect})"
                  + ("" if ok else "  <-- UNEXPECTED"), result.stdout.rstrip(), result.stderr.rstrip()]
        if pdf.exists():
            subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(out / case.name)], check=True)
            text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                                  text=True).stdout
            index += [f"pages: {text.count(chr(12))}", text]
        print(f"{case.name}: exit {result.exit_code}{'' if ok else ' UNEXPECTED'}")
    (out / "index.txt").write_text("\n".join(index) + "\n", encoding="utf-8")
    pngs = sorted(p.name for p in out.glob("*.png"))
    print(f"{len(list(out.glob('*.pdf')))} ordonnances, {len(pngs)} pages in {out}; details in index.txt")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

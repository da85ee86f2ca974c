"""`continuity prescribe` and `continuity summary`: on a development database, and through the unlocked store.

Development databases (`--db`) need an initialised home (the journal seals to its key): nothing is
printed unrecorded. The signer is the logged-in prescriber; on a `--db` database, which has no keyslot
to carry a role, `--prescriber` names the practitioner and the command says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from continuity import journal as journal_module
from continuity import snapshot_build
from continuity.cli import cli
from continuity.drugs import bdpm
from continuity.model import Practice, Record, Treatment
from tests.prescribing_helpers import BDPM_FIXTURE, PRESCRIBER, PRESCRIBER_PASSPHRASE, PRESCRIBER_RPPS, with_prescriber
from tests.unit.journal_helpers import make_appliance
from tests.unit.pdf_fixtures import ald_summary, child, flat, pdf_text, practitioner, weight


def _records() -> list[Record]:
    adult = ald_summary()
    kid = child()
    return [
        Practice(id="cabinet-pentes", name="Cabinet médical des Pentes"),
        practitioner(),
        adult.patient,
        *adult.allergies,
        *adult.conditions,
        *adult.treatments,
        *adult.measurements,
        kid,
        weight(22.5, dt.date.today() - dt.timedelta(days=10), kid.id),
    ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return snapshot_build.build_from_records(_records(), tmp_path / "s.db").path


@pytest.fixture
def ref_db_path(tmp_path: Path) -> Path:
    """The same practice, plus a narcotic named by its brand, published with the BDPM subset."""
    skenan = Treatment("t-sk", "pat-1", "SKENAN LP 30 mg", posology="1 gélule matin et soir", chronic=True)
    return snapshot_build.build_from_records([*_records(), skenan], tmp_path / "r.db",
                                             drugs=bdpm.read(BDPM_FIXTURE)).path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return make_appliance(tmp_path / "home").home


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _prescribe(db: Path, home: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run("prescribe", "pat-1", "--db", str(db), "--home", str(home), "--user", "dr.lefevre",
               "--prescriber", "10101234567", "--out", str(out), *extra)  # fmt: skip


def test_renew_all_writes_a_bizone_ordonnance(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "ordonnance.pdf"
    code, stdout, stderr = _prescribe(db_path, home, out, "--renew", "all")
    assert code == 0, stderr
    assert f"enregistrée dans : {out}" in stdout and "bizone" in stdout and "3 lignes" in stdout
    assert "base de développement (--db)" in stderr
    assert "liste intégrée" in stderr  # no reference in this snapshot: the output says what checked narcotics
    text = flat(" ".join(pdf_text(out.read_bytes(), tmp_path)))
    assert "AFFECTION EXONÉRANTE" in text and "MALADIES INTERCURRENTES" in text
    assert "metformine 1000 mg" in text and "Durée : 1 mois" in text


def test_with_the_reference_renew_all_leaves_the_narcotic_brand_out_naming_it(
    ref_db_path: Path, home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.pdf"
    code, stdout, stderr = _prescribe(ref_db_path, home, out, "--renew", "all", "--route", "t-ins=sous-cutanée")
    assert code == 0, stderr
    assert "Non repris : « SKENAN LP 30 mg » — à rédiger sur ordonnance sécurisée" in stderr
    text = flat(" ".join(pdf_text(out.read_bytes(), tmp_path)))
    assert "SKENAN" not in text and "morphine" not in text
    code, _, stderr = _prescribe(ref_db_path, home, tmp_path / "x.pdf", "--renew", "t-sk")
    assert code == 12 and "ORDONNANCE SÉCURISÉE" in stderr


def test_renew_one_treatment_with_a_duration_and_a_new_line(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, _, stderr = _prescribe(
        db_path, home, out, "--renew", "t-levo", "--duration", "3 mois",
        "--line", "paracétamol|500 mg|comprimé|1 comprimé si douleur, 3 par jour au plus|5j",
    )  # fmt: skip
    assert code == 0, stderr
    text = flat(pdf_text(out.read_bytes(), tmp_path)[0])
    assert "lévothyroxine sodique 75 µg, comprimé, voie orale" in text and "Durée : 3 mois" in text
    assert "paracétamol 500 mg, comprimé, voie orale" in text and "Durée : 5 jours" in text
    assert "metformine" not in text


def test_a_new_ald_line_goes_to_the_top_zone(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, stdout, stderr = _prescribe(db_path, home, out, "--line",
                                      "gliclazide|30 mg|comprimé à libération modifiée|1 comprimé le matin|1 mois|ald")
    assert code == 0, stderr
    assert "bizone" in stdout
    text = flat(pdf_text(out.read_bytes(), tmp_path)[0])
    assert text.index("AFFECTION EXONÉRANTE") < text.index("gliclazide") < text.index("MALADIES INTERCURRENTES")


def test_each_danger_is_acknowledged_by_its_code(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    line = "amoxicilline|1 g|comprimé|1 comprimé matin et soir|7j"
    code, _, stderr = _prescribe(db_path, home, out, "--line", line)
    assert code == 13
    assert "[allergy]" in stderr and "Pénicillines" in stderr and "--confirm allergy" in stderr
    assert not out.exists() and list(tmp_path.glob("o*.pdf")) == []
    code, _, stderr = _prescribe(db_path, home, out, "--line", line, "--confirm")  # a bare --confirm: remarks only
    assert code == 13 and not out.exists()
    code, _, stderr = _prescribe(db_path, home, out, "--line", line, "--confirm", "allergy")
    assert code == 0, stderr
    assert "Confirmé [allergy] : ALLERGIE" in stderr and out.exists()


def test_an_unknown_code_is_refused(db_path: Path, home: Path, tmp_path: Path) -> None:
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf", "--renew", "all", "--confirm", "tout")
    assert code == 2 and "code inconnu : tout" in stderr and "allergy" in stderr


def test_refusal_cannot_be_confirmed_away(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, _, stderr = _prescribe(db_path, home, out, "--line", "morphine|10 mg|gélule|1 matin et soir|7j",
                                 "--confirm", "--confirm", "allergy")
    assert code == 12
    assert "ORDONNANCE SÉCURISÉE" in stderr and "morphine" in stderr
    assert not out.exists()


def test_duration_over_twelve_months_is_refused(db_path: Path, home: Path, tmp_path: Path) -> None:
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf", "--renew", "all", "--duration", "13 mois")
    assert code == 12 and "12 mois" in stderr


def test_unknown_prescriber_and_treatment(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.pdf")
    code, _, stderr = run("prescribe", "pat-1", "--db", str(db_path), "--home", str(home), "--user", "u",
                          "--prescriber", "99999999999", "--renew", "all", "--out", out)  # fmt: skip
    assert code == 5 and "99999999999" in stderr
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf", "--renew", "t-nope")
    assert code == 5 and "t-nope" in stderr


def test_without_a_prescriber_login_nothing_is_issued(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, _, stderr = run("prescribe", "pat-1", "--db", str(db_path), "--home", str(home), "--user", "accueil",
                          "--renew", "all", "--out", str(out))  # fmt: skip
    assert code == 40 and "Seul un médecin prescripteur connecté" in stderr and not out.exists()


def test_an_uninitialised_home_prints_nothing_unrecorded(db_path: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    code, _, stderr = _prescribe(db_path, bare, tmp_path / "o.pdf", "--renew", "all")
    assert code == 6 and "sans journal, aucune ordonnance" in stderr and not (tmp_path / "o.pdf").exists()


def test_bad_line_and_nothing_to_prescribe_are_usage_errors(db_path: Path, home: Path, tmp_path: Path) -> None:
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf", "--line", "amoxicilline seule")
    assert code == 2 and "ligne illisible" in stderr
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf")
    assert code == 2 and "rien à prescrire" in stderr
    code, _, stderr = _prescribe(db_path, home, tmp_path / "o.pdf", "--renew", "all", "--route", "orale")
    assert code == 2 and "TRAITEMENT=VOIE" in stderr


def test_print_failure_keeps_the_pdf_and_says_where(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, _, stderr = _prescribe(db_path, home, out, "--renew", "all", "--print", "--printer", "no-such-queue-x")
    assert code == 14
    assert "Impression impossible" in stderr and str(out) in flat(stderr)
    assert out.exists() and len(list(tmp_path.glob("o*.pdf"))) == 1


def test_drill_ordonnance_is_journaled_as_a_drill(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    code, _, stderr = _prescribe(db_path, home, out, "--renew", "all", "--drill")
    assert code == 0, stderr
    entries = [e for e in journal_module.Journal(home).entries() if e.action == "drill_prescription"]
    assert len(entries) == 1 and entries[0].user == "dr.lefevre" and entries[0].patient_id == "pat-1"
    assert entries[0].details["pdf_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert "EXERCICE — NE PAS DÉLIVRER" in flat(pdf_text(out.read_bytes(), tmp_path)[0])


def test_summary_command(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "resume.pdf"
    code, stdout, stderr = run("summary", "pat-1", "--db", str(db_path), "--home", str(home), "--out", str(out))
    assert code == 0, stderr
    assert str(out) in stdout
    text = flat(pdf_text(out.read_bytes(), tmp_path)[0])
    assert "Cabinet médical des Pentes" in text and "Pénicillines" in text and "Diabète de type 2" in text


def test_written_pdf_is_private(db_path: Path, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.pdf"
    assert _prescribe(db_path, home, out, "--renew", "all")[0] == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert subprocess.run(["test", "-s", str(out)]).returncode == 0


def _unlocked_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    from tests.transport_helpers import make_rig, use_weak_kdf

    use_weak_kdf(monkeypatch)
    rig = make_rig(tmp_path)
    with_prescriber(rig)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rig.ingest(rig.make(1, created_at=now - dt.timedelta(hours=2)), now=now)
    secret = tmp_path / "pass"
    secret.write_text(PRESCRIBER_PASSPHRASE + "\n")
    return rig.home, secret


def test_the_logged_in_prescriber_signs_through_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, secret = _unlocked_rig(tmp_path, monkeypatch)
    out = tmp_path / "rousseau.pdf"
    code, stdout, stderr = run(
        "prescribe", "pat-qual", "--home", str(home), "--user", PRESCRIBER, "--passphrase-file", str(secret),
        "--renew", "all", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "bizone" in stdout
    text = flat(pdf_text(out.read_bytes(), tmp_path)[0])
    # Signed by the logged-in prescriber, not by the patient's GP (Dr Garnier).
    assert "Dr Claire Valide" in text and f"N° RPPS : {PRESCRIBER_RPPS}" in text and "Garnier" not in text
    assert "ROUSSEAU Jacques" in text and "Non substituable (MTE)" in text
    entries = [e for e in journal_module.Journal(home).entries() if e.action == "print_prescription"]
    assert len(entries) == 1 and entries[0].user == PRESCRIBER
    assert entries[0].details["prescriber_id"] == "prac-rx" and entries[0].details["signed_for_other"] is False


def test_a_prescriber_may_choose_another_practitioner_and_it_is_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, secret = _unlocked_rig(tmp_path, monkeypatch)
    out = tmp_path / "o.pdf"
    code, _, stderr = run(
        "prescribe", "pat-qual", "--home", str(home), "--user", PRESCRIBER, "--passphrase-file", str(secret),
        "--prescriber", "10001234567", "--renew", "all", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "Signataire choisi : Dr Hélène Garnier (journalisé)" in stderr
    (entry,) = [e for e in journal_module.Journal(home).entries() if e.action == "print_prescription"]
    assert entry.user == PRESCRIBER and entry.details["prescriber_id"] == "prac-1"
    assert entry.details["signed_for_other"] is True


def test_reception_can_never_issue_through_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.transport_helpers import PASSPHRASE, USER

    home, _ = _unlocked_rig(tmp_path, monkeypatch)
    secret = tmp_path / "reception"
    secret.write_text(PASSPHRASE + "\n")
    out = tmp_path / "o.pdf"
    code, _, stderr = run(
        "prescribe", "pat-qual", "--home", str(home), "--user", USER, "--passphrase-file", str(secret),
        "--prescriber", "10001234567", "--renew", "all", "--out", str(out),
    )  # fmt: skip
    assert code == 40 and "Seul un médecin prescripteur connecté" in stderr and not out.exists()
    assert not [e for e in journal_module.Journal(home).entries() if e.action == "print_prescription"]


def test_wrong_passphrase_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, secret = _unlocked_rig(tmp_path, monkeypatch)
    secret.write_text("pas la bonne\n")
    out = tmp_path / "o.pdf"
    code, _, _ = run(
        "prescribe", "pat-qual", "--home", str(home), "--user", PRESCRIBER, "--passphrase-file", str(secret),
        "--renew", "all", "--out", str(out),
    )  # fmt: skip
    assert code == 7
    assert not out.exists()


def test_preview_shows_the_text_and_the_warnings_with_codes_and_writes_nothing(
    db_path: Path, home: Path, tmp_path: Path
) -> None:
    before = sorted(p.name for p in home.iterdir())
    code, stdout, stderr = run(
        "prescribe", "pat-1", "--db", str(db_path), "--home", str(home), "--user", "u", "--prescriber", "10101234567",
        "--renew", "all", "--line", "amoxicilline|1 g|comprimé|1 matin et soir|7j", "--preview",
    )  # fmt: skip
    assert code == 0, stderr
    assert "AFFECTION EXONÉRANTE" in stdout and "4. amoxicilline 1 g, comprimé, voie orale" in stdout
    assert "À confirmer [allergy] : ALLERGIE" in stderr and "Pénicillines" in stderr
    assert not list(tmp_path.glob("*.pdf"))
    # Only the journal and its head record (viewing the patient is recorded) changed in the home.
    assert {p for p in sorted(p.name for p in home.iterdir())} - set(before) <= {"journal", "journal.head"}


def test_out_is_required_without_preview(db_path: Path, home: Path) -> None:
    code, _, stderr = run("prescribe", "pat-1", "--db", str(db_path), "--home", str(home), "--user", "u",
                          "--prescriber", "10101234567", "--renew", "all")  # fmt: skip
    assert code == 2 and "--out" in stderr


# --- the cases at the top of issue 9, through the unlocked store (the path the appliance takes) -----------


def _pharmacist_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, dt.date]:
    """A practice published with the BDPM subset, the prescriber enrolled, the snapshot in the store."""
    from continuity import display
    from continuity.model import Allergy, Measurement, Patient, Sex
    from tests.factories import patient, small_practice
    from tests.transport_helpers import make_rig, use_weak_kdf

    use_weak_kdf(monkeypatch)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = display.local(now).date()
    kid: Patient = patient("GAËL", "Noé", (today - dt.timedelta(days=6 * 365)).isoformat(), id="p-kid", sex=Sex.MALE)
    records = [
        *small_practice(today),
        patient("ALLERGIQUE", "Anne", "1970-05-05", id="p-allergic"),
        Allergy("a-pen", "p-allergic", "Pénicillines", category="medication"),
        Treatment("al-amox", "p-allergic", "amoxicilline", "1 g", "comprimé dispersible", posology="1 matin et soir",
                  chronic=True),
        patient("MARQUES", "Paul", "1960-01-05", id="p-brands", sex=Sex.MALE),
        Treatment("br-oxy", "p-brands", "OXYCONTIN LP 20 mg", posology="1 comprimé matin et soir", chronic=True),
        Treatment("br-sken", "p-brands", "SKENAN LP 30 mg", posology="1 gélule matin et soir", chronic=True),
        Treatment("br-duro", "p-brands", "DUROGESIC 25 microgrammes/heure", posology="1 patch tous les 3 jours",
                  chronic=True),
        Treatment("br-doli", "p-brands", "DOLIPRANE 1000 mg, comprimé", posology="1 comprimé si douleur",
                  chronic=True),
        kid,
        Measurement("p-kid", "weight", 21.5, "kg", today - dt.timedelta(days=10)),
        Treatment("kid-abx", "p-kid", "amoxicilline", "500 mg", "gélule", posology="1 gélule 3 fois par jour pendant 3 "
                  "jours", start_date=today - dt.timedelta(days=2)),
        Treatment("kid-par", "p-kid", "paracétamol", "500 mg", "comprimé", posology="1/2 comprimé si fièvre",
                  chronic=True),
        patient("VOIES", "Rose", "1980-02-02", id="p-routes"),
        Treatment("rt-levo", "p-routes", "lévothyroxine sodique 75 microgrammes, comprimé",
                  posology="1 comprimé le matin", chronic=True),
    ]
    rig = make_rig(tmp_path)
    with_prescriber(rig, records)
    rig.ingest(rig.make(1, created_at=now - dt.timedelta(hours=2)), now=now)
    secret = tmp_path / "pass"
    secret.write_text(PRESCRIBER_PASSPHRASE + "\n")
    return rig.home, secret, today


def _as_prescriber(home: Path, secret: Path, patient_id: str, out: Path, *extra: str) -> tuple[int, str, str]:
    return run("prescribe", patient_id, "--home", str(home), "--user", PRESCRIBER, "--passphrase-file", str(secret),
               "--out", str(out), *extra)  # fmt: skip


def test_an_allergic_patients_amoxicilline_renewal_needs_its_own_acknowledgement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, secret, _ = _pharmacist_rig(tmp_path, monkeypatch)
    out = tmp_path / "o.pdf"
    remark = ("--line", "paracétamol||comprimé|1 comprimé si douleur|5 jours")  # no strength: a remark
    code, _, stderr = _as_prescriber(home, secret, "p-allergic", out, "--renew", "all", *remark)
    assert code == 13 and "[allergy] ALLERGIE enregistrée à « Pénicillines »" in stderr and "[remarque]" in stderr
    # One --confirm acknowledges one kind of thing: neither the bare flag nor the danger code covers both.
    for confirm in (("--confirm",), ("--confirm", "allergy")):
        code, _, stderr = _as_prescriber(home, secret, "p-allergic", out, "--renew", "all", *remark, *confirm)
        assert code == 13 and not out.exists(), confirm
    code, _, stderr = _as_prescriber(home, secret, "p-allergic", out, "--renew", "all", *remark,
                                     "--confirm", "allergy", "--confirm")
    assert code == 0, stderr
    assert "amoxicilline 1 g, comprimé dispersible, voie orale" in flat(pdf_text(out.read_bytes(), tmp_path)[0])
    (entry,) = [e for e in journal_module.Journal(home).entries() if e.action == "print_prescription"]
    assert entry.details["dangers_acknowledged"] == ["allergy"]


def test_narcotic_brands_are_left_out_by_name_and_refused_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, secret, _ = _pharmacist_rig(tmp_path, monkeypatch)
    out = tmp_path / "o.pdf"
    code, _, stderr = _as_prescriber(home, secret, "p-brands", out, "--renew", "all")
    assert code == 0, stderr
    for brand in ("OXYCONTIN LP 20 mg", "SKENAN LP 30 mg", "DUROGESIC 25 microgrammes/heure"):
        assert f"Non repris : « {brand} » — à rédiger sur ordonnance sécurisée" in stderr
    text = flat(" ".join(pdf_text(out.read_bytes(), tmp_path)))
    assert "1. paracétamol 1000 mg, comprimé, voie orale (DOLIPRANE)" in text and "1 ligne prescrite" in text
    for absent in ("OXYCONTIN", "oxycodone", "SKENAN", "morphine", "DUROGESIC", "fentanyl"):
        assert absent not in text
    for asked in (("--renew", "br-oxy"), ("--renew", "br-duro"),
                  ("--line", "SKENAN LP 30 mg|30 mg|gélule|1 gélule matin et soir|7 jours")):
        refused = tmp_path / "refused.pdf"
        code, _, stderr = _as_prescriber(home, secret, "p-brands", refused, *asked, "--confirm", "unidentified")
        assert code == 12 and "ORDONNANCE SÉCURISÉE" in stderr and not refused.exists(), asked


def test_a_childs_three_day_course_started_two_days_ago_is_renewed_for_one_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from continuity import display

    home, secret, today = _pharmacist_rig(tmp_path, monkeypatch)
    out = tmp_path / "o.pdf"
    code, _, stderr = _as_prescriber(home, secret, "p-kid", out, "--renew", "all")
    assert code == 0, stderr
    assert "Non repris : « amoxicilline » — traitement de courte durée" in stderr
    assert "amoxicilline" not in flat(pdf_text(out.read_bytes(), tmp_path)[0])
    code, _, stderr = _as_prescriber(home, secret, "p-kid", tmp_path / "no.pdf", "--renew", "kid-abx",
                                     "--duration", "1 mois")
    assert code == 12 and f"il en reste 1 jour (jusqu'au {display.fr_date(today)} inclus)" in stderr
    course = tmp_path / "course.pdf"
    code, _, stderr = _as_prescriber(home, secret, "p-kid", course, "--renew", "kid-abx")
    assert code == 0, stderr
    text = flat(pdf_text(course.read_bytes(), tmp_path)[0])
    assert "Poids : 21,5 kg" in text and "Durée : 1 jour" in text and "1 mois" not in text
    assert f"à poursuivre jusqu'au {display.fr_date(today)} inclus" in text


def test_routes_on_paper_and_a_free_text_tablet_asks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, secret, _ = _pharmacist_rig(tmp_path, monkeypatch)
    out = tmp_path / "o.pdf"
    code, _, stderr = _as_prescriber(
        home, secret, "p-routes", out, "--renew", "all",
        "--line", "clotrimazole|500 mg|comprimé vaginal|1 comprimé au coucher|1 jour",
        "--line", "tiotropium|18 microgrammes|poudre pour inhalation en gélule|1 inhalation par jour|1 mois",
        "--line", "aciclovir|30 mg/g|pommade ophtalmique|5 applications par jour|7 jours",
    )  # fmt: skip — no --confirm: nothing here is a danger or a remark
    assert code == 0, stderr
    text = flat(pdf_text(out.read_bytes(), tmp_path)[0])
    assert "lévothyroxine sodique 75 microgrammes, comprimé, voie orale" in text
    assert "clotrimazole 500 mg, comprimé vaginal, voie vaginale" in text
    assert "tiotropium 18 microgrammes, poudre pour inhalation en gélule, voie inhalée" in text
    assert "aciclovir 30 mg/g, pommade ophtalmique, voie ophtalmique" in text

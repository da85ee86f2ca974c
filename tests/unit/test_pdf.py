"""The printed forms, read back: mandatory mentions, bizone zones, page spill, hostile input, no fetch."""

from __future__ import annotations

import datetime as dt
import io
import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pypdf
import pytest

from continuity import pdf
from continuity.errors import RenderError
from continuity.model import (
    Allergy,
    AllergyStatus,
    Measurement,
    NonSubstitutionReason,
    Prescription,
    Sex,
)
from continuity.prescribing import printed, rules
from tests.unit.pdf_fixtures import (
    HOSTILE_NAMES,
    LONG_NAME,
    NOW,
    SNAPSHOT_AT,
    ald_summary,
    child,
    flat,
    line,
    patient,
    pdf_text,
    practitioner,
    prescription,
    summary,
    weight,
)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_weasyprint_warnings() -> Iterator[None]:
    """Every render in this module must be clean: a weasyprint warning fails the test."""
    collector = _Collector()
    logger = logging.getLogger("weasyprint")
    logger.addHandler(collector)
    pdf.url_fetcher().refused.clear()
    try:
        yield
    finally:
        logger.removeHandler(collector)
    assert [r.getMessage() for r in collector.records] == []
    assert pdf.url_fetcher().refused == []


@pytest.fixture
def fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL weasyprint asks the fetcher for during the test."""
    fetcher = pdf.url_fetcher()
    calls: list[str] = []
    original = type(fetcher).fetch

    def spy(self: Any, url: str, headers: Any = None) -> Any:
        calls.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(type(fetcher), "fetch", spy)
    return calls


def _render(p: Prescription, **options: Any) -> bytes:
    return pdf.render_prescription(p, snapshot_created_at=SNAPSHOT_AT, **options)


def _child_prescription() -> Prescription:
    kid = child()
    return prescription(
        [
            line(
                "amoxicilline",
                strength="250 mg/5 ml",
                form="poudre pour suspension buvable",
                posology="50 mg/kg/jour en 2 prises, soit 5,6 ml matin et soir",
                duration_days=30,
                renewals=2,
                non_substitution=NonSubstitutionReason.EFG,
            )
        ],
        the_patient=kid,
        weight=weight(22.5, dt.date(2026, 11, 1), kid.id),
        height=Measurement(kid.id, "height", 118, "cm", dt.date(2026, 11, 1)),
    )


def test_standard_form_carries_every_mandatory_mention(tmp_path: Path) -> None:
    pages = pdf_text(_render(_child_prescription()), tmp_path)
    assert len(pages) == 1
    text = flat(pages[0])
    for mention in (
        # prescriber: name, qualité, specialty, RPPS, address with France, +33 phone, e-mail
        "Dr Hélène Zoé Lefèvre-Çelik",
        "Médecin généraliste",
        "Médecine générale",
        "N° RPPS : 10101234567",
        "12 rue de l'Église",
        "69003 Lyon",
        "France",
        "Tél. : +33 4 72 00 11 22",
        "Courriel : dr.lefevre@cabinet-exemple.fr",
        # date JJ/MM/AAAA
        "Fait à Lyon, le 28/11/2026",
        # patient: surname, first names, sex, date of birth, weight and height with their date
        "GAËL Noé",
        "Sexe : Masculin",
        "Né le 02/06/2019 (7 ans)",
        "Poids : 22,5 kg (mesuré le 01/11/2026)",
        "Taille : 118 cm (mesurée le 01/11/2026)",
        # the line: DCI, strength, form, route, posology, duration, renewals, non-substitution
        "1. amoxicilline 250 mg/5 ml, poudre pour suspension buvable, voie orale",
        "50 mg/kg/jour en 2 prises, soit 5,6 ml matin et soir",
        "Durée : 1 mois",
        "À renouveler 2 fois",
        "Non substituable (EFG)",
        "1 ligne prescrite",
        "Signature du Dr Hélène Zoé Lefèvre-Çelik :",
        # footer: paper because the software was down, with the snapshot date (local time)
        "Ordonnance établie sur papier car le logiciel de prescription était indisponible",
        "instantané du 27/11/2026 à 02:15",
    ):
        assert mention in text, mention
    assert "page 1/" not in text  # numbering only when the form spills over
    assert "Duplicata" not in text
    assert "EXERCICE" not in text


def test_signature_directly_under_the_last_line(tmp_path: Path) -> None:
    p = prescription([line("paracétamol"), line("ibuprofène", strength="200 mg", duration_days=5)])
    text = flat(pdf_text(_render(p), tmp_path)[0])
    last_line = text.index("Durée : 5 jours")
    signature = text.index("Signature du Dr")
    assert text[last_line + len("Durée : 5 jours") : signature].strip() == "2 lignes prescrites"


def test_no_image_and_no_2d_code_in_any_form(tmp_path: Path) -> None:
    documents = [
        _render(_child_prescription(), duplicate=True, drill=True),
        pdf.render_summary(ald_summary(), snapshot_created_at=SNAPSHOT_AT, practice_name="Cabinet"),
    ]
    for document in documents:
        for page in pypdf.PdfReader(io.BytesIO(document)).pages:
            assert list(page.images) == []  # no image at all, so no QR or 2D code either


def test_bizone_headings_verbatim_and_lines_in_their_zone(tmp_path: Path) -> None:
    plan = rules.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
    assert plan.prescription.is_bizone
    text = flat(pdf_text(_render(plan.prescription), tmp_path)[0])
    top = text.index(printed.ALD_HEADING)
    bottom = text.index(printed.OTHER_HEADING)
    assert top < bottom
    assert printed.ALD_HEADING == (
        "Prescriptions relatives au traitement de l'affection de longue durée reconnue "
        "(liste ou hors liste) (AFFECTION EXONÉRANTE)"
    )
    assert printed.OTHER_HEADING == (
        "Prescriptions SANS RAPPORT avec l'affection de longue durée (MALADIES INTERCURRENTES)"
    )
    for ald_drug in ("metformine", "insuline glargine"):
        assert top < text.index(ald_drug) < bottom
    for other_drug in ("lévothyroxine sodique 75 µg", "paracétamol"):
        assert text.index(other_drug) > bottom
    assert "Non substituable (MTE)" in text[bottom:]
    assert text.index("Signature du Dr") > text.index("paracétamol")


def test_bizone_empty_zone_says_nothing_can_be_added(tmp_path: Path) -> None:
    p = prescription([line("metformine", ald_related=True)])
    text = flat(pdf_text(_render(p), tmp_path)[0])
    bottom = text.index(printed.OTHER_HEADING)
    assert "— néant —" in text[bottom:]


def test_standard_form_when_no_line_is_ald(tmp_path: Path) -> None:
    text = flat(pdf_text(_render(prescription([line()])), tmp_path)[0])
    assert "AFFECTION EXONÉRANTE" not in text
    assert "MALADIES INTERCURRENTES" not in text


def test_a_bizone_zone_continued_on_the_next_page_repeats_its_heading(tmp_path: Path) -> None:
    lines = [replace(line(f"médicament-{i:02d}"), ald_related=i <= 12) for i in range(1, 15)]
    pages = [flat(page) for page in pdf_text(_render(prescription(lines)), tmp_path)]
    assert len(pages) == 2
    assert "AFFECTION EXONÉRANTE" in pages[0] and "MALADIES INTERCURRENTES" not in pages[0]
    # Page 2 opens on the ALD zone again, with its heading, before the other zone.
    second = pages[1]
    order = [second.index(text) for text in ("AFFECTION EXONÉRANTE", "médicament-12", "MALADIES INTERCURRENTES")]
    assert order == sorted(order)
    assert "Dr Hélène Zoé Lefèvre-Çelik — N° RPPS : 10101234567" in second


def test_accents_survive(tmp_path: Path) -> None:
    p = prescription([line("lévothyroxine sodique", strength="75 µg", posology="½ comprimé à jeun, œuf évité")])
    text = flat(pdf_text(_render(p), tmp_path)[0])
    for word in ("Lefèvre-Çelik", "N'DIAYE (Dupré) Aïssatou Éléonore", "lévothyroxine", "75 µg", "½ comprimé",
                 "œuf évité", "Féminin", "Née le 14/03/1958"):
        assert word in text, word


def test_twelve_lines_spill_onto_two_numbered_pages(tmp_path: Path) -> None:
    p = prescription([line(f"médicament-{i:02d}") for i in range(1, 13)])
    pages = pdf_text(_render(p), tmp_path)
    assert len(pages) == 2
    for number, page in enumerate(pages, start=1):
        text = flat(page)
        assert f"page {number}/2" in text
        assert "N'DIAYE (Dupré) Aïssatou Éléonore" in text
        assert "28/11/2026" in text
        assert "instantané du 27/11/2026" in text
    second = flat(pages[1])
    # Every page after the first repeats who signs (name and RPPS) and for whom.
    assert "Dr Hélène Zoé Lefèvre-Çelik — N° RPPS : 10101234567" in second
    assert "née le 14/03/1958 — ordonnance du 28/11/2026" in second
    # The signature follows the last line on the last page, never alone on a page.
    assert "médicament-12" in second and "Signature du Dr" in second
    assert second.index("médicament-12") < second.index("Signature du Dr")
    # Page 1 ends without a signature (render review): it says the ordonnance goes on, how many lines it
    # has, and that the signature follows the last one; the last page does not.
    continued = "Suite de l'ordonnance page suivante : 12 lignes prescrites au total, signature après la dernière."
    assert continued in flat(pages[0]) and "Suite de l'ordonnance" not in second


def test_duplicate_page_follows_with_its_mention(tmp_path: Path) -> None:
    pages = pdf_text(_render(prescription([line()]), duplicate=True), tmp_path)
    assert len(pages) == 2
    assert "Duplicata" not in pages[0]
    assert "Duplicata ne permettant pas la délivrance des médicaments" in flat(pages[1])
    assert "paracétamol 500 mg" in pages[1]


def test_drill_mark_on_every_page(tmp_path: Path) -> None:
    p = prescription([line(f"médicament-{i:02d}") for i in range(1, 13)])
    pages = pdf_text(_render(p, drill=True, duplicate=True), tmp_path)
    assert len(pages) == 4
    for page in pages:
        assert "EXERCICE — NE PAS DÉLIVRER" in flat(page)


def test_footer_off_keeps_the_snapshot_date(tmp_path: Path) -> None:
    text = flat(pdf_text(_render(prescription([line()]), footer=False), tmp_path)[0])
    assert "logiciel de prescription était indisponible" not in text
    assert "Données du dossier : instantané du 27/11/2026 à 02:15" in text


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_hostile_text_prints_literally_and_fetches_nothing(
    hostile: str, tmp_path: Path, fetched: list[str]
) -> None:
    p = prescription(
        [line(hostile, posology=f"prendre {hostile}")],
        the_patient=patient(birth_name=hostile, birth_given_names=(hostile,), used_name=""),
        prescriber=practitioner(family_name=hostile),
    )
    document = _render(p)
    text = flat(pdf_text(document, tmp_path)[0])
    if hostile.isascii():
        assert hostile in text
        assert hostile.upper() in text  # the birth name is printed in capitals
    else:
        # Right-to-left text: pdftotext may give it in visual order; every letter must be there.
        letters = {c for c in hostile if c.isalpha()}
        assert letters <= set(text)
    assert "49" not in text  # {{7*7}} was not evaluated
    assert fetched == []
    assert pdf.url_fetcher().refused == []


def test_rtl_name_does_not_disturb_the_mentions_around_it(tmp_path: Path) -> None:
    p = prescription([line()], the_patient=patient(birth_name="العربية", birth_given_names=("שלום",)))
    text = flat(pdf_text(_render(p), tmp_path)[0])
    assert "Sexe : Féminin — Née le 14/03/1958 (68 ans)" in text
    assert "1. paracétamol 500 mg, gélule, voie orale" in text


CONTROL_AND_BIDI = ("\u202e", "\u202d", "\u2066", "\u200f", "\u200b", "\x1b", "\x07", "\x00", "\u2028")


def test_control_and_bidi_characters_never_reach_the_paper(tmp_path: Path) -> None:
    # Found in the render review (scripts/render-review.py): a RIGHT-TO-LEFT OVERRIDE in a posology printed
    # "1 comprimé ruoj rap siof 2", and an escape character printed as a missing-glyph box.
    p = prescription(
        [line(posology="1 comprimé \u202e2 fois par jour\x07", dci="paracé\u200btamol"),
         line("metformine", posology="\u202d1 comprimé\x1b[2J le soir\u2028au repas")],
        the_patient=patient(birth_name="LEROY\u202eENIAM", used_name="MOREAU\x1b[31m", birth_given_names=("Zoé\x00",)),
        prescriber=practitioner(family_name="Valide\u2066"),
    )
    text = flat(" ".join(pdf_text(_render(p), tmp_path)))
    assert "1 comprimé 2 fois par jour" in text and "1. paracétamol 500 mg" in text
    assert "1 comprimé[2J le soir au repas" in text
    assert "LEROYENIAM (MOREAU[31m) Zoé" in text and "Dr Hélène Zoé Valide" in text
    assert not set("".join(CONTROL_AND_BIDI)) & set(text)
    preview = printed.preview_text(p, snapshot_created_at=SNAPSHOT_AT)
    assert "1 comprimé 2 fois par jour" in preview and not set("".join(CONTROL_AND_BIDI)) & set(preview)


def test_control_and_bidi_characters_never_reach_the_summary(tmp_path: Path) -> None:
    hostile = summary(patient(birth_name="LEROY\u202eENIAM", used_name="MOREAU\x1b[31m"),
                      allergies=(Allergy(id="a", patient_id="pat-1", substance="Pénicil\u202elines"),))
    document = pdf.render_summary(hostile, snapshot_created_at=SNAPSHOT_AT, practice_name="Cabinet\x07")
    text = flat(" ".join(pdf_text(document, tmp_path)))
    assert "LEROYENIAM" in text and "Pénicillines" in text
    assert not set("".join(CONTROL_AND_BIDI)) & set(text)


def test_a_child_without_a_weight_says_so_on_paper(tmp_path: Path) -> None:
    # Found in the render review: once "child-weight" was acknowledged, the ordonnance of a 3-year-old
    # showed no weight at all, and the pharmacist could not tell "not measured" from "left off".
    text = flat(pdf_text(_render(prescription([line()], the_patient=child())), tmp_path)[0])
    assert "Poids : non renseigné" in text
    adult = flat(pdf_text(_render(prescription([line()])), tmp_path)[0])
    assert "Poids" not in adult


def test_five_hundred_character_name_wraps_on_the_page(tmp_path: Path) -> None:
    p = prescription([line()], the_patient=patient(birth_name=LONG_NAME, used_name=""))
    document = _render(p)
    pages = pdf_text(document, tmp_path)
    assert LONG_NAME.upper() in "".join(pages[0].split())
    # The name wrapped instead of running off the page: every text line stays within the width.
    mediabox_width = float(pypdf.PdfReader(io.BytesIO(document)).pages[0].mediabox.width)
    assert mediabox_width == pytest.approx(595.28, abs=1)
    assert "Signature du Dr" in flat(pages[-1])


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.2.1/x.png",
        "https://example.org/style.css",
        "ftp://example.org/x",
        "data:text/css,body{}",
        "file:///etc/passwd",
        (pdf.FORMS_DIR / ".." / "pyproject.toml").as_uri(),
        pdf.FORMS_DIR.as_uri() + "/../pyproject.toml",
        "file://evil.example.org" + str(pdf.FORMS_DIR / "common.css"),
        pdf.FORMS_DIR.as_uri() + "/missing.css",
    ],
)
def test_url_fetcher_refuses_everything_outside_forms(url: str) -> None:
    fetcher = pdf.url_fetcher()
    with pytest.raises(pdf.ForbiddenFetch):
        fetcher.fetch(url)
    assert fetcher.refused == [url]
    fetcher.refused.clear()


def test_url_fetcher_serves_forms_files() -> None:
    response = pdf.url_fetcher().fetch((pdf.FORMS_DIR / "common.css").as_uri())
    assert b"@page" in response.read()
    response.close()


def test_preview_shows_exactly_the_printed_text(tmp_path: Path) -> None:
    plan = rules.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
    on_paper = flat(" ".join(pdf_text(_render(plan.prescription), tmp_path)))
    preview = printed.preview_text(plan.prescription, snapshot_created_at=SNAPSHOT_AT)
    for row in preview.splitlines():
        row = row.strip().strip("┌└─").strip()
        if not row:
            continue
        if row.startswith("Patient : "):
            row = row  # the form prints the same label
        assert flat(row) in on_paper, row


def test_summary_lists_allergies_first_and_the_snapshot_date(tmp_path: Path) -> None:
    document = pdf.render_summary(
        ald_summary(), snapshot_created_at=SNAPSHOT_AT, practice_name="Cabinet médical des Pentes"
    )
    text = flat(" ".join(pdf_text(document, tmp_path)))
    order = [text.index(s) for s in ("Allergies", "Pathologies", "Traitements en cours", "Poids et taille")]
    assert order == sorted(order)
    for mention in (
        "Cabinet médical des Pentes",
        "N'DIAYE (Dupré) Aïssatou Éléonore",
        "Née le 14/03/1958",
        "Sexe : Féminin",
        "Pénicillines — urticaire",
        "Diabète de type 2 — ALD",
        "metformine 1000 mg, comprimé, voie orale",
        "Poids : 71,5 kg (mesuré le 02/10/2026)",
        "instantané du 27/11/2026 à 02:15",
    ):
        assert mention in text, mention


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (AllergyStatus.NONE_KNOWN, "Aucune allergie connue"),
        (AllergyStatus.NO_INFORMATION, "Aucune information sur les allergies"),
    ],
)
def test_summary_tells_no_allergy_from_no_information(
    status: AllergyStatus, expected: str, tmp_path: Path
) -> None:
    s = summary(patient(allergy_status=status))
    text = flat(pdf_text(pdf.render_summary(s, snapshot_created_at=SNAPSHOT_AT, practice_name="C"), tmp_path)[0])
    assert expected in text


def test_summary_hostile_fields_are_text(tmp_path: Path, fetched: list[str]) -> None:
    hostile = "<img src=http://192.0.2.1/x.png>"
    s = summary(
        patient(birth_name=hostile),
        allergies=[Allergy(id="a", patient_id="pat-1", substance="{{7*7}}", reaction="<script>x</script>")],
    )
    document = pdf.render_summary(s, snapshot_created_at=SNAPSHOT_AT, practice_name="<b>{{ 7*7 }}</b>")
    text = flat(pdf_text(document, tmp_path)[0])
    assert hostile.upper() in text and "{{7*7}}" in text and "<script>x</script>" in text
    assert "<b>{{ 7*7 }}</b>" in text
    assert fetched == []


def test_render_form_is_strict_about_missing_context() -> None:
    with pytest.raises(RenderError):
        pdf.render_form("summary.html", {"title": "x"})


def test_render_form_generic_template_gets_the_page_frame(tmp_path: Path) -> None:
    document = pdf.render_form(
        "_page.html", {"title": "Liste", "snapshot_line": "Données du dossier : instantané du 27/11/2026"}
    )
    assert "instantané du 27/11/2026" in flat(pdf_text(document, tmp_path)[0])


def test_bad_sex_and_unknown_birth_date_still_render(tmp_path: Path) -> None:
    p = prescription([line()], the_patient=patient(sex=Sex.UNKNOWN, birth_date=None))
    text = flat(pdf_text(_render(p), tmp_path)[0])
    assert "Date de naissance : inconnue" in text
    assert "Sexe : Inconnu" in text


def test_pages_as_png_for_a_human_look(tmp_path: Path) -> None:
    """Writes tests/artifacts/*.png (git-ignored) so a person can look at the forms."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: scripts/bootstrap.sh --test installs it")
    ARTIFACTS.mkdir(exist_ok=True)
    plan = rules.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
    documents = {
        "ordonnance-enfant": _render(_child_prescription()),
        "bizone": _render(plan.prescription, duplicate=True),
        "ordonnance-2-pages-exercice": _render(
            prescription([line(f"médicament-{i:02d}") for i in range(1, 13)]), drill=True
        ),
        "hostile": _render(
            prescription(
                [line(HOSTILE_NAMES[2])],
                the_patient=patient(birth_name=LONG_NAME, birth_given_names=HOSTILE_NAMES[:2] + HOSTILE_NAMES[3:]),
            )
        ),
        "resume": pdf.render_summary(ald_summary(), snapshot_created_at=SNAPSHOT_AT, practice_name="Cabinet"),
    }
    for name, document in documents.items():
        source = ARTIFACTS / f"{name}.pdf"
        source.write_bytes(document)
        subprocess.run(["pdftoppm", "-r", "70", "-png", str(source), str(ARTIFACTS / name)], check=True)
        assert list(ARTIFACTS.glob(f"{name}*.png"))


def test_render_errors_become_render_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk on fire")

    monkeypatch.setattr(pdf, "_document", broken)
    with pytest.raises(RenderError):
        _render(prescription([line()]))


def test_prescription_dates_use_french_local_time(tmp_path: Path) -> None:
    late = dt.datetime(2026, 11, 28, 23, 30, tzinfo=dt.UTC)  # already the 29th in Paris
    p = replace(prescription([line()]), issued_at=late)
    assert "le 29/11/2026" in flat(pdf_text(_render(p), tmp_path)[0])


def test_warm_up_prepares_everything_and_can_run_twice() -> None:
    pdf.warm_up()
    pdf.warm_up()
    assert pdf.stylesheet.cache_info().currsize >= 3


@pytest.mark.parametrize(
    "bad",
    [
        prescription([line("sulfate de morphine")]),
        prescription([line(duration_days=400)]),
        prescription([line()], prescriber=practitioner(rpps="")),
        prescription([]),
    ],
)
def test_render_refuses_what_build_would_have_refused(bad: Prescription) -> None:
    from continuity.errors import PrescriptionRefused

    with pytest.raises(PrescriptionRefused):
        _render(bad)


def test_long_summary_numbers_its_pages_and_repeats_the_patient(tmp_path: Path) -> None:
    from tests.unit.pdf_fixtures import treatment

    many = summary(treatments=[treatment(f"t-{i}", f"médicament-{i:02d}") for i in range(70)])
    pages = pdf_text(pdf.render_summary(many, snapshot_created_at=SNAPSHOT_AT, practice_name="Cabinet"), tmp_path)
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        text = flat(page)
        assert f"page {number}/{len(pages)}" in text
        assert "N'DIAYE (Dupré) Aïssatou Éléonore" in text
        assert "instantané du 27/11/2026 à 02:15" in text

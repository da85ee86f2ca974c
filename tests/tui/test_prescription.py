"""Pilot tests of the ordonnance screen: marks and count, what is never pre-ticked and why, added lines,
the add-line form, routes, dangers acknowledged one by one (never by the key that prints), Échap on a draft,
reception refused, and the other printouts of the desk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from continuity import snapshot_build
from continuity.drugs import bdpm
from continuity.journal import Journal
from continuity.model import Treatment
from continuity.tui.screens.dialogs import MessageScreen
from continuity.tui.screens.patient import PatientScreen
from continuity.tui.screens.prescription import (
    AcknowledgeScreen,
    AddLineScreen,
    ChooseScreen,
    ConfirmDiscard,
    LineList,
    PrescriptionPrinted,
    PrescriptionScreen,
    TickBox,
    count_text,
)
from tests.factories import small_practice
from tests.prescribing_helpers import BDPM_FIXTURE
from tests.tui.conftest import CREATED_AT, SIZE, TODAY, AppMaker
from tests.tui.test_flows import open_by_search, unlock


def text_of(widget: Static) -> str:
    return str(widget.render())


def rows_text(screen: PrescriptionScreen) -> list[str]:
    box = screen.query_one(LineList)
    return [str(box.get_option_at_index(i).prompt) for i in range(box.option_count)]


async def ordonnance_for_rousseau(pilot: Pilot[None]) -> PrescriptionScreen:
    """Unlocked as the prescriber, ROUSSEAU's ordonnance screen open (two treatments to renew)."""
    await unlock(pilot)
    await open_by_search(pilot, "rousseau")
    await pilot.press("o")
    screen = pilot.app.screen
    assert isinstance(screen, PrescriptionScreen)
    return screen


async def add_line_for_rousseau(pilot: Pilot[None]) -> AddLineScreen:
    """The same, with the add-line form open on top."""
    await ordonnance_for_rousseau(pilot)
    await pilot.press("a")
    form = pilot.app.screen
    assert isinstance(form, AddLineScreen)
    return form


async def wait_printed(pilot: Pilot[None]) -> None:
    for _ in range(100):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
        if not isinstance(pilot.app.screen, PrescriptionScreen | AcknowledgeScreen):
            return


@pytest.fixture
def drug_db(tmp_path: Path) -> Path:
    """The small practice with a narcotic brand, an acute course and the BDPM subset."""
    extra = [
        Treatment("trt-sk", "pat-qual", "SKENAN LP 30 mg", posology="1 gélule matin et soir", chronic=True),
        Treatment("trt-abx", "pat-qual", "amoxicilline", "500 mg", "gélule",
                  posology="1 gélule 3 fois par jour pendant 6 jours", start_date=TODAY - dt.timedelta(days=2)),
    ]
    return snapshot_build.build_from_records([*small_practice(TODAY), *extra], tmp_path / "drugs.db",
                                             created_at=CREATED_AT, drugs=bdpm.read(BDPM_FIXTURE)).path


def test_count_text_agrees() -> None:
    assert [count_text(n, 3) for n in (0, 1, 2)] == [
        "Aucune ligne cochée sur 3", "1 ligne cochée sur 3", "2 lignes cochées sur 3"]


async def test_renew_everything_in_two_keys_preview_and_print(make_app: AppMaker, home: Path) -> None:
    app = make_app(prescriber=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ordonnance_for_rousseau(pilot)
        assert screen.plan is not None and len(screen.plan.prescription.lines) == 2
        assert all(row.startswith("[✓]") for row in rows_text(screen))
        assert text_of(screen.query_one("#rx-count", Static)) == "2 lignes cochées sur 2"
        assert "Signataire : Dr Hélène Garnier — RPPS 10001234567" in text_of(screen.query_one("#rx-signer", Static))
        preview = text_of(screen.query_one("#rx-preview", Static))
        assert "metformine" in preview and "lévothyroxine" in preview and "AFFECTION EXONÉRANTE" in preview
        await pilot.press("enter")  # nothing to acknowledge: the preview was the confirmation
        await wait_printed(pilot)
        assert isinstance(app.screen, MessageScreen)  # no printer here: saved, and the user told where
        assert "enregistrée dans" in app.screen.body
        assert "effacé automatiquement dans 7 jours" in app.screen.body  # the print folder's rule, said
        saved = list((home.parent / "prints").glob("ordonnance-*.pdf"))
        assert len(saved) == 1 and saved[0].read_bytes().startswith(b"%PDF")
        # The ordonnance exists (saved, journaled): the draft is closed, not left to be issued twice or
        # "abandoned" with "Rien n'a été imprimé".
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PatientScreen)
        # What was printed during the outage is not in the snapshot: the journal's record is shown,
        # so that the next doctor does not print it again.
        printed = text_of(app.screen.query_one("#prescriptions", Static))
        assert "⚠ Ordonnance déjà imprimée ici pendant la panne : le " in printed
        assert "par dr.garnier (2 lignes)" in printed
        await pilot.press("escape", "f2")  # and opened again later, from a new search
        await open_by_search(pilot, "rousseau")
        assert "déjà imprimée ici pendant la panne" in text_of(app.screen.query_one("#prescriptions", Static))
    entries = [e for e in Journal(home).entries() if e.action == "print_prescription"]
    assert len(entries) == 1 and entries[0].user == "dr.garnier" and entries[0].details["line_count"] == 2


async def test_reception_cannot_open_an_ordonnance(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await open_by_search(pilot, "rousseau")
        await pilot.press("o")
        for _ in range(20):
            await pilot.pause(0.02)
        assert isinstance(app.screen, MessageScreen)
        assert "Seul un médecin prescripteur connecté" in app.screen.body
        await pilot.press("enter")
        assert isinstance(app.screen, PatientScreen)
    assert not [e for e in Journal(home).entries() if e.action == "print_prescription"]


async def test_narcotic_and_acute_course_are_never_pre_ticked_and_say_why(make_app: AppMaker, drug_db: Path) -> None:
    app = make_app(prescriber=True, db=drug_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ordonnance_for_rousseau(pilot)
        rows = rows_text(screen)
        skenan = next(row for row in rows if "SKENAN" in row)
        course = next(row for row in rows if "amoxicilline" in row)
        assert skenan.startswith("[ ]") and "à rédiger sur ordonnance sécurisée" in skenan
        assert course.startswith("[ ]") and "courte durée" in course
        assert text_of(screen.query_one("#rx-count", Static)) == "2 lignes cochées sur 4"
        # The narcotic cannot be ticked at all.
        box = screen.query_one(LineList)
        box.highlighted = rows.index(skenan)
        await pilot.press("space")
        assert rows_text(screen)[rows.index(skenan)].startswith("[ ]")
        # The acute course can, on purpose: for what remains of it (4 days).
        box.highlighted = rows.index(course)
        await pilot.press("space")
        assert screen.plan is not None
        amox = next(line for line in screen.plan.prescription.lines if line.dci == "amoxicilline")
        assert amox.duration_days == 4
        # Échap on a draft that changed asks first.
        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmDiscard)
        await pilot.press("n")
        assert isinstance(app.screen, PrescriptionScreen)
        await pilot.press("escape", "o")
        assert isinstance(app.screen, PatientScreen)


async def test_add_a_line_with_separate_fields_untick_and_remove_it(make_app: AppMaker, drug_db: Path) -> None:
    app = make_app(prescriber=True, db=drug_db)
    async with app.run_test(size=SIZE) as pilot:
        form = await add_line_for_rousseau(pilot)
        await pilot.press(*"levoth")
        await pilot.pause()
        assert "lévothyroxine" in text_of(form.query_one("#add-hint", Static))  # from the drug reference
        form.query_one("#add-dci", Input).value = "clotrimazole"
        await pilot.press("enter")
        form.query_one("#add-strength", Input).value = "500 mg"
        await pilot.press("enter")
        form.query_one("#add-form", Input).value = "comprimé vaginal"
        await pilot.press("enter", "enter")  # route left empty: the reference says
        form.query_one("#add-posology", Input).value = "1 comprimé le soir, dose unique"
        await pilot.press("enter")
        form.query_one("#add-duration", Input).value = "1 j"
        await pilot.press("enter", "enter")  # duration, then ALD (left unticked): added
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen)
        added = rows_text(screen)[-1]
        assert added.startswith("[✓] + clotrimazole 500 mg, comprimé vaginal") and "ligne ajoutée" in added
        assert screen.plan is not None
        line = screen.plan.prescription.lines[-1]
        assert line.route == "vaginale" and line.duration_days == 1
        preview = text_of(screen.query_one("#rx-preview", Static))
        assert "clotrimazole 500 mg, comprimé vaginal, voie vaginale" in preview
        await pilot.press("space")  # untick it
        assert rows_text(screen)[-1].startswith("[ ]")
        await pilot.press("delete")  # and remove it
        assert not any("clotrimazole" in row for row in rows_text(screen))


async def test_an_ald_line_from_the_form_goes_to_the_top_zone(make_app: AppMaker, drug_db: Path) -> None:
    app = make_app(prescriber=True, db=drug_db)
    async with app.run_test(size=SIZE) as pilot:
        form = await add_line_for_rousseau(pilot)
        for name, value in (("dci", "metformine"), ("strength", "1000 mg"), ("form", "comprimé pelliculé"),
                            ("posology", "1 comprimé le soir"), ("duration", "1 mois")):
            form.query_one(f"#add-{name}", Input).value = value
        form.query_one("#add-duration", Input).focus()
        await pilot.press("enter")  # on to the ALD field
        assert form.query_one("#add-ald", TickBox).has_focus
        await pilot.press("space")
        assert text_of(form.query_one("#add-ald", TickBox)).startswith("[✓]")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen) and screen.plan is not None
        assert screen.plan.prescription.lines[-1].ald_related


async def test_several_routes_are_chosen_on_that_line(make_app: AppMaker, drug_db: Path) -> None:
    app = make_app(prescriber=True, db=drug_db)
    async with app.run_test(size=SIZE) as pilot:
        form = await add_line_for_rousseau(pilot)
        for name, value in (("dci", "ceftriaxone"), ("strength", "1 g"),
                            ("form", "poudre et solvant pour solution injectable"),
                            ("posology", "1 injection par jour"), ("duration", "5 j")):
            form.query_one(f"#add-{name}", Input).value = value
        form.query_one("#add-duration", Input).focus()
        await pilot.press("enter", "enter")
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen)
        assert screen.plan is None and "voie d'administration à préciser" in text_of(
            screen.query_one("#rx-warnings", Static))
        assert "voie à choisir (v)" in rows_text(screen)[-1]
        await pilot.press("v")
        assert isinstance(app.screen, ChooseScreen)
        await pilot.press("down", "enter")  # the second route offered
        assert screen.plan is not None and screen.plan.prescription.lines[-1].route in (
            "intramusculaire", "intraveineuse")


async def test_each_danger_is_acknowledged_on_its_own_never_by_the_print_key(make_app: AppMaker, home: Path) -> None:
    app = make_app(prescriber=True)
    async with app.run_test(size=SIZE) as pilot:
        form = await add_line_for_rousseau(pilot)  # allergic to amoxicilline, and a homonym-free identity
        for name, value in (("dci", "amoxicilline"), ("strength", ""), ("form", "gélule"),
                            ("posology", "1 gélule 3 fois par jour pendant 7 jours"), ("duration", "7 j")):
            form.query_one(f"#add-{name}", Input).value = value
        form.query_one("#add-duration", Input).focus()
        await pilot.press("enter", "enter")
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen) and screen.plan is not None
        assert [w.code for w in screen.plan.warnings] == ["allergy", "remarque"]  # strength missing: a remark
        assert "⚠ ALLERGIE" in text_of(screen.query_one("#rx-warnings", Static))
        await pilot.press("p")
        dialog = app.screen
        assert isinstance(dialog, AcknowledgeScreen)
        await pilot.press("enter")  # Entrée never acknowledges a danger
        assert isinstance(app.screen, AcknowledgeScreen) and dialog.position == 0
        await pilot.press(*"oui", "enter")  # not what is asked
        assert dialog.position == 0
        await pilot.press(*"amo", "enter")  # the first letters of the drug concerned
        assert dialog.position == 1
        await pilot.press("enter")  # the remarks still need their own "o"
        assert dialog.position == 1
        await pilot.press("o", "enter")
        assert dialog.position == 2
        assert text_of(dialog.query_one("#ack-progress", Static)) == "Tout est confirmé (2 étapes)."
        await pilot.press("enter")  # now Entrée prints
        await wait_printed(pilot)
    (entry,) = [e for e in Journal(home).entries() if e.action == "print_prescription"]
    assert entry.details["dangers_acknowledged"] == ["allergy"]


async def test_a_refused_line_prints_nothing(make_app: AppMaker, home: Path) -> None:
    app = make_app(prescriber=True)
    async with app.run_test(size=SIZE) as pilot:
        form = await add_line_for_rousseau(pilot)
        for name, value in (("dci", "morphine"), ("strength", "10 mg"), ("form", "comprimé"),
                            ("posology", "1 comprimé matin et soir"), ("duration", "7 j")):
            form.query_one(f"#add-{name}", Input).value = value
        form.query_one("#add-duration", Input).focus()
        await pilot.press("enter", "enter")
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen)
        assert screen.plan is None and "ORDONNANCE SÉCURISÉE" in text_of(screen.query_one("#rx-warnings", Static))
        await pilot.press("p")
        assert isinstance(app.screen, PrescriptionScreen)  # nothing to confirm, nothing printed
    assert not [e for e in Journal(home).entries() if e.action == "print_prescription"]


async def test_print_summary_is_journaled_then_saved_without_a_printer(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await open_by_search(pilot, "rousseau")
        await pilot.press("p")
        for _ in range(100):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
            if isinstance(app.screen, MessageScreen):
                break
        assert isinstance(app.screen, MessageScreen)
        assert "enregistr" in app.screen.body
        saved = list((home.parent / "prints").glob("resume-pat-qual*.pdf"))
        assert len(saved) == 1 and saved[0].read_bytes().startswith(b"%PDF")
    assert [(e.action, e.patient_id) for e in Journal(home).entries() if e.action == "print_summary"] == [
        ("print_summary", "pat-qual")
    ]


async def test_agenda_day_list_is_journaled_and_saved(make_app: AppMaker, home: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await pilot.press("f3")
        await pilot.press("p")
        for _ in range(100):
            await app.workers.wait_for_complete()
            await pilot.pause(0.05)
            if isinstance(app.screen, MessageScreen):
                break
        saved = list((home.parent / "prints").glob("agenda-2026-11-28*.txt"))
        assert len(saved) == 1
        text = saved[0].read_text()
        assert "Dr Hélène Garnier" in text and "09:20  N'DIAYE Moussa" in text and "06 12 34 56 78" in text
    exports = [e for e in Journal(home).entries() if e.action == "export"]
    assert len(exports) == 1 and exports[0].details == {"what": "day_list", "day": "2026-11-28"}


async def test_thousands_of_treatments_tick_nothing_and_the_cap_refuses_clearly(make_app: AppMaker,
                                                                                  tmp_path: Path) -> None:
    many = [Treatment(f"trt-{i:04d}", "pat-qual", "paracétamol", "1 g", "comprimé", posology="1 comprimé le soir",
                      chronic=True) for i in range(5000)]
    db = snapshot_build.build_from_records([*small_practice(TODAY), *many], tmp_path / "many.db",
                                           created_at=CREATED_AT).path
    app = make_app(prescriber=True, db=db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ordonnance_for_rousseau(pilot)
        assert text_of(screen.query_one("#rx-count", Static)) == "Aucune ligne cochée sur 5002"
        for row in screen.rows[:31]:
            row.ticked = True
        screen.rebuild()
        assert screen.plan is None
        assert "31 lignes : une ordonnance en compte au plus 30" in text_of(screen.query_one("#rx-warnings", Static))


async def test_no_treatment_to_renew_the_form_waits_for_its_key(make_app: AppMaker, drug_db: Path) -> None:
    """Tried over SSH: the form used to open by itself, and the `a` the screen names went into its drug field."""
    app = make_app(prescriber=True, db=drug_db)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await open_by_search(pilot, "martinez")  # no current treatment
        await pilot.press("o")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PrescriptionScreen)
        assert "Aucun traitement en cours à renouveler : touche a" in text_of(screen.query_one("#rx-warnings", Static))
        await pilot.press("a")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, AddLineScreen)
        assert all(field.value == "" for field in form.query(Input))


async def test_an_outcome_arriving_under_another_screen_never_pops_that_screen(make_app: AppMaker) -> None:
    """The idle lock can put the unlock screen on top between the end of printing and its message:
    the ordonnance screen must not pop it (the kept screens would show without a passphrase)."""
    app = make_app(prescriber=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ordonnance_for_rousseau(pilot)
        on_top = MessageScreen("Au-dessus", "un autre écran")
        await app.push_screen(on_top)
        screen.post_message(PrescriptionPrinted("Envoyé à l'imprimante « essai »"))
        for _ in range(10):
            await pilot.pause(0.02)
        assert app.screen is on_top  # untouched
        await pilot.press("enter")  # that screen goes: the ordonnance screen finishes its own business
        for _ in range(10):
            await pilot.pause(0.02)
        assert isinstance(app.screen, PatientScreen)

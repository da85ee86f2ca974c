"""The format-neutral import rules and the import summary: absence phrasings, ids shared by different
resources, the summary as the signed header carries it (hostile values refused), and where the desk reads it."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from continuity import envelope, publish, snapshotdb
from continuity.errors import Malformed
from continuity.fhir.json import clean
from continuity.import_summary import MAX_ENTRIES, ImportSummary, SummaryError
from continuity.intake import Ambiguous, Collisions, absence
from continuity.session import StatusInfo
from continuity.synth import write_practice
from continuity.tui.screens.status import status_text


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("No known current medications", "medication", "absent"),
        ("NO KNOWN MEDICATIONS.", "medication", "absent"),
        ("Aucun traitement en cours", "medication", "absent"),
        ("Pas de médicament", "medication", "absent"),
        ("Néant", "medication", "absent"),
        ("No regular medication apart from paracetamol", "medication", "possible"),
        ("Sans traitement de fond, Ventoline si besoin", "medication", "possible"),
        ("Nozinan 25 mg", "medication", ""),  # "no" inside a word is not a negation
        ("Noctamide 1 mg", "medication", ""),
        ("No current problems or disability", "problem", "absent"),
        ("Pas d'antécédent", "problem", "absent"),
        ("Pas de diabète connu", "problem", "possible"),
        ("Hypertension artérielle", "problem", ""),
        ("Aucune allergie connue", "allergy", "absent"),
        ("NKDA", "allergy", "absent"),
        ("Noix de cajou", "allergy", ""),
    ],
)
def test_absence_phrasings(text: str, kind: str, expected: str) -> None:
    assert absence(text, kind) == expected


def test_collisions_keep_different_resources_apart_and_resolve_by_bundle_then_file() -> None:
    collisions = Collisions()
    assert collisions.place("Patient/1", 111, (0, 10), ordinal=1) == ("Patient/1", "")
    assert collisions.place("Patient/1", 111, (1, 20), ordinal=5) == ("Patient/1", "")  # the same person again
    assert collisions.place("Patient/1", 222, (2, 30), ordinal=7) == ("Patient/1~2", "Patient/1")
    assert collisions.place("Patient/1", 222, (3, None), ordinal=9) == ("Patient/1~2", "")
    assert collisions.key_of("Patient/1", 3, 9) == "Patient/1~2"
    assert collisions.key_of("Patient/1", 1, 5) == "Patient/1"
    assert collisions.resolve("Patient/1", 2, (30,)) == "Patient/1~2"  # from the same Bundle
    assert collisions.resolve("Patient/1", 1, (99,)) == "Patient/1"  # from the same file
    assert collisions.resolve("Patient/9", 4, ()) == "Patient/9"  # not shared: itself
    with pytest.raises(Ambiguous):
        collisions.resolve("Patient/1", 4, ())  # a file holding neither


def test_the_summary_round_trips_through_the_header_fields() -> None:
    summary = ImportSummary(
        read=1200,
        kept=1150,
        flagged={"treatment.status-unknown": 3, "treatment.unresolved-medication": 2, "allergy.code-only": 1},
        dropped={"invalid": 4, "negation": 40, "duplicate": 6},
        stripped=1,
    )
    assert ImportSummary.from_header(summary.header_fields()) == summary
    assert summary.rejected == 4
    assert summary.lines_fr() == [
        "3 traitements au statut inconnu",
        "2 lignes de traitement non identifiées",
        "1 allergie connue par son seul code",
        "4 élément(s) de l'export refusé(s) (invalides, non rattachés ou en conflit)",
        "1 fiche(s) dont des caractères de contrôle ont été retirés",
    ]
    assert ImportSummary().lines_fr() == []


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"read": -1},
        {"read": True},
        {"read": 1.5},
        {"read": 1 << 41},
        {"Read": 1},
        {"flag.treatment.x\u202e": 1},
        {f"flag.t.f{n}": 1 for n in range(MAX_ENTRIES + 1)},
    ],
)
def test_a_hostile_header_summary_is_refused(value: object) -> None:
    with pytest.raises(SummaryError):
        ImportSummary.from_header(value)


@given(st.text(max_size=200))
def test_cleaned_text_holds_no_control_or_bidi_character(text: str) -> None:
    cleaned = clean(text)
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in cleaned)  # ESC, NUL, U+202E, lone halves
    assert not any(c.isspace() and c != " " for c in cleaned)
    assert "  " not in cleaned and cleaned == cleaned.strip()
    assert clean(cleaned) == cleaned


def test_the_desk_reads_the_summary_from_the_snapshot(tmp_path: Path) -> None:
    write_practice(tmp_path / "fhir", patients=30, seed=2, today=dt.date(2026, 11, 28))
    built = publish.build([tmp_path / "fhir"], tmp_path / "s.db")
    db = snapshotdb.open_file(built.path)
    try:
        summary = db.import_summary()
    finally:
        db.close()
    assert summary is not None and built.report is not None
    assert summary == ImportSummary.from_header(built.report.summary().header_fields())
    assert "2 traitements au statut inconnu" in summary.lines_fr()
    info = StatusInfo(
        sequence=3, created_at=dt.datetime(2026, 11, 28, 2, tzinfo=dt.UTC), age_text="il y a 4 h",
        practice_name="Cabinet", counts={"patient": 30}, export_notes=tuple(summary.lines_fr()),
    )  # fmt: skip
    assert "À vérifier dans l'export : 2 traitements au statut inconnu ; 1 ligne de traitement non identifiée" in (
        status_text(info)
    )


def test_a_format_2_header_carries_the_summary_and_format_1_still_reads(tmp_path: Path) -> None:
    from tests.transport_helpers import make_rig

    rig = make_rig(tmp_path)
    old = rig.make(1)
    with old.open("rb") as handle:
        header = envelope.read_header(handle, [rig.publisher.verify_key])
    assert header.format_version == 1 and header.import_summary == {}
    summary = ImportSummary(read=10, kept=9, flagged={"treatment.status-unknown": 1}, dropped={"invalid": 1})
    new = publish.seal_database(
        rig.database, tmp_path / "new.snap", signing_key=rig.publisher, recipients=[rig.secrets.box_key.public_key],
        practice_id="cabinet-lilas", sequence=2, counts=rig.counts, import_summary=summary,
    )  # fmt: skip
    assert new.format_version == 2
    assert ImportSummary.from_header(new.import_summary) == summary
    assert new.summary()["import"]["flag.treatment.status-unknown"] == 1


def test_every_absence_phrase_passes_the_cheap_first_test() -> None:
    from continuity.intake import _ABSENCE_PHRASES, _HEADS, _NEGATION_STARTS

    for phrases in _ABSENCE_PHRASES.values():
        assert all(phrase.startswith(_HEADS) or phrase == "no" for phrase in phrases)
    assert all(f"{word} ".startswith(_HEADS) or word == "no" for word in _NEGATION_STARTS)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda h: h.replace(b'"import":{', b'"import":{"dropped.x":-5,'), "import summary: dropped.x is not a count"),
        (lambda h: h.replace(b'"import":{', b'"import":{"Bad Name":1,'), "bad name"),
        (lambda h: h.replace(b'"format_version":2', b'"format_version":1'), "unknown ['import']"),
    ],
)
def test_a_tampered_import_summary_is_malformed(tmp_path: Path, edit: Any, error: str) -> None:
    from tests.transport_helpers import make_rig

    rig = make_rig(tmp_path)
    summary = ImportSummary(read=10, kept=9, dropped={"invalid": 1})
    header = publish.seal_database(
        rig.database, tmp_path / "s.snap", signing_key=rig.publisher, recipients=[rig.secrets.box_key.public_key],
        practice_id="cabinet-lilas", sequence=2, counts=rig.counts, import_summary=summary,
    )  # fmt: skip
    _, _, length = envelope.PREFIX.unpack(header.envelope[: envelope.PREFIX_SIZE])
    header_bytes = header.envelope[envelope.PREFIX_SIZE : envelope.PREFIX_SIZE + length]
    with pytest.raises(Malformed, match=re.escape(error)):
        envelope.parse_header_json(edit(header_bytes))

"""Printing through a real CUPS queue (cups-pdf, set up by .ci/run) and the save-instead fallback."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pypdf
import pytest

from continuity import pdf, printing
from continuity.errors import PrintError
from tests.unit.pdf_fixtures import SNAPSHOT_AT, line, prescription

TEST_PRINTER = os.environ.get("CONTINUITY_TEST_PRINTER", "continuity-pdf")


@pytest.fixture(scope="module")
def document() -> bytes:
    return pdf.render_prescription(prescription([line("amoxicilline")]), snapshot_created_at=SNAPSHOT_AT)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where printing.py creates its temporary spool directories during the test."""
    spools = tmp_path / "tmp"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    return spools


def _fake_tool(directory: Path, name: str, script: str) -> str:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def _cups_skip_reason() -> str | None:
    if shutil.which("lp") is None or shutil.which("lpstat") is None:
        return "CUPS client (lp, lpstat) not installed: .ci/run installs cups and printer-driver-cups-pdf"
    running = subprocess.run(["lpstat", "-r"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    if "is running" not in running.stdout:
        return "cupsd is not running on this machine (.ci/run starts it where it can run as root)"
    queue = subprocess.run(["lpstat", "-p", TEST_PRINTER], capture_output=True, text=True)
    if queue.returncode != 0:
        return f"no CUPS queue {TEST_PRINTER!r} (.ci/run creates it with the cups-pdf driver)"
    return None


def _cups_pdf_output_dirs() -> list[Path]:
    return [Path.home() / "PDF", *Path("/var/spool/cups-pdf").glob("*")]


# --- real CUPS ------------------------------------------------------------------------------------


def test_print_through_a_real_cups_queue(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    reason = _cups_skip_reason()
    if reason:
        pytest.skip(reason)
    started = time.time() - 1
    job = printing.print_pdf(document, printer=TEST_PRINTER, save_to=tmp_path / "fallback.pdf", title="Ordonnance")
    assert job.printer == TEST_PRINTER
    assert job.job_id.startswith(f"{TEST_PRINTER}-")
    assert job.job_id in job.message_fr
    assert list(private_tmp.iterdir()) == []  # the temporary copy is gone once the job is accepted
    assert not (tmp_path / "fallback.pdf").exists()

    produced: list[Path] = []
    deadline = time.time() + 30
    # cups-pdf creates the file first and fills it through Ghostscript: wait until it is complete
    # (ends with the PDF trailer), not merely present, or a loaded machine reads it empty.
    while time.time() < deadline and not produced:
        produced = [
            path
            for directory in _cups_pdf_output_dirs()
            if directory.is_dir()
            for path in directory.glob("*.pdf")
            if path.stat().st_mtime >= started and path.read_bytes().rstrip().endswith(b"%%EOF")
        ]
        time.sleep(0.3)
    assert produced, f"cups-pdf wrote nothing in {_cups_pdf_output_dirs()} within 30 s"
    output = max(produced, key=lambda p: p.stat().st_mtime)
    printed = output.read_bytes()
    output.unlink()
    # cups-pdf re-distils through Ghostscript, which drops the text mapping (pdftotext gives symbols):
    # compare the shape of the document, not its text.
    assert printed.startswith(b"%PDF")
    assert len(pypdf.PdfReader(io.BytesIO(printed)).pages) == len(pypdf.PdfReader(io.BytesIO(document)).pages)


def test_unknown_printer_on_real_cups_falls_back(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    reason = _cups_skip_reason()
    if reason:
        pytest.skip(reason)
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(document, printer="no-such-printer-here", save_to=tmp_path / "ordonnance.pdf")
    assert "« no-such-printer-here » est inconnue" in caught.value.message_fr
    assert caught.value.saved_to == tmp_path / "ordonnance.pdf"
    assert list(private_tmp.iterdir()) == []


# --- fallback -------------------------------------------------------------------------------------


def test_no_cups_saves_the_pdf_and_says_where(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    target = tmp_path / "ordonnance.pdf"
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(
            document,
            printer="bureau",
            save_to=target,
            lp=str(tmp_path / "absent-lp"),
            lpstat=str(tmp_path / "absent-lpstat"),
        )
    error = caught.value
    assert isinstance(error, PrintError) and error.exit_code == 14
    assert error.saved_to == target
    assert target.read_bytes() == document
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "Impression impossible" in error.message_fr
    assert "CUPS" in error.message_fr
    assert f"L'ordonnance est enregistrée dans : {target}" in error.message_fr


def test_no_default_printer(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    lpstat = _fake_tool(
        tmp_path,
        "lpstat",
        'case "$1" in -r) echo "scheduler is running";; *) echo "no system default destination";; esac\n',
    )
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(document, save_to=tmp_path, lpstat=lpstat, lp=lpstat)
    assert "aucune imprimante par défaut" in caught.value.message_fr
    assert caught.value.saved_to == tmp_path / "ordonnance.pdf"


def test_no_scheduler_and_no_printer_named(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    lpstat = _fake_tool(tmp_path, "lpstat", 'echo "lpstat: Scheduler is not running." >&2; exit 1\n')
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(document, save_to=tmp_path / "o.pdf", lpstat=lpstat, lp=lpstat)
    assert "CUPS) ne fonctionne pas" in caught.value.message_fr


def test_default_printer_is_used(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    lpstat = _fake_tool(
        tmp_path,
        "lpstat",
        'case "$1" in -d) echo "system default destination: accueil";; '
        '-p) echo "printer $2 is idle.  enabled since Sat 28 Nov 2026";; esac\n',
    )
    seen = tmp_path / "seen"
    lp = _fake_tool(
        tmp_path,
        "lp",
        f'printf "%s\\n" "$@" > {seen}\n'
        f'stat -c %a "$(dirname "$6")" "$6" >> {seen}\n'
        'echo "request id is accueil-42 (1 file(s))"\n',
    )
    job = printing.print_pdf(document, save_to=tmp_path / "x.pdf", lp=lp, lpstat=lpstat)
    assert (job.job_id, job.printer) == ("accueil-42", "accueil")
    args = seen.read_text().splitlines()
    assert args[:5] == ["-d", "accueil", "-t", "Ordonnance", "--"]
    assert args[-2:] == ["700", "600"]  # private directory, private file
    assert list(private_tmp.iterdir()) == []
    assert not (tmp_path / "x.pdf").exists()


def test_stopped_queue_is_not_used(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    lpstat = _fake_tool(tmp_path, "lpstat", 'echo "printer $2 disabled since Sat 28 Nov 2026 -"\necho "\tPaused"\n')
    lp = _fake_tool(tmp_path, "lp", "echo should-not-run >&2; exit 99\n")
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(document, printer="accueil", save_to=tmp_path / "o.pdf", lp=lp, lpstat=lpstat)
    assert "est arrêtée" in caught.value.message_fr
    assert (tmp_path / "o.pdf").read_bytes() == document


def test_queue_refusing_jobs(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    lpstat = _fake_tool(tmp_path, "lpstat", 'echo "printer $2 is idle.  enabled since today"\n')
    lp = _fake_tool(tmp_path, "lp", 'echo "lp: Destination \\"accueil\\" is not accepting jobs." >&2; exit 1\n')
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(document, printer="accueil", save_to=tmp_path / "o.pdf", lp=lp, lpstat=lpstat)
    assert "refuse les travaux" in caught.value.message_fr
    assert list(private_tmp.iterdir()) == []  # removed on failure too


def test_fallback_never_overwrites(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    taken = tmp_path / "ordonnance.pdf"
    taken.write_bytes(b"another patient's prescription")
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(document, printer="p", save_to=taken, lp="/nonexistent/lp", lpstat="/nonexistent/lpstat")
    assert caught.value.saved_to == tmp_path / "ordonnance-1.pdf"
    assert taken.read_bytes() == b"another patient's prescription"
    assert (tmp_path / "ordonnance-1.pdf").read_bytes() == document


def test_fallback_reuses_the_file_already_written(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    out = tmp_path / "ordonnance.pdf"
    out.write_bytes(document)
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(document, printer="p", save_to=out, lp="/nonexistent/lp", lpstat="/nonexistent/lpstat")
    assert caught.value.saved_to == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ordonnance.pdf", "tmp"]


def test_fallback_that_cannot_save_says_so(document: bytes, tmp_path: Path, private_tmp: Path) -> None:
    with pytest.raises(printing.PrintFailed) as caught:
        printing.print_pdf(
            document, printer="p", save_to=tmp_path / "missing-dir" / "o.pdf", lp="/x/lp", lpstat="/x/lpstat"
        )
    assert caught.value.saved_to is None
    assert "n'a pas pu être enregistré" in caught.value.message_fr

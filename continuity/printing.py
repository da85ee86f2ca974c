"""Hand a PDF to CUPS with `lp`; when printing is impossible, save it where the user said and say where.

The PDF holds patient data, so the copy `lp` reads lives in a private temporary directory (0700,
file 0600) that is removed as soon as `lp` returns: CUPS has spooled its own copy once the job is
accepted. The job title is generic ("Ordonnance"): the CUPS queue and its logs are readable by
other users of the machine and must not name the patient.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from continuity.errors import PrintError

log = logging.getLogger(__name__)

LP_TIMEOUT_SECONDS = 30
_JOB_ID = re.compile(r"request id is (\S+)")
_DEFAULT = re.compile(r"system default destination: (\S+)")
# lp, lpstat and their messages in English whatever the desk's locale: we parse them.
_C_LOCALE = {"LC_ALL": "C", "LANG": "C"}


@dataclass(frozen=True, slots=True)
class PrintJob:
    job_id: str
    printer: str

    @property
    def message_fr(self) -> str:
        return f"Envoyé à l'imprimante « {self.printer} » (travail {self.job_id})."


class PrintFailed(PrintError):
    """Printing failed; `saved_to` is where the PDF was saved instead (None if saving failed too)."""

    def __init__(self, message: str, *, message_fr: str, saved_to: Path | None) -> None:
        super().__init__(message, message_fr=message_fr)
        self.saved_to = saved_to


class _Unavailable(Exception):
    """Why this job cannot be printed: (English detail, French reason)."""

    def __init__(self, detail: str, reason_fr: str) -> None:
        super().__init__(detail)
        self.reason_fr = reason_fr


def _run(command: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **_C_LOCALE},
        check=False,
    )


def default_printer(*, lpstat: str = "lpstat", timeout: float = LP_TIMEOUT_SECONDS) -> str | None:
    """The CUPS default destination, or None when there is none (or no CUPS)."""
    try:
        result = _run([lpstat, "-d"], timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _DEFAULT.search(result.stdout)
    return match.group(1) if match else None


def _scheduler_running(*, lpstat: str, timeout: float) -> bool:
    try:
        result = _run([lpstat, "-r"], timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "scheduler is running" in result.stdout


def _check_printer(printer: str, *, lpstat: str, timeout: float) -> None:
    try:
        result = _run([lpstat, "-p", printer], timeout=timeout)
    except FileNotFoundError as error:
        raise _Unavailable(f"{lpstat} not found", "le service d'impression (CUPS) n'est pas installé") from error
    except subprocess.TimeoutExpired as error:
        raise _Unavailable("lpstat timed out", "le service d'impression (CUPS) ne répond pas") from error
    except OSError as error:
        raise _Unavailable(f"lpstat: {error}", "le service d'impression (CUPS) est inaccessible") from error
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or not output.startswith(f"printer {printer} "):
        if "scheduler is not running" in output or "Unable to connect" in output or "No destinations" in output:
            raise _Unavailable(f"lpstat: {output}", "le service d'impression (CUPS) ne fonctionne pas")
        raise _Unavailable(f"lpstat -p {printer}: {output}", f"l'imprimante « {printer} » est inconnue")
    if " disabled " in f" {output} ":
        # A stopped queue accepts jobs and never prints them: the doctor would wait for nothing.
        raise _Unavailable(
            f"printer {printer} is disabled: {output}", f"l'imprimante « {printer} » est arrêtée (file bloquée)"
        )


def _write_private(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _submit(pdf: bytes, printer: str, *, title: str, lp: str, timeout: float) -> str:
    spool = Path(tempfile.mkdtemp(prefix="continuity-print-"))  # 0700, ours alone
    try:
        path = _write_private(spool, "ordonnance.pdf", pdf)
        try:
            result = _run([lp, "-d", printer, "-t", title, "--", str(path)], timeout=timeout)
        except FileNotFoundError as error:
            raise _Unavailable(f"{lp} not found", "le service d'impression (CUPS) n'est pas installé") from error
        except subprocess.TimeoutExpired as error:
            raise _Unavailable("lp timed out", "le service d'impression (CUPS) ne répond pas") from error
        except OSError as error:
            raise _Unavailable(f"lp: {error}", "le service d'impression (CUPS) est inaccessible") from error
        match = _JOB_ID.search(result.stdout)
        if result.returncode != 0 or not match:
            detail = (result.stderr or result.stdout).strip()
            reason = "l'imprimante refuse les travaux" if "not accepting" in detail else "l'envoi a échoué"
            raise _Unavailable(f"lp exit {result.returncode}: {detail}", f"{reason} ({detail[:120]})")
        return match.group(1)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def save_pdf(pdf: bytes, destination: Path) -> Path:
    """Write the PDF 0600 without overwriting anything; an identical existing file is reused.

    Returns the path actually written ("ordonnance-1.pdf" when "ordonnance.pdf" is taken).
    """
    destination = destination.expanduser()
    if destination.is_dir():
        destination = destination / "ordonnance.pdf"
    candidate = destination
    for attempt in range(1, 1000):
        try:
            if candidate.is_file() and candidate.read_bytes() == pdf:
                return candidate
            return _write_private(candidate.parent, candidate.name, pdf)
        except FileExistsError:
            candidate = destination.with_name(f"{destination.stem}-{attempt}{destination.suffix}")
    raise OSError(f"no free file name next to {destination}")


def print_pdf(
    pdf: bytes,
    *,
    save_to: Path,
    printer: str | None = None,
    title: str = "Ordonnance",
    lp: str = "lp",
    lpstat: str = "lpstat",
    timeout: float = LP_TIMEOUT_SECONDS,
) -> PrintJob:
    """Print through CUPS and return the job; otherwise save to `save_to` and raise PrintFailed.

    Args:
        save_to: where the PDF goes when it cannot be printed (a file, or a directory).
        printer: a CUPS queue name; the default destination when None.
    """
    try:
        queue = printer or default_printer(lpstat=lpstat, timeout=timeout)
        if not queue:
            if not _scheduler_running(lpstat=lpstat, timeout=timeout):
                raise _Unavailable("CUPS scheduler not running", "le service d'impression (CUPS) ne fonctionne pas")
            raise _Unavailable("no printer given and no CUPS default destination", "aucune imprimante par défaut")
        _check_printer(queue, lpstat=lpstat, timeout=timeout)
        job = PrintJob(job_id=_submit(pdf, queue, title=title, lp=lp, timeout=timeout), printer=queue)
    except _Unavailable as failure:
        log.warning("printing failed: %s", failure)
        try:
            saved = save_pdf(pdf, save_to)
        except OSError as error:
            raise PrintFailed(
                f"print failed ({failure}) and saving to {save_to} failed: {error}",
                message_fr=f"Impression impossible : {failure.reason_fr}. Le PDF n'a pas pu être enregistré "
                f"dans {save_to} ({error.strerror or error}).",
                saved_to=None,
            ) from error
        raise PrintFailed(
            f"print failed: {failure}; saved to {saved}",
            message_fr=f"Impression impossible : {failure.reason_fr}. "
            f"L'ordonnance est enregistrée dans : {saved} — imprimez-la depuis un autre poste.",
            saved_to=saved,
        ) from failure
    log.info("print job %s accepted by %s", job.job_id, job.printer)
    return job

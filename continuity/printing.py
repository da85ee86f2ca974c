"""Hand a PDF to CUPS with `lp`; when printing is impossible, save it in the print folder and say where.

The PDF holds patient data, so the copy `lp` reads lives in a private temporary directory (0700,
file 0600) that is removed as soon as `lp` returns: CUPS has spooled its own copy once the job is
accepted. The job title is generic ("Ordonnance"): the CUPS queue and its logs are readable by
other users of the machine and must not name the patient.

When no printer works, the document is saved in the print folder: the one the practice configured
(`continuity tui --print-folder`, or CONTINUITY_PRINT_FOLDER), by default `impressions/` in the
appliance home — never silently in someone's personal folder. The folder is created 0700 and
files 0600 (readable by the service user only), and saved files are purged after
`DEFAULT_KEEP_DAYS` days (`purge_saved`): they are patient data in clear.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from continuity.errors import PrintError

log = logging.getLogger(__name__)

LP_TIMEOUT_SECONDS = 30
PRINT_FOLDER_NAME = "impressions"  # in the appliance home
DEFAULT_KEEP_DAYS = 7  # a document saved for lack of a printer is deleted after this many days


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """What is printed, to name it in French in the messages ("l'ordonnance est enregistrée")."""

    name_fr: str  # with its article, lower case: "l'ordonnance", "le résumé du dossier"
    feminine: bool

    @property
    def capitalised(self) -> str:
        return self.name_fr[:1].upper() + self.name_fr[1:]

    @property
    def saved_fr(self) -> str:
        return "enregistrée" if self.feminine else "enregistré"


ORDONNANCE = DocumentKind("l'ordonnance", feminine=True)
SUMMARY = DocumentKind("le résumé du dossier", feminine=False)
DAY_LIST = DocumentKind("la liste des rendez-vous", feminine=True)
DRILL = DocumentKind("la feuille d'exercice", feminine=True)
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
    # This process's own default first, in libcups' order: a desk's printer (continuity/desk.py) is
    # named even when CUPS does not know it, so the failure says « l'imprimante … est inconnue »
    # (lpstat -d answers nothing at all for a PRINTER it does not know).
    for variable in ("LPDEST", "PRINTER"):
        named = os.environ.get(variable, "").strip()
        if named and not (variable == "PRINTER" and named == "lp"):  # libcups ignores PRINTER=lp
            return named
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


def default_folder(home: Path | None) -> Path:
    """The print folder when the practice configured none: `impressions/` in the appliance home."""
    if home is None:
        from continuity import store

        home = store.default_home()
    return home / PRINT_FOLDER_NAME


def private_folder(folder: Path) -> Path:
    """Create the folder 0700 if needed; refuse one that is not a real folder of ours."""
    folder = folder.expanduser()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{folder} is not a plain folder")
    if info.st_uid != os.geteuid():
        raise OSError(f"{folder} belongs to another user (uid {info.st_uid})")
    return folder


def purge_saved(folder: Path, *, keep_days: int = DEFAULT_KEEP_DAYS, now: float | None = None) -> list[Path]:
    """Delete the files of the print folder older than `keep_days`; returns what was deleted.

    Only regular files directly in the folder are touched (no symbolic link is followed).
    """
    if not folder.is_dir():
        return []
    limit = (now if now is not None else time.time()) - keep_days * 86400
    deleted = []
    for entry in folder.iterdir():
        try:
            info = entry.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                entry.unlink()
                deleted.append(entry)
        except OSError as error:
            log.warning("cannot purge %s: %s", entry, error)
    if deleted:
        log.info("purged %d saved document(s) older than %d days from %s", len(deleted), keep_days, folder)
    return deleted


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
    kind: DocumentKind = ORDONNANCE,
    keep_days: int | None = None,
) -> PrintJob:
    """Print through CUPS and return the job; otherwise save to `save_to` and raise PrintFailed.

    Args:
        save_to: where the PDF goes when it cannot be printed (a file, or a directory).
        printer: a CUPS queue name; the default destination when None.
        kind: what the document is, for the French message.
        keep_days: when the saved copy will be purged, if it will (said in the message).
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
                message_fr=f"Impression impossible : {failure.reason_fr}.\n{kind.capitalised} n'a pas pu "
                f"être {kind.saved_fr} non plus (dans {save_to}).\n"
                "À faire : vérifiez que l'imprimante est allumée et branchée, puis réessayez ; "
                "sinon, appelez la personne responsable du poste.",
                saved_to=None,
            ) from error
        purge = f"\nCe fichier sera effacé automatiquement dans {keep_days} jours." if keep_days else ""
        raise PrintFailed(
            f"print failed: {failure}; saved to {saved}",
            message_fr=f"Impression impossible : {failure.reason_fr}.\n"
            f"{kind.capitalised} est {kind.saved_fr} dans le fichier :\n{saved}\n"
            "À faire : vérifiez que l'imprimante est allumée, branchée et qu'elle a du papier, puis "
            "réessayez. Sinon, copiez ce fichier sur une clé USB et imprimez-le depuis un autre ordinateur."
            + purge,
            saved_to=saved,
        ) from failure
    log.info("print job %s accepted by %s", job.job_id, job.printer)
    return job

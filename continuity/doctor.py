"""Self-check of everything an outage morning depends on, as a French checklist with what to do for each failure.

Each check returns a :class:`Check`: ``ok``, ``warning``, ``failed``, or ``unchecked`` when the check
could not be made (a module not installed, nothing to check yet) — never a false "OK". The checks only
read: no passphrase is asked, nothing is decrypted and nothing is journaled. The one exception to
"only read" is a test ordonnance rendered in memory (fictitious patient, marked EXERCICE, never
written nor printed): a broken install's one failure that matters is an ordonnance that cannot be
produced.

The exit code follows the monitoring-plugin convention, with or without ``--json``: 0 every check
OK (or unchecked), 1 something to watch, 2 a check failed.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from continuity.errors import ContinuityError
from continuity.journal import DEFAULT_RETENTION_MONTHS, PARIS, Journal, verify_journal

FRESH_FOR: Final = dt.timedelta(hours=36)  # the same thresholds as the TUI banner (session.py)
STALE_AFTER: Final = dt.timedelta(days=7)
DISK_WARNING_BYTES: Final = 500 * 1024 * 1024
DISK_FAILURE_BYTES: Final = 100 * 1024 * 1024
CLOCK_TOLERANCE: Final = dt.timedelta(minutes=5)
LPSTAT_TIMEOUT_SECONDS: Final = 10
SYSTEM_QUERY_TIMEOUT_SECONDS: Final = 10
OWNERSHIP_SCAN_LIMIT: Final = 20_000  # entries walked in the home (a real one holds a few hundred)
# What schedules the nightly pull and the morning status (scripts/install.sh enables them).
TIMERS: Final = ("continuity-pull.timer", "continuity-status.timer")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class Status(enum.StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"
    UNCHECKED = "unchecked"

    @property
    def label_fr(self) -> str:
        return {"ok": "OK", "warning": "ATTENTION", "failed": "ÉCHEC", "unchecked": "non vérifié"}[self.value]


@dataclass(frozen=True, slots=True)
class Check:
    name_fr: str
    status: Status
    detail_fr: str
    remedy_fr: str = ""  # what to do, when the status is not OK


@dataclass(frozen=True, slots=True)
class Context:
    home: Path
    now: dt.datetime
    which: Callable[[str], str | None]
    run: Runner
    render: Callable[[], bytes]


def _query(context: Context, command: list[str]) -> subprocess.CompletedProcess[str] | None:
    """A system query (systemctl, timedatectl, crontab); None when it cannot run at all."""
    if context.which(command[0]) is None:
        return None
    try:
        return context.run(command, capture_output=True, text=True, timeout=SYSTEM_QUERY_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _snapshot_created_at(home: Path) -> tuple[dt.datetime | None, dict[str, Any] | None]:
    from continuity import envelope
    from continuity.store import Store

    state = Store(home).read_state()
    current = state.get("current")
    if not isinstance(current, dict):
        return None, state
    return envelope.parse_time(current["created_at"], "created_at"), state


# --- the checks ------------------------------------------------------------------------------------


def check_keyslots(context: Context) -> Check:
    name = "Accès du personnel (trousseau)"
    try:
        from continuity import keys
    except ImportError:
        return Check(name, Status.UNCHECKED, "Module des clés absent de cette version.")
    home = context.home
    if not (home / keys.APPLIANCE_PUB).exists():
        return Check(
            name,
            Status.FAILED,
            "Ce poste n'est pas configuré (pas de clé du poste).",
            "Lancer « continuity init » avec le premier membre du personnel.",
        )
    keys.appliance_public_key(home)
    keys.appliance_verify_key(home)
    staff = keys.list_staff(home)
    if not staff:
        return Check(
            name,
            Status.FAILED,
            "Aucun accès du personnel : personne ne peut ouvrir les données.",
            "Restaurer le dossier keyslots/ depuis la sauvegarde, ou réinstaller le poste (continuity init).",
        )
    damaged = []
    for user in staff:
        path = home / keys.KEYSLOTS / f"{user}.json"
        try:
            slot = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            damaged.append(user)
            continue
        if not isinstance(slot, dict) or not {"kdf", "nonce", "ciphertext"} <= set(slot):
            damaged.append(user)
    if damaged:
        return Check(
            name,
            Status.FAILED,
            f"Accès illisible(s) : {', '.join(damaged)}.",
            "Un autre membre du personnel peut recréer ces accès (continuity staff add) ; sinon appeler le support.",
        )
    return Check(name, Status.OK, f"{len(staff)} accès lisible(s) : {', '.join(staff)}.")


def check_publisher(context: Context) -> Check:
    name = "Éditeur de confiance"
    try:
        from continuity import keys
    except ImportError:
        return Check(name, Status.UNCHECKED, "Module des clés absent de cette version.")
    trusted = keys.trusted_publishers(context.home)
    if not trusted:
        return Check(
            name,
            Status.FAILED,
            "Aucune clé d'éditeur enregistrée : aucun fichier de données ne sera accepté.",
            "Enregistrer la clé publique fournie par l'éditeur (continuity trust FICHIER.pub).",
        )
    fingerprints = keys.fingerprints(bytes(key) for key in trusted)
    return Check(name, Status.OK, f"Clé(s) enregistrée(s) : {', '.join(fingerprints)}.")


def check_snapshot(context: Context) -> Check:
    name = "Fraîcheur des données"
    try:
        created_at, state = _snapshot_created_at(context.home)
    except ImportError:
        return Check(name, Status.UNCHECKED, "Module de stockage absent de cette version.")
    if created_at is None:
        return Check(
            name,
            Status.FAILED,
            "Aucune donnée reçue sur ce poste.",
            "Vérifier la tâche de récupération nocturne (continuity pull) et la connexion au serveur.",
        )
    age = context.now - created_at
    hours = int(age.total_seconds() // 3600)
    when = created_at.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
    last_attempt = ""
    attempts = (state or {}).get("attempts") or []
    if attempts and isinstance(attempts[0], dict) and attempts[0].get("outcome") == "rejected":
        last_attempt = f" Dernière tentative refusée : {attempts[0].get('reason')}."
    if age <= FRESH_FOR:
        return Check(name, Status.OK, f"Données du {when} (il y a {hours} h).{last_attempt}")
    remedy = (
        "Vérifier la tâche de récupération (continuity status, continuity pull) et la connexion ; "
        "si le problème persiste, prévenir l'éditeur."
    )
    status = Status.WARNING if age <= STALE_AFTER else Status.FAILED
    return Check(name, status, f"Données du {when}, vieilles de {hours} h.{last_attempt}", remedy)


def check_journal(context: Context) -> Check:
    name = "Journal d'accès"
    report = verify_journal(context.home)
    if not report.ok:
        first = report.problems[0]
        return Check(
            name,
            Status.FAILED,
            f"Journal rompu ({len(report.problems)} problème(s)), d'abord {first.where()} : {first.message_fr}",
            "Ne rien effacer. Comparer avec la dernière copie papier (continuity journal verify --paper) "
            "et prévenir le responsable des données (DPO).",
        )
    notes = f" {' '.join(report.notes_fr)}" if report.notes_fr else ""
    detail = f"{report.entries} entrées intègres, {report.checkpoints} point(s) de contrôle signé(s).{notes}"
    if report.notes_fr:
        return Check(name, Status.WARNING, detail, "Vérifier l'horloge et la présence de appliance.sign.pub.")
    expired = Journal(context.home).expired_months(DEFAULT_RETENTION_MONTHS, today=context.now.date())
    if expired:
        return Check(
            name,
            Status.WARNING,
            f"{detail} {len(expired)} mois conservé(s) au-delà de la durée prévue ({DEFAULT_RETENTION_MONTHS} mois).",
            "Lancer « continuity journal retention » (à planifier une fois par mois).",
        )
    return Check(name, Status.OK, detail)


def check_journal_writable(context: Context) -> Check:
    """The journal must accept writes, or no patient record can be shown. Probed without writing an entry."""
    name = "Journal inscriptible"
    directory = Journal(context.home).directory
    target = directory if directory.is_dir() else context.home
    probe = target / ".doctor-probe"
    try:
        with probe.open("wb") as handle:
            handle.write(b"probe")
        probe.unlink()
    except OSError as error:
        return Check(
            name,
            Status.FAILED,
            f"Impossible d'écrire dans {target} ({error.strerror}) : les dossiers ne pourront pas être affichés.",
            "Libérer de la place sur le disque ou rétablir les droits d'écriture ; appeler le support.",
        )
    return Check(name, Status.OK, "Le journal peut être écrit.")


def check_printer(context: Context) -> Check:
    name = "Imprimante"
    if context.which("lpstat") is None:
        return Check(
            name,
            Status.FAILED,
            "Le service d'impression (CUPS) n'est pas installé : seul l'enregistrement des PDF est possible.",
            "Installer CUPS et l'imprimante (apt install cups), ou imprimer les PDF depuis un autre poste.",
        )
    try:
        default = context.run(
            ["lpstat", "-d"], capture_output=True, text=True, timeout=LPSTAT_TIMEOUT_SECONDS, check=False
        )
        printers = context.run(
            ["lpstat", "-p"], capture_output=True, text=True, timeout=LPSTAT_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return Check(
            name, Status.FAILED, f"Le service d'impression ne répond pas ({error}).", "Redémarrer le poste ou CUPS."
        )
    listing = printers.stdout.strip()
    if printers.returncode != 0 or not listing:
        return Check(
            name,
            Status.FAILED,
            "Aucune imprimante configurée ou service d'impression arrêté.",
            "Allumer l'imprimante, vérifier le câble, puis l'ajouter dans CUPS (http://localhost:631).",
        )
    disabled = [line for line in listing.splitlines() if "disabled" in line or "désactivée" in line]
    if "no system default" in default.stdout or default.returncode != 0 or not default.stdout.strip():
        return Check(
            name,
            Status.WARNING,
            "Aucune imprimante par défaut.",
            "Choisir l'imprimante par défaut pour tous les comptes : sudo lpadmin -d NOM_DE_L_IMPRIMANTE.",
        )
    if disabled:
        return Check(
            name,
            Status.WARNING,
            f"Imprimante(s) désactivée(s) : {'; '.join(disabled)}",
            "Allumer l'imprimante puis la réactiver : cupsenable NOM_DE_L_IMPRIMANTE.",
        )
    return Check(name, Status.OK, default.stdout.strip())


def check_disk(context: Context) -> Check:
    name = "Espace disque"
    usage = shutil.disk_usage(context.home if context.home.exists() else context.home.parent)
    free_mb = usage.free // (1024 * 1024)
    if usage.free < DISK_FAILURE_BYTES:
        status = Status.FAILED
    elif usage.free < DISK_WARNING_BYTES:
        status = Status.WARNING
    else:
        return Check(name, Status.OK, f"{free_mb} Mo libres.")
    return Check(
        name,
        status,
        f"Seulement {free_mb} Mo libres : le journal et les données risquent de ne plus pouvoir être écrits.",
        "Libérer de la place (anciens fichiers, corbeille) ou appeler le support.",
    )


def render_test_ordonnance() -> bytes:
    """A one-line ordonnance for a fictitious patient, marked EXERCICE, rendered in memory only."""
    from continuity import model, pdf

    now = dt.datetime.now(dt.UTC)
    prescriber = model.Practitioner(
        id="doctor-test",
        family_name="Contrôle",
        given_names=("Poste",),
        rpps="10000000000",
        qualite="Médecin généraliste",
        specialty="Médecine générale",
        address=model.Address(lines=("Vérification du poste",), postal_code="75000", city="Paris", country="France"),
    )
    patient = model.Patient(
        id="doctor-test",
        birth_name="ESSAI",
        birth_given_names=("Vérification",),
        sex=model.Sex.FEMALE,
        birth_date=dt.date(1970, 1, 1),
    )
    line = model.PrescriptionLine(
        dci="paracétamol", strength="500 mg", form="gélule", route="voie orale",
        posology="1 gélule si douleur, sans dépasser 6 par jour", duration_days=3,
    )  # fmt: skip
    prescription = model.Prescription(
        id="doctor-test", issued_at=now, patient=patient, prescriber=prescriber, lines=(line,)
    )
    return pdf.render_prescription(prescription, snapshot_created_at=now, drill=True)


def check_render(context: Context) -> Check:
    name = "Impression des ordonnances (PDF)"
    try:
        document = context.render()
    except Exception as error:  # noqa: BLE001 - whatever breaks the render (missing library, font, form) is the finding
        message = error.message_fr if isinstance(error, ContinuityError) else f"{type(error).__name__}: {error}"
        return Check(
            name,
            Status.FAILED,
            f"Aucune ordonnance ne peut être produite : {message}",
            "Réinstaller les bibliothèques d'impression (sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 "
            "fonts-dejavu-core) puis Continuity (sudo make install) ; en attendant, ordonnances manuscrites.",
        )
    if not document.startswith(b"%PDF-") or len(document) < 1000:
        return Check(name, Status.FAILED, f"Le PDF produit est invalide ({len(document)} octets).",
                     "Réinstaller Continuity (sudo make install) et appeler le support.")  # fmt: skip
    return Check(name, Status.OK, f"Ordonnance d'essai produite en mémoire ({len(document) // 1024} Ko).")


def check_schedule(context: Context) -> Check:
    """The nightly pull and the morning status are scheduled: systemd timers, or cron."""
    name = "Tâches programmées"
    states: dict[str, str] = {}
    systemctl = _query(context, ["systemctl", "is-enabled", *TIMERS])
    if systemctl is not None:
        answers = systemctl.stdout.split()
        if len(answers) == len(TIMERS):
            states = dict(zip(TIMERS, answers, strict=True))
    if states and all(state == "enabled" for state in states.values()):
        return Check(name, Status.OK, "Récupération nocturne et contrôle du matin programmés (systemd).")
    crontab = _query(context, ["crontab", "-l"])
    if crontab is not None and crontab.returncode == 0 and "continuity pull" in crontab.stdout:
        return Check(name, Status.OK, "Récupération nocturne programmée (cron).")
    off = [timer for timer, state in states.items() if state != "enabled"]
    detail = (
        f"Minuteries non activées : {', '.join(f'{t} ({states[t]})' for t in off)}."
        if states
        else "Aucune récupération nocturne programmée (ni systemd ni cron)."
    )
    return Check(
        name,
        Status.WARNING,
        detail + " Les données ne seront pas mises à jour.",
        "sudo systemctl enable --now continuity-pull.timer continuity-status.timer "
        "(installation : sudo make install ; sans systemd : deploy/continuity.crontab).",
    )


def check_ownership(context: Context) -> Check:
    """Everything in the home belongs to the user the commands and units run as, and nobody else writes it."""
    name = "Propriétaire et droits des fichiers"
    home = context.home
    try:
        info = home.stat()
    except FileNotFoundError:
        return Check(name, Status.UNCHECKED, f"{home} n'existe pas encore.")
    me = os.geteuid()
    remedy_owner = (
        f"Lancer les commandes par « sudo continuity … » (elles passent par l'utilisateur du service), "
        f"puis rendre les fichiers à ce dernier : sudo chown -R continuity:continuity {home}"
    )
    if info.st_uid != me:
        return Check(
            name,
            Status.FAILED,
            f"{home} appartient à {_user_name(info.st_uid)}, mais cette vérification tourne sous "
            f"{_user_name(me)} : les tâches et l'interface n'y écriront pas.",
            remedy_owner,
        )
    foreign: list[str] = []
    writable: list[str] = []
    seen = 0
    for directory, subdirectories, files in os.walk(home):
        for entry in (*subdirectories, *files):
            seen += 1
            if seen > OWNERSHIP_SCAN_LIMIT:
                break
            path = Path(directory, entry)
            try:
                entry_info = path.lstat()
            except OSError:
                continue
            relative = str(path.relative_to(home))
            if entry_info.st_uid != me:
                foreign.append(f"{relative} ({_user_name(entry_info.st_uid)})")
            elif entry_info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(entry_info.st_mode):
                writable.append(relative)
    if foreign:
        return Check(name, Status.FAILED,
                     f"{len(foreign)} fichier(s) d'un autre propriétaire : {', '.join(foreign[:3])}.",
                     remedy_owner)  # fmt: skip
    if writable:
        return Check(
            name,
            Status.FAILED,
            f"{len(writable)} fichier(s) modifiable(s) par d'autres comptes : {', '.join(writable[:3])}.",
            f"sudo chmod -R go-w {home}",
        )
    if info.st_mode & 0o077:
        return Check(
            name,
            Status.WARNING,
            f"{home} est accessible aux autres comptes (droits {stat.S_IMODE(info.st_mode):04o}).",
            f"sudo chmod 700 {home}",
        )
    return Check(name, Status.OK, f"Tout appartient à {_user_name(me)}, dossier réservé (700).")


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_clock(context: Context) -> Check:
    name = "Horloge"
    references: list[tuple[str, dt.datetime]] = []
    head = Journal(context.home).head()
    if head is not None:
        references.append(("la dernière entrée du journal", head.time))
    try:
        created_at, _ = _snapshot_created_at(context.home)
    except ImportError:
        created_at = None
    if created_at is not None:
        references.append(("les dernières données reçues", created_at))
    if not references:
        return Check(name, Status.UNCHECKED, "Rien à comparer (ni journal ni données).")
    behind = [(what, moment) for what, moment in references if context.now + CLOCK_TOLERANCE < moment]
    shown = context.now.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
    if behind:
        what, moment = behind[0]
        later = moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
        return Check(
            name,
            Status.FAILED,
            f"L'horloge du poste ({shown}) est en retard sur {what} ({later}) : dates des ordonnances fausses.",
            "Remettre le poste à l'heure (date et heure système, synchronisation NTP) avant d'imprimer.",
        )
    synced = _query(context, ["timedatectl", "show", "--property=NTPSynchronized", "--value"])
    if synced is not None and synced.returncode == 0 and synced.stdout.strip() == "no":
        return Check(
            name,
            Status.WARNING,
            f"Heure du poste : {shown}, non synchronisée (NTP) : elle peut dériver.",
            "sudo timedatectl set-ntp true, et vérifier l'accès au serveur de temps.",
        )
    sync = " (synchronisée)" if synced is not None and synced.stdout.strip() == "yes" else ""
    return Check(name, Status.OK, f"Heure du poste : {shown}{sync}.")


CHECKS: Final[Sequence[Callable[[Context], Check]]] = (
    check_keyslots,
    check_publisher,
    check_snapshot,
    check_journal,
    check_journal_writable,
    check_printer,
    check_disk,
    check_clock,
    check_render,
    check_schedule,
    check_ownership,
)

_CHECK_NAMES: Final[dict[Callable[[Context], Check], str]] = {
    check_keyslots: "Accès du personnel (trousseau)",
    check_publisher: "Éditeur de confiance",
    check_snapshot: "Fraîcheur des données",
    check_journal: "Journal d'accès",
    check_journal_writable: "Journal inscriptible",
    check_printer: "Imprimante",
    check_disk: "Espace disque",
    check_clock: "Horloge",
    check_render: "Impression des ordonnances (PDF)",
    check_schedule: "Tâches programmées",
    check_ownership: "Propriétaire et droits des fichiers",
}


def run_checks(
    home: Path,
    *,
    now: dt.datetime | None = None,
    which: Callable[[str], str | None] = shutil.which,
    run: Runner = subprocess.run,
    render: Callable[[], bytes] = render_test_ordonnance,
) -> list[Check]:
    """Run every check; one failing check never stops the others."""
    context = Context(Path(home), now or dt.datetime.now(dt.UTC), which, run, render)
    results = []
    for check in CHECKS:
        try:
            results.append(check(context))
        except (ContinuityError, OSError, ValueError, KeyError) as error:
            message = error.message_fr if isinstance(error, ContinuityError) else str(error)
            results.append(
                Check(
                    _CHECK_NAMES[check],
                    Status.FAILED,
                    f"Vérification impossible : {message}",
                    "Appeler le support avec ce message.",
                )
            )
    return results


def checklist_text(checks: Sequence[Check]) -> str:
    """The checklist as printed by `continuity doctor`."""
    lines = ["Vérification du poste Continuity", ""]
    for check in checks:
        lines.append(f"[{check.status.label_fr:^11}] {check.name_fr} — {check.detail_fr}")
        if check.remedy_fr and check.status is not Status.OK:
            lines.append(f"{'':14}À faire : {check.remedy_fr}")
    failed = sum(check.status is Status.FAILED for check in checks)
    warnings = sum(check.status is Status.WARNING for check in checks)
    unchecked = sum(check.status is Status.UNCHECKED for check in checks)
    lines.append("")
    if failed:
        lines.append(f"{failed} point(s) en échec, {warnings} à surveiller, {unchecked} non vérifié(s).")
    elif warnings or unchecked:
        lines.append(f"Poste utilisable : {warnings} point(s) à surveiller, {unchecked} non vérifié(s).")
    else:
        lines.append("Tout est prêt.")
    return "\n".join(lines) + "\n"


def printer_check(*, which: Callable[[str], str | None] = shutil.which, run: Runner = subprocess.run) -> Check:
    """The printer check alone (the drill uses it)."""
    return check_printer(Context(Path("."), dt.datetime.now(dt.UTC), which, run, render_test_ordonnance))


def exit_code(checks: Sequence[Check]) -> int:
    """Monitoring-plugin convention: 2 when a check failed, 1 when one needs watching, else 0."""
    if any(check.status is Status.FAILED for check in checks):
        return 2
    return 1 if any(check.status is Status.WARNING for check in checks) else 0

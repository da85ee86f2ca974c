"""Self-check of everything an outage morning depends on, as a French checklist with what to do for each failure.

Each check returns a :class:`Check`: ``ok``, ``warning``, ``failed``, or ``unchecked`` when the check
could not be made (a module not installed, nothing to check yet) — never a false "OK". The checks only
read: no passphrase is asked, nothing is decrypted and nothing is journaled.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import shutil
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
            "Choisir l'imprimante par défaut : lpoptions -d NOM_DE_L_IMPRIMANTE.",
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
    return Check(name, Status.OK, f"Heure du poste : {shown}.")


CHECKS: Final[Sequence[Callable[[Context], Check]]] = (
    check_keyslots,
    check_publisher,
    check_snapshot,
    check_journal,
    check_journal_writable,
    check_printer,
    check_disk,
    check_clock,
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
}


def run_checks(
    home: Path,
    *,
    now: dt.datetime | None = None,
    which: Callable[[str], str | None] = shutil.which,
    run: Runner = subprocess.run,
) -> list[Check]:
    """Run every check; one failing check never stops the others."""
    context = Context(Path(home), now or dt.datetime.now(dt.UTC), which, run)
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
    return check_printer(Context(Path("."), dt.datetime.now(dt.UTC), which, run))

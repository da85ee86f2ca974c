"""État (F4): first, in words, how old the data is and until when it is valid; the technical details below.

Which snapshot is open, its counts, the publisher, pull attempts, kept files and the disk are for
whoever looks after the appliance; the receptionist needs the first lines.
"""

from __future__ import annotations

import datetime as dt

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from continuity import display
from continuity.session import AMBER_AFTER, PRACTICE_TZ, RED_AFTER, PullAttempt, StatusInfo, human_bytes
from continuity.tui.screens.base import SessionScreen
from continuity.tui.widgets.banner import Banner

COUNT_LABELS = {
    "patient": "Patients",
    "practitioner": "Praticiens",
    "allergy": "Allergies",
    "condition": "Pathologies",
    "treatment": "Traitements",
    "recent_prescription": "Prescriptions récentes",
    "measurement": "Mesures",
    "appointment": "Rendez-vous",
    "drug_product": "Médicaments (référence)",
    "drug_substance": "Substances",
    "drug_cip13": "Codes CIP13",
    "drug_resolution": "Lignes de traitement distinctes",
}


ATTEMPT_LABELS = {"accepted": "données reçues", "unchanged": "rien de nouveau", "not_modified": "rien de nouveau"}


def attempt_line(attempt: PullAttempt) -> str:
    """One pull attempt in French only (the reason's English code stays in the logs)."""
    when = display.fr_datetime(attempt.at.astimezone(PRACTICE_TZ)) if attempt.at else "date inconnue"
    if attempt.outcome in ATTEMPT_LABELS:
        return f"{when} : {ATTEMPT_LABELS[attempt.outcome]}"
    return f"{when} : refusé — {attempt.detail or 'raison inconnue (voir le journal du poste)'}"


def _remaining(until: dt.datetime, now: dt.datetime) -> str:
    seconds = int((until - now).total_seconds())
    if seconds < 3600:
        return display.plural(max(1, seconds // 60), "minute")
    if seconds < 48 * 3600:
        return display.plural(seconds // 3600, "heure")
    return display.plural(seconds // 86400, "jour")


def validity_text(info: StatusInfo, now: dt.datetime) -> list[str]:
    """The data's age and validity in plain French, what it means and what to do."""
    lines = [
        f"Données du cabinet « {info.practice_name} » du {display.fr_long_date(info.created_at)} ({info.age_text}).",
    ]
    if info.expires_at is None:
        lines.append("Date de fin de validité : non précisée (base de développement, non chiffrée).")
    elif now < info.expires_at:
        lines.append(f"Elles sont valables jusqu'au {display.fr_long_date(info.expires_at)}, "
                     f"soit encore {_remaining(info.expires_at, now)}.")
    else:
        lines.append(f"Elles ont expiré le {display.fr_long_date(info.expires_at)}. Elles restent consultables, "
                     "mais aucune donnée plus récente n'est arrivée : prévenez la personne responsable du poste.")
    age = now - info.created_at
    if age >= RED_AFTER:
        lines.append("Bandeau rouge : plus de 7 jours. Allergies, traitements et rendez-vous ont pu changer : "
                     "vérifiez tout avec le patient avant de prescrire.")
    elif age >= AMBER_AFTER:
        lines.append("Bandeau orange : plus de 36 heures, la récupération de la nuit n'a pas abouti. "
                     "Demandez au patient ce qui a pu changer.")
    else:
        lines.append("Bandeau bleu : données récentes. Une nouvelle récupération a lieu chaque nuit.")
    return lines


def status_text(info: StatusInfo, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    local = info.created_at.astimezone(PRACTICE_TZ)
    lines = [
        *validity_text(info, now),
        "",
        "DÉTAILS TECHNIQUES",
        f"Cabinet : {info.practice_name}",
        "Instantané : "
        + (f"n° {info.sequence}" if info.sequence is not None else "base non chiffrée (mode développement)"),
        f"Données du {display.fr_datetime(local)} ({info.age_text})",
    ]
    if info.expires_at is not None:
        lines.append(f"Fin de validité : {display.fr_datetime(info.expires_at)}")
    if info.fell_back_from:
        lines.append(f"⚠ Données les plus récentes illisibles : {info.fell_back_from}")
    lines.append("")
    lines.append("Contenu : " + ", ".join(f"{COUNT_LABELS.get(k, k)} {v}" for k, v in info.counts.items()))
    if info.export_notes:
        lines.append("À vérifier dans l'export : " + " ; ".join(info.export_notes))
    if info.publisher_fingerprints:
        lines.append("Empreinte de l'éditeur : " + ", ".join(info.publisher_fingerprints))
    lines.append("")
    lines.append("Dernières récupérations :")
    lines += [f"  {attempt_line(a)}" for a in info.pull_attempts[:8]] or ["  aucune enregistrée"]
    lines.append("Instantanés conservés :")
    lines += [f"  {name}" for name in info.kept_snapshots] or ["  aucun"]
    if info.home is not None:
        lines.append(f"Dossier : {info.home}")
        free, total = human_bytes(info.disk_free_bytes), human_bytes(info.disk_total_bytes)
        lines.append(f"Espace disque libre : {free} sur {total}")
    return "\n".join(lines)


class StatusScreen(SessionScreen):
    BINDINGS = [Binding("escape", "back", "Retour"), Binding("u", "reload", "Actualiser")]

    def compose(self) -> ComposeResult:
        yield Banner()
        with VerticalScroll(id="status-body"):
            yield Static(id="status-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one("#status-body").focus()

    def action_reload(self) -> None:
        session = self.session
        self.query_one("#status-text", Static).update(status_text(session.status(), session.now()))

    def action_back(self) -> None:
        self.app.pop_screen()

    def snapshot_switched(self) -> None:
        super().snapshot_switched()
        self.action_reload()

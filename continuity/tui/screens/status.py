"""État: which snapshot is open, its age and counts, the publisher, pull attempts, kept files, disk."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from continuity import display
from continuity.session import PRACTICE_TZ, StatusInfo, human_bytes, pull_attempt_line
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
}


def status_text(info: StatusInfo) -> str:
    local = info.created_at.astimezone(PRACTICE_TZ)
    lines = [
        f"Cabinet : {info.practice_name}",
        "Instantané : "
        + (f"n° {info.sequence}" if info.sequence is not None else "base non chiffrée (mode développement)"),
        f"Données du {display.fr_datetime(local)} ({info.age_text})",
    ]
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
    lines += [f"  {pull_attempt_line(a)}" for a in info.pull_attempts[:8]] or ["  aucune enregistrée"]
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
        self.query_one("#status-text", Static).update(status_text(self.session.status()))

    def action_back(self) -> None:
        self.app.pop_screen()

    def snapshot_switched(self) -> None:
        super().snapshot_switched()
        self.action_reload()

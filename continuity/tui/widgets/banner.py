"""The permanent degraded-mode banner: data age, practice, user; amber after 36 h, red after 7 days."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.widgets import Static

from continuity.session import BannerInfo, Freshness

if TYPE_CHECKING:
    from continuity.tui.app import ContinuityApp


def banner_text(info: BannerInfo, *, pending_sequence: int | None = None) -> str:
    """The banner's lines: headline, practice and user, then any notice (fallback, pull, new data)."""
    where = f" — poste : {info.desk}" if info.desk else ""  # an SSH desk (docs/desks.md)
    lines = [info.headline, f"{info.practice_name}{where} — utilisateur : {info.user}"]
    if info.freshness is Freshness.RED:
        lines[0] += " — DONNÉES DE PLUS DE 7 JOURS"
    elif info.freshness is Freshness.AMBER:
        lines[0] += " — données anciennes"
    notices = []
    if info.fell_back_from:
        notices.append("⚠ Les données les plus récentes sont illisibles : données précédentes affichées (F4)")
    if info.pull_notice:
        notices.append(f"⚠ {info.pull_notice}")
    if pending_sequence is not None:
        notices.append(f"Nouvelles données reçues (n° {pending_sequence}) : mise à jour dès que possible")
    return "\n".join(lines + notices)


class Banner(Static):
    """Shown on top of every unlocked screen; reads the app's session and refreshes every 30 s."""

    def __init__(self) -> None:
        super().__init__(markup=False)  # the practice name comes from the data

    DEFAULT_CSS = """
    Banner { dock: top; height: auto; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.refresh_info()
        self.set_interval(30, self.refresh_info)

    def refresh_info(self) -> None:
        app = cast("ContinuityApp", self.app)
        session = app.session
        if session is None or session.is_locked:
            return
        info = session.banner()
        self.update(banner_text(info, pending_sequence=app.pending_sequence))
        for level in Freshness:
            self.set_class(info.freshness is level, f"-{level.value}")

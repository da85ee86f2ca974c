"""What every unlocked screen shares: the banner on top, the footer, access to the app's session."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.screen import Screen

from continuity.session import Session, SessionLocked
from continuity.tui.widgets.banner import Banner

if TYPE_CHECKING:
    from continuity.tui.app import ContinuityApp


class SessionScreen(Screen[None]):
    """A screen that shows data of the unlocked session."""

    # May the app switch to a newer snapshot while this screen is on top (no half-typed form)?
    SAFE_FOR_SWITCH: ClassVar[bool] = True

    @property
    def capp(self) -> ContinuityApp:
        return cast("ContinuityApp", self.app)

    @property
    def session(self) -> Session:
        session = self.capp.session
        if session is None or session.is_locked:
            raise SessionLocked("the session is locked")
        return session

    def refresh_banner(self) -> None:
        for banner in self.query(Banner):
            banner.refresh_info()

    def snapshot_switched(self) -> None:
        """Called after the app switched to a newer snapshot: reload what the screen shows."""
        self.refresh_banner()

    def session_resumed(self) -> None:
        """Called when the same user unlocks again after an idle lock: the data is a new session's.

        By default the screen reloads as after a snapshot switch (a patient screen reopens its
        patient, which journals the access again); a screen holding a draft keeps it.
        """
        self.snapshot_switched()

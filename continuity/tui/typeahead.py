"""Type-ahead at unlock: the keys typed while the passphrase is checked, kept in order for the search.

A receptionist types the passphrase, Entrée, and straight away the patient's name, without waiting
for the second of decryption. The app starts keeping keys the moment the Entrée that submits the
passphrase reaches it: every key before it went to the passphrase field, every key after it is kept
here (never typed into the passphrase, never dropped by a disabled field) and replayed, in the order
typed, into the search field once it has the focus. A wrong passphrase drops them (they may be a
second try at the passphrase); an unlock that did not start gives them back to the unlock screen.
"""

from __future__ import annotations

from textual import events

# Keys that act at once even while keys are kept: quitting must always work.
NEVER_KEPT = frozenset({"ctrl+c", "ctrl+q"})


class TypeAhead:
    """The kept keys and whether new keys are being kept."""

    def __init__(self) -> None:
        self._keys: list[events.Key] = []
        self.capturing = False

    def start(self) -> None:
        """From now on, keys are kept (called as the Entrée that submits the passphrase arrives)."""
        self._keys = []
        self.capturing = True

    def keep(self, event: events.Key) -> bool:
        """Keep a key arriving at the app; False when it must be handled as usual."""
        if not self.capturing or event.key in NEVER_KEPT:
            return False
        self._keys.append(events.Key(event.key, event.character))
        return True

    def hold(self) -> None:
        """Stop keeping new keys (a dialog needs them) but keep those already kept."""
        self.capturing = False

    def take(self) -> list[events.Key]:
        """The kept keys, in the order typed; keeping stops."""
        keys, self._keys = self._keys, []
        self.capturing = False
        return keys

    def drop(self) -> None:
        """Forget the kept keys (a wrong passphrase: they may hold a second try at it)."""
        self._keys.clear()
        self.capturing = False

    @property
    def pending(self) -> bool:
        """Keys are kept, or will be (the passphrase is being checked)."""
        return bool(self._keys) or self.capturing

    @property
    def has_keys(self) -> bool:
        """Some keys were actually typed ahead (not merely: keeping has started)."""
        return bool(self._keys)

"""Small modal dialogs: help, a message to read, the acknowledgement of very old data."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
AIDE — toutes les touches

Partout (après déverrouillage)
  F1          cette aide
  F2          recherche de patient
  F3          agenda (rendez-vous du jour)
  F4          état des données (instantané, récupérations, disque)
  Ctrl+L      verrouiller (efface les données de la mémoire)
  Ctrl+Q      quitter
  Échap       retour à l'écran précédent

Recherche
  taper       nom, prénom, naissance (JJ/MM/AAAA, JJMMAAAA, AAAA) ou INS
  ↑ ↓         choisir un patient dans la liste
  Entrée      ouvrir le dossier surligné (le premier par défaut)
  Échap       effacer la recherche

Dossier patient
  o           ordonnance (traitements au long cours cochés ; Entrée : imprimer)
  p           imprimer le résumé du dossier
  ↑ ↓         faire défiler

Ordonnance (médecin prescripteur connecté ; l'accueil n'en établit pas)
  Espace      cocher [✓] / décocher [ ] la ligne surlignée ; les
              stupéfiants et les produits hospitaliers ne se cochent pas
  a           ajouter une ligne (DCI complétée d'après la référence,
              dosage, forme, voie, posologie, durée, ALD)
  Suppr       retirer une ligne ajoutée        v  choisir la voie
  m           faire signer un autre praticien du cabinet (journalisé)
  Entrée / p  imprimer ce que montre l'aperçu ; chaque alerte se
              confirme à part, en tapant ce qu'elle demande
  Échap       revenir (une ordonnance modifiée demande confirmation)

Agenda
  ← →         jour précédent / suivant     t  aujourd'hui
  Entrée      ouvrir le dossier du patient
  p           imprimer la liste du jour

Le poste se verrouille seul après quelques minutes sans activité.
Chaque dossier ouvert et chaque impression sont inscrits au journal.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q,enter", "dismiss", "Fermer")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: 100%; max-height: 40;
        border: thick $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Aide"
            scroll.border_subtitle = "↑ ↓ : défiler — Échap : fermer"
            yield Static(HELP_TEXT + "\nÉchap : fermer l'aide", markup=False)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class MessageScreen(ModalScreen[None]):
    """A message the user must read and close with Entrée or Échap (errors, refusals)."""

    BINDINGS = [Binding("escape,enter", "close", "Fermer")]

    DEFAULT_CSS = """
    MessageScreen { align: center middle; }
    MessageScreen > Vertical { width: 70; max-width: 100%; height: auto; border: thick $error;
        background: $surface; padding: 1 2; }
    MessageScreen .title { text-style: bold; color: $error; }
    """

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="title", markup=False)
            yield Static(self.body, markup=False)
            yield Static("\nEntrée : fermer")

    def action_close(self) -> None:
        self.dismiss(None)


class AcknowledgeOldData(ModalScreen[None]):
    """Data older than 7 days: shown once per snapshot, the user must say they read it."""

    BINDINGS = [Binding("enter", "close", "J'ai compris")]

    DEFAULT_CSS = """
    AcknowledgeOldData { align: center middle; }
    AcknowledgeOldData > Vertical { width: 70; max-width: 100%; height: auto; border: thick red;
        background: $surface; padding: 1 2; }
    """

    def __init__(self, headline: str) -> None:
        super().__init__()
        self.headline = headline

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("⚠ DONNÉES DE PLUS DE 7 JOURS", classes="title")
            yield Static(
                markup=False,
                content=f"{self.headline}\n\nLes allergies, traitements et rendez-vous ont pu changer depuis. "
                "Vérifiez auprès du patient avant toute prescription.\n\nEntrée : j'ai compris"
            )

    def action_close(self) -> None:
        self.dismiss(None)

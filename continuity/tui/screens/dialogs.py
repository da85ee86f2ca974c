"""Small modal dialogs: help, a message to read, a yes/no question, the acknowledgement of very old data."""

from __future__ import annotations

import textwrap

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from continuity import display

HELP_WIDTH = 72  # the help box is 80 wide at most, border and padding included


def _keys(rows: list[tuple[str, str]]) -> list[str]:
    lines = []
    for key, text in rows:
        wrapped = textwrap.wrap(text, HELP_WIDTH - 14)
        lines.append(f"  {key:<11} {wrapped[0]}")
        lines += [" " * 14 + more for more in wrapped[1:]]
    return lines


def _paragraph(text: str, indent: int = 2) -> list[str]:
    return textwrap.wrap(text, HELP_WIDTH, initial_indent=" " * indent, subsequent_indent=" " * indent)


def help_text(*, idle_minutes: float, print_folder: str, keep_days: int) -> str:
    """Every key, and the answers to what the desk asks on a bad day (the lock, printing, spelling...)."""
    if idle_minutes <= 0:
        lock = "Le poste ne se verrouille pas seul (réglage de ce poste) : Ctrl+L avant de le quitter."
    else:
        minutes = round(idle_minutes) if idle_minutes >= 1 else idle_minutes
        lock = (
            f"Sans activité pendant {display.fr_number(minutes)} minute{'s' if minutes >= 2 else ''}, le poste "
            "se verrouille seul ; une minute avant, un message prévient : appuyez sur une touche pour rester. "
            "En vous reconnectant dans la demi-heure, vous retrouvez le dossier ou l'ordonnance en cours ; "
            "une autre personne repart d'un écran vide."
        )
    lines = [
        "AIDE — toutes les touches",
        "",
        "Partout (après déverrouillage)",
        *_keys([
            ("F1", "cette aide"),
            ("F2", "nouvelle recherche de patient (efface la saisie)"),
            ("F3", "agenda (rendez-vous du jour)"),
            ("F4", "état des données : jusqu'à quand elles sont valables"),
            ("Ctrl+L", "verrouiller (efface les données de la mémoire)"),
            ("Ctrl+Q", "quitter (une confirmation est demandée)"),
            ("Échap", "retour à l'écran précédent"),
        ]),
        "",
        "Recherche",
        *_keys([
            ("taper", "nom, prénom, naissance (12/03/1958, 12/3/58, 12 mars 1958, 1958) ou INS ; "
                      "« Mme », « M. », « Dr » sont ignorés"),
            ("↑ ↓", "choisir un patient dans la liste"),
            ("Entrée", "ouvrir le dossier surligné (le premier par défaut)"),
            ("Échap", "effacer la recherche"),
        ]),
        "",
        *_paragraph(
            "L'orthographe peut être approximative : trait d'union ou espace, accents et majuscules ne "
            "comptent pas. Après les noms qui commencent comme la saisie viennent, sous la ligne "
            "« orthographe proche » et marqués ≈, les noms qui se prononcent pareil (Dupond / Dupont, "
            "Lefebvre / Lefèvre) ou à une faute de frappe près. Vérifiez alors le nom et la date de "
            "naissance."
        ),
        "",
        "Dossier patient",
        *_keys([
            ("o", "ordonnance (traitements au long cours cochés ; Entrée : imprimer)"),
            ("p", "imprimer le résumé du dossier"),
            ("↑ ↓", "faire défiler"),
        ]),
        "",
        "Ordonnance (médecin prescripteur connecté ; l'accueil n'en établit pas)",
        *_keys([
            ("Espace", "cocher [✓] / décocher [ ] la ligne surlignée ; les stupéfiants et les produits "
                       "hospitaliers ne se cochent pas"),
            ("a", "ajouter une ligne (DCI complétée d'après la référence, dosage, forme, voie, "
                  "posologie, durée, ALD)"),
            ("Suppr", "retirer une ligne ajoutée ; v : choisir la voie"),
            ("m", "faire signer un autre praticien du cabinet (journalisé)"),
            ("Entrée / p", "imprimer ce que montre l'aperçu ; chaque alerte se confirme à part, en "
                           "tapant ce qu'elle demande"),
            ("Échap", "revenir (une ordonnance modifiée demande confirmation)"),
        ]),
        "",
        "Agenda",
        *_keys([
            ("← →", "jour précédent / suivant ; t : aujourd'hui"),
            ("Entrée", "ouvrir le dossier du patient"),
            ("p", "imprimer la liste du jour"),
        ]),
        "",
        "Couleur du bandeau",
        *_keys([
            ("Bleu", "données de moins de 36 heures."),
            ("Orange", "données de plus de 36 heures : la récupération de la nuit n'a pas abouti. Elles "
                       "restent utilisables ; demandez au patient ce qui a pu changer (traitements, "
                       "allergies)."),
            ("Rouge", "données de plus de 7 jours : allergies, traitements et rendez-vous ont pu changer. "
                      "Vérifiez tout avec le patient avant de prescrire, et prévenez la personne "
                      "responsable du poste."),
        ]),
        "",
        "Verrouillage",
        *_paragraph(lock),
        "",
        "Sans imprimante",
        *_paragraph(
            "Si aucune imprimante ne répond, le document (ordonnance, résumé, liste des rendez-vous) "
            "est enregistré dans le dossier :"
        ),
        f"    {print_folder}",
        *_paragraph(
            "Le message dit quel fichier. Sur l'ordinateur de Continuity, copiez-le sur une clé USB et "
            "imprimez-le depuis un autre "
            f"ordinateur. Ces fichiers sont effacés automatiquement après {keep_days} jours."
        ),
        "",
        "Phrase de passe oubliée",
        *_paragraph(
            "Elle ne peut pas être retrouvée : elle n'est écrite nulle part. Demandez à un collègue de "
            "déverrouiller le poste avec la sienne, puis à la personne responsable du poste de vous en "
            "créer une nouvelle. Après 5 essais incorrects, il faut patienter un peu plus avant chaque "
            "nouvel essai."
        ),
        "",
        "Chaque dossier ouvert et chaque impression sont inscrits au journal.",
    ]
    return "\n".join(lines) + "\n"


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q,enter", "dismiss", "Fermer")]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: 100%; max-height: 60;
        border: thick $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "Aide"
            scroll.border_subtitle = "↑ ↓ : défiler — Échap : fermer"
            yield Static(self.text + "\nÉchap : fermer l'aide", markup=False)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A question with two answers: `o` (oui) does it, Échap or `n` does not."""

    BINDINGS = [
        Binding("o", "answer(True)", "Oui"),
        Binding("escape,n", "answer(False)", "Non"),
    ]

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 70; max-width: 100%; height: auto; border: thick $warning;
        background: $surface; padding: 1 2; }
    ConfirmScreen .title { text-style: bold; color: $warning; }
    """

    def __init__(self, title: str, body: str, *, yes: str, no: str, purpose: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.yes = yes
        self.no = no
        self.purpose = purpose

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="title", markup=False)
            yield Static(self.body, markup=False)
            yield Static(f"\n{self.yes}    {self.no}", markup=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


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

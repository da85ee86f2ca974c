"""Render the printed forms (forms/*.html) to PDF with Jinja2 and weasyprint, fetching nothing outside forms/.

Patient data reaches the templates only as autoescaped text without control or bidi characters
(`printed.paper_text`, the environment's finalize), and weasyprint's URL fetcher refuses
every URL that is not a file inside forms/: a hostile name such as `<img src=http://...>` prints as
those characters and can never make the appliance fetch anything. The template environment, the
parsed stylesheets and the font configuration are built once per process so warm renders are fast.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from continuity import display
from continuity.errors import RenderError
from continuity.model import PatientSummary, Prescription
from continuity.prescribing import printed, rules

log = logging.getLogger(__name__)

# The forms ship inside the package (package data), so a wheel install renders exactly like a checkout.
# Setuptools installs package data as plain files; `Path(str(...))` keeps the on-disk path the
# url_fetcher confines weasyprint to.
FORMS_DIR = Path(str(importlib.resources.files("continuity") / "forms")).resolve()

# Which stylesheets each form uses; any other template gets common.css (the journal's lists do).
STYLESHEETS: Mapping[str, tuple[str, ...]] = {
    "ordonnance.html": ("common.css", "prescription.css"),
    "bizone.html": ("common.css", "prescription.css"),
    "summary.html": ("common.css", "summary.css"),
}
DEFAULT_STYLESHEETS = ("common.css",)


# One render at a time: the TUI renders from worker threads and the shared FontConfiguration (pango,
# fontconfig state) is not documented as thread-safe. A render takes tens of milliseconds.
_RENDER_LOCK = threading.Lock()


class ForbiddenFetch(ValueError):
    """A URL outside forms/ was requested: refused (weasyprint logs it and renders without it)."""


@functools.cache
def _weasyprint() -> Any:
    # Imported lazily: importing weasyprint costs ≈ 0.5 s (cffi parses pango's declarations,
    # fontTools loads its subsetter) that the CLI's other commands never need. See warm_up().
    import weasyprint
    import weasyprint.text.fonts
    import weasyprint.urls

    return weasyprint


@functools.cache
def url_fetcher() -> Any:
    """The process-wide fetcher that only serves files inside forms/."""
    urls = _weasyprint().urls

    class FormsOnlyFetcher(urls.URLFetcher):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("file",), allow_redirects=False)
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            path = _forms_path(url)
            if path is None:
                # Kept for tests and diagnosis; bounded, the fetcher lives as long as the process.
                del self.refused[:-99]
                self.refused.append(url)
                log.warning("refused to fetch %r: only files inside %s are allowed", url[:200], FORMS_DIR)
                raise ForbiddenFetch(f"refused: {url[:200]}")
            return urls.URLFetcherResponse(url, body=path.read_bytes())

    return FormsOnlyFetcher()


def _forms_path(url: str) -> Path | None:
    """The file inside forms/ that a file: URL names, or None for anything else."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query:
        return None
    try:
        path = Path(unquote(parts.path)).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(FORMS_DIR) or not path.is_file():
        return None
    return path


def _paper_value(value: Any) -> Any:
    """Every value a template prints loses its control and bidi characters (the ordonnance's strings
    already have; the summary and the other forms print record fields directly). Markup is a macro's
    output, made of values that went through here already: left as it is (its newlines are layout)."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return printed.paper_text(value)
    return value


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(FORMS_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_paper_value,
    )
    env.filters["date_fr"] = printed.date_fr
    env.filters["datetime_fr"] = display.fr_datetime
    env.globals["count_label"] = display.count_label
    return env


@functools.cache
def font_config() -> Any:
    return _weasyprint().text.fonts.FontConfiguration()


@functools.cache
def stylesheet(name: str) -> Any:
    weasyprint = _weasyprint()
    path = FORMS_DIR / name
    return weasyprint.CSS(
        string=path.read_text(encoding="utf-8"),
        base_url=path.as_uri(),
        url_fetcher=url_fetcher(),
        font_config=font_config(),
    )


def warm_up() -> None:
    """Pay the cold-start cost ahead of time (import weasyprint ≈ 0.5–1 s, fonts, stylesheets).

    Meant for a background thread right after unlock, so the first ordonnance prints as fast as the
    next ones. Safe to call more than once or concurrently with a render.
    """
    with _RENDER_LOCK:
        for names in {*STYLESHEETS.values(), DEFAULT_STYLESHEETS}:
            for name in names:
                stylesheet(name)
        environment().get_template("_page.html")


def _stylesheets(template_name: str) -> list[Any]:
    return [stylesheet(name) for name in STYLESHEETS.get(template_name, DEFAULT_STYLESHEETS)]


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _collect_weasyprint_warnings() -> Iterator[_WarningCollector]:
    collector = _WarningCollector()
    logger = logging.getLogger("weasyprint")
    logger.addHandler(collector)
    try:
        yield collector
    finally:
        logger.removeHandler(collector)


def html_for(template_name: str, context: Mapping[str, Any]) -> str:
    try:
        return environment().get_template(template_name).render(**context)
    except jinja2.TemplateError as error:
        raise RenderError(f"template {template_name}: {error}") from error


def _document(template_name: str, context: Mapping[str, Any]) -> Any:
    weasyprint = _weasyprint()
    html = weasyprint.HTML(
        string=html_for(template_name, context),
        base_url=(FORMS_DIR / template_name).as_uri(),
        url_fetcher=url_fetcher(),
    )
    return html.render(font_config=font_config(), stylesheets=_stylesheets(template_name))


def render_documents(parts: Sequence[tuple[str, Mapping[str, Any]]]) -> bytes:
    """Render several template runs into one PDF, each part numbering its own pages.

    Each part is rendered once without page numbers; a part that spills over is rendered again with
    `page_numbers=True` ("page 1/2" and the running header) and `page_total`, so that every page but
    the last says more follows — the margin boxes do not change the page area, so the page count stays
    the same.
    """
    pages: list[Any] = []
    first: Any = None
    with _RENDER_LOCK, _collect_weasyprint_warnings() as warnings:
        try:
            for template_name, context in parts:
                document = _document(template_name, {**context, "page_numbers": False})
                if len(document.pages) > 1:
                    document = _document(template_name, {**context, "page_numbers": True,
                                                          "page_total": len(document.pages)})
                first = first or document
                pages.extend(document.pages)
            pdf = first.copy(pages).write_pdf()
        except RenderError:
            raise
        except Exception as error:  # weasyprint raises many kinds; none may escape as a crash
            raise RenderError(f"weasyprint failed: {type(error).__name__}: {error}") from error
    for message in warnings.messages:
        log.warning("weasyprint: %s", message)
    if not isinstance(pdf, bytes):  # pragma: no cover - write_pdf() without target returns bytes
        raise RenderError("weasyprint returned no PDF")
    return pdf


def render_form(template_name: str, context: Mapping[str, Any]) -> bytes:
    """Render any template in forms/ with `context` (autoescaped, strict) to PDF bytes.

    Templates extend `_page.html` to get the A4 page, the footer with `snapshot_line` (required
    there: the age of the data is on every printout) and the drill mark when `drill` is true.
    """
    return render_documents([(template_name, {"drill": False, **context})])


def render_prescription(
    prescription: Prescription,
    *,
    snapshot_created_at: dt.datetime,
    duplicate: bool = False,
    drill: bool = False,
    footer: bool = True,
) -> bytes:
    """The ordonnance (standard or bizone, chosen by the lines), optionally followed by its duplicate.

    Raises PrescriptionRefused if the prescription should never have been built (see
    `rules.assert_printable`), RenderError if weasyprint fails.
    """
    rules.assert_printable(prescription)
    form = printed.printed_form(prescription, snapshot_created_at=snapshot_created_at, footer=footer)
    context: dict[str, Any] = {
        "form": form,
        "drill": drill,
        "drill_mention": printed.DRILL_MENTION,
        "duplicate": False,
        "duplicate_mention": printed.DUPLICATE_MENTION,
        "title": "Ordonnance",
        "snapshot_line": form.footer_line,
    }
    parts: list[tuple[str, Mapping[str, Any]]] = [(form.template, context)]
    if duplicate:
        parts.append((form.template, {**context, "duplicate": True}))
    return render_documents(parts)


def render_summary(summary: PatientSummary, *, snapshot_created_at: dt.datetime, practice_name: str,
                   drill: bool = False) -> bytes:
    """The patient summary hand-out: identity, allergies first, conditions, treatments, measures.

    `drill` marks every page "EXERCICE — NE PAS DÉLIVRER" (a reception drill prints this)."""
    patient = summary.patient
    now = dt.datetime.now(dt.UTC)
    weight = summary.latest("weight")
    height = summary.latest("height")
    context = {
        "title": "Résumé du dossier",
        "practice_name": practice_name,
        "patient_name": display.patient_name(patient),
        "born": display.born_label(patient) if patient.birth_date else "date de naissance inconnue",
        "patient": patient,
        "summary": summary,
        "weight": weight,
        "height": height,
        "printed_at": display.fr_datetime(now),
        "snapshot_line": (
            f"Données du dossier : instantané du {display.fr_datetime(snapshot_created_at)} — "
            "elles peuvent être incomplètes ou ne pas refléter les derniers changements."
        ),
        "number": display.fr_number,
        "drill": drill,
        "drill_mention": printed.DRILL_MENTION,
    }
    return render_form("summary.html", context)


def render_checkpoint(fields: Mapping[str, str]) -> bytes:
    """The paper copy of the journal's last signed checkpoint (journal.checkpoint_fields gives the fields)."""
    return render_form(
        "checkpoint.html",
        {
            "title": "Point de contrôle du journal d'accès",
            "fields": fields,
            "snapshot_line": "Copie papier d'un point de contrôle signé : à conserver hors du poste.",
        },
    )

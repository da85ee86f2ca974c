"""The `continuity` command line: parses options, calls the library, turns errors into exit codes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from continuity import display
from continuity.errors import ContinuityError

if TYPE_CHECKING:
    from continuity.snapshotdb import SearchResult, SnapshotDB

log = logging.getLogger("continuity")


class ContinuityGroup(click.Group):
    """A click group that turns ContinuityError into a clean message and its documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ContinuityError as error:
            # Precise English detail for the log and the administrator, French for the person at the desk.
            log.error("%s: %s", type(error).__name__, error)
            click.echo(f"Erreur : {error.message_fr}", err=True)
            click.echo(f"  détail : {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=ContinuityGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")
def cli(verbose: bool) -> None:
    """Continuity: read patient summaries and print emergency ordonnances while the practice software is down."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@cli.group(cls=ContinuityGroup)
def publisher() -> None:
    """Platform side: generate, build and publish snapshots."""


def main() -> None:
    cli(prog_name="continuity")


# Each area registers its commands in its own module section below, so the file stays easy to read.
# --- foundation: synth, build, search, show ------------------------------------------------------


@publisher.command("build")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Database file to write.")
@click.option("--strict", is_flag=True, help="Fail on the first bad resource instead of skipping it.")
@click.option("--practice", "practice_id", help="Practice identifier (default: from the export).")
def publisher_build(sources: tuple[Path, ...], out: Path, strict: bool, practice_id: str | None) -> None:
    """Build a snapshot database from FHIR R4 sources (Bundles, resources, Bulk NDJSON folders)."""
    from continuity import snapshotdb

    result = snapshotdb.build(list(sources), out, strict=strict, practice_id=practice_id)
    for table, count in result.counts.items():
        click.echo(f"{table:20} {count:>9}")
    report = result.report
    if report is not None and report.problems:
        click.echo(f"{len(report.problems)} resource(s) skipped:", err=True)
        for problem in report.problems[:50]:
            click.echo(f"  {problem.source} {problem.location} {problem.resource}: {problem.message}", err=True)
    click.echo(f"wrote {out}")


def _search_row(result: SearchResult, today: dt.date) -> dict[str, object]:
    patient = result.patient
    return {
        "id": patient.id,
        "birth_name": patient.birth_name,
        "used_name": patient.used_name,
        "given_names": list(patient.birth_given_names),
        "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
        "age": patient.age_on(today),
        "sex": patient.sex.value,
        "identity_status": patient.identity_status.value,
        "ins": patient.ins,
        "homonyms": result.homonyms,
        "exact": result.exact,
    }


@cli.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--db", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A plain snapshot database.")
@click.option("--limit", default=20, show_default=True, help="Maximum number of results.")
@click.option("--json", "as_json_output", is_flag=True, help="Print a JSON list.")
def search_command(query: tuple[str, ...], db: Path | None, limit: int, as_json_output: bool) -> None:
    """Find patients by name(s), birth date (JJ/MM/AAAA, JJMMAAAA, AAAA) or INS."""
    snapshot = _open_for_reading(db)
    today = dt.date.today()
    results = snapshot.search(" ".join(query), limit=limit)
    if as_json_output:
        click.echo(json.dumps([_search_row(r, today) for r in results], ensure_ascii=False, indent=2))
        return
    if not results:
        click.echo("Aucun patient trouvé.")
        return
    for result in results:
        warning = "  ⚠ Homonyme : vérifier la date de naissance" if result.homonyms else ""
        status = display.IDENTITY_STATUS_FR[result.patient.identity_status]
        click.echo(
            f"{result.patient.id:14} {display.identity_line(result.patient)} "
            f"({display.age_label(result.patient, today)}) [{status}]{warning}"
        )


@cli.command("show")
@click.argument("patient_id")
@click.option("--db", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A plain snapshot database.")
@click.option("--json", "as_json_output", is_flag=True, help="Print the summary as JSON.")
def show_command(patient_id: str, db: Path | None, as_json_output: bool) -> None:
    """Show one patient's summary: identity, allergies, conditions, treatments, appointments."""
    snapshot = _open_for_reading(db)
    summary = snapshot.summary(patient_id)
    if as_json_output:
        payload = display.as_json(summary)
        payload["homonyms"] = snapshot.homonyms(patient_id)
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    click.echo(display.summary_text(summary, homonyms=snapshot.homonyms(patient_id), today=dt.date.today()))


def _open_for_reading(db: Path | None) -> SnapshotDB:
    from continuity import snapshotdb

    if db is None:
        raise click.UsageError("--db is required until the appliance store is set up (continuity init)")
    return snapshotdb.open_file(db)

# --- transport: keygen, init, staff, trust, publish, pull, watch, status ---------------------------
# --- ordonnances: prescribe, summary --------------------------------------------------------------
# --- journal: journal verify/export/access/checkpoint, drill, doctor ------------------------------
# --- tui, demo ------------------------------------------------------------------------------------

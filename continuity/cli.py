"""The `continuity` command line: parses options, calls the library, turns errors into exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from continuity.errors import ContinuityError

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
# --- transport: keygen, init, staff, trust, publish, pull, watch, status ---------------------------
# --- ordonnances: prescribe, summary --------------------------------------------------------------
# --- journal: journal verify/export/access/checkpoint, drill, doctor ------------------------------
# --- tui, demo ------------------------------------------------------------------------------------

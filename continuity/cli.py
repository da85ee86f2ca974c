"""The `continuity` command line: parses options, calls the library, turns errors into exit codes."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from continuity import display
from continuity.errors import ContinuityError

if TYPE_CHECKING:
    from continuity.journal import Journal
    from continuity.model import PatientSummary
    from continuity.session import Session
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


# --- shared: unlock options for every command that reads patient data (transport owns these) ---


def read_passphrase(passphrase_file: Path | None, *, prompt: str = "Phrase de passe", confirm: bool = False) -> str:
    """The first line of `passphrase_file` (trailing newline removed), or an interactive hidden prompt."""
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            message = f"cannot read {passphrase_file}: {error}"
            raise click.BadParameter(message, param_hint="--passphrase-file") from error
        return text.splitlines()[0] if text else ""
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    return value


def unlock_options(function: Any) -> Any:
    """`--home`, `--user`, `--passphrase-file`: open the current snapshot with a staff keyslot."""
    function = click.option(
        "--passphrase-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Read the passphrase from this file (first line) instead of asking.",
    )(function)
    function = click.option("--user", help="Staff login (asked if missing).")(function)
    function = click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        help="Appliance home (default: CONTINUITY_HOME, or snapshots/ in a checkout).",
    )(function)
    return function


class OpenedSnapshot:
    """What a command reads from: the snapshot, and the session that journals every access to it.

    The session is None only for a `--db` development database on a home that was never
    initialised (no appliance key to seal journal details to): the command says so on stderr.
    """

    def __init__(self, db: SnapshotDB, session: Session | None) -> None:
        self.db = db
        self.session = session

    @property
    def journal(self) -> Journal | None:
        return self.session.journal if self.session else None

    @property
    def sequence(self) -> int | None:
        return self.session.sequence if self.session else None

    def view(self, patient_id: str) -> PatientSummary:
        """The patient's summary, journaled (view_patient) before it is read, as in the TUI."""
        if self.session is None:
            return self.db.summary(patient_id)
        return self.session.open_patient(patient_id).summary

    def close(self) -> None:
        if self.session is not None:
            self.session.lock(reason="cli")
        else:
            self.db.close()


def open_snapshot(
    db: Path | None, user: str | None, passphrase_file: Path | None, *, home: Path | None = None
) -> OpenedSnapshot:
    """`--db` (a plain database, development) or unlock: keyslot → newest good stored snapshot."""
    from continuity import keys, snapshotdb, store
    from continuity.journal import Journal
    from continuity.session import Session

    home = home or store.default_home()
    initialised = (home / keys.APPLIANCE_PUB).is_file()
    if db is not None:
        database = snapshotdb.open_file(db)
        if not initialised:
            click.echo(
                "ATTENTION : base de développement (--db) sur un poste non initialisé : "
                "ce qui est consulté ou imprimé n'est pas journalisé.",
                err=True,
            )
            return OpenedSnapshot(database, None)
        return OpenedSnapshot(database, Session.from_database(database, _login(db, user), Journal(home), home=home))
    login = _login(None, user)
    session = Session.unlock(home, login, read_passphrase(passphrase_file))
    banner = session.banner()
    if banner.fell_back_from:
        click.echo(
            f"ATTENTION : l'instantané le plus récent est inutilisable ; données plus anciennes affichées "
            f"({banner.fell_back_from}).",
            err=True,
        )
    click.echo(f"Données du {display.fr_datetime(banner.created_at.astimezone(display.PRACTICE_TZ))} "
               f"(instantané n° {banner.sequence}).", err=True)
    return OpenedSnapshot(session.db, session)


def _login(db: Path | None, user: str | None) -> str:
    """The login the journal records: asked before unlocking; for a `--db` database, the system user."""
    if user:
        return user
    if db is None:
        return str(click.prompt("Utilisateur", err=True))
    import getpass

    return getpass.getuser() or "dev"


# Each area registers its commands in its own module section below, so the file stays easy to read.
# --- foundation: synth, build, search, show ------------------------------------------------------


@publisher.command("synth")
@click.option("--patients", default=2000, show_default=True, type=click.IntRange(min=25), help="Number of patients.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write.")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Day the appointments and ages are anchored on (default: today).",
)
def publisher_synth(patients: int, seed: int, out: Path, today: dt.datetime | None) -> None:
    """Write a synthetic French practice as a FHIR R4 Bulk Data export (one NDJSON file per type)."""
    from continuity import synth

    summary = synth.write_practice(out, patients=patients, seed=seed, today=today.date() if today else None)
    for kind, count in summary.counts.items():
        click.echo(f"{kind:20} {count:>9}")
    click.echo(f"{'total':20} {sum(summary.counts.values()):>9}")
    click.echo(f"demo practitioner RPPS {summary.demo_practitioner_rpps}")
    click.echo(f"wrote {out}")


def _import_options(function: Any) -> Any:
    """`--report`, `--max-rejected`, `--allow-rejected`: the import report and its gate."""
    function = click.option(
        "--allow-rejected", is_flag=True, help="Publish even when more than --max-rejected was rejected."
    )(function)
    function = click.option(
        "--max-rejected", default=5.0, show_default=True, type=click.FloatRange(0, 100),
        help="Largest share (%) of the resources read that may be rejected as errors of the export.",
    )(function)
    function = click.option(
        "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
        help="Write the whole import report (JSON, with examples naming files, lines and ids) to this file.",
    )(function)
    return function


def _show_report(build: Any, report_path: Path | None) -> None:
    """The import report at the end of a build: printed, and written whole with --report."""
    report = getattr(build, "report", None)
    if report is None:
        return
    for line in report.text():
        click.echo(line)
    if report.problems:
        click.echo(f"{len(report.problems)} resource(s) refused:", err=True)
        for problem in report.problems[:50]:
            click.echo(f"  {problem}", err=True)
    for warning in build.warnings[:50]:
        click.echo(f"  {warning}", err=True)
    if report_path is not None:
        # Its examples name resources (ids, sometimes a value): readable by the publisher's account only.
        descriptor = os.open(report_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n")
        click.echo(f"import report written to {report_path}")


@publisher.command("build")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Database file to write.")
@click.option("--strict", is_flag=True, help="Fail on the first bad resource instead of skipping it.")
@click.option("--practice", "practice_id", help="Practice identifier (default: from the export).")
@_import_options
def publisher_build(
    sources: tuple[Path, ...],
    out: Path,
    strict: bool,
    practice_id: str | None,
    report_path: Path | None,
    max_rejected: float,
    allow_rejected: bool,
) -> None:
    """Build a snapshot database from FHIR R4 sources (Bundles, resources, Bulk NDJSON folders)."""
    from continuity import publish
    from continuity.errors import ExportRefused

    try:
        result = publish.build(
            list(sources),
            out,
            strict=strict,
            practice_id=practice_id,
            max_rejected=max_rejected / 100,
            allow_rejected=allow_rejected,
        )
    except ExportRefused as refused:
        _show_report(refused.build, report_path)
        raise
    for table, count in result.counts.items():
        click.echo(f"{table:20} {count:>9}")
    _show_report(result, report_path)
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
        "score": result.score,
    }


@cli.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("--db", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A plain snapshot database.")
@click.option("--limit", default=20, show_default=True, help="Maximum number of results.")
@click.option("--json", "as_json_output", is_flag=True, help="Print a JSON list.")
@unlock_options
def search_command(
    query: tuple[str, ...],
    db: Path | None,
    limit: int,
    as_json_output: bool,
    home: Path | None,
    user: str | None,
    passphrase_file: Path | None,
) -> None:
    """Find patients by name(s), birth date (JJ/MM/AAAA, JJMMAAAA, AAAA) or INS."""
    opened = open_snapshot(db, user, passphrase_file, home=home)
    today = dt.date.today()
    try:
        results = opened.db.search(" ".join(query), limit=limit)
    finally:
        opened.close()
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
@unlock_options
def show_command(
    patient_id: str,
    db: Path | None,
    as_json_output: bool,
    home: Path | None,
    user: str | None,
    passphrase_file: Path | None,
) -> None:
    """Show one patient's summary: identity, allergies, conditions, treatments, appointments."""
    opened = open_snapshot(db, user, passphrase_file, home=home)
    try:
        summary = opened.view(patient_id)
        homonyms = opened.db.homonyms(patient_id)
    finally:
        opened.close()
    if as_json_output:
        payload = display.as_json(summary)
        payload["homonyms"] = homonyms
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    click.echo(display.summary_text(summary, homonyms=homonyms, today=dt.date.today()))


# --- transport: keygen, init, staff, trust, publish, pull, watch, status ---------------------------


def _default_home(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    from continuity import store

    return value if value is not None else store.default_home()


_home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    callback=_default_home,
    help="Appliance home (default: CONTINUITY_HOME, or snapshots/ in a checkout).",
)


@publisher.command("keygen")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Key pair directory.")
def publisher_keygen(out: Path) -> None:
    """Make the publisher's Ed25519 signing key (publisher.key, 0600) and publisher.pub."""
    from continuity import keys

    fingerprint = keys.generate_publisher_key(out)
    click.echo(f"publisher key:  {out / 'publisher.key'}  (secret: keep it off the appliances)")
    click.echo(f"public key:     {out / 'publisher.pub'}  (give it to each appliance: continuity trust)")
    click.echo(f"fingerprint:    {fingerprint}")


@publisher.command("publish")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="publisher.key, or the directory holding it.")
@click.option("--recipient", "recipients", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An appliance.pub; repeat for each appliance of the practice.")
@click.option("--practice", "practice_id", required=True, help="Practice identifier.")
@click.option("--seq", "sequence_text", required=True, metavar="N|auto",
              help="Sequence number, strictly greater than the previous publication; `auto`: the next one "
                   "after the last publication recorded in the state.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The record of this practice's publications (default: publish-state.json beside the key).")
@click.option("--max-shrink", default=10.0, show_default=True, type=click.FloatRange(0, 100),
              help="Largest drop (%) of the patient count from the previous publication.")
@click.option("--allow-shrink", is_flag=True, help="Publish even when the patient count dropped by more.")
@click.option("--expires-in", default="48h", show_default=True, help="Validity (e.g. 48h, 7d); at most 31d.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Snapshot file to write.")
@click.option("--strict", is_flag=True, help="Fail on the first bad resource instead of skipping it.")
@_import_options
def publisher_publish(
    sources: tuple[Path, ...],
    key_path: Path,
    recipients: tuple[Path, ...],
    practice_id: str,
    sequence_text: str,
    state_path: Path | None,
    max_shrink: float,
    allow_shrink: bool,
    expires_in: str,
    out: Path,
    strict: bool,
    report_path: Path | None,
    max_rejected: float,
    allow_rejected: bool,
) -> None:
    """Build the snapshot database, check it, compress it, seal it to each appliance and sign it."""
    from continuity import keys, publish
    from continuity.errors import ExportRefused

    if sequence_text.strip().lower() == "auto":
        sequence: int | None = None
    elif sequence_text.strip().isdigit() and 1 <= int(sequence_text) < 1 << 53:
        sequence = int(sequence_text)
    else:
        raise click.BadParameter(f"{sequence_text!r} is not a sequence number or `auto`", param_hint="--seq")
    signing_key = keys.load_publisher_signing_key(key_path)
    public_keys = [keys.load_appliance_public_key(path) for path in recipients]
    state = publish.PublisherState(state_path) if state_path else publish.PublisherState.beside_key(key_path)
    try:
        result = publish.publish(
            list(sources),
            out,
            signing_key=signing_key,
            recipients=public_keys,
            practice_id=practice_id,
            sequence=sequence,
            expires_in=publish.parse_duration(expires_in),
            strict=strict,
            state=state,
            max_shrink=max_shrink / 100,
            allow_shrink=allow_shrink,
            max_rejected=max_rejected / 100,
            allow_rejected=allow_rejected,
        )
    except ExportRefused as refused:
        _show_report(refused.build, report_path)
        raise
    header = result.header
    for table, count in header.counts.items():
        click.echo(f"{table:20} {count:>9}")
    _show_report(result.build, report_path)
    click.echo(
        f"wrote {out}: sequence {header.sequence}, {header.total_length} bytes, "
        f"{len(header.recipients)} recipient(s), expires {envelope_time(header.expires_at)}, "
        f"signed by {header.signer_fingerprint}"
    )


def envelope_time(value: dt.datetime) -> str:
    from continuity import envelope

    return envelope.format_time(value)


_ROLE_CHOICE = click.Choice(["prescriber", "reception"])


@cli.command("init")
@_home_option
@click.option("--user", required=True, help="The first staff login.")
@click.option("--role", type=_ROLE_CHOICE, default="reception", show_default=True,
              help="prescriber (issues ordonnances, manages staff) or reception.")
@click.option("--rpps", help="The prescriber's RPPS number (11 digits).")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the passphrase from this file (first line) instead of asking.")
def init_command(home: Path, user: str, role: str, rpps: str | None, passphrase_file: Path | None) -> None:
    """Create the appliance home, its key pair and the first staff keyslot."""
    from continuity import keys, staff, store

    keys.make_member(user, role, rpps)  # refuse a bad name, role or RPPS before asking anything
    passphrase = read_passphrase(passphrase_file, prompt="Nouvelle phrase de passe", confirm=True)
    keys.check_passphrase(passphrase)
    store.Store(home).create()
    staff.initialise(home, user, passphrase, role=role, rpps=rpps)
    public = keys.appliance_public_key(home)
    click.echo(f"appliance home:        {home}")
    click.echo(f"appliance public key:  {home / keys.APPLIANCE_PUB}  (send it to the publisher)")
    click.echo(f"fingerprint:           {keys.fingerprint(bytes(public))}")
    click.echo(f"administration key:    {keys.fingerprint(bytes(keys.admin_verify_key(home)))}  (write it down)")
    click.echo(f"first staff member:    {user} ({keys.ROLE_LABELS_FR[keys.Role(role)]})")
    if role != "prescriber":
        click.echo("note: the first prescriber you add takes over staff management from this member.")
    click.echo("next: continuity trust PUBLISHER.pub   (check its fingerprint with the publisher by phone)")


@cli.group(cls=ContinuityGroup)
def staff() -> None:
    """Staff keyslots and roles: one per person, no shared accounts."""


@staff.command("list")
@_home_option
def staff_list(home: Path) -> None:
    """List the staff members who can unlock this appliance, with their role."""
    from continuity import keys

    for name, member in keys.members_with_slots(home):
        if member is None:
            click.echo(f"{name:<32} REFUSÉ (absent de la liste signée du personnel)")
        elif member.rpps:
            click.echo(f"{name:<32} {member.role_fr:<13} RPPS {member.rpps}")
        else:
            click.echo(f"{name:<32} {member.role_fr}")


def _administrator(home: Path, user: str, passphrase_file: Path | None, command: str) -> Any:
    """Unlock `user` for a staff change; refuse (and say so) unless their slot administers staff."""
    from continuity.errors import StaffError
    from continuity.session import authenticate

    opened = authenticate(home, user, read_passphrase(passphrase_file, prompt=f"Phrase de passe de {user}"),
                          command=command)
    if not opened.can_manage_staff:
        from continuity.journal import Action, Journal

        Journal(home).append(user=user, action=Action.STAFF_REFUSED,
                             details={"command": command, "role": opened.member.role.value})
        raise StaffError(
            f"{user} ({opened.member.role.value}) cannot change staff: prescribers only",
            message_fr="Seul un prescripteur peut ajouter ou retirer un membre du personnel.",
        )
    return opened


@staff.command("add")
@_home_option
@click.argument("name")
@click.option("--role", type=_ROLE_CHOICE, default="reception", show_default=True,
              help="prescriber (issues ordonnances, manages staff) or reception.")
@click.option("--rpps", help="The prescriber's RPPS number (11 digits).")
@click.option("--user", required=True, help="A prescriber already enrolled, who unlocks to add the new one.")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The existing member's passphrase (first line) instead of asking.")
@click.option("--new-passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The new member's passphrase (first line) instead of asking.")
def staff_add(
    home: Path,
    name: str,
    role: str,
    rpps: str | None,
    user: str,
    passphrase_file: Path | None,
    new_passphrase_file: Path | None,
) -> None:
    """Give NAME their own keyslot and role (needs a prescriber's passphrase)."""
    from continuity import keys
    from continuity import staff as staff_module

    member = keys.make_member(name, role, rpps)
    admin = _administrator(home, user, passphrase_file, "staff add")
    passphrase = read_passphrase(new_passphrase_file, prompt=f"Nouvelle phrase de passe de {name}", confirm=True)
    staff_module.add(home, admin, name, passphrase, role=member.role, rpps=member.rpps)
    click.echo(f"{name} can now unlock this appliance ({member.role_fr}).")


@staff.command("remove")
@_home_option
@click.argument("name")
@click.option("--user", required=True, help="A prescriber who unlocks to confirm.")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="That member's passphrase (first line) instead of asking.")
def staff_remove(home: Path, name: str, user: str, passphrase_file: Path | None) -> None:
    """Remove NAME's keyslot (never the last one, never the last prescriber)."""
    from continuity import staff as staff_module

    admin = _administrator(home, user, passphrase_file, "staff remove")
    staff_module.remove(home, admin, name)
    click.echo(f"{name} can no longer unlock this appliance.")


@cli.command("trust")
@_home_option
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--add", is_flag=True, help="Keep the keys already pinned (during a key rotation).")
def trust_command(home: Path, key_file: Path, add: bool) -> None:
    """Pin the publisher's public key: only files it signed will be accepted."""
    from continuity import keys, store

    store.Store(home).require_initialized()
    fingerprint = keys.trust_publisher(home, key_file, replace=not add)
    pinned = keys.fingerprints(bytes(k) for k in keys.trusted_publishers(home))
    click.echo(f"publisher fingerprint: {fingerprint}  (compare it with the publisher's, by phone)")
    click.echo(f"pinned publishers:     {', '.join(pinned)}")


@cli.command("pull")
@_home_option
@click.argument("source")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Trust only this CA for https (pinning); system CAs otherwise. Verification is always on.")
@click.option("--connect-timeout", default=10.0, show_default=True, help="Seconds to connect.")
@click.option("--read-timeout", default=30.0, show_default=True, help="Seconds of silence tolerated.")
@click.option("--deadline", default=600.0, show_default=True, help="Seconds for the whole transfer.")
@click.option("--retries", default=3, show_default=True, type=click.IntRange(0, 10), help="Extra attempts.")
@click.option("--max-size", type=click.IntRange(1), help="Size cap in bytes (default: the store's, 1 GiB).")
def pull_command(
    home: Path,
    source: str,
    ca_file: Path | None,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    retries: int,
    max_size: int | None,
) -> None:
    """Fetch, verify and store a snapshot from an https:// or http:// URL or a file path (no secret needed)."""
    from continuity import pull, store

    options = pull.PullOptions(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        deadline=deadline,
        retries=retries,
        ca_file=ca_file,
        max_file_size=max_size,
    )
    result = pull.Puller(store.Store(home), options).pull(source)
    if result.outcome == "accepted" and result.header is not None:
        click.echo(f"accepted snapshot {result.header.sequence} from {result.source}")
    else:
        click.echo(f"unchanged: {result.source}")


@cli.command("watch")
@_home_option
@click.option("--once", is_flag=True, help="Import what is in inbox/ now and exit (no watching).")
def watch_command(home: Path, once: bool) -> None:
    """Import snapshot files dropped into inbox/ (USB stick, file share). Runs until stopped."""
    from continuity import store, watch

    inbox_watch = watch.InboxWatcher(store.Store(home))
    if once:
        inbox_watch.scan()
        return
    watch.run_until_signalled(inbox_watch)


@cli.command("status")
@_home_option
@click.option("--json", "as_json_output", is_flag=True, help="Print JSON.")
@click.option("--warn-age", default="36h", show_default=True, help="WARNING when the data is older.")
@click.option("--crit-age", default="7d", show_default=True, help="CRITICAL when the data is older.")
def status_command(home: Path, as_json_output: bool, warn_age: str, crit_age: str) -> None:
    """Current snapshot, age, last pull. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (monitoring plugins)."""
    from continuity import publish, status
    from continuity.errors import InputError

    try:
        warn, crit = publish.parse_duration(warn_age), publish.parse_duration(crit_age)
    except InputError as error:
        raise click.BadParameter(str(error)) from error
    report = status.compute_status(home, warn_age=warn, crit_age=crit)
    if as_json_output:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(report.lines()))
    raise click.exceptions.Exit(report.code)


# --- ordonnances: prescribe, summary --------------------------------------------------------------


def _practitioner_by_rpps(snapshot: SnapshotDB, wanted: str) -> Any:
    from continuity.errors import NotFound

    for practitioner in snapshot.practitioners():
        if wanted in (practitioner.rpps, practitioner.id):
            return practitioner
    raise NotFound(
        f"no practitioner with RPPS or id {wanted!r}",
        message_fr=f"Aucun praticien du cabinet n'a le RPPS « {wanted} » dans ces données.",
    )


@cli.command("prescribe")
@click.argument("patient_id")
@click.option("--prescriber", "prescriber_rpps", required=True, help="RPPS (or id) of the prescribing practitioner.")
@click.option("--renew", "renew", multiple=True, help='"all", or an ongoing treatment id to renew (repeatable).')
@click.option("--line", "line_specs", multiple=True, help='A new line "DCI|dosage|forme|posologie|durée[|voie]".')
@click.option("--duration", "renew_duration", default="1 mois", show_default=True, help="Duration of each renewal.")
@click.option("--confirm", is_flag=True, help="Confirm the warnings (allergy, child weight...); refusals stay refused.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="PDF to write (unless --preview).")
@click.option("--preview", is_flag=True, help="Only show what would be printed, with the warnings; write nothing.")
@click.option("--print", "send_to_printer", is_flag=True, help="Also send it to the printer (CUPS).")
@click.option("--printer", help="CUPS queue (default destination otherwise).")
@click.option("--duplicate", is_flag=True, help="Add the duplicate page.")
@click.option("--drill", is_flag=True, help='Exercise: "EXERCICE — NE PAS DÉLIVRER" on every page.')
@click.option("--no-footer", is_flag=True, help="Leave out the line saying the software was unavailable.")
@click.option("--db", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A plain snapshot database.")
@unlock_options
def prescribe_command(
    patient_id: str,
    prescriber_rpps: str,
    renew: tuple[str, ...],
    line_specs: tuple[str, ...],
    renew_duration: str,
    confirm: bool,
    out: Path | None,
    preview: bool,
    send_to_printer: bool,
    printer: str | None,
    duplicate: bool,
    drill: bool,
    no_footer: bool,
    db: Path | None,
    home: Path | None,
    user: str | None,
    passphrase_file: Path | None,
) -> None:
    """Print an emergency ordonnance: renew ongoing treatments and/or add lines.

    A warning (allergy, child without a recent weight, deceased patient...) stops with exit code 13
    and writes nothing unless --confirm is given; a refusal (secure-paper drug, over 12 months, no
    RPPS, sick leave) stops with exit code 12 and cannot be overridden.
    """
    from continuity import prescribe, printing

    try:
        new_lines = [prescribe.parse_line_spec(spec) for spec in line_specs]
        days = prescribe.parse_duration(renew_duration)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    if not renew and not new_lines:
        raise click.UsageError("rien à prescrire : donnez --renew all, --renew TRAITEMENT ou --line.")
    if "all" in renew and len(renew) > 1:
        raise click.UsageError("--renew all ne se combine pas avec des identifiants de traitement.")
    if out is None and not preview:
        raise click.UsageError("--out FICHIER.pdf est obligatoire (ou --preview pour seulement voir l'ordonnance).")

    opened = open_snapshot(db, user, passphrase_file, home=home)
    snapshot = opened.db
    try:
        summary = opened.view(patient_id)
        prescriber = _practitioner_by_rpps(snapshot, prescriber_rpps)
        renewals = [
            prescribe.Renewal(treatment.id, duration_days=days)
            for treatment in summary.treatments
            if "all" in renew or treatment.id in renew
        ]
        missing = set(renew) - {"all"} - {r.treatment_id for r in renewals}
        plan = prescribe.build(
            summary,
            prescriber,
            renew=[*renewals, *sorted(missing)],  # unknown ids raise NotFound with their name
            new_lines=new_lines,
            now=dt.datetime.now(dt.UTC),
        )
        for note in plan.notes:
            click.echo(f"Note : {note}", err=True)
        if preview:
            click.echo(prescribe.preview_text(plan.prescription, snapshot_created_at=snapshot.created_at,
                                              footer=not no_footer))  # fmt: skip
            for warning in plan.warnings:
                click.echo(f"À confirmer : {warning}", err=True)
            return
        if plan.warnings and confirm:
            for warning in plan.warnings:
                click.echo(f"Confirmé : {warning}", err=True)
        # Confirm, render, then journal before anything is written or printed (DESIGN.md: nothing
        # handed out unrecorded).
        issued = prescribe.issue(
            plan,
            confirm=confirm,
            journal=opened.journal,
            user=opened.session.user if opened.session else _login(db, user),
            snapshot_seq=opened.sequence,
            snapshot_created_at=snapshot.created_at,
            duplicate=duplicate,
            drill=drill,
            footer=not no_footer,
        )
    finally:
        opened.close()
    prescription, document = issued.prescription, issued.pdf
    if out is None:  # checked before unlocking; only --preview goes without --out
        raise click.UsageError("--out FICHIER.pdf est obligatoire.")
    try:
        written = printing.save_pdf(document, out)
    except OSError as error:
        from continuity.errors import StoreError

        raise StoreError(f"cannot write {out}: {error}", message_fr=f"Impossible d'écrire {out}.") from error
    kind = "bizone (ALD)" if prescription.is_bizone else "standard"
    count = len(prescription.lines)
    click.echo(f"Ordonnance {kind} de {count} ligne(s) enregistrée dans : {written}")
    if send_to_printer:
        job = printing.print_pdf(document, save_to=written, printer=printer)
        click.echo(job.message_fr)


@cli.command("summary")
@click.argument("patient_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PDF file to write.")
@click.option("--db", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A plain snapshot database.")
@unlock_options
def summary_command(
    patient_id: str, out: Path, db: Path | None, home: Path | None, user: str | None, passphrase_file: Path | None
) -> None:
    """Write the patient summary hand-out (for the ER or a locum) as a PDF."""
    import hashlib

    from continuity import pdf, printing
    from continuity.journal import Action

    opened = open_snapshot(db, user, passphrase_file, home=home)
    try:
        summary = opened.view(patient_id)
        document = pdf.render_summary(
            summary, snapshot_created_at=opened.db.created_at, practice_name=opened.db.practice_name
        )
        if opened.session is not None:  # journaled before the file exists (nothing handed out unrecorded)
            opened.session.record_print(
                Action.PRINT_SUMMARY, patient_id, details={"pdf_sha256": hashlib.sha256(document).hexdigest()}
            )
    finally:
        opened.close()
    written = printing.save_pdf(document, out)
    click.echo(f"Résumé du dossier enregistré dans : {written}")


# --- journal: journal verify/export/access/checkpoint, drill, doctor ------------------------------


def _parse_day(value: str) -> dt.date | dt.datetime:
    """A day (from midnight, French time) or a French local date and time."""
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M"):
        try:
            return dt.datetime.strptime(value, pattern)
        except ValueError:
            continue
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise click.BadParameter(f"date attendue AAAA-MM-JJ ou JJ/MM/AAAA [HH:MM], pas {value!r}")


def _open_secrets(home: Path, user: str, passphrase: str, *, command: str) -> Any:
    """Open the staff keyslot for a journal command; a failure is journaled like any failed unlock."""
    from continuity.session import authenticate

    return authenticate(home, user, passphrase, command=command).secrets


@cli.group(cls=ContinuityGroup)
def journal() -> None:
    """The access and outage journal: verify, checkpoint, export, access reports."""


@journal.command("verify")
@_home_option
@click.option("--paper", help="COUNT:HASH from a paper copy of a checkpoint; the journal must match it.")
@click.option("--json", "as_json_output", is_flag=True, help="Print the report as JSON (same exit codes).")
def journal_verify(home: Path, paper: str | None, as_json_output: bool) -> None:
    """Check the hash chain and the signed checkpoints. Exit 0 OK, 11 broken, 10 unreadable."""
    from continuity import journal as journal_module
    from continuity.errors import JournalBroken

    expected: tuple[int, str] | None = None
    if paper:
        count, _, head = paper.replace(" ", "").partition(":")
        if not count.isdigit() or len(head) != 64:
            raise click.BadParameter("attendu NOMBRE:EMPREINTE (64 caractères hexadécimaux)", param_hint="--paper")
        expected = (int(count), head.lower())
    report = journal_module.verify_journal(home, paper=expected)
    if as_json_output:
        fields = {key: getattr(report, key) for key in ("entries", "files", "first_index", "head", "checkpoints")}
        problems = [
            {"file": p.file, "line": p.line, "index": p.index, "kind": p.kind, "message_fr": p.message_fr}
            for p in report.problems
        ]
        click.echo(json.dumps({"ok": report.ok, **fields, "unsigned_tail": report.unsigned_tail,
                               "problems": problems, "notes_fr": report.notes_fr}, ensure_ascii=False))  # fmt: skip
    for note in [] if as_json_output else report.notes_fr:
        click.echo(f"Remarque : {note}")
    if report.ok and as_json_output:
        return
    if report.ok:
        click.echo(
            f"OK : journal intègre — {report.entries} entrées dans {len(report.files)} fichier(s), "
            f"{report.checkpoints} point(s) de contrôle signé(s)."
        )
        if report.unsigned_tail:
            click.echo(f"  {report.unsigned_tail} entrée(s) après le dernier point de contrôle signé.")
        return
    if not as_json_output:
        click.echo(f"JOURNAL ROMPU : {len(report.problems)} problème(s).")
        for problem in report.problems[:50]:
            click.echo(f"  {problem.where()} : {problem.message_fr}")
    first = report.problems[0]
    raise JournalBroken(
        f"journal broken at {first.where()}: {first.kind}",
        message_fr=f"Le journal a été modifié ou est incomplet ({first.where()}).",
    )


@journal.command("checkpoint")
@_home_option
@click.option("--user", help="Staff login: sign a new checkpoint now (asks the passphrase).")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--print", "print_copy", is_flag=True, help="Print the last signed checkpoint, to keep on paper.")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=Path), help="Also as a printable PDF.")
def journal_checkpoint(
    home: Path, user: str | None, passphrase_file: Path | None, print_copy: bool, pdf_path: Path | None
) -> None:
    """Sign a checkpoint (--user) and/or copy the last signed one on paper (--print, --pdf FILE)."""
    from continuity import journal as journal_module

    if user is None and not print_copy and pdf_path is None:
        raise click.UsageError("indiquez --user pour signer un point de contrôle, ou --print / --pdf pour le recopier")
    if user is not None:
        secrets = _open_secrets(home, user, read_passphrase(passphrase_file), command="journal checkpoint")
        entry = journal_module.Journal(home).checkpoint(secrets.signing_key, user)
        click.echo(f"Point de contrôle signé : {entry.details['count']} entrées.", err=print_copy)
    if print_copy:
        click.echo(journal_module.checkpoint_text(home), nl=False)
    if pdf_path is not None:
        try:
            with pdf_path.open("xb") as handle:
                handle.write(journal_module.checkpoint_pdf(home))
        except FileExistsError as error:
            raise click.BadParameter(f"{pdf_path} existe déjà", param_hint="--pdf") from error
        click.echo(f"Copie PDF : {pdf_path}", err=True)


@journal.command("export")
@unlock_options
@click.option("--since", "since_text", required=True, help="Outage start: AAAA-MM-JJ [HH:MM], French time.")
@click.option("--until", "until_text", help="End of the window, excluded (default: now).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory to write to.")
@click.option("--no-pdf", is_flag=True, help="Do not render the printable list.")
def journal_export(
    home: Path | None,
    user: str | None,
    passphrase_file: Path | None,
    since_text: str,
    until_text: str | None,
    out: Path,
    no_pdf: bool,
) -> None:
    """Write the prescriptions issued during the outage: FHIR R4 Bundle, CSV and PDF list."""
    from continuity import journal as journal_module
    from continuity import reconcile, store

    since = _parse_day(since_text)
    until = _parse_day(until_text) if until_text else None
    home = home or store.default_home()
    click.echo(reconcile.CLEAR_DATA_WARNING_FR, err=True)
    if user is None:
        user = str(click.prompt("Utilisateur", err=True))
    secrets = _open_secrets(home, user, read_passphrase(passphrase_file), command="journal export")
    journal_ = journal_module.Journal(home)
    check = journal_module.verify_journal(home)
    if not check.ok:
        click.echo(
            f"ATTENTION : journal rompu ({check.problems[0].where()}) : l'export peut être incomplet. "
            "Lancez « continuity journal verify ».",
            err=True,
        )
    result = reconcile.export(journal_, secrets.box_key, since, out, user=user, until=until, with_pdf=not no_pdf)
    journal_.checkpoint(secrets.signing_key, user)
    click.echo(f"{len(result.prescriptions)} ordonnance(s) exportée(s) dans {result.directory} :")
    for path in result.files:
        click.echo(f"  {path}")
    if result.pdf_missing_reason and not no_pdf:
        click.echo(f"Liste PDF non produite : {result.pdf_missing_reason}.", err=True)
    for skipped in result.skipped:
        click.echo(f"ATTENTION : entrée n° {skipped.index} non exportée ({skipped.reason}).", err=True)
    if result.skipped:
        raise click.exceptions.Exit(1)


_ACTION_LABELS_FR = {
    "view_patient": "a consulté le dossier",
    "print_prescription": "a imprimé une ordonnance",
    "drill_prescription": "a imprimé une ordonnance d'exercice",
    "print_summary": "a imprimé le résumé",
    "export": "a exporté les ordonnances",
    "unlock": "a ouvert une session",
    "lock": "a fermé la session",
}


@journal.command("access")
@_home_option
@click.option("--patient", "patient_id", help="Pseudonymous patient id (as in the snapshot).")
@click.option("--user", help="Staff login.")
@click.option("--json", "as_json_output", is_flag=True, help="Print JSON lines.")
def journal_access(home: Path, patient_id: str | None, user: str | None, as_json_output: bool) -> None:
    """Who viewed or printed which record, and when (clear fields only: no unlock needed)."""
    from continuity import journal as journal_module

    if not patient_id and not user:
        raise click.UsageError("indiquez --patient ou --user")
    entries = journal_module.access_report(journal_module.Journal(home), patient_id=patient_id, user=user)
    check = journal_module.verify_journal(home)
    if not check.ok:
        click.echo(f"ATTENTION : journal rompu ({check.problems[0].where()}) : liste peut-être incomplète.", err=True)
    if as_json_output:
        for entry in entries:
            fields = {"index": entry.index, "time": entry.timestamp, "user": entry.user, "action": entry.action}
            click.echo(json.dumps({**fields, "patient": entry.patient_id, "snapshot_seq": entry.snapshot_seq}))
        return
    if not entries:
        click.echo("Aucun accès trouvé dans le journal conservé.")
        return
    for entry in entries:
        moment = entry.time.astimezone(journal_module.PARIS).strftime("%d/%m/%Y %H:%M:%S")
        label = _ACTION_LABELS_FR.get(entry.action, entry.action)
        target = f" {entry.patient_id}" if entry.patient_id else ""
        seq = f" (instantané n° {entry.snapshot_seq})" if entry.snapshot_seq is not None else ""
        click.echo(f"{moment}  {entry.user:<16} {label}{target}{seq}  [entrée {entry.index}]")


@journal.command("retention")
@_home_option
@click.option("--months", default=12, show_default=True, help="Months of journal to keep before the current one.")
def journal_retention(home: Path, months: int) -> None:
    """Delete journal months older than the retention period (the rest still verifies)."""
    from continuity import journal as journal_module

    deleted = journal_module.Journal(home).apply_retention(months)
    click.echo(f"Mois supprimés : {', '.join(deleted)}" if deleted else "Aucun mois à supprimer.")


@cli.command("doctor")
@_home_option
@click.option("--json", "as_json_output", is_flag=True, help="Print the checks as JSON (same exit code).")
def doctor_command(home: Path, as_json_output: bool) -> None:
    """Check keys, publisher, data freshness, journal, printer, disk and clock. Exit 1 if a check fails."""
    from continuity import doctor

    checks = doctor.run_checks(home)
    if as_json_output:
        rows = [
            {"name_fr": c.name_fr, "status": c.status.value, "detail_fr": c.detail_fr, "remedy_fr": c.remedy_fr}
            for c in checks
        ]
        click.echo(json.dumps(rows, ensure_ascii=False))
    else:
        click.echo(doctor.checklist_text(checks), nl=False)
    if any(check.status is doctor.Status.FAILED for check in checks):
        raise click.exceptions.Exit(1)


@cli.command("drill")
@unlock_options
@click.option("--patient", "patient_search", required=True, help="What to type to find the listed test patient.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Report directory (default HOME/drills).")
@click.option("--printer", "printer_name", help="CUPS queue (default: the system default).")
def drill_command(
    home: Path | None,
    user: str | None,
    passphrase_file: Path | None,
    patient_search: str,
    out: Path | None,
    printer_name: str | None,
) -> None:
    """Rehearse an outage: unlock, find the test patient, print an ordonnance marked EXERCICE, report."""
    from continuity import drill, printing, store
    from continuity.session import Session

    home = home or store.default_home()
    if user is None:
        user = str(click.prompt("Utilisateur", err=True))
    passphrase = read_passphrase(passphrase_file)
    login = user

    def send(pdf: bytes, save_to: Path) -> str:
        return printing.print_pdf(pdf, save_to=save_to, printer=printer_name, title="Exercice").message_fr

    report = drill.run_drill(
        lambda: Session.unlock(home, login, passphrase),
        patient_search=patient_search,
        out_dir=out or home / "drills",
        printer=send,
    )
    click.echo(report.text(), nl=False)
    if not report.ok:
        raise click.exceptions.Exit(1)


# --- tui, demo ------------------------------------------------------------------------------------


@cli.command("tui")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="Appliance home (default: CONTINUITY_HOME, or snapshots/ in a checkout).")
@click.option("--db", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Dev mode: a plain snapshot database, no unlock (the journal is still written in the home).")
@click.option("--user", help="Name preselected on the unlock screen; in dev mode, the journal's user (default dev).")
@click.option("--idle-minutes", type=float, default=5.0, show_default=True,
              help="Lock after this many minutes without a key press (0: never).")
@click.option("--today", help="Fixed clock for tests and demos: AAAA-MM-JJ or an ISO date-time.")
def tui_command(home: Path | None, db: Path | None, user: str | None, idle_minutes: float, today: str | None) -> None:
    """Open the receptionist's screen: unlock, search a patient, read the summary, agenda, ordonnance."""
    from continuity.tui.app import make_app, parse_today

    if today:
        try:
            parse_today(today)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--today") from error
    make_app(home=home, db=db, user=user, idle_minutes=idle_minutes, today=today).run()


@cli.command("demo")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="Demo appliance home (default: snapshots/demo in a checkout); re-created on each run.")
@click.option("--patients", default=2000, show_default=True, help="Size of the synthetic practice.")
@click.option("--seed", default=2026, show_default=True, help="Seed of the synthetic practice.")
@click.option("--no-tui", is_flag=True, help="Run the command-line walkthrough instead of opening the TUI.")
@click.pass_context
def demo_command(ctx: click.Context, home: Path | None, patients: int, seed: int, no_tui: bool) -> None:
    """Generate a synthetic practice, publish it, pull it, and open Continuity on it."""
    from continuity import demo, store

    home = home or store.default_home() / "demo"
    click.echo(f"Génération d'un cabinet fictif de {patients} patients (données inventées)...")
    practice = demo.prepare(home, patients=patients, seed=seed)
    click.echo(f"Cabinet de démonstration prêt dans {practice.home}")
    for user, passphrase in practice.users.items():
        click.echo(f"  utilisateur : {user:12}  phrase de passe : {passphrase:18}  ({practice.roles[user]})")
    if not no_tui and sys.stdin.isatty() and sys.stdout.isatty():
        from continuity.tui.app import make_app

        hint = "Démonstration (patients inventés) — " + " ; ".join(
            f"« {user} » ({practice.roles[user]}), phrase de passe « {passphrase} »"
            for user, passphrase in practice.users.items()
        )
        make_app(home=practice.home, db=None, user=demo.DEMO_USER, idle_minutes=5.0, today=None,
                 unlock_hint=hint).run()
        return
    # No terminal to draw on (CI, a pipe): walk through the same steps on the command line instead.
    passphrase_file = practice.platform / "demo-passphrase.txt"
    passphrase_file.write_text(demo.DEMO_PASSPHRASE + "\n")
    unlock = {"home": practice.home, "user": demo.DEMO_USER, "passphrase_file": passphrase_file, "db": None}
    showcase = practice.synth.showcase
    click.echo("\n$ continuity search \"n'diaye\"")
    ctx.invoke(search_command, query=("n'diaye",), limit=5, as_json_output=False, **unlock)
    patient_id = showcase.get("ald") or next(iter(showcase.values()))
    click.echo(f"\n$ continuity show {patient_id}")
    ctx.invoke(show_command, patient_id=patient_id, as_json_output=False, **unlock)
    out = practice.platform / "ordonnance-demo.pdf"
    # Reception cannot issue an ordonnance: the doctor logs in for this step.
    doctor_passphrase_file = practice.platform / "demo-doctor-passphrase.txt"
    doctor_passphrase_file.write_text(demo.DEMO_DOCTOR_PASSPHRASE + "\n")
    doctor = {**unlock, "user": demo.DEMO_DOCTOR, "passphrase_file": doctor_passphrase_file}
    click.echo(f"\n$ continuity prescribe {patient_id} --renew all --out {out} --user {demo.DEMO_DOCTOR}")
    ctx.invoke(
        prescribe_command, patient_id=patient_id, prescriber_rpps=practice.synth.demo_practitioner_rpps,
        renew=("all",), line_specs=(), renew_duration="1 mois", confirm=True, out=out, send_to_printer=False,
        printer=None, duplicate=False, drill=False, no_footer=False, **doctor,
    )
    click.echo(f"\nOuvrir l'interface : continuity tui --home {practice.home}")

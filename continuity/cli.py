"""The `continuity` command line: parses options, calls the library, turns errors into exit codes."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from continuity import __version__, display, logs
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
            report_error(error)
            ctx.exit(error.exit_code)


def report_error(error: ContinuityError) -> None:
    """One English log line (journal, cron mail, -v) and one French sentence for a person: never both
    on a terminal, never the French one in the journal (continuity/logs.py)."""
    if logs.wants_english_error():
        log.error("%s: %s", type(error).__name__, error)
    if logs.wants_french_error():
        click.echo(f"Erreur : {error.message_fr}", err=True)


@click.group(cls=ContinuityGroup)
@click.version_option(__version__, "--version", prog_name="continuity", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log details to stderr.")
def cli(verbose: bool) -> None:
    """Continuity: read patient summaries and print emergency ordonnances while the practice software is down."""
    logs.configure(verbose=verbose)


@cli.group(cls=ContinuityGroup)
def publisher() -> None:
    """Platform side: generate, build and publish snapshots."""


def main() -> None:
    try:
        cli(prog_name="continuity")
    except Exception as error:  # a bug: one log line with the traceback folded in, one French sentence
        log.critical("unexpected %s: %s", type(error).__name__, error, exc_info=True)
        if logs.wants_french_error():
            click.echo("Erreur inattendue : notez l'heure et appelez le support (continuity doctor).", err=True)
        sys.exit(70)  # EX_SOFTWARE


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
    session = Session.unlock(home, login, read_passphrase(passphrase_file), on_wait=announce_wait)
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


def announce_wait(failures: int, seconds: float) -> None:
    """What the person at the keyboard reads while the delay after wrong passphrases runs."""
    click.echo(f"Trop d'essais incorrects ({failures}) : patientez {seconds:.0f} s avant le prochain essai…", err=True)


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


def drug_reference_option(function: Any) -> Any:
    return click.option(
        "--drug-reference", "drug_reference", type=click.Path(file_okay=False, path_type=Path),
        help="BDPM folder (CIS_bdpm.txt, CIS_COMPO_bdpm.txt, CIS_CPD_bdpm.txt, CIS_CIP_bdpm.txt) the snapshot "
             "carries and every treatment is resolved against.",
    )(function)


def read_drug_reference(folder: Path | None, *, strict: bool) -> Any:
    """The read BDPM (its report on stderr), or None with the warning that the fallback list will be used."""
    from continuity.drugs import bdpm, fallback

    if folder is None:
        click.echo(f"WARNING: no --drug-reference: {fallback.NOTICE_FR}", err=True)
        return None
    drugs = bdpm.read(folder, strict=strict)
    report = drugs.report
    encodings = ", ".join(f"{name} {encoding}" for name, encoding in sorted(report.encodings.items()))
    click.echo(f"drug reference  {len(drugs.products)} products, {len(drugs.cip13)} CIP13 ({encodings})", err=True)
    if report.bad_line_count:
        click.echo(f"  {report.bad_line_count} line(s) skipped, {len(report.dropped_products)} product(s) "
                   "left out (use --strict to refuse):", err=True)
        for bad in report.bad_lines[:50]:
            click.echo(f"    {bad}", err=True)
    for rule, count in report.later_rule_products.items():
        if count:
            click.echo(f"  {count} product(s) marked secure paper by a rule newer than the files: {rule}", err=True)
    return drugs


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
@click.option("--strict", is_flag=True, help="Fail on the first bad resource (or BDPM line) instead of skipping it.")
@click.option("--practice", "practice_id", help="Practice identifier (default: from the export).")
@_import_options
@drug_reference_option
def publisher_build(
    sources: tuple[Path, ...],
    out: Path,
    strict: bool,
    practice_id: str | None,
    report_path: Path | None,
    max_rejected: float,
    allow_rejected: bool,
    drug_reference: Path | None,
) -> None:
    """Build a snapshot database from FHIR R4 sources (Bundles, resources, Bulk NDJSON folders)."""
    from continuity import publish
    from continuity.errors import ExportRefused

    drugs = read_drug_reference(drug_reference, strict=strict)
    try:
        result = publish.build(
            list(sources),
            out,
            strict=strict,
            practice_id=practice_id,
            max_rejected=max_rejected / 100,
            allow_rejected=allow_rejected,
            drugs=drugs,
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
        "close": result.close,  # second tier: a name as heard (same sound or one typing error)
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
        # Through the session: journaled (the query sealed) and capped, like the interface's searches.
        text = " ".join(query)
        results = opened.session.search(text, limit=limit) if opened.session else opened.db.search(text, limit=limit)
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
        warning += "  ≈ orthographe proche" if result.close else ""
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
@click.option("--strict", is_flag=True, help="Fail on the first bad resource (or BDPM line) instead of skipping it.")
@_import_options
@drug_reference_option
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
    drug_reference: Path | None,
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
    drugs = read_drug_reference(drug_reference, strict=strict)
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
            drugs=drugs,
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


@publisher.command("witness-serve")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the witness keeps the heads it receives (one folder per appliance).")
@click.option("--key", "key_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="publisher.key (countersigns the receipts), or the directory holding it.")
@click.option("--appliance", "appliances", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An appliance.sign.pub to accept (repeat); without it, any appliance key is accepted.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (put TLS in front).")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535))
def publisher_witness_serve(
    directory: Path, key_path: Path, appliances: tuple[Path, ...], host: str, port: int
) -> None:
    """Serve the journal witness (POST/GET …/witness/<appliance key id>) for the appliances' nightly pulls."""
    import socketserver
    from wsgiref.simple_server import WSGIServer, make_server

    from continuity import keys, witness

    class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    allowed = [bytes(keys.load_appliance_verify_key(path)).hex() for path in appliances] or None
    ledger = witness.WitnessLedger(directory, keys.load_publisher_signing_key(key_path), allowed=allowed)
    with make_server(host, port, witness.wsgi_app(ledger), server_class=ThreadingServer) as server:
        click.echo(f"journal witness on http://{host}:{server.server_port}/…/witness/<appliance key id>, "
                   f"heads kept in {directory}")  # fmt: skip
        server.serve_forever()


@publisher.command("witness-show")
@click.option("--dir", "directory", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
def publisher_witness_show(directory: Path) -> None:
    """The last head witnessed from each appliance."""
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        receipt_path = folder / "receipt.json"
        if not receipt_path.is_file():
            continue
        receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
        continued = folder / "continued-by"
        note = f"  (continued by {continued.read_text().strip()})" if continued.exists() else ""
        click.echo(f"{folder.name}  {receipt['received_at']}  checkpoint {receipt['checkpoint']['count']}  "
                   f"entry {receipt['head']['index']}  receipt {receipt['number']}{note}")


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
    keys.check_passphrase(passphrase, user)
    store.Store(home).create()
    staff.initialise(home, user, passphrase, role=role, rpps=rpps)
    public = keys.appliance_public_key(home)
    click.echo(f"appliance home:        {home}")
    click.echo(f"appliance public key:  {home / keys.APPLIANCE_PUB}  (send it to the publisher)")
    click.echo(f"journal key:           {home / keys.APPLIANCE_SIGN_PUB}  (the publisher's journal witness)")
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
                          command=command, on_wait=announce_wait)
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
@click.option("--rotate/--no-rotate", default=None,
              help="Rotate the appliance key right after (asked when not given and a terminal is there).")
def staff_remove(home: Path, name: str, user: str, passphrase_file: Path | None, rotate: bool | None) -> None:
    """Remove NAME's keyslot (never the last one, never the last prescriber), then rotate the appliance key."""
    from continuity import staff as staff_module

    admin = _administrator(home, user, passphrase_file, "staff remove")
    staff_module.remove(home, admin, name)
    click.echo(f"{name} can no longer unlock this appliance with this file.")
    click.echo(
        f"IMPORTANT : si {name} a gardé une copie de son accès, il détient encore la clé du poste et pourrait "
        "lire les prochaines données. Changez la clé du poste (continuity staff rotate) et envoyez la "
        "nouvelle clé à l'éditeur.",
        err=True,
    )
    if rotate is None:
        rotate = sys.stdin.isatty() and click.confirm("Changer la clé du poste maintenant ?", default=True, err=True)
    if rotate:
        _rotate(home, admin)
    else:
        click.echo(f"Not rotated: run `continuity staff rotate --home {home} --user {user}` soon.", err=True)


@staff.command("rotate")
@_home_option
@click.option("--user", required=True, help="A prescriber who unlocks to rotate.")
@click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="That member's passphrase (first line) instead of asking.")
def staff_rotate(home: Path, user: str, passphrase_file: Path | None) -> None:
    """New appliance keys for the remaining staff (after a removal); prints the appliance.pub for the publisher."""
    _rotate(home, _administrator(home, user, passphrase_file, "staff rotate"))


def _rotate(home: Path, admin: Any) -> None:
    from continuity import rotation

    result = rotation.rotate(home, admin)
    click.echo(f"New appliance key: {result.appliance_pub}  fingerprint {result.fingerprint}")
    click.echo(f"Re-granted to: {', '.join(result.regranted)}")
    click.echo(
        "À faire : envoyez ce nouveau appliance.pub à l'éditeur (empreinte lue au téléphone) ; tant qu'il "
        "chiffre encore pour l'ancienne clé, « continuity status » affiche WARNING « rotation en attente ».",
    )


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
# The installed unit gives the source through the environment (/etc/continuity/continuity.env), so
# the URL is not in the unit nor in `ps`.
@click.argument("source", envvar="CONTINUITY_SOURCE")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trust only this CA for https (pinning); system CAs otherwise. Verification is always on.",
)
@click.option("--connect-timeout", default=10.0, show_default=True, help="Seconds to connect.")
@click.option("--read-timeout", default=30.0, show_default=True, help="Seconds of silence tolerated.")
@click.option(
    "--deadline", default=600.0, show_default=True, help="Seconds for the whole pull, every attempt and wait included."
)
@click.option("--retries", default=3, show_default=True, type=click.IntRange(0, 10), help="Extra attempts.")
@click.option("--max-size", type=click.IntRange(1), help="Size cap in bytes (default: the store's, 1 GiB).")
@click.option(
    "--netrc",
    "netrc_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Credentials file (default: $NETRC, the systemd credential 'netrc', ~/.netrc).",
)
@click.option("--witness", "witness_url", default="auto", show_default=True,
              help="Where to send the journal head: auto (next to an http(s) source), a URL, or off.")
def pull_command(
    home: Path,
    source: str,
    ca_file: Path | None,
    connect_timeout: float,
    read_timeout: float,
    deadline: float,
    retries: int,
    max_size: int | None,
    netrc_file: Path | None,
    witness_url: str,
) -> None:
    """Fetch, verify and store a snapshot from an https:// or http:// URL or a file path (no secret needed).

    Proxies come from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY.
    """
    from continuity import pull, store
    from continuity.errors import Quarantined

    options = pull.PullOptions(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        deadline=deadline,
        retries=retries,
        ca_file=ca_file,
        max_file_size=max_size,
        netrc_file=netrc_file,
    )
    appliance = store.Store(home)
    pulled = False
    try:
        result = pull.Puller(appliance, options).pull(source)
        pulled = True
        if result.outcome == "quarantined" and result.header is not None:
            raise Quarantined(f"quarantined: {result.detail}")
        if result.outcome == "accepted" and result.header is not None:
            click.echo(f"accepted snapshot {result.header.sequence} from {result.source}")
        else:
            click.echo(f"unchanged: {result.source}")
    finally:
        # The journal head goes to the witness every night, whatever became of the snapshot; a
        # rejected or quarantined snapshot keeps its own exit code unless the witness refuses the head.
        _send_journal_head(home, source, witness_url, ca_file, alarm=pulled)


def _send_journal_head(home: Path, source: str, witness_url: str, ca_file: Path | None, *, alarm: bool) -> None:
    """The journal witness call of the nightly pull (continuity/witness.py): a refusal is an alarm
    (exit 34), an unreachable witness only a warning (journaled)."""
    from continuity import journal as journal_module
    from continuity import witness
    from continuity.errors import WitnessError

    if witness_url == "off":
        return
    key = journal_module.read_verify_key(home)
    url = witness.witness_url(source, bytes(key).hex()) if witness_url == "auto" and key else witness_url
    if url is None or url == "auto":
        return
    try:
        sent = witness.send_head(home, url, ca_file=ca_file)
    except WitnessError as error:
        click.echo(f"ATTENTION : {error.message_fr}", err=True)
        log.warning("journal witness: %s", error)
        if alarm and error.refused:
            raise
        return
    if sent is not None:
        click.echo(f"journal head witnessed by the publisher: entry {sent.receipt['head']['index']}, "
                   f"receipt {sent.receipt['number']}")  # fmt: skip


@cli.command("watch")
@_home_option
@click.option("--once", is_flag=True, help="Import what is in inbox/ now and exit (no watching).")
def watch_command(home: Path, once: bool) -> None:
    """Import snapshot files dropped into inbox/ (USB stick, file share). Runs until stopped."""
    from continuity import store, watch

    inbox_watch = watch.InboxWatcher(store.Store(home))
    if once:
        inbox_watch.scan(settle=True)
        refused = [o for o in inbox_watch.outcomes if o.outcome in ("rejected", "quarantined") and not o.deferred]
        if refused:  # the exit code of the first refusal's reason (docs/operations.md), 20 if unknown
            from continuity.errors import REJECTION_CLASSES, SnapshotRejected

            codes = {kind.reason: kind.exit_code for kind in REJECTION_CLASSES}
            raise click.exceptions.Exit(codes.get(refused[0].reason or "", SnapshotRejected.exit_code))
        return
    watch.run_until_signalled(inbox_watch)


class PluginCommand(click.Command):
    """A command that answers in monitoring-plugin form whatever happens (`status`).

    A usage error would be click's exit 2 (CRITICAL to a monitoring agent) and a crash a traceback
    with exit 1 (WARNING) and nothing on stdout: both become one line `CONTINUITY UNKNOWN - ...`, exit 3.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        as_json = "--json" in args  # before parsing, which consumes the list
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.Exit:
            raise
        except click.ClickException as error:
            _plugin_unknown(f"usage: {error.format_message()}", as_json=as_json)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.ClickException as error:
            _plugin_unknown(f"usage: {error.format_message()}", as_json=bool(ctx.params.get("as_json_output")))
        except Exception as error:  # noqa: BLE001 - a plugin never ends in a traceback
            log.exception("status failed")
            _plugin_unknown(f"{type(error).__name__}: {error}", as_json=bool(ctx.params.get("as_json_output")))


def _plugin_unknown(problem: str, *, as_json: bool) -> NoReturn:
    from continuity import status

    report = status.unknown(problem)
    click.echo(json.dumps(report.to_json(), ensure_ascii=False) if as_json else report.headline())
    raise click.exceptions.Exit(status.UNKNOWN)


@cli.command("status", cls=PluginCommand)
@_home_option
@click.option("--json", "as_json_output", is_flag=True, help="Print JSON.")
@click.option("--warn-age", default="36h", show_default=True, help="WARNING when the data is older.")
@click.option("--crit-age", default="7d", show_default=True, help="CRITICAL when the data is older.")
@click.option(
    "--min-free-mib",
    type=click.IntRange(0),
    help="WARNING under this much free space in the home (default: twice the snapshot, 64 MiB at least).",
)
def status_command(home: Path, as_json_output: bool, warn_age: str, crit_age: str, min_free_mib: int | None) -> None:
    """Current snapshot, age, last pull. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (monitoring plugins).

    Only reads: nothing in the home is written, whatever state it is in.
    """
    from continuity import publish, status
    from continuity.errors import InputError

    try:
        warn, crit = publish.parse_duration(warn_age), publish.parse_duration(crit_age)
    except InputError as error:
        raise click.BadParameter(str(error)) from error
    if warn > crit:
        raise click.BadParameter(f"--warn-age {warn_age} is longer than --crit-age {crit_age}")
    min_free = min_free_mib * 1024 * 1024 if min_free_mib is not None else None
    report = status.compute_status(home, warn_age=warn, crit_age=crit, min_free=min_free)
    if as_json_output:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(report.lines()))
    raise click.exceptions.Exit(report.code)


@cli.command("accept")
@_home_option
@click.argument("sequence", type=click.IntRange(1))
@click.option("--user", required=True, help="The staff member taking the decision (unlocks to confirm).")
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="That member's passphrase (first line) instead of asking.",
)
def accept_command(home: Path, sequence: int, user: str, passphrase_file: Path | None) -> None:
    """Use a quarantined snapshot (far fewer patients than the current one) after checking with the publisher.

    The decision is journaled with the staff member's name. A snapshot without patients is never used.
    """
    from continuity import store
    from continuity.errors import NotFound
    from continuity.journal import Journal
    from continuity.session import authenticate

    appliance = store.Store(home)
    appliance.require_initialized()
    waiting = {entry.sequence: entry for entry in appliance.quarantine()}
    if sequence not in waiting:
        raise NotFound(
            f"no quarantined snapshot with sequence {sequence} (waiting: {sorted(waiting) or 'none'})",
            message_fr=f"Aucun instantané n° {sequence} en quarantaine (voir « continuity status »).",
        )
    # Any staff member may decide (the practice must be able to act during an outage); who did is journaled.
    opened = authenticate(home, user, read_passphrase(passphrase_file, prompt=f"Phrase de passe de {user}"),
                          command="accept")  # fmt: skip
    current = appliance.read_state().get("current")
    details: dict[str, Any] = {"patient_count": waiting[sequence].patients, "role": opened.member.role.value}
    if isinstance(current, dict):
        details["previous_sequence"] = current.get("sequence")
        details["previous_patient_count"] = store.patient_count(current.get("counts"))
    # Journaled first: an override of the shrink guard is never unrecorded, even if the commit then fails.
    journal = Journal(home)
    journal.append(user=user, action="snapshot_accepted", snapshot_seq=sequence, details=details)
    try:
        header = appliance.accept_quarantined(sequence, by=user)
    except ContinuityError as error:
        with contextlib.suppress(ContinuityError):
            journal.append(user=user, action="snapshot_accept_failed", snapshot_seq=sequence,
                           details={"error": type(error).__name__})  # fmt: skip
        raise
    appliance.record_attempt(source=f"quarantine (accepted by {user})", outcome="accepted", sequence=sequence)
    click.echo(
        f"snapshot {header.sequence} is now in use ({store.patient_count(header.counts)} patients); "
        f"accepted by {user}, journaled"
    )


# --- ordonnances: prescribe, summary --------------------------------------------------------------


def _signer(opened: OpenedSnapshot, prescriber: str | None, db: Path | None) -> Any:
    """Who is logged in, as far as signing goes: the keyslot's role and RPPS (docs/prescribing.md)."""
    from continuity.keys import Role
    from continuity.prescribing.issuing import Signer

    session = opened.session
    assert session is not None
    if db is not None and prescriber and session.member.role is not Role.PRESCRIBER:
        # A plain development database has no keyslot to carry a role: the practitioner named by
        # --prescriber signs, and the command says so.
        click.echo("ATTENTION : base de développement (--db) : aucun rôle authentifié, le signataire est le "
                   f"praticien de --prescriber ({prescriber}).", err=True)
        rpps = next((p.rpps for p in opened.db.practitioners() if prescriber in (p.rpps, p.id)), prescriber)
        return Signer(session.user, True, rpps)
    return session.signer()


def _route_choices(specs: tuple[str, ...]) -> dict[str, str]:
    choices: dict[str, str] = {}
    for spec in specs:
        treatment, sep, route = spec.partition("=")
        if not sep or not treatment.strip() or not route.strip():
            raise click.BadParameter(f"« {spec} » : attendu TRAITEMENT=VOIE (ex. t-12=orale)", param_hint="--route")
        choices[treatment.strip()] = route.strip()
    return choices


@cli.command("prescribe")
@click.argument("patient_id")
@click.option("--renew", "renew", multiple=True,
              help='"all" (every continuous treatment; narcotics, acute courses... left out, each named), or an '
                   "ongoing treatment id (repeatable).")
@click.option("--line", "line_specs", multiple=True,
              help='A new line "DCI|dosage|forme|posologie|durée[|voie][|ald]" (repeatable).')
@click.option("--duration", "renew_duration",
              help="Duration of each renewal (default: 1 month, shortened to the drug's limit; what remains of an "
                   "acute course).")
@click.option("--route", "route_specs", multiple=True,
              help="TREATMENT=VOIE: the route of a renewed product that has several (repeatable).")
@click.option("--confirm", "confirm", multiple=True, is_flag=False, flag_value="",
              help="Acknowledge a danger by its code (allergy, unidentified, identity, deceased, child-weight, "
                   "weight; repeatable); bare, the remarks only. Refusals stay refused.")
@click.option("--prescriber", "prescriber",
              help="RPPS (or id) of another practitioner of the practice who signs (journaled); by default the "
                   "logged-in prescriber.")
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
    renew: tuple[str, ...],
    line_specs: tuple[str, ...],
    renew_duration: str | None,
    route_specs: tuple[str, ...],
    confirm: tuple[str, ...],
    prescriber: str | None,
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
    """Print an emergency ordonnance, signed by the logged-in prescriber: renew treatments and/or add lines.

    Each warning prints with its code. A danger (allergy, unidentified substance, identity, deceased,
    child without a recent weight...) stops with exit code 13 and writes nothing unless acknowledged by
    its code (--confirm allergy); a remark needs a bare --confirm. A refusal (secure-paper or
    hospital-only drug, acute course beyond what remains, over the duration limit, no route, reception
    login...) stops with exit code 12 (40 for a role) and cannot be overridden.
    """
    from continuity import printing
    from continuity.prescribing import printed, rules

    try:
        new_lines = [rules.parse_line_spec(spec) for spec in line_specs]
        days = rules.parse_duration(renew_duration) if renew_duration else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    routes = _route_choices(route_specs)
    unknown = sorted(set(confirm) - rules.KNOWN_CODES - {""})
    if unknown:
        raise click.BadParameter(
            f"code inconnu : {', '.join(unknown)} (codes : {', '.join(sorted(d.value for d in rules.Danger))})",
            param_hint="--confirm",
        )
    acknowledged = {code for code in confirm if code} | ({rules.REMARK} if "" in confirm else set())
    if not renew and not new_lines:
        raise click.UsageError("rien à prescrire : donnez --renew all, --renew TRAITEMENT ou --line.")
    if "all" in renew and len(renew) > 1:
        raise click.UsageError("--renew all ne se combine pas avec des identifiants de traitement.")
    if out is None and not preview:
        raise click.UsageError("--out FICHIER.pdf est obligatoire (ou --preview pour seulement voir l'ordonnance).")

    opened = open_snapshot(db, user, passphrase_file, home=home)
    try:
        session = opened.session
        if session is None:
            raise NotInitializedForPrescribing("--db on a home without an appliance key: no journal, no ordonnance")
        signing = session.signing(_signer(opened, prescriber, db), None if db is not None else prescriber)
        view = session.open_patient(patient_id)
        options = {
            treatment.id: rules.Renewal(treatment.id, duration_days=days, route=routes.get(treatment.id, ""))
            for treatment in view.summary.treatments
        }
        renewals: Any = "all" if "all" in renew else [options.get(item, rules.Renewal(item)) for item in renew]
        plan = session.plan_prescription(view, signing, renew=renewals, new_lines=new_lines, options=options)
        if signing.chosen_by:
            click.echo(f"Signataire choisi : {signing.practitioner.display_name} (journalisé).", err=True)
        for note in plan.notes:
            click.echo(f"Note : {note}", err=True)
        if preview:
            click.echo(printed.preview_text(plan.prescription, snapshot_created_at=session.banner().created_at,
                                            footer=not no_footer))  # fmt: skip
            for warning in plan.warnings:
                click.echo(f"À confirmer [{warning.code}] : {warning.text}", err=True)
            return
        for warning in plan.warnings:
            if warning.code in acknowledged:
                click.echo(f"Confirmé [{warning.code}] : {warning.text}", err=True)
        issued = session.issue_prescription(
            plan, signing, acknowledged=acknowledged, duplicate=duplicate, drill=drill, footer=not no_footer
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
    click.echo(f"Ordonnance {kind}, {printed.line_count(len(prescription.lines))}, enregistrée dans : {written}")
    if send_to_printer:
        job = printing.print_pdf(document, save_to=written, printer=printer)
        click.echo(job.message_fr)


class NotInitializedForPrescribing(ContinuityError):
    exit_code = 6
    default_message_fr = (
        "Base de développement (--db) sur un poste non initialisé : sans journal, aucune ordonnance n'est "
        "imprimée (--preview reste possible après « continuity init »)."
    )


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

    return authenticate(home, user, passphrase, command=command, on_wait=announce_wait).secrets


@cli.group(cls=ContinuityGroup)
def journal() -> None:
    """The access and outage journal: verify, checkpoint, export, access reports."""


@journal.command("verify")
@_home_option
@click.option("--paper", help="COUNT:HASH from a paper copy of a checkpoint; the journal must match it.")
@click.option("--witness", "witness_source",
              help="The publisher's witness (URL, or the pull URL) or a receipt FILE: the journal must extend it.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CA to trust for an https witness (as for pull).")
@click.option("--json", "as_json_output", is_flag=True, help="Print the report as JSON (same exit codes).")
def journal_verify(
    home: Path, paper: str | None, witness_source: str | None, ca_file: Path | None, as_json_output: bool
) -> None:
    """Check the hash chain and the signed checkpoints. Exit 0 OK, 11 broken, 10 unreadable."""
    from continuity import journal as journal_module
    from continuity.errors import JournalBroken

    expected: tuple[int, str] | None = None
    if paper:
        count, _, head = paper.replace(" ", "").partition(":")
        if not count.isdigit() or len(head) != 64:
            raise click.BadParameter("attendu NOMBRE:EMPREINTE (64 caractères hexadécimaux)", param_hint="--paper")
        expected = (int(count), head.lower())
    witnessed = None
    if witness_source:
        from continuity import witness

        receipt: dict[str, Any] | None
        if witness_source.startswith(("http://", "https://")):
            receipt = witness.fetch_receipt(witness.resolve_url(witness_source, home), home, ca_file=ca_file)
        else:
            receipt = witness.read_receipt(Path(witness_source), witness.trusted_keys(home))
        assert receipt is not None
        witnessed = witness.witnessed_head(receipt)
    report = journal_module.verify_journal(home, paper=expected, witness=witnessed)
    if report.witnessed is not None and not as_json_output:
        seen = report.witnessed
        click.echo(f"Témoin de l'éditeur : journal vu le {journal_module.fr_time(seen.received_at)} "
                   f"jusqu'à l'entrée n° {seen.reported_index} (signé jusqu'à {seen.signed_count} entrées).")
    if as_json_output:
        fields = {key: getattr(report, key) for key in ("entries", "files", "first_index", "head", "checkpoints")}
        problems = [
            {"file": p.file, "line": p.line, "index": p.index, "kind": p.kind, "message_fr": p.message_fr}
            for p in report.problems
        ]
        last_seen = report.witnessed
        seen_json = None if last_seen is None else {
            "received_at": last_seen.received_at, "signed_count": last_seen.signed_count,
            "reported_index": last_seen.reported_index,
        }  # fmt: skip
        click.echo(json.dumps({"ok": report.ok, **fields, "unsigned_tail": report.unsigned_tail,
                               "witnessed": seen_json, "problems": problems, "notes_fr": report.notes_fr},
                              ensure_ascii=False))  # fmt: skip
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
        entry = journal_module.Journal(home).checkpoint(secrets.signing_key, user, box_key=secrets.box_key)
        click.echo(f"Point de contrôle signé : {entry.details['count']} entrées.", err=print_copy)
    if print_copy:
        click.echo(journal_module.checkpoint_text(home), nl=False)
    if pdf_path is not None:
        try:
            with pdf_path.open("xb") as handle:
                from continuity import pdf

                handle.write(pdf.render_checkpoint(journal_module.checkpoint_fields(home)))
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
    result = reconcile.export(journal_, secrets.all_box_keys, since, out, user=user, until=until, with_pdf=not no_pdf)
    journal_.checkpoint(secrets.signing_key, user, box_key=secrets.box_key)
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
    "unlock_failed": "a échoué à ouvrir une session",
    "search": "a cherché des patients",
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
            where = {"desk": entry.desk} if entry.desk else {}
            click.echo(json.dumps({**fields, "patient": entry.patient_id, "snapshot_seq": entry.snapshot_seq, **where}))
        return
    if not entries:
        click.echo("Aucun accès trouvé dans le journal conservé.")
        return
    for entry in entries:
        moment = entry.time.astimezone(journal_module.PARIS).strftime("%d/%m/%Y %H:%M:%S")
        label = _ACTION_LABELS_FR.get(entry.action, entry.action)
        target = f" {entry.patient_id}" if entry.patient_id else ""
        seq = f" (instantané n° {entry.snapshot_seq})" if entry.snapshot_seq is not None else ""
        from_desk = f" depuis le poste {entry.desk}" if entry.desk else ""
        click.echo(f"{moment}  {entry.user:<16} {label}{target}{seq}{from_desk}  [entrée {entry.index}]")


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
    """Check keys, data, journal, printer, PDF, schedule, ownership, disk, clock. Exit 0 OK, 1 WARNING, 2 FAILED."""
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
    raise click.exceptions.Exit(doctor.exit_code(checks))


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


# --- desks over SSH: desk add/remove/list/config (continuity/desk.py, docs/desks.md) ---------------


@cli.group(cls=ContinuityGroup)
def desk() -> None:
    """Desks in other rooms: each opens the interface over SSH with its own key (docs/desks.md)."""


def _require_initialised(home: Path) -> None:
    from continuity import keys
    from continuity.errors import NotInitialized

    if not (home / keys.APPLIANCE_PUB).is_file():
        raise NotInitialized(
            f"{home} is not an initialised appliance home (no {keys.APPLIANCE_PUB})",
            message_fr=f"Le dossier {home} n'est pas celui d'un appareil Continuity initialisé : indiquez le bon "
            "avec --home (ou CONTINUITY_HOME), par exemple --home /var/lib/continuity (docs/desks.md).",
        )


def _journal_desk_change(home: Path, action: str, details: dict[str, Any]) -> None:
    from continuity.journal import SYSTEM_USER, Journal

    Journal(home).append(user=SYSTEM_USER, action=action, details=details)


@desk.command("add")
@click.argument("name")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The desk PC's public key (the .pub file made by ssh-keygen on that PC).")
@click.option("--printer", help="CUPS queue of the printer beside that desk (default: the appliance's default).")
@click.option("--replace", is_flag=True, help="Change the key or printer of an existing desk.")
@_home_option
def desk_add(name: str, key_file: Path, printer: str | None, replace: bool, home: Path) -> None:
    """Authorise a desk: its key opens the Continuity interface, and nothing else."""
    from continuity import desk as desk_module

    desk_module.check_desk_name(name)
    _require_initialised(home)
    key = desk_module.read_key_file(key_file)
    added = desk_module.DeskRegistry(home).add(name, key, printer=printer, replace=replace)
    _journal_desk_change(home, "desk_added", {"desk": name, "fingerprint": key.fingerprint, "printer": printer,
                                              "replaced": replace})  # fmt: skip
    click.echo(f"Poste « {added.name} » autorisé.")
    click.echo(f"  empreinte de sa clé : {key.fingerprint}")
    click.echo("  (comparez-la avec celle affichée sur le poste : ssh-keygen -lf FICHIER.pub)")
    if printer:
        click.echo(f"  imprimante par défaut : {printer}")
        if not _queue_known(printer):
            click.echo(f"ATTENTION : l'imprimante « {printer} » n'est pas (encore) connue de CUPS sur cet appareil "
                       "(lpstat -p) : les impressions de ce poste seront enregistrées en PDF.", err=True)  # fmt: skip
    click.echo(f"  commande : ssh -t {_service_user()}@APPAREIL  (docs/desks.md)")


def _queue_known(queue: str) -> bool:
    import os
    import subprocess

    try:
        result = subprocess.run(["lpstat", "-p", queue], capture_output=True, text=True, timeout=10, check=False,
                                env={**os.environ, "LC_ALL": "C"})  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.startswith(f"printer {queue} ")


def _service_user() -> str:
    import getpass

    return getpass.getuser()


@desk.command("remove")
@click.argument("name")
@_home_option
def desk_remove(name: str, home: Path) -> None:
    """Withdraw a desk: its key no longer connects, and a session open there ends at its next key press."""
    from continuity import desk as desk_module

    removed = desk_module.DeskRegistry(home).remove(name)
    _journal_desk_change(home, "desk_removed", {"desk": name, "fingerprint": removed.key.fingerprint})
    click.echo(f"Poste « {name} » retiré : sa clé n'ouvre plus rien ; une session ouverte s'y termine à la "
               "prochaine touche.")  # fmt: skip


@desk.command("list")
@_home_option
@click.option("--json", "as_json_output", is_flag=True, help="Print a JSON list.")
def desk_list(home: Path, as_json_output: bool) -> None:
    """The authorised desks: name, key fingerprint, printer, date added."""
    from continuity import desk as desk_module

    desks = desk_module.DeskRegistry(home).desks()
    if as_json_output:
        rows = [{**d.as_json(), "fingerprint": d.key.fingerprint, "key_type": d.key.type} for d in desks]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not desks:
        click.echo("Aucun poste autorisé (continuity desk add NOM --key POSTE.pub).")
        return
    for item in desks:
        added = dt.datetime.fromisoformat(item.added_at).astimezone(display.PRACTICE_TZ)
        printer = item.printer or "(imprimante par défaut)"
        click.echo(f"{item.name:<20} {item.key.fingerprint}  {printer:<24} ajouté le {display.fr_datetime(added)}")


@desk.command("config")
@click.option("--port", required=True, type=click.IntRange(1, 65535), help="Port sshd listens on.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for sshd_config, the include fragment and the host key.")
@click.option("--user", "service_user", help="The service user desks log in as (default: the current user).")
@click.option("--listen", multiple=True, help="Address to listen on (repeatable; default: all).")
@click.option("--also-allow", multiple=True, help="Another user sshd may let in (e.g. an administrator).")
@_home_option
def desk_config(port: int, out: Path, service_user: str | None, listen: tuple[str, ...],
                also_allow: tuple[str, ...], home: Path) -> None:  # fmt: skip
    """Write an sshd configuration for the desks (include fragment + complete server + host key)."""
    from continuity import desk as desk_module

    # The keys file sshd is told to read is the home's: a wrong or missing home would give a
    # configuration that accepts no desk, with nothing to say why.
    _require_initialised(home)
    user = service_user or _service_user()
    written = desk_module.write_sshd_config(out, home=home.absolute(), port=port, user=user, listen=listen,
                                            also_allow=also_allow)  # fmt: skip
    click.echo("Configuration sshd des postes écrite :")
    click.echo(f"  à inclure dans le sshd du système : {written.fragment}  (→ /etc/ssh/sshd_config.d/)")
    click.echo(f"  serveur complet (essais, démo) :    {written.config}")
    click.echo(f"      lancer : /usr/sbin/sshd -D -f {written.config}")
    state = "nouvelle" if written.created_host_key else "conservée"
    click.echo(f"  clé d'hôte ({state}) : {written.host_key}")
    click.echo("Empreinte à vérifier par téléphone à la première connexion de chaque poste :")
    click.echo(f"  serveur complet : {written.host_fingerprint}")
    system_key = Path("/etc/ssh/ssh_host_ed25519_key.pub")
    if system_key.is_file():
        try:
            fingerprint = desk_module.parse_public_key(system_key.read_bytes()).fingerprint
            click.echo(f"  sshd du système : {fingerprint}")
        except (OSError, desk_module.DeskError) as error:
            log.warning("cannot read %s: %s", system_key, error)
    for warning in written.warnings_fr:
        click.echo(f"ATTENTION : {warning}", err=True)
    problem = desk_module.check_sshd_config(written.config)
    if problem is None:
        click.echo("Vérification « sshd -t » : configuration acceptée.")
    else:
        click.echo(f"Vérification « sshd -t » impossible ou refusée : {problem}", err=True)


def _default_home_path() -> Path:
    from continuity import store

    return store.default_home()


def _open_desk(home: Path, name: str) -> None:
    """Before a desk's interface opens: the desk is still listed, and a terminal is all it asked for."""
    import os

    from continuity import desk as desk_module
    from continuity.journal import SYSTEM_USER, Journal

    listed = desk_module.require_listed(home, name)
    refused = desk_module.refusal(os.environ, terminal=sys.stdin.isatty() and sys.stdout.isatty())
    if refused is not None:
        detail, message_fr = refused
        reason = "command" if "SSH_ORIGINAL_COMMAND" in os.environ else "no_terminal"
        try:
            Journal(home).append(user=SYSTEM_USER, action="desk_refused", details={"desk": name, "reason": reason})
        except ContinuityError as error:
            log.error("could not journal a refused desk request: %s", error)
        # Whoever reads this stderr is the person at the desk (sshd sends it to their ssh client): the
        # French sentence only. The English detail is the journal's desk_refused entry.
        log.debug("desk %s: %s", name, detail)
        click.echo(f"Erreur : {message_fr}", err=True)
        click.get_current_context().exit(desk_module.DeskError.exit_code)
    desk_module.use_printer(listed)


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
@click.option("--desk", "desk_name", help="The desk this interface serves (the forced command of an SSH desk key).")
@click.option("--print-folder", type=click.Path(file_okay=False, path_type=Path), envvar="CONTINUITY_PRINT_FOLDER",
              help="Where documents go when no printer works (default: impressions/ in the appliance home).")
@click.option("--print-keep-days", type=click.IntRange(1, 365), default=7, show_default=True,
              envvar="CONTINUITY_PRINT_KEEP_DAYS", help="Documents saved there are deleted after this many days.")
def tui_command(home: Path | None, db: Path | None, user: str | None, idle_minutes: float, today: str | None,
                desk_name: str | None, print_folder: Path | None, print_keep_days: int) -> None:  # fmt: skip
    """Open the receptionist's screen: unlock, search a patient, read the summary, agenda, ordonnance."""
    from continuity.tui.app import make_app, parse_today

    if today:
        try:
            parse_today(today)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--today") from error
    if desk_name is not None:
        if db is not None:
            raise click.UsageError("--desk ouvre l'appareil lui-même : pas de --db")
        home = home or _default_home_path()
        _open_desk(home, desk_name)
    make_app(home=home, db=db, user=user, idle_minutes=idle_minutes, today=today, desk=desk_name,
             print_folder=print_folder, print_keep_days=print_keep_days).run()


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
    # An ordonnance is signed by the logged-in prescriber: the demo's doctor, not the reception login.
    doctor_file = practice.platform / "demo-doctor-passphrase.txt"
    doctor_file.write_text(demo.DEMO_DOCTOR_PASSPHRASE + "\n")
    doctor = {**unlock, "user": demo.DEMO_DOCTOR, "passphrase_file": doctor_file}
    click.echo(f"\n$ continuity prescribe {patient_id} --user {demo.DEMO_DOCTOR} --renew all --confirm --out {out}")
    ctx.invoke(
        prescribe_command, patient_id=patient_id, prescriber=None, renew=("all",), line_specs=(),
        renew_duration=None, route_specs=(), confirm=("",), out=out, preview=False, send_to_printer=False,
        printer=None, duplicate=False, drill=False, no_footer=False, **doctor,
    )
    click.echo(f"\nOuvrir l'interface : continuity tui --home {practice.home}")

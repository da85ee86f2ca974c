"""Publisher side: build the snapshot database from FHIR sources, check it, then compress, seal and sign it.

A broken export never replaces good data: a build that keeps no patient, or rejects more than a set
share of the resources read, is refused (``check_export``); and with the publisher's record of its
publications (``PublisherState``) a patient count that dropped by more than a set share is refused
too, and the next sequence number is the record's, so a cron job cannot reuse or skip one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import nacl.signing
from nacl.public import PublicKey

from continuity import envelope, snapshot_build, snapshotdb
from continuity.errors import ExportRefused, InputError, ShrinkRefused
from continuity.import_report import ImportReport
from continuity.import_summary import ImportSummary
from continuity.strict_json import object_without_duplicates, refuse_constant

if TYPE_CHECKING:
    from continuity.drugs.bdpm import Bdpm

_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """`48h`, `7d`, `90m`, `1w2d`: a positive duration."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise InputError(f"invalid duration {text!r}: use e.g. 48h, 7d, 90m", message_fr=f"Durée invalide : {text}")
    seconds = sum(int(value) * _UNITS[unit] for value, unit in parts)
    if seconds <= 0:
        raise InputError(f"duration {text!r} must be positive", message_fr=f"Durée invalide : {text}")
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Published:
    header: envelope.Header
    build: snapshot_build.BuildResult
    out: Path


DEFAULT_MAX_REJECTED = 0.05
"""Largest share of the resources read that may be rejected as errors of the export (``--max-rejected``)."""

DEFAULT_MAX_SHRINK = 0.10
"""Largest drop of the patient count from the previous publication (``--max-shrink``)."""


def check_export(result: snapshot_build.BuildResult, *, max_rejected: float, allow_rejected: bool) -> None:
    """Refuse a build that must not be published: no patient at all, or too many resources rejected.

    Raises:
        ExportRefused: carrying the build (and its report) so that the caller can still show it.
    """
    report = result.report
    if result.counts.get("patient", 0) == 0:
        raise ExportRefused(
            "no patient was kept from the export: nothing is published (an empty or truncated export?)",
            message_fr="L'export ne contient aucun patient utilisable : rien n'est publié.",
            build=result,
        )
    if report is not None and not allow_rejected and report.rejected_share > max_rejected:
        raise ExportRefused(
            f"{report.rejected} of {report.read} resources ({100 * report.rejected_share:.1f} %) were rejected as "
            f"errors of the export, more than the {100 * max_rejected:g} % allowed (--max-rejected); fix the export, "
            "or publish it anyway with --allow-rejected",
            message_fr=(
                f"{report.rejected} éléments de l'export sur {report.read} ont été refusés "
                f"({100 * report.rejected_share:.1f} %) : l'export n'est pas publié."
            ),
            build=result,
        )


def build(
    sources: Sequence[Path],
    out: Path,
    *,
    strict: bool = False,
    practice_id: str | None = None,
    created_at: dt.datetime | None = None,
    max_rejected: float = DEFAULT_MAX_REJECTED,
    allow_rejected: bool = False,
    workers: int | None = None,
    drugs: Bdpm | None = None,
) -> snapshot_build.BuildResult:
    """Read FHIR sources (files or Bulk NDJSON folders) and write the snapshot database.

    ``out`` is written only for an export that may be published (``check_export``); the report is in
    the result, or in the ``ExportRefused`` raised. ``drugs``: a read BDPM folder
    (continuity/drugs/bdpm.py) the snapshot carries and every treatment is resolved against.
    """
    from continuity import fhir  # the reader (and orjson) load only when a build runs

    report = ImportReport()
    out.parent.mkdir(parents=True, exist_ok=True)
    pending = out.with_name(f".{out.name}.building")
    try:
        result = snapshot_build.build_from_records(
            fhir.read_records(sources, strict=strict, report=report, workers=workers),
            pending,
            practice_id=practice_id,
            created_at=created_at,
            strict=strict,
            drugs=drugs,
            import_summary=report.summary,
        )
        result.report = report
        check_export(result, max_rejected=max_rejected, allow_rejected=allow_rejected)
        os.replace(pending, out)
    finally:
        pending.unlink(missing_ok=True)
    result.path = out
    return result


def seal_database(
    database: Path,
    out: Path,
    *,
    signing_key: nacl.signing.SigningKey,
    recipients: Sequence[PublicKey],
    practice_id: str,
    sequence: int,
    counts: dict[str, int],
    expires_in: dt.timedelta = dt.timedelta(hours=48),
    created_at: dt.datetime | None = None,
    import_summary: ImportSummary | None = None,
) -> envelope.Header:
    created = (created_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    return envelope.seal(
        database,
        out,
        signing_keys=[signing_key],
        recipients=recipients,
        practice_id=practice_id,
        sequence=sequence,
        created_at=created,
        expires_at=created + expires_in,
        schema_version=snapshotdb.SCHEMA_VERSION,
        counts=counts,
        import_summary=import_summary.header_fields() if import_summary is not None else None,
    )


def publish(
    sources: Sequence[Path],
    out: Path,
    *,
    signing_key: nacl.signing.SigningKey,
    recipients: Sequence[PublicKey],
    practice_id: str,
    sequence: int | None,
    expires_in: dt.timedelta = dt.timedelta(hours=48),
    strict: bool = False,
    created_at: dt.datetime | None = None,
    state: PublisherState | None = None,
    max_shrink: float = DEFAULT_MAX_SHRINK,
    allow_shrink: bool = False,
    max_rejected: float = DEFAULT_MAX_REJECTED,
    allow_rejected: bool = False,
    workers: int | None = None,
    drugs: Bdpm | None = None,
) -> Published:
    """Build, check, compress, seal to every recipient and sign. The plaintext database only lives in a temp dir.

    ``drugs``: a read BDPM folder the snapshot carries (``build``).

    With a ``state`` (the record of this practice's publications), ``sequence=None`` takes the next one,
    an explicit sequence must be greater than the last published, and a patient count that dropped by
    more than ``max_shrink`` from the last publication is refused unless ``allow_shrink``: a truncated
    export never replaces good data. The state is updated only once the file is written.

    Raises:
        ExportRefused: no patient, too many rejected resources, or a sequence already used.
        ShrinkRefused: far fewer patients than the last publication.
    """
    with state.locked() if state is not None else contextlib.nullcontext():
        return _publish_locked(
            sources,
            out,
            signing_key=signing_key,
            recipients=recipients,
            practice_id=practice_id,
            sequence=sequence,
            expires_in=expires_in,
            strict=strict,
            created_at=created_at,
            state=state,
            max_shrink=max_shrink,
            allow_shrink=allow_shrink,
            max_rejected=max_rejected,
            allow_rejected=allow_rejected,
            workers=workers,
            drugs=drugs,
        )


def _publish_locked(
    sources: Sequence[Path],
    out: Path,
    *,
    signing_key: nacl.signing.SigningKey,
    recipients: Sequence[PublicKey],
    practice_id: str,
    sequence: int | None,
    expires_in: dt.timedelta,
    strict: bool,
    created_at: dt.datetime | None,
    state: PublisherState | None,
    max_shrink: float,
    allow_shrink: bool,
    max_rejected: float,
    allow_rejected: bool,
    workers: int | None,
    drugs: Bdpm | None,
) -> Published:
    if state is not None:
        state.check_readable()
    out.parent.mkdir(parents=True, exist_ok=True)  # `--out www/latest.snap` on a first run: www/ is created
    sequence = next_sequence(state, sequence, practice_id)
    with tempfile.TemporaryDirectory(prefix="continuity-publish-", dir=out.parent) as work:
        database = Path(work) / "snapshot.db"
        built = build(
            sources,
            database,
            strict=strict,
            practice_id=practice_id,
            created_at=created_at,
            max_rejected=max_rejected,
            allow_rejected=allow_rejected,
            workers=workers,
            drugs=drugs,
        )
        if state is not None:
            state.check_shrink(practice_id, built.counts, max_shrink=max_shrink, allow_shrink=allow_shrink, build=built)
        header = seal_database(
            database,
            out,
            signing_key=signing_key,
            recipients=recipients,
            practice_id=practice_id,
            sequence=sequence,
            counts=built.counts,
            expires_in=expires_in,
            created_at=created_at,
            import_summary=built.report.summary() if built.report is not None else None,
        )
    if state is not None:
        state.record(header)
    return Published(header=header, build=built, out=out)


def next_sequence(state: PublisherState | None, sequence: int | None, practice_id: str) -> int:
    """The sequence to publish under: the next one after the state's (``None``: auto), or the one given,
    which must then be greater than the last published."""
    last = state.last_sequence(practice_id) if state is not None else 0
    if sequence is None:
        return last + 1
    if sequence <= last:
        raise ExportRefused(
            f"sequence {sequence} is not greater than the last one published for {practice_id}, {last} "
            "(use --seq auto)",
            message_fr=f"Le numéro de séquence {sequence} a déjà été utilisé (dernier publié : {last}).",
        )
    return sequence


# --- the publisher's record of its publications ---------------------------------------------------

STATE_NAME = "publish-state.json"
_STATE_FORMAT = "continuity-publisher-state"
_MAX_STATE_BYTES = 1 << 20


class PublisherState:
    """A small record, per practice, of the last publication: sequence, counts, payload hash, time.

    Kept in the key folder (``publish-state.json``) or a file given with ``--state``; written
    atomically after each publication. It holds no patient data, only counts.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside_key(cls, key_path: Path) -> PublisherState:
        return cls((key_path if key_path.is_dir() else key_path.parent) / STATE_NAME)

    def _load(self) -> dict[str, Any]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return {"format": _STATE_FORMAT, "practices": {}}
        except OSError as error:
            raise self._unreadable(f"cannot read it ({error.strerror})") from error
        if size > _MAX_STATE_BYTES:
            raise self._unreadable(f"{size} bytes is more than a state file holds")
        try:
            data = json.loads(
                self.path.read_bytes(), object_pairs_hook=object_without_duplicates, parse_constant=refuse_constant
            )
        except (OSError, ValueError) as error:
            raise self._unreadable(f"not valid JSON ({error})") from error
        practices = data.get("practices") if isinstance(data, dict) else None
        if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT or not isinstance(practices, dict):
            raise self._unreadable("not a publisher state file")
        for practice, entry in practices.items():
            if (
                not isinstance(entry, dict)
                or not _is_count(entry.get("sequence"))
                or not _counts_ok(entry.get("counts"))
            ):
                raise self._unreadable(f"the entry of practice {str(practice)[:64]!r} is malformed")
        return data

    def _unreadable(self, detail: str) -> ExportRefused:
        # A state that cannot be read must not be rebuilt silently: --seq auto would restart at 1 and the
        # shrink guard would have nothing to compare with.
        return ExportRefused(
            f"publisher state {self.path}: {detail}; restore it, or move it aside to start again",
            message_fr=f"Le registre des publications {self.path} est illisible : rien n'est publié.",
        )

    def check_readable(self) -> None:
        self._load()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the record for one publication: two overlapping runs (a slow night and the next cron) would
        otherwise both take the same ``--seq auto``, and appliances would raise an equivocation alarm."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(f".{self.path.name}.lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ExportRefused(
                    f"another publication holds {self.path} (its lock file): not publishing twice at once",
                    message_fr="Une autre publication est en cours : celle-ci n'est pas faite.",
                ) from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def entry(self, practice_id: str) -> dict[str, Any] | None:
        entry = self._load()["practices"].get(practice_id)
        return cast("dict[str, Any] | None", entry)

    def last_sequence(self, practice_id: str) -> int:
        entry = self.entry(practice_id)
        return int(entry["sequence"]) if entry else 0

    def check_shrink(
        self,
        practice_id: str,
        counts: Mapping[str, int],
        *,
        max_shrink: float,
        allow_shrink: bool,
        build: snapshot_build.BuildResult | None = None,
    ) -> None:
        """Refuse a patient count that dropped by more than ``max_shrink`` from the last publication."""
        entry = self.entry(practice_id)
        if entry is None or allow_shrink:
            return
        before = int(entry["counts"].get("patient", 0))
        now = counts.get("patient", 0)
        if before and now < before * (1 - max_shrink):
            raise ShrinkRefused(
                f"{now} patients against {before} in publication {entry['sequence']} of {entry.get('published_at')}: "
                f"a drop of {100 * (before - now) / before:.1f} %, more than the {100 * max_shrink:g} % allowed "
                "(--max-shrink). Is the export truncated? Publish anyway with --allow-shrink",
                message_fr=(
                    f"L'export compte {now} patients contre {before} à la publication précédente : "
                    "il n'est pas publié (export tronqué ?)."
                ),
                build=build,
            )

    def record(self, header: envelope.Header) -> None:
        """Remember a publication (atomically: a crash leaves the old record or the new one)."""
        data = self._load()
        data["practices"][header.practice_id] = {
            "sequence": header.sequence,
            "counts": dict(header.counts),
            "payload_sha256": header.payload.sha256,
            "published_at": envelope.format_time(header.created_at),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with temp.open("w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        finally:
            temp.unlink(missing_ok=True)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 53


def _counts_ok(value: object) -> bool:
    return isinstance(value, dict) and len(value) <= 64 and all(_is_count(count) for count in value.values())

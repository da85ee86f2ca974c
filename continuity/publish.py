"""Publisher side: build the snapshot database from FHIR sources, then compress, seal and sign it."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
from nacl.public import PublicKey

from continuity import envelope, snapshot_build, snapshotdb
from continuity.errors import InputError
from continuity.import_report import ImportReport

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


def build(
    sources: Sequence[Path],
    out: Path,
    *,
    strict: bool = False,
    practice_id: str | None = None,
    created_at: dt.datetime | None = None,
) -> snapshot_build.BuildResult:
    """Read FHIR sources (files or Bulk NDJSON folders) and write the snapshot database."""
    from continuity import fhir

    report = ImportReport()
    result = snapshot_build.build_from_records(
        fhir.read_records(sources, strict=strict, report=report),
        out,
        practice_id=practice_id,
        created_at=created_at,
        strict=strict,
    )
    result.report = report
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
    )


def publish(
    sources: Sequence[Path],
    out: Path,
    *,
    signing_key: nacl.signing.SigningKey,
    recipients: Sequence[PublicKey],
    practice_id: str,
    sequence: int,
    expires_in: dt.timedelta = dt.timedelta(hours=48),
    strict: bool = False,
    created_at: dt.datetime | None = None,
) -> Published:
    """Build, compress, seal to every recipient and sign. The plaintext database only lives in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="continuity-publish-", dir=out.parent) as work:
        database = Path(work) / "snapshot.db"
        built = build(sources, database, strict=strict, practice_id=practice_id, created_at=created_at)
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
        )
    return Published(header=header, build=built, out=out)

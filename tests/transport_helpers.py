"""Shared fixtures for the transport tests: a publisher, an initialised appliance, snapshot makers, tampering."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing
import pytest

from continuity import envelope, keys, snapshotdb
from continuity.store import Store
from tests.factories import small_practice

PASSPHRASE = "cheval correct agrafe"
USER = "alice"
PRACTICE = "cabinet-lilas"
NOW = dt.datetime(2026, 11, 28, 6, 0, tzinfo=dt.UTC)


def flip_byte(data: bytes, index: int, mask: int = 0x01) -> bytes:
    """The same bytes with one bit flipped at `index` (negative indexes count from the end)."""
    mutable = bytearray(data)
    mutable[index] ^= mask
    return bytes(mutable)


def use_weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test-only cheap argon2id (docs/snapshot-format.md §8); production defaults stay MODERATE."""
    monkeypatch.setenv(keys.WEAK_KDF_ENV, "1")


@dataclass
class Rig:
    """A publisher key, an appliance home that trusts it, and a maker of snapshot files."""

    tmp: Path
    home: Path
    publisher: nacl.signing.SigningKey
    secrets: keys.ApplianceSecrets
    database: Path
    counts: dict[str, int]
    made: list[Path] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return Store(self.home)

    def make(
        self,
        sequence: int,
        *,
        created_at: dt.datetime | None = None,
        expires_in: dt.timedelta = dt.timedelta(hours=48),
        database: Path | None = None,
        signing_key: nacl.signing.SigningKey | None = None,
        recipients: list[nacl.public.PublicKey] | None = None,
        practice_id: str = PRACTICE,
        counts: dict[str, int] | None = None,
        name: str | None = None,
    ) -> Path:
        created = created_at or (NOW - dt.timedelta(hours=1) + dt.timedelta(seconds=sequence))
        out = self.tmp / (name or f"snap-{sequence}-{len(self.made)}.snap")
        envelope.seal(
            database or self.database,
            out,
            signing_keys=[signing_key or self.publisher],
            recipients=recipients or [self.secrets.box_key.public_key],
            practice_id=practice_id,
            sequence=sequence,
            created_at=created,
            expires_at=created + expires_in,
            schema_version=snapshotdb.SCHEMA_VERSION,
            counts=self.counts if counts is None else counts,
        )
        self.made.append(out)
        return out

    def ingest_bytes(self, data: bytes, now: dt.datetime = NOW) -> str:
        import io

        return self.store.ingest(io.BytesIO(data), now=now).outcome

    def ingest(self, path: Path, now: dt.datetime = NOW) -> str:
        with path.open("rb") as handle:
            return self.store.ingest(handle, now=now).outcome

    def current_bytes(self) -> bytes | None:
        path = self.store.current_path()
        return path.read_bytes() if path else None

    def snapshot_state(self) -> tuple[bytes | None, list[str]]:
        """What must not change when a file is rejected: current file bytes and the stored file names."""
        return self.current_bytes(), [p.name for p in self.store.snapshot_files()]


def make_rig(tmp_path: Path) -> Rig:
    home = tmp_path / "home"
    Store(home).create()
    secrets = keys.init_appliance(home, USER, PASSPHRASE)
    pub_dir = tmp_path / "publisher"
    keys.generate_publisher_key(pub_dir)
    keys.trust_publisher(home, pub_dir / "publisher.pub")
    database = tmp_path / "practice.db"
    built = snapshotdb.build_from_records(small_practice(), database, practice_id=PRACTICE)
    return Rig(
        tmp=tmp_path,
        home=home,
        publisher=keys.load_publisher_signing_key(pub_dir),
        secrets=secrets,
        database=database,
        counts=built.counts,
    )


def assert_untouched(rig: Rig, before: tuple[bytes | None, list[str]]) -> None:
    assert rig.snapshot_state() == before
    assert rig.store.staging_files() == []
    assert not [p for p in os.listdir(rig.home / "store") if p.endswith(".tmp")]

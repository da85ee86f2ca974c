"""The envelope, attacked for real: every adversarial case asserts the typed error, the current snapshot
unchanged and nothing left in staging (docs/snapshot-format.md §7)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import nacl.signing
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey

from continuity import envelope, keys
from continuity.errors import (
    Equivocation,
    Expired,
    Malformed,
    NotForThisAppliance,
    PayloadCorrupt,
    Rollback,
    SequenceJump,
    SnapshotRejected,
    TooLarge,
    Truncated,
    UnsupportedFormat,
    UntrustedSigner,
)
from continuity.store import Store, StoreConfig
from tests.transport_helpers import NOW, Rig, assert_untouched, flip_byte, make_rig, use_weak_kdf

CHUNK = envelope.CHUNK_SIZE + envelope.ABYTES


@pytest.fixture(autouse=True)
def _weak_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    use_weak_kdf(monkeypatch)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path)


def split(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(prefix, header json, signature block, payload) of a well-formed file."""
    _, _, length = envelope.PREFIX.unpack(data[:14])
    header = data[14 : 14 + length]
    count = data[14 + length]
    end = 15 + length + 80 * count
    return data[:14], header, data[14 + length : end], data[end:]


def resign(data: bytes, key: nacl.signing.SigningKey, edit: Callable[[bytes], bytes]) -> bytes:
    """Edit the header JSON and sign it again with `key`: tests what a (compromised) publisher could send."""
    prefix, header, _, payload = split(data)
    new_header = edit(header)
    signed = envelope.PREFIX.pack(envelope.MAGIC, 1, len(new_header)) + new_header
    entry = keys.key_id(bytes(key.verify_key)) + key.sign(signed).signature
    return signed + b"\x01" + entry + payload


def edit_json(change: Callable[[dict[str, object]], None]) -> Callable[[bytes], bytes]:
    def edit(header: bytes) -> bytes:
        obj = json.loads(header)
        change(obj)
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    return edit


@pytest.fixture
def big_database(tmp_path: Path) -> Path:
    """Incompressible bytes: 5 secretstream chunks (the nightly side never decrypts, any bytes do)."""
    path = tmp_path / "random.db"
    path.write_bytes(os.urandom(4 * envelope.CHUNK_SIZE + 1000))
    return path


@pytest.fixture
def current(rig: Rig) -> tuple[bytes | None, list[str]]:
    """A store with snapshot 10 current; returns its state to compare against after each attack."""
    assert rig.ingest(rig.make(10)) == "accepted"
    return rig.snapshot_state()


def rejects(rig: Rig, before: tuple[bytes | None, list[str]], data: bytes, error: type[SnapshotRejected]) -> str:
    with pytest.raises(error) as caught:
        rig.ingest_bytes(data)
    assert_untouched(rig, before)
    return str(caught.value)


# --- round trip -----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(st.binary(min_size=1, max_size=3000), st.binary(min_size=1, max_size=50).map(lambda b: b * 4000)),
    compression=st.sampled_from(envelope.COMPRESSIONS),
)
def test_seal_then_open_round_trips(data: bytes, compression: str) -> None:
    publisher = nacl.signing.SigningKey.generate()
    appliance = PrivateKey.generate()
    with tempfile.TemporaryDirectory() as work:
        source, out = Path(work) / "db", Path(work) / "out.snap"
        source.write_bytes(data)
        sealed = envelope.seal(
            source,
            out,
            signing_keys=[publisher],
            recipients=[PrivateKey.generate().public_key, appliance.public_key],
            practice_id="p",
            sequence=3,
            created_at=NOW,
            expires_at=NOW + dt.timedelta(days=2),
            schema_version=1,
            counts={"patients": 1},
            compression=compression,
        )
        assert sealed.payload.compression == compression
        with out.open("rb") as handle:
            header = envelope.read_header(handle, [publisher.verify_key])
            assert header == sealed
            assert bytes(envelope.decrypt_payload(handle, header, appliance)) == data


def test_exact_chunk_multiple_and_layout(tmp_path: Path) -> None:
    publisher = nacl.signing.SigningKey.generate()
    appliance = PrivateKey.generate()
    source = tmp_path / "db"
    source.write_bytes(os.urandom(3 * envelope.CHUNK_SIZE))
    header = envelope.seal(
        source,
        tmp_path / "o",
        signing_keys=[publisher],
        recipients=[appliance.public_key],
        practice_id="p",
        sequence=1,
        created_at=NOW,
        expires_at=NOW + dt.timedelta(days=1),
        schema_version=1,
        counts={},
    )
    data = (tmp_path / "o").read_bytes()
    assert data[:8] == b"\x89CNTY\r\n\x1a"
    assert len(data) == header.total_length
    assert header.payload.ciphertext_length == envelope.ciphertext_length(header.payload.plaintext_length)
    assert hashlib.sha256(split(data)[3]).hexdigest() == header.payload.sha256
    with (tmp_path / "o").open("rb") as handle:
        envelope.read_header(handle, [publisher.verify_key])
        assert bytes(envelope.decrypt_payload(handle, header, appliance)) == source.read_bytes()


# --- framing and signature ------------------------------------------------------------------------


def test_empty_file(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    rejects(rig, current, b"", Truncated)


def test_not_a_snapshot(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    rejects(rig, current, b"SQLite format 3\x00" + bytes(100), Malformed)


def test_header_bit_flip_breaks_the_signature(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    data = rig.make(11).read_bytes()
    rejects(rig, current, flip_byte(data, 40), UntrustedSigner)


def test_magic_and_version_flips(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    data = rig.make(11).read_bytes()
    rejects(rig, current, flip_byte(data, 0), Malformed)
    rejects(rig, current, flip_byte(data, 9), UnsupportedFormat)


def test_header_length_2_pow_32_minus_1_is_refused_before_reading(
    rig: Rig, current: tuple[bytes | None, list[str]]
) -> None:
    data = rig.make(11).read_bytes()
    hostile = envelope.MAGIC + struct.pack(">HI", 1, 2**32 - 1) + data[14:]
    message = rejects(rig, current, hostile, Malformed)
    assert "4294967295" in message


def test_stream_is_not_read_past_the_cap_for_a_huge_header_length() -> None:
    class Counting(io.BytesIO):
        read_total = 0

        def read(self, size: int | None = -1, /) -> bytes:
            data = super().read(size)
            Counting.read_total += len(data)
            return data

    stream = Counting(envelope.MAGIC + struct.pack(">HI", 1, 2**32 - 1) + bytes(1 << 20))
    with pytest.raises(Malformed):
        envelope.read_header(stream, [])
    assert Counting.read_total == 14


@pytest.mark.parametrize("count", [0, 9, 255])
def test_signature_count_out_of_range(rig: Rig, current: tuple[bytes | None, list[str]], count: int) -> None:
    prefix, header, _, payload = split(rig.make(11).read_bytes())
    rejects(rig, current, prefix + header + bytes([count]) + bytes(80 * count) + payload, Malformed)


def test_file_ending_inside_the_signatures(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    prefix, header, signatures, _ = split(rig.make(11).read_bytes())
    rejects(rig, current, prefix + header + signatures[:40], Truncated)


def test_signed_by_an_unknown_key(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    stranger = nacl.signing.SigningKey.generate()
    rejects(rig, current, rig.make(11, signing_key=stranger).read_bytes(), UntrustedSigner)


def test_pinned_key_id_with_a_bad_signature(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    prefix, header, signatures, payload = split(rig.make(11).read_bytes())
    rejects(rig, current, prefix + header + flip_byte(signatures, -1) + payload, UntrustedSigner)


def test_an_extra_unknown_signature_is_ignored(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    prefix, header, signatures, payload = split(rig.make(11).read_bytes())
    stranger = nacl.signing.SigningKey.generate()
    extra = keys.key_id(bytes(stranger.verify_key)) + stranger.sign(prefix + header).signature
    assert rig.ingest_bytes(prefix + header + b"\x02" + extra + signatures[1:] + payload) == "accepted"


def test_no_pinned_publisher(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    for path in (rig.home / "trusted").iterdir():
        path.unlink()
    message = rejects(rig, current, rig.make(11).read_bytes(), UntrustedSigner)
    assert "continuity trust" in message


# --- strict header (signed by the real key: defence against a publisher bug or compromise) ---------


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda h: h.replace(b'"sequence":11', b'"sequence":11,"sequence":12'), Malformed),
        (lambda h: h.replace(b'"sequence":11', b'"sequence":NaN'), Malformed),
        (lambda h: h.replace(b'"sequence":11', b'"sequence":11.0'), Malformed),
        (lambda h: h.replace(b'"sequence":11', b'"sequence":1e3'), Malformed),
        (lambda h: h.replace(b'"sequence":11', b'"sequence":true'), Malformed),
        (lambda h: h.replace(b'"sequence":11', b'"sequence":11,"extra":1'), Malformed),
        (lambda h: h.replace(b'"sequence":11', b'"sequence":-1'), Malformed),
        (lambda h: h.replace(b'"format_version":1', b'"format_version":2'), UnsupportedFormat),
        (lambda h: h.replace(b'"compression":"zstd"', b'"compression":"lz4"'), UnsupportedFormat),
        (lambda h: h.replace(b'"chunk_size":65536', b'"chunk_size":1'), Malformed),
        (lambda h: h.replace(b'Z"', b'+01:00"', 1), Malformed),
        (lambda h: b"\xef\xbb\xbf" + h, Malformed),
        (lambda h: h[:-1], Malformed),
        (lambda h: b"[" * 5000 + b"]" * 5000, Malformed),
    ],
)
def test_strict_header_json(
    rig: Rig, current: tuple[bytes | None, list[str]], edit: Callable[[bytes], bytes], error: type[SnapshotRejected]
) -> None:
    data = rig.make(11).read_bytes()
    rejects(rig, current, resign(data, rig.publisher, edit), error)


def test_inconsistent_payload_lengths(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    def change(obj: dict[str, object]) -> None:
        payload = obj["payload"]
        assert isinstance(payload, dict)
        payload["ciphertext_length"] += 1

    rejects(rig, current, resign(rig.make(11).read_bytes(), rig.publisher, edit_json(change)), Malformed)


def test_decompression_bomb_size_is_capped(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    def change(obj: dict[str, object]) -> None:
        payload = obj["payload"]
        assert isinstance(payload, dict)
        payload["database_length"] = (1 << 30) + 1

    rejects(rig, current, resign(rig.make(11).read_bytes(), rig.publisher, edit_json(change)), Malformed)


# --- recipient, sequence, time --------------------------------------------------------------------


def test_valid_file_for_another_appliance(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    other = PrivateKey.generate().public_key
    rejects(rig, current, rig.make(11, recipients=[other]).read_bytes(), NotForThisAppliance)


def test_file_for_another_practice(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    rejects(rig, current, rig.make(11, practice_id="autre-cabinet").read_bytes(), NotForThisAppliance)


def test_replayed_older_snapshot(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    rejects(rig, current, rig.make(9).read_bytes(), Rollback)


def test_same_file_again_is_a_no_op(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    assert rig.ingest(rig.made[0]) == "unchanged"
    assert_untouched(rig, current)


def test_same_sequence_other_content_is_equivocation(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    rejects(rig, current, rig.make(10).read_bytes(), Equivocation)


def test_older_created_at_with_a_higher_sequence(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    data = rig.make(11, created_at=NOW - dt.timedelta(days=1)).read_bytes()
    rejects(rig, current, data, Rollback)


def test_sequence_jump_of_a_billion(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    rejects(rig, current, rig.make(10 + 10**9).read_bytes(), SequenceJump)


def test_expired(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    data = rig.make(11, created_at=NOW - dt.timedelta(minutes=30), expires_in=dt.timedelta(minutes=20)).read_bytes()
    rejects(rig, current, data, Expired)


def test_created_in_the_future(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    data = rig.make(11, created_at=NOW + dt.timedelta(hours=2)).read_bytes()
    assert "clock" in rejects(rig, current, data, Malformed)


def test_absurd_validity_window(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    data = rig.make(11, expires_in=dt.timedelta(days=3650)).read_bytes()
    assert "validity window" in rejects(rig, current, data, Malformed)


# --- payload --------------------------------------------------------------------------------------


def test_payload_bit_flip(rig: Rig, current: tuple[bytes | None, list[str]], big_database: Path) -> None:
    data = rig.make(11, database=big_database).read_bytes()
    rejects(rig, current, flip_byte(data, -1000), PayloadCorrupt)


def test_last_chunk_dropped(rig: Rig, current: tuple[bytes | None, list[str]], big_database: Path) -> None:
    data = rig.make(11, database=big_database).read_bytes()
    last = len(split(data)[3]) - 24 - 4 * CHUNK
    rejects(rig, current, data[:-last], Truncated)


def test_cut_mid_chunk(rig: Rig, current: tuple[bytes | None, list[str]], big_database: Path) -> None:
    data = rig.make(11, database=big_database).read_bytes()
    rejects(rig, current, data[: len(data) - 2 * CHUNK - 100], Truncated)


def test_trailing_bytes(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    data = rig.make(11).read_bytes()
    rejects(rig, current, data + b"\x00", Malformed)


def test_chunks_swapped(rig: Rig, current: tuple[bytes | None, list[str]], big_database: Path) -> None:
    data = rig.make(11, database=big_database).read_bytes()
    start = len(data) - len(split(data)[3]) + 24
    first, second = data[start : start + CHUNK], data[start + CHUNK : start + 2 * CHUNK]
    swapped = data[:start] + second + first + data[start + 2 * CHUNK :]
    rejects(rig, current, swapped, PayloadCorrupt)


def test_header_of_one_snapshot_with_the_payload_of_another(
    rig: Rig, current: tuple[bytes | None, list[str]], big_database: Path
) -> None:
    one = rig.make(11, database=big_database).read_bytes()
    two = rig.make(12, database=big_database).read_bytes()
    mixed = one[: len(one) - len(split(one)[3])] + split(two)[3]
    rejects(rig, current, mixed, PayloadCorrupt)


def test_too_large_for_the_configured_cap(rig: Rig, current: tuple[bytes | None, list[str]]) -> None:
    data = rig.make(11).read_bytes()
    store = Store(rig.home, StoreConfig(max_file_size=len(data) - 1))
    with pytest.raises(TooLarge):
        store.ingest(io.BytesIO(data), now=NOW)
    assert_untouched(rig, current)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
def test_any_bit_flip_anywhere_is_rejected(
    rig: Rig, current: tuple[bytes | None, list[str]], position: int, mask: int
) -> None:
    path = rig.tmp / "target.snap"
    if not path.exists():
        rig.make(11, name="target.snap")
    data = path.read_bytes()
    with pytest.raises(SnapshotRejected):
        rig.ingest_bytes(flip_byte(data, position % len(data), mask))
    assert_untouched(rig, current)


# --- decryption-level: secretstream alone must catch what the digest would -------------------------


def _decrypt(data: bytes, rig: Rig, **payload_changes: object) -> bytes:
    stream = io.BytesIO(data)
    header = envelope.read_header(stream, [rig.publisher.verify_key])
    header = dataclasses.replace(header, payload=dataclasses.replace(header.payload, **payload_changes))
    return bytes(envelope.decrypt_payload(stream, header, rig.secrets.box_key))


def test_decrypt_without_final_chunk_is_truncated(rig: Rig, big_database: Path) -> None:
    data = rig.make(11, database=big_database).read_bytes()
    payload = split(data)[3]
    cut = data[: len(data) - len(payload) + 24 + 4 * CHUNK]
    kept = payload[: 24 + 4 * CHUNK]
    with pytest.raises(Truncated, match="FINAL"):
        _decrypt(
            cut,
            rig,
            plaintext_length=4 * envelope.CHUNK_SIZE,
            ciphertext_length=len(kept),
            sha256=hashlib.sha256(kept).hexdigest(),
        )


def test_decrypt_with_swapped_chunks_fails_authentication(rig: Rig, big_database: Path) -> None:
    data = rig.make(11, database=big_database).read_bytes()
    start = len(data) - len(split(data)[3]) + 24
    swapped = data[:start] + data[start + CHUNK : start + 2 * CHUNK] + data[start : start + CHUNK]
    swapped += data[start + 2 * CHUNK :]
    with pytest.raises(PayloadCorrupt, match="authenticate"):
        _decrypt(swapped, rig, sha256=hashlib.sha256(split(swapped)[3]).hexdigest())


@pytest.mark.parametrize(("compression", "message"), [("zlib", "inflates beyond"), ("zstd", "declares")])
def test_decrypt_with_wrong_database_length(rig: Rig, compression: str, message: str) -> None:
    data = rig.make(11, compression=compression).read_bytes()
    with pytest.raises(PayloadCorrupt, match=message):
        _decrypt(data, rig, database_length=100)


@pytest.mark.parametrize("compression", envelope.COMPRESSIONS)
def test_compressed_stream_with_trailing_data_is_refused(rig: Rig, compression: str) -> None:
    """A publisher bug or a forged-but-signed payload: valid encryption around a bad compressed stream."""
    image = rig.database.read_bytes()
    if compression == "zlib":
        inflater = envelope._Inflater(len(image))
        with pytest.raises(PayloadCorrupt, match="after the end"):
            inflater.feed(zlib.compress(image) + b"extra")
    else:
        with pytest.raises(PayloadCorrupt, match="unused data"):
            envelope._unzstd(bytearray(zstandard.ZstdCompressor().compress(image) + b"extra"), len(image))


def test_zstd_frame_without_content_size_is_refused(rig: Rig) -> None:
    image = rig.database.read_bytes()
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(image)
    with pytest.raises(PayloadCorrupt, match="declares"):
        envelope._unzstd(bytearray(frame), len(image))


def test_decrypt_for_another_appliance(rig: Rig) -> None:
    data = rig.make(11, recipients=[PrivateKey.generate().public_key]).read_bytes()
    stream = io.BytesIO(data)
    header = envelope.read_header(stream, [rig.publisher.verify_key])
    with pytest.raises(NotForThisAppliance):
        envelope.decrypt_payload(stream, header, rig.secrets.box_key)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), prefix=st.booleans())
def test_random_bytes_only_ever_raise_a_rejection(data: bytes, prefix: bool) -> None:
    """Whatever arrives, parsing ends in a typed rejection, never another exception."""
    if prefix:
        data = envelope.MAGIC + struct.pack(">HI", 1, min(len(data), 300)) + data
    key = nacl.signing.SigningKey.generate()
    with pytest.raises(SnapshotRejected):
        envelope.read_header(io.BytesIO(data), [key.verify_key])


@settings(max_examples=200, deadline=None)
@given(header=st.binary(max_size=600))
def test_signed_garbage_headers_only_ever_raise_a_rejection(header: bytes) -> None:
    """Even a header the pinned key signed (a publisher bug) is parsed strictly into a typed rejection."""
    key = nacl.signing.SigningKey.generate()
    length = max(len(header), 2)
    header = header.ljust(length, b" ")
    signed = envelope.PREFIX.pack(envelope.MAGIC, 1, length) + header
    data = signed + b"\x01" + keys.key_id(bytes(key.verify_key)) + key.sign(signed).signature
    with pytest.raises(SnapshotRejected):
        envelope.read_header(io.BytesIO(data), [key.verify_key])

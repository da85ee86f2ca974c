"""The snapshot file format: seal and sign (publisher), parse and verify (appliance), decrypt at unlock.

Normative spec: docs/snapshot-format.md. The step numbers in comments refer to its §7 table. This module
does no I/O policy: it reads from and writes to streams it is given; store.py and pull.py decide where
bytes come from and where they go.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import re
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import nacl.bindings as sodium
import nacl.exceptions
import nacl.signing
import zstandard
from nacl.public import PrivateKey, PublicKey, SealedBox

from continuity.errors import (
    Equivocation,
    Expired,
    Malformed,
    NotForThisAppliance,
    PayloadCorrupt,
    Rollback,
    SequenceJump,
    TooLarge,
    Truncated,
    UnsupportedFormat,
    UntrustedSigner,
)
from continuity.import_summary import ImportSummary, SummaryError
from continuity.keys import fingerprint, key_id
from continuity.strict_json import object_without_duplicates, refuse_constant

MAGIC = b"\x89CNTY\r\n\x1a"
FORMAT_VERSION = 1
# Format 2 is format 1 plus the header's `import` object (the summary of the publisher's import report,
# counts only). A publisher writes 2 when it has a summary to send; an appliance reads both.
IMPORT_FORMAT_VERSION = 2
SUPPORTED_FORMAT_VERSIONS = (FORMAT_VERSION, IMPORT_FORMAT_VERSION)
FORMAT_NAME = "continuity-snapshot"
PREFIX = struct.Struct(">8sHI")
PREFIX_SIZE = PREFIX.size  # 14
MIN_HEADER_LENGTH = 2
MAX_HEADER_LENGTH = 64 * 1024
MAX_SIGNATURES = 8
KEY_ID_SIZE = 16
SIGNATURE_SIZE = 64
SIGNATURE_ENTRY_SIZE = KEY_ID_SIZE + SIGNATURE_SIZE
CHUNK_SIZE = 64 * 1024
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17
STREAM_HEADER_SIZE = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
FILE_KEY_SIZE = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES
SEALED_KEY_SIZE = FILE_KEY_SIZE + 48
MAX_DATABASE_LENGTH = 1 << 30
MAX_SEQUENCE = (1 << 53) - 1
MAX_RECIPIENTS = 64
MAX_COUNTS = 32
# zstd is what the publisher writes: it inflates a 100,000-patient database 2-4x faster than zlib, which
# is most of what can be saved on the unlock path (docs/performance.md). zlib stays readable.
COMPRESSIONS = ("zstd", "zlib")
DEFAULT_COMPRESSION = "zstd"
ZSTD_LEVEL = 9
ZLIB_LEVEL = 6
MAX_ZSTD_WINDOW = 1 << 27  # bounds the decoder's memory whatever a frame asks for

DEFAULT_MAX_FILE_SIZE = 1 << 30
DEFAULT_MAX_SEQUENCE_JUMP = 1_000_000
DEFAULT_CLOCK_SKEW = dt.timedelta(hours=1)
DEFAULT_MAX_VALIDITY = dt.timedelta(days=31)

IO_BLOCK = 1 << 20
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_PRACTICE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class PayloadInfo:
    compression: str
    chunk_size: int
    plaintext_length: int
    database_length: int
    ciphertext_length: int
    sha256: str


@dataclass(frozen=True)
class Recipient:
    key_id: bytes
    sealed_key: bytes


@dataclass(frozen=True)
class Header:
    """A verified header: every field checked against docs/snapshot-format.md §4."""

    practice_id: str
    sequence: int
    created_at: dt.datetime
    expires_at: dt.datetime
    schema_version: int
    counts: Mapping[str, int]
    payload: PayloadInfo
    recipients: tuple[Recipient, ...]
    signer_fingerprint: str = ""
    envelope: bytes = field(default=b"", repr=False)  # every byte before the payload, as read
    header_sha256: str = ""
    import_summary: Mapping[str, int] = field(default_factory=dict)  # format 2: import report counts
    format_version: int = FORMAT_VERSION

    @property
    def total_length(self) -> int:
        return len(self.envelope) + self.payload.ciphertext_length

    def for_recipient(self, recipient_key_id: bytes) -> Recipient | None:
        return next((r for r in self.recipients if r.key_id == recipient_key_id), None)

    def summary(self) -> dict[str, Any]:
        """The fields the state file and `status` show (no secret, no patient data)."""
        return {
            "practice_id": self.practice_id,
            "sequence": self.sequence,
            "created_at": format_time(self.created_at),
            "expires_at": format_time(self.expires_at),
            "schema_version": self.schema_version,
            "counts": dict(self.counts),
            "payload_sha256": self.payload.sha256,
            "size": self.total_length,
            "publisher_fingerprint": self.signer_fingerprint,
            "import": dict(self.import_summary),
        }


# --- helpers --------------------------------------------------------------------------------------


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, what: str) -> dt.datetime:
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise Malformed(f"header {what} is not a UTC timestamp YYYY-MM-DDTHH:MM:SSZ")
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError as error:
        raise Malformed(f"header {what} is not a valid date: {value}") from error


def ciphertext_length(plaintext_length: int) -> int:
    chunks = max(1, math.ceil(plaintext_length / CHUNK_SIZE))
    return STREAM_HEADER_SIZE + plaintext_length + ABYTES * chunks


def read_exact(stream: Readable, size: int) -> bytes:
    """Read `size` bytes unless the stream ends first (then fewer). `size` is always capped by the caller."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        data = stream.read(min(remaining, IO_BLOCK))
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


def _need(stream: Readable, size: int, what: str) -> bytes:
    data = read_exact(stream, size)
    if len(data) < size:
        raise Truncated(f"file ends inside the {what} ({len(data)} of {size} bytes)")
    return data


def _reject_float(text: str) -> Any:
    raise ValueError(f"non-integer number {text[:20]} is not allowed")


def strict_json(data: bytes) -> Any:
    """Parse JSON refusing duplicate keys, NaN/Infinity, non-integer numbers and invalid UTF-8."""
    try:
        text = data.decode("utf-8")
        if text.startswith("\ufeff"):
            raise ValueError("byte order mark")
        return json.loads(
            text,
            object_pairs_hook=object_without_duplicates,
            parse_constant=refuse_constant,
            parse_float=_reject_float,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Malformed(f"header is not strict JSON: {error}") from error


def _int(value: object, what: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Malformed(f"header {what} is not an integer")
    if not low <= value <= high:
        raise Malformed(f"header {what}={value} out of range [{low}, {high}]")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise Malformed(f"header {what} is not a string")
    return value


def _keys(obj: object, expected: set[str], what: str, optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise Malformed(f"header {what} is not an object")
    if set(obj) - optional != expected:
        missing, extra = sorted(expected - set(obj)), sorted(set(obj) - expected - optional)
        raise Malformed(f"header {what}: missing {missing}, unknown {extra}")
    return obj


# --- reading (steps 1-8) --------------------------------------------------------------------------

_HEADER_KEYS = {
    "format",
    "format_version",
    "practice_id",
    "sequence",
    "created_at",
    "expires_at",
    "schema_version",
    "counts",
    "payload",
    "recipients",
}
_PAYLOAD_KEYS = {"compression", "chunk_size", "plaintext_length", "database_length", "ciphertext_length", "sha256"}


def parse_header_json(data: bytes) -> Header:
    """Step 7: strict parse and field checks of authenticated header bytes."""
    value = strict_json(data)
    version = value.get("format_version") if isinstance(value, dict) else None
    with_import = version == IMPORT_FORMAT_VERSION and not isinstance(version, bool)
    optional = frozenset({"import"}) if with_import else frozenset()
    obj = _keys(value, _HEADER_KEYS, "top level", optional)
    if obj["format"] != FORMAT_NAME:
        raise Malformed(f"header format {obj['format']!r} is not {FORMAT_NAME!r}")
    if obj["format_version"] not in SUPPORTED_FORMAT_VERSIONS or isinstance(obj["format_version"], bool):
        raise UnsupportedFormat(f"header format_version {obj['format_version']!r} is not {FORMAT_VERSION}")
    try:
        import_summary = ImportSummary.from_header(obj["import"]).header_fields() if "import" in obj else {}
    except SummaryError as error:
        raise Malformed(f"header {error}") from error
    practice_id = _str(obj["practice_id"], "practice_id")
    if not _PRACTICE_ID.fullmatch(practice_id):
        raise Malformed("header practice_id must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    sequence = _int(obj["sequence"], "sequence", 1, MAX_SEQUENCE)
    created_at = parse_time(obj["created_at"], "created_at")
    expires_at = parse_time(obj["expires_at"], "expires_at")
    if expires_at <= created_at:
        raise Malformed("header expires_at is not after created_at")
    schema_version = _int(obj["schema_version"], "schema_version", 1, 1 << 31)
    counts_obj = obj["counts"]
    if not isinstance(counts_obj, dict) or len(counts_obj) > MAX_COUNTS:
        raise Malformed(f"header counts is not an object of at most {MAX_COUNTS} entries")
    counts: dict[str, int] = {}
    for name, value in counts_obj.items():
        if not _TABLE_NAME.fullmatch(name):
            raise Malformed(f"header counts: bad table name {name[:40]!r}")
        counts[name] = _int(value, f"counts.{name}", 0, 1 << 40)
    payload_obj = _keys(obj["payload"], _PAYLOAD_KEYS, "payload")
    compression = payload_obj["compression"]
    if compression not in COMPRESSIONS:
        raise UnsupportedFormat(f"payload compression {str(compression)[:20]!r} is not supported")
    if payload_obj["chunk_size"] != CHUNK_SIZE or isinstance(payload_obj["chunk_size"], bool):
        raise Malformed(f"payload chunk_size {payload_obj['chunk_size']!r} is not {CHUNK_SIZE}")
    plaintext_length = _int(payload_obj["plaintext_length"], "payload.plaintext_length", 0, 1 << 40)
    database_length = _int(payload_obj["database_length"], "payload.database_length", 1, MAX_DATABASE_LENGTH)
    cipher_length = _int(payload_obj["ciphertext_length"], "payload.ciphertext_length", 0, 1 << 41)
    if cipher_length != ciphertext_length(plaintext_length):
        raise Malformed("payload ciphertext_length does not match plaintext_length")
    digest = _str(payload_obj["sha256"], "payload.sha256")
    if not _HEX64.fullmatch(digest):
        raise Malformed("payload sha256 is not 64 lowercase hex digits")
    recipients_obj = obj["recipients"]
    if not isinstance(recipients_obj, list) or not 1 <= len(recipients_obj) <= MAX_RECIPIENTS:
        raise Malformed(f"header recipients must be a list of 1 to {MAX_RECIPIENTS}")
    recipients: list[Recipient] = []
    for index, item in enumerate(recipients_obj):
        entry = _keys(item, {"key_id", "sealed_key"}, f"recipients[{index}]")
        rid = _str(entry["key_id"], "recipient key_id")
        if not _HEX32.fullmatch(rid):
            raise Malformed("recipient key_id is not 32 lowercase hex digits")
        try:
            sealed = base64.b64decode(_str(entry["sealed_key"], "recipient sealed_key"), validate=True)
        except binascii.Error as error:
            raise Malformed("recipient sealed_key is not base64") from error
        if len(sealed) != SEALED_KEY_SIZE:
            raise Malformed(f"recipient sealed_key has {len(sealed)} bytes, expected {SEALED_KEY_SIZE}")
        recipients.append(Recipient(bytes.fromhex(rid), sealed))
    if len({r.key_id for r in recipients}) != len(recipients):
        raise Malformed("header recipients repeat a key id")
    return Header(
        practice_id=practice_id,
        sequence=sequence,
        created_at=created_at,
        expires_at=expires_at,
        schema_version=schema_version,
        counts=counts,
        payload=PayloadInfo(compression, CHUNK_SIZE, plaintext_length, database_length, cipher_length, digest),
        recipients=tuple(recipients),
        import_summary=import_summary,
        format_version=obj["format_version"],
    )


def read_header(
    stream: Readable,
    trusted_keys: Sequence[nacl.signing.VerifyKey],
    *,
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
) -> Header:
    """Steps 1-8: framing, signature by a pinned key, strict header, size cap. Leaves `stream` at the payload."""
    prefix = read_exact(stream, PREFIX_SIZE)
    if len(prefix) < PREFIX_SIZE:  # 1
        raise Truncated(f"file has {len(prefix)} bytes, fewer than the {PREFIX_SIZE}-byte prefix")
    magic, version, header_length = PREFIX.unpack(prefix)
    if magic != MAGIC:  # 2
        raise Malformed("not a Continuity snapshot file (bad magic)")
    if version not in SUPPORTED_FORMAT_VERSIONS:  # 3
        raise UnsupportedFormat(
            f"format version {version} is not supported (this appliance reads {SUPPORTED_FORMAT_VERSIONS})"
        )
    if not MIN_HEADER_LENGTH <= header_length <= MAX_HEADER_LENGTH:  # 4, before any allocation
        raise Malformed(f"header length {header_length} outside [{MIN_HEADER_LENGTH}, {MAX_HEADER_LENGTH}]")
    header_bytes = _need(stream, header_length, "header")  # 5
    count_byte = _need(stream, 1, "signature count")
    count = count_byte[0]
    if not 1 <= count <= MAX_SIGNATURES:
        raise Malformed(f"signature count {count} outside [1, {MAX_SIGNATURES}]")
    entries = _need(stream, SIGNATURE_ENTRY_SIZE * count, "signatures")
    signed = prefix + header_bytes
    pinned = {key_id(bytes(k)): k for k in trusted_keys}
    signer: nacl.signing.VerifyKey | None = None
    for index in range(count):  # 6
        entry = entries[index * SIGNATURE_ENTRY_SIZE : (index + 1) * SIGNATURE_ENTRY_SIZE]
        candidate = pinned.get(entry[:KEY_ID_SIZE])
        if candidate is None:
            continue
        try:
            candidate.verify(signed, entry[KEY_ID_SIZE:])
        except nacl.exceptions.BadSignatureError:
            continue
        signer = candidate
        break
    if signer is None:
        raise UntrustedSigner(
            f"no valid signature by a pinned publisher key among {count} signature(s)"
            if pinned
            else "no publisher key is pinned on this appliance (run `continuity trust`)"
        )
    parsed = parse_header_json(header_bytes)  # 7
    if parsed.format_version != version:
        raise UnsupportedFormat(f"header format_version {parsed.format_version} is not the binary one, {version}")
    envelope = signed + count_byte + entries
    header = dataclasses.replace(
        parsed,
        signer_fingerprint=fingerprint(bytes(signer)),
        envelope=envelope,
        header_sha256=hashlib.sha256(signed).hexdigest(),
    )
    if header.total_length > max_file_size:  # 8
        raise TooLarge(f"file of {header.total_length} bytes exceeds the {max_file_size}-byte cap")
    return header


# --- policy (steps 9-10) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Previous:
    """What the appliance remembers of its current snapshot."""

    practice_id: str
    sequence: int
    payload_sha256: str
    created_at: dt.datetime


def check_policy(
    header: Header,
    *,
    appliance_key_id: bytes,
    previous: Previous | None,
    now: dt.datetime,
    max_sequence_jump: int = DEFAULT_MAX_SEQUENCE_JUMP,
    clock_skew: dt.timedelta = DEFAULT_CLOCK_SKEW,
    max_validity: dt.timedelta = DEFAULT_MAX_VALIDITY,
) -> bool:
    """Steps 9-10. Returns False when the file is the current snapshot again (a no-op), True when new."""
    if header.for_recipient(appliance_key_id) is None:  # 9a
        raise NotForThisAppliance("this appliance's key is not among the file's recipients")
    if previous is not None:
        if header.practice_id != previous.practice_id:  # 9b
            raise NotForThisAppliance(
                f"file is for practice {header.practice_id!r}, this appliance serves {previous.practice_id!r}"
            )
        if header.sequence < previous.sequence:  # 9c
            raise Rollback(f"sequence {header.sequence} is older than the current {previous.sequence}")
        if header.sequence == previous.sequence:
            if header.payload.sha256 == previous.payload_sha256:
                return False
            raise Equivocation(
                f"sequence {header.sequence} was already accepted with another content "
                f"({previous.payload_sha256[:16]}…, now {header.payload.sha256[:16]}…)"
            )
        if header.sequence - previous.sequence > max_sequence_jump:
            raise SequenceJump(
                f"sequence jumps from {previous.sequence} to {header.sequence} (more than {max_sequence_jump})"
            )
        if header.created_at < previous.created_at:
            raise Rollback(
                f"created_at {format_time(header.created_at)} is older than the current "
                f"{format_time(previous.created_at)}"
            )
    if now >= header.expires_at:  # 10a
        raise Expired(f"file expired at {format_time(header.expires_at)} (now {format_time(now)})")
    if header.created_at > now + clock_skew:  # 10b
        raise Malformed(
            f"validity window: created_at {format_time(header.created_at)} is in the future "
            f"(now {format_time(now)}): check this appliance's clock"
        )
    if header.expires_at - header.created_at > max_validity:
        raise Malformed(f"validity window: the file claims to be valid for more than {max_validity.days} days")
    return True


# --- payload (steps 11-13) ------------------------------------------------------------------------


def copy_payload(stream: Readable, header: Header, sink: BinaryIO | None) -> None:
    """Steps 11-13: stream exactly L payload bytes into `sink`, hashing them, then require end of file."""
    digest = hashlib.sha256()
    remaining = header.payload.ciphertext_length
    while remaining > 0:
        block = stream.read(min(remaining, IO_BLOCK))
        if not block:
            raise Truncated(
                f"file ends {remaining} bytes before the end of the payload "
                f"({header.payload.ciphertext_length} expected)"
            )
        digest.update(block)
        if sink is not None:
            sink.write(block)
        remaining -= len(block)
    if digest.hexdigest() != header.payload.sha256:
        raise PayloadCorrupt("payload SHA-256 does not match the signed header")
    if stream.read(1):
        raise Malformed("trailing bytes after the payload")


# --- sealing (publisher) --------------------------------------------------------------------------


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def _compressor(compression: str, size: int) -> _Compressor:
    if compression == "zstd":
        # The frame records the content size: the reader checks it against the signed header before inflating.
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compressobj(size=size)
    if compression == "zlib":
        return zlib.compressobj(ZLIB_LEVEL)
    raise ValueError(f"unknown compression {compression!r}")


def _chunks_of(source: BinaryIO, compressor: _Compressor) -> Iterator[tuple[bytes, bool]]:
    """Compress `source` and cut the result into CHUNK_SIZE pieces, flagging the last one."""
    pending = bytearray()
    while True:
        block = source.read(IO_BLOCK)
        if not block:
            break
        pending += compressor.compress(block)
        while len(pending) > CHUNK_SIZE:  # keep at least one byte back: the last chunk must carry FINAL
            yield bytes(pending[:CHUNK_SIZE]), False
            del pending[:CHUNK_SIZE]
    pending += compressor.flush()
    while len(pending) > CHUNK_SIZE:
        yield bytes(pending[:CHUNK_SIZE]), False
        del pending[:CHUNK_SIZE]
    yield bytes(pending), True


def seal(
    database: Path,
    out: Path,
    *,
    signing_keys: Sequence[nacl.signing.SigningKey],
    recipients: Sequence[PublicKey],
    practice_id: str,
    sequence: int,
    created_at: dt.datetime,
    expires_at: dt.datetime,
    schema_version: int,
    counts: Mapping[str, int],
    compression: str = DEFAULT_COMPRESSION,
    import_summary: Mapping[str, int] | None = None,
) -> Header:
    """Compress, encrypt and sign a database file into a snapshot file, streaming (bounded memory)."""
    if not signing_keys or len(signing_keys) > MAX_SIGNATURES:
        raise ValueError(f"need 1 to {MAX_SIGNATURES} signing keys")
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"need 1 to {MAX_RECIPIENTS} recipients")
    database_length = database.stat().st_size
    file_key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    payload_temp = out.with_name(f".{out.name}.payload.tmp")
    out_temp = out.with_name(f".{out.name}.tmp")
    try:
        digest = hashlib.sha256()
        plaintext_length = 0
        with database.open("rb") as source, payload_temp.open("wb") as payload:
            stream_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, file_key)
            payload.write(stream_header)
            digest.update(stream_header)
            for chunk, last in _chunks_of(source, _compressor(compression, database_length)):
                plaintext_length += len(chunk)
                tag = TAG_FINAL if last else TAG_MESSAGE
                encrypted = sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, None, tag)
                payload.write(encrypted)
                digest.update(encrypted)
        version = FORMAT_VERSION if import_summary is None else IMPORT_FORMAT_VERSION
        header_obj: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": version,
            "practice_id": practice_id,
            "sequence": sequence,
            "created_at": format_time(created_at),
            "expires_at": format_time(expires_at),
            "schema_version": schema_version,
            "counts": dict(counts),
            "payload": {
                "compression": compression,
                "chunk_size": CHUNK_SIZE,
                "plaintext_length": plaintext_length,
                "database_length": database_length,
                "ciphertext_length": ciphertext_length(plaintext_length),
                "sha256": digest.hexdigest(),
            },
            "recipients": [
                {
                    "key_id": key_id(bytes(public)).hex(),
                    "sealed_key": base64.b64encode(SealedBox(public).encrypt(file_key)).decode("ascii"),
                }
                for public in recipients
            ],
        }
        if import_summary is not None:
            header_obj["import"] = dict(import_summary)
        header_bytes = json.dumps(header_obj, sort_keys=True, separators=(",", ":")).encode("utf-8")
        # Validate what we are about to sign with the reader's own rules: never publish a file we would refuse.
        parse_header_json(header_bytes)
        if len(header_bytes) > MAX_HEADER_LENGTH:
            raise ValueError("header too large (too many recipients or counts)")
        signed = PREFIX.pack(MAGIC, version, len(header_bytes)) + header_bytes
        entries = b"".join(key_id(bytes(key.verify_key)) + key.sign(signed).signature for key in signing_keys)
        with out_temp.open("wb") as handle, payload_temp.open("rb") as payload:
            handle.write(signed + bytes([len(signing_keys)]) + entries)
            while block := payload.read(IO_BLOCK):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(out_temp, out)
    finally:
        payload_temp.unlink(missing_ok=True)
        out_temp.unlink(missing_ok=True)
    with out.open("rb") as handle:
        return read_header(handle, [key.verify_key for key in signing_keys], max_file_size=1 << 62)


# --- unlock: decrypt (steps U2-U5) ----------------------------------------------------------------


def open_file_key(header: Header, box_key: PrivateKey) -> bytes:
    """U2: unseal this appliance's copy of the file key."""
    recipient = header.for_recipient(key_id(bytes(box_key.public_key)))
    if recipient is None:
        raise NotForThisAppliance("this appliance's key is not among the file's recipients")
    try:
        file_key = SealedBox(box_key).decrypt(recipient.sealed_key)
    except nacl.exceptions.CryptoError as error:
        raise NotForThisAppliance("the file key sealed for this appliance does not open") from error
    if len(file_key) != FILE_KEY_SIZE:
        raise NotForThisAppliance("the sealed file key has the wrong size")
    return file_key


class _Inflater:
    """U5: inflate a zlib stream into exactly `expected` bytes, never more (no decompression bomb)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.output = bytearray()
        self._inflater = zlib.decompressobj()

    def feed(self, data: bytes) -> None:
        try:
            while data:
                if self._inflater.eof:
                    raise PayloadCorrupt("data after the end of the compressed database")
                room = self.expected - len(self.output)
                self.output += self._inflater.decompress(data, room + 1)
                if len(self.output) > self.expected:
                    raise PayloadCorrupt(f"database inflates beyond its declared {self.expected} bytes")
                data = self._inflater.unconsumed_tail
            if self._inflater.unused_data:
                raise PayloadCorrupt("data after the end of the compressed database")
        except zlib.error as error:
            raise PayloadCorrupt(f"compressed database is corrupt: {error}") from error

    def finish(self) -> bytearray:
        if not self._inflater.eof:
            raise PayloadCorrupt("compressed database is incomplete")
        if len(self.output) != self.expected:
            raise PayloadCorrupt(f"database is {len(self.output)} bytes, header says {self.expected}")
        return self.output


def _unzstd(compressed: bytearray, expected: int) -> bytes:
    """U5 for zstd: the frame must declare exactly the signed size, be complete and have nothing after it."""
    try:
        declared = zstandard.frame_content_size(compressed)
        if declared != expected:
            raise PayloadCorrupt(f"compressed database declares {declared} bytes, header says {expected}")
        image = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW).decompress(
            compressed, allow_extra_data=False
        )
    except zstandard.ZstdError as error:
        raise PayloadCorrupt(f"compressed database is corrupt: {error}") from error
    if len(image) != expected:
        raise PayloadCorrupt(f"database is {len(image)} bytes, header says {expected}")
    return image


def decrypt_payload(stream: Readable, header: Header, box_key: PrivateKey) -> bytes | bytearray:
    """U2-U5 (and 11-13 again): decrypt, authenticate, require FINAL, inflate. Returns the SQLite image."""
    file_key = open_file_key(header, box_key)
    payload = header.payload
    digest = hashlib.sha256()
    stream_header = _need(stream, STREAM_HEADER_SIZE, "payload")
    digest.update(stream_header)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    try:
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, file_key)
    except nacl.exceptions.CryptoError as error:
        raise PayloadCorrupt("payload stream header refused") from error
    chunks = max(1, math.ceil(payload.plaintext_length / CHUNK_SIZE))
    # zlib inflates as chunks arrive, capped; zstd gets the whole (signed, bounded) plaintext at once.
    inflater = _Inflater(payload.database_length) if payload.compression == "zlib" else None
    compressed = bytearray()
    remaining = payload.plaintext_length
    for index in range(chunks):
        size = min(CHUNK_SIZE, remaining)
        encrypted = _need(stream, size + ABYTES, "payload")
        digest.update(encrypted)
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, encrypted, None)
        except nacl.exceptions.CryptoError as error:
            raise PayloadCorrupt(f"payload chunk {index} does not authenticate") from error
        last = index == chunks - 1
        if last and tag != TAG_FINAL:
            raise Truncated("the last payload chunk is not marked FINAL: the stream was cut")
        if not last and tag != TAG_MESSAGE:
            raise PayloadCorrupt(f"payload chunk {index} has tag {tag}, expected MESSAGE")
        if inflater is not None:
            inflater.feed(plain)
        else:
            compressed += plain
        remaining -= size
    if stream.read(1):
        raise Malformed("trailing bytes after the payload")
    if digest.hexdigest() != payload.sha256:
        raise PayloadCorrupt("payload SHA-256 does not match the signed header")
    if inflater is not None:
        return inflater.finish()
    return _unzstd(compressed, payload.database_length)

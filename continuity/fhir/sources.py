"""Where FHIR resources come from: files and folders, NDJSON lines, Bundles and their entries.

A source file is read as a stream of ``Item`` (one resource, with its position and the Bundle scope
its references resolve in) and ``Unreadable`` (a line or entry that is not a resource), the same way
on every pass and in every worker process: each has an ordinal (``line << 32 | index in the line``)
that a chunk of lines read apart numbers exactly as a whole read does.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from continuity.errors import InputError
from continuity.fhir.json import JSON, Invalid, code_at, describe, fast_line, parse_json
from continuity.fhir.vocabulary import ID_CHARACTERS, LINE_HEAD, LOG_FILE_STEMS, RESOURCE_ID, RESOURCE_TYPE

MAX_LINE_BYTES = 16 * 1024 * 1024
"""Longest NDJSON line accepted; a longer one is reported and skipped without being held in memory."""

MAX_JSON_FILE_BYTES = 256 * 1024 * 1024
"""Largest .json file (read whole, as one Bundle). Bigger exports must use NDJSON."""

MAX_BUNDLE_DEPTH = 4  # a Bundle inside a Bundle entry is read; deeper nesting is refused
SPAN_BLOCK = 64 * 1024  # what the main process reads at a time to cut a file into chunks

SUFFIXES = (".ndjson", ".json", ".ndjson.gz", ".json.gz")


def expand_sources(sources: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(SUFFIXES)
                )
            )
        elif path.exists():
            files.append(path)
        else:
            raise InputError(
                f"{path}: no such file or directory",
                message_fr=f"Source introuvable : {path}",
            )
    return files


class Scope:
    """One Bundle: its fullUrl → key map (the Bundles around it are its parents) and its Patients.

    ``number`` identifies the Bundle within its file, the same on every pass (the ordinal counter's
    value when it was opened), so what pass 1 learns about a Bundle can be looked up in pass 2.
    """

    __slots__ = ("number", "parent", "patients", "urls")

    def __init__(self, parent: Scope | None, number: int) -> None:
        self.parent = parent
        self.number = number
        self.urls: dict[str, str] = {}
        self.patients: list[str] = []  # keys of the Patient entries of this Bundle itself

    def chain(self) -> tuple[int, ...]:
        """The numbers of this Bundle and of the Bundles around it, innermost first."""
        numbers = []
        scope: Scope | None = self
        while scope is not None:
            numbers.append(scope.number)
            scope = scope.parent
        return tuple(numbers)

    def sole_patient(self) -> str:
        """The key of the only Patient of the innermost Bundle that has any ("" when none or several)."""
        scope: Scope | None = self
        while scope is not None:
            if scope.patients:
                return scope.patients[0] if len(scope.patients) == 1 else ""
            scope = scope.parent
        return ""

    def get(self, url: str) -> str | None:
        scope: Scope | None = self
        while scope is not None:
            if (key := scope.urls.get(url)) is not None:
                return key
            scope = scope.parent
        return None


@dataclass(slots=True)
class Item:
    """One resource read from a source, with where it came from."""

    ordinal: int  # position in its file, identical in both passes (see Ordinals)
    location: str
    resource: JSON
    resource_type: str
    key: str  # "Type/id", or "" when the resource has no usable id
    scope: Scope | None
    light: bool = False  # pass 1 fast path: only the type and key are known, the line was not parsed


@dataclass(slots=True)
class Unreadable:
    ordinal: int
    location: str
    resource: str
    message: str


def key_from_url(url: str, resource_type: str) -> str:
    """A resource id derived from an entry's fullUrl when the resource itself has none."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    if url.startswith("urn:uuid:") or url.startswith("urn:oid:"):
        tail = url.split(":", 2)[2]
    return f"{resource_type}/{tail}" if RESOURCE_ID.fullmatch(tail) else ""


def resource_key(resource: JSON, resource_type: str, full_url: str) -> str:
    rid = resource.get("id")
    if isinstance(rid, str) and RESOURCE_ID.fullmatch(rid):
        return f"{resource_type}/{rid}"
    if rid is None and full_url:
        return key_from_url(full_url, resource_type)
    return ""


def is_log_file(path: Path) -> bool:
    """A Bulk export's log or error file (OperationOutcome lines): not resources to import."""
    stem = path.name.lower().removesuffix(".gz").removesuffix(".ndjson").removesuffix(".json")
    return stem in LOG_FILE_STEMS


def rejected_key(resource: JSON, resource_type: str) -> str:
    """The key a resource with an unusable id would have had, so that what refers to it says it was rejected."""
    rid = resource.get("id")
    if isinstance(rid, str) and ID_CHARACTERS.fullmatch(rid):
        return f"{resource_type}/{rid}"
    return ""


def resource_type_of(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    resource_type = value.get("resourceType")
    if isinstance(resource_type, str) and RESOURCE_TYPE.fullmatch(resource_type):
        return resource_type
    return ""


def is_bulk_manifest(value: Any) -> bool:
    return (
        isinstance(value, dict) and "resourceType" not in value and "output" in value and ("transactionTime" in value)
    )


_NOTHING: JSON = {}  # the resource of a line not parsed (never read, never changed)


class SourceFile:
    """Reads one file as a stream of items (and unreadable lines), the same way on every pass."""

    def __init__(self, path: Path) -> None:
        self.path = path
        name = path.name.lower()
        self.gzipped = name.endswith(".gz")
        self.ndjson = name.removesuffix(".gz").endswith(".ndjson")

    def _open(self) -> IO[bytes]:
        if self.gzipped:
            return cast(IO[bytes], gzip.open(self.path, "rb"))
        return self.path.open("rb")

    def items(self, *, light: bool = False, span: Span | None = None) -> Iterator[Item | Unreadable]:
        """The resources of the file; ``light`` lets key-only NDJSON lines through unparsed.

        ``span`` limits an uncompressed NDJSON file to whole lines from a byte offset (a chunk read
        by a worker process); items and positions are exactly those of a whole read.
        """
        if not self.path.name.lower().endswith(SUFFIXES):
            yield Unreadable(0, "", "", "unsupported file type (expected .json or .ndjson, optionally .gz)")
            return
        try:
            if self.ndjson:
                yield from self._ndjson_items(light, span or Span(0, -1, 1))
            else:
                yield from self._json_items()
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            yield Unreadable(-1, "", "", f"cannot read the file: {error}")

    def _ndjson_items(self, light: bool, span: Span) -> Iterator[Item | Unreadable]:
        with self._open() as stream:
            if span.start:
                stream.seek(span.start)
            position, end = span.start, span.end
            number = span.first_line - 1
            while end < 0 or position < end:
                raw = stream.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    break
                position += len(raw)
                number += 1
                first = number << 32  # the ordinal of the line's first resource (see Ordinals)
                if len(raw) > MAX_LINE_BYTES and raw[-1:] != b"\n":
                    while raw and raw[-1:] != b"\n":  # drop the rest of the line, chunk by chunk
                        raw = stream.readline(MAX_LINE_BYTES)
                        position += len(raw)
                    yield Unreadable(first, f"line {number}", "", f"line longer than {MAX_LINE_BYTES} bytes")
                    continue
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if raw[:1] != b"{" and not raw.strip():
                    continue
                if (
                    light
                    and (head := LINE_HEAD.match(raw))
                    and b"MED-574" not in raw  # the bytes of an ALD marker (or an escape that may hide one)
                    and b'"ALD"' not in raw
                    and b"\\u" not in raw
                ):
                    resource_type = head[1].decode()
                    key = f"{resource_type}/{head[2].decode()}"
                    yield Item(first, "", _NOTHING, resource_type, key, None, light=True)  # no location needed
                    continue
                location = f"line {number}"
                try:
                    value = fast_line(raw)
                    if value is None:
                        value = parse_json(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    yield Unreadable(first, location, "", "line is not valid UTF-8")
                    continue
                except Invalid as error:
                    yield Unreadable(first, location, "", str(error))
                    continue
                resource_type = resource_type_of(value)
                if resource_type and resource_type != "Bundle":  # the usual line: one resource
                    key = resource_key(value, resource_type, "")
                    yield Item(first, location, value, resource_type, key, None)
                else:
                    yield from expand(value, location, None, Ordinals(number), 0)

    def _json_items(self) -> Iterator[Item | Unreadable]:
        if not self.gzipped and self.path.stat().st_size > MAX_JSON_FILE_BYTES:
            yield Unreadable(0, "", "", f"file larger than {MAX_JSON_FILE_BYTES} bytes; export NDJSON instead")
            return
        with self._open() as stream:
            data = stream.read(MAX_JSON_FILE_BYTES + 1)
        if len(data) > MAX_JSON_FILE_BYTES:
            yield Unreadable(0, "", "", f"file larger than {MAX_JSON_FILE_BYTES} bytes; export NDJSON instead")
            return
        try:
            value = parse_json(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            yield Unreadable(0, "", "", "file is not valid UTF-8")
            return
        except Invalid as error:
            yield Unreadable(0, "", "", str(error))
            return
        if is_bulk_manifest(value):
            return
        yield from expand(value, "", None, Ordinals(0), 0)


class Ordinals:
    """Ordinals of the resources of one NDJSON line (or of a whole .json file, line 0).

    An ordinal is ``line << 32 | index in the line``: a chunk of lines read apart (by a worker
    process) numbers its resources exactly as a read of the whole file does.
    """

    __slots__ = ("value",)

    def __init__(self, line: int) -> None:
        self.value = (line << 32) - 1

    def next(self) -> int:
        self.value += 1
        return self.value


@dataclass(frozen=True, slots=True)
class Span:
    """Whole NDJSON lines from byte ``start`` to ``end`` (-1: the end of the file), the first one numbered."""

    start: int
    end: int
    first_line: int


def expand(
    value: Any, location: str, parent: Scope | None, counter: Ordinals, depth: int
) -> Iterator[Item | Unreadable]:
    """One parsed JSON value → its resources: the value itself, or a Bundle's entries."""
    resource_type = resource_type_of(value)
    if not resource_type:
        what = "not a JSON object" if not isinstance(value, dict) else "an object without a valid resourceType"
        yield Unreadable(counter.next(), location, "", f"not a FHIR resource ({what})")
        return
    if resource_type != "Bundle":
        yield Item(counter.next(), location, value, resource_type, resource_key(value, resource_type, ""), parent)
        return
    if depth >= MAX_BUNDLE_DEPTH:
        yield Unreadable(counter.next(), location, "", "Bundles nested too deeply")
        return
    entries = value.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        yield Unreadable(counter.next(), location, "", f"Bundle.entry must be a list, not {describe(entries)}")
        return
    scope = Scope(parent, counter.value)
    prefix = f"{location}, " if location else ""
    keyed: list[tuple[Any, str, str]] = []  # (resource or bad entry, fullUrl, key)
    for entry in entries:
        if not isinstance(entry, dict):
            keyed.append((entry, "", ""))
            continue
        resource = entry.get("resource")
        full_url = entry.get("fullUrl")
        full_url = full_url if isinstance(full_url, str) else ""
        entry_type = resource_type_of(resource)
        key = resource_key(resource, entry_type, full_url) if isinstance(resource, dict) and entry_type else ""
        if full_url and key:
            scope.urls[full_url] = key
        if entry_type == "Patient" and key:
            scope.patients.append(key)
        keyed.append((entry, full_url, key))
    for index, (entry, _full_url, key) in enumerate(keyed):
        entry_location = f"{prefix}entry {index}"
        if not isinstance(entry, dict):
            yield Unreadable(counter.next(), entry_location, "", "Bundle entry is not a JSON object")
            continue
        resource = entry.get("resource")
        if resource is None:  # e.g. a DELETE in a transaction, a deleted version in a history
            continue
        entry_type = resource_type_of(resource)
        if entry_type == "Bundle":
            yield from expand(resource, entry_location, scope, counter, depth + 1)
        elif entry_type:
            yield Item(counter.next(), entry_location, resource, entry_type, key, scope)
        else:
            yield Unreadable(counter.next(), entry_location, "", "entry.resource is not a FHIR resource")


def spans(path: Path, size: int) -> Generator[Span, None, None]:
    """Chunks of whole lines of at least ``size`` bytes (the last one to the end of the file), with the
    number of their first line. Memory: one block of ``SPAN_BLOCK`` bytes, whatever the lines."""
    with path.open("rb") as stream:
        start, first_line = 0, 1
        position = newlines = 0
        while block := stream.read(SPAN_BLOCK):
            cut = block.rfind(b"\n") + 1  # just after the block's last newline (0: none)
            newlines += block.count(b"\n")
            position += len(block)
            boundary = position - len(block) + cut
            if cut and boundary - start >= size:
                yield Span(start, boundary, first_line)
                start, first_line = boundary, newlines + 1
        if position > start:
            yield Span(start, -1, first_line)


@functools.lru_cache(maxsize=1024)  # the same medications and practitioners are referred to again and again
def literal_key(target: str) -> str:
    """The key of a relative or absolute reference (``Type/id``, a URL ending so, ``/_history/N`` removed)."""
    if target.startswith("urn:"):
        return ""
    parts = target.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    # An id longer than the reader accepts still makes a key: the reference then leads to a resource
    # that was rejected (and says so), not to one that "cannot be found".
    if len(parts) >= 2 and RESOURCE_TYPE.fullmatch(parts[-2]) and ID_CHARACTERS.fullmatch(parts[-1]):
        return f"{parts[-2]}/{parts[-1]}"
    return ""


def reference_key(reference: JSON, path: str, scope: Scope | None) -> str:
    """The key a Reference points to ("" when it has no literal reference or an unusable one).

    The enclosing Bundles' ``fullUrl`` first, then ``Type/id`` (relative, or the tail of a URL);
    a contained ``#id`` is resolved by the converter that needs it.
    """
    target = code_at(reference, "reference", path)
    if not target or target.startswith("#"):
        return ""
    if scope is not None and (key := scope.get(target)) is not None:
        return key
    return literal_key(target)

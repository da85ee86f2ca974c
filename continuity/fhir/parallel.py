"""Sharing the reading of a large NDJSON file among worker processes, in chunks of whole lines.

The main process cuts a file into chunks (``sources.spans``), workers read each chunk and work out
what every resource says — pass 1: its effects on the indexes (``Learnt``); pass 2: its records
(``Converted``) — and the main process applies the chunks in reading order. Workers are started with
``spawn`` and receive the pass-1 ``Indexes`` once. What crosses the process boundary are named tuples
of plain values (a ``Converted``, one per resource, as its plain fields: ``ConvertedFields``); records
travel flattened (``flatten`` / ``rebuild``), several times cheaper to pickle than the frozen
dataclasses with their enums and addresses.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import enum
import gc
import multiprocessing
import operator
import os
import pickle
import typing
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, NamedTuple, cast

from continuity.fhir.convert import convert, learn
from continuity.fhir.indexes import Effect, Indexes
from continuity.fhir.sources import SourceFile, Span, Unreadable, rejected_key, spans
from continuity.import_report import ImportProblem
from continuity.model import (
    Address,
    Allergy,
    Appointment,
    Condition,
    Measurement,
    Patient,
    Practice,
    Practitioner,
    RecentPrescription,
    Record,
    Treatment,
)

PARALLEL_MIN_BYTES = 8 * 1024 * 1024
"""Smallest uncompressed NDJSON file whose reading is shared among worker processes by default."""

MAX_AUTO_WORKERS = 4
CHUNK_BYTES = 512 * 1024  # lines handed to a worker process at a time (whole lines, about this size)

FlatRecord = tuple[int, tuple[Any, ...]]


class Learnt(NamedTuple):
    """Pass 1 of one resource in a worker: what it says, not yet applied."""

    ordinal: int
    location: str
    resource_type: str
    key: str
    light: bool
    effects: list[Effect]
    problem: str
    bundles: tuple[int, ...]  # the Bundles it was read in, innermost first (none for a plain NDJSON line)
    rejected_key: str  # with a problem and no usable id: the key it would have had


class Light(NamedTuple):
    """Pass 1 of successive NDJSON lines of one type not even parsed (docs/fhir-input.md, "Memory"): only
    their keys matter. Most lines of a Bulk export are such: one of these stands for a whole run of them."""

    resource_type: str
    keys: list[str]  # in reading order


class Converted(NamedTuple):
    """Pass 2 of one resource in a worker: its records (flattened), not yet applied."""

    ordinal: int
    location: str
    key: str
    resource_type: str
    records: list[FlatRecord]
    problem: str
    reason: str
    warnings: list[ImportProblem]
    ins_dropped: bool
    stripped: bool


ConvertedFields = tuple[int, str, str, str, list[FlatRecord], str, str, list[ImportProblem], bool, bool]
"""A ``Converted`` as it crosses the process boundary: its fields in a plain tuple, ``Converted._make``
names them again. A named tuple is pickled and unpickled through Python calls, a plain one is not: about
twice cheaper on both sides, for every resource of a shared read."""


def start_pool(workers: int, indexes: Indexes) -> concurrent.futures.ProcessPoolExecutor:
    """Worker processes holding a copy of ``indexes`` (pass 1: only the files; pass 2: everything pass 1 learnt).

    "spawn": a fresh interpreter, whatever threads the caller runs; the state is sent once to each.
    """
    state = pickle.dumps(indexes, protocol=pickle.HIGHEST_PROTOCOL)
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_start,
        initargs=(state,),
    )


def file_spans(path: Path, known: dict[Path, list[Span]]) -> Generator[Span, None, None]:
    """The chunks of a file: cut once (a whole read of the file), remembered in ``known`` for the next pass
    once every chunk has been handed out."""
    if path in known:
        yield from known[path]
        return
    found: list[Span] = []
    for span in spans(path, CHUNK_BYTES):
        found.append(span)
        yield span
    known[path] = found  # not reached when the pass stopped early (an unreadable file)


def chunks(
    pool: concurrent.futures.ProcessPoolExecutor,
    workers: int,
    file_spans: Generator[Span, None, None],
    task: Callable[..., bytes],
    *args: Any,
) -> Generator[list[Any], None, None]:
    """The results of ``task(*args, span)`` for the chunks of a file (``file_spans``), in order, a few in flight."""
    pending: collections.deque[concurrent.futures.Future[bytes]] = collections.deque()

    def submit() -> None:
        span = next(file_spans, None)
        if span is not None:
            pending.append(pool.submit(task, *args, span))

    try:
        for _ in range(workers + 1):  # bounded: a few chunks in flight
            submit()
        while pending:
            units: list[Any] = pickle.loads(pending.popleft().result())
            submit()
            yield units
    finally:
        for future in pending:
            future.cancel()
        file_spans.close()


# --- in the worker processes ----------------------------------------------------------------------

_worker_indexes: Indexes | None = None


def _worker_start(state: bytes) -> None:
    """Worker process initializer: the indexes, read-only from now on."""
    global _worker_indexes
    _worker_indexes = pickle.loads(state)
    # The indexes live as long as the process and never change: kept out of every garbage collection
    # (at 100,000 patients they are millions of objects the collector would walk again and again),
    # and collections made rarer, as for the main process (snapshot_build.fewer_collections).
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def learn_chunk(file_index: int, span: Span) -> bytes:
    """Pass 1 of one chunk of lines: ``Unreadable`` or ``Learnt`` for each unit, nothing applied."""
    indexes = _worker_indexes
    assert indexes is not None, "worker process not initialised"
    learnt: list[Unreadable | Learnt | Light] = []
    run = Light("", [])  # the run of light lines being gathered
    for unit in SourceFile(indexes.files[file_index]).items(light=True, span=span):
        if isinstance(unit, Unreadable):
            learnt.append(unit)
        elif unit.light:  # most lines: sent back as small as they can be, a run of keys at a time
            if learnt and learnt[-1] is run and run.resource_type == unit.resource_type:
                run.keys.append(unit.key)
            else:
                run = Light(unit.resource_type, [unit.key])
                learnt.append(run)
        else:
            effects, problem = learn(unit)
            learnt.append(
                Learnt(
                    unit.ordinal,
                    unit.location,
                    unit.resource_type,
                    unit.key,
                    unit.light,
                    effects,
                    problem,
                    unit.scope.chain() if unit.scope is not None else (),
                    rejected_key(unit.resource, unit.resource_type) if problem and not unit.key else "",
                )
            )
    return pickle.dumps(learnt, protocol=pickle.HIGHEST_PROTOCOL)


def convert_chunk(file_index: int, sweep: frozenset[str], span: Span) -> bytes:
    """Pass 2 of one chunk of lines: each resource of the sweep converted, nothing applied.

    The result stays pickled until the main process applies it (compact while it waits in line).
    """
    indexes = _worker_indexes
    assert indexes is not None, "worker process not initialised"
    converted: list[Unreadable | ConvertedFields] = []
    for unit in SourceFile(indexes.files[file_index]).items(span=span):
        if isinstance(unit, Unreadable):
            converted.append(unit)
        elif unit.resource_type in sweep and (file_index, unit.ordinal) not in indexes.bad:
            unit.key = indexes.collisions.key_of(unit.key, file_index, unit.ordinal)
            outcome = convert(indexes, file_index, unit)
            converted.append(
                (  # a Converted's fields, as a plain tuple (see ConvertedFields)
                    unit.ordinal,
                    unit.location,
                    unit.key,
                    unit.resource_type,
                    [flatten(record) for record in outcome.records],
                    outcome.problem,
                    outcome.reason,
                    outcome.warnings,
                    outcome.ins_dropped,
                    outcome.stripped,
                )
            )
    return pickle.dumps(converted, protocol=pickle.HIGHEST_PROTOCOL)


# --- records across the process boundary ----------------------------------------------------------


class _Shape:
    """How records of one class cross a process boundary: a tuple of plain values (pickling the
    frozen dataclasses themselves, their enums and addresses, costs several times more)."""

    __slots__ = ("address", "enums", "fields", "index", "kind")

    def __init__(self, index: int, kind: type[Any]) -> None:
        self.index = index
        self.kind = kind
        names = [f.name for f in dataclasses.fields(kind)]
        self.fields = operator.attrgetter(*names)
        self.address = names.index("address") if "address" in names else -1
        self.enums: list[tuple[int, dict[str, enum.Enum]]] = []
        hints = typing.get_type_hints(kind)
        for position, name in enumerate(names):
            hint = hints[name]
            for candidate in typing.get_args(hint) or (hint,):
                if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
                    self.enums.append((position, {member.value: member for member in candidate}))


_SHAPES = [
    _Shape(index, kind)
    for index, kind in enumerate(
        (Practice, Practitioner, Patient, Allergy, Condition, Treatment, RecentPrescription, Measurement, Appointment)
    )
]
_SHAPE_OF = {shape.kind: shape for shape in _SHAPES}


def flatten(record: Record) -> FlatRecord:
    """(shape index, field values); the index is negative when the values need no conversion back."""
    shape = _SHAPE_OF[type(record)]
    values = shape.fields(record)
    if shape.address < 0 and not any(values[position] is not None for position, _ in shape.enums):
        return -1 - shape.index, values  # e.g. a Treatment without a non-substitution reason
    changed = list(values)
    if shape.address >= 0:
        address = changed[shape.address]
        changed[shape.address] = (address.lines, address.postal_code, address.city, address.country)
    for position, _ in shape.enums:
        if changed[position] is not None:
            changed[position] = changed[position].value
    return shape.index, tuple(changed)


def rebuild(flat: FlatRecord) -> Record:
    index, values = flat
    if index < 0:
        return cast(Record, _SHAPES[-1 - index].kind(*values))
    shape = _SHAPES[index]
    changed = list(values)
    if shape.address >= 0:
        changed[shape.address] = Address(*changed[shape.address])
    for position, members in shape.enums:
        if changed[position] is not None:
            changed[position] = members[changed[position]]
    return cast(Record, shape.kind(*changed))


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1

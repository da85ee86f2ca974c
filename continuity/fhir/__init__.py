"""FHIR R4 JSON (IPS and other Bundles, single resources, Bulk NDJSON) → model records.

This package is the only code that knows FHIR. The dialect it reads is the contract written in
docs/fhir-input.md; keep the two in step. Its modules:

- ``vocabulary``: extension URLs, code systems, coded negations, units, statuses, resource types;
- ``json``: strict JSON (orjson when installed) and typed access to untrusted JSON;
- ``datatypes``: CodeableConcept, dates, Address, ContactPoint, Ratio, Dosage;
- ``sources``: files, folders, NDJSON lines, Bundles, positions, literal references;
- ``indexes``: what pass 1 learns, and references resolved through it;
- ``people``, ``clinical``, ``medications``: one resource type → its effects and records;
- ``convert``: the dispatch of one resource to its pass-1 and pass-2 functions;
- ``reader``: the two passes, applied in reading order, and the report;
- ``parallel``: both passes of a large NDJSON file shared among worker processes.

The rules that are not FHIR (last copy wins, identity merge, allergy status) are in
``continuity.intake``; the report is ``continuity.import_report``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from continuity.fhir.parallel import MAX_AUTO_WORKERS, PARALLEL_MIN_BYTES, cpu_count
from continuity.fhir.reader import Reader
from continuity.fhir.sources import MAX_JSON_FILE_BYTES, MAX_LINE_BYTES, expand_sources
from continuity.import_report import ImportProblem, ImportReport
from continuity.model import Record

__all__ = [
    "MAX_JSON_FILE_BYTES",
    "MAX_LINE_BYTES",
    "PARALLEL_MIN_BYTES",
    "ImportProblem",
    "ImportReport",
    "read_records",
]


def read_records(
    sources: Sequence[Path],
    *,
    strict: bool = False,
    report: ImportReport | None = None,
    workers: int | None = None,
) -> Iterator[Record]:
    """Yield model records from FHIR R4 JSON files, NDJSON files and folders of them.

    Args:
        sources: files (``.json``: a Bundle or one resource; ``.ndjson``: one resource a line;
            either may be gzipped, ``.json.gz`` / ``.ndjson.gz``) or folders (every such file
            directly inside, sorted by name).
        strict: raise ``InputError`` on the first problem instead of reporting and skipping.
        report: filled with counts, problems and warnings while the iterator is consumed.
        workers: worker processes that parse and convert the lines of uncompressed NDJSON files in
            both passes (the records, their order and the report are the same whatever the number;
            see docs/fhir-input.md, "Worker processes"). ``None``:
            one per CPU (at most 4) for files of at least ``PARALLEL_MIN_BYTES``, none on a single
            CPU; ``1``: none; ``n >= 2``: ``n`` for every uncompressed NDJSON file.

    Raises:
        InputError: a source that does not exist; in strict mode, the first bad line or resource.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers is None:
        count, minimum = min(cpu_count(), MAX_AUTO_WORKERS), PARALLEL_MIN_BYTES
    else:
        count, minimum = workers, 0
    reader = Reader(
        expand_sources(sources),
        strict=strict,
        report=report if report is not None else ImportReport(),
        workers=count,
        parallel_min_bytes=minimum,
    )
    return reader.records()

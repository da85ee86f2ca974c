"""Foundation benchmark: synthesise, publish (FHIR NDJSON → snapshot database), open, search.

Run: `.venv/bin/python -m bench.foundation [--sizes 2000,20000,100000] [--queries 1200]`.
Prints a Markdown table for docs/performance.md. The baseline is a naive search measured in the
same run on the same in-memory database: a `LIKE 'x%'` scan over the name columns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from continuity import publish, snapshot_build, snapshotdb, synth
from continuity.display import fr_date

TODAY = dt.date(2026, 11, 28)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def make_queries(db: snapshotdb.SnapshotDB, count: int, seed: int) -> list[tuple[str, str]]:
    """Mixed query shapes drawn from real rows of the database."""
    rng = random.Random(seed)
    conn = db._conn
    rows = conn.execute(
        "SELECT birth_name, used_name, birth_given_names, birth_date, ins FROM patient ORDER BY random() LIMIT 3000"
    ).fetchall()
    with_ins = [r[4] for r in rows if r[4]]
    shapes: list[tuple[str, str]] = []
    for index in range(count):
        birth_name, used_name, given_json, birth_date, _ = rows[index % len(rows)]
        given = given_json.strip('[]"').split('","')[0]
        born = dt.date.fromisoformat(birth_date) if birth_date else TODAY
        shape = index % 10
        if shape == 0:
            shapes.append(("exact surname", birth_name.lower()))
        elif shape == 1:
            shapes.append(("1-letter prefix", birth_name[:1]))
        elif shape == 2:
            shapes.append(("3-letter prefix", birth_name[:3]))
        elif shape == 3:
            shapes.append(("surname + given", f"{birth_name} {given}"))
        elif shape == 4:
            shapes.append(("prefix + prefix", f"{birth_name[:3]} {given[:2]}"))
        elif shape == 5:
            shapes.append(("used name", (used_name or birth_name).upper()))
        elif shape == 6:
            shapes.append(("JJ/MM/AAAA", fr_date(born)))
        elif shape == 7:
            shapes.append(("JJMMAAAA", born.strftime("%d%m%Y")))
        elif shape == 8:
            shapes.append(("year + surname", f"{birth_name[:4]} {born.year}"))
        else:
            shapes.append(("INS", rng.choice(with_ins) if with_ins else birth_name))
    rng.shuffle(shapes)
    return shapes


def naive_search(db: snapshotdb.SnapshotDB, text: str) -> list[object]:
    pattern = text.split()[0] + "%"
    return db._conn.execute(
        "SELECT id FROM patient WHERE birth_name LIKE ? OR used_name LIKE ? OR birth_given_names LIKE ? LIMIT 50",
        (pattern, pattern, "%" + pattern),
    ).fetchall()


def bench_size(patients: int, queries: int, workdir: Path) -> dict[str, object]:
    export = workdir / f"fhir-{patients}"
    synth_seconds = timed(lambda: synth.write_practice(export, patients=patients, seed=1, today=TODAY))
    out = workdir / f"snapshot-{patients}.db"
    result: list[snapshot_build.BuildResult] = []
    publish_seconds = timed(lambda: result.append(publish.build([export], out)))
    counts = result[0].counts
    data = out.read_bytes()
    open_times = []
    for _ in range(5):
        start = time.perf_counter()
        db = snapshotdb.open_bytes(data, expected_counts=counts)
        open_times.append(time.perf_counter() - start)
        db.close()
    db = snapshotdb.open_bytes(data, expected_counts=counts)
    mixed = make_queries(db, queries, seed=patients)
    for _, text in mixed[:50]:  # warm the page cache of the in-memory image
        db.search(text)
    per_shape: dict[str, list[float]] = defaultdict(list)
    ours: list[float] = []
    naive: list[float] = []
    for shape, text in mixed:
        db._results.clear()  # each shape query builds its whole page: no help from earlier queries
        elapsed = timed(lambda t=text: db.search(t))  # type: ignore[misc]
        per_shape[shape].append(elapsed)
        ours.append(elapsed)
        naive.append(timed(lambda t=text: naive_search(db, t)))  # type: ignore[misc]
    # Typing: every prefix of "SURNAME Given", keystroke by keystroke, as the TUI searches (the
    # result cache is warm with what the previous keystrokes found, as it is at the desk).
    typing: list[float] = []
    for birth_name, given_json in db._conn.execute(
        "SELECT birth_name, birth_given_names FROM patient ORDER BY random() LIMIT 200"
    ).fetchall():
        typed = f"{birth_name} {json.loads(given_json)[0]}"
        for end in range(1, len(typed) + 1):
            typing.append(timed(lambda t=typed[:end]: db.search(t)))  # type: ignore[misc]
    return {
        "typing_p50_ms": statistics.median(typing) * 1000,
        "typing_p99_ms": percentile(typing, 0.99) * 1000,
        "typing_count": len(typing),
        "patients": patients,
        "synth_s": synth_seconds,
        "publish_s": publish_seconds,
        "db_mb": len(data) / 1e6,
        "open_ms": statistics.median(open_times) * 1000,
        "p50_ms": statistics.median(ours) * 1000,
        "p99_ms": percentile(ours, 0.99) * 1000,
        "naive_p50_ms": statistics.median(naive) * 1000,
        "naive_p99_ms": percentile(naive, 0.99) * 1000,
        "shapes": {s: (statistics.median(v) * 1000, percentile(v, 0.99) * 1000) for s, v in per_shape.items()},
        "queries": len(mixed),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,20000,100000")
    parser.add_argument("--queries", type=int, default=1200)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(bench_size(size, args.queries, Path(tmp)))
    print("| patients | synth (s) | publish (s) | db (MB) | open+validate (ms) | search p50 (ms) | search p99 (ms) "
          "| naive LIKE p50 (ms) | naive LIKE p99 (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['patients']:,} | {r['synth_s']:.1f} | {r['publish_s']:.1f} | {r['db_mb']:.1f} "
              f"| {r['open_ms']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
              f"| {r['naive_p50_ms']:.2f} | {r['naive_p99_ms']:.2f} |")
    largest = rows[-1]
    print(f"\nPer query shape at {largest['patients']:,} patients ({largest['queries']} queries in all):\n")
    print(f"Typing at {largest['patients']:,} patients, keystroke by keystroke ({largest['typing_count']} searches): "
          f"p50 {largest['typing_p50_ms']:.2f} ms, p99 {largest['typing_p99_ms']:.2f} ms\n")
    print("| shape | p50 (ms) | p99 (ms) |")
    print("|---|---:|---:|")
    shapes = largest["shapes"]
    assert isinstance(shapes, dict)
    for shape, (p50, p99) in sorted(shapes.items()):
        print(f"| {shape} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()

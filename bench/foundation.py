"""Foundation benchmark: synthesise, publish (FHIR NDJSON → snapshot database), open, search.

Run: `.venv/bin/python -m bench.foundation [--sizes 2000,20000,100000] [--queries 1200] [--workdir DIR]`.
Prints a Markdown table for docs/performance.md. The baseline is a naive search measured in the
same run on the same in-memory database: a `LIKE 'x%'` scan over the name columns. With
`--workdir`, a FHIR export and database already there are reused (synth and publish not timed).
With `--baseline-search FILE` (another version of continuity/search.py, e.g. `git show
REV:continuity/search.py > /tmp/search_before.py`), each query is also run through that version's
`find` on the same database, interleaved with ours, and the per-shape table compares the CPU time of
the lookups alone (no patient objects built): a fair before/after on a busy machine, for a version
that reads the same schema. Across a schema change (version 5 put the names on every index row),
`bench/search_shapes.py` compares two checkouts, each on its own database.

The query shapes include names as heard (search.py's second tier): a surname respelled so it
sounds the same ("heard surname"), with a given name, and a surname with two neighbouring letters
swapped ("typo surname"), all drawn from real rows so that they have answers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from continuity import publish, search, snapshot_build, snapshotdb, synth
from continuity.display import fr_date

TODAY = dt.date(2026, 11, 28)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# Spelling changes that keep a French name's sound: tried until one keeps the phonetic key.
RESPELLINGS = (
    ("t$", "d"), ("d$", "t"), ("ai", "e"), ("ei", "ai"), ("y", "i"), ("i", "y"), ("ph", "f"), ("f", "ph"),
    ("c", "k"), ("qu", "k"), ("au", "o"), ("eau", "o"), ("o", "au"), ("ss", "s"), ("s", "ss"), ("an", "en"),
    ("en", "an"), ("ll", "l"), ("l", "ll"), ("tt", "t"), ("t", "tt"), ("nn", "n"), ("n", "nn"), ("x$", ""),
    ("e$", ""), ("er$", "ez"), ("b", "bb"), ("v", "w"), ("on", "om"),
)


def heard_as(name: str, rng: random.Random) -> str | None:
    """The name spelled another way that sounds the same and does not start like it, or None."""
    import re

    word = "".join(search.tokens(name))
    key = search.sound_key(word)
    for pattern, replacement in rng.sample(RESPELLINGS, len(RESPELLINGS)):
        matches = list(re.finditer(pattern, word))
        if not matches:
            continue
        found = rng.choice(matches)
        variant = word[: found.start()] + replacement + word[found.end():]
        if variant != word and not word.startswith(variant) and search.sound_key(variant) == key:
            return variant
    return None


def typo_of(name: str, rng: random.Random) -> str | None:
    """The name with two neighbouring letters swapped (not the first one), or None."""
    word = "".join(search.tokens(name))
    if len(word) < 5:
        return None
    at = rng.randrange(1, len(word) - 1)
    variant = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    return variant if variant != word else None


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
        shape = index % 13
        if shape in (10, 12) and (heard := heard_as(birth_name, rng)):
            shapes.append(("heard surname", heard) if shape == 10 else ("heard surname + given", f"{heard} {given}"))
            continue
        if shape == 11 and (typo := typo_of(birth_name, rng)):
            shapes.append(("typo surname", typo))
            continue
        shape %= 10
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


def load_search(path: Path) -> object:
    """Another version of continuity/search.py, loaded under its own name (it imports nothing of ours)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("search_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def lookup_cpu(find: Callable[[], object]) -> float:
    start = time.thread_time()
    find()
    return time.thread_time() - start


def bench_size(
    patients: int, queries: int, workdir: Path, *, reuse: bool = False, baseline: object | None = None
) -> dict[str, object]:
    export = workdir / f"fhir-{patients}"
    out = workdir / f"snapshot-{patients}.db"
    synth_seconds = publish_seconds = float("nan")
    if not (reuse and export.is_dir()):
        synth_seconds = timed(lambda: synth.write_practice(export, patients=patients, seed=1, today=TODAY))
    if not (reuse and out.is_file()):
        result: list[snapshot_build.BuildResult] = []
        publish_seconds = timed(lambda: result.append(publish.build([export], out)))
    counts = snapshotdb.open_file(out).counts()
    data = out.read_bytes()
    open_times = []
    for _ in range(5):
        start = time.perf_counter()
        db = snapshotdb.open_bytes(data, expected_counts=counts)
        open_times.append(time.perf_counter() - start)
        db.close()
    db = snapshotdb.open_bytes(data, expected_counts=counts)
    warm_up_seconds = timed(db.warm_up)  # the surnames for typo tolerance: read once, at unlock
    mixed = make_queries(db, queries, seed=patients)
    for _, text in mixed[:50]:  # warm the page cache of the in-memory image
        db.search(text)
    per_shape: dict[str, list[float]] = defaultdict(list)
    per_shape_cpu: dict[str, list[float]] = defaultdict(list)
    lookups: dict[str, list[float]] = defaultdict(list)
    lookups_before: dict[str, list[float]] = defaultdict(list)
    ours: list[float] = []
    naive: list[float] = []
    for shape, text in mixed:
        db._results.clear()  # each shape query builds its whole page: no help from earlier queries
        # CPU time of this thread beside the wall time: on a shared machine the wall time also
        # counts the time other processes held the CPU.
        cpu_start = time.thread_time()
        elapsed = timed(lambda t=text: db.search(t))  # type: ignore[misc]
        per_shape_cpu[shape].append(time.thread_time() - cpu_start)
        per_shape[shape].append(elapsed)
        ours.append(elapsed)
        naive.append(timed(lambda t=text: naive_search(db, t)))  # type: ignore[misc]
        if baseline is not None:
            query, old_query = search.parse_query(text), baseline.parse_query(text)  # type: ignore[attr-defined]
            lookups[shape].append(lookup_cpu(lambda q=query: search.find(db._conn, q, 50, db.surnames())))
            lookups_before[shape].append(lookup_cpu(lambda q=old_query: baseline.find(db._conn, q, 50)))  # type: ignore[attr-defined]
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
        "warm_up_ms": warm_up_seconds * 1000,
        "patients": patients,
        "synth_s": synth_seconds,
        "publish_s": publish_seconds,
        "db_mb": len(data) / 1e6,
        "open_ms": statistics.median(open_times) * 1000,
        "p50_ms": statistics.median(ours) * 1000,
        "p99_ms": percentile(ours, 0.99) * 1000,
        "naive_p50_ms": statistics.median(naive) * 1000,
        "naive_p99_ms": percentile(naive, 0.99) * 1000,
        "shapes": {
            s: (statistics.median(v) * 1000, percentile(v, 0.99) * 1000,
                statistics.median(per_shape_cpu[s]) * 1000, percentile(per_shape_cpu[s], 0.99) * 1000, len(v))
            for s, v in per_shape.items()
        },
        "queries": len(mixed),
        "lookups": {
            s: (statistics.median(v) * 1000, percentile(v, 0.99) * 1000,
                statistics.median(lookups_before[s]) * 1000, percentile(lookups_before[s], 0.99) * 1000)
            for s, v in lookups.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,20000,100000")
    parser.add_argument("--queries", type=int, default=1200)
    parser.add_argument("--workdir", type=Path, help="Keep (and reuse) exports and databases here.")
    parser.add_argument("--baseline-search", type=Path, help="Another search.py to compare lookups with.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in (int(s) for s in args.sizes.split(",")):
            baseline = load_search(args.baseline_search) if args.baseline_search else None
            rows.append(bench_size(size, args.queries, workdir, reuse=args.workdir is not None, baseline=baseline))
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
          f"p50 {largest['typing_p50_ms']:.2f} ms, p99 {largest['typing_p99_ms']:.2f} ms")
    print(f"Surnames read for typo tolerance (once per unlock): {largest['warm_up_ms']:.0f} ms\n")
    print("| shape | queries | p50 (ms) | p99 (ms) | CPU p50 (ms) | CPU p99 (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    shapes = largest["shapes"]
    assert isinstance(shapes, dict)
    for shape, (p50, p99, cpu50, cpu99, count) in sorted(shapes.items()):
        print(f"| {shape} | {count} | {p50:.2f} | {p99:.2f} | {cpu50:.2f} | {cpu99:.2f} |")
    lookups = largest["lookups"]
    assert isinstance(lookups, dict)
    if lookups:
        print("\nLookups alone (search.find, CPU ms), ours against the baseline search.py, same queries, "
              "interleaved:\n")
        print("| shape | ours p50 | ours p99 | baseline p50 | baseline p99 |")
        print("|---|---:|---:|---:|---:|")
        for shape, (p50, p99, before50, before99) in sorted(lookups.items()):
            print(f"| {shape} | {p50:.2f} | {p99:.2f} | {before50:.2f} | {before99:.2f} |")
    print(f"\n1-minute load average at the end: {os.getloadavg()[0]:.1f} (2 CPUs)")


if __name__ == "__main__":
    main()

"""Search latency by query shape, before and after a change, in alternating rounds.

Run: `.venv/bin/python -m bench.search_shapes --before CODE_DIR DB --after CODE_DIR DB [--rounds 2]`.

Each side is a copy of the code (e.g. `git archive REV continuity bench | tar -x -C DIR`) and a
snapshot database that this code reads (`publisher build` of the same export: a change of schema
needs its own database). Rounds alternate between the two sides, each in a fresh process, so that
both meet the same machine load. Each round runs bench.foundation's 1,300 mixed queries drawn from
the database (seed = patients, so both sides get the same ones when the patients are the same) and
times the full `SnapshotDB.search` — both tiers and the page's patient objects, the result cache
emptied before each query — then types 200 random "SURNAME Given" keystroke by keystroke, cache
warm, as the desk does, under the desk's garbage-collector policy. Prints a Markdown table: p50 and
p99 per shape, wall time, and the CPU time of the searching thread for the after side (on a shared
machine, wall time also counts other processes).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

QUERIES = 1300
TYPED_NAMES = 200


def _round(database: Path, out: Path) -> None:
    """One side's round, in this process: the code under test is first on sys.path (see main)."""
    from bench.foundation import make_queries
    from continuity import snapshotdb

    db = snapshotdb.open_bytes(database.read_bytes())
    db.warm_up()
    # The garbage collector's policy of the desk after unlock (tui/app.py, `_freeze_heap`): the
    # long-lived objects frozen, full collections left to idle moments, not to a keystroke.
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold[0], threshold[1], 1000)
    mixed = make_queries(db, QUERIES, seed=db.counts()["patient"])
    for _, text in mixed[:50]:  # the page cache of the in-memory image
        db.search(text)
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    for shape, text in mixed:
        db._results.clear()
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        db.search(text)
        wall[shape].append(time.perf_counter() - wall_start)
        cpu[shape].append(time.thread_time() - cpu_start)
    typed = db._conn.execute(
        "SELECT birth_name, birth_given_names FROM patient ORDER BY random() LIMIT ?", (TYPED_NAMES,)
    ).fetchall()
    for birth_name, given_json in typed:
        name = f"{birth_name} {json.loads(given_json)[0]}"
        for end in range(1, len(name) + 1):
            cpu_start, wall_start = time.thread_time(), time.perf_counter()
            db.search(name[:end])
            wall["typing, keystroke by keystroke"].append(time.perf_counter() - wall_start)
            cpu["typing, keystroke by keystroke"].append(time.thread_time() - cpu_start)
    out.write_text(json.dumps({shape: [wall[shape], cpu[shape]] for shape in wall}))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", nargs=2, metavar=("CODE_DIR", "DB"))
    parser.add_argument("--after", nargs=2, metavar=("CODE_DIR", "DB"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--round", nargs=2, help=argparse.SUPPRESS)  # DB OUT: run one round here
    args = parser.parse_args()
    if args.round:
        _round(Path(args.round[0]), Path(args.round[1]))
        return
    if not (args.before and args.after):
        parser.error("--before and --after are both needed")
    sides = {"before": args.before, "after": args.after}
    merged: dict[str, dict[str, list[list[float]]]] = {name: defaultdict(lambda: [[], []]) for name in sides}
    with tempfile.TemporaryDirectory() as scratch:
        for number in range(args.rounds):
            for name, (code, database) in sides.items():
                out = Path(scratch) / f"{name}-{number}.json"
                # This file runs the round; the side's code comes first on the path (continuity, bench).
                environment = {**os.environ, "PYTHONPATH": str(Path(code).resolve())}
                subprocess.run(
                    [sys.executable, __file__, "--round", str(Path(database).resolve()), str(out)],
                    check=True, env=environment,
                )
                for shape, (wall, cpu) in json.loads(out.read_text()).items():
                    merged[name][shape][0].extend(wall)
                    merged[name][shape][1].extend(cpu)
    before, after = merged["before"], merged["after"]
    print(f"{args.rounds} alternating rounds; wall ms unless said\n")
    print("| shape | queries | before p50 | before p99 | after p50 | after p99 | after CPU p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for shape in sorted(after, key=lambda s: (s.startswith("typing"), s)):
        old, new = before.get(shape, [[0.0], [0.0]]), after[shape]
        print(
            f"| {shape} | {len(new[0])} | {percentile(old[0], .5) * 1e3:.2f} | {percentile(old[0], .99) * 1e3:.2f} "
            f"| {percentile(new[0], .5) * 1e3:.2f} | **{percentile(new[0], .99) * 1e3:.2f}** "
            f"| {percentile(new[1], .99) * 1e3:.2f} |"
        )


if __name__ == "__main__":
    main()

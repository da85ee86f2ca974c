"""TUI benchmark: keystroke → results table updated (through Pilot), and app start → unlock screen.

Run: `.venv/bin/python -m bench.tui [--patients 100000] [--queries 300] [--starts 10] [--write-doc]`.

Keystroke: the app runs headless under Pilot at 100×30 on a synthetic practice (dev mode, the same
SnapshotDB the unlock path yields). For each query, everything but the last character is typed and
left to settle; the clock starts just before `pilot.press(last character)` and stops when the results
table holds the rows for the full query ("rows in"), and again after the next screen refresh has
painted them ("painted"). The baseline is the bare `SnapshotDB.search` of the same queries in the same
run: the difference is what the UI adds (key dispatch, worker thread, messages, table rebuild).
"Settled" includes the journal entry of the search shown, written by a worker once its rows are
painted: a typist's next key comes tens of ms after the paint, when it is long written.

Start: `python -c ...` in a fresh process builds the app on an initialised appliance home and runs it
headless; the clock runs from spawning the process to the unlock screen being mounted (imports
included), as the launcher would do it.

Journal: `Session.search` on the same queries, interleaved with the bare search, in both ways the
code offers: the entry written (sealed, fsynced) before the results are returned (the command line),
and queued, the results returned, then the entry written (`journal_later=True`, the TUI's keystroke
path; the write is timed apart, as the search thread does it after posting the results).

`--write-doc` replaces the "TUI" section of docs/performance.md with the results.

`--against DIR --rounds N`: the same benchmark run in fresh processes, alternating this tree and
another checkout (e.g. `git archive` of the code before issue 11 unpacked in DIR, whose own
`bench/tui.py` and database cache are used), N rounds each, printed side by side with the ratios of
the medians: a before/after measured in the same run on a machine whose speed drifts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.foundation import make_queries, percentile
from continuity import publish, snapshotdb
from continuity.errors import SnapshotDatabaseError

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 28)
SIZE = (100, 30)


def practice_database(patients: int, cache: Path) -> Path:
    from continuity import synth

    database = cache / f"db-{patients}.sqlite"
    if database.exists():
        try:
            snapshotdb.open_file(database).close()
            return database
        except SnapshotDatabaseError:  # built by an older schema: build it again
            database.unlink()
    sources = cache / f"fhir-{patients}"
    if not (sources / ".complete").exists():
        synth.write_practice(sources, patients=patients, seed=1, today=TODAY)
        (sources / ".complete").write_text("ok")
    publish.build([sources], database, practice_id="bench")
    return database


def bare_search(database: Path, queries: list[str]) -> list[float]:
    db = snapshotdb.open_file(database)
    try:
        for text in queries[:20]:  # warm the page cache the same way the app is warmed
            db.search(text)
        timings = []
        for text in queries:
            start = time.perf_counter()
            db.search(text)
            timings.append(time.perf_counter() - start)
        return timings
    finally:
        db.close()


def session_search(database: Path, queries: list[str], home: Path) -> dict[str, list[float]]:
    """`Session.search` beside the bare search, query by query: what journaling adds, both ways."""
    from continuity.journal import Journal
    from continuity.session import Session

    session = Session.from_database(snapshotdb.open_file(database), "bench", Journal(home))
    db = session.db
    timings: dict[str, list[float]] = {"bare": [], "journal_first": [], "journal_later": [], "later_write": []}
    try:
        for text in queries[:20]:
            db.search(text)
        ways: list[tuple[str, Callable[[str], list[Any]]]] = [
            ("bare", db.search),
            ("journal_first", session.search),
            ("journal_later", lambda text: session.search(text, journal_later=True)),
        ]
        for number, text in enumerate(queries):
            # Each way goes first as often as the others: a repeated query is faster (the search keeps
            # the pages it just read), which must not favour one of them.
            shift = number % len(ways)
            for name, way in ways[shift:] + ways[:shift]:
                start = time.perf_counter()
                found = way(text)
                timings[name].append(time.perf_counter() - start)
                if name == "journal_later":
                    start = time.perf_counter()
                    session.journal_queued()
                    if found:
                        timings["later_write"].append(time.perf_counter() - start)
        return timings
    finally:
        session.lock(reason="bench")


async def through_pilot(database: Path, queries: list[str], home: Path) -> tuple[list[float], list[float]]:
    from textual.widgets import Input

    from continuity.session import DatabaseUnlocker
    from continuity.tui.app import ContinuityApp
    from continuity.tui.widgets.results import ResultsTable

    app = ContinuityApp(DatabaseUnlocker(database, home, user="bench"), idle_minutes=0, watch_store=False)
    rows_in: dict[str, float] = {}
    painted: dict[str, float] = {}
    original_show = ResultsTable.show

    def show(table: ResultsTable, query_text: str, results: list[Any], today: dt.date) -> None:
        original_show(table, query_text, results, today)
        rows_in[query_text] = time.perf_counter()
        table.app.call_after_refresh(lambda: painted.setdefault(query_text, time.perf_counter()))

    ResultsTable.show = show  # type: ignore[method-assign]
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            field = app.screen.query_one("#search-input", Input)
            table = app.screen.query_one(ResultsTable)

            def journaling() -> bool:
                # The journal entry of the search shown is written once its rows are painted; a typist's
                # next key comes tens of ms later, when it is long written: so does the harness's.
                return any(worker.group == "search-journal" and not worker.is_finished for worker in app.workers)

            async def settle(text: str) -> None:
                for _ in range(2000):
                    if table.query_text == text and text in painted and not journaling():
                        return
                    await asyncio.sleep(0.001)
                raise RuntimeError(f"the table never showed {text!r}")

            async def set_value(text: str) -> None:
                if field.value != text:
                    field.value = text
                    await settle(text)
                field.cursor_position = len(text)  # the next key goes at the end, as when typing

            to_rows: list[float] = []
            to_paint: list[float] = []
            for text in [*queries[:20], *queries]:  # the first 20 warm up the app, as for the baseline
                await set_value("")
                await set_value(text[:-1])
                rows_in.pop(text, None)
                painted.pop(text, None)
                start = time.perf_counter()
                await pilot.press(text[-1])
                await settle(text)
                to_rows.append(rows_in[text] - start)
                to_paint.append(painted[text] - start)
            return to_rows[20:], to_paint[20:]
    finally:
        ResultsTable.show = original_show  # type: ignore[method-assign]


START_SCRIPT = """
import sys
from pathlib import Path
from continuity.tui.app import make_app
from continuity.tui.screens.unlock import UnlockScreen

app = make_app(home=Path(sys.argv[1]))

async def ready(pilot):
    while not isinstance(app.screen, UnlockScreen):
        await pilot.pause(0.001)
    print("READY", flush=True)
    app.exit()

app.run(headless=True, size=(100, 30), auto_pilot=ready)
"""


def start_times(runs: int, home: Path) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", START_SCRIPT, str(home)], stdout=subprocess.PIPE,
                                   text=True, cwd=ROOT)
        assert process.stdout is not None
        line = process.stdout.readline()
        elapsed = time.perf_counter() - start
        process.wait(30)
        if line.strip() != "READY":
            raise RuntimeError(f"the app did not reach the unlock screen: {line!r}")
        timings.append(elapsed)
    return timings


def initialised_home(work: Path) -> Path:
    from continuity import keys
    from continuity.store import Store

    home = work / "home"
    Store(home).create()
    os.environ["CONTINUITY_TEST_WEAK_KDF"] = "1"  # only the slot's creation; listing staff reads no KDF
    try:
        keys.init_appliance(home, "accueil", "phrase de passe du banc")
    finally:
        os.environ.pop("CONTINUITY_TEST_WEAK_KDF", None)
    return home


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def summarise(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "p95": percentile(values, 0.95), "max": max(values)}


def markdown(result: dict[str, Any]) -> str:
    bare, rows, paint, start = result["bare"], result["rows"], result["paint"], result["start"]
    journal = result["journal"]
    lines = [
        f"Measured {result['when']} on {result['machine']} ({result['cpus']} CPUs), Python {result['python']}, "
        f"Textual {result['textual']}, 1-minute load average {result['load']:.1f} at the end; "
        f"{result['patients']:,} synthetic patients (synth seed 1), "
        f"{result['queries']} queries of mixed shapes (surname, 1- and 3-letter prefixes, surname + given name, "
        "used name, JJ/MM/AAAA, JJMMAAAA, year + surname, INS) drawn from the database. "
        "Re-run: `.venv/bin/python -m bench.tui --patients 100000 --queries 300 --starts 10 --write-doc`.",
        "",
        "| step | median | p95 | max | budget |",
        "|---|---:|---:|---:|---:|",
        f"| baseline: bare `SnapshotDB.search` | {ms(bare['median'])} | {ms(bare['p95'])} | {ms(bare['max'])} | "
        "p99 ≤ 5 ms |",
        f"| bare `SnapshotDB.search`, interleaved with the two below | {ms(journal['bare']['median'])} | "
        f"{ms(journal['bare']['p95'])} | {ms(journal['bare']['max'])} | |",
        f"| `Session.search`, journal written first (command line) | {ms(journal['journal_first']['median'])} | "
        f"{ms(journal['journal_first']['p95'])} | {ms(journal['journal_first']['max'])} | |",
        f"| `Session.search(journal_later=True)` (keystroke path) | {ms(journal['journal_later']['median'])} | "
        f"{ms(journal['journal_later']['p95'])} | {ms(journal['journal_later']['max'])} | |",
        f"| its journal write, after the results are posted | {ms(journal['later_write']['median'])} | "
        f"{ms(journal['later_write']['p95'])} | {ms(journal['later_write']['max'])} | |",
        f"| keystroke → rows in the results table (Pilot) | **{ms(rows['median'])}** | **{ms(rows['p95'])}** | "
        f"{ms(rows['max'])} | ≤ 50 ms |",
        f"| keystroke → rows painted (next screen refresh) | {ms(paint['median'])} | {ms(paint['p95'])} | "
        f"{ms(paint['max'])} | |",
        f"| app start (new process, imports included) → unlock screen, {result['starts']} runs | "
        f"**{ms(start['median'])}** | {ms(start['p95'])} | {ms(start['max'])} | ≤ 1 s |",
        "",
        "The keystroke path: the key reaches the search field, `Input.Changed` starts a worker thread "
        "(at most one search in flight; text typed meanwhile is searched next, so a fast typist never "
        "queues stale searches), the thread posts its results as a message, then writes the search's "
        "journal entry (sealed, fsynced) while the handler rebuilds the table (50 rows at most). "
        f"The UI adds {ms(rows['median'] - bare['median'])} at the median over the "
        "bare search. The app start runs headless (no terminal set-up), so a real terminal adds a few ms.",
    ]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    path = ROOT / "docs" / "performance.md"
    doc = path.read_text(encoding="utf-8")
    pattern = re.compile(r"(## TUI: start, keystroke to results\n\n)(.*?)(?=\n## |\Z)", re.S)
    if not pattern.search(doc):
        raise SystemExit("docs/performance.md has no 'TUI: start, keystroke to results' section")
    path.write_text(pattern.sub(lambda m: m.group(1) + text + "\n", doc, count=1), encoding="utf-8")


# The rows of `markdown`'s table, by the start of their first cell (both trees print these).
STEPS = {
    "baseline: bare": "bare `SnapshotDB.search` (baseline)",
    "keystroke → rows in": "keystroke → rows in the results table",
    "keystroke → rows painted": "keystroke → rows painted",
    "app start": "app start → unlock screen",
    "bare `SnapshotDB.search`, interleaved": "bare `SnapshotDB.search`, interleaved with the two below",
    "`Session.search`, journal written first": "`Session.search`, journal written first",
    "`Session.search(journal_later=True)`": "`Session.search(journal_later=True)`",
    "its journal write": "its journal write (search thread, after posting)",
}


def parse_table(output: str) -> dict[str, tuple[float, float]]:
    """(median, p95) in seconds for each step of a `markdown` table printed by either tree."""
    found: dict[str, tuple[float, float]] = {}
    for line in output.splitlines():
        cells = [cell.strip().replace("*", "") for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[1].endswith(" ms"):
            continue
        step = next((name for start, name in STEPS.items() if cells[0].startswith(start)), None)
        if step is not None:
            found[step] = tuple(float(cell[:-3].replace(",", "")) / 1000 for cell in cells[1:3])  # type: ignore[assignment]
    return found


def run_tree(tree: Path, args: argparse.Namespace, cache: Path | None) -> dict[str, tuple[float, float]]:
    command = [sys.executable, "-m", "bench.tui", "--patients", str(args.patients), "--queries", str(args.queries),
               "--starts", str(args.starts)]  # fmt: skip
    if cache is not None:
        command += ["--cache", str(cache)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"bench.tui failed in {tree}:\n{done.stderr[-3000:]}")
    return parse_table(done.stdout)


def compare(args: argparse.Namespace) -> str:
    """Alternate the other tree and this one (ABBA...), each in a fresh process, and set them side by side."""
    other, here = args.against.resolve(), ROOT
    results: dict[Path, list[dict[str, tuple[float, float]]]] = {other: [], here: []}
    for round_number in range(args.rounds):
        order = (other, here) if round_number % 2 == 0 else (here, other)
        for tree in order:
            results[tree].append(run_tree(tree, args, args.cache if tree == here else args.against_cache))
            print(f"round {round_number + 1}: {tree} done", file=sys.stderr, flush=True)

    def cell(runs: list[dict[str, tuple[float, float]]], step: str) -> str:
        if not all(step in run for run in runs):
            return "—"
        return " · ".join(f"{run[step][0] * 1000:.1f} / {run[step][1] * 1000:.1f}" for run in runs)

    lines = [
        f"{args.patients:,} patients, {args.queries} queries, {args.starts} starts a round; rounds alternate "
        f"(ABBA) between `{other}` (before) and `{here}` (now), 1-minute load average "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        "| step (median / p95 in ms, round by round) | before | now | now / before (median of medians) |",
        "|---|---|---|---:|",
    ]
    for step in STEPS.values():
        ratio = "—"
        if all(step in run for run in results[other] + results[here]):
            before = statistics.median(run[step][0] for run in results[other])
            now = statistics.median(run[step][0] for run in results[here])
            ratio = f"{now / before:.2f}"
        lines.append(f"| {step} | {cell(results[other], step)} | {cell(results[here], step)} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "tui-cache")
    parser.add_argument("--write-doc", action="store_true")
    parser.add_argument("--against", type=Path, help="another checkout to alternate with (see the module doc)")
    parser.add_argument("--against-cache", type=Path, help="its database cache (default: its own bench/results)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.against is not None:
        print(compare(args))
        return

    import textual

    args.cache.mkdir(parents=True, exist_ok=True)
    database = practice_database(args.patients, args.cache)
    db = snapshotdb.open_file(database)
    queries = [text for _, text in make_queries(db, args.queries, seed=7) if text.strip()]
    db.close()
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as work:
        home = initialised_home(Path(work))
        bare = bare_search(database, queries)
        journal = session_search(database, queries, home)
        rows, paint = asyncio.run(through_pilot(database, queries, home))
        start = start_times(args.starts, home)
    result = {
        "when": dt.datetime.now().strftime("%Y-%m-%d"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "textual": getattr(textual, "__version__", "?"),
        "patients": args.patients,
        "queries": len(queries),
        "starts": args.starts,
        "bare": summarise(bare),
        "rows": summarise(rows),
        "paint": summarise(paint),
        "start": summarise(start),
        "journal": {name: summarise(values) for name, values in journal.items()},
        "load": os.getloadavg()[0],
    }
    text = markdown(result)
    print(text)
    if args.write_doc:
        write_doc(text)


if __name__ == "__main__":
    main()

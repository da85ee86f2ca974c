"""Security benchmark (issue 13): what the journal anchors, journaled searches and roles cost.

Run: `.venv/bin/python -m bench.security [--patients 2000] [--entries 20000] [--runs 5]`.

Measured in one run, each against its baseline measured in the same run:
- a journal append with the head record (`journal.head`) against the same append without it;
- a search through the session (journaled, query sealed) against the same search on the database;
- a checkpoint (forward key: open, sign twice, seal the next one) against a bare journal append;
- `Session.unlock` (argon2id MODERATE, roster, grant, checkpoint) against one argon2id derivation;
- `journal verify` and the witness request on a journal of `--entries` entries.
Prints a Markdown table (medians, p95) for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nacl.pwhash

QUERIES = ["martin", "ber", "dupont jean", "12/03/1951", "1951", "mar", "lef", "nguyen", "a", "le"]


def timed(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from continuity import demo, journal, keys, witness
    from continuity.session import Session

    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-security-") as tmp:
        home = Path(tmp) / "demo"
        practice = demo.prepare(home, patients=args.patients)
        user, passphrase = demo.DEMO_DOCTOR, demo.DEMO_DOCTOR_PASSPHRASE

        salt = os.urandom(nacl.pwhash.argon2id.SALTBYTES)
        argon = timed(lambda: nacl.pwhash.argon2id.kdf(32, passphrase.encode(), salt,
                                                       opslimit=keys.DEFAULT_OPSLIMIT,
                                                       memlimit=keys.DEFAULT_MEMLIMIT), args.runs)  # fmt: skip
        unlock = timed(lambda: Session.unlock(practice.home, user, passphrase).lock(), args.runs)
        rows.append(("argon2id MODERATE derivation (baseline)", *summary(argon), ""))
        rows.append(("unlock + lock (roster, grant, 2 checkpoints, snapshot)", *summary(unlock),
                     f"{statistics.median(unlock) / statistics.median(argon):.2f}× argon2id"))  # fmt: skip

        book = journal.Journal(practice.home)
        plain: list[float] = []
        recorded: list[float] = []
        real_record = journal.Journal._record_head
        for block in range(6):  # alternate, so both see the same machine load
            if block % 2:
                journal.Journal._record_head = real_record  # type: ignore[method-assign]
                target = recorded
            else:
                journal.Journal._record_head = lambda self, entry: None  # type: ignore[method-assign]
                target = plain
            target += timed(lambda: book.append(user="bench", action="view_patient", patient_id="pat-000001"), 50)
        journal.Journal._record_head = real_record  # type: ignore[method-assign]
        rows.append(("journal append without head record (baseline)", *summary(plain), ""))
        rows.append(("journal append with head record", *summary(recorded),
                     f"{statistics.median(recorded) / statistics.median(plain):.2f}×"))  # fmt: skip

        session = Session.unlock(practice.home, user, passphrase)
        raw: list[float] = []
        journaled: list[float] = []
        for _ in range(args.runs):
            for query in QUERIES:
                raw += timed(lambda q=query: session.db.search(q, limit=50), 1)  # type: ignore[misc]
                journaled += timed(lambda q=query: session.search(q), 1)  # type: ignore[misc]
        rows.append(("search on the database (baseline)", *summary(raw), ""))
        rows.append(("search through the session (journaled, sealed)", *summary(journaled),
                     f"+{statistics.median(journaled) * 1000 - statistics.median(raw) * 1000:.1f} ms"))  # fmt: skip
        secrets = keys.open_keyslot(practice.home, user, passphrase)
        checkpoint = timed(lambda: book.checkpoint(secrets.signing_key, user, box_key=secrets.box_key), 30)
        rows.append(("checkpoint (forward key)", *summary(checkpoint),
                     f"{statistics.median(checkpoint) / statistics.median(recorded):.2f}× an append"))  # fmt: skip
        session.lock()

        while sum(1 for _ in book.entries()) < args.entries:
            for _ in range(500):
                book.append(user="bench", action="view_patient", patient_id="pat-000002")
            book.checkpoint(secrets.signing_key, user, box_key=secrets.box_key)
        count = sum(1 for _ in book.entries())
        verify = timed(lambda: journal.verify_journal(practice.home), max(1, args.runs // 2))
        request = timed(lambda: witness.head_request(practice.home), args.runs)
        rows.append((f"journal verify, {count} entries", *summary(verify), ""))
        rows.append((f"witness request (no secret), {count} entries", *summary(request), ""))

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU, load {os.getloadavg()[0]:.1f} at the end")
    print("| step | median ms | p95 ms | against the baseline |")
    print("|---|---|---|---|")
    for name, median, p95, ratio in rows:
        print(f"| {name} | {median:.1f} | {p95:.1f} | {ratio} |")


if __name__ == "__main__":
    main()

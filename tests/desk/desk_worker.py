"""One desk's session in its own process, for the concurrency test: unlock, search, open, print, lock.

    python -m tests.desk.desk_worker HOME DESK USER PASSPHRASE GO_FILE ROUNDS OUT_DIR

Waits for GO_FILE to exist (so that every desk starts at once), then runs ROUNDS rounds of: search,
open the first result (journaled), render its summary PDF, journal the print and hand it to the desk's
printer (CUPS when a queue is set up, else the PDF is saved in OUT_DIR). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from continuity import desk, pdf, printing
from continuity.errors import PrintError
from continuity.journal import Action
from continuity.session import Session

QUERIES = ("martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy", "moreau")


def main(argv: list[str]) -> int:
    home, name, user, passphrase, go_file, rounds, out_dir = argv
    listed = desk.require_listed(Path(home), name)
    desk.use_printer(listed)
    deadline = time.monotonic() + 60
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.01)
    session = Session.unlock(Path(home), user, passphrase, desk=name)
    opened, printed, saved = [], 0, 0
    try:
        for number in range(int(rounds)):
            results = session.search(QUERIES[number % len(QUERIES)], limit=5)
            if not results:
                continue
            view = session.open_patient(results[0].patient.id)
            opened.append(view.summary.patient.id)
            if number % 3 == 0:
                data = pdf.render_summary(view.summary, snapshot_created_at=session.banner().created_at,
                                          practice_name=session.banner().practice_name)  # fmt: skip
                session.record_print(Action.PRINT_SUMMARY, view.summary.patient.id)
                try:
                    printing.print_pdf(data, save_to=Path(out_dir) / f"{name}-{number}.pdf", title="Résumé")
                    printed += 1
                except PrintError:
                    saved += 1
    finally:
        session.lock(reason="test")
    print(json.dumps({"desk": name, "opened": opened, "printed": printed, "saved": saved}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

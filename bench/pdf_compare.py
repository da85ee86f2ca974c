"""Warm ordonnance render of two checkouts of Continuity, in alternating processes: a before/after in one run.

Run: `git archive OLD_COMMIT | tar -x -C /tmp/old` then
`.venv/bin/python -m bench.pdf_compare /tmp/old . [--rounds 4] [--renders 10]`.

Each round starts one process per checkout that renders the bizone ordonnance of
`tests/unit/pdf_fixtures.py` (3 warm-up renders, then the measured ones) and reports wall and CPU
times; rounds alternate the checkouts so a burst of load on a shared machine hits both. The CPU
median is the number to compare when the machine is busy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import sys, time, json
sys.path.insert(0, {root!r})
from tests.unit.pdf_fixtures import NOW, SNAPSHOT_AT, ald_summary, line, practitioner
from continuity import pdf
try:
    from continuity.prescribing import rules as build_module
except ImportError:  # before issue 9 the rules lived in continuity.prescribe
    from continuity import prescribe as build_module
plan = build_module.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
for _ in range(3):
    pdf.render_prescription(plan.prescription, snapshot_created_at=SNAPSHOT_AT)
walls, cpus = [], []
for _ in range({renders}):
    started, started_cpu = time.perf_counter(), time.process_time()
    pdf.render_prescription(plan.prescription, snapshot_created_at=SNAPSHOT_AT)
    walls.append(time.perf_counter() - started)
    cpus.append(time.process_time() - started_cpu)
print(json.dumps({{"wall": walls, "cpu": cpus}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--renders", type=int, default=10)
    args = parser.parse_args()
    roots = {"before": args.before.resolve(), "after": args.after.resolve()}
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in roots}
    for _ in range(args.rounds):
        for name, root in roots.items():
            script = SCRIPT.format(root=str(root), renders=args.renders)
            result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                                    cwd=root)
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            times[name]["wall"] += measured["wall"]
            times[name]["cpu"] += measured["cpu"]
    for name, measured in times.items():
        print(f"{name} ({roots[name]}): wall median {statistics.median(measured['wall']) * 1000:.1f} ms, "
              f"CPU median {statistics.median(measured['cpu']) * 1000:.1f} ms, {len(measured['wall'])} renders")


if __name__ == "__main__":
    main()

"""Export benchmark: what reading a real-shaped export without silent loss costs at publish time.

Run: `.venv/bin/python -m bench.exports [--patients 100000] [--rounds 3] [--baseline COMMIT] [--current COMMIT]
[--export DIR]` (``--export``: an export `publisher synth` already wrote with seed 1 for that many patients,
e.g. /tmp/continuity-bench/fhir-100000, instead of writing one again in a temporary folder).

Both codes are read with ``git archive`` into a temporary folder (``--current`` defaults to HEAD), so
the worktree may change while the benchmark runs.

Three builds of the same synthetic Bulk export (`publisher synth`, seed 1), each in a fresh process as
`publisher build` runs, interleaved round by round so that the load of a shared machine falls on all
of them alike:

- **baseline**: the code of ``--baseline`` (default: the commit before issue 10's work, read with
  ``git archive`` into a temporary folder) building the same export — the reader before flags,
  collisions, the report and the gates;
- **no report**: today's reader and build with the import report's bookkeeping switched off (a
  report whose ``kept`` / ``dropped`` / ``stripped`` do nothing) — what the report itself costs;
- **publish build**: today's ``publish.build`` as `publisher build` runs it (report, gates).

Prints medians and ratios of the wall time and of the CPU time (main process, and worker processes): on a
shared machine the CPU time is the steadier measure (a busy neighbour stretches the wall time, not the
work). Also the load average, and a Markdown block for docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TODAY = "2026-11-28"
BASELINE = "a9d9436"  # main before issue 10 (the last commit before the fhir/ package)

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
variant, export, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
start = time.perf_counter()
if variant == "baseline":
    from continuity import snapshotdb
    result = snapshotdb.build([export], out)
elif variant == "no-report":
    from continuity import fhir, snapshot_build
    from continuity.import_report import ImportReport

    class NoReport(ImportReport):
        def kept(self, resource_type, flags=(), where=None):
            pass

        def dropped(self, resource_type, reason, where=None):
            pass

        def stripped(self, where):
            pass

    result = snapshot_build.build_from_records(fhir.read_records([export], report=NoReport()), out)
else:
    from continuity import publish
    result = publish.build([export], out)
seconds = time.perf_counter() - start
own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "peak_mb": own.ru_maxrss / 1024,
                  "main_cpu": own.ru_utime + own.ru_stime, "workers_cpu": workers.ru_utime + workers.ru_stime,
                  "patients": result.counts["patient"], "treatments": result.counts["treatment"]}))
"""


def run_child(variant: str, code_root: Path, export: Path, out: Path) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(code_root))
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, variant, str(export), str(out)],
        capture_output=True,
        text=True,
        check=True,
        cwd=code_root,
        env=env,
    )
    out.unlink(missing_ok=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def baseline_code(commit: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit, "continuity"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--current", default="HEAD")
    parser.add_argument("--export", type=Path, help="a synthetic export already written (seed 1, --patients)")
    args = parser.parse_args()
    from continuity import synth

    with tempfile.TemporaryDirectory(prefix="bench-exports-") as work:
        workdir = Path(work)
        export = args.export or workdir / "fhir"
        if args.export is None:
            synth.write_practice(export, patients=args.patients, seed=1, today=dt.date.fromisoformat(TODAY))
        size_mb = sum(p.stat().st_size for p in export.iterdir()) / 1e6
        baseline_root = baseline_code(args.baseline, workdir / "baseline")
        current_root = baseline_code(args.current, workdir / "current")
        variants = {"baseline": baseline_root, "no-report": current_root, "publish build": current_root}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        loads = []
        for round_number in range(args.rounds):
            for name, code_root in variants.items():
                result = run_child(name if name != "publish build" else "publish", code_root, export,
                                   workdir / "out.db")  # fmt: skip
                runs[name].append(result)
                loads.append(os.getloadavg()[0])
                print(
                    f"round {round_number + 1} {name:14} {result['seconds']:6.1f} s"
                    f"  main CPU {result['main_cpu']:6.1f} s  workers CPU {result['workers_cpu']:6.1f} s"
                    f"  peak {result['peak_mb']:.0f} MB",
                    flush=True,
                )
    median = {name: statistics.median(r["seconds"] for r in results) for name, results in runs.items()}
    main_cpu = {name: statistics.median(r["main_cpu"] for r in results) for name, results in runs.items()}
    total_cpu = {
        name: statistics.median(r["main_cpu"] + r["workers_cpu"] for r in results) for name, results in runs.items()
    }
    peak = {name: max(r["peak_mb"] for r in results) for name, results in runs.items()}
    print()
    print(f"{args.patients} patients, export {size_mb:.0f} MB, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
          f"{min(loads):.1f}-{max(loads):.1f}")  # fmt: skip
    print()
    print("| build | wall median (s) | wall runs (s) | main CPU (s) | all CPU (s) | CPU vs baseline | main peak (MB) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, results in runs.items():
        times = ", ".join(f"{r['seconds']:.1f}" for r in results)
        ratio = total_cpu[name] / total_cpu["baseline"]
        print(f"| {name} | {median[name]:.1f} | {times} | {main_cpu[name]:.1f} | {total_cpu[name]:.1f} | {ratio:.2f} "
              f"| {peak[name]:.0f} |")  # fmt: skip
    print()
    for label, measure in (("wall", median), ("main CPU", main_cpu), ("all CPU", total_cpu)):
        share = measure["publish build"] / measure["no-report"] - 1
        print(f"report bookkeeping, {label}: {100 * share:+.1f} % (publish build against no report, same run)")
    print(f"counts: {runs['publish build'][0]['patients']:.0f} patients, {runs['publish build'][0]['treatments']:.0f} "
          f"treatments (baseline {runs['baseline'][0]['treatments']:.0f})")  # fmt: skip


if __name__ == "__main__":
    main()

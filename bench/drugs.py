"""Drug reference benchmark: publish with and without the BDPM, snapshot size, open and first use on the appliance.

Run: `.venv/bin/python -m bench.drugs --bdpm /work/shared/data/bdpm [--patients 100000] [--runs 3]`.

- publish: `publish.build` of the synthetic practice's FHIR export (the publisher-side build: parse,
  store, index, and with `--drug-reference` also read the BDPM and resolve every treatment), the two
  variants interleaved so a burst of load on the shared machine hits both; medians.
- size: the database file and its zstd level-9 compression (what the envelope carries).
- appliance: `snapshotdb.open_bytes` (every check, the drug ones included) + the first search + one
  patient summary with its resolutions, medians of fresh opens. The unlock's argon2id (a fixed cost,
  the same with or without the reference) is measured by bench.transport.

Prints a Markdown section for docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from continuity import publish, snapshotdb, synth
from continuity.drugs import bdpm


def build_once(sources: Path, out: Path, reference: Path | None) -> float:
    started = time.perf_counter()
    drugs = bdpm.read(reference) if reference is not None else None
    publish.build([sources], out, practice_id="bench", drugs=drugs)
    return time.perf_counter() - started


def open_once(data: bytes, counts: dict[str, int], patient_id: str) -> tuple[float, float, float]:
    started = time.perf_counter()
    db = snapshotdb.open_bytes(data, expected_counts=counts)
    opened = time.perf_counter()
    assert db.search("DUPONT")
    searched = time.perf_counter()
    summary = db.summary(patient_id)
    assert summary.treatments
    done = time.perf_counter()
    db.close()
    return opened - started, searched - opened, done - searched


def measure(patients: int, runs: int, reference: Path, cache: Path) -> dict[str, Any]:
    import zstandard

    sources = cache / f"fhir-{patients}"
    if not (sources / ".complete").exists():
        shutil.rmtree(sources, ignore_errors=True)
        synth.write_practice(sources, patients=patients, seed=1, today=dt.date(2026, 11, 28))
        (sources / ".complete").write_text("ok")
    started = time.perf_counter()
    read = bdpm.read(reference)
    read_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="bench-drugs-", dir=cache) as work:
        plain, with_drugs = Path(work) / "plain.db", Path(work) / "drugs.db"
        timings: dict[str, list[float]] = {"plain": [], "drugs": []}
        for _ in range(runs):
            timings["plain"].append(build_once(sources, plain, None))
            timings["drugs"].append(build_once(sources, with_drugs, reference))
        sizes = {}
        for name, path in (("plain", plain), ("drugs", with_drugs)):
            data = path.read_bytes()
            sizes[name] = (len(data), len(zstandard.ZstdCompressor(level=9).compress(data)))
        opens: dict[str, list[tuple[float, float, float]]] = {"plain": [], "drugs": []}
        for name, path in (("plain", plain), ("drugs", with_drugs)):
            db = snapshotdb.open_file(path)
            counts = db.counts()
            patient_id = db._conn.execute(
                "SELECT p.id FROM patient p JOIN treatment t ON t.patient = p.row LIMIT 1"
            ).fetchone()[0]
            resolutions = db._conn.execute("SELECT count(*) FROM drug_resolution").fetchone()[0]
            unresolved = db._conn.execute(
                "SELECT count(*) FROM treatment t JOIN drug_resolution r ON r.id = t.drug WHERE r.method = 'unresolved'"
            ).fetchone()[0]
            db.close()
            data = path.read_bytes()
            for _ in range(max(5, runs * 2)):
                opens[name].append(open_once(data, counts, patient_id))
            if name == "drugs":
                drug_counts = {k: v for k, v in counts.items() if k.startswith("drug_")}
                treatments = counts["treatment"]
    return {
        "patients": patients,
        "treatments": treatments,
        "bdpm_products": len(read.products),
        "bdpm_read_s": read_s,
        "publish_plain_s": statistics.median(timings["plain"]),
        "publish_drugs_s": statistics.median(timings["drugs"]),
        "publish_runs": runs,
        "sizes": sizes,
        "drug_counts": drug_counts,
        "resolutions": resolutions,
        "unresolved_treatments": unresolved,
        "open": {
            name: tuple(statistics.median(t[i] for t in values) for i in range(3)) for name, values in opens.items()
        },
    }


def markdown(result: dict[str, Any]) -> str:
    plain_size, plain_zstd = result["sizes"]["plain"]
    drugs_size, drugs_zstd = result["sizes"]["drugs"]
    ratio = result["publish_drugs_s"] / result["publish_plain_s"]
    open_plain, open_drugs = result["open"]["plain"], result["open"]["drugs"]
    mib = 1 << 20
    lines = [
        f"### Drug reference (BDPM, {result['bdpm_products']:,} products) at {result['patients']:,} patients",
        "",
        f"{result['treatments']:,} treatments, {result['resolutions']} distinct resolutions "
        f"({result['unresolved_treatments']} treatments unresolved); reading the BDPM folder "
        f"{result['bdpm_read_s']:.1f} s (included in the publish with the reference). Medians of "
        f"{result['publish_runs']} interleaved publishes.",
        "",
        "| | without reference | with reference | ratio |",
        "|---|---|---|---|",
        f"| publish (`publish.build`, FHIR → database) | {result['publish_plain_s']:.1f} s "
        f"| {result['publish_drugs_s']:.1f} s | **{ratio:.2f}×** (budget ≤ 1.2×) |",
        f"| database | {plain_size / mib:.1f} MiB | {drugs_size / mib:.1f} MiB "
        f"| +{(drugs_size - plain_size) / mib:.1f} MiB |",
        f"| compressed payload (zstd 9) | {plain_zstd / mib:.2f} MiB | {drugs_zstd / mib:.2f} MiB "
        f"| +{(drugs_zstd - plain_zstd) / mib:.2f} MiB |",
        f"| open + validate (`open_bytes`) | {open_plain[0] * 1000:.0f} ms | {open_drugs[0] * 1000:.0f} ms "
        f"| +{(open_drugs[0] - open_plain[0]) * 1000:.0f} ms |",
        f"| first search | {open_plain[1] * 1000:.1f} ms | {open_drugs[1] * 1000:.1f} ms | |",
        f"| one patient summary (resolutions attached) | {open_plain[2] * 1000:.1f} ms "
        f"| {open_drugs[2] * 1000:.1f} ms | |",
        "",
        "Rows of the reference: "
        + ", ".join(f"{name} {count:,}" for name, count in result["drug_counts"].items()) + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bdpm", type=Path, required=True, help="a BDPM folder (the four CIS_*.txt files)")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "continuity-bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print(markdown(measure(args.patients, args.runs, args.bdpm, args.cache)))


if __name__ == "__main__":
    main()

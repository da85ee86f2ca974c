"""Ordonnance PDF benchmark: warm render (same process) and cold process (import + first render).

Run: `.venv/bin/python -m bench.pdf [--warm 40] [--cold 7]`. Prints a Markdown table for the
"Ordonnance PDF" section of docs/performance.md.

The document is a typical emergency ordonnance: a bizone (ALD) renewal of three ongoing treatments
plus one new line, with the footer, from the synthetic builders in tests/unit/pdf_fixtures.py.
The baseline is plain weasyprint on the very same HTML (what `continuity.pdf` produces from the
template) with a shared FontConfiguration and the stylesheets parsed once — i.e. the cost of
weasyprint alone, without our template rendering, fetcher and warning capture. A second baseline
parses the stylesheets on every render, to show what caching them saves.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter for the cold measurement: fixtures are imported before the clock starts,
# then the timed part is exactly "import continuity.pdf + build + first render".
COLD_SCRIPT = """
import json, sys, time
sys.path.insert(0, {root!r})
from tests.unit.pdf_fixtures import NOW, SNAPSHOT_AT, ald_summary, line, practitioner
start, start_cpu = time.perf_counter(), time.process_time()
{body}
elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
print(json.dumps({{"seconds": elapsed, "cpu_seconds": cpu, "bytes": len(document)}}))
"""
COLD_CONTINUITY = """
from continuity import pdf
from continuity.prescribing import rules
plan = rules.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
document = pdf.render_prescription(plan.prescription, snapshot_created_at=SNAPSHOT_AT)
"""
COLD_BASELINE = """
import weasyprint
from weasyprint.text.fonts import FontConfiguration
forms = {forms!r}
html = open(forms + "/bench-baseline.html", encoding="utf-8").read()
fonts = FontConfiguration()
sheets = [weasyprint.CSS(filename=forms + "/" + name, font_config=fonts) for name in ("common.css", "prescription.css")]
document = weasyprint.HTML(string=html, base_url=forms + "/").write_pdf(stylesheets=sheets, font_config=fonts)
"""


def interleaved_ms(actions: list[Callable[[], object]], runs: int) -> list[tuple[float, float, float]]:
    """Median wall time, p90 wall time and median CPU time (ms) of each action, after three warm-ups.

    The actions take turns, so a burst of load on the machine hits all of them alike; the CPU time
    (this process only) is what the render costs when the machine is shared with other work.
    """
    for action in actions:
        for _ in range(3):
            action()
    walls: list[list[float]] = [[] for _ in actions]
    cpus: list[list[float]] = [[] for _ in actions]
    for _ in range(runs):
        for action, wall, cpu in zip(actions, walls, cpus, strict=True):
            start, start_cpu = time.perf_counter(), time.process_time()
            action()
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    results = []
    for wall, cpu in zip(walls, cpus, strict=True):
        wall.sort()
        p90 = wall[min(len(wall) - 1, int(0.9 * len(wall)))]
        results.append((statistics.median(wall), p90, statistics.median(cpu)))
    return results


def cold_runs(script: str, runs: int) -> tuple[float, float, float, float]:
    """Medians in ms: the timed part (import + first render) wall and CPU, then the whole process wall and CPU."""
    timed: list[float] = []
    timed_cpu: list[float] = []
    walls: list[float] = []
    cpus: list[float] = []
    subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, cwd=ROOT)  # page cache
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000)
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        timed.append(measured["seconds"] * 1000)
        timed_cpu.append(measured["cpu_seconds"] * 1000)
    return statistics.median(timed), statistics.median(timed_cpu), statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm", type=int, default=40, help="warm renders (median of these)")
    parser.add_argument("--cold", type=int, default=7, help="fresh processes for the cold measurement")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    import weasyprint

    from continuity import pdf
    from continuity.prescribing import printed, rules
    from tests.unit.pdf_fixtures import NOW, SNAPSHOT_AT, ald_summary, line, practitioner

    plan = rules.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
    prescription = plan.prescription
    form = printed.printed_form(prescription, snapshot_created_at=SNAPSHOT_AT)
    context = {
        "form": form, "drill": False, "drill_mention": printed.DRILL_MENTION, "duplicate": False,
        "duplicate_mention": printed.DUPLICATE_MENTION, "title": "Ordonnance",
        "snapshot_line": form.footer_line, "page_numbers": False,
    }  # fmt: skip
    html = pdf.html_for(form.template, context)
    forms = str(pdf.FORMS_DIR)
    fonts = pdf.font_config()
    names = ("common.css", "prescription.css")
    sheets = [weasyprint.CSS(filename=f"{forms}/{n}", font_config=fonts) for n in names]

    def ours() -> bytes:
        return pdf.render_prescription(prescription, snapshot_created_at=SNAPSHOT_AT)

    def plain() -> bytes:
        result: bytes = weasyprint.HTML(string=html, base_url=forms + "/").write_pdf(
            stylesheets=sheets, font_config=fonts
        )
        return result

    def plain_reparse() -> bytes:
        parsed = [weasyprint.CSS(filename=f"{forms}/{n}", font_config=fonts) for n in names]
        result: bytes = weasyprint.HTML(string=html, base_url=forms + "/").write_pdf(
            stylesheets=parsed, font_config=fonts
        )
        return result

    (warm, warm_p90, warm_cpu), (base, base_p90, base_cpu), (reparse, reparse_p90, reparse_cpu) = interleaved_ms(
        [ours, plain, plain_reparse], args.warm
    )
    pages = len(weasyprint.HTML(string=html, base_url=forms + "/").render(stylesheets=sheets, font_config=fonts).pages)

    baseline_html = Path(forms) / "bench-baseline.html"
    baseline_html.write_text(html, encoding="utf-8")
    try:
        cold, cold_timed_cpu, cold_wall, cold_cpu = cold_runs(
            COLD_SCRIPT.format(root=str(ROOT), body=COLD_CONTINUITY), args.cold
        )
        cold_base, cold_base_timed_cpu, cold_base_wall, cold_base_cpu = cold_runs(
            COLD_SCRIPT.format(root=str(ROOT), body=COLD_BASELINE.format(forms=forms)), args.cold
        )
    finally:
        baseline_html.unlink()

    size = len(ours())
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Document: bizone ordonnance, {len(prescription.lines)} lines, {pages} page(s), {size / 1024:.1f} KiB; "
          f"{os.cpu_count()} CPUs, load average {load} at the end of the run")  # fmt: skip
    print()
    print("| measure | Continuity (`continuity.pdf`) | baseline: plain weasyprint, same HTML | budget |")
    print("|---|---|---|---|")
    print(f"| warm render, wall median of {args.warm} (p90) | {warm:.1f} ms ({warm_p90:.1f}) "
          f"| {base:.1f} ms ({base_p90:.1f}) | ≤ 60 ms |")  # fmt: skip
    print(f"| warm render, CPU median | {warm_cpu:.1f} ms | {base_cpu:.1f} ms | — |")
    print(f"| baseline with the CSS re-parsed on every render (wall / CPU) | — "
          f"| {reparse:.1f} ms / {reparse_cpu:.1f} ms | — |")  # fmt: skip
    print(f"| cold: import + first render, median of {args.cold} processes, wall / CPU "
          f"| {cold:.0f} ms / {cold_timed_cpu:.0f} ms "
          f"| {cold_base:.0f} ms / {cold_base_timed_cpu:.0f} ms | ≤ 1 s |")  # fmt: skip
    print(f"| cold: whole `python -c` process, wall / CPU (interpreter start included) "
          f"| {cold_wall:.0f} ms / {cold_cpu:.0f} ms "
          f"| {cold_base_wall:.0f} ms / {cold_base_cpu:.0f} ms | — |")  # fmt: skip

if __name__ == "__main__":
    main()

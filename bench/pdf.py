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
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "bytes": len(document)}}))
"""
COLD_CONTINUITY = """
from continuity import pdf, prescribe
plan = prescribe.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
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


def interleaved_ms(actions: list[Callable[[], object]], runs: int) -> list[tuple[float, float]]:
    """Median and p90 in milliseconds of each action, after three warm-ups.

    The actions take turns, so a burst of load on the machine hits all of them alike.
    """
    for action in actions:
        for _ in range(3):
            action()
    samples: list[list[float]] = [[] for _ in actions]
    for _ in range(runs):
        for action, times in zip(actions, samples, strict=True):
            start = time.perf_counter()
            action()
            times.append((time.perf_counter() - start) * 1000)
    results = []
    for times in samples:
        times.sort()
        results.append((statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]))
    return results


def cold_runs(script: str, runs: int) -> tuple[float, float]:
    """Median (in-process timed part) and median wall time of a whole `python -c` run, in ms."""
    timed: list[float] = []
    walls: list[float] = []
    subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, cwd=ROOT)  # page cache
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
        walls.append((time.perf_counter() - start) * 1000)
        timed.append(json.loads(result.stdout.strip().splitlines()[-1])["seconds"] * 1000)
    return statistics.median(timed), statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm", type=int, default=40, help="warm renders (median of these)")
    parser.add_argument("--cold", type=int, default=7, help="fresh processes for the cold measurement")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    import weasyprint

    from continuity import pdf, prescribe
    from tests.unit.pdf_fixtures import NOW, SNAPSHOT_AT, ald_summary, line, practitioner

    plan = prescribe.build(ald_summary(), practitioner(), renew="all", new_lines=[line()], now=NOW)
    prescription = plan.prescription
    form = prescribe.printed_form(prescription, snapshot_created_at=SNAPSHOT_AT)
    context = {
        "form": form, "drill": False, "drill_mention": prescribe.DRILL_MENTION, "duplicate": False,
        "duplicate_mention": prescribe.DUPLICATE_MENTION, "title": "Ordonnance",
        "snapshot_line": form.snapshot_line, "page_numbers": False,
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

    (warm, warm_p90), (base, base_p90), (reparse, reparse_p90) = interleaved_ms(
        [ours, plain, plain_reparse], args.warm
    )
    pages = len(weasyprint.HTML(string=html, base_url=forms + "/").render(stylesheets=sheets, font_config=fonts).pages)

    baseline_html = Path(forms) / "bench-baseline.html"
    baseline_html.write_text(html, encoding="utf-8")
    try:
        cold, cold_wall = cold_runs(COLD_SCRIPT.format(root=str(ROOT), body=COLD_CONTINUITY), args.cold)
        cold_base, cold_base_wall = cold_runs(
            COLD_SCRIPT.format(root=str(ROOT), body=COLD_BASELINE.format(forms=forms)), args.cold
        )
    finally:
        baseline_html.unlink()

    size = len(ours())
    print(f"Document: bizone ordonnance, {len(prescription.lines)} lines, {pages} page(s), {size / 1024:.1f} KiB")
    print()
    print("| measure | Continuity (`continuity.pdf`) | baseline: plain weasyprint, same HTML | budget |")
    print("|---|---|---|---|")
    print(f"| warm render, median of {args.warm} (p90) | {warm:.1f} ms ({warm_p90:.1f}) "
          f"| {base:.1f} ms ({base_p90:.1f}); CSS re-parsed each time: {reparse:.1f} ms ({reparse_p90:.1f}) "
          "| ≤ 60 ms |")  # fmt: skip
    print(f"| cold: import + first render, median of {args.cold} processes | {cold:.0f} ms "
          f"| {cold_base:.0f} ms | ≤ 1 s |")  # fmt: skip
    print(f"| cold: whole `python -c` process (interpreter start included) | {cold_wall:.0f} ms "
          f"| {cold_base_wall:.0f} ms | — |")  # fmt: skip


if __name__ == "__main__":
    main()

"""Cut the BDPM subsets the tests and the demo use from a full BDPM folder (byte for byte, lines kept whole).

    .venv/bin/python tests/data/bdpm/cut.py /work/shared/data/bdpm

writes tests/data/bdpm/CIS_*.txt (the products the tests name) and continuity/drugs/demo_bdpm/CIS_*.txt
(every product the synthetic practice's drugs resolve to, plus the tests' products). Lines are copied
as they are in the source (Windows-1252, CRLF, trailing tabs, and the three malformed composition lines
of CIS 68285029), so the subsets exercise the same reader as the full files. Re-run it after changing
the selection below or the synthetic practice's drug list; SOURCES.md in each folder says where the
lines come from.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from continuity import synth  # noqa: E402
from continuity.drugs import bdpm, reference  # noqa: E402

# Products the tests name, by the start of their denomination (as the BDPM writes it).
TEST_PRODUCTS = (
    "OXYCONTIN LP 20 mg", "SKENAN L.P. 30 mg", "ACTISKENAN 10 mg", "DUROGESIC 25 microgrammes",
    "MYCOHYDRALIN 500 mg, comprimé vaginal", "MYCOHYDRALIN, crème", "SPIRIVA 18 microgrammes",
    "TIOTROPIUM VIATRIS 18", "ACICLOVIR AGEPHA 30 mg/g, pommade ophtalmique", "LEVOTHYROX 75 microgrammes",
    "LEVOTHYROX 100 microgrammes", "CLAMOXYL 1 g", "AMOXICILLINE BIOGARAN 1 g", "AUGMENTIN 1 g/125 mg",
    "AUGMENTIN 500 mg/62,5 mg", "TOPALGIC 50 mg", "CEFTRIAXONE ARROW", "ADEMPAS 1,5 mg", "ALPRAZOLAM VIATRIS",
    "XANAX 0,25 mg", "NOCTAMIDE 2 mg", "DOLIPRANE 1000 mg, comprimé", "CODOLIPRANE 500 mg/30 mg, comprimé",
    "STILNOX 10 mg", "RIVOTRIL 2 mg", "METFORMINE ARROW 1000 mg", "KARDEGIC 75 mg", "VENTOLINE 100 microgrammes",
    "INSTANYL 50 microgrammes", "DEPAKINE 500 mg", "AMOXICILLINE ARROW 500 mg, gélule",
)
MALFORMED_PRODUCTS = (68285029,)  # its CIS_COMPO lines have 12 columns: the reader must report them


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _cis(line: bytes) -> int | None:
    head = line.split(b"\t", 1)[0]
    return int(head) if re.fullmatch(rb"[0-9]{8}", head) else None


def cut(source: Path, target: Path, wanted: set[int], note: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in bdpm.FILES:
        kept = [line for line in _lines(source / name) if _cis(line) in wanted]
        (target / name).write_bytes(b"".join(kept))
    (target / "SOURCES.md").write_text(note, encoding="utf-8")


def main(source: Path) -> None:
    full = bdpm.read(source)
    by_name = {p.denomination: p.cis for p in full.products.values()}
    test_products = {cis for name, cis in by_name.items() if name.startswith(TEST_PRODUCTS)}
    test_products |= set(MALFORMED_PRODUCTS)
    resolver = reference.in_memory(full)
    demo_products = set(test_products)
    for drug in synth.DRUGS.values():
        resolution = resolver.resolve(reference.DrugQuery(drug.dci, drug.strength, drug.form, drug.label))
        demo_products |= set(resolution.products)
    origin = (
        f"Lines cut byte for byte by tests/data/bdpm/cut.py from the BDPM copy at {source} (June 2022, from the\n"
        "public repository myriapod/medicaments, commit 68e1bbfb3c0e618194c9f5e6d44e1a0f0dd42bd6, folder\n"
        "`database/`; ANSM, Licence Ouverte / Etalab). Windows-1252, CRLF, as in the source.\n"
    )
    cut(source, ROOT / "tests" / "data" / "bdpm", test_products,
        "# BDPM test subset\n\n" + origin + f"\n{len(test_products)} products: the ones the tests name.\n")
    cut(source, ROOT / "continuity" / "drugs" / "demo_bdpm", demo_products,
        "# BDPM demo subset\n\n" + origin + f"\n{len(demo_products)} products: every product the synthetic "
        "practice's drugs resolve to, and the tests' products. A real publisher passes the full, current BDPM "
        "with --drug-reference.\n")
    print(f"tests: {len(test_products)} products, demo: {len(demo_products)} products")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "shared" / "data" / "bdpm")

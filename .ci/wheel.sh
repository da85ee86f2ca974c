#!/usr/bin/env bash
# The wheel is the product: build it, install it into a fresh environment outside the checkout (no
# editable path, no forms/ beside it), and run the real chain there on synthetic data: synthesise,
# publish, pull, unlock, prescribe to PDF; then doctor's in-memory test ordonnance.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/uv build -q --wheel -o "$work/dist" .
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$work"/dist/continuity_appliance-*.whl
cd "$work"  # nothing of the checkout is reachable from here
where=$("$work/venv/bin/python" -c 'import continuity.pdf as p; print(p.FORMS_DIR)')
case "$where" in "$work"/venv/*) echo "forms loaded from the installed wheel: $where" ;;
  *) echo "FAILED: forms loaded from $where, not from the wheel" >&2; exit 1 ;; esac
"$work/venv/bin/continuity" --version
"$work/venv/bin/continuity" demo --no-tui --home "$work/home" --patients 60 > "$work/demo.log"
pdf=$(sed -n 's/^Ordonnance .* enregistrée dans : //p' "$work/demo.log")
[ -s "$pdf" ] || { cat "$work/demo.log"; echo "FAILED: no ordonnance PDF" >&2; exit 1; }
text=$(pdftotext -enc UTF-8 "$pdf" -)
grep -q "Signature" <<<"$text" || { echo "FAILED: the PDF has no signature block" >&2; exit 1; }
echo "ordonnance rendered from the wheel: $pdf ($(stat -c %s "$pdf") bytes, $(grep -c . <<<"$text") lines of text)"
"$work/venv/bin/continuity" doctor --home "$work/home" --json > "$work/doctor.json" || true
"$work/venv/bin/python" - "$work/doctor.json" <<'PY'
import json, sys
rows = {row["name_fr"]: row for row in json.load(open(sys.argv[1]))}
render = rows["Impression des ordonnances (PDF)"]
print("doctor:", render["status"], render["detail_fr"])
sys.exit(render["status"] != "ok")
PY

#!/usr/bin/env bash
# The offline install: make a wheelhouse (scripts/wheelhouse.sh), then set up a clean copy of the
# checkout from it inside a network namespace with no network at all (unshare --net), and render the
# test ordonnance with what got installed.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scripts/wheelhouse.sh "$work/wheels" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
mkdir "$work/checkout"
git archive HEAD | tar -x -C "$work/checkout"
cd "$work/checkout"
offline=(unshare --net)
"${offline[@]}" scripts/bootstrap.sh --wheelhouse "$work/wheels"
"${offline[@]}" .venv/bin/continuity --version
"${offline[@]}" .venv/bin/python -c '
from continuity import doctor
document = doctor.render_test_ordonnance()
assert document.startswith(b"%PDF-"), document[:20]
print(f"offline install renders: {len(document)} bytes of PDF")'

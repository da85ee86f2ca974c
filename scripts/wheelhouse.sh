#!/usr/bin/env bash
# Make a wheelhouse for a practice PC without internet, on a connected machine of the same kind
# (Debian 12, x86_64): the project's wheel, every locked dependency (deploy/appliance-requirements.txt,
# hashes checked) and the lock itself. Copy DIR over (USB stick), then on the PC:
#   sudo scripts/install.sh --wheelhouse DIR        (production)
#   scripts/bootstrap.sh --wheelhouse DIR           (a checkout's .venv)
# Usage: scripts/wheelhouse.sh DIR [pip download options, e.g. --python-version 3.13 --platform manylinux_2_28_x86_64]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/wheelhouse.sh DIR [pip download options]}
shift
mkdir -p "$out"
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip download -q --only-binary :all: --require-hashes \
  -r deploy/appliance-requirements.txt --dest "$out" "$@"
"$tools/venv/bin/python" -m pip wheel -q --no-deps --wheel-dir "$out" .
cp deploy/appliance-requirements.txt "$out/requirements.txt"
echo "wheelhouse ready: $out ($(ls "$out" | wc -l) files)"

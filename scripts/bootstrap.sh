#!/usr/bin/env bash
# Prepare a machine for Continuity: the system libraries weasyprint needs (and poppler for the
# tests), then a .venv with the package installed. Safe to run again: it skips what is present.
# Usage: scripts/bootstrap.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-dejavu-extra)
[ "$want_test" = 1 ] && packages+=(poppler-utils)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then as_root=(); elif command -v sudo >/dev/null; then as_root=(sudo); else
    echo "ERROR: need root or sudo to install: ${missing[*]}" >&2
    echo "Ask an administrator to run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt_log=$(mktemp)
  if ! { "${as_root[@]}" apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; \
       } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    echo "ERROR: could not install ${missing[*]} with apt-get (output above)." >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { echo "ERROR: python3 -m venv failed; install python3-venv." >&2; exit 1; }
fi
stamp=.venv/.installed-$([ "$want_test" = 1 ] && echo test || echo base)
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$want_test" = 1 ]; then .venv/bin/python -m pip install -q -e '.[test]'; else .venv/bin/python -m pip install -q -e .; fi
  touch "$stamp"
fi

#!/usr/bin/env bash
# Prepare this checkout for Continuity: check Python, install the system libraries weasyprint needs
# (plus CUPS, python3-venv, and poppler for the tests), then a .venv with the package installed.
# Safe to run again: it skips what is present and repairs a half-made .venv.
#
# Usage: scripts/bootstrap.sh              the demo: the package and its publisher extra (make demo)
#        scripts/bootstrap.sh --test       also the development group: ruff, mypy, pytest... (make test)
#        scripts/bootstrap.sh --wheelhouse DIR
#                                          offline: install the locked versions from DIR only (made by
#                                          scripts/wheelhouse.sh on a connected machine), hashes checked
# PYTHON=python3.12 scripts/bootstrap.sh   use another interpreter (3.11 or newer)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=demo wheelhouse=
while [ $# -gt 0 ]; do
  case "$1" in
    --test) mode=test ;;
    --wheelhouse) [ $# -ge 2 ] || { echo "ERROR: --wheelhouse needs a directory" >&2; exit 2; }
                  mode=wheelhouse wheelhouse=$(cd "$2" && pwd) || exit 2; shift ;;
    *) echo "usage: scripts/bootstrap.sh [--test | --wheelhouse DIR]" >&2; exit 2 ;;
  esac
  shift
done
python=${PYTHON:-python3}

# 1. Python 3.11 or newer, before anything else: an older one fails deep inside pip otherwise.
if ! command -v "$python" >/dev/null; then
  echo "ERROR: $python not found. Continuity needs Python 3.11 or newer (Debian 12, Ubuntu 24.04)." >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "ERROR: $("$python" -V 2>&1) is too old: Continuity needs Python 3.11 or newer." >&2
  echo "Use Debian 12 / Ubuntu 24.04 or newer, or point PYTHON= at a newer interpreter." >&2
  exit 1
fi

# 2. System packages: weasyprint's libraries and fonts, venv support, CUPS for printing.
packages=(python3-venv libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core fonts-dejavu-extra cups)
[ "$mode" = test ] && packages+=(poppler-utils)
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
  update=(apt-get update -qq)
  [ "$mode" = wheelhouse ] && update=(true)  # offline: install from what apt already has
  if ! { "${as_root[@]}" "${update[@]}" && \
         DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; \
       } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    echo "ERROR: could not install ${missing[*]} with apt-get (output above)." >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

# 3. The .venv: made again when a previous run left it without a working pip (python3-venv missing,
# interrupted run, interpreter upgraded underneath it).
if [ -e .venv ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "Repairing .venv (left incomplete by an earlier run)"
  rm -rf .venv
fi
if [ ! -e .venv ]; then
  if ! "$python" -m venv .venv; then
    rm -rf .venv
    echo "ERROR: '$python -m venv' failed: install the python3-venv package (apt-get install python3-venv)." >&2
    exit 1
  fi
fi

# 4. The package. pip is used as the venv made it (no self-upgrade: what runs is what Debian ships).
stamp=.venv/.installed-$mode
if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ] && [ "$mode" != wheelhouse ]; then exit 0; fi
rm -f .venv/.installed-*
pip=(.venv/bin/python -m pip install -q)
case "$mode" in
  demo) "${pip[@]}" -e '.[publisher]' ;;
  test)
    # The development group (PEP 735), read here because the pip Debian ships predates `--group`.
    mapfile -t dev < <(.venv/bin/python -c \
      'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"]["dev"], sep="\n")')
    "${pip[@]}" -e '.[publisher]' "${dev[@]}" ;;
  wheelhouse)
    shopt -s nullglob
    wheels=("$wheelhouse"/continuity_appliance-*.whl)
    [ ${#wheels[@]} = 1 ] || { echo "ERROR: expected one continuity_appliance-*.whl in $wheelhouse" >&2; exit 1; }
    # Every dependency at its locked version and hash, from the directory only; then the project itself.
    "${pip[@]}" --no-index --find-links "$wheelhouse" --require-hashes -r "$wheelhouse/requirements.txt"
    "${pip[@]}" --no-index --no-deps "${wheels[0]}" ;;
esac
touch "$stamp"

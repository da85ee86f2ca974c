#!/usr/bin/env bash
# Prepare this checkout for Continuity: check Python, install the system libraries weasyprint needs
# (plus CUPS, python3-venv, and poppler and ssh-keygen for the tests), then a .venv with the package installed.
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

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# 1. Python 3.11 or newer, before anything else.
check_python "$python"

# 2. System packages (for the tests: poppler's pdftotext, and ssh-keygen for the desks' keys).
packages=("${RUNTIME_PACKAGES[@]}")
[ "$mode" = test ] && packages+=(poppler-utils openssh-client)
if [ "$mode" = wheelhouse ]; then ensure_packages --offline "${packages[@]}"; else ensure_packages "${packages[@]}"; fi

# 3. The .venv: made again when a previous run left it without a working pip (python3-venv missing,
# interrupted run, interpreter upgraded underneath it).
if [ -e .venv ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "Repairing .venv (left incomplete by an earlier run)"
  rm -rf .venv
fi
# The distribution was called "continuity" before (an unrelated PyPI project's name): start afresh.
if compgen -G ".venv/lib/python3*/site-packages/__editable__.continuity-[0-9]*" >/dev/null; then
  echo "Re-creating .venv (the package was renamed continuity-appliance)"
  rm -rf .venv
fi
rm -rf continuity.egg-info  # its metadata, left by a build of the old name, would still show it installed
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
editable=(-e)
case "$mode" in
  demo) "${pip[@]}" "${editable[@]}" '.[publisher]' ;;
  test)
    # The development group (PEP 735), read here because the pip Debian ships predates `--group`.
    mapfile -t dev < <(.venv/bin/python -c \
      'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"]["dev"], sep="\n")')
    "${pip[@]}" "${editable[@]}" '.[publisher]' "${dev[@]}" ;;
  wheelhouse)
    shopt -s nullglob
    wheels=("$wheelhouse"/continuity_appliance-*.whl)
    [ ${#wheels[@]} = 1 ] || { echo "ERROR: expected one continuity_appliance-*.whl in $wheelhouse" >&2; exit 1; }
    # Every dependency at its locked version and hash, from the directory only; then the project itself.
    "${pip[@]}" --no-index --find-links "$wheelhouse" --require-hashes -r "$wheelhouse/requirements.txt"
    "${pip[@]}" --no-index --no-deps "${wheels[0]}" ;;
esac
touch "$stamp"

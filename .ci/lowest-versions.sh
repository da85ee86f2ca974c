#!/usr/bin/env bash
# The declared minimum of every direct dependency really works: install exactly those versions
# (uv --resolution lowest-direct) into a separate environment, check that they are the ones
# installed, and run the test suite against them. The development tools come at their usual versions.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${LOWEST_VENV:-.venv-lowest}
uv=.venv/bin/uv  # from the development group (make test installs it)
rm -rf "$venv"
"$uv" venv -q --python "${PYTHON:-python3}" "$venv"
export VIRTUAL_ENV=$PWD/$venv
"$uv" pip install -q --resolution lowest-direct -e '.[publisher]'
# The development group must not raise the project's dependencies: their versions are pinned here.
"$uv" pip freeze --exclude-editable > "$venv/lowest.txt"
"$uv" pip install -q --group dev --constraint "$venv/lowest.txt"
"$venv/bin/python" - <<'PY'
"""Fail unless every direct dependency is installed at exactly its declared minimum."""
import importlib.metadata as md
import re
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
requirements = project["dependencies"] + project["optional-dependencies"]["publisher"]
wrong = []
for requirement in requirements:
    name, minimum = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", requirement.split(";")[0].strip()).groups()
    installed = md.version(name)
    print(f"  {name:12} declared >={minimum:10} installed {installed}")
    if [int(x) for x in installed.split(".")[:len(minimum.split("."))]] != [int(x) for x in minimum.split(".")]:
        wrong.append(f"{name} {installed} is not the declared minimum {minimum}")
if wrong:
    raise SystemExit("\n".join(wrong))
PY
# The SVG screenshots are drawn by one textual + rich pair and compared byte for byte: they pin the
# versions of development, not the minimums. Every screen is still driven by the Pilot tests here.
"$venv/bin/python" -m pytest -q -p no:cacheprovider --deselect tests/tui/test_snapshots.py "$@"

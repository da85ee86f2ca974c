#!/usr/bin/env bash
# The test suite: lint, types, then pytest. Used by `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check continuity tests bench
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"

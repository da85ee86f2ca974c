#!/usr/bin/env bash
# The test suite: lint, types, import contracts, then pytest. Used by `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check continuity tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
.venv/bin/python -m pytest -q "$@"

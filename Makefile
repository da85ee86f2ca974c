# The two commands of the README. Each installs what it needs first.
.PHONY: demo test lint bench

demo:
	@scripts/bootstrap.sh
	.venv/bin/continuity demo

test:
	@scripts/bootstrap.sh --test
	scripts/test.sh

lint:
	.venv/bin/ruff check continuity tests bench
	.venv/bin/mypy

bench:
	@scripts/bootstrap.sh --test
	.venv/bin/python -m bench.run

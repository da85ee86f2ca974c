# The README's two commands (demo, test), and the production install. Each installs what it needs first.
.PHONY: demo test lint bench install lock wheelhouse dist

demo:
	@scripts/bootstrap.sh
	.venv/bin/continuity demo

test:
	@scripts/bootstrap.sh --test
	scripts/test.sh

lint:
	.venv/bin/ruff check continuity tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:
	@scripts/bootstrap.sh --test
	.venv/bin/python -m bench.run

# Production on a practice PC (docs/operations.md): service user, /opt/continuity, /etc/continuity,
# systemd units. Apart from the demo: it never touches .venv or snapshots/.
install:
	scripts/install.sh

# The appliance lock file (hashes for every wheel of each pinned version), after a dependency change.
lock:
	@scripts/bootstrap.sh --test
	.venv/bin/uv pip compile -q pyproject.toml --generate-hashes --universal --python-version 3.11 \
	    --custom-compile-command "make lock" -o deploy/appliance-requirements.txt

wheelhouse:
	scripts/wheelhouse.sh dist/wheelhouse

dist:
	@scripts/bootstrap.sh --test
	.venv/bin/uv build --wheel -o dist .

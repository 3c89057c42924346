# Kassa: `make run` for a first look on the embedded defaults, `make test` for the suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi

.PHONY: run test install sysdeps lint format migrate seed clean bench audit soak

# System tools the tests use: zbarimg decodes QR codes; Debian's chromium runs the browser tests.
SYSDEPS := zbarimg:zbar-tools chromium:chromium

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

sysdeps:
	@for pair in $(SYSDEPS); do \
	  tool=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$tool >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$pkg"; \
	    (apt-get install -y -qq $$pkg || (apt-get update -qq && apt-get install -y -qq $$pkg)) >/dev/null; \
	  else echo "please install $$pkg (it provides $$tool)"; exit 1; fi; \
	done

## Install, migrate, seed a demo catalog, then run web (:$PORT, 5000 unless set), worker and
## sandbox (:$SANDBOX_PORT, 8081). honcho gives web the port $PORT (also read from .env).
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask demo seed
	$(BIN)/honcho start -f Procfile.dev

## Install and run the whole suite (SQLite; set TEST_DATABASE_URL for PostgreSQL).
test: install sysdeps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

## Security checks: bandit over the app (accepted findings carry `# nosec BXXX` and a reason)
## and pip-audit of the runtime pins against PyPI's advisories (needs PyPI; ~30 s, so CI runs
## it after the tests, not `make test`).
audit: install
	$(BIN)/bandit -q -c pyproject.toml -r app
	$(BIN)/pip-audit -r requirements.txt --progress-spinner off

format: install
	$(BIN)/ruff format app tests bench

migrate: install
	$(BIN)/flask db upgrade

seed: install
	$(BIN)/flask demo seed

bench: install
	$(BIN)/python bench/callbacks.py

## The 10-minute soak on PostgreSQL (bench/README.md, "Soak").
soak: install
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Numpay: two commands. `make run` serves everything on one machine; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench superuser program program-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	@echo ""
	@echo "  Numpay     http://localhost:8000/        (sign up with any email; no verification needed in dev)"
	@echo "  API docs   http://localhost:8000/api/docs/"
	@echo "  Admin      http://localhost:8000/admin/  (create an operator: $(BIN)/python manage.py createsuperuser)"
	@echo "  localnet   http://127.0.0.1:8899         (Solana JSON-RPC; ledger in var/localnet)"
	@echo "  Ctrl-C stops everything. Data persists in var/."
	@echo ""
	$(BIN)/honcho -f Procfile.dev start

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

superuser: install
	$(BIN)/python manage.py createsuperuser

# The smart wallet program (programs/wallet/): needs Debian's rustc-web, rust-web-src and llvm-22
# (the build checks and says how to install them; it installs nothing). The built .so is committed.
PROGRAM_SO := programs/wallet/numpay_wallet.so

program:
	sh programs/wallet/build/build.sh $(PROGRAM_SO)

# Rebuild into a temporary directory and fail if the bytes differ from the committed program.
program-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	sh programs/wallet/build/build.sh "$$tmp/numpay_wallet.so" "$$tmp/work" && \
	if cmp -s "$$tmp/numpay_wallet.so" $(PROGRAM_SO); then \
	  echo "program-check: $(PROGRAM_SO) matches a fresh build"; \
	else \
	  echo "program-check: $(PROGRAM_SO) differs from a fresh build: run 'make program' and commit it" >&2; exit 1; \
	fi

# Quick start on a fresh machine: `make demo`, then `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# apt-get needs root; elsewhere sudo, if there is one.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint format system-deps clean bench man install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $@

# The real tools the demo and the tests run: MRtrix3 (mrcat, ...), Connectome Workbench
# (wb_command), setpriv (util-linux, for tests that act as other users), Debian's python3 (those
# users cannot reach a venv under /root), groff and man (the tests render the man pages).
SYSTEM_PACKAGES := mrcat:mrtrix3 wb_command:connectome-workbench setpriv:util-linux \
	/usr/bin/python3:python3 groff:groff-base man:man-db
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	[ -z "$$missing" ] || { \
	  echo "installing$$missing (apt-get)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    $$missing >/dev/null; }

demo: $(VENV)/.installed system-deps
	./examples/demo.sh

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff format src tests examples
	$(BIN)/ruff check --fix src tests examples

test: $(VENV)/.installed system-deps lint
	$(BIN)/python -m pytest

clean:
	rm -rf demo build dist .pytest_cache .mypy_cache .ruff_cache

# Benchmarks that print ratios against peers measured in the same run (see docs/).
bench: $(VENV)/.installed system-deps
	@command -v xxhsum >/dev/null 2>&1 || { echo "installing xxhash (apt-get), the peer of cold hashing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    --no-install-recommends xxhash >/dev/null; }
	$(BIN)/python -m bench

# The man pages in man/ are made from the click app; `make man` remakes them after a change.
man: $(VENV)/.installed
	$(BIN)/python -m imcache.cli.manpage man

# Man pages and shell completions (the package itself: `pip install .`).
PREFIX ?= /usr/local
SHARE = $(DESTDIR)$(PREFIX)/share
install:
	install -d $(SHARE)/man/man1 $(SHARE)/bash-completion/completions \
	  $(SHARE)/zsh/site-functions $(SHARE)/fish/vendor_completions.d
	install -m 644 man/*.1 $(SHARE)/man/man1/
	install -m 644 completions/imcache.bash $(SHARE)/bash-completion/completions/imcache
	install -m 644 completions/_imcache $(SHARE)/zsh/site-functions/_imcache
	install -m 644 completions/imcache.fish $(SHARE)/fish/vendor_completions.d/imcache.fish

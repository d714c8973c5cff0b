# make demo: run the one-terminal demo.  make test: lint, then the test suite.
# Both install what they need first: Poetry into .poetry/ when it is not on
# PATH, then the project's locked dependencies into .venv/.

POETRY ?= $(shell command -v poetry 2>/dev/null || echo .poetry/bin/poetry)
PYTHON ?= python3
INSTALLED := .venv/.installed

.PHONY: demo test install clean

demo: $(INSTALLED)
	$(POETRY) run python demo.py

test: $(INSTALLED)
	$(POETRY) run ruff format --check .
	$(POETRY) run ruff check .
	$(POETRY) run mypy
	$(POETRY) run pytest

install: $(INSTALLED)

.poetry/bin/poetry:
	$(PYTHON) -m venv .poetry
	.poetry/bin/pip install --quiet "poetry>=2.0,<3"

$(INSTALLED): pyproject.toml poetry.lock | $(POETRY)
	$(POETRY) install --no-root
	touch $@

clean:
	rm -rf .venv .poetry .pytest_cache .ruff_cache

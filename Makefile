# Two commands a new machine needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The stamp files make a second run with nothing changed install nothing.
RUN_STAMP := $(VENV)/.stamp-run
DEV_STAMP := $(VENV)/.stamp-dev
SYS_STAMP := $(VENV)/.stamp-system

.PHONY: run serve test test-slow lint pytest bench bench-readme bench-tui-readme clean system-deps screenshots

run: $(RUN_STAMP)
	$(VENV)/bin/heroagent $(ARGS)

serve: $(RUN_STAMP)
	$(VENV)/bin/heroagent --serve $(ARGS)

test: $(DEV_STAMP) $(SYS_STAMP) lint pytest

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

pytest: $(DEV_STAMP) $(SYS_STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-slow: $(DEV_STAMP) $(SYS_STAMP)
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

# The terminal app's screens, from the same scenarios as the snapshot tests.
screenshots: $(DEV_STAMP) $(SYS_STAMP)
	$(PY) scripts/screenshots.py $(ARGS)

bench: $(DEV_STAMP)
	$(PY) -m bench $(ARGS)

# The job bench's full plan, its tables written into README.md (run on a quiet machine).
bench-readme: $(DEV_STAMP)
	$(PY) -m bench.jobs --readme $(ARGS)

bench-tui-readme: $(DEV_STAMP)
	$(PY) -m bench.tui --readme $(ARGS)

$(PY):
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "HeroAgent needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

$(SYS_STAMP): scripts/system-deps.sh | $(PY)
	bash scripts/system-deps.sh
	touch $@

system-deps:
	bash scripts/system-deps.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist

# make run: set up .venv and start the kiosk on the built-in portrait.
# make test: set up .venv with the test and FOMM extras, lint (ruff) and run the whole suite.
# Both are idempotent: the install steps re-run only when pyproject.toml changes.

# Python 3.11 (mediapipe 0.10.21 has no wheels for newer ones): python3.11 if present, else python3.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
TORCH := torch==2.13.0

.PHONY: run test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PIP) install -e .
	touch $@

# The pinned CPU torch goes in first so that the fomm extra's torch range installs nothing more.
$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[fomm,test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(VENV)/bin/monalisa run $(ARGS)

test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q $(ARGS)

bench: $(VENV)/.installed-run
	$(VENV)/bin/monalisa bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

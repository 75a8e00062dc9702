# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench gallery clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shrink run -o shrinkage.gif

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check shrinkcli tests bench docs
	$(BIN)/ruff format --check shrinkcli tests bench docs

bench: $(STAMP)
	$(BIN)/python bench/run.py

gallery: $(STAMP)
	$(BIN)/shrink batch scenarios/*.toml --out-dir docs/gallery
	$(BIN)/python docs/gallery.py

clean:
	rm -rf $(VENV) out

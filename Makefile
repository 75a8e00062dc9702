# Two commands on a fresh machine: `make demo` and `make test`.
# Both install from requirements.lock (exact versions and hashes); `make lock` remakes it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# Every optional extra: the lock and the lowest-versions venv hold all the tests import.
EXTRAS := $(shell $(PYTHON) scripts/bounds.py extras)
LOWEST := .venv-lowest
# The tool that writes the lock, pinned; it runs in a throwaway venv.
UV := uv==0.13.9

.PHONY: demo test test-lowest install install-lowest lock lint bench gallery clean

# The stamp is older than the lock or pyproject.toml when either changed: reinstall.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python scripts/bounds.py locked
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shrink run -o shrinkage.gif

test: $(STAMP)
	$(BIN)/python -m pytest

# The whole suite at the lowest version of every direct dependency that pyproject.toml
# allows (constraints-lowest.txt), and its pictures compared with the locked venv's.
$(LOWEST)/.installed: constraints-lowest.txt pyproject.toml
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(LOWEST)/bin/pip install --quiet -c constraints-lowest.txt -e '.[$(EXTRAS)]'
	$(LOWEST)/bin/python scripts/bounds.py lowest
	touch $@

install-lowest: $(LOWEST)/.installed

test-lowest: $(LOWEST)/.installed $(STAMP)
	SHRINK_REFERENCE_PYTHON=$(abspath $(BIN))/python $(LOWEST)/bin/python -m pytest -p no:cacheprovider

lock:
	tmp=$$(mktemp -d) && $(PYTHON) -m venv $$tmp && $$tmp/bin/pip install --quiet '$(UV)' && \
	$$tmp/bin/uv pip compile pyproject.toml --all-extras --universal --fork-strategy fewest --python-version 3.11 \
		--generate-hashes --custom-compile-command 'make lock' --quiet -o $(LOCK); \
	status=$$?; rm -rf $$tmp; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check shrinkcli tests bench docs
	$(BIN)/ruff format --check shrinkcli tests bench docs

bench: $(STAMP)
	$(BIN)/python bench/run.py

# the article's six scenarios in its order: the README's headline picture
SIX := $(foreach s,baseline more_subject_variance more_slope_variance fewer_obs more_obs unbalanced,scenarios/$(s).toml)

gallery: $(STAMP)
	$(BIN)/shrink batch scenarios/*.toml --out-dir docs/gallery
	$(BIN)/shrink grid $(SIX) --title "Shrinkage in the article's six scenarios" -o docs/gallery/six.gif
	$(BIN)/python docs/gallery.py

clean:
	rm -rf $(VENV) $(LOWEST) out

# Foundation Model Lab — the commands a newcomer needs.
#   make test   set up .venv (if missing) and run the whole test suite
#   make demo   set up and run the main job
#   make lab    open JupyterLab on notebooks/
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test demo lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -c constraints.txt torch
	$(BIN)/python -m pip install -c constraints.txt -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

# The library/app tests run first: their session builds the ci-scale models once, into
# $$LABKIT_ARTIFACTS, which the notebooks executed by nbval afterwards reuse.
test: install
	$(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider

demo: install
	$(BIN)/python -m labkit demo

lab: install
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) artifacts .pytest_cache

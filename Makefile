# Foundation Model Lab — the commands a newcomer needs.
#   make test   set up .venv (if missing) and run the whole test suite (listing the 25 slowest tests)
#   make demo   set up and run the main job
#   make lab    open JupyterLab on notebooks/
#   make notebooks  re-run every chapter at LAB_SCALE=cpu, storing outputs and run times
#   make lock   refresh requirements.lock from pyproject.toml's ranges (then run make test)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every package make installs, pinned to the versions the suite passed with (written by make lock).
LOCK   := requirements.lock
# torch 2.13.0 is the CPU wheel available offline on the lab's build machines; any other
# requirement for torch would pull a multi-GB CUDA build.
TORCH  := torch==2.13.0
LOCK_VENV := .venv-lock

.PHONY: install test demo lab notebooks lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/python -m pip install -c $(LOCK) torch
	$(BIN)/python -m pip install -c $(LOCK) -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

# The library/app tests run first: their session builds the ci-scale models once, into
# $$LABKIT_ARTIFACTS, which the notebooks executed by nbval afterwards reuse.
test: install
	$(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider --durations=25

demo: install
	$(BIN)/python -m labkit demo

lab: install
	$(BIN)/jupyter lab notebooks/

# The stored outputs readers see on GitHub and Colab come from the cpu scale, with the cpu build
# present (built first when missing, about 8 minutes on 2 cores); each chapter's run time is measured and
# written to notebooks/run_times.json.
notebooks: install
	test -f artifacts/cpu/report.json || $(BIN)/python -m labkit build --scale cpu
	$(BIN)/python scripts/run_notebooks.py --scale cpu

# Install the lab into a throwaway venv from pyproject.toml's ranges (only torch pinned), and
# write what got installed into $(LOCK): `pip freeze --all` (setuptools is a dependency of
# torch), less pip and the lab itself, with local version labels dropped (torch==2.13.0, not
# 2.13.0+cpu: PyPI has no +cpu release, and pip still takes the CPU wheel where it lies on disk).
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install "$(TORCH)"
	$(LOCK_VENV)/bin/python -m pip install "$(TORCH)" -e ".[all]"
	@if $(LOCK_VENV)/bin/python -m pip freeze | grep -qiE '^(nvidia-|triton=)'; then \
	  echo "make lock: pip installed a CUDA build of torch; run it where pip takes the CPU wheel"; exit 1; fi
	{ echo "# Every package make install puts into .venv, pinned to the versions the test suite"; \
	  echo "# passed with. The Makefile installs through it (pip -c); pyproject.toml keeps ranges."; \
	  echo "# Written by make lock -- do not edit by hand. To refresh: make lock, then make test,"; \
	  echo "# and commit the new lock only when the suite passes."; \
	  echo "# Made with Python $$($(LOCK_VENV)/bin/python -c 'import platform as p; print(p.python_version(), p.system(), p.machine())')."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable \
	    | grep -viE '^(pip|labkit)==' | sed 's/^\([^=]*==[^+]*\)+.*/\1/'; } > $(LOCK).tmp
	@if grep -vE '^(#|[A-Za-z0-9._-]+==[A-Za-z0-9.!]+$$)' $(LOCK).tmp; then \
	  echo "make lock: the lines above are not name==version pins"; exit 1; fi
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)
	@echo "wrote $(LOCK) ($$(grep -c '==' $(LOCK)) pins); now run make test"

clean:
	rm -rf $(VENV) artifacts .pytest_cache

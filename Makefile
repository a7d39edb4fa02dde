# `make test` and `make demo` do all set-up on a fresh machine: a .venv made with pip, the
# project installed with its dev extras, then the job itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo setup clean

setup: $(STAMP)

# Without a working NVIDIA GPU, install the CPU wheel of torch that lies on these machines before
# the project, so the project's `torch>=2.2` is already met and no CUDA build is downloaded.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if nvidia-smi -L >/dev/null 2>&1; then \
	  echo "NVIDIA GPU found: torch comes from the index"; \
	else \
	  $(PY) -m pip install --quiet --disable-pip-version-check 'torch==2.13.0'; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/logbook demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

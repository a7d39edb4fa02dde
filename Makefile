# `make test` and `make demo` do all set-up on a fresh machine: a .venv made with pip, the
# project installed with its dev extras, then the job itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo setup clean system-deps

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

# System tools the tests use: tmux (the terminal app's smoke test) and a TeX engine (the LaTeX
# export is compiled; without TeX it is still checked with a LaTeX parser). Installed with apt-get
# when missing and this is root; otherwise the tests say what they need.
system-deps:
	@command -v tmux >/dev/null 2>&1 && command -v pdflatex >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	   tmux texlive-latex-base texlive-latex-recommended >/dev/null) ; } || \
	  echo "note: could not install tmux/pdflatex; the tests that need them will say so"

# lint-imports checks the architecture's arrows (contracts in pyproject.toml) before the tests run.
test: $(STAMP) system-deps
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/logbook demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

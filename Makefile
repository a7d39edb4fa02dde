# `make test` and `make demo` do all set-up on a fresh machine: a .venv made with pip, the
# project installed with its dev extras, then the job itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo setup clean tex

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

# A TeX engine lets the export tests compile LaTeX; without one they check it with a LaTeX parser.
tex:
	@command -v pdflatex >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	   texlive-latex-base texlive-latex-recommended >/dev/null) ; } || \
	  echo "note: no pdflatex; LaTeX exports are checked with a parser only"

test: $(STAMP) tex
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/logbook demo

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

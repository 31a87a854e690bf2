# The two-command start (README, "Quickstart"): `make train` sets up .venv and trains the default model, `make test`
# sets up the test tools and runs every suite. Each installs only when pyproject.toml or the constraints changed.
#   make train FRAMEWORK=tf ARGS="--experiment cifar100-pooling --epochs 5"
#   make test ARGS="parity_tests -x"
#   make test STACK=colab      # Google Colab's versions (constraints-colab.txt), in .venv-colab
#   make check-wheels          # every Colab-stack requirement has a wheel for Colab's Python 3.13
#   make lint                  # ruff and mypy over shared/ and both backends
#   make docs                  # the documentation site in docs/_build/html, every warning an error
#   make web                   # onnxruntime-web for the serve page's in-browser runtime (npm)

PYTHON ?= python3
FRAMEWORK ?= torch
ARGS ?=
# pinned: the development stack (constraints.txt); colab: Google Colab's runtime (constraints-colab.txt)
STACK ?= pinned
VENV_pinned := .venv
VENV_colab := .venv-colab
VENV := $(VENV_$(STACK))
CONSTRAINTS := $(if $(filter colab,$(STACK)),constraints-colab.txt,constraints.txt)
ifeq ($(VENV),)
$(error STACK=$(STACK) is not a stack; use STACK=pinned (the default) or STACK=colab)
endif

.PHONY: train test lint docs check-wheels web

train: $(VENV)/.installed
	$(VENV)/bin/python -m cnnlab_$(FRAMEWORK).train $(ARGS)

# CNNLAB_STACK tells the suite which stack it runs on (tests.support.helpers.executorch_installed)
test: $(VENV)/.installed-test web
	CNNLAB_STACK=$(STACK) $(VENV)/bin/python -m pytest $(ARGS)

# ruff (a small rule set) and mypy over shared/ and both backends, configured in pyproject.toml; zero findings
lint: $(VENV_pinned)/.installed-lint
	$(VENV_pinned)/bin/ruff check
	$(VENV_pinned)/bin/mypy

# The site (Sphinx, MyST Markdown, the PyData theme) with every warning an error: a broken link or anchor, a page
# outside the navigation, an API name autodoc cannot import. The reference pages are generated from the code.
docs: $(VENV_pinned)/.installed-docs
	rm -rf docs/_build
	$(VENV_pinned)/bin/sphinx-build -W --keep-going -n -q -b html docs docs/_build/html
	@echo "the site: docs/_build/html/index.html"

$(VENV_pinned)/.installed-docs: $(VENV_pinned)/.installed
	$(VENV_pinned)/bin/pip install -c constraints.txt -e '.[docs]'
	touch $@

$(VENV_pinned)/.installed-lint: $(VENV_pinned)/.installed
	$(VENV_pinned)/bin/pip install -c constraints.txt -e '.[lint]'
	touch $@

# The serve page's in-browser runtime, onnxruntime-web, at the version shared/serving/web/package-lock.json pins (its
# files are never committed). Without Node.js the page still works with the server runtime, and says how to get this.
WEB := shared/serving/web
web: $(WEB)/node_modules/.package-lock.json
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	@if command -v npm >/dev/null; then cd $(WEB) && npm ci --no-audit --no-fund --ignore-scripts; \
	else echo "npm not found: the serve page's browser runtime stays off until Node.js is installed and 'make web' runs"; fi

# Colab runs Python 3.13, which this machine lacks: pip resolves the whole Colab stack for it, wheels only
check-wheels:
	$(PYTHON) .ci/check_wheels.py constraints-colab.txt

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The stamps are written only after pip succeeded, so an interrupted install is redone by the next command.
$(VENV_pinned)/.installed: pyproject.toml constraints.txt | $(VENV_pinned)/bin/python
	$(VENV_pinned)/bin/pip install -c constraints.txt -e .
	touch $@

# As on Colab: first Colab's own packages; then what the notebooks' setup cell (python -m shared.tools.install) would add
# there, recorded with pip's --dry-run report (tests/test_install.py checks it changes nothing Colab has); then cnnlab.
$(VENV_colab)/.installed: pyproject.toml constraints-colab.txt | $(VENV_colab)/bin/python
	sed -n '/^# On Colab$$/,/^$$/p' constraints-colab.txt > $(VENV_colab)/colab-runtime.txt
	$(VENV_colab)/bin/pip install -r $(VENV_colab)/colab-runtime.txt
	$(VENV_colab)/bin/python -m shared.tools.install --report $(VENV_colab)/colab-install-report.json
	$(VENV_colab)/bin/pip install -c constraints-colab.txt -e .
	touch $@

# The pinned stack also gets ExecuTorch (the mobile extra), which Colab's scikit-learn rules out there
TEST_EXTRAS_pinned := test,mobile
TEST_EXTRAS_colab := test
$(VENV)/.installed-test: $(VENV)/.installed
	$(VENV)/bin/pip install -c $(CONSTRAINTS) -e '.[$(TEST_EXTRAS_$(STACK))]'
	touch $@

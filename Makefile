# The two-command start (README, "Quickstart"): `make train` sets up .venv and trains the default model, `make test`
# sets up the test tools and runs every suite. Each installs only when pyproject.toml or constraints.txt changed.
#   make train FRAMEWORK=tf ARGS="--experiment cifar100-pooling --epochs 5"
#   make test ARGS="parity_tests -x"

PYTHON ?= python3
FRAMEWORK ?= torch
ARGS ?=
VENV := .venv

.PHONY: train test

train: $(VENV)/.installed
	$(VENV)/bin/python -m cnnlab_$(FRAMEWORK).train $(ARGS)

test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest $(ARGS)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The stamp is written only after pip succeeded, so an interrupted install is redone by the next command.
$(VENV)/.installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(VENV)/bin/pip install -c constraints.txt -e '.[test]'
	touch $@

# genemi developer entry points. `make test` and `make demo` create/reuse .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
STAMP   = $(VENV)/.installed

.PHONY: install test demo bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU-only torch wheel breaks torchvision (see docs/install.md)
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest tests

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m genemi.demo --output-dir demo_output

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/train_step.py

clean:
	rm -rf demo_output .pytest_cache

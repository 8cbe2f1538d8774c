# lmseg: set-up, tests and the main jobs. Every target sets up what it needs first.
#   make setup                         environments + the default LLM (idempotent, offline-safe)
#   make test                          the whole test suite
#   make prompts DATASET=ade847 ARGS="--overwrite"
#   make bench-prompts ARGS="--sequential-limit 64"

PYTHON ?= python3
LLM_VENV := .venv-llm
LLM_PY := $(LLM_VENV)/bin/python
LLM_STAMP := $(LLM_VENV)/.lmseg-installed
MODEL_STAMP := cache/models/SmolLM2-135M-Instruct/.lmseg-prepared
DATASET ?= ade847
ARGS ?=

# Hide the local package-index fallbacks' noise; keep real pip errors.
export PIP_NO_WARN_SCRIPT_LOCATION := 1

.PHONY: setup test prompts bench-prompts clean-envs

setup: $(LLM_STAMP) $(MODEL_STAMP)

$(LLM_STAMP): pyproject.toml requirements/llm-cpu.txt requirements/llm-gpu.txt scripts/setup_llm_env.sh
	PYTHON=$(PYTHON) scripts/setup_llm_env.sh $(LLM_VENV)
	touch $@

$(MODEL_STAMP): | $(LLM_STAMP)
	$(LLM_PY) -m pipelines.prepare_llm

test: setup
	$(LLM_PY) -m pytest tests

prompts: setup
	$(LLM_PY) -m pipelines.gen_prompts --dataset $(DATASET) $(ARGS)

bench-prompts: setup
	$(LLM_PY) -m benchmarks.bench_gen_prompts $(ARGS)

clean-envs:
	rm -rf $(LLM_VENV)

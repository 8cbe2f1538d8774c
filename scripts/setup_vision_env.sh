#!/usr/bin/env bash
# Create (or update) the vision environment: torch + torchvision, open_clip, segment-anything,
# sam2, sam3, timm, the lmseg package (editable) and test tools.
#
# The same pins serve CPU-only and GPU machines: the registry's torch is a CUDA build that also
# runs on a CPU, and it is the only torch with a matching torchvision there (README.md, "Two commands").
# Idempotent: an existing environment is reused and only what is missing is installed; nothing
# but the package registry is needed (no model weights are downloaded here).
#
# Usage: scripts/setup_vision_env.sh VENV_DIR
set -euo pipefail
venv=${1:?usage: setup_vision_env.sh VENV_DIR}
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
source "$here/scripts/install.sh"
echo "setup: installing the vision stack into $venv (first time: several GB, a few minutes)"
# With the web page's requirements (pipelines.demo and its browser test) in one resolution, so
# pip refuses rather than moves any exact pin of either file. The sdists among them (sam2,
# antlr4) are built in this environment (--no-build-isolation: an isolated build would fetch a
# second torch for sam2), which needs setuptools; sam2 without its optional CUDA extension.
# (a setuptools with its own bdist_wheel, 70.1 or later: a fresh Python 3.11 venv has 65.5)
"$venv/bin/python" -c "import setuptools, sys; sys.exit(tuple(map(int, setuptools.__version__.split('.')[:2])) < (70, 1))" \
    2>/dev/null || run_pip "$venv" install "setuptools>=70.1"
SAM2_BUILD_CUDA=0 run_pip "$venv" install --no-build-isolation \
    -r "$here/requirements/vision.txt" -r "$here/requirements/web.txt"
# sam3 without its declared dependencies (requirements/vision-nodeps.txt says why).
run_pip "$venv" install --no-deps -r "$here/requirements/vision-nodeps.txt"
# The project itself, editable. Its base dependencies (jinja2, openai, pyarrow, tqdm) are small
# and let stage-2 code read the stage-1 attribute tables. setuptools comes with torch, so the
# build needs no isolated environment (and no network).
run_pip "$venv" install --no-build-isolation -e "$here"
"$venv/bin/python" -W ignore - <<'PY'  # sam2/sam3 warn about CUDA autocast and torch.jit at import
import numpy, open_clip, sam2, sam3, segment_anything, timm, torch, torchvision  # noqa: F401  (fails loudly if broken)
import lmseg.backbones  # noqa: F401
print(f"setup: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"open_clip {open_clip.__version__}, timm {timm.__version__}, numpy {numpy.__version__}, sam3 {sam3.__version__}")
PY
echo "setup: $venv ready"

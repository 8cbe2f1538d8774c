"""Trident speed and memory: images/s and peak memory with the real architectures, random weights.

The backbones are the published ones (OpenAI-style CLIP ViT-B/16 with QuickGELU, DINO ViT-B/16,
SAM ViT-B, or ``--clip ViT-H-14``) with random weights: speed does not depend on weight values.
Each image is segmented into a vocabulary (default ade150, 150 classes; 5 in small mode; text
embeddings are computed once, before timing). Per image: SAM's encoder runs once (plus the last block's
attention), CLIP/DINO windows run in batches of ``--window-batch``; on CUDA the encoders run in
fp16 (as the public runs).

Reported per setting: images/s, seconds per image split into SAM (encoder + affinity) and
CLIP/DINO windows (+ splice), the remainder (aggregation, projection, upsampling, softmax,
refinement), the SAM share as the in-run baseline, and peak memory: the process's peak RSS on
the CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

    python -m benchmarks.bench_trident --mode small            # CPU: one 336x448 image, short side 336
    python -m benchmarks.bench_trident --mode published        # short sides 336/448/576/688 (GPU)
    python -m benchmarks.bench_trident --mode published --sizes 448 --images 20 --refine

Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import time
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from lmseg.inference.tiler import window_grid
from lmseg.models.trident.config import RefinementConfig, TridentConfig
from lmseg.models.trident.factory import assemble
from lmseg.models.trident.predictor import TridentPredictor
from lmseg.models.trident.preprocess import rescale_size
from lmseg.vocab import Vocabulary, get_vocabulary


def build(clip_name: str, device: torch.device, half: bool, config: TridentConfig):
    """A TridentPredictor on random weights with the real architectures."""
    from lmseg.backbones.clip_factory import create_dense_clip
    from lmseg.backbones.dino import create_dense_dino
    from lmseg.backbones.sam import create_sam_encoder

    torch.manual_seed(0)
    quick = clip_name == "ViT-B-16"
    clip = create_dense_clip(clip_name, pretrained=None, quick_gelu=quick, interpolation_offset=0.1)
    dino = create_dense_dino(weights=None, interpolation_offset=0.1)
    sam = create_sam_encoder("vit_b", weights=None)
    return TridentPredictor(assemble(clip, dino, sam, config, device, half), device=device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class StageTimer:
    """Wraps the model's two heavy stages to time them (synchronising CUDA)."""

    def __init__(self, model, device: torch.device) -> None:
        self.times = {"sam": 0.0, "windows": 0.0}
        self.device = device
        for stage, attr in (("sam", "sam_affinity"), ("windows", "spliced_canvas")):
            original = getattr(model, attr)
            setattr(model, attr, self._timed(stage, original))

    def _timed(self, stage, fn):
        def run(*args, **kwargs):
            _sync(self.device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync(self.device)
            self.times[stage] += time.perf_counter() - start
            return out

        return run

    def reset(self) -> None:
        self.times = dict.fromkeys(self.times, 0.0)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


@contextmanager
def cuda_peak(device: torch.device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    yield


def measure(segmenter, image: np.ndarray, vocab, images: int, device: torch.device) -> dict:
    timer = StageTimer(segmenter.model, device)
    segmenter.predict(image, vocab)  # warm-up (also builds the text cache)
    timer.reset()
    with cuda_peak(device):
        _sync(device)
        start = time.perf_counter()
        for _ in range(images):
            segmenter.predict(image, vocab)
        _sync(device)
        total = time.perf_counter() - start
    per = total / images
    sam, win = timer.times["sam"] / images, timer.times["windows"] / images
    return {
        "img/s": images / total,
        "s/img": per,
        "sam s": sam,
        "win s": win,
        "rest s": per - sam - win,
        "sam share": sam / per,
        "peak GiB": (torch.cuda.max_memory_allocated(device) / 2**30) if device.type == "cuda" else peak_rss_gib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("small", "published"), default="small")
    parser.add_argument("--sizes", type=int, nargs="*", help="short sides (published: 336 448 576 688)")
    parser.add_argument("--images", type=int, default=None, help="timed images per setting")
    parser.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help="synthetic input image (default: 336 448 small, 480 640 published)")
    parser.add_argument("--clip", default="ViT-B-16", choices=("ViT-B-16", "ViT-H-14"))
    parser.add_argument("--vocabulary", default="ade150")
    parser.add_argument("--classes", type=int, default=None,
                        help="use only the first N classes (default: 5 in small mode, all otherwise); text is "
                             "encoded once before timing, but 80 templates x 150 classes take long on a CPU")
    parser.add_argument("--window-batch", type=int, default=16)
    parser.add_argument("--refine", action="store_true", help="enable SAM refinement (published thresholds)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    half = device.type == "cuda"
    small = args.mode == "small"
    sizes = args.sizes or ([336] if small else [336, 448, 576, 688])
    images = args.images or (1 if small else 10)
    height, width = args.image_size or ((336, 448) if small else (480, 640))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    vocab = get_vocabulary(args.vocabulary)
    keep = args.classes or (5 if small else None)
    if keep:
        vocab = Vocabulary(f"{vocab.name}-first{keep}", vocab.classes[:keep])

    base = TridentConfig(window_batch=args.window_batch,
                         refinement=RefinementConfig(enabled=args.refine, iou_thresh=0.0 if args.refine else 0.8))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"device={device} ({where})"
          f" fp16={half} clip={args.clip} dino=ViT-B/16 sam=vit_b random weights; image {height}x{width};"
          f" vocabulary {args.vocabulary} ({len(vocab)} classes); refine={args.refine}; {images} timed image(s)")
    segmenter = build(args.clip, device, half, base)
    header = ("short", "windows", "img/s", "s/img", "sam s", "win s", "rest s", "sam share", "peak GiB")
    print(" | ".join(f"{h:>9}" for h in header))
    for short in sizes:
        cfg = replace(base, short_side=short, stride=112 if short == 336 and not small else base.stride)
        segmenter.model.config = cfg
        rh, rw = rescale_size(height, width, short, cfg.max_long_side)
        fit = (max(-(-rh // 16) * 16, cfg.window), max(-(-rw // 16) * 16, cfg.window))
        n_windows = len(window_grid(*fit, cfg.window, cfg.stride))
        row = measure(segmenter, image, vocab, images, device)
        cells = [f"{short:>9}", f"{n_windows:>9}"] + [f"{row[k]:>9.3f}" for k in header[2:]]
        print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    main()

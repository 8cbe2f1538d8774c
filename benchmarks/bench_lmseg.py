"""LMSeg inference speed and peak memory (real ViT-B/16 + SAM ViT-B architectures, random weights).

    .venv/bin/python -m benchmarks.bench_lmseg                      # CPU, small-input mode
    python -m benchmarks.bench_lmseg --device cuda                  # GPU: 640 short side, full protocol

For each class count (150 and 847 by default) it runs the predictor's full protocol on random
images (short-side resize, sliding windows + global view, upsampling to the image size) and
prints images/s and peak memory, plus the time of the class-dependent part alone (the LMSeg
head on fixed backbone features), which shows how the cost grows with N.

* GPU mode: 640 x 853 images (short side 640: 6 windows of 384 + 1 global view), bfloat16
  autocast, peak memory from ``torch.cuda.max_memory_allocated``.
* CPU small-input mode (``--small``, the default on CPU): one 384 x 384 image and no global
  view (one model input per image), because SAM's encoder alone takes tens of seconds per
  1024-pixel canvas on a 2-core CPU. Peak memory is the process's peak RSS (model included).

Text encoding is excluded (it happens once per vocabulary and is cached on disk): the class
embeddings are random. Speed does not depend on weight values.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def head_gflops(config_name: str, num_classes: int, *, clip_dim: int, clip_width: int, grid: int) -> float:
    """GFLOPs (matmuls, convolutions, attention) of the LMSeg head for one model input, counted on
    the meta device (no computation): a load-independent measure of the class-dependent cost."""
    from torch.utils.flop_counter import FlopCounterMode

    from lmseg.models.lmseg import LMSegHead, get_config

    cfg = get_config(config_name)
    with torch.device("meta"):
        head = LMSegHead(cfg, clip_dim=clip_dim, clip_width=clip_width, sam_dim=256)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            head(torch.randn(1, clip_dim, grid, grid), torch.randn(1, 256, 64, 64),
                 [torch.randn(1, clip_width, grid, grid)] * len(cfg.decoder_layers),
                 torch.randn(num_classes, cfg.prompt_channels, clip_dim))
    return counter.get_total_flops() / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", default="lmseg_vitb16")
    parser.add_argument("--classes", type=int, nargs="+", default=[150, 847])
    parser.add_argument("--iters", type=int, default=None, help="timed images per class count")
    parser.add_argument("--small", action=argparse.BooleanOptionalAction, default=None,
                        help="CPU small-input mode (default: on for CPU, off for CUDA)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    from lmseg.models.lmseg import InferenceConfig, LMSegPredictor, build_model, get_config
    from lmseg.text.embedder import ClassEmbeddings

    device = torch.device(args.device)
    small = args.small if args.small is not None else device.type == "cpu"
    iters = args.iters or (2 if small else 20)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = get_config(args.config)
    torch.manual_seed(0)
    model = build_model(cfg, device=device)
    s = cfg.input_size
    if small:
        inference, size = InferenceConfig(short_side=s, global_view=False), (s, s)
    else:
        inference, size = InferenceConfig(short_side=640), (640, 853)
    pred = LMSegPredictor(model, inference=inference, cache=None)
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    h, w = pred.resized_size(*size)
    from lmseg.inference.tiler import window_starts

    stride = max(1, int(s * (1 - inference.overlap)))
    views = len(window_starts(h, s, stride)) * len(window_starts(w, s, stride)) + int(inference.global_view)
    print(f"# {args.config} on {device} ({torch.get_num_threads()} threads), image {size[1]}x{size[0]}, "
          f"{views} model input(s) of {s}x{s} per image, {'small-input mode' if small else 'full protocol'}")
    print(f"# parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M in all, "
          f"head {sum(p.numel() for p in model.head.parameters()) / 1e6:.2f}M, "
          f"trainable {sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6:.2f}M")
    print("| classes | images/s | s/image | peak memory (MiB) | head only (s/input) | head GFLOP/input |")
    print("|---:|---:|---:|---:|---:|---:|")
    grid = s // model.clip.patch_size[0]
    for n in args.classes:
        text = torch.randn(n, cfg.prompt_channels, model.clip.embed_dim)
        text = torch.nn.functional.normalize(text, dim=-1).to(device)
        vocab = [f"class {i}" for i in range(n)]
        fixed = ClassEmbeddings(text, torch.arange(n, device=device), tuple(vocab), n, "random", "none")
        pred.text_embeddings = lambda _v, _t=fixed: _t  # type: ignore[method-assign]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        pred.logits(image, vocab)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            pred.scores_tensor(image, vocab)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        per_image = (time.perf_counter() - t0) / iters
        # the class-dependent part alone, on fixed features
        dense = torch.randn(1, model.clip.embed_dim, grid, grid, device=device)
        sam = torch.randn(1, 256, 64, 64, device=device)
        guide = [torch.randn(1, model.clip.width, grid, grid, device=device)] * len(cfg.decoder_layers)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.no_grad()
        with torch.no_grad(), ctx:
            model.head(dense, sam, guide, text)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t1 = time.perf_counter()
            for _ in range(iters):
                model.head(dense, sam, guide, text)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        head = (time.perf_counter() - t1) / iters
        gflops = head_gflops(args.config, n, clip_dim=model.clip.embed_dim, clip_width=model.clip.width,
                             grid=grid)
        print(f"| {n} | {1 / per_image:.3f} | {per_image:.2f} | {_peak_mb(device):.0f} | {head:.3f} | {gflops:.0f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

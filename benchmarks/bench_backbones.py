"""The 2026 backbones against today's, per image: time and peak memory at the same input size, in one run.

Two groups, each with today's backbone as the in-run baseline (ratios are within this run):

* **spatial** (Trident's proxy-attention backbone): DINO ViT-B/16 (today) vs DINOv2 ViT-B/14,
  DINOv3 ViT-B/16 and C-RADIOv3-B, each giving its dense patch map of an ``S x S`` image;
* **SAM side** (LMSeg's fusion, Trident's refinement): SAM ViT-B's image encoder (today) vs SAM
  2.1 Hiera-T/S/B+/L (``image_embed`` and the fine levels) and SAM 3's image encoder
  (``vision_features``), each on an ``S x S`` input (each encoder built for that size).

The real architectures with random weights (speed and memory do not depend on weight values).
Every backbone runs in its own child process, so that its peak memory is its own: on the CPU
the child's peak resident memory minus the same child's before building the model (model +
activations), on CUDA ``torch.cuda.max_memory_allocated``. Time: the median of ``--repeats``
forward passes after one warm-up, batch 1, ``torch.inference_mode``; on the CPU also the
process's CPU time per image (user + system), which a machine shared with other jobs inflates
far less than the wall time, and the ratios use it there.

    python -m benchmarks.bench_backbones                        # CPU: S = 448, 1 thread
    python -m benchmarks.bench_backbones --sizes 448,896 --device cuda --threads 0
    python -m benchmarks.bench_backbones --only sam3,sam2.1_hiera_large --sizes 1008

``--sam3-classes 150,847`` adds the sam3 method's seconds per image for those vocabulary sizes
(``--sam3-model sam3`` needs a GPU; ``sam3_tiny`` shows the scaling on a CPU). Sizes must be
multiples of 32 and 14 for every group to run (448, 896); a backbone that cannot take a size
is listed as skipped. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time

SPATIAL = ("dino_vitb16", "dinov2_vitb14", "dinov3_vitb16", "radio_v3_b")
SAM_SIDE = ("sam_vit_b", "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large",
            "sam3")
BASELINE = {"spatial": "dino_vitb16", "SAM side": "sam_vit_b"}
STEP = {"dino_vitb16": 16, "dinov2_vitb14": 14, "dinov3_vitb16": 16, "radio_v3_b": 16, "sam_vit_b": 16, "sam3": 14,
        **{n: 32 for n in SAM_SIDE if n.startswith("sam2")}}


_LIBRARIES = {
    "dino": ("lmseg.backbones.dino",), "dinov2": ("lmseg.backbones.dense_vit",),
    "dinov3": ("lmseg.backbones.dense_vit",), "radio": ("lmseg.backbones.dense_vit",), "sam": ("segment_anything",),
    "sam2": ("lmseg.backbones.sam2", "sam2.build_sam", "sam2.sam2_image_predictor"),
    "sam3": ("lmseg.backbones.sam3", "sam3.model.vl_combiner", "sam3.model.sam3_image_processor"),
}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _build(name: str, size: int):
    """(module, forward) for one backbone at ``size``; random weights."""
    import torch

    torch.manual_seed(0)
    if name == "dino_vitb16":
        from lmseg.backbones.dino import create_dense_dino

        model = create_dense_dino(weights=None, interpolation_offset=0.1)
        return model, model
    if name in SPATIAL:
        from lmseg.backbones.dense_vit import create_dense_vit

        model = create_dense_vit(name, weights=None)
        return model, model
    if name == "sam_vit_b":
        from functools import partial

        from segment_anything.modeling import ImageEncoderViT

        # sam_model_registry's ViT-B image encoder, built for this canvas size
        encoder = ImageEncoderViT(depth=12, embed_dim=768, img_size=size, mlp_ratio=4,
                                  norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=12, patch_size=16,
                                  qkv_bias=True, use_rel_pos=True, global_attn_indexes=(2, 5, 8, 11), window_size=14,
                                  out_chans=256)
        return encoder.eval(), encoder
    if name.startswith("sam2"):
        from lmseg.backbones.sam2 import create_sam2_encoder

        encoder = create_sam2_encoder(name, weights=None, image_size=size)
        return encoder, encoder.encode
    if name == "sam3":
        from lmseg.backbones.sam3 import create_sam3_image_encoder

        encoder = create_sam3_image_encoder("sam3", weights=None, image_size=size)
        return encoder, lambda x: encoder.backbone.forward_image(x)
    raise ValueError(name)


def _child(name: str, size: int, device: str, repeats: int, threads: int, queue) -> None:
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        import importlib

        for module_name in _LIBRARIES.get(name.split("_")[0].split(".")[0], ()):  # imports are not the model's memory
            importlib.import_module(module_name)
        before = _peak_mib()
        module, forward = _build(name, size)
        params = sum(p.numel() for p in module.parameters())
        module.to(device)
        x = torch.randn(1, 3, size, size, device=device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, cpu_times = [], []
        with torch.inference_mode():
            for i in range(repeats + 1):
                if device == "cuda":
                    torch.cuda.synchronize()
                start, cpu_start = time.perf_counter(), time.process_time()
                forward(x)
                if device == "cuda":
                    torch.cuda.synchronize()
                if i:
                    times.append(time.perf_counter() - start)
                    cpu_times.append(time.process_time() - cpu_start)
        memory = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else _peak_mib() - before
        queue.put({"seconds": statistics.median(times), "cpu_seconds": statistics.median(cpu_times),
                   "memory_mib": memory, "params_m": params / 1e6})
    except Exception as exc:  # reported in the table, the other backbones go on
        queue.put({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"})


def measure(name: str, size: int, device: str, repeats: int, threads: int) -> dict:
    """One backbone in a fresh process (its own peak memory)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(name, size, device, repeats, threads, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def _sam3_method(model: str, classes: list[int], device: str, threads: int) -> list[tuple[int, int, float, float]]:
    """(classes, prompts, wall and CPU seconds per image) of the sam3 method on one 480 x 640 image (random weights)."""
    import numpy as np
    import torch

    from lmseg.backbones.sam3 import create_sam3
    from lmseg.models.sam3 import SAM3_MODELS, Sam3Config, Sam3Predictor, Sam3Semantic
    from lmseg.vocab import get_vocabulary

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    spec = SAM3_MODELS[model]
    detector = create_sam3(spec.model, weights=None, image_size=spec.image_size).to(device)
    seg = Sam3Predictor(Sam3Semantic(detector, Sam3Config()), device=device, variant=model)
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rows = []
    for count in classes:
        vocab = get_vocabulary("ade847" if count > 150 else "ade150")
        names = [c.name for c in vocab.classes][:count]
        _, prompts = seg.prompts(names)  # text encoded once, before timing
        start, cpu_start = time.perf_counter(), time.process_time()
        seg.predict(image, names)
        if device == "cuda":
            torch.cuda.synchronize()
        rows.append((count, len(prompts.texts), time.perf_counter() - start, time.process_time() - cpu_start))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="448", help="comma list of input sides S (multiples of 32 and 14)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="comma list of backbones (default: all)")
    parser.add_argument("--sam3-classes", default="", help="comma list of vocabulary sizes for the sam3 method")
    parser.add_argument("--sam3-model", default="sam3_tiny", help="sam3 variant for --sam3-classes")
    args = parser.parse_args(argv)
    only = set(filter(None, args.only.split(",")))
    print(f"device {args.device}, threads {args.threads or 'default'}, median of {args.repeats}, batch 1, random "
          "weights; memory: peak RSS of the model's process minus before the build (CPU), or max allocated (CUDA)")
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"\nS = {size}")
        print(f"{'group':<9} {'backbone':<24} {'params':>8} {'wall s':>8} {'CPU s':>8} {'x today':>8} {'MiB':>8} "
              f"{'x today':>8}")
        for group, names in (("spatial", SPATIAL), ("SAM side", SAM_SIDE)):
            base = None
            for name in names:
                if only and name not in only and name != BASELINE[group]:
                    continue
                if size % STEP[name]:
                    print(f"{group:<9} {name:<24} skipped: {size} is not a multiple of {STEP[name]}")
                    continue
                r = measure(name, size, args.device, args.repeats, args.threads)
                if "error" in r:
                    print(f"{group:<9} {name:<24} failed: {r['error']}")
                    continue
                if name == BASELINE[group]:
                    base = r
                key = "seconds" if args.device == "cuda" else "cpu_seconds"
                ratio_t = f"{r[key] / base[key]:.2f}" if base else "-"
                ratio_m = f"{r['memory_mib'] / base['memory_mib']:.2f}" if base and base["memory_mib"] > 0 else "-"
                print(f"{group:<9} {name:<24} {r['params_m']:>7.1f}M {r['seconds']:>8.3f} {r['cpu_seconds']:>8.3f} "
                      f"{ratio_t:>8} {r['memory_mib']:>8.0f} {ratio_m:>8}", flush=True)
    if args.sam3_classes:
        print(f"\nsam3 method ({args.sam3_model}), one 480 x 640 image, text encoded before timing")
        print(f"{'classes':>8} {'prompts':>8} {'wall s':>8} {'CPU s':>8}")
        counts = [int(c) for c in args.sam3_classes.split(",")]
        for count, prompts, seconds, cpu in _sam3_method(args.sam3_model, counts, args.device, args.threads):
            print(f"{count:>8} {prompts:>8} {seconds:>8.2f} {cpu:>8.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

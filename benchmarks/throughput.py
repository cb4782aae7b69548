"""Throughput: steps/s and frames/s of a zoom (frame after frame) and a clip (independent frames, batched).

Eager fp32 (contiguous, batch norms unfolded, one frame per pass: the engine before the speed work)
against the fast path (folded batch norms, channels-last, bf16 where ``fastpath`` picks it, clip
frames batched), for googlenet->inception4c (random weights: speed only) and the embedded model.
On CUDA at 512 px, 720p and 1080p, with peak memory; on the CPU at small sizes so it keeps working.
Prints ``speedup=X`` (fast path over eager fp32, googlenet zoom at the largest size) and on CUDA
``fps_1080p=Y`` (googlenet->inception4c, 10 steps per frame, fast path).
"""

from __future__ import annotations

import argparse
import resource
import time

from _common import machine

import torch

from dreamreel.engine import Dreamer, DreamSettings, Octave, pick_device, resize
from dreamreel.models import create_model
from dreamreel.engine.objectives import layer

MODELS = [("googlenet", "inception4c", "random"), ("efficientnet_lite0", "block10", "default")]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def zoom_frames(dreamer, size, frames, steps, batch=1):
    """``frames`` frames of ``steps`` steps: a zoom (batch 1: each frame from the last) or a clip (batch > 1)."""
    w, h = size
    settings = DreamSettings((Octave(size, steps, (0.015, 0.008), (0.5, 0.25)),), jitter=16)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, h, w, generator=g).to(dreamer.device)
    done = 0
    while done < frames:
        out = dreamer.dream(x, settings, generator=g, evaluate_end=False).image
        # the zoom's warp: crop the centre 1/1.04 and grow it back (the clip's next frames are new images)
        ch, cw = int(h / 1.04), int(w / 1.04)
        x = resize(out[..., (h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw], size)
        done += batch
    sync(dreamer.device)
    return done


def measure(model_name, layer_name, weights, size, frames, steps, device, fast, batch):
    spec, model = create_model(model_name, weights, device, fold=fast)
    d = Dreamer(model, layer(layer_name).bind(spec), device, precision="auto" if fast else "fp32",
                channels_last=None if fast else False)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    zoom_frames(d, size, batch, 1, batch)  # warm-up
    t0 = time.perf_counter()
    n = zoom_frames(d, size, frames, steps, batch)
    dt = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return n * steps / dt, n / dt, peak / 2**20, d.path.describe()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    device = pick_device(a.device)
    cuda = device.type == "cuda"
    sizes = {"512px": (512, 288), "720p": (1280, 720), "1080p": (1920, 1080)} if cuda else {"160px": (160, 90), "256px": (256, 144)}
    frames = a.frames or (30 if cuda else 2)
    batch = 4 if cuda else 2
    print(f"machine: {machine()}; device {device}" + (f" ({torch.cuda.get_device_name(device)})" if cuda else ""))
    results = {}
    for model_name, layer_name, weights in MODELS:
        for label, size in sizes.items():
            for job, b in (("zoom", 1), ("clip", batch)):
                row = {}
                for fast in (False, True):
                    sps, fps, mem, how = measure(model_name, layer_name, weights, size, frames, a.steps, device, fast, b)
                    row[fast] = fps
                    print(f"{model_name}->{layer_name} {label} {job:4s} {'fast ' if fast else 'eager'} ({how}, batch {b}): "
                          f"{sps:7.1f} steps/s {fps:6.2f} frames/s, peak {mem:.0f} MiB")
                results[(model_name, label, job)] = row
    last = list(sizes)[-1]
    zoom = results[("googlenet", last, "zoom")]
    print(f"speedup={zoom[True] / zoom[False]:.2f}")
    if cuda:
        print(f"fps_1080p={results[('googlenet', '1080p', 'zoom')][True]:.2f}")


if __name__ == "__main__":
    main()

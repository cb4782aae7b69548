"""Throughput: frames/s of a zoom at 3 and 10 steps per frame and of a clip, eager fp32 against the fast path.

Eager fp32 is the engine before the speed work (contiguous, batch norms unfolded, not compiled, one frame
per pass); the fast path is what ``fastpath.choose`` picks on the device (folded batch norms, channels-last,
bf16 on CUDA and AMX CPUs, compiled where ``--compile`` says: auto compiles on CUDA only), clip frames
batched. Models: googlenet->inception4c with RANDOM weights (speed only: the dream is noise) and the
embedded efficientnet_lite0->block10. Sizes: 512 px, 720p and 1080p (``--quick``: 128 and 256 px, for the
CPU). Then the clip pipeline (pipeline.py) on realshort.mp4: each stage alone (decode, flow and the
smoothed source, dream, encode) against the overlapped render, medians of 3 alternating rounds, ``overlap=``
(its frames/s over the slowest stage's alone).

Prints ``speedup=X`` (fast path over eager fp32, googlenet zoom, 10 steps, the largest size), on CUDA
``fps_1080p=Y`` (googlenet->inception4c, 10 steps per frame, fast path) and ``overlap=Z``.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from _common import DATA, machine

import torch

from dreamreel.engine import Dreamer, DreamSettings, Octave, pick_device, resize
from dreamreel.engine.objectives import layer
from dreamreel.models import create_model

MODELS = [("googlenet", "inception4c", "random"), ("efficientnet_lite0", "block10", "default")]
SIZES = {"512px": (512, 288), "720p": (1280, 720), "1080p": (1920, 1080)}
QUICK_SIZES = {"128px": (128, 72), "256px": (256, 144)}


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


def dreamer_for(model_name, layer_name, weights, device, fast, compile_choice):
    spec, model = create_model(model_name, weights, device, fold=fast)
    return Dreamer(model, layer(layer_name).bind(spec), device, precision="auto" if fast else "fp32",
                   channels_last=None if fast else False, compile=compile_choice if fast else "off")


def measure(dreamer, size, frames, steps, batch):
    """(frames/s, peak MiB): CUDA's peak allocation, or the process's peak RSS on the CPU (monotonic)."""
    device = dreamer.device
    zoom_frames(dreamer, size, batch, 1, batch)  # warm-up: kernels chosen, the shape compiled
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    n = zoom_frames(dreamer, size, frames, steps, batch)
    dt = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return n / dt, peak / 2**20


def model_rows(a, device, sizes, frames, batch):
    """Every model, size (the largest first, so its figures come out even if a time limit cuts the run) and
    job, eager then fast; prints ``speedup=`` (and on CUDA ``fps_1080p=``) as soon as they are measured."""
    results = {}
    sizes = dict(sorted(sizes.items(), key=lambda kv: -kv[1][0] * kv[1][1]))
    for model_name, layer_name, weights in MODELS:
        if a.model and model_name != a.model:
            continue
        pair = {fast: dreamer_for(model_name, layer_name, weights, device, fast, a.compile) for fast in (False, True)}
        for label, size in sizes.items():
            for job, steps, b in (("zoom", 3, 1), ("zoom", 10, 1), ("clip", 10, batch)):
                row = {}
                for fast, d in pair.items():
                    fps, mem = measure(d, size, frames, steps, b)
                    row[fast] = fps
                    print(f"{model_name}->{layer_name} {label:6s} {job} {steps:2d} steps/frame "
                          f"{'fast ' if fast else 'eager'} ({d.path.describe()}, batch {b}): {fps:7.2f} frames/s, "
                          f"peak {mem:.0f} MiB", flush=True)
                results[(model_name, label, f"{job}{steps}")] = row
                if model_name == "googlenet" and job == "zoom" and steps == 10 and label == next(iter(sizes)):
                    print(f"speedup={row[True] / row[False]:.2f}", flush=True)
                    if device.type == "cuda" and label == "1080p":
                        print(f"fps_1080p={row[True]:.2f}", flush=True)
    return results


def clip_overlap(device, size: int, steps: int, seconds: float | None, rounds: int = 3, loops: int = 4):
    """(pipeline s, {stage: s alone}, frames), medians of ``rounds`` alternating runs: a farneback clip
    (realshort.mp4 looped ``loops`` times, so the render's fixed costs, the probe, the writer's start and
    the audio mux, weigh as on a real clip) rendered overlapped, then each of its stages alone on the same
    frames (the first frame's warm-up dreams are off: blend 0.3)."""
    import statistics

    import dreamreel
    from dreamreel.io import ffmpeg
    from dreamreel.render.runtime import Engine

    walls, stages = [], []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "looped.mp4"
        ffmpeg.run(["-y", "-stream_loop", str(loops - 1), "-i", str(DATA / "realshort.mp4"), "-c", "copy", str(src)])
        p = dreamreel.prepare_clip(src, size=size, steps=steps, blend=0.3, end=seconds, device=str(device))
        engine = Engine.load(p.plan)
        dreamreel.write_clip(src, Path(tmp) / "warm.mp4", prepared=p, engine=engine)  # kernels, compile
        for _ in range(rounds):
            t0 = time.perf_counter()
            n = dreamreel.write_clip(src, Path(tmp) / "clip.mp4", prepared=p, engine=engine).frames
            walls.append(time.perf_counter() - t0)
            stages.append(_stages_alone(src, p, engine, seconds, Path(tmp) / "enc.mp4"))
    return statistics.median(walls), {k: statistics.median(s[k] for s in stages) for k in stages[0]}, n


def _stages_alone(src, p, engine, seconds, out) -> dict[str, float]:
    from dreamreel.io.readers import iter_frames
    from dreamreel.io.writer import open_writer
    from dreamreel.render.carry import carry_flow, smoothed_source, start_image
    from dreamreel.render.runtime import run_dream

    alone = {}
    t0 = time.perf_counter()
    frames = list(iter_frames(src, end=seconds, size=p.clip.size))
    alone["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for prev, cur in zip(frames, frames[1:]):
        carry_flow(prev, cur, "farneback")
        smoothed_source(cur, p.settings)
    alone["flow"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    dreams = []
    for k, f in enumerate(frames):
        r = run_dream(engine, start_image(f, None, 0.0).to(engine.device), p.settings, seed=k, show_progress=False)
        dreams.append((r.image.clamp(0, 1)[0].permute(1, 2, 0) * 255).round().byte().cpu().numpy())
    alone["dream"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    w = open_writer(out, fps=p.clip.fps, crf=p.job.crf, audio_from=src)
    for d in dreams:
        w.append(d)
    w.close()
    alone["encode"] = time.perf_counter() - t0
    return alone


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="128 and 256 px, 2 frames (a CPU smoke run)")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--model", choices=[m for m, _, _ in MODELS], default=None, help="only this model")
    ap.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help="the fast path's compile switch")
    ap.add_argument("--threads", type=int, default=None, help="torch threads [default: 1 on the CPU, where the "
                    "pipeline's flow stage needs a core]")
    ap.add_argument("--sizes", default=None, help="WxH,WxH,... in place of the default sizes")
    ap.add_argument("--no-clip", action="store_true", help="skip the clip pipeline's overlap run")
    ap.add_argument("--clip-seconds", type=float, default=None, help="the overlap run's length [all of it]")
    ap.add_argument("--clip-size", type=int, default=None, help="the overlap run's frame size [CPU 160 (--quick 128), "
                    "CUDA 512]")
    a = ap.parse_args()
    device = pick_device(a.device)
    cuda = device.type == "cuda"
    torch.set_num_threads(a.threads or (torch.get_num_threads() if cuda else 1))
    sizes = QUICK_SIZES if a.quick else SIZES
    if a.sizes:
        sizes = {s: tuple(int(n) for n in s.split("x")) for s in a.sizes.split(",")}
    frames = a.frames or (2 if a.quick else 30 if cuda else 3)
    batch = 4 if cuda else 2
    card = f" ({torch.cuda.get_device_name(device)})" if cuda else ""
    print(f"machine: {machine()}; device {device}{card}; load average {os.getloadavg()[0]:.1f}", flush=True)
    model_rows(a, device, sizes, frames, batch)
    if a.no_clip:
        return
    clip_size = a.clip_size or (512 if cuda else 128 if a.quick else 160)
    wall, alone, n = clip_overlap(device, clip_size, 2 if a.quick else 3, a.clip_seconds, rounds=2 if a.quick else 3,
                                  loops=2 if a.quick else 4)
    slowest = max(alone, key=alone.get)
    print(f"clip pipeline at {clip_size} px: " + ", ".join(f"{k} alone {n / v:.1f} fps" for k, v in alone.items())
          + f"; in sequence {n / sum(alone.values()):.1f} fps; overlapped {n / wall:.1f} fps ({n} frames; "
          f"slowest stage: {slowest})")
    print(f"overlap={alone[slowest] / wall:.3f}")


if __name__ == "__main__":
    main()

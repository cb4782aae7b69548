"""Tiles: peak memory at 2K, 4K and 8K with one tile size, tiled vs untiled agreement, seams.

1. Peak memory: each size dreams in its own fresh process (1 octave, 1 step, --tile 512, a noise-free
   photo upscaled to the size) and reports its peak RSS (VmHWM) and the peak before the dream;
   the ratios to 2K are printed. Run alone: a busy machine does not change RSS, but swap would.
2. Agreement at a size where both fit: the cosine between the tiled and the untiled gradient at the same
   image, and after a 6-step dream without jitter, the mean |tiled - untiled| against the dream's own
   strength (mean |dream - source|).
3. Seams: mean |horizontal difference| of the dreamt detail on the columns where a fixed tile grid puts its
   borders, divided by that on all other columns; for the random grid offset of every step (the default)
   and for a fixed grid (the same grid every step), which shows what the offset prevents.
4. The gradient buffer: a tiled still with the dream defaults (lapnorm, decorrelated colour, robust views),
   bfloat16 buffer (the CPU default, tiles.CPU_GRAD_DTYPE) vs float32, same seed: mean and max |difference|
   of the 8-bit outputs after 1 step and after 2 octaves of 6, against the dream's strength and against the
   difference another thread count makes to the float32 dream (the dream amplifies any rounding over steps).

    python benchmarks/tiles.py [--sizes 2k,4k,8k] [--tile 512] [--skip-memory]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {"2k": (2048, 1152), "4k": (3840, 2160), "8k": (7680, 4320)}

CHILD = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[4]))
w, h, tile, mode, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[5], sys.argv[6]
def rss():  # this process's peak RSS (VmHWM: ru_maxrss would carry the parent's RSS at the fork across exec)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
t0 = time.perf_counter()
if mode == "engine":  # the Python API: a float32 image at the size, held by the caller, default DreamSettings
    from dreamreel.engine import Dreamer, DreamSettings, Octave, resize
    from dreamreel.io.images import load_image
    from dreamreel.models import create_model
    from dreamreel.engine.objectives import layer
    spec, model = create_model("efficientnet_lite0")
    dreamer = Dreamer(model, layer("block10").bind(spec))
    loaded = rss()
    image = resize(load_image(path), (w, h))
    settings = DreamSettings((Octave((w, h), 1, (0.015, 0.015), (0.5, 0.5)),), jitter=16, tile=tile, tile_overlap=tile // 8)
    t0 = time.perf_counter()
    result = dreamer.dream(image, settings, evaluate_end=False)
else:  # the CLI still: an 8-bit PNG of the size in, a PNG out, the dream defaults (lapnorm, decorrelated, robust views)
    from dreamreel.cli import main
    loaded = rss()
    rc = main(["dream", path, "-o", sys.argv[7], "--octaves", "1", "--steps", "1", "--tile", str(tile), "-q"])
    assert rc == 0, rc
print(json.dumps({"size": [w, h], "loaded_mb": loaded, "peak_mb": rss(), "seconds": time.perf_counter() - t0,
                  "image_mb": w * h * 3 * 4 / 2**20}))
"""


def memory(sizes, tile, threads, photo, mode):
    import tempfile

    import imageio.v3 as iio
    import torch

    from dreamreel.engine import resize
    from dreamreel.io.images import load_image, to_uint8

    print(f"peak memory, {mode}: " + ("Dreamer.dream of a float32 image (1 octave, 1 step, no lapnorm)" if mode == "engine"
                                      else "dreamreel dream PNG -o PNG --octaves 1 --steps 1 (the dream defaults)"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sizes:
            w, h = SIZES[name]
            path = photo
            if mode == "still":  # the photo upscaled to the size, as an 8-bit PNG (written here, not in the child)
                path = Path(tmp) / f"{name}.png"
                iio.imwrite(path, to_uint8(resize(load_image(photo), (w, h))))
            out = subprocess.run([sys.executable, "-c", CHILD, str(w), str(h), str(tile), str(threads), mode, str(path),
                                  str(Path(tmp) / f"{name}-out.png")],
                                 capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
            if out.returncode != 0:
                print(f"{name}: failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["name"] = name
            rows.append(r)
            print(f"{name:3s} {w}x{h}: peak RSS {r['peak_mb']:7.0f} MB (before the dream {r['loaded_mb']:.0f} MB; "
                  f"one float32 image {r['image_mb']:.0f} MB), {r['seconds']:.1f} s", flush=True)
    if rows and rows[0]["name"] == "2k":
        base = rows[0]
        for r in rows[1:]:
            print(f"peak {r['name']} / peak 2k = {r['peak_mb'] / base['peak_mb']:.2f}")


def agreement_and_seams(photo, threads):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from dreamreel.engine import tiles
    from dreamreel.engine import Dreamer, DreamSettings, Octave, resize
    from dreamreel.io.images import load_image
    from dreamreel.models import create_model
    from dreamreel.engine.objectives import layer

    spec, model = create_model("efficientnet_lite0")
    dreamer = Dreamer(model, layer("block10").bind(spec))
    size, tile, overlap = (448, 448), 192, 32
    image = resize(load_image(photo), size)
    g_full, _, _ = dreamer.gradient(image)
    g_tiled, _, _ = tiles.tiled_gradient(dreamer, image, (0, 0), tile, overlap, torch.Generator().manual_seed(0))
    cos = float(torch.nn.functional.cosine_similarity(g_full.flatten(), g_tiled.flatten(), dim=0))
    print(f"agreement at {size[0]}x{size[1]}, tile {tile}, overlap {overlap}: gradient cosine tiled vs untiled {cos:.3f}")

    def dream(tile_px, random_offset=True, seed=0):
        tiles.RANDOM_OFFSET = random_offset
        try:
            s = DreamSettings((Octave(size, 6, (0.015, 0.01), (0.5, 0.25)),), jitter=0, tile=tile_px, tile_overlap=overlap)
            return dreamer.dream(image, s, generator=torch.Generator().manual_seed(seed), evaluate_end=False).image
        finally:
            tiles.RANDOM_OFFSET = True

    untiled, tiled = dream(0), dream(tile)
    strength = float((untiled - image).abs().mean()) * 255
    diff = float((tiled - untiled).abs().mean()) * 255
    print(f"6 steps, no jitter: mean |tiled - untiled| {diff:.2f} grey levels; dream strength (mean |dream - source|) "
          f"untiled {strength:.2f}, tiled {float((tiled - image).abs().mean()) * 255:.2f}; ratio {diff / strength:.2f}")

    step = tile - overlap
    border_cols = [c for c in range(step, size[0] - 1, step)] + [c + overlap for c in range(step, size[0] - 1, step)]

    def seam_ratio(result):
        detail = (result - image)[0].mean(0).numpy()
        dx = np.abs(np.diff(detail, axis=1)).mean(0)  # per column boundary c|c+1
        at = [int(c) for c in border_cols if c < dx.size]
        others = np.setdiff1d(np.arange(dx.size), at)
        return float(dx[at].mean() / dx[others].mean())

    fixed = dream(tile, random_offset=False)
    print(f"seams: |d/dx detail| on fixed-grid tile-border columns / elsewhere: random offset (default) "
          f"{seam_ratio(tiled):.3f}, fixed grid {seam_ratio(fixed):.3f}, untiled {seam_ratio(untiled):.3f}")


def gradient_buffer(photo, threads):
    import numpy as np
    import torch

    from dreamreel import api
    from dreamreel.engine import tiles

    def run(dtype, n_threads, **kw):
        old, tiles.CPU_GRAD_DTYPE = tiles.CPU_GRAD_DTYPE, dtype
        torch.set_num_threads(n_threads)
        try:
            return api.dream(str(photo), size=640, tile=192, **kw).astype(np.float64)
        finally:
            tiles.CPU_GRAD_DTYPE = old
            torch.set_num_threads(threads)

    other = 2 if threads == 1 else 1
    for kw in (dict(octaves=1, steps=1), dict(octaves=2, steps=6)):
        f32, b16 = run(torch.float32, threads, **kw), run(torch.bfloat16, threads, **kw)
        f32_other = run(torch.float32, other, **kw)
        source = run(torch.float32, threads, lr="0", **kw)
        d = np.abs(b16 - f32)
        print(f"gradient buffer, 640 px, tile 192, {kw}, the dream defaults: |bfloat16 - float32 buffer| mean "
              f"{d.mean():.3f}, max {d.max():.0f} grey levels; float32 at {other} vs {threads} threads differ by "
              f"{np.abs(f32_other - f32).mean():.3f}; dream strength (mean |dream - source|) {np.abs(f32 - source).mean():.2f}",
              flush=True)


def main():
    from _common import DATA, machine

    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="2k,4k,8k")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-agreement", action="store_true")
    p.add_argument("--skip-buffer", action="store_true", help="skip the bfloat16 vs float32 gradient buffer comparison")
    p.add_argument("--modes", default="engine,still", help="engine: the Python API; still: the CLI from a PNG")
    args = p.parse_args()
    photo = DATA / "chelsea.png"
    print(machine())
    if not args.skip_agreement:
        agreement_and_seams(photo, args.threads)
    if not args.skip_buffer:
        gradient_buffer(photo, args.threads)
    if not args.skip_memory:
        for mode in args.modes.split(","):
            memory([s for s in args.sizes.split(",") if s], args.tile, args.threads, photo, mode)


if __name__ == "__main__":
    main()

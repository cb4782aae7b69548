"""In-between frames: what ``--interpolate N`` costs and how its frames compare with the dreamt ones.

    python benchmarks/tween.py [--size 128] [--frames 8]

Renders, in one process and lossless (crf 0), a zoom of ../shared/data/chelsea.png with ``--interpolate 1``
and ``4`` and a clip of ../shared/data/realshort.mp4 with ``1`` and ``2``, then prints for each:

    change_ratio=X   median |frame - previous| of the interpolated file / of the plain one (about 1/N)
    detail_ratio=X   Laplacian energy of the in-betweens / of the dreamt frames (1: as sharp; within 10%)
    cost=X           seconds per in-between / seconds per dreamt frame (from the sidecar)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared/data"


def median_change(frames) -> float:
    return float(np.median([np.abs(b.astype(np.float32) - a).mean() for a, b in zip(frames, frames[1:])]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="128")
    ap.add_argument("--frames", default="8", help="zoom frames [default: 8]")
    ap.add_argument("--end", default="1.0", help="seconds of the clip [default: 1.0]")
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from dreamreel import api
    from dreamreel.io.outputs import read_frames
    from dreamreel.render import tween

    jobs = {
        "zoom": (api.write_zoom, DATA / "chelsea.png", {"frames": a.frames, "first_octaves": "2"}, 4),
        "video": (api.write_clip, DATA / "realshort.mp4", {"end": a.end}, 2),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (write, source, extra, n) in jobs.items():
            outs = {}
            for factor in (1, n):
                out = Path(tmp) / f"{name}{factor}.mp4"
                result = write(source, out, size=a.size, crf="0", seed="1", interpolate=str(factor), **extra)
                outs[factor] = (list(read_frames(out)), result.sidecar)
            plain, _ = outs[1]
            frames, side = outs[n]
            dreamt = [f for i, f in enumerate(frames) if i % n == 0]
            between = [f for i, f in enumerate(frames) if i % n][: -(n - 1)]  # not the tail
            detail = float(np.mean([tween.detail_energy(f) for f in between]) /
                           np.mean([tween.detail_energy(f) for f in dreamt]))
            per_dream = side["dream_seconds"] / side["interpolate"]["dreamt_frames"]
            info = side["interpolate"]
            per_between = info["inbetween_seconds"] / max(1, info["inbetweens_this_run"])
            print(f"{name}: {len(plain)} frames -> {len(frames)} at {side['fps']:g} fps (x{n}); "
                  f"change_ratio={median_change(frames) / median_change(plain):.3f} (1/N = {1 / n:.3f}); "
                  f"detail_ratio={detail:.3f}; cost={per_between / per_dream:.4f} "
                  f"({per_between * 1000:.2f} ms per in-between, {per_dream * 1000:.1f} ms per dreamt frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

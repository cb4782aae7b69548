"""The 3D camera's warp against the affine zoom's, per frame, in one process (interleaved, medians).

Prints seconds per warp of a 640x360 frame on the CPU (one thread): the affine zoom, the camera over the flat
picture, the camera over a depth map (its fixed-point inverse), and the zoom and camera in one grid, with their
ratios to the affine warp.
"""

from __future__ import annotations

import torch

from _common import interleaved
from dreamreel.render.camera import Camera
from dreamreel.render.timeline import Motion


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 360, 640, generator=g)
    depth = torch.rand(1, 1, 360, 640, generator=g)
    cam = Camera(10.0, (0.5, 1.0, 0.5), 40.0)
    fns = {
        "affine zoom": lambda: Motion(zoom=1.04, rotate=0.5).apply(image),
        "camera, flat": lambda: Motion(camera=cam).apply(image),
        "camera, depth map": lambda: Motion(camera=cam).apply(image, depth),
        "zoom + camera, one grid": lambda: Motion(zoom=1.04, rotate=0.5, camera=cam).apply(image),
    }
    t = interleaved(fns, repeats=9)
    base = t["affine zoom"]
    for name, s in t.items():
        print(f"{name:26s} {s * 1000:7.2f} ms  x{s / base:.2f}")


if __name__ == "__main__":
    main()

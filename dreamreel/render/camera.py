"""The 3D camera: Deforum's ``translation_z``, ``rotation_3d_x/y/z`` and ``fov`` as a pinhole camera moving over the frame.

The picture is a surface in front of the camera: flat at distance 1 by default, or shaped by a depth map (grey,
white at distance 1, black at 2). Each frame the camera moves forward by ``translation_z`` / 200 (Deforum's
``TRANSLATION_SCALE``; 1 unit = 1/200 of the distance to a white point), tilts up by ``rotation_3d_x``, turns right
by ``rotation_3d_y`` and rolls by ``rotation_3d_z`` degrees (the picture turns counterclockwise, as ``--rotate``
turns it), with rotations applied x, then y, then z (Deforum's "XYZ"). The focal length follows ``fov``, the field
of view across the shorter side (Deforum's default, 40 degrees).

Pixel coordinates are relative to the frame's centre, x right, y down. A point ``r`` of the old frame at depth
``Z`` is ``X = Z (r/f, 1)``; the new camera sees it at ``f (R^T (X - C))_xy / (R^T (X - C))_z`` with ``C`` =
(0, 0, translation_z / 200). The warp needs the inverse (for each new pixel, where it was): over the flat
picture that is the ray's intersection with the plane; over a depth map a few fixed-point steps of
``r <- r + (q - project(r))`` (the move between frames is small, so 4 steps converge). The result is
a sampling grid that ``Motion`` composes with the zoom, rotation and shift, so a frame is resampled once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

CAMERA_KEYS = ("translation_z", "rotation_3d_x", "rotation_3d_y", "rotation_3d_z", "fov")
TRANSLATION_SCALE = 1.0 / 200.0
DEFAULT_FOV = 40.0
FAR = 2.0  # the distance of a black pixel of the depth map (white: 1)
DEPTH_STEPS = 4


@dataclass(frozen=True)
class Camera:
    """One frame's camera move: forward (units of 1/200), rotations in degrees (x: tilt up, y: turn right, z: roll)."""

    translation_z: float = 0.0
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fov: float = DEFAULT_FOV

    @classmethod
    def from_values(cls, v: Mapping[str, Any]) -> "Camera | None":
        """The camera of a frame's values, or None when no 3D key is set."""
        if not any(k in v for k in CAMERA_KEYS):
            return None
        return cls(float(v.get("translation_z", 0.0)),
                   tuple(float(v.get(f"rotation_3d_{a}", 0.0)) for a in "xyz"), float(v.get("fov", DEFAULT_FOV)))

    @property
    def identity(self) -> bool:
        return self.translation_z == 0.0 and self.rotation == (0.0, 0.0, 0.0)

    def record(self) -> dict:
        return {"translation_z": self.translation_z, "rotation_3d": list(self.rotation), "fov": self.fov}

    def focal(self, w: int, h: int) -> float:
        """The focal length in pixels: the shorter side spans ``fov``."""
        return (min(w, h) / 2.0) / math.tan(math.radians(self.fov) / 2.0)

    def matrix(self) -> torch.Tensor:
        """The new camera's orientation in the old camera's frame (float64 3x3): Rx @ Ry @ Rz."""
        ax, ay, az = (math.radians(a) for a in self.rotation)
        cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
        rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=torch.float64)
        ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
        rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=torch.float64)
        return rx @ ry @ rz

    def project(self, r: torch.Tensor, z: torch.Tensor, w: int, h: int) -> torch.Tensor:
        """Where the new camera sees old pixels ``r`` (..., 2) at depths ``z`` (...): new pixels (..., 2)."""
        f, rot = self.focal(w, h), self.matrix().to(r.device, torch.float32)
        x = torch.stack([r[..., 0] * z / f, r[..., 1] * z / f, z], -1)
        x = x - torch.tensor([0.0, 0.0, self.translation_z * TRANSLATION_SCALE], device=r.device)
        xn = x @ rot  # R^T x, row vectors
        return f * xn[..., :2] / xn[..., 2:].clamp_min(1e-4)

    def unproject_flat(self, q: torch.Tensor, w: int, h: int) -> torch.Tensor:
        """The old pixels (..., 2) that new pixels ``q`` see on the flat picture at distance 1 (ray meets plane)."""
        f, rot = self.focal(w, h), self.matrix().to(q.device, torch.float32)
        ray = torch.stack([q[..., 0] / f, q[..., 1] / f, torch.ones_like(q[..., 0])], -1) @ rot.T  # R d
        c = self.translation_z * TRANSLATION_SCALE
        lam = (1.0 - c) / ray[..., 2:].clamp_min(1e-4)
        return f * ray[..., :2] * lam

    def unproject(self, q: torch.Tensor, depth: torch.Tensor | None, w: int, h: int) -> torch.Tensor:
        """The old pixels new pixels ``q`` (1,H,W,2) see, over ``depth`` ((1,1,H,W) grey, white near) or flat."""
        r = self.unproject_flat(q, w, h)
        if depth is None:
            return r
        z_map = 1.0 + (FAR - 1.0) * (1.0 - depth.float().clamp(0, 1))
        for _ in range(DEPTH_STEPS):
            grid = torch.stack([2 * r[..., 0] / w, 2 * r[..., 1] / h], -1)
            z = torch.nn.functional.grid_sample(z_map, grid, mode="bilinear", padding_mode="border",
                                                align_corners=False)[:, 0]
            r = r + (q - self.project(r, z, w, h))
        return r

    def resample_grid(self, grid: torch.Tensor, depth: torch.Tensor | None = None) -> torch.Tensor:
        """``grid`` (1,H,W,2, normalised, output -> the camera's picture) continued through the camera's move
        (-> the old frame): one grid for both warps."""
        _, h, w, _ = grid.shape
        scale = torch.tensor([w / 2.0, h / 2.0], device=grid.device)
        if depth is not None and depth.shape[-2:] != (h, w):
            depth = torch.nn.functional.interpolate(depth.float(), size=(h, w), mode="bilinear", align_corners=False)
        r = self.unproject(grid * scale, None if depth is None else depth.to(grid.device), w, h)
        return (r / scale).to(grid.dtype)

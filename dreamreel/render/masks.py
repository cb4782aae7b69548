"""Masks: dream only where a mask says (issue 14).

A mask is grey levels: white (1) dreams fully, black (0) keeps the input exactly, grey dreams partly
(each step's update, blur included, is scaled by the mask: ``x <- lerp(x_before, x_after, m)``; after the
last octave every pixel where the mask is 0 is the input's own). Alpha is composited on white (see
``images.to_float_rgb``). ``feather`` softens the edges *inward* only: the transition lies inside the
dreamt region, so black stays exactly black.

A mask may be a still (one mask for every frame) or a video of masks (frame k masks output frame k; a
mask video shorter than the render holds its last frame). Its aspect ratio must be the output's (within
1%); it is resized to each octave's size.

From Python::

    from dataclasses import replace
    from dreamreel.render.masks import Mask, open_mask
    settings = replace(settings, mask=Mask.from_tensor(m))        # m: (H,W) or (1,1,H,W) in [0,1]
    settings = replace(settings, mask=open_mask("half.png", feather=8).frame(0))
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DreamError

ASPECT_TOLERANCE = 0.01


class Mask:
    """One frame's mask: (1,1,H,W) float in [0,1] on the CPU; ``at(size, device)`` resizes it for an octave."""

    def __init__(self, tensor: torch.Tensor, label: str = "tensor"):
        t = tensor.detach().float()
        while t.dim() < 4:
            t = t[None]
        if t.shape[:2] != (1, 1):
            raise ValueError(f"a mask is (H,W) or (1,1,H,W), got {tuple(tensor.shape)}")
        self.tensor = t.clamp(0, 1).contiguous()
        self.label = label
        self._cache: dict = {}

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor, feather: float = 0, label: str = "tensor") -> "Mask":
        m = cls(tensor, label).tensor
        return cls(feather_inward(m, feather) if feather > 0 else m, label)

    @property
    def size(self) -> tuple[int, int]:
        return self.tensor.shape[-1], self.tensor.shape[-2]

    def at(self, size: tuple[int, int], device) -> torch.Tensor:
        key = (tuple(size), str(device))
        if key not in self._cache:
            w, h = size
            m = self.tensor
            if m.shape[-2:] != (h, w):
                shrinking = h < m.shape[-2] or w < m.shape[-1]
                m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False, antialias=shrinking).clamp(0, 1)
            self._cache = {key: m.to(device)}  # one size at a time: octaves go up, frames repeat the same sizes
        return self._cache[key]

    def __repr__(self) -> str:  # stable: it goes into resume fingerprints via str(settings)
        return f"mask({self.label})"


def feather_inward(m: torch.Tensor, px: float) -> torch.Tensor:
    """Soften a (1,1,H,W) mask's edges over about ``px`` pixels inside the dreamt region (0 stays 0)."""
    if px <= 0:
        return m
    from ..engine import gaussian_blur

    r = max(1, int(round(px / 2)))
    eroded = -F.max_pool2d(-m, 2 * r + 1, stride=1, padding=r)
    soft = gaussian_blur(eroded.expand(1, 3, -1, -1).contiguous(), px / 4)[:, :1]
    return torch.minimum(m, soft.clamp(0, 1))


def _gray(array: np.ndarray) -> np.ndarray:
    from ..io.images import to_float_rgb

    rgb = to_float_rgb(array)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


class MaskSource:
    """A mask file: a still, or a video of masks (frames read in order, as renders need them)."""

    def __init__(self, path: str | os.PathLike, feather: float = 0, what: str = "mask"):
        self.path = Path(path)
        self.feather = float(feather)
        self.what = what  # "mask", "depth map": the messages' word
        if not self.path.is_file():
            raise DreamError(f"{what} {str(self.path)!r} does not exist")
        from ..io.readers import is_video_path

        self.video = is_video_path(self.path)
        self._iter = None
        self._index = -1
        self._last: Mask | None = None
        if self.video:
            from ..io.readers import VideoError, probe_video

            try:
                info = probe_video(self.path)
            except VideoError as exc:
                raise DreamError(f"cannot read {what} {str(self.path)!r}: {exc.message}") from None
            self.size = tuple(info.size)
            self.frames = info.n_frames
            self._first = self.frame(0)
        else:
            import imageio.v3 as iio

            try:
                array = iio.imread(self.path, index=0)
                gray = _gray(array)
            except Exception:
                raise DreamError(f"cannot read {what} {str(self.path)!r} as an image", "use a PNG or JPEG "
                                 + ("(white dreams, black keeps)" if what == "mask" else "(grey, white near)") + ", or a video") from None
            self.size = (gray.shape[1], gray.shape[0])
            self.frames = None
            self._first = Mask.from_tensor(torch.from_numpy(gray), self.feather, self._label(None))

    def _label(self, k: int | None) -> str:
        feather = f", feather {self.feather:g}" if self.feather else ""
        return f"{self.path}{'' if k is None else f'#{k}'}{feather}"

    def check(self, size: tuple[int, int]) -> None:
        """Refuse a mask whose aspect ratio differs from the output's (resizing it would stretch it)."""
        mw, mh = self.size
        w, h = size
        rounding = min(abs(w * mh / mw - h), abs(h * mw / mh - w)) <= 1  # the output's sides are whole pixels
        if abs((mw / mh) / (w / h) - 1) > ASPECT_TOLERANCE and not rounding:
            raise DreamError(f"{self.what} {str(self.path)!r} is {mw}x{mh} but the output is {w}x{h}: the aspect ratios differ",
                             f"make the {self.what} {w}x{h} (any size with that aspect ratio is resized)")

    def frame(self, k: int) -> Mask:
        """Output frame k's mask (a still: the same for every k; a video: its frame k, or its last)."""
        if not self.video:
            return self._first
        if k == 0 and self._index >= 0 and hasattr(self, "_first"):
            return self._first
        if k < self._index or self._iter is None:
            from ..io.readers import iter_frames

            self._iter, self._index = iter_frames(self.path), -1
        while self._index < k:
            try:
                array = next(self._iter)
            except StopIteration:
                break
            self._index += 1
            self._last = Mask.from_tensor(torch.from_numpy(_gray(array)), self.feather, self._label(self._index))
        if self._last is None:
            raise DreamError(f"{self.what} video {str(self.path)!r} has no frames")
        return self._last

    def describe(self) -> dict:
        return {"path": str(self.path), "kind": "video" if self.video else "still", "size": list(self.size),
                "frames": self.frames, "feather": self.feather}


@functools.lru_cache(maxsize=8)
def _open_cached(path: str, mtime_ns: int, feather: float, what: str) -> MaskSource:
    return MaskSource(path, feather, what)


def open_mask(path: str | os.PathLike, feather: float = 0, what: str = "mask") -> MaskSource:
    """A mask file (cached per path, modification time and feather), or a one-line DreamError; ``what`` names it
    in the messages (a --depth map is read the same way)."""
    p = Path(path)
    if not p.is_file():
        raise DreamError(f"{what} {str(p)!r} does not exist")
    return _open_cached(str(p), p.stat().st_mtime_ns, float(feather), what)


def half_mask(size: tuple[int, int], side: str = "left") -> Mask:
    """A hard mask dreaming one half (left/right/top/bottom) of a (w, h) frame; handy for tests and demos."""
    w, h = size
    m = torch.zeros(h, w)
    if side == "left":
        m[:, : w // 2] = 1
    elif side == "right":
        m[:, w // 2 :] = 1
    elif side == "top":
        m[: h // 2] = 1
    elif side == "bottom":
        m[h // 2 :] = 1
    else:
        raise ValueError(f"side must be left, right, top or bottom, got {side!r}")
    return Mask(m, f"half:{side}")

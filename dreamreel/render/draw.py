"""Frame drawing for dreamreel videos: heatmap overlays with a colour scale, and caption strips.

Pure numpy + OpenCV (no torch, no matplotlib) so that drawing a frame costs a
few milliseconds next to a dream step that costs tens to hundreds.

Every function returns an RGB ``uint8`` array whose width and height are even,
because the frames go into yuv420p H.264, which cannot encode odd sizes.
The activation-over-time chart is in ``chart``; text primitives in ``text``.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from .text import TEXT, fit_text, fmt_tick, font_scale, line_metrics, put_text, text_width, thickness

__all__ = [
    "overlay_frame",
    "caption_bar",
    "fit_even",
]

# Palette (RGB).
FRAME_BG = (13, 14, 19)
CAPTION_BG = (9, 9, 13)

_CAPTION_BG_U8 = np.array(CAPTION_BG, np.uint8)


# --------------------------------------------------------------------------- helpers


def fit_even(frame: np.ndarray) -> np.ndarray:
    """Pad ``frame`` by one replicated row/column where its height/width is odd.

    Returns ``frame`` itself when both are already even.
    """
    h, w = frame.shape[:2]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return frame
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (frame.ndim - 2)
    return np.pad(frame, pad, mode="edge")


def as_rgb_u8(image: np.ndarray) -> np.ndarray:
    """Coerce an image to contiguous HxWx3 uint8 (grey -> RGB, RGBA -> RGB, float 0..1 or 0..255)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    if img.dtype != np.uint8:
        f = np.nan_to_num(img.astype(np.float32))
        if np.issubdtype(img.dtype, np.floating) and f.size and float(f.max()) <= 1.0:
            f = f * 255.0
        img = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def even_up(n: int) -> int:
    return n + (n % 2)


# --------------------------------------------------------------------------- caption strip


@functools.lru_cache(maxsize=64)
def caption_geometry(frame_h: int, frame_w: int) -> tuple[float, int, int, int]:
    """(font scale, thickness, strip height, baseline y) for a caption under a frame of this size.

    Depends only on the frame size, so every frame of a video gets the same strip height
    whatever its text.
    """
    scale = font_scale(min(frame_h, frame_w))
    thick = thickness(scale)
    cap, desc = line_metrics(scale, thick)
    strip_h = even_up(int(math.ceil((cap + desc) * 1.9)))
    baseline = (strip_h + cap) // 2
    return scale, thick, strip_h, baseline


@functools.lru_cache(maxsize=32)
def _blank_strip(h: int, w: int) -> np.ndarray:
    s = np.empty((h, w, 3), np.uint8)
    s[:] = _CAPTION_BG_U8
    s.setflags(write=False)
    return s


def draw_caption(strip: np.ndarray, text: str, scale: float, thick: int, baseline: int) -> None:
    strip[:] = _blank_strip(strip.shape[0], strip.shape[1])  # plain copy: much faster than a colour broadcast
    if not text:
        return
    w = strip.shape[1]
    margin = max(4, int(round(scale * 12)))
    fitted, s = fit_text(text, w - 2 * margin, scale, thick)
    put_text(strip, fitted, (margin, baseline), s, TEXT, thick)


def caption_bar(frame: np.ndarray, text: str) -> np.ndarray:
    """Return ``frame`` with a dark caption strip holding ``text`` added underneath.

    The strip height depends only on the frame size (not on the text), so frames of one
    video stay the same size; long text is shrunk, then truncated, to fit the width.
    Middle dots ("octave 1/2 · step 3/4") are drawn as dots. Output dimensions are even.
    """
    img = as_rgb_u8(frame)
    h, w = img.shape[:2]
    scale, thick, strip_h, baseline = caption_geometry(h, w)
    out = np.empty((h + strip_h, w, 3), np.uint8)
    out[:h] = img
    draw_caption(out[h:], text, scale, thick, baseline)
    return fit_even(out)


# --------------------------------------------------------------------------- overlay


@functools.lru_cache(maxsize=16)
def _colormap_lut(name: str) -> np.ndarray:
    """256x1x3 RGB lookup table (for cv2.applyColorMap) of an OpenCV colormap ('inferno', 'viridis', ...)."""
    code = getattr(cv2, "COLORMAP_" + name.strip().upper(), None)
    if code is None:
        raise ValueError(f"unknown colormap {name!r}; use an OpenCV colormap name such as 'inferno' or 'viridis'")
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, code).reshape(256, 3)
    lut = np.ascontiguousarray(bgr[:, ::-1]).reshape(256, 1, 3)
    lut.setflags(write=False)
    return lut


def overlay_frame(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    alpha: float = 0.5,
    colormap: str = "inferno",
    value_range: tuple[float, float] | None = None,
    caption: str = "",
    legend: str | None = None,
) -> np.ndarray:
    """Blend a 2-D activation map over ``image`` through a perceptual colormap.

    ``legend`` (e.g. "block13 mean activation"): draw a colour scale with the range's two ends in the
    map's units and this label inside the frame, and the caption over the frame's bottom rows instead of
    a strip under it, so the overlay has exactly the image's size (even dimensions).

    ``heatmap`` may have any size; it is resized to the image bilinearly. Values are
    normalised with ``value_range`` (pass one fixed range for a whole video so frames
    compare) or, when it is None, by this frame's own min/max. Values outside the range
    clip to the colormap ends. ``alpha`` is the heatmap's weight (0 returns the image).
    A caption strip is added when ``caption`` is non-empty. Output dimensions are even.
    """
    img = as_rgb_u8(image)
    h, w = img.shape[:2]
    a = float(np.clip(alpha, 0.0, 1.0))
    if a > 0.0:
        hm = np.asarray(heatmap, dtype=np.float32)
        if hm.ndim == 3 and hm.shape[0] == 1:
            hm = hm[0]
        if hm.ndim != 2 or hm.size == 0:
            raise ValueError(f"heatmap must be a non-empty 2-D array, got shape {hm.shape}")
        hm = np.nan_to_num(hm, nan=0.0, posinf=0.0, neginf=0.0)
        # Normalise at the heatmap's own (usually small) size, then resize the uint8 index map:
        # bilinear interpolation never leaves [min, max], so per-frame min/max are unchanged.
        if value_range is None:
            lo, hi = float(hm.min()), float(hm.max())
        else:
            lo, hi = float(value_range[0]), float(value_range[1])
        if hi > lo:
            idx = np.clip((hm - lo) * (255.0 / (hi - lo)), 0.0, 255.0)
            idx = np.rint(idx, out=idx).astype(np.uint8)
        else:
            idx = np.zeros(hm.shape, np.uint8)
        if idx.shape != (h, w):
            idx = cv2.resize(idx, (w, h), interpolation=cv2.INTER_LINEAR)
        colored = cv2.applyColorMap(idx, _colormap_lut(colormap))
        img = cv2.addWeighted(img, 1.0 - a, colored, a, 0.0)
        if legend is not None:
            _draw_legend(img, lo, hi, legend, colormap)
    if legend is not None:
        img = fit_even(img).copy()
        if caption:
            hh, ww = img.shape[:2]
            scale, thick, strip_h, baseline = caption_geometry(hh, ww)
            strip_h = min(strip_h, hh // 3)
            draw_caption(img[hh - strip_h:], caption, scale, thick, min(baseline, strip_h - 1))
        return img
    if caption:
        return caption_bar(img, caption)
    return fit_even(img)


def _draw_legend(img: np.ndarray, lo: float, hi: float, label: str, colormap: str) -> None:
    """A colour scale in the top-right corner (in place): the colormap from ``lo`` (left) to ``hi`` (right, hot)."""
    h, w = img.shape[:2]
    scale = font_scale(min(h, w)) * 0.8
    thick = thickness(scale)
    cap, desc = line_metrics(scale, thick)
    margin = max(2, int(round(min(h, w) * 0.02)))
    bar_w = max(16, w // 3)
    bar_h = max(3, cap)
    box_h = margin + cap + desc + margin + bar_h + margin + cap + desc + margin
    box_w = bar_w + 2 * margin
    if box_h > h // 2 or box_w > w:
        return  # too small a frame for a readable scale
    x0, y0 = w - box_w, 0
    region = img[y0:y0 + box_h, x0:x0 + box_w]
    region[:] = (region.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken behind the text
    text, s = fit_text(label, bar_w, scale, thick)
    put_text(img, text, (x0 + margin, y0 + margin + cap), s, TEXT, thick)
    by = y0 + margin + cap + desc + margin
    ramp = np.linspace(0, 255, bar_w).round().astype(np.uint8)[None, :].repeat(bar_h, 0)
    img[by:by + bar_h, x0 + margin:x0 + margin + bar_w] = cv2.applyColorMap(ramp, _colormap_lut(colormap))
    ty = by + bar_h + margin + cap
    lo_t, hi_t = fmt_tick(lo), fmt_tick(hi) + " hot"
    put_text(img, lo_t, (x0 + margin, ty), scale, TEXT, thick)
    put_text(img, hi_t, (x0 + margin + bar_w - text_width(hi_t, scale, thick), ty), scale, TEXT, thick)

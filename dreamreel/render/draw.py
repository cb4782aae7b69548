"""Frame drawing for dreamreel videos: activation charts, heatmap overlays, captions.

Pure numpy + OpenCV (no torch, no matplotlib) so that drawing a frame costs a
few milliseconds next to a dream step that costs tens to hundreds.

Every function returns an RGB ``uint8`` array whose width and height are even,
because the frames go into yuv420p H.264, which cannot encode odd sizes.

Chart frames are laid out as::

    +-----------+---------------------------------+
    |           | mean activation / feature  legend|
    |  image    |  y ticks |  bars (step 0 outline) |
    | (scaled   |          |______________________ |
    |  to panel |  feature 0              feature N |
    |  height)  |  [target probability over steps] |
    +-----------+---------------------------------+
    | caption: octave 2/3 . step 37/100 . Mixed_6e  |
    +-----------------------------------------------+

The static parts of the chart panel (background, grid, ticks, labels) depend only
on sizes and fixed ranges, so they are drawn once and cached; each frame copies
that background and paints the bars, the step-0 outline and the target line.
"""

from __future__ import annotations

import functools
import math
import unicodedata

import cv2
import numpy as np

__all__ = [
    "activation_chart_frame",
    "overlay_frame",
    "caption_bar",
    "fit_even",
    "MIN_PANEL_HEIGHT",
    "PANEL_ASPECT",
]

# Smallest chart panel height: below this Hershey text stops being legible, so
# small images are scaled up to this height instead.
MIN_PANEL_HEIGHT = 160
# Chart panel width / height.
PANEL_ASPECT = 1.3

# Palette (RGB).
FRAME_BG = (13, 14, 19)
PANEL_BG = (20, 21, 28)
PLOT_BG = (26, 28, 37)
GRID = (44, 47, 60)
AXIS = (125, 129, 146)
TEXT = (228, 229, 235)
TEXT_DIM = (150, 154, 168)
BAR_BASE = (86, 128, 186)  # bar up to its step-0 level (or whole bar without a ghost)
BAR_GROWTH = (255, 172, 58)  # part of a bar above its step-0 level
GHOST = (196, 198, 212)  # step-0 outline
TARGET_LINE = (112, 222, 150)
TARGET_TEXT = (168, 236, 190)  # label + current value under the target plot
CAPTION_BG = (9, 9, 13)

# The bar plot is painted as a uint8 "code" image and coloured through this lookup table in
# one cv2.applyColorMap call: far cheaper than numpy boolean-mask assignment into RGB.
# Codes are ordered by drawing priority, so layers combine with np.maximum.
_C_BG, _C_GRID, _C_AXIS, _C_BAR, _C_GROWTH, _C_GHOST = range(6)
_PLOT_LUT = np.zeros((256, 1, 3), np.uint8)
for _code, _rgb in enumerate((PLOT_BG, GRID, AXIS, BAR_BASE, BAR_GROWTH, GHOST)):
    _PLOT_LUT[_code, 0] = _rgb
_PLOT_LUT.setflags(write=False)

_CAPTION_BG_U8 = np.array(CAPTION_BG, np.uint8)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SEP = "\u00b7"  # middle dot: Hershey fonts are ASCII-only, so it is drawn as a filled circle
_ASCII_SUBST = {
    "\u2014": "-",
    "\u2013": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00d7": "x",
    "\u00b5": "u",
    "\u03bc": "u",
    "\u2192": "->",
    "\u2190": "<-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
}


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


def _as_rgb_u8(image: np.ndarray) -> np.ndarray:
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


def _even_up(n: int) -> int:
    return n + (n % 2)


def _ascii(text: str) -> str:
    """Map text to what Hershey fonts can draw, keeping the middle dot separator."""
    out = []
    for ch in text:
        if ch == _SEP or ord(ch) < 128:
            out.append(ch)
        elif ch in _ASCII_SUBST:
            out.append(_ASCII_SUBST[ch])
        else:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
            out.append(plain or "?")
    return "".join(out)


def _font_scale(px: int) -> float:
    """Hershey font scale for a panel/frame whose governing dimension is ``px``."""
    return float(np.clip(px / 420.0, 0.36, 1.1))


def _thickness(scale: float) -> int:
    return 1 if scale < 0.75 else 2


@functools.lru_cache(maxsize=64)
def _line_metrics(scale: float, thick: int) -> tuple[int, int]:
    """(cap height above the baseline, descent below it) for a text line."""
    (_, h), base = cv2.getTextSize("Ag", _FONT, scale, thick)
    return h, base


def _sep_radius(scale: float) -> int:
    return max(1, int(round(scale * 2.6)))


@functools.lru_cache(maxsize=4096)
def _text_width(text: str, scale: float, thick: int) -> int:
    parts = _ascii(text).split(_SEP)
    r = _sep_radius(scale)
    w = sum(cv2.getTextSize(p, _FONT, scale, thick)[0][0] for p in parts if p)
    return w + (len(parts) - 1) * (2 * r + 2)


def _fit_text(text: str, max_w: int, scale: float, thick: int, min_scale: float = 0.3) -> tuple[str, float]:
    """Shrink (then truncate with '..') ``text`` so that it is at most ``max_w`` pixels wide."""
    text = _ascii(text)
    while _text_width(text, scale, thick) > max_w and scale > min_scale:
        scale = max(min_scale, round(scale * 0.92, 3))
    if _text_width(text, scale, thick) > max_w:
        while len(text) > 1 and _text_width(text + "..", scale, thick) > max_w:
            text = text[:-1]
        text = text.rstrip() + ".."
    return text, scale


def _put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color, thick: int = 1) -> int:
    """Draw ``text`` with its baseline-left at ``org``; middle dots become filled circles.

    Returns the x coordinate just after the text.
    """
    x, y = int(org[0]), int(org[1])
    cap, _ = _line_metrics(scale, thick)
    r = _sep_radius(scale)
    parts = _ascii(text).split(_SEP)
    for i, part in enumerate(parts):
        if part:
            cv2.putText(img, part, (x, y), _FONT, scale, color, thick, cv2.LINE_AA)
            x += cv2.getTextSize(part, _FONT, scale, thick)[0][0]
        if i < len(parts) - 1:
            cv2.circle(img, (x + r + 1, y - int(round(cap * 0.42))), r, color, -1, cv2.LINE_AA)
            x += 2 * r + 2
    return x


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-")
    s = f"{v:.3g}"
    return s


def _nice_ticks(lo: float, hi: float, target: int = 4) -> list[float]:
    """Round tick values (1/2/5 x 10^k steps) inside [lo, hi], always including 0 when in range."""
    span = hi - lo
    raw = span / max(1, target)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = mag
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = m * mag
        if span / step <= target:
            break
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else round(v, 12))
        v += step
    return ticks


def _sanitize_range(r: tuple[float, float] | None, fallback: np.ndarray | None = None) -> tuple[float, float]:
    if r is None:
        if fallback is None or fallback.size == 0:
            return 0.0, 1.0
        lo, hi = float(np.min(fallback)), float(np.max(fallback))
        pad = 0.05 * (hi - lo)
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = float(r[0]), float(r[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"range must be finite, got {r!r}")
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 0.5, lo + 0.5
    return lo, hi


# --------------------------------------------------------------------------- caption strip


@functools.lru_cache(maxsize=64)
def _caption_geometry(frame_h: int, frame_w: int) -> tuple[float, int, int, int]:
    """(font scale, thickness, strip height, baseline y) for a caption under a frame of this size.

    Depends only on the frame size, so every frame of a video gets the same strip height
    whatever its text.
    """
    scale = _font_scale(min(frame_h, frame_w))
    thick = _thickness(scale)
    cap, desc = _line_metrics(scale, thick)
    strip_h = _even_up(int(math.ceil((cap + desc) * 1.9)))
    baseline = (strip_h + cap) // 2
    return scale, thick, strip_h, baseline


@functools.lru_cache(maxsize=32)
def _blank_strip(h: int, w: int) -> np.ndarray:
    s = np.empty((h, w, 3), np.uint8)
    s[:] = _CAPTION_BG_U8
    s.setflags(write=False)
    return s


def _draw_caption(strip: np.ndarray, text: str, scale: float, thick: int, baseline: int) -> None:
    strip[:] = _blank_strip(strip.shape[0], strip.shape[1])  # plain copy: much faster than a colour broadcast
    if not text:
        return
    w = strip.shape[1]
    margin = max(4, int(round(scale * 12)))
    fitted, s = _fit_text(text, w - 2 * margin, scale, thick)
    _put_text(strip, fitted, (margin, baseline), s, TEXT, thick)


def caption_bar(frame: np.ndarray, text: str) -> np.ndarray:
    """Return ``frame`` with a dark caption strip holding ``text`` added underneath.

    The strip height depends only on the frame size (not on the text), so frames of one
    video stay the same size; long text is shrunk, then truncated, to fit the width.
    Middle dots ("octave 1/2 · step 3/4") are drawn as dots. Output dimensions are even.
    """
    img = _as_rgb_u8(frame)
    h, w = img.shape[:2]
    scale, thick, strip_h, baseline = _caption_geometry(h, w)
    out = np.empty((h + strip_h, w, 3), np.uint8)
    out[:h] = img
    _draw_caption(out[h:], text, scale, thick, baseline)
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
    img = _as_rgb_u8(image)
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
            scale, thick, strip_h, baseline = _caption_geometry(hh, ww)
            strip_h = min(strip_h, hh // 3)
            _draw_caption(img[hh - strip_h:], caption, scale, thick, min(baseline, strip_h - 1))
        return img
    if caption:
        return caption_bar(img, caption)
    return fit_even(img)


def _draw_legend(img: np.ndarray, lo: float, hi: float, label: str, colormap: str) -> None:
    """A colour scale in the top-right corner (in place): the colormap from ``lo`` (left) to ``hi`` (right, hot)."""
    h, w = img.shape[:2]
    scale = _font_scale(min(h, w)) * 0.8
    thick = _thickness(scale)
    cap, desc = _line_metrics(scale, thick)
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
    text, s = _fit_text(label, bar_w, scale, thick)
    _put_text(img, text, (x0 + margin, y0 + margin + cap), s, TEXT, thick)
    by = y0 + margin + cap + desc + margin
    ramp = np.linspace(0, 255, bar_w).round().astype(np.uint8)[None, :].repeat(bar_h, 0)
    img[by:by + bar_h, x0 + margin:x0 + margin + bar_w] = cv2.applyColorMap(ramp, _colormap_lut(colormap))
    ty = by + bar_h + margin + cap
    lo_t, hi_t = _fmt_tick(lo), _fmt_tick(hi) + " hot"
    _put_text(img, lo_t, (x0 + margin, ty), scale, TEXT, thick)
    _put_text(img, hi_t, (x0 + margin + bar_w - _text_width(hi_t, scale, thick), ty), scale, TEXT, thick)


# --------------------------------------------------------------------------- activation chart


class _ChartLayout:
    """Geometry of the chart panel for one (height, features, target?) combination."""

    def __init__(self, panel_h: int, n: int, y_range: tuple[float, float], layer: str, has_target: bool,
                 target_range: tuple[float, float] | None, total_steps: int):
        self.h = panel_h
        self.w = _even_up(int(round(PANEL_ASPECT * panel_h)))
        self.n = n
        self.scale = _font_scale(panel_h)
        self.small = self.scale * 0.8
        self.title_scale = self.scale * 0.9
        self.thick = _thickness(self.title_scale)
        cap, desc = _line_metrics(self.title_scale, self.thick)
        scap, sdesc = _line_metrics(self.small, 1)
        self.cap, self.desc, self.scap, self.sdesc = cap, desc, scap, sdesc
        pad = max(4, int(round(panel_h * 0.03)))
        self.pad = pad
        lo, hi = y_range
        self.ticks = _nice_ticks(lo, hi, target=4 if panel_h >= 240 else 3)
        self.tick_labels = [_fmt_tick(t) for t in self.ticks]
        label_w = max(_text_width(t, self.small, 1) for t in self.tick_labels)
        self.target_range = target_range
        self.total_steps = total_steps
        self.has_target = has_target
        if has_target:
            self.t_ticks = [target_range[0], target_range[1]]
            self.t_labels = [_fmt_tick(v) for v in self.t_ticks]
            label_w = max(label_w, max(_text_width(t, self.small, 1) for t in self.t_labels))
        # horizontal extent shared by both plots
        self.x0 = pad + label_w + max(3, pad // 2)
        self.x1 = self.w - pad  # exclusive
        # vertical: title row, bar plot, x labels, [target plot, its x labels]
        self.title_base = pad + cap
        top = self.title_base + desc + pad
        xlabel_h = scap + sdesc + max(2, pad // 2)
        avail = panel_h - top - pad - xlabel_h
        if has_target:
            t_block = int(round(avail * 0.38))
            t_plot_h = max(16, t_block - xlabel_h - pad)
            bar_h = avail - (t_plot_h + xlabel_h + pad)
        else:
            bar_h = avail
        self.y0 = top
        self.y1 = top + bar_h  # exclusive
        self.xlabel_base = self.y1 + max(2, pad // 2) + scap
        if has_target:
            self.ty0 = self.xlabel_base + sdesc + pad
            self.ty1 = self.ty0 + t_plot_h
            self.t_xlabel_base = self.ty1 + max(2, pad // 2) + scap
            self.step_label_w = max(_text_width("step 0", self.small, 1), _text_width(str(total_steps), self.small, 1))
        # column -> first feature mapping (np.maximum.reduceat groups features per pixel column)
        pw = self.x1 - self.x0
        self.starts = (np.arange(pw, dtype=np.int64) * n) // pw
        # with >= 3 px per bar, leave a 1 px gap between bars so individual features read as bars
        if pw >= 3 * n:
            last = np.ones(pw, bool)
            last[:-1] = self.starts[1:] != self.starts[:-1]
            self.col_mask = ~last
        else:
            self.col_mask = None
        self.rows = np.arange(self.y1 - self.y0, dtype=np.int32)[:, None]

    def bar_y(self, v: np.ndarray, lo: float, hi: float) -> np.ndarray:
        ph = self.y1 - self.y0
        return np.clip(np.rint((hi - v) * ((ph - 1) / (hi - lo))), 0, ph - 1).astype(np.int32)


@functools.lru_cache(maxsize=16)
def _layout(panel_h: int, n: int, y_range: tuple[float, float], layer: str, has_target: bool,
            target_range: tuple[float, float] | None, total_steps: int) -> _ChartLayout:
    return _ChartLayout(panel_h, n, y_range, layer, has_target, target_range, total_steps)


@functools.lru_cache(maxsize=16)
def _static_panel(panel_h: int, n: int, y_range: tuple[float, float], layer: str, has_ghost: bool,
                  has_target: bool, target_range: tuple[float, float] | None, total_steps: int,
                  target_label: str) -> np.ndarray:
    """Background, grid, ticks and labels of the chart panel (everything that does not change per frame).

    Returns (panel RGB, bar-plot code image holding the grid and zero line).
    """
    L = _layout(panel_h, n, y_range, layer, has_target, target_range, total_steps)
    lo, hi = y_range
    p = np.empty((L.h, L.w, 3), np.uint8)
    p[:] = PANEL_BG
    p[L.y0:L.y1, L.x0:L.x1] = PLOT_BG
    code = np.zeros((L.y1 - L.y0, L.x1 - L.x0), np.uint8)
    s, t = L.small, 1

    # title (+ legend on the right when it fits): try shorter titles before shrinking text
    avail = L.w - 2 * L.pad
    legend_items = [("step 0", GHOST, "line"), ("growth", BAR_GROWTH, "box")] if has_ghost else []
    sw = max(8, int(round(L.cap * 1.3)))
    legend_w = sum(sw + 3 + _text_width(lbl, s, t) + L.pad for lbl, _, _ in legend_items) - L.pad
    pre = f"{layer} {_SEP} " if layer else ""
    titles = [pre + "mean activation per feature", pre + "mean activation", pre + "mean act.",
              "mean activation per feature", "mean activation", "activation"]
    title = None
    if legend_items:
        room = avail - legend_w - 2 * L.pad
        title = next((c for c in titles if _text_width(c, L.title_scale, L.thick) <= room), None)
        if title is None:
            legend_items = []
    if title is None:
        title = next((c for c in titles if _text_width(c, L.title_scale, L.thick) <= avail), titles[-1])
    title_txt, title_s = _fit_text(title, avail, L.title_scale, L.thick)
    _put_text(p, title_txt, (L.pad, L.title_base), title_s, TEXT, L.thick)
    x = L.w - L.pad - legend_w
    for lbl, col, kind in legend_items:
        yb = L.title_base
        ym = yb - L.scap // 2
        if kind == "line":
            cv2.line(p, (x, ym), (x + sw, ym), col, 1)
        else:
            cv2.rectangle(p, (x, yb - L.scap), (x + sw, yb), col, -1)
        x = _put_text(p, lbl, (x + sw + 3, yb), s, TEXT_DIM, t) + L.pad

    # y grid + tick labels
    for v, lbl in zip(L.ticks, L.tick_labels):
        y = L.y0 + int(L.bar_y(np.array(v), lo, hi))
        code[y - L.y0] = _C_AXIS if v == 0 else _C_GRID
        tw = _text_width(lbl, s, t)
        ty = int(np.clip(y + L.scap // 2, L.y0 + L.scap, L.y1))
        _put_text(p, lbl, (L.x0 - tw - max(3, L.pad // 2), ty), s, TEXT_DIM, t)
    # left axis
    p[L.y0:L.y1, L.x0 - 1] = AXIS

    # x labels: first/last feature index + axis name
    _put_text(p, "0", (L.x0, L.xlabel_base), s, TEXT_DIM, t)
    last = str(n - 1)
    _put_text(p, last, (L.x1 - _text_width(last, s, t), L.xlabel_base), s, TEXT_DIM, t)
    name = f"feature ({n})"
    nw = _text_width(name, s, t)
    _put_text(p, name, ((L.x0 + L.x1 - nw) // 2, L.xlabel_base), s, TEXT_DIM, t)

    if has_target:
        tlo, thi = target_range
        p[L.ty0:L.ty1, L.x0:L.x1] = PLOT_BG
        p[L.ty0:L.ty1, L.x0 - 1] = AXIS
        p[L.ty1 - 1, L.x0:L.x1] = GRID
        p[L.ty0, L.x0:L.x1] = GRID
        if tlo < 0 < thi:
            yz = L.ty0 + int(round((thi - 0.0) / (thi - tlo) * (L.ty1 - L.ty0 - 1)))
            p[yz, L.x0:L.x1] = AXIS
        for v, lbl, y in ((thi, L.t_labels[1], L.ty0 + L.scap), (tlo, L.t_labels[0], L.ty1)):
            tw = _text_width(lbl, s, t)
            _put_text(p, lbl, (L.x0 - tw - max(3, L.pad // 2), y), s, TEXT_DIM, t)
        _put_text(p, "step 0", (L.x0, L.t_xlabel_base), s, TEXT_DIM, t)
        last = str(total_steps)
        _put_text(p, last, (L.x1 - _text_width(last, s, t), L.t_xlabel_base), s, TEXT_DIM, t)
    p.setflags(write=False)
    code.setflags(write=False)
    return p, code


def _draw_bars(p: np.ndarray, L: _ChartLayout, static_code: np.ndarray, means: np.ndarray,
               ghost: np.ndarray | None, lo: float, hi: float) -> None:
    rows = L.rows
    b = min(max(0.0, lo), hi)  # bars grow from zero (or from the range edge if 0 is outside it)
    vmax = np.maximum.reduceat(means, L.starts)
    vmin = np.minimum.reduceat(means, L.starts)
    ytop = L.bar_y(np.maximum(vmax, b), lo, hi)
    ybot = L.bar_y(np.minimum(vmin, b), lo, hi)
    bar = (rows >= ytop) & (rows <= ybot)
    if L.col_mask is not None:
        bar &= L.col_mask
    layer = bar.view(np.uint8) * np.uint8(_C_BAR)
    if ghost is not None:
        gmax = np.maximum.reduceat(ghost, L.starts)
        gmin = np.minimum.reduceat(ghost, L.starts)
        # growth: the part of a bar above its step-0 level (code _C_BAR + 1)
        yg = L.bar_y(np.maximum(gmax, b), lo, hi)
        layer += (bar & (rows < yg)).view(np.uint8)
    code = np.maximum(static_code, layer)
    code[int(L.bar_y(np.array(b), lo, hi))] = _C_AXIS  # zero line over the bars
    if ghost is not None:
        # step-0 outline: a 1 px staircase through each column's step-0 extreme
        gext = np.where(gmax - b >= b - gmin, gmax, gmin)
        yo = L.bar_y(gext, lo, hi)
        prev = np.empty_like(yo)
        prev[0] = yo[0]
        prev[1:] = yo[:-1]
        outline = (rows >= np.minimum(yo, prev)) & (rows <= np.maximum(yo, prev))
        np.maximum(code, outline.view(np.uint8) * np.uint8(_C_GHOST), out=code)
    p[L.y0:L.y1, L.x0:L.x1] = cv2.applyColorMap(code, _PLOT_LUT)


def _draw_target(p: np.ndarray, L: _ChartLayout, series: np.ndarray, label: str) -> None:
    tlo, thi = L.target_range
    x0, x1, y0, y1 = L.x0, L.x1, L.ty0, L.ty1
    s = L.small
    n = series.size
    if n:
        xs = x0 + np.arange(n, dtype=np.float64) * ((x1 - 1 - x0) / max(L.total_steps, 1))
        v = np.clip(series, tlo, thi)
        ys = y0 + (thi - v) * ((y1 - 1 - y0) / (thi - tlo))
        shift = 4
        pts = np.rint(np.stack([xs, ys], axis=1) * (1 << shift)).astype(np.int32)
        if n > 1:
            cv2.polylines(p, [pts.reshape(-1, 1, 2)], False, TARGET_LINE, 1, cv2.LINE_AA, shift)
        r = max(2, int(round(L.scap * 0.3)))
        cv2.circle(p, (int(pts[-1, 0]), int(pts[-1, 1])), r << shift, TARGET_LINE, -1, cv2.LINE_AA, shift)
        text = f"{label} {_fmt_value(float(series[-1]))}" if label else _fmt_value(float(series[-1]))
    else:
        text = label
    if text:
        # centred in the row under the plot, between the "step 0" and last-step labels
        room = (x1 - x0) - 2 * (L.step_label_w + L.pad)
        fitted, fs = _fit_text(text, max(10, room), s, 1)
        tw = _text_width(fitted, fs, 1)
        _put_text(p, fitted, ((x0 + x1 - tw) // 2, L.t_xlabel_base), fs, TARGET_TEXT, 1)


def _fmt_value(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{v:.2e}"
    return f"{v:.3f}" if a < 10 else f"{v:.1f}"


def activation_chart_frame(
    image: np.ndarray,
    means: np.ndarray,
    *,
    ghost: np.ndarray | None,
    y_range: tuple[float, float],
    caption: str,
    layer: str = "",
    target_series: np.ndarray | None = None,
    target_range: tuple[float, float] | None = None,
    target_label: str = "",
    total_steps: int | None = None,
) -> np.ndarray:
    """One video frame: the current image beside a bar chart of per-feature mean activation.

    ``means`` holds one value per feature (channel), in index order. Bars grow from zero;
    with ``ghost`` (the step-0 values) each bar's part above its step-0 level is drawn in
    a bright colour and the step-0 values as a light 1 px outline, so features that climb
    stand out from those that never rise. When there are more features than pixel columns,
    each column shows the max (and min, for negative values) of its features, which turns
    the bars into a filled profile.

    ``y_range`` fixes the y axis: compute it once over the whole video so frames compare.
    ``target_series`` (the target's probability or logit at every step so far) adds a line
    plot under the chart, with y axis ``target_range`` (default: the series' own min/max)
    and x axis 0..``total_steps``; ``target_label`` names it. Pass an empty series at the
    start of a video to keep the same layout before the first value exists.

    The chart panel is as tall as the image (at least ``MIN_PANEL_HEIGHT``; smaller images
    are scaled up to it) and ``PANEL_ASPECT`` times as wide; ``caption`` goes in a strip
    under the whole frame. Returns RGB uint8 with even width and height.
    """
    img = _as_rgb_u8(image)
    m = np.nan_to_num(np.asarray(means, dtype=np.float64).ravel(), nan=0.0)
    if m.size == 0:
        raise ValueError("means must hold at least one feature")
    g = None
    if ghost is not None:
        g = np.nan_to_num(np.asarray(ghost, dtype=np.float64).ravel(), nan=0.0)
        if g.shape != m.shape:
            raise ValueError(f"ghost has {g.size} values but means has {m.size}")
    lo, hi = _sanitize_range(y_range)

    ih, iw = img.shape[:2]
    panel_h = max(ih, MIN_PANEL_HEIGHT)
    if ih != panel_h:
        new_w = max(1, int(round(iw * panel_h / ih)))
        img = cv2.resize(img, (new_w, panel_h), interpolation=cv2.INTER_LINEAR)
        iw = new_w

    has_target = target_series is not None
    ts = None
    t_range = None
    steps = 0
    if has_target:
        ts = np.nan_to_num(np.asarray(target_series, dtype=np.float64).ravel(), nan=0.0)
        t_range = _sanitize_range(target_range, ts)
        steps = max(int(total_steps or 0), ts.size - 1, 1)

    n = m.size
    L = _layout(panel_h, n, (lo, hi), layer, has_target, t_range, steps)
    static, static_code = _static_panel(panel_h, n, (lo, hi), layer, g is not None, has_target, t_range, steps, target_label)

    cscale, cthick, strip_h, cbase = _caption_geometry(panel_h, iw + L.w)
    out = np.empty((panel_h + strip_h, iw + L.w, 3), np.uint8)
    out[:panel_h, :iw] = img
    panel = out[:panel_h, iw:]
    panel[:] = static
    _draw_bars(panel, L, static_code, m, g, lo, hi)
    if has_target:
        _draw_target(panel, L, ts, target_label)
    _draw_caption(out[panel_h:], caption, cscale, cthick, cbase)
    return fit_even(out)

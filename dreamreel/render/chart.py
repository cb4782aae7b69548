"""The activation-over-time chart: the current image beside per-feature mean activation bars.

Pure numpy + OpenCV, like ``draw``; frames are RGB ``uint8`` with even width and height.

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

import cv2
import numpy as np

from .draw import as_rgb_u8, caption_geometry, draw_caption, even_up, fit_even
from .text import (SEP, TEXT, TEXT_DIM, fit_text, fmt_tick, fmt_value, font_scale, line_metrics, nice_ticks,
                   put_text, text_width, thickness)

__all__ = [
    "activation_chart_frame",
    "MIN_PANEL_HEIGHT",
    "PANEL_ASPECT",
]

# Smallest chart panel height: below this Hershey text stops being legible, so
# small images are scaled up to this height instead.
MIN_PANEL_HEIGHT = 160
# Chart panel width / height.
PANEL_ASPECT = 1.3

# Palette (RGB).
PANEL_BG = (20, 21, 28)
PLOT_BG = (26, 28, 37)
GRID = (44, 47, 60)
AXIS = (125, 129, 146)
BAR_BASE = (86, 128, 186)  # bar up to its step-0 level (or whole bar without a ghost)
BAR_GROWTH = (255, 172, 58)  # part of a bar above its step-0 level
GHOST = (196, 198, 212)  # step-0 outline
TARGET_LINE = (112, 222, 150)
TARGET_TEXT = (168, 236, 190)  # label + current value under the target plot

# The bar plot is painted as a uint8 "code" image and coloured through this lookup table in
# one cv2.applyColorMap call: far cheaper than numpy boolean-mask assignment into RGB.
# Codes are ordered by drawing priority, so layers combine with np.maximum.
_C_BG, _C_GRID, _C_AXIS, _C_BAR, _C_GROWTH, _C_GHOST = range(6)
_PLOT_LUT = np.zeros((256, 1, 3), np.uint8)
for _code, _rgb in enumerate((PLOT_BG, GRID, AXIS, BAR_BASE, BAR_GROWTH, GHOST)):
    _PLOT_LUT[_code, 0] = _rgb
_PLOT_LUT.setflags(write=False)


# --------------------------------------------------------------------------- axes


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


# --------------------------------------------------------------------------- layout and panels


class _ChartLayout:
    """Geometry of the chart panel for one (height, features, target?) combination."""

    def __init__(self, panel_h: int, n: int, y_range: tuple[float, float], layer: str, has_target: bool,
                 target_range: tuple[float, float] | None, total_steps: int):
        self.h = panel_h
        self.w = even_up(int(round(PANEL_ASPECT * panel_h)))
        self.n = n
        self.scale = font_scale(panel_h)
        self.small = self.scale * 0.8
        self.title_scale = self.scale * 0.9
        self.thick = thickness(self.title_scale)
        cap, desc = line_metrics(self.title_scale, self.thick)
        scap, sdesc = line_metrics(self.small, 1)
        self.cap, self.desc, self.scap, self.sdesc = cap, desc, scap, sdesc
        pad = max(4, int(round(panel_h * 0.03)))
        self.pad = pad
        lo, hi = y_range
        self.ticks = nice_ticks(lo, hi, target=4 if panel_h >= 240 else 3)
        self.tick_labels = [fmt_tick(t) for t in self.ticks]
        label_w = max(text_width(t, self.small, 1) for t in self.tick_labels)
        self.target_range = target_range
        self.total_steps = total_steps
        self.has_target = has_target
        if has_target:
            self.t_ticks = [target_range[0], target_range[1]]
            self.t_labels = [fmt_tick(v) for v in self.t_ticks]
            label_w = max(label_w, max(text_width(t, self.small, 1) for t in self.t_labels))
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
            self.step_label_w = max(text_width("step 0", self.small, 1), text_width(str(total_steps), self.small, 1))
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
    legend_w = sum(sw + 3 + text_width(lbl, s, t) + L.pad for lbl, _, _ in legend_items) - L.pad
    pre = f"{layer} {SEP} " if layer else ""
    titles = [pre + "mean activation per feature", pre + "mean activation", pre + "mean act.",
              "mean activation per feature", "mean activation", "activation"]
    title = None
    if legend_items:
        room = avail - legend_w - 2 * L.pad
        title = next((c for c in titles if text_width(c, L.title_scale, L.thick) <= room), None)
        if title is None:
            legend_items = []
    if title is None:
        title = next((c for c in titles if text_width(c, L.title_scale, L.thick) <= avail), titles[-1])
    title_txt, title_s = fit_text(title, avail, L.title_scale, L.thick)
    put_text(p, title_txt, (L.pad, L.title_base), title_s, TEXT, L.thick)
    x = L.w - L.pad - legend_w
    for lbl, col, kind in legend_items:
        yb = L.title_base
        ym = yb - L.scap // 2
        if kind == "line":
            cv2.line(p, (x, ym), (x + sw, ym), col, 1)
        else:
            cv2.rectangle(p, (x, yb - L.scap), (x + sw, yb), col, -1)
        x = put_text(p, lbl, (x + sw + 3, yb), s, TEXT_DIM, t) + L.pad

    # y grid + tick labels
    for v, lbl in zip(L.ticks, L.tick_labels):
        y = L.y0 + int(L.bar_y(np.array(v), lo, hi))
        code[y - L.y0] = _C_AXIS if v == 0 else _C_GRID
        tw = text_width(lbl, s, t)
        ty = int(np.clip(y + L.scap // 2, L.y0 + L.scap, L.y1))
        put_text(p, lbl, (L.x0 - tw - max(3, L.pad // 2), ty), s, TEXT_DIM, t)
    # left axis
    p[L.y0:L.y1, L.x0 - 1] = AXIS

    # x labels: first/last feature index + axis name
    put_text(p, "0", (L.x0, L.xlabel_base), s, TEXT_DIM, t)
    last = str(n - 1)
    put_text(p, last, (L.x1 - text_width(last, s, t), L.xlabel_base), s, TEXT_DIM, t)
    name = f"feature ({n})"
    nw = text_width(name, s, t)
    put_text(p, name, ((L.x0 + L.x1 - nw) // 2, L.xlabel_base), s, TEXT_DIM, t)

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
            tw = text_width(lbl, s, t)
            put_text(p, lbl, (L.x0 - tw - max(3, L.pad // 2), y), s, TEXT_DIM, t)
        put_text(p, "step 0", (L.x0, L.t_xlabel_base), s, TEXT_DIM, t)
        last = str(total_steps)
        put_text(p, last, (L.x1 - text_width(last, s, t), L.t_xlabel_base), s, TEXT_DIM, t)
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
        text = f"{label} {fmt_value(float(series[-1]))}" if label else fmt_value(float(series[-1]))
    else:
        text = label
    if text:
        # centred in the row under the plot, between the "step 0" and last-step labels
        room = (x1 - x0) - 2 * (L.step_label_w + L.pad)
        fitted, fs = fit_text(text, max(10, room), s, 1)
        tw = text_width(fitted, fs, 1)
        put_text(p, fitted, ((x0 + x1 - tw) // 2, L.t_xlabel_base), fs, TARGET_TEXT, 1)


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
    img = as_rgb_u8(image)
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
    static, static_code = _static_panel(panel_h, n, (lo, hi), layer, g is not None, has_target, t_range, steps,
                                        target_label)

    cscale, cthick, strip_h, cbase = caption_geometry(panel_h, iw + L.w)
    out = np.empty((panel_h + strip_h, iw + L.w, 3), np.uint8)
    out[:panel_h, :iw] = img
    panel = out[:panel_h, iw:]
    panel[:] = static
    _draw_bars(panel, L, static_code, m, g, lo, hi)
    if has_target:
        _draw_target(panel, L, ts, target_label)
    draw_caption(out[panel_h:], caption, cscale, cthick, cbase)
    return fit_even(out)

"""Text on frames: Hershey text that fits a width, with middle dots drawn as dots, and round axis ticks.

Shared by the caption strips and overlays (``draw``) and the activation chart (``chart``).
"""

from __future__ import annotations

import functools
import math
import unicodedata

import cv2
import numpy as np

__all__ = ["SEP", "TEXT", "TEXT_DIM", "font_scale", "thickness", "line_metrics", "text_width", "fit_text",
           "put_text", "fmt_tick"]

TEXT = (228, 229, 235)  # RGB
TEXT_DIM = (150, 154, 168)

_FONT = cv2.FONT_HERSHEY_SIMPLEX
SEP = "\u00b7"  # middle dot: Hershey fonts are ASCII-only, so it is drawn as a filled circle
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


def _ascii(text: str) -> str:
    """Map text to what Hershey fonts can draw, keeping the middle dot separator."""
    out = []
    for ch in text:
        if ch == SEP or ord(ch) < 128:
            out.append(ch)
        elif ch in _ASCII_SUBST:
            out.append(_ASCII_SUBST[ch])
        else:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode("ascii")
            out.append(plain or "?")
    return "".join(out)


def font_scale(px: int) -> float:
    """Hershey font scale for a panel/frame whose governing dimension is ``px``."""
    return float(np.clip(px / 420.0, 0.36, 1.1))


def thickness(scale: float) -> int:
    return 1 if scale < 0.75 else 2


@functools.lru_cache(maxsize=64)
def line_metrics(scale: float, thick: int) -> tuple[int, int]:
    """(cap height above the baseline, descent below it) for a text line."""
    (_, h), base = cv2.getTextSize("Ag", _FONT, scale, thick)
    return h, base


def _sep_radius(scale: float) -> int:
    return max(1, int(round(scale * 2.6)))


@functools.lru_cache(maxsize=4096)
def text_width(text: str, scale: float, thick: int) -> int:
    parts = _ascii(text).split(SEP)
    r = _sep_radius(scale)
    w = sum(cv2.getTextSize(p, _FONT, scale, thick)[0][0] for p in parts if p)
    return w + (len(parts) - 1) * (2 * r + 2)


def fit_text(text: str, max_w: int, scale: float, thick: int, min_scale: float = 0.3) -> tuple[str, float]:
    """Shrink (then truncate with '..') ``text`` so that it is at most ``max_w`` pixels wide."""
    text = _ascii(text)
    while text_width(text, scale, thick) > max_w and scale > min_scale:
        scale = max(min_scale, round(scale * 0.92, 3))
    if text_width(text, scale, thick) > max_w:
        while len(text) > 1 and text_width(text + "..", scale, thick) > max_w:
            text = text[:-1]
        text = text.rstrip() + ".."
    return text, scale


def put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color, thick: int = 1) -> int:
    """Draw ``text`` with its baseline-left at ``org``; middle dots become filled circles.

    Returns the x coordinate just after the text.
    """
    x, y = int(org[0]), int(org[1])
    cap, _ = line_metrics(scale, thick)
    r = _sep_radius(scale)
    parts = _ascii(text).split(SEP)
    for i, part in enumerate(parts):
        if part:
            cv2.putText(img, part, (x, y), _FONT, scale, color, thick, cv2.LINE_AA)
            x += cv2.getTextSize(part, _FONT, scale, thick)[0][0]
        if i < len(parts) - 1:
            cv2.circle(img, (x + r + 1, y - int(round(cap * 0.42))), r, color, -1, cv2.LINE_AA)
            x += 2 * r + 2
    return x


def fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.0e}".replace("e+0", "e").replace("e-0", "e-")
    s = f"{v:.3g}"
    return s


def fmt_value(v: float) -> str:
    """A value beside its plot: 3 decimals below 10, 1 above, scientific far from 1."""
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{v:.2e}"
    return f"{v:.3f}" if a < 10 else f"{v:.1f}"


def nice_ticks(lo: float, hi: float, target: int = 4) -> list[float]:
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

"""The option table's value parsers: text (a flag, a preset's string) to a value, or ValueError.

Each parser checks the value's shape; ranges are the option table's (``options.LIMITS``). No torch here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from .errors import did_you_mean
from .schedule import looks_like_schedule, parse_schedule_string

Size = tuple[int, int]  # (width, height)

MAX_SIDE = 8192


def parse_size(text: str) -> int | Size:
    """``N`` (the output's longer side) or ``WxH`` (exact)."""
    t = str(text).strip().lower()
    if m := re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", t):
        w, h = int(m.group(1)), int(m.group(2))
        if w < 1 or h < 1:
            raise ValueError("width and height must be positive")
        return (w, h)
    if re.fullmatch(r"\d+", t):
        return int(t)
    raise ValueError("write N (longer side) or WxH, e.g. 512 or 640x360")


def parse_octaves(text: str) -> int | list[int]:
    """``N`` geometric octaves, or explicit longer-side sizes ``S1,S2,...``."""
    t = str(text).strip()
    if re.fullmatch(r"\d+", t):
        n = int(t)
        if not 1 <= n <= 12:
            raise ValueError("the number of octaves must be 1-12")
        return n
    parts = [p.strip() for p in t.strip("[]").split(",") if p.strip()]
    if not parts or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ValueError("write N or sizes S1,S2,..., e.g. 3 or 299,380,460")
    sizes = [int(p) for p in parts]
    if sizes != sorted(sizes):
        raise ValueError("octave sizes must grow, e.g. 299,380,460")
    return sizes


def parse_int_list(text: str) -> list[int]:
    parts = [p.strip() for p in str(text).strip("[]").split(",") if p.strip()]
    if not parts or not all(re.fullmatch(r"\d+", p) for p in parts):
        raise ValueError("write N or N1,N2,... (one per octave)")
    return [int(p) for p in parts]


def parse_schedule(text: str) -> list[tuple[float, float]]:
    """``A`` (constant), ``A:B`` (start to end), or one of those per octave: ``0.5:0.4,0.4:0.3``."""
    out = []
    for part in str(text).strip("[]").split(","):
        part = part.strip().strip("'\"")
        if not part:
            continue
        a, _, b = part.partition(":")
        try:
            start = float(a)
            end = float(b) if b else start
        except ValueError:
            raise ValueError("write A or A:B, or one per octave: A:B,C:D") from None
        if start < 0 or end < 0:
            raise ValueError("values must be >= 0")
        out.append((start, end))
    if not out:
        raise ValueError("write A or A:B")
    return out


def choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"choose one of {', '.join(choices)}")
        return text

    return parse


def positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise ValueError("must be >= 1")
    return v


def nonneg_int(text: str) -> int:
    v = int(text)
    if v < 0:
        raise ValueError("must be >= 0")
    return v


def nonneg_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError("not a finite number")
    if v < 0:
        raise ValueError("must be >= 0")
    return v


def positive_float(text: str) -> float:
    v = float(text)
    if v <= 0:
        raise ValueError("must be > 0")
    return v


def gpu_share(text: str) -> float:
    v = positive_float(text)
    if v > 1 and v != int(v) or v == float("inf"):
        raise ValueError("a fraction <= 1, or a whole number")
    return v


def ranged_float(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        v = float(text)
        if not lo <= v <= hi:
            raise ValueError
        return v

    return parse


def seconds_value(text: str) -> float:
    v = float(text)
    if not v >= 0 or v == float("inf"):
        raise ValueError
    return v


def crf_value(text: str) -> int:
    v = int(text)
    if not 0 <= v <= 51:
        raise ValueError("use 0 (lossless) to 51")
    return v


def parse_shift(text: str) -> tuple[float, float]:
    try:
        dx, dy = (float(v) for v in str(text).strip("[]()").split(","))
    except ValueError:
        raise ValueError("write DX,DY in pixels, e.g. 0,-2") from None
    return dx, dy


def flag_value(text: str) -> bool:
    if str(text).lower() in ("1", "true", "yes"):
        return True
    if str(text).lower() in ("0", "false", "no"):
        return False
    raise ValueError("write true or false")


FLOW_CHOICES = ("farneback", "raft", "raft_small", "raft_large", "none")


def flow_choice(text: str) -> str:
    if text not in FLOW_CHOICES:
        raise ValueError(did_you_mean(text, FLOW_CHOICES) or f"choose from {', '.join(FLOW_CHOICES)}")
    return text


def scheduled(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse``, or a schedule string (``0:(1.0), 60:(1.04)``: see ``schedule``) when the value holds a parenthesis."""
    def scheduled(text: str) -> Any:
        return parse_schedule_string(text) if looks_like_schedule(text) else parse(text)

    scheduled.__name__ = parse.__name__
    return scheduled


def camera_degrees(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError("not a finite number")
    return v

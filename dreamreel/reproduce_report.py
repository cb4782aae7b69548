"""The files ``dreamreel reproduce`` writes: the claims (``reproduce.Claim`` rows) as CSV and markdown, and a
contact sheet of the presets."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
import numpy as np
import torch

from .errors import DreamError
from .io.images import atomic_path, to_uint8


def _fmt(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e6):
        return str(int(v))
    return f"{v:.4g}"


def numbers_text(numbers: dict[str, float]) -> str:
    return "; ".join(f"{k}={_fmt(v)}" for k, v in numbers.items())


CSV_COLUMNS = ["id", "claim", "agrees", "numbers", "criterion", "note", "presets"]


def write_csv(path: Path, claims: Sequence) -> None:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    for c in claims:
        out.writerow([c.id, c.claim, c.agrees, numbers_text(c.numbers), c.criterion, c.note, " ".join(c.presets)])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def write_markdown(path: Path, claims: Sequence, header: dict[str, str]) -> None:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["# The article's claims, measured", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    lines += ["", "| # | claim (the article) | measured | criterion | agrees | note | presets |", "|---|---|---|---|---|---|---|"]
    for c in claims:
        lines.append("| " + " | ".join(cell(x) for x in (c.id, c.claim, numbers_text(c.numbers) or "-", c.criterion,
                                                             c.agrees, c.note or "-", ", ".join(c.presets) or "-")) + " |")
    lines.append("")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")


def contact_sheet(tiles: Sequence[tuple[str, torch.Tensor]], tile: int = 192, columns: int = 6) -> np.ndarray:
    """Labelled tiles (name under each image) in a grid; empty cells are white."""
    import cv2

    from .render import draw

    cells = []
    for name, image in tiles:
        a = to_uint8(image)
        h, w = a.shape[:2]
        f = tile / max(h, w)
        a = cv2.resize(a, (max(2, round(w * f)), max(2, round(h * f))), interpolation=cv2.INTER_AREA)
        canvas = np.full((tile, tile, 3), 255, np.uint8)
        y, x = (tile - a.shape[0]) // 2, (tile - a.shape[1]) // 2
        canvas[y:y + a.shape[0], x:x + a.shape[1]] = a
        cells.append(draw.caption_bar(canvas, name))
    if not cells:
        raise DreamError("no preset outputs for the contact sheet")
    ch, cw = cells[0].shape[:2]
    rows = math.ceil(len(cells) / columns)
    sheet = np.full((rows * ch, min(columns, len(cells)) * cw, 3), 255, np.uint8)
    for i, cell_image in enumerate(cells):
        r, c = divmod(i, columns)
        sheet[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw] = cell_image[:ch, :cw]
    return sheet

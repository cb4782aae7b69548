"""A still dream end to end: input -> engine (with recorders) -> image (+ file and sidecar)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import save_image, to_uint8
from ..io.sidecar import write_sidecar
from ..plan import DreamPlan
from . import runtime
from .runtime import Engine, Source, dream_report, first_frame, load_source


@dataclass
class StillResult:
    """A dreamt still: the image (HxWx3 uint8), where it was written (None: nowhere) and its report."""

    image: np.ndarray
    output: Path | None
    report: dict[str, Any]
    seconds: float


def dream_still(
    plan: DreamPlan,
    source: Source,
    output: Path | None,
    *,
    recorders: Sequence = (),
    show_progress: bool = True,
    sidecar_extra: dict | None = None,
    engine: Engine | None = None,
    desc: str = "dream",
    image=None,
) -> StillResult:
    """Dream a still; with ``output``, write it (atomically) and its sidecar.

    ``engine``: a loaded model to reuse (batch); by default one is loaded for ``plan``.
    """
    if image is None:
        image, size = load_source(source, plan, compact=bool(plan.tile) and not recorders)  # tiled: uint8 until dreamt
    else:
        size = plan.output_size((image.shape[-1], image.shape[-2]))
    settings = plan.settings(size)
    engine = engine or Engine.load(plan)
    t0 = time.perf_counter()
    first = first_frame(image, settings, plan.seed)
    for r in recorders:
        r.begin(first, settings, engine)
    result = runtime.run_dream(engine, first, settings, seed=plan.seed, callbacks=[r.on_step for r in recorders],
                       desc=desc, show_progress=show_progress)
    seconds = time.perf_counter() - t0
    array = to_uint8(result.image)
    if output is not None:
        save_image(output, array)
    data = dream_report(engine, settings, result, seconds, input=source.label, output=str(output), **(sidecar_extra or {}))
    for r in recorders:
        data.update(r.finish(result) or {})
    if output is not None:
        write_sidecar(output, data)
    return StillResult(array, output, data, seconds)

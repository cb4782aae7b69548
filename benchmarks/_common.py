"""Shared timing helpers: interleaved repeats in one process, medians, ratios."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(os.environ.get("DREAMREEL_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def interleaved(fns: dict, repeats: int = 5, stat=statistics.median) -> dict[str, float]:
    """Seconds of each callable (median by default, or ``stat=min``), run round-robin so machine noise hits them alike.

    One untimed warm-up round first, and the order flips every round, so no callable always runs first.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns.items())
    for r in range(repeats):
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: stat(v) for k, v in times.items()}


def machine() -> str:
    import os
    import platform

    import torch

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"

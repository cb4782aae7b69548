"""Media helpers shared by the video tests."""

from pathlib import Path

import imageio_ffmpeg
import numpy as np


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 10, **kwargs) -> Path:
    """Encode ``frames`` to ``path`` with ffmpeg (tiny synthetic clips for tests)."""
    h, w = frames[0].shape[:2]
    kwargs.setdefault("macro_block_size", 1)
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, **kwargs)
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return path

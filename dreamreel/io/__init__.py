"""Frames in and files out: ffmpeg, readers, streaming writers, sidecars (knows nothing of models).

The public surface, imported on first use (``import dreamreel.io`` loads nothing heavy)::

    from dreamreel.io import open_writer, read_frames, iter_frames, probe_video, load_image
"""

import importlib

_PUBLIC = {
    "open_writer": "writer", "read_frames": "outputs", "count_frames": "outputs", "kind_for": "outputs",
    "mux_audio": "outputs", "iter_frames": "readers", "probe_video": "readers", "load_image": "images",
    "write_sidecar": "sidecar",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""dreamreel: deep-dream stills, zoom videos, progress and activation animations, dreamt clips.

    import dreamreel
    still = dreamreel.dream("photo.jpg", steps=5)                 # HxWx3 uint8, the CLI's dream defaults
    frames = list(dreamreel.zoom("photo.jpg", frames=5))          # arrays, nothing written
    dreamreel.write_zoom("photo.jpg", "zoom.mp4", frames=24)      # a file and its sidecar
    dreamreel.write_clip("clip.mp4", "dreamt.mp4")                # audio kept
    dreamreel.write_batch(["photos/", "clips/*.mp4"], "out/")     # a folder of outputs and manifest.json

The verbs are imported on first use, so ``import dreamreel`` stays light (no torch).
"""

__version__ = "0.1.0"

__all__ = ["dream", "write_dream", "zoom", "write_zoom", "clip", "write_clip", "write_batch", "DreamError",
           "__version__"]

_VERBS = {"dream", "write_dream", "zoom", "write_zoom", "clip", "write_clip", "prepare_still", "prepare_zoom",
          "prepare_clip"}


def __getattr__(name):
    if name in _VERBS:
        from . import api

        return getattr(api, name)
    if name == "write_batch":  # beside the others; "batch" itself names the module
        from .batch import write_batch

        return write_batch
    if name == "DreamError":
        from .errors import DreamError

        return DreamError
    raise AttributeError(f"module 'dreamreel' has no attribute {name!r}")

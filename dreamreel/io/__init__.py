"""Frames in and files out: ffmpeg, readers, streaming writers, sidecars (knows nothing of models)."""

"""Music-driven videos: a track's loudness and onsets, frame by frame, drive a render's parameters.

``analyse(track, fps)`` decodes the track's first audio stream with the bundled ffmpeg (mono, 22.05 kHz)
and measures, for every output frame k (the samples from k/fps to (k+1)/fps):

- ``loudness``: the RMS of the frame's samples, divided by the track's largest (0 = silence, 1 = loudest frame);
- ``onset``: spectral flux, the sum of the increases of the log-magnitude spectrum from frame k-1 to k
  (Hann window over the frame's samples), divided by its largest (1 = the strongest attack; frame 0 is 0).

The frame count is the track's duration at ``fps`` (rounded), so a render of that many frames at ``fps``
lasts as long as the track, which is muxed into it.

``parse_react("zoom=1.00:1.06,lr=0.01:0.03@onset")`` maps features to parameters: each key goes linearly from
A (feature 0) to B (feature 1), following the loudness unless ``@onset`` says otherwise. ``react_values``
gives the per-frame values. Keys: zoom, rotate, shift_x, shift_y (motion), translation_z, rotation_3d_x/y/z, fov
(the 3D camera), lr, sigma (the dream step), steps.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DreamError
from ..options import ALIASES, LIMITS

SAMPLE_RATE = 22050
SILENCE_RMS = 1e-4  # about -80 dBFS: a track whose loudest frame is quieter than this is silent
REACT_KEYS = ("zoom", "rotate", "shift_x", "shift_y", "translation_z", "rotation_3d_x", "rotation_3d_y",
              "rotation_3d_z", "fov", "lr", "sigma", "steps")
FEATURES = ("loudness", "onset")


@dataclass
class AudioFeatures:
    path: Path
    fps: float
    duration: float  # seconds, from the decoded samples
    loudness: np.ndarray  # (frames,) in [0, 1]
    onset: np.ndarray  # (frames,) in [0, 1]
    peak_rms: float

    @property
    def frames(self) -> int:
        return len(self.loudness)

    def feature(self, name: str) -> np.ndarray:
        return self.loudness if name == "loudness" else self.onset

    def describe(self) -> dict:
        return {"track": str(self.path), "duration": round(self.duration, 4), "fps": self.fps, "frames": self.frames,
                "sample_rate": SAMPLE_RATE, "peak_rms": round(self.peak_rms, 6)}


def decode_mono(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The first audio stream as mono float32 samples, or a one-line DreamError (missing file, no audio)."""
    from ..io import ffmpeg

    p = Path(path)
    if not p.is_file():
        raise DreamError(f"audio track {str(p)!r} does not exist")
    proc = ffmpeg.run(["-i", os.fspath(p), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le",
                       "pipe:1"])
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace")
        if "matches no streams" in err or "does not contain any stream" in err:
            raise DreamError(f"{str(p)!r} has no audio track", "give --audio a file with sound (MP3, WAV, M4A, a video with audio)")
        last = err.strip().splitlines()[-1] if err.strip() else f"ffmpeg exit code {proc.returncode}"
        raise DreamError(f"cannot decode the audio of {str(p)!r}: {last}")
    samples = np.frombuffer(proc.stdout, dtype=np.float32)
    if samples.size == 0:
        raise DreamError(f"{str(p)!r} has no audio samples")
    return samples


def analyse(path: str | os.PathLike, fps: float, sample_rate: int = SAMPLE_RATE) -> AudioFeatures:
    """Per-frame loudness and onset strength at ``fps``, normalised to 0..1 (see the module's doc)."""
    samples = decode_mono(path, sample_rate)
    return features_from_samples(samples, fps, sample_rate, Path(path))


def features_from_samples(samples: np.ndarray, fps: float, sample_rate: int = SAMPLE_RATE,
                          path: Path = Path("samples")) -> AudioFeatures:
    duration = len(samples) / sample_rate
    n = max(1, int(round(duration * fps)))
    hop = sample_rate / fps
    bounds = [min(len(samples), int(round(k * hop))) for k in range(n + 1)]
    length = max(1, int(round(hop)))
    nfft = 1 << max(1, (length - 1).bit_length())
    window = np.hanning(length).astype(np.float32)
    rms = np.zeros(n, dtype=np.float64)
    flux = np.zeros(n, dtype=np.float64)
    prev = None
    for k in range(n):
        chunk = samples[bounds[k]:bounds[k + 1]].astype(np.float64)
        if chunk.size:
            rms[k] = float(np.sqrt(np.mean(chunk * chunk)))
        seg = np.zeros(length)
        seg[: min(length, chunk.size)] = chunk[:length]
        mag = np.log1p(100.0 * np.abs(np.fft.rfft(seg * window, nfft)))
        if prev is not None:
            flux[k] = float(np.maximum(mag - prev, 0).sum())
        prev = mag
    peak = float(rms.max())
    if peak < SILENCE_RMS:
        raise DreamError(f"the audio track {str(path)!r} is silent (loudest frame {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)",
                         "give --audio a track with sound")
    loud = rms / peak
    onset = flux / flux.max() if flux.max() > 0 else flux
    return AudioFeatures(path, float(fps), duration, loud.astype(np.float32), onset.astype(np.float32), peak)


@dataclass(frozen=True)
class React:
    key: str
    low: float
    high: float
    feature: str = "loudness"

    def value(self, x: float) -> float:
        v = self.low + (self.high - self.low) * float(x)
        return int(round(v)) if self.key == "steps" else v


def parse_react(text: str) -> list[React]:
    """``KEY=A:B[@FEATURE],...`` (FEATURE: loudness, the default, or onset), or a one-line DreamError."""
    out: list[React] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"([a-z_][a-z_0-9]*)\s*=\s*([-+0-9.eE]+)\s*:\s*([-+0-9.eE]+)\s*(?:@\s*([a-z]+))?", part)
        if not m:
            raise DreamError(f"bad --react item {part!r}", "write KEY=A:B or KEY=A:B@onset, e.g. zoom=1.00:1.06,lr=0.01:0.03")
        key, a, b, feature = ALIASES.get(m.group(1), m.group(1)), m.group(2), m.group(3), m.group(4) or "loudness"
        if key not in REACT_KEYS:
            raise DreamError(f"--react cannot drive {key!r}", f"use {', '.join(REACT_KEYS)}")
        if feature not in FEATURES:
            raise DreamError(f"--react: unknown audio feature {feature!r} in {part!r}", "use @loudness or @onset")
        try:
            low, high = float(a), float(b)
        except ValueError:
            raise DreamError(f"bad numbers in --react item {part!r}", "write KEY=A:B with numbers") from None
        limit = LIMITS[key]  # the range a flag of that name has
        for v in (low, high):
            if not math.isfinite(v) or not limit.holds(v):
                raise DreamError(f"--react {key} value {v:g} is out of range in {part!r}", limit.hint())
        if any(r.key == key for r in out):
            raise DreamError(f"--react gives {key!r} twice")
        out.append(React(key, low, high, feature))
    if not out:
        raise DreamError("--react is empty", "write KEY=A:B, e.g. zoom=1.00:1.06")
    return out


def react_values(features: AudioFeatures, reacts: list[React]) -> list[dict]:
    """Per frame: the audio features (rounded) and each reacting parameter's value."""
    out = []
    for k in range(features.frames):
        row = {"loudness": round(float(features.loudness[k]), 4), "onset": round(float(features.onset[k]), 4)}
        for r in reacts:
            row[r.key] = r.value(features.feature(r.feature)[k])
        out.append(row)
    return out


def clip_audio(src: Path, job, clip, folder: Path) -> Path | None:
    """The audio to mux under a clip's dreamt frames (``job``: clip.VideoJob, ``clip``: clip.ClipPlan): the source
    itself from its start, else its track cut at the first frame kept (the first at or after --start: frame k plays at k/fps) up to --end."""
    if job.start == 0:
        return src
    fps = clip.info.fps
    first = job.start if clip.info.variable_frame_rate or not fps else math.ceil(job.start * fps - 1e-6) / fps
    return audio_segment(src, first, job.end, folder)


def audio_segment(src: Path, start: float, end: float | None, folder: Path) -> Path | None:
    """The source's first audio track from ``start`` to ``end`` seconds, cut at the sample: decoded, trimmed
    and encoded to AAC. (A stream copy after an input seek starts at a packet the demuxer can seek to, in an
    MP4 often the video key frame before ``start``: the audio ran ahead by up to a GOP.)"""
    from ..io import ffmpeg

    out = folder / "audio.m4a"
    trim = f"atrim=start={start:.6f}" + (f":end={end:.6f}" if end is not None else "") + ",asetpts=PTS-STARTPTS"
    proc = ffmpeg.run(["-y", "-i", os.fspath(src), "-map", "0:a:0", "-vn", "-af", trim, "-c:a", "aac", "-b:a", "192k",
                       os.fspath(out)])
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        return None
    return out

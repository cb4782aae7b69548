"""The audio under a dreamt clip is the source's from the first frame kept, at any --start, with and without
--segments and in batch: measured by cross-correlating the output's track with the source's, both decoded by
ffmpeg on their timestamps."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.io.readers import probe_video

RATE = 8000
TINY = ["--size", "48", "--steps", "1", "-q"]


def _pcm(path: Path) -> np.ndarray:
    """Mono float PCM placed by timestamp (gaps filled), so sample i plays at i / RATE seconds."""
    import imageio_ffmpeg

    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0",
                          "-af", "aresample=async=1:min_hard_comp=0.001:first_pts=0", "-ac", "1", "-ar", str(RATE),
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32)


def audio_offset(source: Path, output: Path) -> tuple[float, float]:
    """(seconds into the source where the output's track best matches, normalised correlation there)."""
    a, b = _pcm(source), _pcm(output)
    n = len(b)
    assert 0 < n <= len(a)
    size = 1 << (len(a) + n).bit_length()
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)[:len(a) - n + 1]
    energy = np.sqrt(np.convolve(a * a, np.ones(n), "valid") * float(b @ b)) + 1e-12
    c = corr / energy
    k = int(np.argmax(c))
    return k / RATE, float(c[k])


@pytest.mark.parametrize("start, extra", [(0.37, []), (0.5, ["--end", "1.0"]), (0.3, ["--segments", "2"]),
                                          (0.6, ["batch"])], ids=["start", "start-end", "segments", "batch"])
def test_the_audio_starts_at_the_first_frame_kept(start, extra, tmp_path, clip):
    fps = probe_video(clip).fps
    if extra == ["batch"]:
        assert main(["batch", str(clip), "--out-dir", str(tmp_path), "--start", str(start), *TINY]) == 0
        out = tmp_path / "realshort.mp4"
    else:
        out = tmp_path / "v.mp4"
        assert main(["video", str(clip), "-o", str(out), "--start", str(start), *extra, *TINY]) == 0
    lag, corr = audio_offset(clip, out)
    first_kept = math.ceil(start * fps - 1e-6) / fps  # frame k plays at k / fps; the first at or after --start
    assert corr > 0.9, corr
    assert abs(lag - first_kept) < 0.5 / fps, (lag, first_kept)
    assert abs(lag - start) <= 1 / fps, (lag, start)
    frames = probe_video(out).n_frames
    assert abs(len(_pcm(out)) / RATE - frames / fps) < 1.5 / fps  # as long as the frames kept


def test_the_measure_finds_a_known_offset(tmp_path, clip):
    """The cross-correlation itself: a track cut at 0.25 s by ffmpeg is found 0.25 s in."""
    import imageio_ffmpeg

    cut = tmp_path / "cut.wav"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(clip), "-map", "0:a:0", "-af",
                    "atrim=start=0.25:end=0.9,asetpts=PTS-STARTPTS", str(cut)], check=True)
    lag, corr = audio_offset(clip, cut)
    assert abs(lag - 0.25) < 1 / RATE * 2 and corr > 0.99

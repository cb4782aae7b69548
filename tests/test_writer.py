"""dreamreel.io.writer: formats, streaming, atomic publishing, resume and audio.

Frames are tiny (33x21 and similar) so the whole file runs in a few seconds on CPU.
Read-back goes through ffmpeg/Pillow directly where it matters, not only through
the module under test.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageSequence

from dreamreel.io import ffmpeg, sinks
from dreamreel.io.writer import open_writer
from dreamreel.io.outputs import kind_for, mux_audio, read_frames

REALSHORT = Path(__file__).resolve().parents[2] / "shared" / "data" / "realshort.mp4"
needs_realshort = pytest.mark.skipif(not REALSHORT.is_file(), reason="needs shared test media")


def ramp(n: int, h: int = 21, w: int = 33) -> list[np.ndarray]:
    """Smooth frames (codec-friendly), frame i brighter than frame i-1."""
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        base = 30 + 25 * i
        f = np.stack([base + x, base + y, np.full_like(x, 200 - 10 * i)], -1)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def mp4_frames_and_fps(path) -> tuple[int, float]:
    n, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    gen = imageio_ffmpeg.read_frames(str(path))
    fps = next(gen)["fps"]
    gen.close()
    return n, fps


def streams(path) -> str:
    """ffmpeg's own description of the streams in ``path``."""
    p = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                       capture_output=True, text=True)
    return "\n".join(ln for ln in p.stderr.splitlines() if "Stream #" in ln)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def write(path, frames, **kw):
    with open_writer(path, **kw) as w:
        for f in frames:
            w.append(f)
    return w


# --------------------------------------------------------------------------- kind_for


def test_kind_for_follows_suffix_trailing_slash_and_existing_folder(tmp_path):
    assert kind_for("out/zoom.mp4") == "mp4"
    assert kind_for("ZOOM.MP4") == "mp4"
    assert kind_for(Path("a.gif")) == "gif"
    assert kind_for("renders/frames/") == "frames"
    assert kind_for("renders/frames") == "frames"  # no suffix
    dotted = tmp_path / "run.v2"
    dotted.mkdir()
    assert kind_for(dotted) == "frames"  # existing folder wins over the "suffix"


@pytest.mark.parametrize("name", ["clip.avi", "still.png", "clip.webm"])
def test_kind_for_rejects_unsupported_suffix_and_suggests_alternatives(name):
    with pytest.raises(ValueError, match=r"\.mp4.*\.gif.*folder"):
        kind_for(name)


# --------------------------------------------------------------------------- MP4


@pytest.mark.parametrize("name", ["gone.mp4", "gone.gif", "gone/"])
def test_reading_an_output_that_is_not_there_names_it(tmp_path, name):
    with pytest.raises(FileNotFoundError) as err:
        list(read_frames(tmp_path / name))
    assert str(tmp_path / "gone") in str(err.value) and "ffmpeg version" not in str(err.value)


def test_mp4_keeps_frame_count_and_fractional_fps(tmp_path):
    out = tmp_path / "clip.mp4"
    w = write(out, ramp(7, 20, 32), fps=30.02)
    assert w.frames_written == 7
    n, fps = mp4_frames_and_fps(out)
    assert n == 7
    assert fps == pytest.approx(30.02, abs=0.005)
    back = list(read_frames(out))
    assert np.abs(back[3].astype(int) - ramp(7, 20, 32)[3]).mean() < 4  # crf 18: close


def test_mp4_pads_odd_size_by_replicating_last_row_and_column(tmp_path):
    f = np.full((21, 33, 3), 128, np.uint8)
    f[:, -1] = (255, 0, 0)  # last column red
    f[-1, :-1] = (0, 0, 255)  # last row blue
    out = tmp_path / "odd.mp4"
    write(out, [f, f], fps=10)
    back = next(iter(read_frames(out)))
    assert back.shape == (22, 34, 3)
    assert np.abs(back[:21, :33].astype(int) - f).mean() < 8  # content kept, not cropped
    pad_col, pad_row = back[2:19, 33].astype(int), back[21, 2:31].astype(int)
    assert pad_col[:, 0].min() > 190 and pad_col[:, 1].max() < 70  # red, not black
    assert pad_row[:, 2].min() > 190 and pad_row[:, 0].max() < 70  # blue, not black


def test_frame_of_another_size_is_rejected_even_if_it_pads_to_the_same_size(tmp_path):
    with open_writer(tmp_path / "a.mp4") as w:
        w.append(np.zeros((21, 33, 3), np.uint8))
        with pytest.raises(ValueError, match="size"):
            w.append(np.zeros((22, 34, 3), np.uint8))
        with pytest.raises(ValueError, match="size"):
            w.append(np.zeros((40, 40, 3), np.uint8))
    assert mp4_frames_and_fps(tmp_path / "a.mp4")[0] == 1


def test_ffmpeg_output_is_never_printed(tmp_path, capfd):
    write(tmp_path / "q.mp4", ramp(3), fps=30.02)
    write(tmp_path / "q.gif", ramp(3), fps=30.02)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.skipif(os.name == "nt", reason="fake ffmpeg is a shell script")
def test_ffmpeg_failure_raises_with_its_last_lines_and_leaves_nothing(tmp_path, monkeypatch, capfd):
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Unknown encoder libx264: boom' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "exe", lambda: str(fake))
    out_dir = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        write(out_dir / "x.mp4", ramp(20))
    assert list(out_dir.iterdir()) == []
    assert capfd.readouterr().err == ""


# --------------------------------------------------------------------------- GIF


def test_gif_loops_forever_with_n_frames_and_durations_from_fps(tmp_path):
    out = tmp_path / "anim.gif"
    write(out, ramp(6), fps=12.5)
    with Image.open(out) as im:
        assert im.info["loop"] == 0  # NETSCAPE loop count 0 = forever
        assert im.n_frames == 6
        durations = [fr.info["duration"] for fr in ImageSequence.Iterator(im)]
    assert durations == [80] * 6


def test_gif_fractional_fps_keeps_total_duration(tmp_path):
    out = tmp_path / "anim.gif"
    write(out, ramp(9), fps=30.02)
    with Image.open(out) as im:
        total = sum(fr.info["duration"] for fr in ImageSequence.Iterator(im))
    assert total == pytest.approx(9 / 30.02 * 1000, abs=10)  # 1/100 s ticks, no drift


def test_gif_palette_keeps_colours_close(tmp_path):
    frames = ramp(4)
    out = tmp_path / "anim.gif"
    write(out, frames, fps=10)
    back = list(read_frames(out))
    assert [b.shape for b in back] == [(21, 33, 3)] * 4  # GIF needs no padding
    err = np.mean([np.abs(b.astype(int) - f).mean() for b, f in zip(back, frames)])
    assert err < 3


# --------------------------------------------------------------------------- frames folder


def test_frames_folder_numbers_pngs_from_zero_losslessly(tmp_path):
    out = tmp_path / "frames"
    frames = ramp(3)
    write(f"{out}/", frames)
    assert sorted(os.listdir(out)) == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    for got, want in zip(read_frames(out), frames):
        np.testing.assert_array_equal(got, want)


def test_append_converts_float_gray_and_rgba_frames(tmp_path):
    rgb = ramp(1)[0]
    rgba = np.concatenate([rgb, np.zeros((21, 33, 1), np.uint8)], -1)
    gray = rgb[..., 0]
    flt = rgb.astype(np.float32) / 255
    out = tmp_path / "conv/"
    write(out, [rgba, gray, flt, flt * 3 - 1])  # last one exercises clipping
    got = list(read_frames(out))
    np.testing.assert_array_equal(got[0], rgb)
    np.testing.assert_array_equal(got[1], np.repeat(gray[..., None], 3, -1))
    np.testing.assert_array_equal(got[2], rgb)
    clipped = np.clip(flt * 3 - 1, 0, 1)
    assert np.abs(got[3].astype(int) - np.round(clipped * 255)).max() <= 1


def test_channels_first_frame_is_rejected_with_a_hint(tmp_path):
    with open_writer(tmp_path / "x/") as w:
        with pytest.raises(ValueError, match="channels-first"):
            w.append(np.zeros((3, 21, 33), np.float32))
        w.append(np.zeros((21, 33, 3), np.float32))


def test_fresh_render_into_existing_folder_replaces_old_frames_only(tmp_path):
    out = tmp_path / "frames"
    write(out, ramp(4))
    (out / "notes.txt").write_text("keep me")
    write(out, ramp(2))
    assert sorted(os.listdir(out)) == ["frame_000000.png", "frame_000001.png", "notes.txt"]


# --------------------------------------------------------------------------- append / resume


def test_append_continues_frames_folder_numbering(tmp_path):
    out = tmp_path / "frames"
    write(out, ramp(5))
    w = write(out, ramp(2), append=True)
    assert w.frames_before == 5 and w.frames_written == 2
    assert sorted(os.listdir(out))[-2:] == ["frame_000005.png", "frame_000006.png"]
    assert len(list(read_frames(out))) == 7


@pytest.mark.parametrize("rate", [30.02, 29.97, 10])
def test_append_continues_mp4_without_reencoding_old_frames(tmp_path, rate):
    out = tmp_path / "clip.mp4"
    frames = ramp(7)
    write(out, frames[:4], fps=rate)
    old = list(read_frames(out))
    w = write(out, frames[4:], fps=rate, append=True)
    assert w.frames_before == 4 and w.frames_written == 3
    n, fps = mp4_frames_and_fps(out)
    assert n == 7 and fps == pytest.approx(rate, abs=0.005)
    back = list(read_frames(out))
    assert len(back) == 7  # decoded at the stream's rate: no gap at the join (a reader would repeat frames into it)
    for a, b in zip(old, back[:4]):
        np.testing.assert_array_equal(a, b)  # stream copy: bit-identical decode
    means = [b.mean() for b in back]
    assert means == sorted(means)  # old frames first, then the new ones, in order
    assert hidden(tmp_path) == []


def test_append_to_mp4_rejects_other_frame_size_or_fps(tmp_path):
    out = tmp_path / "clip.mp4"
    write(out, ramp(2), fps=24)
    with pytest.raises(ValueError, match="fps"):
        open_writer(out, fps=30, append=True)
    with open_writer(out, fps=24, append=True) as w:
        with pytest.raises(ValueError, match="does not match"):
            w.append(np.zeros((40, 40, 3), np.uint8))
        w.append(ramp(1)[0])
    assert mp4_frames_and_fps(out)[0] == 3


def test_append_continues_gif_and_keeps_it_looping(tmp_path):
    out = tmp_path / "anim.gif"
    frames = ramp(5)
    write(out, frames[:3], fps=10)
    old = list(read_frames(out))
    w = write(out, frames[3:], fps=10, append=True)
    assert w.frames_before == 3 and w.frames_written == 2
    with Image.open(out) as im:
        assert im.n_frames == 5 and im.info["loop"] == 0
    back = list(read_frames(out))
    for a, b in zip(old, back[:3]):
        assert np.abs(a.astype(int) - b).mean() < 1  # re-quantising a GIF frame is ~lossless


def test_append_without_existing_output_is_a_normal_open(tmp_path):
    w = write(tmp_path / "new.mp4", ramp(3), append=True)
    assert w.frames_before == 0
    assert mp4_frames_and_fps(tmp_path / "new.mp4")[0] == 3


# --------------------------------------------------------------------------- atomicity


@pytest.mark.parametrize("name", ["a.mp4", "a.gif", "a/"])
def test_close_publishes_only_the_output_and_no_temp_files(tmp_path, name):
    with open_writer(tmp_path / name) as w:
        w.append(ramp(1)[0])
        # while open, nothing exists at the final path yet
        assert not (tmp_path / name.rstrip("/")).exists()
    assert os.listdir(tmp_path) == [name.rstrip("/")]


@pytest.mark.parametrize("name", ["a.mp4", "a.gif"])
def test_abort_keeps_previous_file_untouched_and_removes_temps(tmp_path, name):
    out = tmp_path / name
    out.write_bytes(b"previous render")
    w = open_writer(out)
    for f in ramp(4):
        w.append(f)
    w.abort()
    assert out.read_bytes() == b"previous render"
    assert os.listdir(tmp_path) == [name]


def test_exception_inside_with_block_aborts(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with open_writer(tmp_path / "a.mp4") as w:
            w.append(ramp(1)[0])
            1 / 0
    assert os.listdir(tmp_path) == []


def test_keyboard_interrupt_inside_with_keeps_frames_so_far_playable(tmp_path):
    out = tmp_path / "a.mp4"
    with pytest.raises(KeyboardInterrupt):
        with open_writer(out, fps=30.02) as w:
            for i, f in enumerate(ramp(8)):
                if i == 5:
                    raise KeyboardInterrupt
                w.append(f)
    assert mp4_frames_and_fps(out) == (5, pytest.approx(30.02, abs=0.005))
    assert hidden(tmp_path) == []


def test_explicit_abort_inside_with_block_is_final(tmp_path):
    with open_writer(tmp_path / "a.gif") as w:
        w.append(ramp(1)[0])
        w.abort()
    assert os.listdir(tmp_path) == []


def test_close_without_frames_raises_and_writes_nothing(tmp_path):
    w = open_writer(tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="no frames"):
        w.close()
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError):
        w.append(ramp(1)[0])


# --------------------------------------------------------------------------- background thread


class GatedSink:
    """A sink that blocks on its first write until released: a very slow encoder."""

    def __init__(self):
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.written = 0

    def write(self, frame):
        self.entered.set()
        self.gate.wait(10)
        self.written += 1

    def finish(self):
        pass

    def kill(self):
        self.gate.set()


def test_append_blocks_when_queue_is_full_so_memory_is_bounded(tmp_path, monkeypatch):
    sink = GatedSink()
    monkeypatch.setattr(sinks, "open_sink", lambda *a, **k: sink)
    w = open_writer(tmp_path / "slow/", queue_size=2)
    done = []

    def producer():
        for f in ramp(6):
            w.append(f)
            done.append(1)

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    assert sink.entered.wait(5)
    deadline = time.monotonic() + 5
    while len(done) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    # one frame in the (stuck) encoder + queue_size waiting; the producer is blocked
    assert len(done) == 3 and t.is_alive()
    assert w._queue.maxsize == 2
    sink.gate.set()
    t.join(5)
    assert not t.is_alive()
    w.close()
    assert sink.written == 6 and w.frames_written == 6


class FailingSink:
    def __init__(self, fail_on: str):
        self.fail_on = fail_on

    def write(self, frame):
        if self.fail_on == "write":
            raise OSError(28, "No space left on device (simulated)")

    def finish(self):
        if self.fail_on == "finish":
            raise OSError(28, "No space left on device (simulated)")

    def kill(self):
        pass


def test_background_write_error_is_raised_by_a_later_append(tmp_path, monkeypatch):
    monkeypatch.setattr(sinks, "open_sink", lambda *a, **k: FailingSink("write"))
    w = open_writer(tmp_path / "a.mp4", queue_size=1)
    with pytest.raises(OSError, match="No space left"):
        for f in ramp(20):
            w.append(f)
            time.sleep(0.01)
    with pytest.raises(OSError, match="No space left"):
        w.close()
    assert os.listdir(tmp_path) == []


def test_background_finish_error_is_raised_by_close(tmp_path, monkeypatch):
    monkeypatch.setattr(sinks, "open_sink", lambda *a, **k: FailingSink("finish"))
    with pytest.raises(OSError, match="No space left"):
        write(tmp_path / "a.gif", ramp(3))
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- audio


@needs_realshort
def test_audio_from_muxes_source_audio_into_mp4(tmp_path):
    out = tmp_path / "dreamt.mp4"
    write(out, ramp(12), fps=30.02, audio_from=REALSHORT)
    info = streams(out)
    assert "Video: h264" in info and "Audio: aac" in info
    assert mp4_frames_and_fps(out)[0] == 12
    assert hidden(tmp_path) == []


@needs_realshort
def test_mux_audio_copies_video_stream_unchanged(tmp_path):
    video = tmp_path / "silent.mp4"
    write(video, ramp(6), fps=30.02)
    before = list(read_frames(video))
    assert "Audio" not in streams(video)
    assert mux_audio(video, REALSHORT, video) is True  # in place, atomically
    assert "Audio: aac" in streams(video)
    for a, b in zip(before, read_frames(video)):
        np.testing.assert_array_equal(a, b)
    assert hidden(tmp_path) == []


def test_mux_audio_returns_false_when_source_is_silent(tmp_path):
    video = tmp_path / "v.mp4"
    silent = tmp_path / "silent.mp4"
    write(video, ramp(3))
    write(silent, ramp(3))
    original = video.read_bytes()
    assert mux_audio(video, silent, tmp_path / "out.mp4") is False
    assert video.read_bytes() == original
    assert not (tmp_path / "out.mp4").exists()


@needs_realshort
def test_append_to_mp4_with_audio_keeps_its_soundtrack(tmp_path):
    out = tmp_path / "clip.mp4"
    write(out, ramp(3), fps=30.02, audio_from=REALSHORT)
    write(out, ramp(3), fps=30.02, append=True)
    assert "Audio: aac" in streams(out)
    # no gap where the segments meet (the old audio runs a little past its video)
    assert mp4_frames_and_fps(out) == (6, pytest.approx(30.02, abs=0.005))


@pytest.mark.parametrize("rate", [29.97, 10])
def test_a_resumed_mp4_has_no_gap_at_the_join(tmp_path, rate):
    """Flat frames make x264 use B-frames, whose reorder delay an edit list hides; a stream-copied join then
    left a gap of two frame periods, which a player holds and a constant-rate reader fills with repeats."""
    out = tmp_path / "clip.mp4"
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)]
    write(out, frames[:3], fps=rate)
    write(out, frames[3:], fps=rate, append=True)
    back = list(read_frames(out))
    assert len(back) == 5 and mp4_frames_and_fps(out) == (5, pytest.approx(rate, abs=0.005))
    assert [round(float(b.mean()) / 40) for b in back] == [0, 1, 2, 3, 4]

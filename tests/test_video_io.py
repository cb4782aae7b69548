"""dreamreel.render.flow: probing and streaming real clips, flow/warp conventions, occlusion, flicker metric, bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from mediautil import write_clip

from dreamreel.io.readers import VideoError, is_video_path, iter_frames, probe_video
from dreamreel.render.flow import (
    ClipFlow,
    clip_flow,
    compute_flow,
    flow_to_prev,
    occlusion_mask,
    resize_flow,
    temporal_inconsistency,
    warp,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REALSHORT = DATA / "realshort.mp4"
needs_realshort = pytest.mark.skipif(not REALSHORT.is_file(), reason="needs ../shared/data/realshort.mp4")


def texture(h: int, w: int, margin: int = 20, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture with a margin, so shifted crops see real new content at their borders."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((h + 2 * margin, w + 2 * margin, 3)).astype(np.float32), (0, 0), 2.0)
    big = (big - big.min()) / (big.max() - big.min()) * 255
    return big.astype(np.uint8)


def shifted_pair(h: int, w: int, dx: int, dy: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(prev, cur) where the content moves by (dx, dy): cur[y, x] = prev[y - dy, x - dx]."""
    big, m = texture(h, w, seed=seed), 20
    return big[m : m + h, m : m + w], big[m - dy : m - dy + h, m - dx : m - dx + w]


def panning_clip(n: int, h: int = 72, w: int = 96, step: int = 2) -> list[np.ndarray]:
    big, m = texture(h, w, margin=step * n + 4), step * n + 4
    return [big[m : m + h, m - i * step : m - i * step + w] for i in range(n)]


# ------------------------------------------------------------------------------------------------ probing


@needs_realshort
def test_probe_reads_size_rate_count_and_audio_of_real_clip():
    info = probe_video(REALSHORT)
    assert info.size == (320, 240)
    assert info.n_frames == 36
    assert info.fps == pytest.approx(30.02, abs=0.01)
    assert info.duration == pytest.approx(1.2, abs=0.05)
    assert info.has_audio is True
    assert info.variable_frame_rate is False


def test_probe_reports_no_audio_for_silent_synthetic_clip(tmp_path):
    path = write_clip(tmp_path / "silent.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)], fps=10)
    info = probe_video(path)
    assert (info.size, info.n_frames, info.has_audio) == ((64, 48), 5, False)
    assert info.fps == pytest.approx(10.0)
    assert info.path == path


def test_probe_flags_variable_frame_rate_and_reports_the_mean_rate(tmp_path):
    path = tmp_path / "vfr.mkv"
    # frames at 0, .1, .2, .3, .4, .5, .8, 1.1, 1.4, 1.7 s: 10 frames over 1.7 s + one mean interval
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x48:r=10:d=1",
         "-vf", "setpts='if(lt(N,5),N*0.1,0.5+(N-5)*0.3)/TB'", "-fps_mode", "vfr", "-c:v", "libx264", str(path)],
        check=True,
    )
    info = probe_video(path)
    assert info.variable_frame_rate is True and info.n_frames == 10
    assert info.fps == pytest.approx(9 / 1.7, rel=0.01)
    assert len(list(iter_frames(path))) == 10  # as decoded: no frame duplicated to a constant rate


# ------------------------------------------------------------------------------------------------ decoding


@needs_realshort
def test_iter_frames_streams_every_frame_as_rgb_uint8():
    frames = list(iter_frames(REALSHORT))
    assert len(frames) == 36
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in frames)


@needs_realshort
def test_iter_frames_start_end_keep_frames_with_timestamp_in_range_and_every_subsamples():
    full = list(iter_frames(REALSHORT))
    # frame i is at i / 30.02 s: 0.25 <= t < 0.75 holds frames 8..22
    part = list(iter_frames(REALSHORT, start=0.25, end=0.75))
    assert len(part) == 15
    np.testing.assert_array_equal(part[0], full[8])
    np.testing.assert_array_equal(part[-1], full[22])
    sub = list(iter_frames(REALSHORT, start=0.25, end=0.75, every=2))
    assert len(sub) == 8
    for got, want in zip(sub, full[8:23:2]):
        np.testing.assert_array_equal(got, want)


@needs_realshort
def test_iter_frames_resizes_with_inter_area_to_w_h():
    first = next(iter_frames(REALSHORT))
    small = next(iter_frames(REALSHORT, size=(97, 73)))
    assert small.shape == (73, 97, 3)
    np.testing.assert_array_equal(small, cv2.resize(first, (97, 73), interpolation=cv2.INTER_AREA))


def test_iter_frames_turns_odd_sized_grayscale_clip_into_rgb(tmp_path):
    values = [10, 120, 250]
    gray = [np.full((49, 65, 3), v, np.uint8) for v in values]
    path = write_clip(tmp_path / "gray.mkv", gray, codec="ffv1", pix_fmt_out="gray")  # lossless, 1 channel
    frames = list(iter_frames(path))
    assert [f.shape for f in frames] == [(49, 65, 3)] * 3
    assert [int(f[..., c].mean()) for f in frames for c in range(3)] == [v for v in values for _ in range(3)]


@needs_realshort
def test_iter_frames_with_no_frame_in_range_raises_video_error():
    with pytest.raises(VideoError, match="no frames between 5s and the end"):
        list(iter_frames(REALSHORT, start=5.0))


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"start": -1.0}, {"start": 1.0, "end": 0.5}, {"size": (0, 10)}])
def test_iter_frames_rejects_bad_arguments_before_decoding(kwargs, tmp_path):
    with pytest.raises(ValueError):
        iter_frames(tmp_path / "whatever.mp4", **kwargs)


def test_is_video_path_goes_by_suffix_and_treats_only_animated_gifs_as_video(tmp_path):
    from PIL import Image

    assert is_video_path("clip.MP4") and is_video_path("a/b.mov") and is_video_path("x.webm")
    assert not is_video_path("photo.png") and not is_video_path("photo.jpg")
    still, anim = tmp_path / "still.gif", tmp_path / "anim.gif"
    Image.new("RGB", (8, 8), "red").save(still)
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=100)
    assert is_video_path(anim) and not is_video_path(still)
    assert len(list(iter_frames(anim))) == 2


# ------------------------------------------------------------------------------------------------ flow and warp


@pytest.mark.parametrize("w,h,dx,dy", [(96, 72, 3, -2), (320, 240, 3, -2), (96, 72, 10, -7)])
def test_farneback_flow_recovers_a_translation_in_the_interior(w, h, dx, dy):
    prev, cur = shifted_pair(h, w, dx, dy)
    flow = compute_flow(prev, cur)
    assert flow.shape == (h, w, 2) and flow.dtype == np.float32
    m = max(8, abs(dx) + 3, abs(dy) + 3)
    err = np.linalg.norm(flow[m:-m, m:-m] - np.array([dx, dy], np.float32), axis=2)
    if abs(dx) <= 3:
        assert err.max() < 0.5
    else:  # a fast pan on a small frame: beyond Farneback's own pyramid, caught by the global-shift seed
        assert err.mean() < 0.2 and np.mean(err < 0.5) > 0.97


def test_warp_with_flow_from_current_to_previous_reproduces_current_frame():
    prev, cur = shifted_pair(72, 96, 3, -2)
    back = compute_flow(cur, prev)  # on cur's grid, pointing into prev
    err = np.abs(warp(prev, back).astype(np.float32) - cur)[8:-8, 8:-8].mean()
    naive = np.abs(prev.astype(np.float32) - cur)[8:-8, 8:-8].mean()
    assert err < 1.0 and naive > 10.0


def test_warp_moves_signed_float_detail_with_any_channel_count():
    rng = np.random.default_rng(1)
    detail = rng.normal(0, 30, (20, 24, 6)).astype(np.float32)  # dream - source: signed, 6 channels
    flow = np.zeros((20, 24, 2), np.float32)
    flow[..., 0] = -2.0  # out(x) = detail(x - 2)
    out = warp(detail, flow)
    assert out.dtype == np.float32 and out.shape == detail.shape
    np.testing.assert_allclose(out[:, 2:], detail[:, :-2], atol=1e-4)
    np.testing.assert_allclose(out[:, :2], detail[:, :1].repeat(2, axis=1), atol=1e-4)  # replicated border
    assert warp(detail[..., 0], np.zeros_like(flow)).shape == (20, 24)


def test_occlusion_mask_zeroes_disoccluded_border_strips_and_keeps_interior():
    prev, cur = shifted_pair(72, 96, 3, -2)  # content moves right 3, up 2: new content enters left and bottom
    back, mask = flow_to_prev(prev, cur)
    assert mask.shape == (72, 96) and mask.dtype == np.float32
    assert mask[:, :2].max() == 0.0  # left strip: not in prev
    assert mask[-1:, :].max() == 0.0  # bottom row: not in prev
    assert mask[6:-6, 6:-6].min() == 1.0
    np.testing.assert_array_equal(mask, occlusion_mask(back, compute_flow(prev, cur)))


def test_occlusion_mask_flags_forward_backward_disagreement():
    fwd = np.zeros((30, 40, 2), np.float32)
    fwd[..., 0] = 2.0
    bwd = -fwd.copy()
    bwd[10:20, 12:22] = [5.0, 0.0]  # region of b whose flow does not come back
    mask = occlusion_mask(fwd, bwd)
    assert mask[10:20, 10:20].max() == 0.0  # x + 2 lands in the bad region
    assert mask[:, :37].sum() == 30 * 37 - 100
    assert mask[:, 38:].max() == 0.0  # flow leaves the frame


def test_resize_flow_scales_vectors_with_the_grid():
    flow = np.tile(np.array([3.0, -2.0], np.float32), (24, 32, 1))
    big = resize_flow(flow, (64, 72))
    assert big.shape == (72, 64, 2)
    np.testing.assert_allclose(big[..., 0], 6.0)
    np.testing.assert_allclose(big[..., 1], -6.0)


def test_raft_without_cached_weights_names_the_checkpoint_and_where_to_put_it(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    frame = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(VideoError) as err:
        compute_flow(frame, frame, method="raft")
    msg = str(err.value)
    assert "raft_small_C_T_V2-01064c6d.pth" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    assert "\n" not in msg


def test_unknown_flow_method_is_a_video_error():
    frame = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(VideoError, match="unknown optical flow method 'lucas'"):
        compute_flow(frame, frame, method="lucas")


# ------------------------------------------------------------------------------------------------ flicker metric


def test_temporal_inconsistency_is_zero_for_a_static_clip():
    frame = texture(72, 96)[:72, :96]
    clip = [frame] * 4
    assert temporal_inconsistency(clip, clip_flow(clip)) < 0.05


def test_temporal_inconsistency_follows_motion_and_grows_with_per_frame_noise():
    src = panning_clip(6)
    flows = clip_flow(src)  # computed once, reused for every output
    assert isinstance(flows, ClipFlow) and len(flows) == 6
    rng = np.random.default_rng(0)

    def noisy(sigma):
        return [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in src]

    clean, low, high = (temporal_inconsistency(c, flows) for c in (src, noisy(4), noisy(12)))
    naive = np.mean([np.abs(a.astype(np.float32) - b).mean() for a, b in zip(src, src[1:])])
    assert clean < 1.0 < naive
    assert clean + 2 < low < high - 4
    # outputs at another resolution are scored with the same (resized) flows
    big = [cv2.resize(f, (192, 144), interpolation=cv2.INTER_LINEAR) for f in src]
    assert temporal_inconsistency(big, flows) < 2.0
    with pytest.raises(ValueError):
        temporal_inconsistency(src[:-1], flows)


@needs_realshort
def test_temporal_inconsistency_of_real_clip_rises_when_frames_flicker():
    src = list(iter_frames(REALSHORT, end=0.4, size=(96, 72)))
    flows = clip_flow(src)
    flicker = [np.clip(f.astype(np.int16) + (8 if i % 2 else -8), 0, 255).astype(np.uint8) for i, f in enumerate(src)]
    assert temporal_inconsistency(src, flows) + 8 < temporal_inconsistency(flicker, flows)


# ------------------------------------------------------------------------------------------------ bad input


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    (tmp / "empty.mp4").write_bytes(b"")
    (tmp / "notes.mp4").write_text("these are my holiday notes, not a video\n" * 20)
    bad = {"empty": tmp / "empty.mp4", "text": tmp / "notes.mp4", "missing": tmp / "missing.mp4"}
    writer = imageio_ffmpeg.write_frames(str(tmp / "zero.mp4"), (64, 48), fps=10)
    writer.send(None)
    writer.close()  # no frame sent: ffmpeg leaves a container without any stream
    bad["zero-frame"] = tmp / "zero.mp4"
    png = DATA / "chelsea.png"
    if not png.is_file():
        png = Path(__file__).resolve().parents[1] / "dreamreel" / "assets" / "demo.png"
    (tmp / "photo.mp4").write_bytes(png.read_bytes())
    bad["png renamed"] = tmp / "photo.mp4"
    if REALSHORT.is_file():
        (tmp / "cut.mp4").write_bytes(REALSHORT.read_bytes()[:2000])
        bad["truncated"] = tmp / "cut.mp4"
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(REALSHORT), "-vn", "-c", "copy", str(tmp / "audio.mp4")],
            check=True,
        )
        bad["audio only"] = tmp / "audio.mp4"
    return bad


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    return _bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("kind", ["empty", "text", "missing", "zero-frame", "png renamed", "truncated", "audio only"])
def test_bad_input_raises_one_line_video_error_naming_the_file(kind, bad_inputs):
    if kind not in bad_inputs:
        pytest.skip("needs realshort.mp4")
    path = bad_inputs[kind]
    for call in (probe_video, iter_frames):
        with pytest.raises(VideoError) as err:
            call(path)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"cannot read video '{path}': ")
        assert len(msg) < 250


def test_bad_input_messages_say_what_is_wrong(bad_inputs):
    expect = {
        "empty": "empty",
        "missing": "file not found",
        "zero-frame": "no video frames",
        "png renamed": "still image",
        "truncated": "cut short",
        "audio only": "no video stream",
    }
    for kind, words in expect.items():
        if kind in bad_inputs:
            with pytest.raises(VideoError, match=words):
                probe_video(bad_inputs[kind])

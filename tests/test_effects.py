"""Masks, seamless loops, guide images, music-driven zooms, tiles (tiny sizes, real model and ffmpeg)."""

import json
import subprocess

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from dreamreel.cli import main
from dreamreel.errors import DreamError


def _small_input(tmp_path, data_dir, size=(120, 80)):
    from dreamreel.engine import resize
    from dreamreel.io.images import load_image, save_image

    p = tmp_path / "in.png"
    save_image(p, resize(load_image(data_dir / "chelsea.png"), size))
    return p


# ---------------------------------------------------------------- masks


def test_half_mask_dreams_one_half_and_keeps_the_other_exactly(tmp_path, data_dir):
    src = _small_input(tmp_path, data_dir)
    m = np.zeros((80, 120), np.uint8)
    m[:, :60] = 255
    iio.imwrite(tmp_path / "half.png", m)
    out = tmp_path / "d.png"
    assert main(["dream", str(src), "-o", str(out), "--octaves", "2", "--steps", "3", "--mask", str(tmp_path / "half.png"),
                 "--mask-feather", "6", "-q"]) == 0
    a, b = iio.imread(src).astype(int), iio.imread(out).astype(int)
    d = np.abs(a - b)
    assert d[:, 60:].max() <= 2  # measured: 0
    assert d[:, :54].mean() > 3.0  # the dreamt half changed (inside the feathered edge)
    assert json.loads((tmp_path / "d.json").read_text())["parameters"]["mask"] == str(tmp_path / "half.png")


def test_mask_of_another_aspect_or_unreadable_exits_2_and_writes_nothing(tmp_path, data_dir, capsys):
    src = _small_input(tmp_path, data_dir)
    iio.imwrite(tmp_path / "sq.png", np.zeros((50, 50), np.uint8))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for mask in ("sq.png", "bad.png", "missing.png"):
        out = tmp_path / f"o-{mask}"
        assert main(["dream", str(src), "-o", str(out), "--octaves", "1", "--mask", str(tmp_path / mask), "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "mask" in err[0]
        assert not out.exists()
    # the same aspect at another size is resized
    iio.imwrite(tmp_path / "big.png", np.full((160, 240), 255, np.uint8))
    assert main(["dream", str(src), "-o", str(tmp_path / "ok.png"), "--octaves", "1", "--steps", "1",
                 "--mask", str(tmp_path / "big.png"), "-q"]) == 0


def test_feather_softens_inward_only():
    from dreamreel.engine.masks import feather_inward

    m = torch.zeros(1, 1, 40, 40)
    m[..., :, :20] = 1
    f = feather_inward(m, 8)
    assert float(f[..., :, 20:].max()) == 0.0  # black stays black
    assert float(f[0, 0, 20, 19]) < 0.2 and float(f[0, 0, 20, 5]) == pytest.approx(1.0, abs=1e-4)
    row = f[0, 0, 20, :20]
    assert bool((row[1:] <= row[:-1] + 1e-6).all())  # monotone ramp down toward the edge


# ---------------------------------------------------------------- loops


def test_loop_writer_order_and_the_circle_has_no_jump():
    from dreamreel.render.loop import LoopWriter, loop_order

    class Sink:
        def __init__(self):
            self.frames = []

        def append(self, f):
            self.frames.append(f)

    order = loop_order(6, 2)
    assert [t for t, h, _ in order] == [6, 7, 2, 3, 4, 5] and [h for _, h, _ in order] == [0, 1, -1, -1, -1, -1]
    sink = Sink()
    w = LoopWriter(sink, 6, 2, rotate=False)
    for k in range(8):  # a "zoom" where frame k has value 10k: each step changes by 10
        assert not w.done
        w.append(np.full((2, 2, 3), 10 * k, np.uint8))
    assert w.done and len(sink.frames) == 6
    values = [int(f[0, 0, 0]) for f in sink.frames]
    # fade 0: mostly 60 (tail) with a little of 0 (head); fade 1: mostly 10 (head); then 20..50
    assert values[2:] == [20, 30, 40, 50]
    assert values[0] == round(60 * (1 - 0.15625)) and values[1] == round(70 * 0.15625 + 10 * 0.84375)


def test_zoom_loop_gif_wraps_no_harder_than_its_median_change(tmp_path, data_dir):
    from dreamreel.render.loop import loop_seam

    out = tmp_path / "z.gif"
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(out), "--frames", "12", "--fps", "8", "--size", "96",
                 "--steps", "1", "--first-octaves", "1", "--loop", "-q"]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 12
    s = loop_seam(list(frames))
    assert s["seam"] <= s["median_step"]
    side = json.loads((tmp_path / "z.json").read_text())
    assert side["loop"]["rendered_frames"] == 16 and len(side["per_frame"]) == 16
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(tmp_path / "r.gif"), "--loop", "--resume", "-q"]) == 2


# ---------------------------------------------------------------- audio


def test_audio_features_follow_loudness_and_attacks():
    from dreamreel.render.audio import features_from_samples, parse_react, react_values

    sr, fps = 8000, 10
    t = np.arange(sr * 2) / sr
    env = np.where(t < 1, 0.1, 0.8).astype(np.float32)  # quiet second, loud second
    x = (env * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    f = features_from_samples(x, fps, sr)
    assert f.frames == 20
    assert f.loudness[15] == pytest.approx(1.0, abs=0.02) and f.loudness[5] == pytest.approx(0.125, abs=0.02)
    assert int(np.argmax(f.onset)) == 10  # the attack at 1 s
    rows = react_values(f, parse_react("zoom=1.0:1.05,lr=0.01:0.03@onset"))
    assert rows[15]["zoom"] == pytest.approx(1.05, abs=0.002) and rows[5]["zoom"] == pytest.approx(1.00625, abs=0.002)
    assert rows[10]["lr"] == pytest.approx(0.03)
    for bad in ("zoom=1", "size=1:2", "zoom=0:1", "zoom=1:2@bass", "zoom=1:2,zoom=1:3"):
        with pytest.raises(DreamError):
            parse_react(bad)


def test_zoom_to_music_lasts_the_track_carries_it_and_zooms_with_loudness(tmp_path, data_dir):
    from dreamreel.render.audio import analyse
    from dreamreel.io.readers import probe_video
    from dreamreel.io.outputs import read_frames

    track = data_dir / "realshort.mp4"
    out = tmp_path / "z.mp4"
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(out), "--audio", str(track), "--fps", "12",
                 "--react", "zoom=1.0:1.05", "--size", "64", "--steps", "1", "--first-octaves", "1", "-q"]) == 0
    f = analyse(track, 12)
    frames = list(read_frames(out))
    assert len(frames) == f.frames == round(f.duration * 12)
    assert abs(len(frames) / 12 - f.duration) <= 0.5 / 12
    assert probe_video(out).has_audio
    side = json.loads((tmp_path / "z.json").read_text())
    z = np.array([r["zoom"] for r in side["per_frame"][1:]])
    loud = np.array([r["loudness"] for r in side["per_frame"][1:]])
    assert np.allclose(z, 1.0 + 0.05 * loud, atol=1e-3)
    assert z.max() - z.min() > 0.02
    assert side["audio"]["frames"] == f.frames and side["audio"]["muxed"] is True


def test_bad_audio_exits_2_with_one_line_and_nothing_written(tmp_path, data_dir, capsys):
    import imageio_ffmpeg

    silent = tmp_path / "silent.wav"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono",
                    "-t", "0.5", str(silent)], check=True)
    cases = [(["--audio", str(silent)], "silent"), (["--audio", str(data_dir / "coffee.png")], "no audio"),
             (["--audio", str(tmp_path / "none.mp3")], "does not exist"), (["--react", "zoom=1:2"], "--audio"),
             (["--audio", str(data_dir / "realshort.mp4"), "--frames", "5"], "--frames")]
    for i, (flags, words) in enumerate(cases):
        out = tmp_path / f"z{i}.mp4"
        assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(out), "--size", "64", "-q", *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
        assert not out.exists()


# ---------------------------------------------------------------- guide


def test_guided_dream_moves_activations_toward_the_guide(tmp_path, data_dir):
    out = tmp_path / "g.png"
    assert main(["dream", str(data_dir / "chelsea.png"), "-o", str(out), "--guide", str(data_dir / "coffee.png"),
                 "--size", "128", "--octaves", "2", "--steps", "5", "-q"]) == 0
    g = json.loads((tmp_path / "g.json").read_text())["guide"][0]
    assert g["match_end"] > g["match_start"] + 0.03
    assert g["distance_end"] < g["distance_start"] - 0.05


def test_guide_composes_with_other_terms(lite0, coffee):
    from dreamreel.engine import Dreamer, resize
    from dreamreel.engine.guide import Guide, guide
    from dreamreel.engine.objectives import layer

    spec, model = lite0
    image = resize(coffee, (96, 64))
    both = (layer("block10") + 0.5 * guide(image, "block10")).bind(spec)
    d = Dreamer(model, both)
    assert any(isinstance(t, Guide) and t.features is not None for _, t in both.terms())
    _, acts = d.evaluate(resize(coffee, (128, 85)))
    parts = [w * t(acts) for w, t in both.terms()]
    assert float(both(acts)) == pytest.approx(float(parts[0] + parts[1]), rel=1e-5)
    # the guide's own image is at distance 0 from itself at its own size
    alone = guide(image, "block10").bind(spec)
    Dreamer(model, alone)
    _, acts = d.evaluate(image)
    assert float(alone.distance(acts)) == pytest.approx(0.0, abs=1e-3) and float(alone.match(acts)) == pytest.approx(1.0, abs=1e-4)


def test_unreadable_guide_exits_2(tmp_path, data_dir, capsys):
    (tmp_path / "bad.png").write_bytes(b"nope")
    for g in ("bad.png", "missing.png"):
        out = tmp_path / "g.png"
        assert main(["dream", str(data_dir / "coffee.png"), "-o", str(out), "--guide", str(tmp_path / g), "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "guide" in err[0]
        assert not out.exists()


# ---------------------------------------------------------------- tiles


def test_tile_windows_are_a_partition_of_unity():
    from dreamreel.engine.tiles import starts, windows

    for length, tile, overlap, offset in [(500, 128, 16, 0), (500, 128, 16, 77), (130, 128, 32, 5), (100, 128, 16, 3)]:
        total = torch.zeros(length)
        for s, n, w in windows(length, tile, overlap, offset):
            assert 0 <= s and s + n <= length
            total[s : s + n] += w
        assert torch.allclose(total, torch.ones(length), atol=1e-5)
    assert starts(500, 128, 16, 0) == [0, 112, 224, 336, 372]


def test_tiled_gradient_agrees_with_the_whole_image(lite0, coffee):
    from dreamreel.engine import Dreamer, resize
    from dreamreel.engine.objectives import layer
    from dreamreel.engine.tiles import tiled_gradient

    spec, model = lite0
    d = Dreamer(model, layer("block10").bind(spec))
    image = resize(coffee, (192, 128))
    full, v_full, _ = d.gradient(image)
    same, _, _ = tiled_gradient(d, image, (0, 0), 192, 24)  # one tile: exactly the whole image
    assert torch.equal(full, same)
    tiled, v, acts = tiled_gradient(d, image, (0, 0), 112, 24, torch.Generator().manual_seed(0))
    cos = float(torch.nn.functional.cosine_similarity(full.flatten(), tiled.flatten(), dim=0))
    assert cos > 0.6 and acts == {}  # measured 0.70


def test_tiled_gradient_buffer_is_bfloat16_on_the_cpu_and_agrees_with_float32(lite0, coffee, monkeypatch):
    """On the CPU the tiled dream's full-size gradient buffer is bfloat16 (half the memory of the largest buffer
    after the image): each tile is blended in float32 and rounded once, the conditioning and the step run on
    float32 strips; the gradient and one step from it agree with the float32 buffer's to bfloat16 rounding.
    CUDA keeps float32."""
    from dreamreel.engine import Dreamer, DreamSettings, Octave, resize, tiles
    from dreamreel.engine.objectives import layer

    assert tiles.grad_dtype("cpu") == torch.bfloat16 and tiles.grad_dtype("cuda") == torch.float32
    spec, model = lite0
    d = Dreamer(model, layer("block10").bind(spec))
    image = resize(coffee, (192, 128))
    f32, v32, _ = tiles.tiled_gradient(d, image, (0, 0), 112, 24, torch.Generator().manual_seed(0))
    b16, v16, _ = tiles.tiled_gradient(d, image, (0, 0), 112, 24, torch.Generator().manual_seed(0), dtype=torch.bfloat16)
    assert f32.dtype == torch.float32 and b16.dtype == torch.bfloat16 and b16.stride() == f32.stride()
    assert torch.equal(v32, v16)
    err = (b16.float() - f32).abs()
    assert float(err.max()) < 2**-7 * float(f32.abs().max())  # measured 0.0038
    assert float(err.mean()) < 0.004 * float(f32.abs().mean())  # measured 0.0017

    def step(dtype):
        monkeypatch.setattr(tiles, "CPU_GRAD_DTYPE", dtype)
        s = DreamSettings((Octave((192, 128), 1, (0.02, 0.02), (0.5, 0.5)),), jitter=4, lapnorm=3, color="decorrelated",
                          tile=112, tile_overlap=24)
        return d.dream(image, s, generator=torch.Generator().manual_seed(2), evaluate_end=False).image

    a, b = step(torch.float32), step(torch.bfloat16)
    diff, strength = float((a - b).abs().mean()) * 255, float((a - image).abs().mean()) * 255
    assert 0 < diff < 0.01 * strength  # measured: 0.009 of 4.8 grey levels (the dream does use the bfloat16 buffer)


class _HalfMask:
    """A mask source for DreamSettings: the left half, with a soft band in the middle."""

    def at(self, size, device):
        w, h = size
        m = torch.zeros(1, 1, h, w, device=device)
        m[..., : w // 2] = 1
        m[..., w // 2 - 6 : w // 2 + 6] = 0.5
        return m


def _reference_blur(image, sigma):
    """gaussian_blur as it was before the tiled path shared its taps (radius <= 3, reflect-padded)."""
    import math

    h, w = image.shape[-2:]
    radius = max(1, min(int(math.ceil(3 * sigma)), h - 1, w - 1))
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    taps = [t / sum(taps) for t in taps]
    padded = torch.nn.functional.pad(image, (radius, radius, radius, radius), mode="reflect")
    rows = padded[..., :, 0:w] * taps[0]
    for i in range(1, 2 * radius + 1):
        rows.add_(padded[..., :, i : i + w], alpha=taps[i])
    out = rows[..., 0:h, :] * taps[0]
    for i in range(1, 2 * radius + 1):
        out.add_(rows[..., i : i + h, :], alpha=taps[i])
    return out


def test_untiled_dream_is_bit_identical_to_the_original_step(lite0, coffee):
    """tile=0 keeps the original whole-image step: the engine's output equals this loop, bit for bit."""
    from dreamreel.engine import Dreamer, DreamSettings, Octave, gaussian_blur, resize
    from dreamreel.engine.conditioning import condition_gradient
    from dreamreel.engine.objectives import layer

    spec, model = lite0
    d = Dreamer(model, layer("block10").bind(spec))
    image = resize(coffee, (120, 80))
    mask = _HalfMask()
    oct_ = Octave((120, 80), 3, (0.03, 0.015), (0.6, 0.3))
    s = DreamSettings((oct_,), jitter=6, lapnorm=3, color="decorrelated", mask=mask)
    got = d.dream(image, s, generator=torch.Generator().manual_seed(3), evaluate_end=False).image
    g = torch.Generator().manual_seed(3)
    x = d.prepare(image.clamp(0, 1))
    m = mask.at((120, 80), d.device)
    for i in range(oct_.steps):
        shift = tuple(torch.randint(-6, 7, (2,), generator=g).tolist())
        grad = condition_gradient(d.gradient(x, shift)[0], lapnorm_levels=3, color="decorrelated")
        new = torch.addcmul(x, grad, oct_.lr_at(i) / (grad.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8))
        x = torch.lerp(x, _reference_blur(new, oct_.sigma_at(i)).clamp(0, 1), m)
    x = torch.where(m > 0, x, d.prepare(image.clamp(0, 1)))
    assert torch.equal(got, x)
    for sigma in (0.3, 0.5, 1.0):
        assert torch.equal(gaussian_blur(x, sigma), _reference_blur(x, sigma))


def test_lean_tiled_step_matches_the_whole_image_step(monkeypatch):
    """Strip by strip, in place (lapnorm, colour, mean|g|, blur halo, clamp, mask): the whole-image step, to rounding."""
    from dreamreel.engine import DreamSettings, gaussian_blur, strips
    from dreamreel.engine.conditioning import _down, condition_gradient, lapnorm, lapnorm_
    from dreamreel.engine.update import lean_update

    monkeypatch.setattr(strips, "STRIP_ELEMENTS", 600)  # strips of 16 rows: many strip borders
    g = torch.Generator().manual_seed(0)
    for h, w in ((101, 67), (64, 96)):
        grad = torch.randn(1, 3, h, w, generator=g).contiguous(memory_format=torch.channels_last)
        assert float((strips.down(grad) - _down(grad)).abs().max()) < 1e-4  # measured: 2e-5 at odd sizes
        ref = lapnorm(grad, 4)
        assert float((lapnorm_(grad.clone(), 4) - ref).abs().max()) < 1e-5 * float(ref.abs().max())
        x = torch.rand(1, 3, h, w, generator=g).contiguous(memory_format=torch.channels_last)
        mask = _HalfMask().at((w, h), "cpu")
        for sigma, color, lap, m in ((0.8, "decorrelated", 4, None), (0.5, "luminance", 0, mask), (0.0, "rgb", 3, mask)):
            s = DreamSettings((), lapnorm=lap, color=color)
            c = condition_gradient(grad, lapnorm_levels=lap, color=color)
            want = gaussian_blur(torch.addcmul(x, c, 0.02 / (c.abs().mean(dim=(1, 2, 3), keepdim=True) + 1e-8)), sigma)
            want = want.clamp(0, 1) if m is None else torch.lerp(x, want.clamp(0, 1), m)
            got = x.clone()
            lean_update(got, grad.clone(), 0.02, sigma, s, m)
            assert float((got - want).abs().max()) < 1e-5, (h, w, sigma, color)


def test_tiled_dream_runs_lean_and_agrees_with_the_untiled_dream(lite0, coffee):
    """One tile covering the image: the lean path (strips, in place, a uint8 source read strip by strip) gives the
    untiled dream to rounding; across octaves too (the carry's rounding differs by an ulp, which this network's
    gradient can amplify); with 4 tiles the dream differs (other gradients) but is as strong."""
    from dreamreel.engine import Dreamer, DreamSettings, Octave, resize
    from dreamreel.engine.objectives import layer
    from dreamreel.io.images import to_uint8

    spec, model = lite0
    d = Dreamer(model, layer("block10").bind(spec))
    image = resize(coffee, (160, 108))
    u8 = torch.from_numpy(to_uint8(image)).permute(2, 0, 1)[None]
    one = (Octave((160, 108), 3, (0.02, 0.015), (0.5, 0.25)),)
    two = (Octave((114, 77), 2, (0.03, 0.02), (0.6, 0.3)), Octave((160, 108), 2, (0.02, 0.015), (0.5, 0.25)))

    def run(src, tile, octs, **kw):
        s = DreamSettings(octs, jitter=4, lapnorm=3, color="decorrelated", tile=tile, tile_overlap=16, **kw)
        return d.dream(src, s, generator=torch.Generator().manual_seed(2), evaluate_end=False).image

    def grey(a, b):
        return float((a - b).abs().mean()) * 255

    for src in (image, u8):
        assert grey(run(src, 0, one), run(src, 192, one)) < 0.02  # measured: 1e-5 (float), 0.002 (uint8) grey levels
        whole = run(src, 0, two)
        assert grey(whole, run(src, 192, two)) < 0.1 * grey(whole, image)  # measured: 4e-6 (float), 0.15 of 3.6 (uint8)
    masked = run(u8, 192, two, mask=_HalfMask())
    assert torch.equal(masked[..., 86:], u8[..., 86:].float() / 255)  # outside the mask: the source exactly
    tiled = run(image, 96, two)
    assert 0.7 < grey(tiled, image) / grey(whole, image) < 1.4


def test_tiled_dream_from_the_cli_and_bad_tiles(tmp_path, data_dir, capsys):
    out = tmp_path / "t.png"
    assert main(["dream", str(data_dir / "coffee.png"), "-o", str(out), "--size", "160", "--octaves", "1", "--steps", "2",
                 "--tile", "96", "-q"]) == 0
    assert iio.imread(out).shape == (107, 160, 3)
    assert json.loads((tmp_path / "t.json").read_text())["parameters"]["tile"] == 96
    capsys.readouterr()
    for flags in (["--tile", "16"], ["--tile", "64", "--tile-overlap", "40"]):
        o = tmp_path / "x.png"
        assert main(["dream", str(data_dir / "coffee.png"), "-o", str(o), *flags, "-q"]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not o.exists()


def test_a_tiled_still_keeps_an_8bit_input_uint8_unless_recorded(tmp_path, data_dir):
    """The CLI and the API load a tiled still's 8-bit input as uint8 (a quarter of float32: 290 MB less at 8K);
    untiled, or with a recorder (they read the start image as float32), it is float32."""
    from dreamreel import api

    path = str(data_dir / "coffee.png")
    assert api.prepare_still(path, tile=96).image.dtype == torch.uint8
    assert api.prepare_still(path).image.dtype == torch.float32
    assert api.prepare_still(path, tile=96, progress=str(tmp_path / "p.gif")).image.dtype == torch.float32
    a = api.dream(path, tile=96, size=160, octaves=1, steps=1)
    assert a.shape == (107, 160, 3) and a.dtype == np.uint8


def test_clip_with_a_mask_video_keeps_the_masked_out_half_of_each_frame(tmp_path, data_dir):
    from dreamreel.io.writer import open_writer
    from dreamreel.io.readers import iter_frames

    masks = tmp_path / "m.mp4"
    with open_writer(masks, fps=30, crf=0) as w:
        for _ in range(4):
            m = np.zeros((48, 64, 3), np.uint8)
            m[:, :32] = 255
            w.append(m)
    out = tmp_path / "v.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(tmp_path / "v"), "--size", "64", "--flow", "none",
                 "--end", "0.1", "--mask", str(masks), "-q"]) == 0
    import os

    dreamt = [iio.imread(tmp_path / "v" / p) for p in sorted(os.listdir(tmp_path / "v"))]
    source = list(iter_frames(data_dir / "realshort.mp4", end=0.1, size=(64, 48)))
    assert len(dreamt) == len(source) >= 3
    for d, s in zip(dreamt, source):
        diff = np.abs(d.astype(int) - s)
        assert diff[:, 34:].max() <= 2 and diff[:, :28].mean() > 2
    assert not out.exists()

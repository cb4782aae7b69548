"""Bad input, hostile input: exit 2, one line under 200 characters, no traceback, nothing written.

Most cases stop at validation (--dry-run, or a check before the model loads), so they run in-process in
milliseconds; the few real renders are tiny.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.errors import DreamError
from dreamreel.options import LIMITS, OPTIONS, OPTION_KEYS, parse_value

#: Which command takes each option group's flags (recordings: dream takes them all).
COMMAND_OF_GROUP = {"dream": "dream", "zoom": "zoom", "video": "video", "output": "zoom", "recording": "dream",
                    "batch": "batch", "segments": "video", "frames": "zoom"}
TINY = ["--size", "64", "--octaves", "1", "--steps", "1"]
ZTINY = [*TINY, "--first-octaves", "1", "--frames", "2"]


def _bad_values(key: str) -> list[str]:
    """Non-finite values, and one value below and one above the option's range."""
    lim = LIMITS[key]
    pair = key == "shift"  # DX,DY
    below = [] if lim.lo is None else [lim.lo - 1 if not lim.above else lim.lo]
    above = [] if lim.hi is None else [lim.hi * 10 + 1]
    numbers = ["nan", "inf", "-inf", "1e999"] + [f"{v:.15g}" for v in below + above]
    if key in ("size", "octaves", "first_octaves", "steps", "jitter", "seed", "frames", "every", "crf", "jobs",
               "smooth_every", "progress_every", "overlay_feature"):  # whole numbers: their parser refuses nan/inf
        numbers = [str(int(float(v))) for v in numbers[4:] if float(v) >= 0] + ["-1"]
    return [f"{v},0" if pair else v for v in numbers]


CASES = [(o.key, v) for o in OPTIONS if o.key in LIMITS for v in _bad_values(o.key)]


@pytest.fixture()
def pic(tmp_path) -> Path:
    import cv2

    p = tmp_path / "pic.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(p), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    return p


def _snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            out[str(p.relative_to(folder))] = hashlib.md5(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else "-"
    return out


def run_bad(argv, capsys, folder: Path, words: str | None = None) -> str:
    """Run the CLI in-process; assert exit 2, exactly one stderr line under 200 characters, no traceback, and
    nothing created, changed or removed in ``folder``. Returns the line."""
    before = _snapshot(folder)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert len(lines[0]) < 200 and "Traceback" not in err and lines[0].startswith("dreamreel: error: "), err
    if words:
        assert words in lines[0], err
    assert _snapshot(folder) == before
    return lines[0]


def test_every_numeric_option_has_a_range_row():
    """The class, not the example: an option whose values are numbers must have a LIMITS row."""
    for o in OPTIONS:
        try:
            sample = o.parse("1,1" if o.parse.__name__ == "parse_shift" else "1")
        except ValueError:
            continue
        numeric = isinstance(sample, (int, float)) and not isinstance(sample, bool) or (
            isinstance(sample, (list, tuple)) and sample and not isinstance(sample[0], str))
        if numeric:
            assert o.key in LIMITS, o.key
    assert set(LIMITS) <= set(OPTION_KEYS)


@pytest.mark.parametrize("key, value", CASES, ids=[f"{k}={v}" for k, v in CASES])
def test_a_bad_number_in_any_option_is_one_line_before_any_work(key, value, tmp_path, pic, capsys, data_dir):
    from dreamreel.options import command_keys

    o = OPTION_KEYS[key]
    command = COMMAND_OF_GROUP[o.group]
    if command != "batch" and key not in command_keys(command):  # a recording only frame renders take
        command = next(c for c in ("zoom", "video") if key in command_keys(c))
    out = tmp_path / "out"
    if command == "dream":
        argv = ["dream", pic, "-o", tmp_path / "o.png", "--dry-run"]
    elif command == "zoom":
        argv = ["zoom", pic, "-o", tmp_path / "o.mp4", "--dry-run"]
    elif command == "video":
        argv = ["video", data_dir / "realshort.mp4", "-o", tmp_path / "o.mp4", "--dry-run"]
    else:
        argv = ["batch", pic, "--out-dir", out]
    line = run_bad(argv + [f"{o.flag}={value}"], capsys, tmp_path)  # --rotate=-inf: argparse takes -inf for a flag
    assert o.flag in line or key in line


@pytest.mark.parametrize("key", ["lr", "sigma", "zoom", "rotate", "fps", "octave_scale", "blend", "video_fps"])
def test_python_keywords_and_presets_go_through_the_same_checks(key, tmp_path, pic, capsys):
    from dreamreel import api

    with pytest.raises(DreamError, match="finite"):
        api.resolve_values("zoom", {key: float("nan")})
    with pytest.raises(DreamError, match="finite"):
        api.resolve_values("zoom", {key: float("inf")})
    if key in ("lr", "sigma", "octave_scale", "zoom", "rotate", "fps", "blend"):
        preset = tmp_path / "p.toml"
        preset.write_text(f"{key} = nan\n")
        run_bad(["zoom", pic, "-o", tmp_path / "z.mp4", "--preset", preset, "--dry-run"], capsys, tmp_path, "finite")


@pytest.mark.parametrize("spec", ["block10@nan", "block10@inf", "block10@1e9", "block10:0-3@-inf"])
def test_a_layer_weight_must_be_finite(spec, tmp_path, pic, capsys):
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--layer", spec, "--dry-run"], capsys, tmp_path, "weight")
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--target", "bubble@" + spec.rpartition("@")[2], "--dry-run"],
            capsys, tmp_path, "weight")


def test_steps_0_and_first_octaves_that_shrink_are_refused_like_octaves(tmp_path, pic, capsys):
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--steps", "0"], capsys, tmp_path, "--steps")
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--octaves", "96,64"], capsys, tmp_path, "must grow")
    run_bad(["zoom", pic, "-o", tmp_path / "z.mp4", "--first-octaves", "96,64"], capsys, tmp_path, "must grow")


def test_batch_with_a_bad_number_exits_2_before_any_work(tmp_path, pic, capsys):
    out = tmp_path / "b"
    run_bad(["batch", pic, "--out-dir", out, "--sigma", "nan"], capsys, tmp_path, "sigma")
    assert not out.exists()


@pytest.mark.parametrize("device, words", [("foo", "--device"), ("meta", "--device"), ("cuda:x", "--device"),
                                           ("cuda", "cuda"), ("mps", "mps")])
def test_a_bad_or_absent_device_is_one_short_line(device, words, tmp_path, pic, capsys):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is present")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("MPS is present")
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--device", device, "--dry-run"], capsys, tmp_path, words)
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--device", device, *TINY], capsys, tmp_path, words)


def test_huge_seed_is_refused(tmp_path, pic, capsys):
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--seed", str(2**70), *TINY], capsys, tmp_path, "--seed")


# ---------------------------------------------------------------- timelines and presets


@pytest.mark.parametrize("body, words", [
    ("[[key]]\nframe = 0\nzoom = nan\n", "finite"),
    ("[[key]]\nframe = 0\nrotate = inf\n", "finite"),
    ("[[key]]\nframe = 0\nshift = [nan, 1]\n", "finite"),
    ("[[key]]\nframe = 0\nzoom = 0\n", "zoom"),
    ("[[key]]\nframe = 0\nlayer = 5\n", "layer"),
    ("[[key]]\nframe = true\nzoom = 1.1\n", "'frame'"),
    ("[[key]]\nframe = 0\nsteps = true\n", "steps"),
    ("[[key]]\nframe = 0\nsteps = 0\n", "steps"),
    ("[[key]]\nframe = 0\nzoom = true\n", "zoom"),
    ("[[key]]\nframe = 0\ntarget = \"bubble@nan\"\n", "weight"),
    ("key = [1, 2]\n", "[[key]]"),
    ("[[key]]\nframe = 0\nlayer = \"blok10\"\n", "block10"),
    ("[[key]]\nframe = 0\n[[key]]\nframe = 9\nlayer = \"nosuch\"\n", "nosuch"),
])
def test_a_bad_timeline_is_refused_at_dry_run_too(body, words, tmp_path, pic, capsys):
    t = tmp_path / "t.toml"
    t.write_text(body)
    for extra in (["--dry-run"], ZTINY):
        run_bad(["zoom", pic, "-o", tmp_path / "z.mp4", "--timeline", t, *extra], capsys, tmp_path, words)


def test_zoom_dry_run_prints_the_timelines_values(tmp_path, pic, capsys):
    t = tmp_path / "t.toml"
    t.write_text('[[key]]\nframe = 0\nzoom = 1.2\nrotate = 3\nlayer = "block3"\nsteps = 5\n'
                 '[[key]]\nframe = 10\nzoom = 1.0\nlayer = "block5"\n')
    assert main(["zoom", str(pic), "-o", str(tmp_path / "z.mp4"), "--timeline", str(t), "--zoom", "1.5",
                 "--first-octaves", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "zoom 1.18  rotate 3 deg" in out  # frame 1: between the keys at 0 (1.2) and 10 (1.0)
    assert out.count("layer('block3', 'square')") == 2 and "5 steps" in out and "block10" not in out


def test_a_preset_that_is_not_utf8_is_one_line(tmp_path, pic, capsys):
    p = tmp_path / "bad.toml"
    p.write_bytes(b"\xff\xfe = 1\n")
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--preset", p, "--dry-run"], capsys, tmp_path, "UTF-8")
    t = tmp_path / "t.toml"
    t.write_bytes(b"[[key]]\nframe = 0\n\xff = 1\n")
    run_bad(["zoom", pic, "-o", tmp_path / "z.mp4", "--timeline", t, "--dry-run"], capsys, tmp_path, "UTF-8")


def test_a_given_size_wins_over_a_presets_octave_sizes(tmp_path, pic, capsys):
    assert main(["dream", str(pic), "-o", str(tmp_path / "o.png"), "--preset", "lite0-directed-lion", "--size", "300",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "output     " in out and "300x225" in out and "345" not in out
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--octaves", "100,200", "--size", "300", "--dry-run"], capsys,
            tmp_path, "disagree")


# ---------------------------------------------------------------- paths


def test_an_output_or_sidecar_never_lands_on_an_input(tmp_path, capsys, data_dir):
    import shutil

    pic = tmp_path / "pic.json"  # an image with an odd name: its sidecar-to-be name
    shutil.copy(data_dir / "coffee.png", pic)
    run_bad(["dream", pic, "-o", tmp_path / "pic.png", *TINY], capsys, tmp_path, "sidecar")
    run_bad(["dream", pic, "-o", tmp_path / "pic.png", "--dry-run"], capsys, tmp_path, "sidecar")
    p2 = tmp_path / "p.png"
    shutil.copy(data_dir / "coffee.png", p2)
    os.link(p2, tmp_path / "hard.png")
    run_bad(["dream", p2, "-o", tmp_path / "hard.png", *TINY], capsys, tmp_path, "overwrite the input")
    preset = tmp_path / "q.toml"
    preset.write_text("steps = 1\n")
    timeline = tmp_path / "z.json"
    timeline.write_text("[[key]]\nframe = 0\n")
    run_bad(["zoom", p2, "-o", tmp_path / "z.gif", "--timeline", timeline, *ZTINY], capsys,
            tmp_path, "overwrite the input")
    frames = tmp_path / "fr"
    frames.mkdir()
    shutil.copy(data_dir / "coffee.png", frames / "frame_000000.png")
    run_bad(["zoom", frames / "frame_000000.png", "-o", str(frames) + "/", *ZTINY], capsys, tmp_path, "frame files")


@pytest.mark.parametrize("make, output, words", [
    (lambda d: (d / "loop1").symlink_to(d / "loop2") or (d / "loop2").symlink_to(d / "loop1"), "loop1", "symlink"),
    (lambda d: (d / "afile").write_text("x"), "afile/", "is a file"),
    (lambda d: (d / "afile").write_text("x"), "afile/o.mp4", "is a file"),
    (lambda d: None, "new\nline.mp4", "control character"),
    (lambda d: None, "tab\there/", "control character"),
])
def test_an_output_path_that_cannot_be_written_is_one_line(make, output, words, tmp_path, pic, capsys):
    make(tmp_path)
    run_bad(["zoom", pic, "-o", str(tmp_path) + "/" + output, *ZTINY], capsys, tmp_path, words)


def test_a_still_output_that_is_a_folder_is_one_line(tmp_path, pic, capsys):
    (tmp_path / "dir.png").mkdir()
    run_bad(["dream", pic, "-o", tmp_path / "dir.png", *TINY], capsys, tmp_path, "is a folder")


def test_newline_paths_are_refused_everywhere(tmp_path, pic, capsys):
    bad = tmp_path / "a\nb.png"
    run_bad(["dream", pic, "-o", bad, *TINY], capsys, tmp_path, "control character")
    run_bad(["dream", pic, "-o", tmp_path / "o.png", "--progress", tmp_path / "p\n.gif", *TINY], capsys, tmp_path,
            "control character")
    run_bad(["zoom", pic, "-o", tmp_path / "z.mp4", "--timeline", tmp_path / "t\n.toml"], capsys, tmp_path,
            "control character")
    run_bad(["batch", str(pic) + "\n", "--out-dir", tmp_path / "b"], capsys, tmp_path, "control character")
    run_bad(["batch", pic, "--out-dir", str(tmp_path / "b") + "\n"], capsys, tmp_path, "control character")


def test_a_folder_output_with_a_dot_is_a_png_folder(tmp_path, pic, capsys):
    out = str(tmp_path / "frames.v1") + "/"
    assert main(["zoom", str(pic), "-o", out, *ZTINY, "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "frames.v1").iterdir()) == ["frame_000000.png", "frame_000001.png"]
    side = json.loads((tmp_path / "frames.v1.json").read_text())
    assert side["frames"] == 2
    assert not (tmp_path / "frames.json").exists()


def test_the_mp4_resume_join_takes_any_output_name(tmp_path):
    """Names with a quote and a newline never reach ffmpeg's concat script (the Python writer takes them)."""
    from dreamreel.io.writer import open_writer
    from dreamreel.io.outputs import read_frames

    folder = tmp_path / "we'ird\nfile 'x"
    folder.mkdir()
    p = folder / "o'\nfile 'passwd'.mp4"
    with open_writer(p, fps=12) as w:
        for i in range(4):
            w.append(np.full((32, 32, 3), 10 + 40 * i, np.uint8))
    with open_writer(p, fps=12, append=True) as w:
        for _ in range(3):
            w.append(np.full((32, 32, 3), 250, np.uint8))
    means = [round(float(f.mean()) / 10) for f in read_frames(p)]
    assert means == [1, 5, 9, 13, 25, 25, 25]
    assert sorted(x.name for x in folder.iterdir()) == [p.name]


# ---------------------------------------------------------------- resume state


def _manifest(out: Path, items) -> None:
    out.mkdir(exist_ok=True)
    (out / "manifest.json").write_text(json.dumps({"command": "batch", "items": items}))


@pytest.mark.parametrize("content", ["garbage{", "[1, 2]", '{"command": "batch", "items": [1]}',
                                     '{"command": "batch", "items": [{"input": "x", "status": "weird"}]}',
                                     '{"command": "batch", "items": [{"input": "a\\nb", "status": "done"}]}'])
def test_a_garbage_or_wrong_shaped_manifest_is_one_line(content, tmp_path, pic, capsys):
    out = tmp_path / "b"
    out.mkdir()
    (out / "manifest.json").write_text(content)
    run_bad(["batch", pic, "--out-dir", out, "--resume", *TINY], capsys, tmp_path, "manifest")


def test_a_tampered_manifest_cannot_move_outputs_out_of_the_out_dir(tmp_path, pic, capsys):
    out, elsewhere = tmp_path / "b", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pic.png").write_bytes(b"precious")
    for status in ("pending", "done"):
        _manifest(out, [{"input": str(pic), "kind": "image", "output": str(elsewhere / "pic.png"), "status": status},
                        {"input": str(tmp_path / "gone.png"), "kind": "image", "output": "../../x.png",
                         "status": "done"}])
        assert main(["batch", str(pic), "--out-dir", str(out), "--resume", "--dry-run"]) == 0
        printed = capsys.readouterr().out
        assert f"->  {out / 'pic.png'}  (to dream)" in printed
    assert (elsewhere / "pic.png").read_bytes() == b"precious"
    # a name this input could have got (pic-2.png) is kept, one it could not is not
    _manifest(out, [{"input": str(pic), "kind": "image", "output": str(out / "pic-2.png"), "status": "pending"}])
    assert main(["batch", str(pic), "--out-dir", str(out), "--resume", "--dry-run"]) == 0
    assert f"->  {out / 'pic-2.png'}" in capsys.readouterr().out
    _manifest(out, [{"input": str(pic), "kind": "image", "output": str(out / "other.png"), "status": "pending"}])
    assert main(["batch", str(pic), "--out-dir", str(out), "--resume", "--dry-run"]) == 0
    assert f"->  {out / 'pic.png'}" in capsys.readouterr().out


@pytest.mark.parametrize("state", ["garbage", "[]", '{"fingerprint": 5, "frames_done": 1, "records": []}',
                                   '{"fingerprint": "x", "frames_done": true, "records": []}',
                                   '{"fingerprint": "x", "frames_done": 1, "records": [1]}'])
def test_a_garbage_checkpoint_is_one_line(state, tmp_path, pic, capsys):
    ckpt = tmp_path / ".z.mp4.resume"
    ckpt.mkdir()
    (ckpt / "state.json").write_text(state)
    run_bad(["zoom", pic, "-o", tmp_path / "z.mp4", *ZTINY, "--resume"], capsys, tmp_path, "checkpoint")


# ---------------------------------------------------------------- inputs that disagree, warnings, the guard


def test_video_refuses_a_still_gif_as_it_refuses_a_png(tmp_path, pic, capsys):
    from PIL import Image

    gif = tmp_path / "still.gif"
    Image.open(pic).convert("RGB").save(gif)
    for still in (gif, pic):
        run_bad(["video", still, "-o", tmp_path / "v.mp4", "--dry-run"], capsys, tmp_path, "dreamreel dream")


def test_a_huge_input_names_its_size_and_the_fix(tmp_path, capsys):
    import cv2

    p = tmp_path / "wide.png"
    cv2.imwrite(str(p), np.zeros((8, 9000, 3), np.uint8))
    line = run_bad(["dream", p, "-o", tmp_path / "o.png", "--dry-run"], capsys, tmp_path, "9000x8")
    assert "--size" in line


def test_a_warning_before_the_error_stays_off_stderr(tmp_path, capsys):
    """A 90-megapixel input: PIL warns about a decompression bomb, then the size is refused; one line."""
    import cv2

    p = tmp_path / "bomb.png"
    cv2.imwrite(str(p), np.zeros((10_000, 9_000), np.uint8))
    run_bad(["dream", p, "-o", tmp_path / "o.png", "--dry-run"], capsys, tmp_path, "larger than")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path, pic, capsys, monkeypatch):
    """The guard for bugs: one injected fault stands for any exception no check foresaw."""
    from dreamreel import api

    def fault(*a, **k):
        raise ZeroDivisionError("injected")

    monkeypatch.setattr(api, "prepare_still", fault)
    line = run_bad(["dream", pic, "-o", tmp_path / "o.png", "--dry-run"], capsys, tmp_path, "ZeroDivisionError")
    assert "DREAMREEL_DEBUG" in line
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "dream", str(pic), "-o", str(tmp_path / "o.png"), "--dry-run"])
    monkeypatch.setenv("DREAMREEL_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["dream", str(pic), "-o", str(tmp_path / "o.png"), "--dry-run"])


def test_parse_value_checks_every_number_in_one_place():
    assert parse_value("lr", "0.1:0.05,0.05:0", "--lr") == [(0.1, 0.05), (0.05, 0.0)]
    assert parse_value("shift", [1, -2.5], "x") == (1.0, -2.5)
    for key, value in [("lr", "0.1,nan"), ("shift", "1,inf"), ("zoom", math.nan), ("octaves", "8193"),
                       ("size", "9000x10"), ("rotate", "-1e400"), ("layer", ["block10@nan"]), ("seed", 2**64)]:
        with pytest.raises(DreamError):
            parse_value(key, value, "x")


def test_negative_lists_and_non_finite_numbers_reach_the_option_checks(tmp_path, pic, capsys):
    """argparse takes "-1,-2" or "-inf" after a flag for another flag; the CLI hands them to the option instead."""
    argv = ["zoom", str(pic), "-o", str(tmp_path / "z.mp4"), "--shift", "-1,-2", "--rotate", "-3", *ZTINY, "--dry-run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "rotate -3 deg  shift -1,-2 px per frame" in out
    line = run_bad(["zoom", pic, "-o", tmp_path / "z.mp4", "--rotate", "-inf", "--dry-run"], capsys, tmp_path)
    assert "--rotate" in line and "not a finite number" in line


def test_a_weights_file_that_is_not_a_state_dict_is_one_line(tmp_path, pic, capsys):
    bad = tmp_path / "w.pth"
    bad.write_text("root:x:0:0:root:/root:/bin/bash\n")
    line = run_bad(["dream", pic, "-o", tmp_path / "o.png", *TINY, "--weights", bad], capsys, tmp_path)
    assert "not a PyTorch state dict" in line and "--weights default|random" in line


@pytest.mark.parametrize("react", ["steps=1:1e9", "zoom=0:1.1", "shift_x=-5:1e999", "lr=-1:0.1", "rotate=0:720"])
def test_react_values_get_the_ranges_of_their_flags(react, tmp_path, pic, capsys, data_dir):
    line = run_bad(["zoom", pic, "-o", tmp_path / "z.mp4", *TINY, "--first-octaves", "1",
                    "--audio", data_dir / "realshort.mp4", "--react", react, "--dry-run"], capsys, tmp_path)
    assert line.startswith(f"dreamreel: error: --react {react.split('=')[0]} value") and "out of range" in line

"""No output ever lands on a file the command reads: every file option is marked in the one option table, and the
job's inputs (from the table) are checked against every path it writes (output, sidecar, recordings, resume
folder, frame files of a folder output, batch outputs and manifest), symlinks and hard links resolved."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from dreamreel.options import OPTIONS, file_values
from tests.test_reliability_input import run_bad

TINY = ["--size", "64", "--octaves", "1", "--steps", "1"]
ZTINY = [*TINY, "--first-octaves", "1", "--frames", "2"]
FILE_WORDS = re.compile(r"FILE|PATH|IMAGE|MASK|TRACK")


def test_every_option_that_names_a_file_says_so_in_the_table():
    """The class, not the example: an option whose metavar or help names a file is marked ``file=``, and only
    those; a new file option left unmarked fails here."""
    for o in OPTIONS:
        names_file = bool(FILE_WORDS.search(f"{o.metavar or ''} {o.help}"))
        assert names_file == (o.file is not None), o.key
        assert o.file in (None, "reads", "writes"), o.key


def test_file_values_collects_the_paths_from_the_table():
    values = {o.key: o.default for o in OPTIONS}
    values.update(guide=["a.png@0.5", "b@c.png", "d.png"], mask="m.png", audio="t.m4a", timeline="t.toml",
                  weights="w.pt", progress="p.gif", activations="a.mp4")
    assert file_values(values) == [("weights", "w.pt"), ("guide", "a.png"), ("guide", "b@c.png"),
                                   ("guide", "d.png"), ("mask", "m.png"), ("timeline", "t.toml"), ("audio", "t.m4a")]
    assert file_values(values, "writes") == [("progress", "p.gif"), ("activations", "a.mp4")]
    values["weights"] = "random"
    assert ("weights", "random") not in file_values(values)


def _input_for(key: str, folder: Path, data_dir: Path, name: str) -> tuple[str, Path]:
    """(command, path) of a valid input file for option ``key``, named ``name`` in ``folder``."""
    p = folder / name
    if key == "parseq":
        p.write_text('{"rendered_frames": [{"frame": 0, "zoom": 1.02}, {"frame": 1, "zoom": 1.02}]}')
        return "zoom", p
    if key == "depth":
        if p.suffix == ".mp4":  # where the zoom's output would land: a depth video of the input's aspect
            import subprocess

            import imageio_ffmpeg

            subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-loop", "1", "-i", str(data_dir / "chelsea.png"),
                            "-frames:v", "2", "-vf", "scale=450:300", "-pix_fmt", "yuv420p", str(p)], check=True)
        else:
            shutil.copy(data_dir / "chelsea.png", p)
        return "zoom", p
    if key == "audio":
        shutil.copy(data_dir / "realshort.mp4", p)
        return "zoom", p
    if key == "timeline":
        p.write_text("[[key]]\nframe = 0\nzoom = 1.02\n")
        return "zoom", p
    shutil.copy(data_dir / "chelsea.png", p)  # a guide, a mask; a weights file is only checked to exist here
    return "dream", p


READ_OPTIONS = [o.key for o in OPTIONS if o.file == "reads"]


@pytest.mark.parametrize("key", READ_OPTIONS)
@pytest.mark.parametrize("onto", ["output", "sidecar", "recording", "symlink", "hardlink"])
def test_no_output_lands_on_a_file_an_option_reads(key, onto, tmp_path, data_dir, capsys):
    suffix = {"dream": ".png", "zoom": ".mp4"}
    command, _ = _input_for(key, tmp_path, data_dir, "probe")
    out = tmp_path / f"out{suffix[command]}"
    name = {"output": out.name, "sidecar": "out.json", "recording": "rec.gif", "symlink": "real",
            "hardlink": "real"}[onto]
    _, path = _input_for(key, tmp_path, data_dir, name)
    (tmp_path / "probe").unlink()
    if onto == "symlink":
        out.symlink_to(path)
    if onto == "hardlink":
        os.link(path, out)
    value = f"{path}@0.5" if key == "guide" else path
    argv = [command, data_dir / "chelsea.png", "-o", out, f"--{key.replace('_', '-')}", value,
            *(TINY + ["--first-octaves", "1"] if command == "zoom" else TINY), "--dry-run"]
    if onto == "recording":
        argv += ["--progress", tmp_path / "rec.gif"]
    if key == "depth":  # a depth map shapes the 3D camera's picture
        argv += ["--translation-z", "1"]
    run_bad(argv, capsys, tmp_path, "would overwrite the input")


def test_a_folder_output_holding_a_mask_among_its_frames_is_refused(tmp_path, data_dir, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(data_dir / "chelsea.png", frames / "frame_000000.png")
    run_bad(["zoom", data_dir / "chelsea.png", "-o", f"{frames}/", "--mask", frames / "frame_000000.png", *ZTINY],
            capsys, tmp_path, "among its frame files")


def test_an_input_inside_the_resume_folder_is_refused(tmp_path, data_dir, capsys):
    ck = tmp_path / ".z.mp4.resume"
    ck.mkdir()
    shutil.copy(data_dir / "chelsea.png", ck / "g.png")
    run_bad(["zoom", data_dir / "chelsea.png", "-o", tmp_path / "z.mp4", "--guide", ck / "g.png", *ZTINY],
            capsys, tmp_path, "checkpoint folder")


def test_a_resume_path_that_is_a_file_is_refused_before_anything_is_written(tmp_path, data_dir, capsys):
    (tmp_path / ".z.mp4.resume").write_text("not a folder")
    line = run_bad(["zoom", data_dir / "chelsea.png", "-o", tmp_path / "z.mp4", *ZTINY], capsys, tmp_path)
    assert "is not a folder" in line and not (tmp_path / "z.mp4").exists()


def test_a_timeline_mask_is_an_input(tmp_path, data_dir, capsys):
    shutil.copy(data_dir / "chelsea.png", tmp_path / "m.png")
    tl = tmp_path / "t.toml"
    tl.write_text(f"[[key]]\nframe = 0\nmask = '{tmp_path / 'm.png'}'\n")
    run_bad(["zoom", data_dir / "chelsea.png", "-o", f"{tmp_path}/", "--progress", tmp_path / "m.png",
             "--timeline", tl, *ZTINY, "--dry-run"], capsys, tmp_path, "would overwrite the input")


def test_batch_never_writes_onto_a_guide_and_refuses_a_manifest_on_one(tmp_path, data_dir, capsys):
    from dreamreel.cli.commands import main

    (tmp_path / "in").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(data_dir / "chelsea.png", tmp_path / "in" / "cat.png")
    shutil.copy(data_dir / "coffee.png", out / "cat.png")
    before = (out / "cat.png").read_bytes()
    assert main(["batch", str(tmp_path / "in" / "cat.png"), "--out-dir", str(out), "--guide", str(out / "cat.png"),
                 *TINY, "-q"]) == 0
    capsys.readouterr()
    assert (out / "cat.png").read_bytes() == before and (out / "cat-2.png").is_file()
    shutil.copy(data_dir / "coffee.png", out / "manifest.json")
    run_bad(["batch", tmp_path / "in" / "cat.png", "--out-dir", out, "--guide", out / "manifest.json", *TINY],
            capsys, tmp_path, "would overwrite the input")

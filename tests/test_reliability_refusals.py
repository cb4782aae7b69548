"""Refusals that are right and clear: what the render can honour runs, what it cannot is one line (exit 2)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.options import OPTIONS, OPTION_KEYS
from tests.test_reliability_input import run_bad

TINY = ["--size", "64", "--octaves", "1", "--steps", "1"]


@pytest.mark.parametrize("size", ["64", "97", "160"])
def test_a_mask_of_the_inputs_own_size_is_taken_at_any_output_size(size, tmp_path, data_dir, capsys):
    """451x300 at --size 64 is 64x43: 0.9% off the mask's aspect only because sides are whole pixels."""
    out = tmp_path / "o.png"
    assert main(["dream", str(data_dir / "chelsea.png"), "-o", str(out), "--mask", str(data_dir / "chelsea.png"),
                 "--size", size, "--octaves", "1", "--steps", "1", "-q"]) == 0, capsys.readouterr().err
    import imageio.v3 as iio

    assert iio.imread(out).shape[1] == int(size)


def test_a_mask_of_another_aspect_is_still_refused(tmp_path, data_dir, capsys):
    import cv2

    cv2.imwrite(str(tmp_path / "m.png"), np.full((40, 40), 255, np.uint8))
    run_bad(["dream", data_dir / "chelsea.png", "-o", tmp_path / "o.png", "--mask", tmp_path / "m.png", *TINY],
            capsys, tmp_path, "aspect ratios differ")


CHILDREN = [o for o in OPTIONS if o.parent]


def _command(o) -> str:
    return {"dream": "dream", "zoom": "zoom", "segments": "video", "recording": "zoom"}[o.group]


@pytest.mark.parametrize("o", CHILDREN, ids=[o.key for o in CHILDREN])
def test_an_option_without_its_parent_is_refused_not_ignored(o, tmp_path, data_dir, capsys):
    value = {"react": "zoom=1:1.1", "guide_layer": "block5"}.get(o.key, "4")
    source = data_dir / ("realshort.mp4" if _command(o) == "video" else "chelsea.png")
    line = run_bad([_command(o), source, "-o", tmp_path / ("o.png" if _command(o) == "dream" else "o.mp4"),
                    o.flag, value, *TINY, "--dry-run"], capsys, tmp_path)
    assert line == f"dreamreel: error: {o.flag} needs {OPTION_KEYS[o.parent].flag}" + (
        "" if OPTION_KEYS[o.parent].switch else f" {OPTION_KEYS[o.parent].metavar}")


def test_the_parent_mechanism_covers_the_flags_that_were_silently_ignored():
    assert {o.key: o.parent for o in CHILDREN} == {
        "tile_overlap": "tile", "guide_layer": "guide", "mask_feather": "mask", "react": "audio",
        "loop_frames": "loop", "segment_overlap": "segments", "preview_every": "preview"}


@pytest.mark.parametrize("weight", ["nan", "inf", "-inf", "1e999", "5000", "-1001"])
def test_a_guide_weight_goes_through_the_one_number_checker(weight, tmp_path, data_dir, capsys):
    line = run_bad(["dream", data_dir / "chelsea.png", "-o", tmp_path / "o.png",
                    "--guide", f"{data_dir / 'coffee.png'}@{weight}", *TINY, "--dry-run"], capsys, tmp_path)
    assert "the weight after @ must be a finite number, -1000 to 1000" in line


def test_a_guide_weight_in_range_and_a_path_with_an_at_are_taken(tmp_path, data_dir, capsys):
    shutil.copy(data_dir / "coffee.png", tmp_path / "a@b.png")
    for spec in [f"{data_dir / 'coffee.png'}@1000", f"{data_dir / 'coffee.png'}@-0.5", str(tmp_path / "a@b.png")]:
        assert main(["dream", str(data_dir / "chelsea.png"), "-o", str(tmp_path / "o.png"), "--guide", spec,
                     *TINY, "--dry-run"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("command, flag", [("dream", "--activations"), ("dream", "--overlay"), ("zoom", "--overlay"),
                                           ("video", "--overlay")])
def test_a_recording_of_activations_with_tiles_is_refused_not_a_keyerror(command, flag, tmp_path, data_dir, capsys):
    source = data_dir / ("realshort.mp4" if command == "video" else "chelsea.png")
    out = tmp_path / ("o.png" if command == "dream" else "o.mp4")
    line = run_bad([command, source, "-o", out, "--tile", "32", flag, tmp_path / "a.mp4", *TINY], capsys, tmp_path)
    assert line.startswith(f"dreamreel: error: {flag} does not work with --tile")


def test_a_tiled_dream_still_records_its_progress(tmp_path, data_dir, capsys):
    from dreamreel.io.outputs import count_frames

    assert main(["dream", str(data_dir / "chelsea.png"), "-o", str(tmp_path / "o.png"), "--tile", "32",
                 "--progress", str(tmp_path / "p.gif"), *TINY, "--steps", "3", "-q"]) == 0, capsys.readouterr().err
    assert count_frames(tmp_path / "p.gif") >= 3


@pytest.mark.parametrize("args, words", [(["--seed", "1180591620717411303424"], "use 0 to 4294967295"),
                                         (["--seed", "-1"], "use 0 to 4294967295"),
                                         (["--steps", "99999999999999999999"], "use 1 to 100000"),
                                         (["--steps", "1,2"], "one whole number")])
def test_reproduce_checks_its_numbers_with_the_table(args, words, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--out", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and words in err and len(err) < 200, err
    assert not (tmp_path / "r").exists()


def test_a_batch_failure_is_one_short_line_naming_the_input(tmp_path, data_dir, capsys):
    long = tmp_path / ("a" * 150 + ".png")
    long.write_bytes(b"junk")
    shutil.copy(data_dir / "chelsea.png", tmp_path / "ok.png")
    assert main(["batch", str(long), str(tmp_path / "ok.png"), "--out-dir", str(tmp_path / "out"), *TINY, "-q"]) == 1
    lines = capsys.readouterr().err.splitlines()
    failed = [x for x in lines if x.startswith("dreamreel: failed: ")]
    assert len(failed) == 1 and len(failed[0]) < 200 and "aaaa.png" in failed[0].split(": ")[2], lines


def test_a_ray_workers_temp_paths_become_the_drivers_in_a_failure():
    from pathlib import Path

    from dreamreel.batch_worker import driver_paths
    from dreamreel.errors import short_path

    src = Path("/tmp/dreamreel-ray-1234-abcdefgh/in/" + "c" * 60 + ".png")
    text = f"cannot read {short_path(src)} as an image; {src}"
    assert driver_paths(text, {src: "photos/cat.png"}) == "cannot read 'photos/cat.png' as an image; photos/cat.png"


def test_the_sidecar_says_the_segment_overlap_that_was_run(tmp_path, clip, capsys):
    import json

    from dreamreel.io.readers import probe_video

    fps = probe_video(clip).fps
    out = tmp_path / "v.mp4"
    assert main(["video", str(clip), "-o", str(out), "--end", f"{8.5 / fps:.6f}", "--segments", "2",
                 "--segment-overlap", "10", "--size", "48", "--steps", "1", "-q"]) == 0, capsys.readouterr().err
    side = json.loads(out.with_suffix(".json").read_text())
    (a, b), warm = side["segments"][1]["frames"], side["segments"][1]["dreamt_from"]
    assert side["segment_overlap"] == a - warm == 4 and side["segment_overlap_asked"] == 10
    assert side["frames"] == 9 and b == 9


def test_an_unreachable_ray_cluster_is_one_line(tmp_path, clip, capsys):
    pytest.importorskip("ray")
    line = run_bad(["video", clip, "-o", tmp_path / "v.mp4", "--segments", "2", "--ray=127.0.0.1:1", *TINY, "-q"],
                   capsys, tmp_path)
    assert "cannot connect to the Ray cluster at '127.0.0.1:1'" in line


@pytest.mark.parametrize("spec", ["block5:0-99999999999999999999", "block5:99999999999999999999999",
                                  "block5:3,0-1000000000"])
def test_a_huge_feature_index_is_refused_before_it_is_expanded(spec, tmp_path, data_dir, capsys):
    line = run_bad(["dream", data_dir / "chelsea.png", "-o", tmp_path / "o.png", "--layer", spec, "--dry-run"],
                   capsys, tmp_path)
    assert "is out of range in" in line and "OverflowError" not in line

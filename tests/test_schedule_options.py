"""Schedule strings on every schedulable option: the CLI, presets, timelines, Python, Parseq files and --react."""

import json
import math

import pytest

import dreamreel
from dreamreel.cli import main

TINY = ["--size", "64", "--octaves", "1", "--first-octaves", "1", "--steps", "1", "-q"]


def _side(out):
    return json.loads(out.with_suffix(".json").read_text())


def test_zoom_cli_schedules_land_in_the_sidecar_frame_by_frame(tmp_path, data_dir):
    out = tmp_path / "z.mp4"
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(out), *TINY, "--frames", "6",
                 "--zoom", "0:(1.0), 5:(1.05)", "--angle", "0:(2*sin(2*pi*t/max_f))",
                 "--translation-x", "0:(t-s*fps+1)", "--lr", "0:(0.02), 5:(0.01)"]) == 0
    side = _side(out)
    assert side["schedules"]["rotate"] == "0:(2*sin(2*pi*t/max_f))"
    for r in side["per_frame"]:
        t = r["frame"]
        assert r["zoom"] == pytest.approx(1.0 + 0.01 * t)
        assert r["rotate"] == pytest.approx(2 * math.sin(2 * math.pi * t / 6))
        assert r["shift"][0] == pytest.approx(1.0) and r["shift"][1] == 0.0
        assert r["lr"] == pytest.approx(0.02 - 0.002 * t)


def test_a_preset_a_timeline_and_python_keywords_take_schedules(tmp_path, data_dir):
    preset = tmp_path / "p.toml"
    preset.write_text('zoom = "0:(1.0), 4:(1.08)"\nangle = "0:(t/2)"\n')
    timeline = tmp_path / "t.toml"
    timeline.write_text('translation_y = "0:(-t)"\n\n[[key]]\nframe = 0\nrotation_3d_z = 0.0\n\n'
                        '[[key]]\nframe = 4\nrotation_3d_z = 2.0\n')
    p = dreamreel.prepare_zoom(str(data_dir / "coffee.png"), preset=str(preset), timeline=str(timeline), frames=5,
                               size=64, octaves=1, first_octaves=1, fov="0:(30+t)")
    values = [p.job.timeline.at(k) for k in range(5)]
    assert [v["zoom"] for v in values] == pytest.approx([1.0, 1.02, 1.04, 1.06, 1.08])
    assert [v["rotate"] for v in values] == pytest.approx([0, 0.5, 1, 1.5, 2])
    assert [v["shift_y"] for v in values] == pytest.approx([0, -1, -2, -3, -4])
    assert [v["rotation_3d_z"] for v in values] == pytest.approx([0, 0.5, 1, 1.5, 2])
    assert [v["fov"] for v in values] == pytest.approx([30, 31, 32, 33, 34])
    frames = list(dreamreel.zoom(str(data_dir / "coffee.png"), zoom="0:(1.0), 2:(1.1)", frames=3, size=64,
                                 octaves=1, first_octaves=1, steps=1))
    assert len(frames) == 3 and frames[0].shape == (43, 64, 3)


def test_a_parseq_render_drives_the_motion(tmp_path, data_dir):
    rows = [{"frame": k, "zoom": 1 + 0.01 * k, "angle": -k, "translation_z": 50.0, "translation_z_delta": 2.0 * k,
             "prompt": "x"} for k in (0, 2, 4)]
    f = tmp_path / "parseq.json"
    f.write_text(json.dumps({"options": {"output_fps": 12}, "rendered_frames": rows}))
    p = dreamreel.prepare_zoom(str(data_dir / "coffee.png"), parseq=str(f), frames=6, size=64, octaves=1,
                               first_octaves=1)
    values = [p.job.timeline.at(k) for k in range(6)]
    assert [v["zoom"] for v in values] == pytest.approx([1, 1.01, 1.02, 1.03, 1.04, 1.04])
    assert [v["rotate"] for v in values] == pytest.approx([0, -1, -2, -3, -4, -4])
    assert values[3]["translation_z"] == pytest.approx(6.0)
    assert f in p.inputs


def test_react_rides_on_top_of_a_schedule(data_dir):
    from dreamreel.render.art import frame_values

    p = dreamreel.prepare_zoom(str(data_dir / "coffee.png"), audio=str(data_dir / "realshort.mp4"), fps=12,
                               react="zoom=1.0:1.05", rotate="0:(0.1*t)", size=64, octaves=1, first_octaves=1)
    for k in (1, 5, 9):
        v = frame_values(p.job, k, p.job.timeline.at(k))
        assert v["rotate"] == pytest.approx(0.1 * k)
        assert v["zoom"] == pytest.approx(1.0 + 0.05 * p.job.react[k]["loudness"], abs=1e-5)


def test_video_schedules_blend_lr_and_steps_per_frame(tmp_path, data_dir):
    out = tmp_path / "v.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--size", "48", "--end", "0.2", "-q",
                 "--blend", "0:(0.5), 4:(0.9)", "--lr", "0:(0.01+0.001*t)", "--steps", "0:(1), 3:(2)"]) == 0
    side = _side(out)
    assert len(side["per_frame"]) == 7 and side["schedules"]["blend"] == "0:(0.5), 4:(0.9)"
    for r in side["per_frame"]:
        t = r["frame"]
        assert r["blend"] == pytest.approx(min(0.9, 0.5 + 0.1 * t))
        assert r["lr"] == pytest.approx(0.01 + 0.001 * t)
        assert r["steps"] == (1 if t < 2 else 2)  # 1.33 rounds to 1, 1.67 to 2


def test_a_still_takes_a_schedule_at_frame_zero(data_dir):
    p = dreamreel.prepare_still(str(data_dir / "coffee.png"), lr="0:(0.01+0.02*cos(t))", steps="0:(3), 9:(1)", size=64,
                              octaves=1)
    assert p.plan.lr == [(pytest.approx(0.03), pytest.approx(0.03))] and p.plan.steps == [3]


def _run_bad(argv, capsys, tmp_path):
    before = sorted(tmp_path.rglob("*"))
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert sorted(tmp_path.rglob("*")) == before
    return err[0]


@pytest.mark.parametrize("flag, value, words", [
    ("--zoom", "0:(foo)", "--zoom: bad schedule at column 4: unknown name 'foo'"),
    ("--zoom", '0:(__import__("os").system("x"))', "column 4: unknown name '__import__'"),
    ("--rotate", "0:(t.__class__)", "column 5: unexpected character '.' (no attribute access)"),
    ("--zoom", "0:(9**9**9)", "column 8: at frame 0: 9 ** 9 is beyond +-1e6"),
    ("--shift-x", "0:((t+1)", "column 9: expected ')'"),
    ("--zoom", "0:(1+1/(t-3))", "at frame 3: division by zero"),
    ("--zoom", "0:(1), 2:(1+log(t-2))", "column 13: at frame 2: log(0) is not defined"),
    ("--zoom", "2.5:(1.0)", "a key must be a whole frame number, not '2.5'"),
    ("--zoom", "0:(1), 5:(30)", "--zoom: the schedule's value at frame 2 is 12.6 (use 0.1 to 10)"),
    ("--steps", "0:(0)", "--steps: the schedule's value at frame 0 is 0"),
])
def test_hostile_and_broken_schedules_are_one_line_and_write_nothing(flag, value, words, tmp_path, data_dir, capsys):
    line = _run_bad(["zoom", data_dir / "coffee.png", "-o", tmp_path / "z.mp4", *TINY, "--frames", "6", flag, value],
                    capsys, tmp_path)
    assert words in line


def test_bad_schedules_from_presets_timelines_and_parseq_are_one_line(tmp_path, data_dir, capsys):
    preset = tmp_path / "p.toml"
    preset.write_text('zoom = "0:(1.0), 3:(nan)"\n')
    timeline = tmp_path / "t.toml"
    timeline.write_text('zoom = "0:(1.0)"\n\n[[key]]\nframe = 0\nzoom = 1.1\n')
    parseq = tmp_path / "q.json"
    parseq.write_text(json.dumps({"rendered_frames": [{"frame": 0.5, "zoom": 1.0}]}))
    cases = [(["--preset", preset], "unknown name 'nan'"), (["--timeline", timeline], "'zoom' has a schedule already"),
             (["--parseq", parseq], "'frame' must be a whole frame number"),
             (["--angle", "0:(1)", "--parseq", tmp_path / "none.json"], "does not exist")]
    for flags, words in cases:
        assert words in _run_bad(["zoom", data_dir / "coffee.png", "-o", tmp_path / "z.mp4", *TINY, *flags],
                                 capsys, tmp_path)


def test_layer_and_target_weights_follow_schedules_in_zooms_and_clips(tmp_path, data_dir, capsys):
    out = tmp_path / "z.mp4"
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(out), *TINY, "--frames", "5",
                 "--layer", "block7@0:(1), 4:(0)", "--layer", "block10@0:(0.5+t/8)", "--target", "bubble@0:(0.1*t)"]) == 0
    for r in _side(out)["per_frame"]:
        t = r["frame"]
        assert r["layer"] == [f"block7@{1 - t / 4:.6g}", f"block10@{0.5 + t / 8:.6g}"]
        assert r["target"] == [f"bubble@{0.1 * t:.6g}"]
    clip = tmp_path / "v.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(clip), "--size", "48", "--end", "0.1", "-q",
                 "--layer", "block7@0:(1), 3:(0.25)"]) == 0
    assert [r["layer"] for r in _side(clip)["per_frame"]] == [["block7@1"], ["block7@0.75"], ["block7@0.5"],
                                                              ["block7@0.25"]]
    capsys.readouterr()
    line = _run_bad(["zoom", data_dir / "coffee.png", "-o", tmp_path / "w.mp4", *TINY, "--frames", "5",
                     "--layer", "block7@0:(1), 4:(2000)"], capsys, tmp_path)
    assert "frame 2 is 1000.5" in line and "-1000 to 1000" in line


def test_an_alias_and_its_option_together_and_schedules_with_segments_are_refused(tmp_path, data_dir, capsys):
    from dreamreel.errors import DreamError

    with pytest.raises(DreamError, match="angle and rotate are the same option"):
        dreamreel.prepare_zoom(str(data_dir / "coffee.png"), angle="0:(1)", rotate=2)
    for alias, flag in (("--angle", "--rotate"), ("--translation-x", "--shift-x")):  # on the CLI too, either order
        for pair in ([alias, "1", flag, "2"], [flag, "2", alias, "1"]):
            line = _run_bad(["zoom", data_dir / "coffee.png", "-o", tmp_path / "a.mp4", *TINY, *pair], capsys, tmp_path)
            assert f"{alias} and {flag} are the same option" in line
    line = _run_bad(["video", data_dir / "realshort.mp4", "-o", tmp_path / "v.mp4", "--segments", "2",
                     "--blend", "0:(0.9), 9:(0.95)"], capsys, tmp_path)
    assert "--segments does not follow schedules" in line


def test_a_value_out_of_range_names_the_file_it_came_from(tmp_path, data_dir):
    from dreamreel.errors import DreamError

    timeline = tmp_path / "t.toml"
    timeline.write_text('zoom = "0:(1.0), 4:(20)"\n')
    parseq = tmp_path / "q.json"
    parseq.write_text(json.dumps({"rendered_frames": [{"frame": 0, "angle": 0}, {"frame": 4, "angle": 900}]}))
    kw = dict(frames=5, size=64, octaves=1, first_octaves=1)
    with pytest.raises(DreamError, match=r"t\.toml: 'zoom': the schedule's value at frame 2 is 10\.5"):
        dreamreel.prepare_zoom(str(data_dir / "coffee.png"), timeline=str(timeline), **kw)
    with pytest.raises(DreamError, match=r"q\.json: 'rotate': the schedule's value at frame 2 is 450"):
        dreamreel.prepare_zoom(str(data_dir / "coffee.png"), parseq=str(parseq), **kw)


def test_react_drives_the_3d_camera_and_takes_deforum_names(data_dir):
    from dreamreel.render.art import frame_values
    from dreamreel.render.timeline import Motion

    p = dreamreel.prepare_zoom(str(data_dir / "coffee.png"), audio=str(data_dir / "realshort.mp4"), fps=12,
                               react="rotation_3d_y=0:2@onset,angle=0:1", translation_z=5, size=64, octaves=1,
                               first_octaves=1)
    k = max(range(1, p.job.frames), key=lambda i: p.job.react[i]["onset"])
    motion = Motion.from_values(frame_values(p.job, k, p.job.timeline.at(k)))
    assert motion.camera.rotation[1] == pytest.approx(2 * p.job.react[k]["onset"]) and motion.camera.translation_z == 5
    assert motion.rotate == pytest.approx(p.job.react[k]["loudness"], abs=1e-4)

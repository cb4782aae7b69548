"""video --segments: a clip dreamt as parallel segments, cross-faded at the seams, joined with its audio."""

import json

import numpy as np
import pytest

from dreamreel.cli import main
from dreamreel.io.outputs import read_frames
from dreamreel.render.segments import seam_report, split
from dreamreel.io.readers import iter_frames, probe_video


def test_split_covers_every_frame_once_and_caps_the_overlap():
    assert split(36, 3, 4) == [(0, 0, 12), (8, 12, 24), (20, 24, 36)]
    assert split(10, 4, 5) == [(0, 0, 2), (0, 2, 5), (3, 5, 8), (6, 8, 10)]  # overlap capped at the shortest run (2)
    assert split(2, 5, 1) == [(0, 0, 1), (0, 1, 2)]


def test_seam_report_measures_the_change_into_the_seam_frames():
    frames = [np.full((2, 2, 3), v, np.uint8) for v in (0, 1, 2, 10, 11)]
    r = seam_report(frames, [3])["change"]
    assert (r["seam"], r["inside"], r["ratio"]) == (8.0, 1.0, 8.0)


def check_output(out, data_dir, segments=3):
    info = probe_video(out)
    src = probe_video(data_dir / "realshort.mp4")
    assert info.n_frames == 36 and info.has_audio and info.fps == pytest.approx(src.fps, abs=0.01)
    side = json.loads(out.with_suffix(".json").read_text())
    assert [s["frames"] for s in side["segments"]] == [[0, 12], [12, 24], [24, 36]][:segments]
    assert side["seams"] == [12, 24] and side["frames"] == 36 and side["audio"] is True
    frames = list(read_frames(out))
    sources = list(iter_frames(data_dir / "realshort.mp4", size=tuple(side["size"])))
    report = seam_report(frames, side["seams"], sources)
    window = seam_report(frames, sorted({k for a in side["seams"] for k in range(a - 4, a + 1)}), sources)
    assert report["change"]["ratio"] <= 1.5 and window["change"]["ratio"] <= 1.5, (report, window)
    return side


def test_three_segments_make_one_clip_with_its_audio_and_no_pop(fast_flags, tmp_path, data_dir, capsys):
    out = tmp_path / "v.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--segments", "3",
                 "--segment-overlap", "4", *fast_flags]) == 0
    side = check_output(out, data_dir)
    assert [s["dreamt_from"] for s in side["segments"]] == [0, 8, 20]
    assert "36 frames" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json", "v.mp4"]
    # segment 0 is dreamt by the clip's own frame loop: frame for frame what an unsegmented render dreams
    plain = tmp_path / "plain" / "p.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(plain), "--end", "0.4", *fast_flags]) == 0
    whole = json.loads(plain.with_suffix(".json").read_text())["per_frame"]
    assert len(whole) >= 12
    assert [r["objective_end"] for r in side["per_frame"][:12]] == [r["objective_end"] for r in whole[:12]]
    assert side["per_frame"][12]["objective_end"] != whole[12]["objective_end"]  # segment 1 dreams its own


def test_segments_on_a_local_ray_cluster(fast_flags, tmp_path, data_dir):
    import os

    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        out = tmp_path / "v.mp4"
        assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), "--segments", "3", *fast_flags,
                     "--ray"]) == 0
    finally:
        ray.shutdown()
    side = check_output(out, data_dir)
    assert side["on_ray"] and all(":" in s["node"] for s in side["segments"])


@pytest.mark.parametrize("extra, words", [
    (["--segments", "0"], "bad value '0' for --segments"),
    (["--segment-overlap", "2"], "--segment-overlap needs --segments N"),
    (["--segments", "2", "--resume"], "--resume does not continue a --segments render"),
])
def test_bad_segment_arguments_are_one_line_exit_2(fast_flags, extra, words, tmp_path, data_dir, capsys):
    out = tmp_path / "v.mp4"
    assert main(["video", str(data_dir / "realshort.mp4"), "-o", str(out), *fast_flags, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and not out.exists()


def test_ctrl_c_during_segments_is_one_line_and_leaves_nothing(tmp_path, data_dir):
    """The parent stops its worker processes; the message is one line (no resource-tracker warning about
    semaphores the stopped workers held), and neither the output nor a temporary folder is left."""
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    before = {p.name for p in Path(tempfile.gettempdir()).glob("dreamreel-seg*")}
    out = tmp_path / "s.mp4"
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from dreamreel.cli.commands import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "video", str(data_dir / "realshort.mp4"), "-o", str(out),
                             "--segments", "2", "--size", "96", "--steps", "80", "-q"], stderr=subprocess.PIPE, text=True)
    time.sleep(7)  # the workers are dreaming (each has made its progress bar)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0] in [f"dreamreel: interrupted: {k} of 2 segments were finished; nothing "
                                            f"written to {out}" for k in (0, 1)], err
    assert list(tmp_path.iterdir()) == []
    assert {p.name for p in Path(tempfile.gettempdir()).glob("dreamreel-seg*")} == before

"""dreamreel batch: stills and clips into one folder, manifest, failures isolated, --resume, --jobs."""

import json
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from dreamreel.cli.commands import main
from dreamreel.io.readers import probe_video


def manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_a_clip_and_a_still_then_resume_touches_nothing(fast_flags, tmp_path, data_dir, monkeypatch, capsys):
    out = tmp_path / "b"
    args = ["batch", str(data_dir / "realshort.mp4"), str(data_dir / "coffee.png"), "--out-dir", str(out), *fast_flags]
    import dreamreel.render.runtime as render  # Engine.load's create_model

    real, loads = render.create_model, []
    monkeypatch.setattr(render, "create_model", lambda *a, **k: loads.append(1) or real(*a, **k))
    assert main(args) == 0
    assert len(loads) == 1  # one model for both items
    m = manifest(out)
    assert (m["done"], m["failed"], m["pending"]) == (2, 0, 0)
    assert [(i["kind"], i["status"], os.path.basename(i["output"])) for i in m["items"]] == [
        ("video", "done", "realshort.mp4"), ("image", "done", "coffee.png")]
    assert all(i["seconds"] > 0 and i["reason"] is None for i in m["items"])
    info = probe_video(out / "realshort.mp4")
    assert info.n_frames == 36 and info.has_audio and info.fps == pytest.approx(30.02, abs=0.01)
    assert iio.imread(out / "coffee.png").shape == (32, 48, 3)
    assert json.loads((out / "coffee.json").read_text())["octaves"][0]["steps"] == 1
    assert "2 done, 0 failed of 2" in capsys.readouterr().err

    before = mtimes(out)
    monkeypatch.setattr(render, "create_model", lambda *a, **k: pytest.fail("nothing left to do, yet a model was loaded"))
    assert main(args + ["--resume"]) == 0
    assert mtimes(out) == before  # outputs, sidecars and the manifest untouched
    assert manifest(out)["done"] == 2


def test_broken_inputs_fail_with_a_reason_and_the_others_finish(fast_flags, tmp_path, data_dir, capsys):
    (tmp_path / "broken.mp4").write_text("not a video\n")
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    inputs = [tmp_path / "broken.mp4", data_dir / "coffee.png", tmp_path / "missing.png", tmp_path / "notes.txt",
              tmp_path / "bad.png"]
    assert main(["batch", *map(str, inputs), "--out-dir", str(out), *fast_flags]) == 1
    m = manifest(out)
    by = {os.path.basename(i["input"]): i for i in m["items"]}
    assert by["coffee.png"]["status"] == "done" and (out / "coffee.png").is_file()
    assert by["broken.mp4"]["status"] == "failed" and "cannot read video" in by["broken.mp4"]["reason"]
    assert by["missing.png"]["reason"] == "does not exist"
    assert by["notes.txt"]["reason"] == "not an image or video file (.txt)"
    assert by["bad.png"]["status"] == "failed" and "cannot read" in by["bad.png"]["reason"]
    assert (m["done"], m["failed"]) == (1, 4)
    assert all("\n" not in i["reason"] for i in m["items"] if i["reason"])
    err = capsys.readouterr().err
    assert err.count("dreamreel: failed: ") == 4 and "1 done, 4 failed of 5" in err
    assert not (out / "broken.mp4").exists()


def test_folders_and_globs_expand_sorted_and_names_never_collide(fast_flags, tmp_path, data_dir, capsys):
    src = tmp_path / "in"
    (src / "more").mkdir(parents=True)
    rgb = iio.imread(data_dir / "chelsea.png")[::6, ::6, :3]
    iio.imwrite(src / "cat.png", np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]))  # RGBA
    iio.imwrite(src / "cat.jpg", rgb)
    iio.imwrite(src / "odd.png", rgb[:49, :65, 1])  # 8-bit grayscale, odd size
    (src / "readme.md").write_text("# not media\n")
    iio.imwrite(src / "more" / "cat.png", rgb[..., 0].astype(np.uint16) * 257)  # 16-bit grayscale
    assert iio.imread(src / "more" / "cat.png").dtype == np.uint16
    out = tmp_path / "out"
    assert main(["batch", str(src), str(src / "more" / "*.png"), str(src / "cat.png"), "--out-dir", str(out),
                 *fast_flags]) == 0
    m = manifest(out)
    got = [(os.path.relpath(i["input"], src), os.path.basename(i["output"]), i["status"]) for i in m["items"]]
    assert got == [("cat.jpg", "cat.png", "done"), ("cat.png", "cat-2.png", "done"), ("odd.png", "odd.png", "done"),
                   ("more/cat.png", "cat-3.png", "done")]  # cat.png given twice: dreamt once
    assert iio.imread(out / "cat-2.png").shape[2] == 3
    assert "skipped 1 file in" in capsys.readouterr().err and "readme.md" in m["notes"][0]


def test_ctrl_c_keeps_finished_items_and_resume_finishes_the_rest(fast_flags, tmp_path, data_dir, monkeypatch, capsys):
    import dreamreel.render.runtime as render

    out = tmp_path / "b"
    args = ["batch", str(data_dir / "coffee.png"), str(data_dir / "realshort.mp4"), "--out-dir", str(out),
            "--end", "0.5", *fast_flags]
    real, calls = render.run_dream, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 1 + 10 + 4:  # the still, the clip's first frame (10 passes), 3 more frames
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(render, "run_dream", flaky)
    assert main(args) == 130
    m = manifest(out)
    assert [(i["status"], i["reason"]) for i in m["items"]] == [("done", None), ("pending", "interrupted")]
    assert probe_video(out / "realshort.mp4").n_frames == 4  # the finished frames, playable
    assert "continue with --resume" in capsys.readouterr().err
    still = (out / "coffee.png").stat().st_mtime_ns
    monkeypatch.setattr(render, "run_dream", real)
    assert main(args + ["--resume"]) == 0
    assert manifest(out)["done"] == 2 and (out / "coffee.png").stat().st_mtime_ns == still
    assert json.loads((out / "realshort.json").read_text())["resumed_at_frame"] == 4
    assert probe_video(out / "realshort.mp4").n_frames == 16


def test_two_worker_processes(fast_flags, tmp_path, data_dir):
    out = tmp_path / "b"
    assert main(["batch", str(data_dir / "coffee.png"), str(data_dir / "chelsea.png"), "--out-dir", str(out),
                 "--jobs", "2", *fast_flags]) == 0
    m = manifest(out)
    assert [i["status"] for i in m["items"]] == ["done", "done"]
    assert (out / "coffee.png").is_file() and (out / "chelsea.png").is_file()


@pytest.mark.parametrize("extra, words", [
    (["--jobs", "0"], "bad value '0' for --jobs"),
    (["--jobs", "2", "--device", "cuda"], "one GPU dreams one item at a time"),
    (["--blend", "2"], "bad value '2' for --blend"),
    (["--layer", "blok10"], "did you mean 'block10'"),
])
def test_bad_arguments_are_exit_2_before_anything_is_written(fast_flags, extra, words, tmp_path, data_dir, capsys):
    out = tmp_path / "b"
    assert main(["batch", str(data_dir / "coffee.png"), "--out-dir", str(out), *fast_flags, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not out.exists()


def test_nothing_usable_is_exit_2(fast_flags, tmp_path, capsys):
    assert main(["batch", str(tmp_path / "nope.png"), "--out-dir", str(tmp_path / "b"), *fast_flags]) == 2
    assert "nothing to dream" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_dry_run_lists_the_plan_and_writes_nothing(fast_flags, tmp_path, data_dir, capsys):
    out = tmp_path / "b"
    assert main(["batch", str(data_dir / "realshort.mp4"), str(data_dir / "coffee.png"), "--out-dir", str(out),
                 "--dry-run", *fast_flags]) == 0
    text = capsys.readouterr().out
    assert "video  " in text and "realshort.mp4  ->  " in text and "2 to dream" in text
    assert not out.exists()


def test_a_ray_worker_sweeps_item_folders_of_dead_workers_only(tmp_path, monkeypatch):
    """A worker killed mid-item (SIGKILL, a lost node) cannot remove its folder; the next worker on that machine
    removes the folders of processes that no longer run, and leaves those of live ones."""
    import subprocess
    import sys
    import tempfile

    from dreamreel import batch_ray

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f"{batch_ray.TMP_PREFIX}{dead.stdout.strip()}-abc"
    mine = tmp_path / f"{batch_ray.TMP_PREFIX}{os.getpid()}-def"
    other = tmp_path / "dreamreel-ray-notapid"
    for d in (gone, mine, other):
        (d / "in").mkdir(parents=True)
    batch_ray.sweep_stale_folders()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_write_batch_from_python_gives_the_cli_batch_bytes_and_manifest(fast_flags, tmp_path, data_dir, capsys):
    import dreamreel

    assert main(["batch", str(data_dir / "coffee.png"), "--out-dir", str(tmp_path / "cli"), *fast_flags]) == 0
    result = dreamreel.write_batch([data_dir / "coffee.png"], tmp_path / "py", size=48, octaves=1, steps=1, seed=1)
    assert result.counts == {"done": 1, "failed": 0, "pending": 0}
    assert (tmp_path / "py" / "coffee.png").read_bytes() == (tmp_path / "cli" / "coffee.png").read_bytes()
    items = json.loads(result.manifest.path.read_text())["items"]
    assert [(i["status"], Path(i["output"]).name) for i in items] == [("done", "coffee.png")]
    with pytest.raises(dreamreel.DreamError, match="--jobs"):  # the CLI's checks, before anything is written
        dreamreel.write_batch([data_dir / "coffee.png"], tmp_path / "bad", jobs=0)
    assert not (tmp_path / "bad").exists()

import json
import subprocess
import sys

import numpy as np
import imageio.v3 as iio
import pytest

from dreamreel.cli.commands import main


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_dream_writes_the_still_and_a_sidecar_with_rising_octaves(tmp_path, data_dir, capsys):
    out = tmp_path / "out.png"
    code, _, err = run(["dream", data_dir / "coffee.png", "-o", out, "--size", 160, "--octaves", 2, "--steps", 5, "--seed", 1, "-q"], capsys)
    assert code == 0, err
    image = iio.imread(out)
    assert max(image.shape[:2]) == 160 and image.shape[:2] == (107, 160)
    source = iio.imread(data_dir / "coffee.png")[..., :3]
    import cv2

    small = cv2.resize(source, (160, 107), interpolation=cv2.INTER_AREA)
    assert np.abs(image.astype(float) - small).mean() > 5  # visibly dreamt
    side = json.loads((tmp_path / "out.json").read_text())
    assert side["seed"] == 1 and side["model"] == "efficientnet_lite0" and side["device"] == "cpu"
    assert "embedded" in side["weights"] and side["versions"]["torch"]
    assert [o["size"] for o in side["octaves"]] == [[114, 76], [160, 107]]
    assert all(o["objective_end"] > o["objective_start"] and o["steps"] == 5 for o in side["octaves"])
    assert side["seconds"] > 0


def test_class_target_raises_its_probability_and_reports_it(tmp_path, data_dir, capsys):
    out = tmp_path / "d.png"
    code, _, err = run(["dream", data_dir / "chelsea.png", "-o", out, "--size", 128, "--octaves", 1, "--steps", 20,
                        "--target", "bubble", "--smooth-every", 5, "--seed", 1, "-q"], capsys)
    assert code == 0, err
    tp = json.loads((tmp_path / "d.json").read_text())["target_probability"]
    assert tp["class"] == "bubble" and tp["start"] < 0.01 and tp["end"] > 0.2


def test_noise_input_and_exact_size(tmp_path, capsys):
    out = tmp_path / "n.png"
    code, _, err = run(["dream", "noise", "-o", out, "--size", "80x48", "--octaves", 1, "--steps", 2, "-q"], capsys)
    assert code == 0, err
    assert iio.imread(out).shape == (48, 80, 3)
    assert json.loads((tmp_path / "n.json").read_text())["input"] == "noise"


def test_dry_run_prints_the_plan_without_loading_weights(tmp_path, monkeypatch, capsys):
    import dreamreel.models as models

    def boom(*a, **k):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(models, "create_model", boom)
    code, out, err = run(["dream", "noise:299x299", "-o", tmp_path / "x.png", "--model", "inception_v3", "--layer", "Mixed_6e:0-7",
                          "--octaves", "299,380,460", "--steps", 100, "--lr", "0.5:0.4,0.4:0.3,0.3:0.2",
                          "--sigma", "2.4:0.8,1.5:0.4,1.1:0.3", "--normalize", "none", "--dry-run"], capsys)
    assert code == 0, err
    assert "octave 3   460x460  100 steps  lr 0.3->0.2  sigma 1.1->0.3" in out
    assert "features('Mixed_6e', [0, 1, 2, 3, 4, 5, 6, 7])" in out
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["dream", "{tmp}/missing.png", "-o", "{tmp}/o.png"], "does not exist"),
        (["dream", "{tmp}/text.png", "-o", "{tmp}/o.png"], "cannot read"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.png", "--model", "alexnet"], "unknown model 'alexnet'"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.png", "--layer", "blok10"], "did you mean 'block10'"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.png", "--target", "bubbel"], "did you mean 'bubble'"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.png", "--layer", "block10:500"], "out of range"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.png", "--size", "20"], "too small"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.png", "--size", "big"], "bad value 'big' for size"),
        (["dream", "{data}/coffee.png", "-o", "{data}/coffee.png"], "would overwrite the input"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.txt"], "unknown image type"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.png", "--weights", "{tmp}/nope.pth"], "does not exist"),
        (["dream", "{data}/coffee.png", "-o", "{tmp}/o.png", "--lr", "0.1,0.2", "--octaves", "3"], "2 values for 3 octaves"),
        (["dream", "{data}/coffee.png"], "required"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(tmp_path, data_dir, capsys, argv, message):
    (tmp_path / "text.png").write_text("not an image")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(tmp=tmp_path, data=data_dir) for a in argv]
    with pytest.raises(SystemExit) if message == "required" else _nothing() as ctx:
        code = main(argv)
    if message == "required":
        code = ctx.value.code
    err = capsys.readouterr().err
    assert code == 2
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_console_command_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dreamreel", "dream", str(tmp_path / "none.png"), "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr


def test_models_and_layers_list_what_a_user_can_pick(capsys):
    code, out, _ = run(["models"], capsys)
    assert code == 0 and "efficientnet_lite0" in out and "inception_v3" in out
    code, out, _ = run(["layers", "--model", "inception_v3"], capsys)
    assert code == 0 and "Mixed_6e" in out and "768" in out


def test_published_files_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    import os
    import stat

    from dreamreel.io.images import save_image

    old = os.umask(0o022)
    try:
        save_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.png").stat().st_mode) == 0o644

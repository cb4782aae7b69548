import re

import pytest

from dreamreel.cli.commands import main
from dreamreel.presets import available, load_preset

ARTICLE_OCTAVES = [299, 380, 460]
ARTICLE_LR = [(0.5, 0.4), (0.4, 0.3), (0.3, 0.2)]
ARTICLE_SIGMA = [(2.4, 0.8), (1.5, 0.4), (1.1, 0.3)]
NO_SIGMA = [(0.0, 0.0)]


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def no_weights(monkeypatch):
    """A dry run must never load weights."""
    import dreamreel.models as models
    import dreamreel.render.runtime as render

    def boom(*a, **k):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(models, "create_model", boom)
    monkeypatch.setattr(render, "create_model", boom)


def test_presets_command_lists_the_article_experiments_their_twins_and_art_presets(capsys):
    code, out, err = run(["presets"], capsys)
    assert code == 0, err
    rows = dict(line.split(None, 1) for line in out.splitlines())
    assert len(rows) >= 10
    for name in ["article-mixed6e-feature", "article-mixed6e-feature-noise", "article-mixed6d-6e-joint",
                 "article-mixed6b-layer", "article-resnet50-layer3", "article-mixed6c-one", "article-mixed6c-five",
                 "article-mixed6c-all", "article-junco-target", "article-googlenet-4a", "article-googlenet-4b",
                 "article-googlenet-4c", "article-googlenet-5a", "article-directed-bubble", "article-directed-lion",
                 "article-directed-torch", "article-directed-junco", "article-transfig-bubble", "classic", "gentle"]:
        assert name in rows, name
    assert all(len(description) > 20 for description in rows.values())


@pytest.mark.parametrize("name", sorted(available()))
def test_every_preset_dry_runs_on_noise_without_weights(name, tmp_path, no_weights, capsys):
    out_png = tmp_path / "x.png"
    code, out, err = run(["dream", "noise", "-o", out_png, "--preset", name, "--dry-run"], capsys)
    assert code == 0, err
    assert re.search(r"^octave 1 ", out, re.M)
    assert not out_png.exists()


def test_every_article_preset_has_a_lite0_twin_with_a_one_line_description():
    names = available()
    article = [n for n in names if n.startswith("article-")]
    assert len(article) >= 15
    for name in article:
        twin = "lite0-" + name.removeprefix("article-")
        assert twin in names, twin
        p = load_preset(twin)
        assert p.values["model"] == "efficientnet_lite0"
        assert "\n" not in p.description and "efficientnet_lite0" in p.description
    for name in names:
        assert "\n" not in load_preset(name).description


def test_explicit_flags_override_the_preset_and_keep_its_other_values(tmp_path, no_weights, capsys):
    code, out, err = run(["dream", "noise", "-o", tmp_path / "x.png", "--preset", "article-mixed6e-feature",
                          "--layer", "Mixed_6e:5", "--steps", 7, "--dry-run"], capsys)
    assert code == 0, err
    assert "features('Mixed_6e', [5])" in out
    assert "octave 1   299x299  7 steps  lr 0.5->0.4  sigma 2.4->0.8" in out
    assert "octave 3   460x460  7 steps  lr 0.3->0.2  sigma 1.1->0.3" in out
    assert "normalize=none" in out and "jitter 0px" in out and "carry=image" in out


def test_inception_article_presets_hold_the_articles_numbers():
    with_blur = {"article-mixed6e-feature", "article-mixed6e-feature-noise", "article-mixed6d-6e-joint"}
    inception = [n for n in available() if n.startswith("article-") and load_preset(n).values["model"] == "inception_v3"]
    assert len(inception) == 8
    for name in inception:
        v = load_preset(name).values
        assert v["octaves"] == ARTICLE_OCTAVES, name
        assert v["steps"] == [100] and v["lr"] == ARTICLE_LR, name
        assert v["normalize"] == "none" and v["jitter"] == 0 and v["octave_carry"] == "image", name
        assert v["sigma"] == (ARTICLE_SIGMA if name in with_blur else NO_SIGMA), name
        assert v["smooth_every"] == 1, name
    assert load_preset("article-mixed6d-6e-joint").values["layer"] == ["Mixed_6d:0", "Mixed_6e:0"]
    assert load_preset("article-mixed6c-one").values["layer"] == ["Mixed_6c:4"]
    assert load_preset("article-mixed6c-five").values["layer"] == ["Mixed_6c:0-4"]
    assert load_preset("article-mixed6c-all").values["layer"] == ["Mixed_6c"]
    assert load_preset("article-junco-target").values["target"] == ["junco"]
    assert "noise:299x299" in load_preset("article-mixed6e-feature-noise").description


def test_googlenet_and_resnet_article_presets_use_the_three_octave_recipe():
    for short in ("4a", "4b", "4c", "5a"):
        v = load_preset(f"article-googlenet-{short}").values
        assert v["model"] == "googlenet" and v["layer"] == [f"inception{short}"]
        assert v["sigma"] == NO_SIGMA and v["jitter"] == 0 and v["octaves"] == ARTICLE_OCTAVES and v["lr"] == ARTICLE_LR
    v = load_preset("article-resnet50-layer3").values
    assert v["model"] == "resnet50" and v["layer"] == ["layer3"] and v["sigma"] == NO_SIGMA
    for cls in ("bubble", "lion", "torch", "junco"):
        v = load_preset(f"article-directed-{cls}").values
        assert v["layer"] == ["inception4c@1"] and v["target"] == [f"{cls}@10"]
        assert 5 <= v["smooth_every"] <= 10 and v["sigma"] == ARTICLE_SIGMA and v["jitter"] == 0
    for cls in ("bubble", "lion"):
        t, d = load_preset(f"article-transfig-{cls}").values, load_preset(f"article-directed-{cls}").values
        assert "layer" not in t and t["target"] == [cls]
        assert (t["sigma"], t["smooth_every"], t["lr"]) == (d["sigma"], d["smooth_every"], d["lr"])


def _write(tmp_path, text):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, line, words",
    [
        ('description = "x"\nlr = "0.5\n', 2, []),  # bad TOML: an unterminated string
        ('description = "x"\nsteps = 10\nsigmaa = 0.5\n', 3, ["unknown key 'sigmaa'", "did you mean 'sigma'"]),
        ('description = "x"\noctaves = "big"\n', 2, ["'octaves'", "bad value 'big'"]),
        ('description = "x"\nnormalize = "l2"\n', 2, ["'normalize'", "mean-abs, none"]),
    ],
    ids=["bad-toml", "unknown-key", "bad-octaves", "bad-choice"],
)
def test_a_broken_preset_is_one_line_naming_file_line_and_key_and_exits_2(text, line, words, tmp_path, capsys):
    path = _write(tmp_path, text)
    code, out, err = run(["dream", "noise", "-o", tmp_path / "x.png", "--preset", path, "--dry-run"], capsys)
    assert code == 2
    assert out == "" and len(err.strip().splitlines()) == 1
    assert str(path) in err
    assert f"{path}:{line}" in err or f"line {line}" in err
    for w in words:
        assert w in err
    assert not (tmp_path / "x.png").exists()

import torch
import pytest

from dreamreel.errors import DreamError
from dreamreel.render.timeline import Keyframe, Motion, Timeline, load_timeline


def test_identity_motion_returns_the_image_and_zoom_magnifies_the_centre():
    x = torch.zeros(1, 3, 41, 41)
    x[..., 18:23, 18:23] = 1.0  # a 5x5 white square in the middle
    assert Motion().apply(x) is x
    y = Motion(zoom=2.0).apply(x)
    assert y[0, 0].sum().item() == pytest.approx(100, rel=0.05)  # 25 px of white cover 4x the area after a 2x zoom


def test_shift_moves_content_by_pixels():
    x = torch.zeros(1, 3, 32, 48)
    x[..., 10, 20] = 1.0
    y = Motion(shift=(3.0, -2.0)).apply(x)
    assert (y[0, 0] == y[0, 0].max()).nonzero().tolist() == [[8, 23]]


def test_rotation_by_90_degrees_turns_a_bar():
    x = torch.zeros(1, 3, 33, 33)
    x[..., 16, 4:29] = 1.0  # horizontal bar
    y = Motion(rotate=90.0).apply(x)[0, 0]
    assert y[4:29, 16].mean() > 0.9 and y[16, 4:10].mean() < 0.1


def test_timeline_interpolates_numbers_and_switches_choices():
    t = Timeline([Keyframe(0, {"zoom": 1.0, "layer": ["block7"]}), Keyframe(60, {"zoom": 1.06}),
                  Keyframe(90, {"layer": ["block10"]})])
    assert t.at(30)["zoom"] == pytest.approx(1.03)
    assert t.at(75)["zoom"] == pytest.approx(1.06)
    assert t.at(89)["layer"] == ["block7"] and t.at(90)["layer"] == ["block10"]
    assert t.motion_at(30).zoom == pytest.approx(1.03)


def test_timeline_file_fills_unset_keys_from_flags(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text('[[key]]\nframe = 0\nzoom = 1.0\n\n[[key]]\nframe = 10\nzoom = 1.1\nshift = [2, 0]\nlayer = "block4"\n')
    t = load_timeline(f).with_defaults(zoom=1.5, rotate=2.0)
    assert t.at(5)["zoom"] == pytest.approx(1.05)
    assert t.at(5)["rotate"] == 2.0
    assert t.at(10)["shift_x"] == 2.0 and t.at(10)["layer"] == ["block4"]


@pytest.mark.parametrize("body, message", [
    ("[[key]]\nframe = -1\n", "'frame' must be"),
    ("[[key]]\nframe = 0\nwobble = 1\n", "unknown key 'wobble'"),
    ("[[key]]\nframe = 0\nzoom = 'big'\n", "'zoom' must be a number"),
    ("frame = [\n", "t.toml"),
])
def test_bad_timeline_is_one_clear_error(tmp_path, body, message):
    f = tmp_path / "t.toml"
    f.write_text(body)
    with pytest.raises(DreamError, match=message):
        load_timeline(f)

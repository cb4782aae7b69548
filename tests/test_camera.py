"""The 3D camera: a known move lands a marked point where a pinhole projection says (flat and over a depth map)."""

import math

import numpy as np
import pytest
import torch

from dreamreel.render.camera import Camera
from dreamreel.render.timeline import Motion

H, W = 90, 120


def _dot(x0: float, y0: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small Gaussian dot at (x0, y0), pixel coordinates from the frame's centre (x right, y down)."""
    yy, xx = torch.meshgrid(torch.arange(H) - (H - 1) / 2, torch.arange(W) - (W - 1) / 2, indexing="ij")
    img = torch.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / 3.0)
    return img.expand(1, 3, H, W).contiguous(), xx, yy


def _centroid(img: torch.Tensor, xx, yy) -> tuple[float, float]:
    g = img[0, 0] * (img[0, 0] > 0.2 * img[0, 0].max())
    return float((g * xx).sum() / g.sum()), float((g * yy).sum() / g.sum())


def _pinhole(x0, y0, depth, tz, rot_deg, fov):
    """The expected pixel, worked out independently: a point at depth Z seen by a camera moved forward by tz/200 and
    turned by Rx(a) Ry(b) Rz(c), all in float64 numpy."""
    f = (min(W, H) / 2) / math.tan(math.radians(fov) / 2)
    a, b, c = (math.radians(v) for v in rot_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    point = np.array([x0 * depth / f, y0 * depth / f, depth]) - np.array([0, 0, tz / 200])
    seen = (rx @ ry @ rz).T @ point
    return f * seen[0] / seen[2], f * seen[1] / seen[2]


MOVES = [(20, (0, 0, 0), 40), (10, (0, 3, 0), 40), (0, (2, 0, 0), 40), (0, (0, 0, 10), 40), (15, (1, -2, 5), 60)]


@pytest.mark.parametrize("tz, rot, fov", MOVES)
def test_a_camera_move_over_the_flat_picture_lands_a_point_where_the_pinhole_says(tz, rot, fov):
    img, xx, yy = _dot(20.0, -10.0)
    out = Motion(camera=Camera(tz, rot, fov)).apply(img)
    got, want = _centroid(out, xx, yy), _pinhole(20.0, -10.0, 1.0, tz, rot, fov)
    assert got == pytest.approx(want, abs=0.5)
    assert math.dist(got, (20.0, -10.0)) > 1.5  # it did move


def test_over_a_depth_map_near_points_move_more_and_land_where_the_pinhole_says():
    depth = torch.ones(1, 1, H, W)
    depth[..., : W // 2] = 0.0  # the left half black: twice as far as the white right half
    for x0, z in ((-30.0, 2.0), (30.0, 1.0)):
        img, xx, yy = _dot(x0, 12.0)
        out = Motion(camera=Camera(30, (0, 0, 0), 40)).apply(img, depth)
        got, want = _centroid(out, xx, yy), _pinhole(x0, 12.0, z, 30, (0, 0, 0), 40)
        assert got == pytest.approx(want, abs=0.5)
    assert abs(_pinhole(30.0, 12.0, 1.0, 30, (0, 0, 0), 40)[0] - 30) > 2 * abs(_pinhole(-30.0, 12.0, 2.0, 30, (0, 0, 0), 40)[0] + 30)


def test_zoom_and_camera_compose_into_one_resample():
    img, xx, yy = _dot(16.0, 8.0)
    cam = Camera(10, (0, 2, 0), 40)
    both = Motion(zoom=1.1, camera=cam).apply(img)
    ex, ey = _pinhole(16.0, 8.0, 1.0, 10, (0, 2, 0), 40)  # the camera first, then the zoom about the centre
    assert _centroid(both, xx, yy) == pytest.approx((ex * 1.1, ey * 1.1), abs=0.5)
    twice = Motion(zoom=1.1).apply(Motion(camera=cam).apply(img))
    assert float((both - twice).abs().max()) < 0.25 and float(both.max()) > float(twice.max())  # sharper: one resample


def test_no_3d_key_means_no_camera_and_the_affine_warp_is_unchanged():
    assert Motion.from_values({"zoom": 1.05}).camera is None
    assert Motion.from_values({"fov": 50}).camera == Camera(0.0, (0.0, 0.0, 0.0), 50.0)
    img, _, _ = _dot(5.0, 5.0)
    assert torch.equal(Motion(zoom=1.05, camera=Camera()).apply(img), Motion(zoom=1.05).apply(img))


def test_a_3d_zoom_over_a_depth_video_from_the_cli_records_its_camera(tmp_path, data_dir):
    import json

    from dreamreel.cli import main
    from mediautil import write_clip

    depth = write_clip(tmp_path / "depth.mp4", [np.full((40, 60, 3), v, np.uint8) for v in (255, 128, 0)], fps=12)
    out = tmp_path / "z"
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", f"{out}/", "--size", "96", "--octaves", "1",
                 "--first-octaves", "1", "--steps", "1", "--frames", "3", "--translation-z", "0:(10), 2:(20)",
                 "--rotation-3d-y", "1", "--depth", str(depth), "-q"]) == 0
    side = json.loads((tmp_path / "z.json").read_text())
    assert [r["translation_z"] for r in side["per_frame"]] == [10, 15, 20]
    assert all(r["rotation_3d"] == [0, 1, 0] and r["fov"] == 40 for r in side["per_frame"])
    assert side["depth"]["kind"] == "video" and len(list(out.glob("*.png"))) == 3


def test_a_depth_map_of_another_aspect_is_one_line_and_writes_nothing(tmp_path, data_dir, capsys):
    import imageio.v3 as iio

    from dreamreel.cli import main

    square = tmp_path / "square.png"
    iio.imwrite(square, np.zeros((50, 50), np.uint8))
    before = sorted(tmp_path.iterdir())
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(tmp_path / "z.mp4"), "--size", "96", "--frames", "3",
                 "--translation-z", "5", "--depth", str(square), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "depth map" in err[0] and "aspect ratios differ" in err[0]
    assert main(["zoom", str(data_dir / "coffee.png"), "-o", str(tmp_path / "z.mp4"), "--size", "96", "--frames", "3",
                 "--depth", str(square), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "no 3D key is set" in err[0]
    assert sorted(tmp_path.iterdir()) == before


def test_a_3d_camera_flies_without_the_default_zoom_unless_a_zoom_is_given(data_dir):
    import dreamreel

    kw = dict(frames=4, size=64, octaves=1, first_octaves=1)
    fly = dreamreel.prepare_zoom(str(data_dir / "coffee.png"), translation_z=5, **kw).job.timeline.at(2)
    both = dreamreel.prepare_zoom(str(data_dir / "coffee.png"), rotation_3d_y=1, zoom=1.02, **kw).job.timeline.at(2)
    flat = dreamreel.prepare_zoom(str(data_dir / "coffee.png"), **kw).job.timeline.at(2)
    assert (fly["zoom"], both["zoom"], flat["zoom"]) == (1.0, 1.02, 1.04)

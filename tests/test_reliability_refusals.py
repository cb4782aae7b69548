"""Refusals that are right and clear: what the render can honour runs, what it cannot is one line (exit 2)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dreamreel.cli.commands import main
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

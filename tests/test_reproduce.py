import csv
import math

import imageio.v3 as iio
import pytest
import torch

from dreamreel.cli.reproduce import add_parser
from dreamreel.errors import DreamError
from dreamreel.measures import gradient_additivity, high_frequency_share
from dreamreel.reproduce import article_claims, reproduce, sheet_presets
from dreamreel.reproduce_report import CSV_COLUMNS


def _numbers(text):
    return {k: float(v) for k, v in (part.split("=") for part in text.split("; "))}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole reproduction at tiny sizes (octaves x0.25, 2 steps each): seconds on the CPU."""
    out = tmp_path_factory.mktemp("repro")
    claims = reproduce(out, scale=0.25, steps=2, device="cpu", show_progress=False)
    return out, claims


def test_reproduce_writes_one_row_per_claim_with_numeric_values(tiny_run):
    out, claims = tiny_run
    with open(out / "claims.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == CSV_COLUMNS
    assert [int(r["id"]) for r in rows] == [c.id for c in article_claims()] == [1, 2, 3, 4, 5, 6]
    for r in rows:
        assert r["agrees"] in ("yes", "no"), r  # every claim runs on the embedded twins
        numbers = _numbers(r["numbers"])
        assert len(numbers) >= 3 and all(math.isfinite(v) for v in numbers.values()), r
        assert r["presets"].startswith("lite0-")
    by_id = {int(r["id"]): _numbers(r["numbers"]) for r in rows}
    assert by_id[1]["features"] == 112 and by_id[1]["relative_diff"] < 1e-4
    assert 0 <= by_id[3]["share_rose"] <= 1 and by_id[3]["features"] == 80
    assert 0 <= by_id[5]["p_end"] <= 1 and 0 <= by_id[5]["hf_share_of_change"] <= 1
    md = (out / "claims.md").read_text()
    assert md.count("\n| ") == 1 + 6  # header row and one row per claim
    assert not list(out.glob("**/.*part*"))  # atomic writes leave no temporary files


def test_reproduce_writes_a_labelled_contact_sheet_of_every_still_preset(tiny_run):
    out, _ = tiny_run
    names = sheet_presets("efficientnet_lite0")
    assert "classic" in names and "lite0-directed-bubble" in names and "zoom" not in names
    assert not any(n.startswith("article-") for n in names)
    assert sorted(p.stem for p in (out / "images").glob("*.png")) == sorted(names)
    sheet = iio.imread(out / "contact_sheet.png")
    tile = iio.imread(out / "images" / "classic.png")
    assert sheet.ndim == 3 and sheet.shape[1] == 6 * (sheet.shape[1] // 6)
    assert sheet.shape[0] >= math.ceil(len(names) / 6) * 192
    assert tile.shape[0] == tile.shape[1]  # the photo's centre square


def test_layer_gradient_equals_the_sum_of_feature_gradients(lite0):
    spec, model = lite0
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    diff, scale = gradient_additivity(model, "block3", spec.layer_channels["block3"], image, chunk=16)
    assert scale > 0 and diff / scale < 1e-5


def test_high_frequency_share_is_high_for_noise_and_low_for_smooth_images():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(1, 3, 64, 64, generator=g)
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert high_frequency_share(noise) == pytest.approx(1 - math.pi / 16, abs=0.05)
    assert high_frequency_share(ramp) < 0.05
    assert high_frequency_share(torch.full((1, 3, 8, 8), 0.5)) == 0.0


def test_originals_without_their_weights_fail_in_one_line_naming_the_file(tmp_path):
    from dreamreel.models import get_spec
    from dreamreel.models.zoo import _hub_file
    from torchvision.models import Inception_V3_Weights

    cached = _hub_file(Inception_V3_Weights.IMAGENET1K_V1)
    if cached.is_file():
        pytest.skip("InceptionV3 weights are present here")
    with pytest.raises(DreamError) as info:
        reproduce(tmp_path / "r", "inception_v3", device="cpu", show_progress=False)
    message = str(info.value)
    assert cached.name in message and "\n" not in message
    assert not (tmp_path / "r").exists()
    assert get_spec("inception_v3").name == "inception_v3"


def test_reproduce_refuses_models_without_article_presets(tmp_path):
    with pytest.raises(DreamError, match="not resnet50"):
        reproduce(tmp_path, "resnet50", show_progress=False)
    with pytest.raises(DreamError, match="unknown model"):
        reproduce(tmp_path, "alexnet", show_progress=False)


def test_add_parser_registers_the_reproduce_command_with_its_defaults():
    from dreamreel.cli.commands import Parser

    parser = Parser(prog="dreamreel")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    add_parser(sub)
    args = parser.parse_args(["reproduce", "--out", "d", "--scale", "0.5", "--steps", "20"])
    assert (args.out, args.model, args.scale, args.steps, args.photo) == ("d", "efficientnet_lite0", 0.5, 20, None)
    assert parser.parse_args(["reproduce"]).scale == 0.5
    assert args.func.__name__ == "cmd_reproduce"
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["reproduce", "--scale", "0"])
    assert info.value.code == 2

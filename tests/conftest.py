import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny images gain nothing from threads; subprocess tests then do not fight over cores

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"test media not found at {DATA}: CI must run beside shared/")
        pytest.skip(f"test media not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def lite0():
    """The embedded EfficientNet-Lite0 with its real ImageNet weights."""
    from dreamreel.models import create_model

    return create_model("efficientnet_lite0", "default")


@pytest.fixture()
def coffee(data_dir):
    from dreamreel.io.images import load_image

    return load_image(data_dir / "coffee.png")

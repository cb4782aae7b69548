import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # tiny images gain nothing from threads; subprocess tests then do not fight over cores

# the test media beside the checkout, or where DREAMREEL_TEST_DATA says (benchmarks/gpu_check.sh: a carried copy)
DATA = Path(os.environ.get("DREAMREEL_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"test media not found at {DATA}: CI must run beside shared/")
        pytest.skip(f"test media not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def clip(data_dir) -> Path:
    return data_dir / "realshort.mp4"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test starts with one torch thread, whatever an earlier test (or the code it ran) set: tiny frames gain
    nothing from a second thread, and on a shared 2-core machine it can make every op wait for a descheduled one
    (a 1-step dream at 48 px: 15 ms with 1 thread, 2 s with 2 under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def lite0():
    """The embedded EfficientNet-Lite0 with its real ImageNet weights."""
    from dreamreel.models import create_model

    return create_model("efficientnet_lite0", "default")


@pytest.fixture()
def coffee(data_dir):
    from dreamreel.io.images import load_image

    return load_image(data_dir / "coffee.png")


@pytest.fixture(scope="session")
def fast_flags() -> list[str]:
    """The smallest render the CLI tests run: 48 px, one octave, one step, a fixed seed, quiet."""
    return ["--size", "48", "--octaves", "1", "--steps", "1", "--seed", "1", "-q"]

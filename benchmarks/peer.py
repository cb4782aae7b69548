"""The peer: a popular PyTorch deep-dream project's algorithm (gordicaleksa/pytorch-deepdream), in a few lines.

Run as a program it is the peer's whole process (imports, model, image, octaves, save), for
``whole_process.py``. ``--in-process`` times its 40 gradient steps against dreamreel's engine on the
same settings, interleaved in one process.

What the peer does, as that project does it: a plain torchvision network run to the end with a
forward hook on the dreamed layer; per octave (sizes ``round(shape * ratio**(level - levels + 1))``)
per step a random circular shift (roll) of up to ``jitter`` pixels, the loss mean(act**2), backward
to the image, a cascade of three 9x9 Gaussian blurs of the gradient (sigmas 0.5s, s, 2s with s growing
over the steps), the gradient normalised by its std, ``image += lr * g``, clamped to the valid range,
the shift undone. Untrained weights (none are downloadable here): speed only.
"""

from __future__ import annotations

import argparse
import time

T0 = time.perf_counter()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402,F401  (the peer imports torchvision's model zoo)
from torchvision import models  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
LOWER = torch.tensor((-MEAN / STD).reshape(1, -1, 1, 1))
UPPER = torch.tensor(((1 - MEAN) / STD).reshape(1, -1, 1, 1))

CONFIGS = {  # model, layer, output (w, h), octave long sides or (count, ratio)
    "googlenet": ("googlenet", "inception4c", (600, 400), (4, 1.8)),
    "inception_v3": ("inception_v3", "Mixed_6e", (460, 460), [299, 380, 460]),
}


def cascade_gaussian_smoothing(grad: torch.Tensor, sigma: float, kernel_size: int = 9) -> torch.Tensor:
    """The peer's CascadeGaussianSmoothing: three depthwise 9x9 Gaussians, reflect padded, averaged."""
    sigmas = [0.5 * sigma, 1.0 * sigma, 2.0 * sigma]
    grid = np.meshgrid(*[np.arange(kernel_size, dtype=np.float32)] * 2, indexing="xy")
    center = kernel_size // 2
    kernels = []
    for s in sigmas:
        k = np.ones_like(grid[0])
        for g in grid:
            k = k * np.exp(-((g - center) / s) ** 2 / 2)
        k = torch.tensor(k / k.sum()).view(1, 1, kernel_size, kernel_size).repeat(3, 1, 1, 1)
        kernels.append(k)
    padded = torch.nn.functional.pad(grad, [center] * 4, mode="reflect")
    outs = [torch.nn.functional.conv2d(padded, k, groups=3) for k in kernels]
    return sum(outs) / len(outs)


class Peer:
    def __init__(self, model_name: str, layer: str):
        ctor = getattr(models, model_name)
        kwargs = {"aux_logits": True, "init_weights": True} if model_name in ("googlenet", "inception_v3") else {}
        self.model = ctor(weights=None, **kwargs).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.acts = {}
        getattr(self.model, layer).register_forward_hook(lambda m, i, o: self.acts.__setitem__("a", o))

    def step(self, x: torch.Tensor, i: int, steps: int, lr: float = 0.09, smoothing: float = 0.5) -> None:
        self.model(x)  # the whole network, as the peer runs it
        act = self.acts["a"]
        loss = torch.nn.MSELoss(reduction="mean")(act, torch.zeros_like(act))
        loss.backward()
        grad = x.grad.data
        sigma = ((i + 1) / steps) * 2.0 + smoothing
        g = cascade_gaussian_smoothing(grad, sigma)
        g = (g - torch.mean(g)) / torch.std(g)
        x.data += lr * g
        x.grad.data.zero_()
        x.data = torch.max(torch.min(x, UPPER), LOWER)

    def dream(self, img: np.ndarray, sizes: list[tuple[int, int]], steps: int = 10, jitter: int = 32,
              rng: np.random.Generator | None = None) -> np.ndarray:
        rng = rng or np.random.default_rng(0)
        img = (img - MEAN) / STD
        for w, h in sizes:
            img = cv2.resize(img, (w, h))
            x = torch.from_numpy(img.transpose(2, 0, 1).copy()).unsqueeze(0).requires_grad_(True)
            for i in range(steps):
                dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, 2))
                with torch.no_grad():
                    x.data = torch.roll(x, (dy, dx), dims=(2, 3))
                self.step(x, i, steps)
                with torch.no_grad():
                    x.data = torch.roll(x, (-dy, -dx), dims=(2, 3))
            img = x.detach().numpy()[0].transpose(1, 2, 0)
        return np.clip(img * STD + MEAN, 0, 1)


def octave_sizes(final: tuple[int, int], octaves) -> list[tuple[int, int]]:
    w, h = final
    if isinstance(octaves, tuple):  # (count, ratio): the peer's pyramid
        n, ratio = octaves
        return [(int(round(w * ratio ** (lv - n + 1))), int(round(h * ratio ** (lv - n + 1)))) for lv in range(n)]
    return [(round(w * s / max(w, h)), round(h * s / max(w, h))) for s in octaves]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", choices=sorted(CONFIGS))
    ap.add_argument("--input", default=None)
    ap.add_argument("--output", default="/tmp/peer_dream.png")
    ap.add_argument("--in-process", action="store_true", help="time the peer's steps against dreamreel's engine")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for --in-process (1: a shared box's noise)")
    a = ap.parse_args()
    model_name, layer, size, octaves = CONFIGS[a.config]
    sizes = octave_sizes(size, octaves)
    if a.in_process:
        torch.set_num_threads(a.threads)
        return in_process(model_name, layer, size, sizes, a.repeats)
    img = cv2.imread(a.input)[:, :, ::-1].astype(np.float32) / 255.0
    img = cv2.resize(img, size)
    peer = Peer(model_name, layer)
    out = peer.dream(img, sizes)
    cv2.imwrite(a.output, (out[:, :, ::-1] * 255).astype(np.uint8))
    print(f"peer wall {time.perf_counter() - T0:.2f} s")


def in_process(model_name, layer, size, sizes, repeats):
    from _common import interleaved, machine

    from dreamreel.engine import Dreamer, DreamSettings, Octave
    from dreamreel.models import create_model
    from dreamreel.engine.objectives import layer as layer_obj

    print(f"machine: {machine()}")
    w, h = size
    img = np.random.default_rng(0).random((h, w, 3), dtype=np.float32)
    peer = Peer(model_name, layer)
    spec, model = create_model(model_name, "random")
    settings = DreamSettings(tuple(Octave(s, 10, (0.015, 0.008), (0.5, 0.25)) for s in sizes), jitter=32)
    x = torch.from_numpy(img.transpose(2, 0, 1).copy()).unsqueeze(0)
    runs = {"peer": lambda: peer.dream(img, sizes)}
    for precision in ("fp32", "auto"):
        d = Dreamer(model, layer_obj(layer).bind(spec), precision=precision)
        runs[f"dreamreel {precision} ({d.path.describe()})"] = (
            lambda d=d: d.dream(x, settings, generator=torch.Generator().manual_seed(0), evaluate_end=True))
    t = interleaved(runs, repeats=repeats, stat=min)
    print(f"{model_name}->{layer} octaves {sizes}, 10 steps each, jitter 32, best of {repeats} interleaved:")
    for k, v in t.items():
        print(f"  {k:45s} {v:6.2f} s   ratio to peer {v / t['peer']:.2f}")


if __name__ == "__main__":
    main()

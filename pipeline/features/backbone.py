"""The VGG-19 backbone of the image features (paper §5 "Training Details"): conv1_1 … pool5.

Weights: ``imagenet`` (torchvision's ``VGG19_Weights.IMAGENET1K_V1`` file, from the torch hub
cache or downloaded), ``random`` (seeded; the demo, since ImageNet weights cannot be had offline)
or a path to a state dict (full ``vgg19`` or ``.features`` only), always loaded with
``torch.load(..., weights_only=True)``. ``extract_one`` runs one image through it (``visdial
chat``), with the preprocessing of the features stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.atomic import sha256_file
from pipeline.config import FeaturesConfig
from pipeline.errors import InputError
from pipeline.features.images import load_uint8, normalize

BACKBONE = "torchvision vgg19 .features (conv1_1 … pool5)"
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"]
VGG19_CFG += [512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
IMAGENET_URL = (
    "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"  # VGG19_Weights.IMAGENET1K_V1
)
CHANNELS = 512


@dataclass(frozen=True)
class Backbone:
    """The network plus where its weights came from (recorded in the output's attributes)."""

    module: nn.Module
    weights: str  # "imagenet" | "random" | the path given
    sha256: str  # of the weights file; "" for random


def vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` layout (same module indices), without the classifier."""
    layers: list[nn.Module] = []
    channels = 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers)


DIRAC_NOISE = 0.3  # the random part of each dirac conv, relative to kaiming's scale


def init_dirac(module: nn.Module, gen: torch.Generator, noise: float = DIRAC_NOISE) -> None:
    """Seeded identity-plus-noise weights: pool5 keeps each block's colours and the layout.

    A randomly initialised deep ReLU network maps every input to nearly the same output (the
    demo's pool5 regions at one cell of two images: cosine 0.9), so its features hold little of
    the image. Here conv1_1 copies +RGB and -RGB to channels 0-5 (ReLU then keeps both halves),
    every later conv passes channel i on to channel i (``nn.init.dirac_``), and each weight gets
    kaiming noise scaled by ``noise``: the other channels are random nonlinear functions of the
    local colours at every depth. The demo's stand-in for ImageNet weights, which cannot be had
    offline; not a model of them.
    """
    first = True
    for m in module.modules():
        if not isinstance(m, nn.Conv2d):
            continue
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
        with torch.no_grad():
            m.weight.mul_(noise)
            centre = m.kernel_size[0] // 2
            if first:  # (64, 3, 3, 3): +x to channels 0-2, -x to 3-5
                for c in range(m.in_channels):
                    m.weight[c, c, centre, centre] += 1.0
                    m.weight[m.in_channels + c, c, centre, centre] -= 1.0
            else:
                for c in range(min(m.in_channels, m.out_channels)):
                    m.weight[c, c, centre, centre] += 1.0
        nn.init.zeros_(m.bias)
        first = False


def imagenet_weights_path() -> Path:
    """Where torchvision looks for the ImageNet VGG-19 file (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_URL.rsplit("/", 1)[1]


def _download(url: str, dst: Path) -> None:
    """Fetch ``url`` into ``dst`` (checks the sha256 prefix in the file name)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dst), hash_prefix=dst.stem.rsplit("-", 1)[1])


def _load_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"{what} {path}: not a loadable state dict ({err})") from None
    if not isinstance(state, dict):
        raise InputError(f"{what} {path}: expected a state dict, found {type(state).__name__}")
    if any(k.startswith("features.") for k in state):  # full vgg19 state dict
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    return state


def load_backbone(weights: str, seed: int = 0) -> Backbone:
    """VGG-19 ``.features`` in eval mode on the CPU, weights from ``imagenet``/``random``/a path."""
    module = vgg19_features()
    if weights == "random":
        gen = torch.Generator().manual_seed(seed)
        for m in module.modules():  # torchvision's VGG init, but with its own generator
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out", nonlinearity="relu", generator=gen
                )
                nn.init.zeros_(m.bias)
        return Backbone(module.eval().requires_grad_(False), "random", "")
    if weights == "dirac":
        init_dirac(module, torch.Generator().manual_seed(seed))
        return Backbone(module.eval().requires_grad_(False), "dirac", "")
    if weights == "imagenet":
        path = imagenet_weights_path()
        if not path.exists():
            try:
                _download(IMAGENET_URL, path)
            except Exception as err:
                raise InputError(
                    f"features.weights: imagenet: {path} is missing and could not be downloaded"
                    f" ({type(err).__name__}); fetch {IMAGENET_URL} and put it there"
                    " (or set TORCH_HOME), or use a state-dict path or 'random'"
                ) from None
        what = "features.weights: imagenet"
    else:
        path = Path(weights)
        if not path.is_file():
            raise InputError(
                f"features.weights: {weights}: no such file (or imagenet | dirac | random)"
            )
        what = "features.weights:"
    state = _load_state_dict(path, what)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise InputError(f"{what} {path}: not a VGG-19 state dict ({first})") from None
    return Backbone(module.eval().requires_grad_(False), weights, sha256_file(path))


@torch.inference_mode()
def extract_one(
    image_path: str | os.PathLike, model: nn.Module, cfg: FeaturesConfig
) -> torch.Tensor:
    """Pool5 features of one image: float32 ``(512, S/32, S/32)`` on the CPU.

    Same preprocessing as the stage; runs on whatever device ``model`` lives on.
    """
    try:
        image = load_uint8(image_path, cfg.image_size)
    except Exception as err:
        raise InputError(f"{image_path}: cannot read image ({type(err).__name__}: {err})") from None
    device = next(model.parameters()).device
    x = normalize(image.unsqueeze(0).to(device))  # (1, 3, S, S)
    return model(x)[0].float().cpu()  # (512, S/32, S/32)

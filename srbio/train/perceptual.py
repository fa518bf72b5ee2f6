"""Perceptual (VGG feature) loss, with weights read from a local file, never downloaded.

The file is a ``torch.save``-d state dict of a VGG feature stack in torchvision's layout
(``features.<i>.weight`` / ``features.<i>.bias``, or the same without ``features.``), e.g. the
``vgg19`` weights a user copied to the cluster. The layer structure is read from the indices:
a convolution is followed by a ReLU, and a gap of one more index before the next convolution
is a 2×2 max-pool (torchvision's ``features`` Sequential). Loaded with ``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _convolutions(path: Path, state: dict) -> list[tuple[int, torch.Tensor, torch.Tensor | None]]:
    """(index, weight, bias) of each convolution of the feature stack, in order."""
    convs = {}
    for key, value in state.items():
        parts = key.removeprefix("features.").split(".")
        if len(parts) == 2 and parts[0].isdigit() and parts[1] == "weight" \
                and getattr(value, "ndim", 0) == 4:
            bias_key = key[: -len("weight")] + "bias"
            convs[int(parts[0])] = (value, state.get(bias_key))
    if not convs:
        raise ValueError(f"{path}: no VGG convolution weights (expected keys such as "
                         f"'features.0.weight' of shape (out, in, 3, 3))")
    return [(i, *convs[i]) for i in sorted(convs)]


def load_vgg_features(path: str | os.PathLike, layer: int) -> nn.Sequential:
    """The VGG feature stack of a local weights file, up to and including index ``layer``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not a readable state dict of VGG convolutions, or has no ``layer``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: VGG weights file not found (train.perceptual.weights; "
                                f"srbio never downloads weights: copy the file there)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        raise ValueError(f"{path}: not a readable weights file ({str(exc)[:200]})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    convs = _convolutions(path, state)
    last_index = convs[-1][0] + 1  # its ReLU
    if not 0 <= layer <= last_index:
        raise ValueError(f"{path}: train.perceptual.layer {layer} is not in the file's feature "
                         f"stack (indices 0-{last_index})")
    layers: list[nn.Module] = []
    for k, (i, weight, bias) in enumerate(convs):
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[2],
                         padding=weight.shape[2] // 2, bias=bias is not None)
        with torch.no_grad():
            conv.weight.copy_(weight)
            if bias is not None:
                conv.bias.copy_(bias)
        following = convs[k + 1][0] - i if k + 1 < len(convs) else 2
        layers += [conv, nn.ReLU(), *([nn.MaxPool2d(2)] if following == 3 else [])]
    features = nn.Sequential(*layers[: layer + 1])
    features.requires_grad_(False)
    return features.eval()


class PerceptualLoss(nn.Module):
    """Mean absolute difference of VGG features of the prediction and the target.

    Single-channel images are repeated to the network's input channels; with 3 input channels
    they are standardised with the ImageNet mean and std, as torchvision's VGG expects. The
    feature stack is frozen and held outside the module's parameters, so it is never trained
    and never written into checkpoints.
    """

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self._features = [features]  # a list: not a registered sub-module
        channels = next(m for m in features if isinstance(m, nn.Conv2d)).in_channels
        self.channels = channels
        imagenet = channels == 3
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN if imagenet else [0.0] * channels
                                                  ).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD if imagenet else [1.0] * channels
                                                 ).view(1, -1, 1, 1), persistent=False)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        features = self._features[0]
        first = next(features.parameters())
        if first.device != x.device:
            features.to(x.device)
        x = x.expand(-1, self.channels, -1, -1) if x.shape[1] == 1 else x
        return features(((x - self.mean) / self.std).to(first.dtype))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of one batch (N, C, H, W), or of volumes plane by plane."""
        from srbio.train.losses import as_planes

        pred, target = as_planes(pred), as_planes(target)
        with torch.no_grad():
            goal = self._embed(target)
        return F.l1_loss(self._embed(pred), goal)

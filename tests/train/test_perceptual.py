"""Perceptual loss from a local VGG file: structure read from the file, clear errors."""

import pytest
import torch
from torch import nn

from srbio.train.perceptual import PerceptualLoss, load_vgg_features


def save_small_vgg(path, *, prefix="features."):
    """A VGG in torchvision's layout: conv 0, relu 1, conv 2, relu 3, pool 4, conv 5, relu 6."""
    torch.manual_seed(0)
    convs = {0: nn.Conv2d(3, 8, 3, padding=1), 2: nn.Conv2d(8, 8, 3, padding=1),
             5: nn.Conv2d(8, 16, 3, padding=1)}
    state = {}
    for i, conv in convs.items():
        state[f"{prefix}{i}.weight"] = conv.weight.detach()
        state[f"{prefix}{i}.bias"] = conv.bias.detach()
    state["classifier.0.weight"] = torch.zeros(4, 4)  # ignored, as in torchvision files
    torch.save(state, path)
    return convs


def test_the_feature_stack_is_read_from_the_indices(tmp_path):
    convs = save_small_vgg(tmp_path / "vgg.pth")
    features = load_vgg_features(tmp_path / "vgg.pth", layer=6)
    kinds = [type(m).__name__ for m in features]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU"]
    x = torch.rand(1, 3, 16, 16)
    expected = torch.relu(convs[5](nn.functional.max_pool2d(
        torch.relu(convs[2](torch.relu(convs[0](x)))), 2)))
    torch.testing.assert_close(features(x), expected)
    assert not any(p.requires_grad for p in features.parameters())
    assert len(load_vgg_features(tmp_path / "vgg.pth", layer=2)) == 3  # up to conv 2


def test_the_loss_is_zero_for_equal_images_and_trains_the_prediction(tmp_path):
    save_small_vgg(tmp_path / "vgg.pth", prefix="")  # keys without "features." also work
    loss = PerceptualLoss(load_vgg_features(tmp_path / "vgg.pth", layer=6))
    target = torch.rand(2, 1, 16, 16)
    assert float(loss(target, target)) == 0.0
    pred = torch.rand(2, 1, 16, 16, requires_grad=True)
    value = loss(pred, target)
    value.backward()
    assert value.item() > 0 and pred.grad.abs().sum() > 0
    assert not list(loss.parameters()) and not loss.state_dict()  # never in a checkpoint


def test_missing_or_foreign_files_and_layers_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth: VGG weights file not found"):
        load_vgg_features(tmp_path / "nope.pth", layer=3)
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="junk.pth: not a readable weights file"):
        load_vgg_features(tmp_path / "junk.pth", layer=3)
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth: no VGG convolution weights"):
        load_vgg_features(tmp_path / "other.pth", layer=3)
    save_small_vgg(tmp_path / "vgg.pth")
    with pytest.raises(ValueError, match="layer 34 is not in the file's feature stack "
                                         r"\(indices 0-6\)"):
        load_vgg_features(tmp_path / "vgg.pth", layer=34)

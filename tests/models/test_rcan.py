import pytest
import torch

from srbio.models import PRESETS, RCAN, build_model
from srbio.models.checkpoint import load_model, save_model


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_output_is_single_channel_and_upsampled(scale):
    net = build_model(scale=scale, preset="tiny")
    y = net(torch.zeros(2, 1, 12, 10))
    assert y.shape == (2, 1, 12 * scale, 10 * scale)


def test_paper_preset_has_the_published_structure():
    net = build_model(scale=2, preset="paper")
    assert PRESETS["paper"] == {"n_groups": 10, "n_blocks": 20, "n_feats": 64, "reduction": 16}
    assert len(net.body) == 11  # 10 residual groups + the trunk conv
    assert len(net.body[0].body) == 21  # 20 RCABs + the group conv
    # no RGB mean shift, no 0-255 scaling: a zero network input gives the tail's bias only
    n_params = sum(p.numel() for p in net.parameters())
    assert 15_000_000 < n_params < 16_000_000  # ~15.4 M for 1 channel, x2


def test_overrides_and_errors():
    net = build_model(scale=2, preset="small", n_feats=16, reduction=4)
    assert net.config["n_feats"] == 16 and net.config["n_groups"] == 5
    with pytest.raises(ValueError, match="unknown preset"):
        build_model(scale=2, preset="huge")
    with pytest.raises(ValueError, match="scale"):
        RCAN(scale=5)


def test_model_file_roundtrip_and_refuses_foreign_files(tmp_path):
    torch.manual_seed(0)
    net = build_model(scale=2, preset="tiny").eval()
    path = save_model(tmp_path / "m.pt", net, normalisation={"lr": [1, 2], "hr": [3, 4]},
                      spacing=None, provenance={"note": "test"})
    loaded, meta = load_model(path)
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(loaded(x), net(x))
    assert meta["normalisation"] == {"lr": [1.0, 2.0], "hr": [3.0, 4.0]}
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.pt"):
        load_model(tmp_path / "bad.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an srbio model"):
        load_model(tmp_path / "other.pt")

import pytest
import torch

from srbio.models import build_network, count_parameters
from srbio.models.rcan import RCAN
from srbio.models.registry import NETWORKS, check_scale, resolve_params


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_output_is_single_channel_and_upsampled(scale):
    net = build_network("rcan", scale=scale, preset="tiny")
    y = net(torch.zeros(2, 1, 12, 10))
    assert y.shape == (2, 1, 12 * scale, 10 * scale)


@pytest.mark.parametrize(("channels", "expected"), [(1, 15_442_337), (3, 15_444_643)])
def test_paper_preset_has_the_published_parameter_count(channels, expected):
    net = build_network("rcan", scale=2, preset="paper", in_channels=channels)
    assert NETWORKS["rcan"].presets["paper"] == {"n_groups": 10, "n_blocks": 20, "n_feats": 64,
                                                 "reduction": 16}
    assert len(net.body) == 10 and len(net.body[0].blocks) == 20  # G groups of B RCABs
    assert count_parameters(net) == expected  # the published ≈15.4 M (Zhang et al. 2018)


def test_parameters_override_the_preset_and_errors_name_the_value():
    net = build_network("rcan", scale=2, preset="small", params={"n_feats": 16, "reduction": 4})
    assert net.config["n_feats"] == 16 and net.config["n_groups"] == 5
    assert net.config["name"] == "rcan" and net.config["scale"] == 2
    with pytest.raises(ValueError, match="unknown preset 'huge'.*tiny, small, paper"):
        build_network("rcan", scale=2, preset="huge")
    with pytest.raises(ValueError, match="no parameter 'depth'"):
        resolve_params("rcan", "small", {"depth": 3})
    with pytest.raises(ValueError, match="unknown network 'srgann'.*rcan"):
        build_network("srgann", scale=2)
    with pytest.raises(ValueError, match="supports scale 1, 2, 3, 4, 8; got 5"):
        check_scale("rcan", 5)
    with pytest.raises(ValueError, match="scale"):
        RCAN(scale=5)


def test_the_network_config_rebuilds_the_same_network():
    torch.manual_seed(0)
    net = build_network("rcan", scale=3, preset="tiny").eval()
    cfg = dict(net.config)
    again = build_network(cfg.pop("name"), scale=cfg.pop("scale"),
                          in_channels=cfg.pop("in_channels"), params=cfg).eval()
    again.load_state_dict(net.state_dict())
    x = torch.rand(1, 1, 9, 11)
    torch.testing.assert_close(again(x), net(x))


def test_weights_of_the_old_layout_load_into_the_same_function():
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset="tiny")
    old = {}  # srbio <= 0.2 named the group conv body.<g>.body.<B>, the trunk conv body.<G>
    for key, value in net.state_dict().items():
        key = key.replace("body_conv.", "body.2.").replace(".conv.", ".body.2.")
        old[key.replace(".blocks.", ".body.")] = value
    assert "body.2.weight" in old and "body.0.body.2.weight" in old
    fresh = build_network("rcan", scale=2, preset="tiny")
    fresh.load_state_dict(old)
    x = torch.rand(1, 1, 10, 10)
    assert torch.equal(fresh(x), net(x))
